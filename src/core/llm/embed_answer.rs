//! The OpenAI embeddings wire format: the request body ([`embeddings_body`]) and the answer
//! ([`parse_embeddings`]).
//!
//! The request asks for `encoding_format: "base64"`: each vector then travels as its float32 bytes
//! in base64, a third of the size of JSON numbers and decoded without parsing a float. Servers that
//! ignore the field (some compatible ones do) answer arrays of numbers, which are read too, each
//! item on its own, whichever form the others took. Items are placed by their `index`, not their
//! position. Everything upstream is hostile: every index must be in range and used once, every
//! vector have the same length (and the length asked for, if `dimensions` was given), every value
//! be finite; otherwise the answer is refused (and the target has failed).

use crate::core::json::{write_string, Json};
use crate::core::llm::embed::MAX_DIMENSIONS;

/// The request body for embedding `texts` with `model`.
pub fn embeddings_body<S: AsRef<str>>(model: &str, texts: &[S], dimensions: Option<u32>) -> String {
    let size: usize = texts.iter().map(|t| t.as_ref().len() + 3).sum();
    let mut out = String::with_capacity(size + model.len() + 64);
    out.push_str("{\"model\":");
    write_string(model, &mut out);
    out.push_str(",\"input\":[");
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(text.as_ref(), &mut out);
    }
    out.push_str("],\"encoding_format\":\"base64\"");
    if let Some(n) = dimensions {
        out.push_str(",\"dimensions\":");
        out.push_str(&n.to_string());
    }
    out.push('}');
    out
}

/// A readable answer.
#[derive(Debug, PartialEq)]
pub struct Embeddings {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// `usage.prompt_tokens`, when given.
    pub prompt_tokens: Option<u64>,
}

/// The answer to a request of `count` texts (`dimensions`, when asked for, is the length every
/// vector must have); why it cannot be used otherwise.
pub fn parse_embeddings(
    text: &str,
    count: usize,
    dimensions: Option<usize>,
) -> Result<Embeddings, &'static str> {
    let json = Json::parse(text).ok_or("not JSON")?;
    let Some(Json::Array(data)) = json.get("data") else {
        return Err("no data array");
    };
    if data.len() != count {
        return Err("not one embedding per input");
    }
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); count];
    let mut width = dimensions;
    for item in data {
        let index = item
            .get("index")
            .and_then(Json::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < count)
            .ok_or("an index out of range")?;
        let vector = match item.get("embedding") {
            Some(Json::String(b64)) => decode_base64_floats(b64),
            Some(Json::Array(numbers)) => numbers.iter().map(number).collect(),
            _ => None,
        }
        .filter(|v| !v.is_empty() && v.len() <= MAX_DIMENSIONS)
        .ok_or("an embedding that is not finite numbers or base64 float32")?;
        if *width.get_or_insert(vector.len()) != vector.len() {
            return Err("embeddings of different lengths");
        }
        let slot = &mut vectors[index];
        if !slot.is_empty() {
            return Err("an index given twice");
        }
        *slot = vector;
    }
    let prompt_tokens = json
        .get("usage")
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Json::as_u64);
    Ok(Embeddings {
        vectors,
        prompt_tokens,
    })
}

/// A JSON number as a finite `f32`.
fn number(value: &Json) -> Option<f32> {
    match value {
        Json::Number(text) => parse_float(text),
        _ => None,
    }
}

/// A JSON number's text as the nearest `f32` (within an `f64` rounding: the wasm build carries no
/// correctly rounded float parser, and an embedding needs none). `None` if not finite.
fn parse_float(text: &str) -> Option<f32> {
    let bytes = text.as_bytes();
    let (negative, mut at) = match bytes.first() {
        Some(b'-') => (true, 1),
        _ => (false, 0),
    };
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut digits = 0;
    let mut fraction = false;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'0'..=b'9' => {
                if mantissa < 1 << 59 {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    exponent -= i64::from(fraction);
                } else {
                    exponent += i64::from(!fraction);
                }
                digits += 1;
            }
            b'.' if !fraction => fraction = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        at += 1;
    }
    if digits == 0 {
        return None;
    }
    if at < bytes.len() {
        let written = text.get(at + 1..)?;
        let e: i64 = written.strip_prefix('+').unwrap_or(written).parse().ok()?;
        exponent = exponent.saturating_add(e.clamp(-1000, 1000));
    }
    let scale = 10f64.powi(exponent.unsigned_abs().min(400) as i32);
    let value = if exponent < 0 {
        mantissa as f64 / scale
    } else {
        mantissa as f64 * scale
    };
    let value = if negative { -value } else { value } as f32;
    value.is_finite().then_some(value)
}

/// Standard base64 (padding optional) decoded as little-endian float32 values.
fn decode_base64_floats(text: &str) -> Option<Vec<f32>> {
    let bytes = decode_base64(text)?;
    crate::core::llm::embed::from_bytes(&bytes)
}

/// Standard base64, padding optional; `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for b in text.bytes() {
        let six = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(six);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::embed::to_bytes;

    fn b64(bytes: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
        out
    }

    #[test]
    fn body_asks_for_base64() {
        assert_eq!(
            embeddings_body("m", &["a", "b\"c"], Some(256)),
            r#"{"model":"m","input":["a","b\"c"],"encoding_format":"base64","dimensions":256}"#
        );
        assert_eq!(
            embeddings_body::<&str>("m", &[], None),
            r#"{"model":"m","input":[],"encoding_format":"base64"}"#
        );
    }

    #[test]
    fn base64_and_floats_are_read_by_index() {
        let one = b64(&to_bytes(&[0.25, -0.5]));
        let text = format!(
            r#"{{"data":[{{"index":1,"embedding":"{one}"}},{{"index":0,"embedding":[1.5,-2e-1]}}],"usage":{{"prompt_tokens":7}}}}"#
        );
        let parsed = parse_embeddings(&text, 2, None);
        assert_eq!(
            parsed,
            Ok(Embeddings {
                vectors: vec![vec![1.5, -0.2], vec![0.25, -0.5]],
                prompt_tokens: Some(7),
            })
        );
        let unpadded = b64(&to_bytes(&[1.0, 2.0, 3.0]))
            .trim_end_matches('=')
            .to_string();
        let text = format!(r#"{{"data":[{{"index":0,"embedding":"{unpadded}"}}]}}"#);
        let parsed = parse_embeddings(&text, 1, Some(3)).map(|e| e.vectors);
        assert_eq!(parsed, Ok(vec![vec![1.0, 2.0, 3.0]]));
    }

    #[test]
    fn floats_parse_close_to_exact() {
        for (text, value) in [
            ("0", 0.0f32),
            ("-0.0123456789", -0.012_345_679),
            ("1e3", 1000.0),
            ("2.5E-3", 0.0025),
            ("123456789012345678901234", 1.234_567_9e23),
            ("0.000000000000000000000000000000000000000001", 1e-42),
        ] {
            assert_eq!(parse_float(text), Some(value), "{text}");
        }
        for bad in ["", "-", ".", "1e", "1e+", "abc", "1.2.3", "1e99", "1x"] {
            assert_eq!(parse_float(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_answers_are_refused() {
        let cases = [
            ("nope", 1, None),
            (r#"{"data":{}}"#, 1, None),
            (r#"{"data":[]}"#, 1, None),
            (r#"{"data":[{"index":1,"embedding":[1]}]}"#, 1, None),
            (r#"{"data":[{"embedding":[1]}]}"#, 1, None),
            (
                r#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#,
                2,
                None,
            ),
            (
                r#"{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2,3]}]}"#,
                2,
                None,
            ),
            (r#"{"data":[{"index":0,"embedding":[1,2]}]}"#, 1, Some(3)),
            (r#"{"data":[{"index":0,"embedding":[]}]}"#, 1, None),
            (r#"{"data":[{"index":0,"embedding":["1"]}]}"#, 1, None),
            (r#"{"data":[{"index":0,"embedding":"AAA*"}]}"#, 1, None),
            (r#"{"data":[{"index":0,"embedding":"AAAAAAA="}]}"#, 1, None),
            (r#"{"data":[{"index":0,"embedding":[1e40]}]}"#, 1, None),
        ];
        for (text, count, dims) in cases {
            assert!(parse_embeddings(text, count, dims).is_err(), "{text}");
        }
    }
}
