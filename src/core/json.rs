//! A small JSON reader for the few fields the core needs from LLM responses: stream deltas, usage,
//! finish reasons, error objects.
//!
//! Why not serde_json? It adds about 38 KB (gzip) to the wasm, more than the rest of the core, for
//! documents whose shape we only probe. This reader is total (any input gives a value or `None`, never
//! a panic), bounded (nesting deeper than [`MAX_DEPTH`] is rejected instead of overflowing the
//! stack, and a document whose tree would take more memory than [`tree_budget`] allows is refused:
//! see there), and keeps numbers as their source text so no float parsing is linked in: integers are read
//! by hand where needed ([`Json::as_u64`]). Text is sliced with `str::get`, never `&text[a..b]`:
//! the index operator's char-boundary panic links some 4 KB of message formatting into the wasm.
//!
//! Writing is left to the callers, who know their few shapes, except for the one part that is easy
//! to get wrong, string escaping ([`write_string`]), and re-emitting a parsed value as is
//! ([`Json::write`], for JSON the caller hands over: schemas, provider options).

use crate::core::stable_order::stable_order;
use std::borrow::Cow;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// The most memory the parsed tree of `text` may take, in bytes: three times the text, plus 64 KiB,
/// each value counted at [`VALUE_BYTES`] and each object member's key at [`KEY_BYTES`].
///
/// A value takes a [`Json`] in the tree whatever its size in the text: `[0,0,0,…]` is 2 bytes of
/// text per value and 16 of tree, in vectors that grow by doubling. Unbounded, one hostile 4 MB
/// request body (parsed for its cache key) grew the wasm memory by 68 MB, which never shrinks: past
/// half of a Worker's 128 MB. Real documents stay far below the budget: long text is one string,
/// and the densest real shape, an embedding's numbers (`-0.0123456789,`: 14 bytes each), takes about
/// its own size; a document of values of 5 bytes or less each (`[0,0,…]`, `[1.5,…]`) past its first
/// 64 KiB is refused, before anything is built ([`fits_budget`]).
pub fn tree_budget(text: &str) -> usize {
    text.len().saturating_mul(3).saturating_add(64 << 10)
}

/// What one value is counted in the tree: the size of a [`Json`] in the wasm (the same on every
/// target, so a document parses or not everywhere alike).
pub const VALUE_BYTES: usize = 16;

/// What an object member's key is counted, beside its value: a `Cow<str>` in the wasm.
pub const KEY_BYTES: usize = 12;

/// Text this short always fits [`tree_budget`] (at most a value per 2 bytes: 8 bytes of tree per
/// byte of text, against 3 per byte plus 64 KiB), so is not scanned.
const ALWAYS_FITS: usize = 8 << 10;

/// Whether the tree of `text` would fit [`tree_budget`], told without building it, from an upper
/// bound on its values (the root, and one more per comma and per opening bracket outside strings)
/// and keys (one per colon outside strings). A pass over the bytes, for text past [`ALWAYS_FITS`].
fn fits_budget(text: &str) -> bool {
    if text.len() <= ALWAYS_FITS {
        return true;
    }
    let (mut values, mut keys) = (1usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text.as_bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => values += 1,
            b':' => keys += 1,
            _ => {}
        }
    }
    let tree = values
        .saturating_mul(VALUE_BYTES)
        .saturating_add(keys.saturating_mul(KEY_BYTES));
    tree <= tree_budget(text)
}

#[cfg(target_arch = "wasm32")]
const _: () = assert!(
    std::mem::size_of::<Json>() == VALUE_BYTES && std::mem::size_of::<Cow<str>>() == KEY_BYTES
);

/// A parsed JSON value, borrowing from the source where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// A string, unescaped (borrowed when it had no escapes).
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object, members in source order.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses a whole document (surrounding whitespace allowed); `None` if it is not valid JSON,
    /// or its tree would pass [`tree_budget`].
    pub fn parse(text: &'a str) -> Option<Json<'a>> {
        if !fits_budget(text) {
            return None;
        }
        let mut reader = Reader {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = reader.value(0)?;
        reader.skip_space();
        (reader.at == reader.bytes.len()).then_some(value)
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Element `index` of an array.
    pub fn at(&self, index: usize) -> Option<&Json<'a>> {
        match self {
            Json::Array(items) => items.get(index),
            _ => None,
        }
    }

    /// The string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer value (`12`, also `12.0`); `None` for anything else or on overflow.
    pub fn as_u64(&self) -> Option<u64> {
        let Json::Number(text) = self else {
            return None;
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() || !fraction.bytes().all(|b| b == b'0') {
            return None;
        }
        whole.bytes().try_fold(0u64, |n, b| {
            b.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
                .flatten()
        })
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Appends the value as compact JSON text: numbers as their source text, strings through
    /// [`write_string`], members in order. What [`Json::parse`] read is written back with the same
    /// meaning, so a caller's JSON value (a schema, provider options) can be re-emitted inside a
    /// body. Recursion is bounded by the parser's [`MAX_DEPTH`].
    pub fn write(&self, out: &mut String) {
        self.write_members(out, false);
    }

    /// As [`Json::write`], with every object's members sorted by key (stable, so duplicate keys
    /// keep their order): the canonical form two equal documents share, as the cache key needs.
    pub fn write_sorted(&self, out: &mut String) {
        self.write_members(out, true);
    }

    fn write_members(&self, out: &mut String, sorted: bool) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_members(out, sorted);
                }
                out.push(']');
            }
            Json::Object(members) => {
                let order = match sorted {
                    true => stable_order(members.len(), |i| members[i].0.as_ref()),
                    false => (0..members.len()).collect(),
                };
                out.push('{');
                for (n, (key, value)) in order.into_iter().map(|i| &members[i]).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write_members(out, sorted);
                }
                out.push('}');
            }
        }
    }
}

/// Appends `s` to `out` as a JSON string literal, quotes included, escaped minimally and one way:
/// `"` and `\` and the control characters U+0000..U+001F only (`\b \f \n \r \t` in short form,
/// the others as `\u00xx`, lowercase hex); everything else, `/` and non-ASCII included, is
/// written as itself (valid JSON, since a Rust string holds no lone surrogate). [`Json::parse`]
/// reads the result back as `s` exactly. The core's JSON *writer*: the cache key's canonical form
/// and the LLM request bodies both use it, so there is one escaping rule to get right.
pub fn write_string(s: &str, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Runs of characters written as themselves are copied whole. Only ASCII is ever escaped, so a
    // run always starts and ends on a character boundary.
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "\\u00",
            _ => {
                at += 1;
                continue;
            }
        };
        out.push_str(s.get(run..at).unwrap_or_default());
        out.push_str(escape);
        if escape == "\\u00" {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        at += 1;
        run = at;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        self.bytes[self.at..].starts_with(word.as_bytes()).then(|| {
            self.at += word.len();
            value
        })
    }

    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match *self.bytes.get(self.at)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Json::String),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<Json<'a>> {
        self.at += 1;
        let mut members = Vec::new();
        if self.eat(b'}').is_some() {
            return Some(Json::Object(members));
        }
        loop {
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.eat(b':')?;
            members.push((key, self.value(depth + 1)?));
            if self.eat(b',').is_none() {
                self.eat(b'}')?;
                return Some(Json::Object(members));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Json<'a>> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(b']').is_some() {
            return Some(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.eat(b',').is_none() {
                self.eat(b']')?;
                return Some(Json::Array(items));
            }
        }
    }

    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.at;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        let digits = |r: &mut Self| {
            let from = r.at;
            while r.bytes.get(r.at).is_some_and(u8::is_ascii_digit) {
                r.at += 1;
            }
            r.at > from
        };
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            digits(self).then_some(())?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            digits(self).then_some(())?;
        }
        self.text.get(start..self.at).map(Json::Number)
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.at += 1;
        let start = self.at;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return self.text.get(start..self.at - 1).map(Cow::Borrowed);
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let mut out = String::from(self.text.get(start..self.at)?);
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.at += 1;
                    let escape = *self.bytes.get(self.at)?;
                    self.at += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {
                    // Copy the run of plain characters up to the next quote or backslash.
                    let from = self.at;
                    while self
                        .bytes
                        .get(self.at)
                        .is_some_and(|b| !matches!(b, b'"' | b'\\' | 0..=0x1f))
                    {
                        self.at += 1;
                    }
                    out.push_str(self.text.get(from..self.at)?);
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        self.at += 4;
        digits
            .bytes()
            .try_fold(0u32, |n, b| Some(n * 16 + (b as char).to_digit(16)?))
    }

    /// The code point of `\uXXXX` (the `\u` already read), joining surrogate pairs; a lone
    /// surrogate becomes U+FFFD, as browsers' JSON.parse would keep it unpaired.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.bytes[self.at..].starts_with(b"\\u") {
            let save = self.at;
            self.at += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return char::from_u32(code);
            }
            self.at = save;
        }
        Some(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_documents() {
        let doc = Json::parse(
            r#" {"choices":[{"delta":{"content":"Hi \"there\"\n"},"finish_reason":null}],
                 "usage":{"prompt_tokens":12,"total_tokens":40.0},"ok":true} "#,
        )
        .unwrap();
        let delta = doc
            .get("choices")
            .and_then(|c| c.at(0))
            .and_then(|c| c.get("delta"));
        assert_eq!(
            delta.and_then(|d| d.get("content")).and_then(Json::as_str),
            Some("Hi \"there\"\n")
        );
        let usage = doc.get("usage").unwrap();
        assert_eq!(usage.get("prompt_tokens").and_then(Json::as_u64), Some(12));
        assert_eq!(usage.get("total_tokens").and_then(Json::as_u64), Some(40));
        assert_eq!(doc.get("ok"), Some(&Json::Bool(true)));
        assert!(doc
            .get("choices")
            .and_then(|c| c.at(0))
            .and_then(|c| c.get("finish_reason"))
            .is_some_and(Json::is_null));
    }

    #[test]
    fn decodes_unicode_escapes_and_surrogate_pairs() {
        let doc = Json::parse(r#""\u00e9\ud83d\ude00\ud800x""#).unwrap();
        assert_eq!(doc.as_str(), Some("é😀\u{FFFD}x"));
    }

    #[test]
    fn refuses_a_document_whose_tree_would_pass_its_budget() {
        // 2 bytes of text per value (16 counted): refused once past the 64 KiB allowance.
        let dense = format!("[{}0]", "0,".repeat(100_000));
        assert_eq!(Json::parse(&dense), None);
        let keys = format!("{{{}\"a\":0}}", "\"a\":0,".repeat(100_000));
        assert_eq!(Json::parse(&keys), None);
        // The same within the allowance, and real shapes at any size, parse.
        assert!(Json::parse(&format!("[{}0]", "0,".repeat(3_000))).is_some());
        let embedding = format!("[{}0.5]", "-0.0123456789,".repeat(200_000));
        assert_eq!(
            Json::parse(&embedding).and_then(|j| j.at(200_000).cloned()),
            Some(Json::Number("0.5"))
        );
        let text = format!("{{\"content\":\"{}\"}}", "word ".repeat(1_000_000));
        assert!(Json::parse(&text).is_some());
    }

    #[test]
    fn rejects_invalid_documents() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "\"\u{1}\"",
            "tru",
            "[1] x",
            "\"\\x\"",
            "{\"a\":}",
            "\"\\u12\"",
        ] {
            assert_eq!(Json::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(Json::parse(&deep), None);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(Json::parse(&ok).is_some());
    }

    #[test]
    fn integers_are_read_by_hand() {
        let n = |t: &str| Json::parse(t).and_then(|j| j.as_u64());
        assert_eq!(n("0"), Some(0));
        assert_eq!(n("18446744073709551615"), Some(u64::MAX));
        assert_eq!(n("18446744073709551616"), None);
        assert_eq!(n("-1"), None);
        assert_eq!(n("1.5"), None);
        assert_eq!(n("1e3"), None);
    }

    #[test]
    fn a_parsed_value_is_written_back_compact_with_the_same_meaning() {
        let text = " { \"a\" : [1, -2.5e3, true, false, null], \"q\\\"\\n\": \"x\\u0001y\\u00e9\", \"o\": {} , \"e\": [] } ";
        let json = Json::parse(text).expect("valid");
        let mut out = String::new();
        json.write(&mut out);
        assert_eq!(
            out,
            "{\"a\":[1,-2.5e3,true,false,null],\"q\\\"\\n\":\"x\\u0001yé\",\"o\":{},\"e\":[]}"
        );
        assert_eq!(Json::parse(&out), Some(json));
    }
}
