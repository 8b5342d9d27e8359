//! Cache keys: one SHA-256 over everything that decides the answer, and nothing in clear.
//!
//! What goes in. The method (ASCII-uppercased, as `fetch` normalizes `get` to `GET`), the URL as
//! given (not normalized: reordering a query string could change what a server does), the body, the
//! headers and a namespace the caller chooses (to partition one store between clients or
//! versions). Two requests share a key only if all of these agree; a false miss merely costs a
//! call, a false hit answers one request with another's response, so every doubtful case below
//! errs towards a miss.
//!
//! The body. Two clients serializing the same request object rarely agree on member order or
//! whitespace, so a body that parses as JSON is hashed in a canonical form ([`canonical_json`]):
//! members sorted, no insignificant whitespace, strings re-escaped one way. Numbers are kept as
//! written: `1`, `1.0` and `1e0` give different keys. Deciding that they are equal would take float
//! parsing (which the wasm build avoids) and would also be wrong for servers that tell integers from
//! floats. A body that is not JSON is hashed as is, and so is one too costly to parse
//! ([`tree_budget`](crate::core::json::tree_budget): a hostile body of tiny values), which can only
//! cost a miss.
//!
//! Headers. A cached answer must never reach a caller with other credentials, and credentials come
//! in many headers (`authorization`, `x-api-key`, `x-goog-api-key`, `cookie`, a gateway's or a
//! proxy's own...), as do other things that change an answer (`openai-organization`,
//! `anthropic-beta`, `accept`). No list of them can be complete, so the key covers every request
//! header except [`IGNORED_HEADERS`] and the `x-stainless-*` family: headers known to change neither
//! who asks nor what is answered. A header missing from that list partitions the key; the worst it
//! does is cost a call.
//!
//! The key derivation should not hold a secret next to other data in one buffer either, so the
//! `(name, value)` pairs are hashed on their own first, and only that digest enters the key. Names
//! are compared case-insensitively (lowercased) and values without surrounding whitespace (as
//! `Headers` normalizes them), and the pairs sorted by name, stably, so header order does not matter
//! but the order of repeated values of one header (which `fetch` joins with `, `) does.
//!
//! Framing. Each variable-length field is preceded by its length as 8 big-endian bytes, the body by
//! a one-byte tag saying absent, canonical JSON or raw, and the headers digest has a fixed
//! size; the whole input starts with a domain-separation label. The hashed input can thus be split
//! back into its fields in exactly one way: two different sets of parts never hash the same input.

use std::borrow::Cow;
use std::fmt;

use crate::core::cache::sha256::{hex, Sha256};
use crate::core::cache::Body;
use crate::core::stable_order::stable_order;

/// Label opening every key's hashed input (bump the version if the derivation changes: entries
/// under the old keys, in persistent stores too, are then never found). v2: every header, not only
/// three credential headers.
const KEY_LABEL: &[u8] = b"resilient-llm cache key v2\0";
/// Label opening the headers' hashed input.
const HEADERS_LABEL: &[u8] = b"resilient-llm headers v2\0";

/// Request headers that never enter a key (lowercase), each known to change neither who asks nor
/// what is answered:
/// - `user-agent`: names the client software (SDKs put their version in it);
/// - `accept-encoding`, `content-length`: how the bytes travel; the body itself is in the key, and
///   `fetch` hands back an answer decoded;
/// - `traceparent`, `tracestate`, `x-request-id`: tracing, new on every call;
/// - `idempotency-key`: new on every call, and it asks the server not to run one call twice, which
///   sharing an answer does not do either;
/// - `cache-control`: addressed to caches, this one included, and obeyed by the policy
///   ([`request_cacheable`](super::request_cacheable)).
///
/// The `x-stainless-*` headers ([`IGNORED_PREFIX`]) are the OpenAI and Anthropic SDKs' telemetry
/// (language, OS, runtime versions, the SDK's own retry count). Everything else partitions:
/// `accept`, `content-type`, `baggage` (which may carry a tenant) and every header nobody listed.
pub const IGNORED_HEADERS: &[&str] = &[
    "accept-encoding",
    "cache-control",
    "content-length",
    "idempotency-key",
    "traceparent",
    "tracestate",
    "user-agent",
    "x-request-id",
];
/// The prefix of the SDK telemetry headers, also ignored (see [`IGNORED_HEADERS`]).
pub const IGNORED_PREFIX: &str = "x-stainless-";

/// Body tags in the hashed input.
const BODY_NONE: u8 = 0;
const BODY_JSON: u8 = 1;
const BODY_RAW: u8 = 2;

/// What a cache key is derived from.
#[derive(Clone, Copy)]
pub struct KeyParts<'a> {
    /// The HTTP method (compared case-insensitively).
    pub method: &'a str,
    /// The full request URL, as sent.
    pub url: &'a str,
    /// The request body, if any (canonicalized when it is JSON).
    pub body: Option<&'a Body<'a>>,
    /// Every request header as `(name, value)`, in any case, values as given: the key ignores
    /// [`IGNORED_HEADERS`] itself.
    pub headers: &'a [(&'a str, &'a str)],
    /// A caller-chosen partition of the key space.
    pub namespace: &'a str,
}

/// Shows header names only, never their values.
impl fmt::Debug for KeyParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("KeyParts")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body)
            .field("headers", &names)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Lowercase hex SHA-256 over method, URL, the canonical body and a hash of the headers, plus the
/// namespace (see the module doc for the framing). Always 64 characters.
pub fn cache_key(parts: &KeyParts) -> String {
    let mut hasher = Sha256::new();
    hasher.update(KEY_LABEL);
    field(&mut hasher, parts.method.to_ascii_uppercase().as_bytes());
    field(&mut hasher, parts.url.as_bytes());
    match parts.body {
        None => hasher.update(&[BODY_NONE]),
        Some(body) => match canonical(body) {
            Some(canonical) => {
                hasher.update(&[BODY_JSON]);
                field(&mut hasher, canonical.as_bytes());
            }
            None => {
                hasher.update(&[BODY_RAW]);
                field(&mut hasher, body.text.as_bytes());
            }
        },
    }
    hasher.update(&headers_digest(parts.headers));
    field(&mut hasher, parts.namespace.as_bytes());
    hex(&hasher.finish())
}

/// Label opening every embedding key's hashed input.
const EMBEDDING_LABEL: &[u8] = b"resilient-llm embedding key v1\0";

/// What decides one text's embedding: [`embedding_key`].
pub struct EmbeddingKeyParts<'a> {
    /// The text embedded.
    pub text: &'a str,
    /// The embedding model.
    pub model: &'a str,
    /// The `dimensions` asked for, if any.
    pub dimensions: Option<u32>,
    /// Where the request goes (the same model name on two servers need not be one model).
    pub url: &'a str,
    /// Every request header, as for [`KeyParts::headers`]: the credential partitions the key.
    pub headers: &'a [(&'a str, &'a str)],
    /// A caller-chosen partition of the key space.
    pub namespace: &'a str,
}

/// The cache key of one text's embedding: lowercase hex SHA-256 over the text, model, dimensions,
/// URL, a hash of the headers and the namespace, framed like [`cache_key`] under its own label (so
/// no embedding key equals a response key).
pub fn embedding_key(parts: &EmbeddingKeyParts) -> String {
    let mut hasher = Sha256::new();
    hasher.update(EMBEDDING_LABEL);
    field(&mut hasher, parts.text.as_bytes());
    field(&mut hasher, parts.model.as_bytes());
    match parts.dimensions {
        None => hasher.update(&[0]),
        Some(n) => {
            hasher.update(&[1]);
            hasher.update(&n.to_be_bytes());
        }
    }
    field(&mut hasher, parts.url.as_bytes());
    hasher.update(&headers_digest(parts.headers));
    field(&mut hasher, parts.namespace.as_bytes());
    hex(&hasher.finish())
}

/// Feeds `bytes` preceded by its length.
pub(crate) fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// Whether a request header (lowercase) stays out of keys: see [`IGNORED_HEADERS`].
pub fn ignored_header(name: &str) -> bool {
    IGNORED_HEADERS.contains(&name) || name.starts_with(IGNORED_PREFIX)
}

/// The digest of the headers alone: names lowercased, the ignored ones left out, values trimmed,
/// pairs sorted stably by name, each field length-prefixed after a count.
pub(crate) fn headers_digest(headers: &[(&str, &str)]) -> [u8; 32] {
    let mut pairs: Vec<(Cow<str>, &str)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = match name.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(name.to_ascii_lowercase()),
            false => Cow::Borrowed(*name),
        };
        if !ignored_header(&name) {
            pairs.push((name, value.trim_matches([' ', '\t', '\n', '\r'])));
        }
    }
    let order = stable_order(pairs.len(), |i| pairs[i].0.as_ref());
    let mut hasher = Sha256::new();
    hasher.update(HEADERS_LABEL);
    hasher.update(&(pairs.len() as u64).to_be_bytes());
    for (name, value) in order.into_iter().map(|i| &pairs[i]) {
        field(&mut hasher, name.as_bytes());
        field(&mut hasher, value.as_bytes());
    }
    hasher.finish()
}

/// `text` as canonical JSON, or `None` if it is not JSON.
///
/// - Object members are sorted by key in Rust string order (UTF-8 bytes, i.e. code points; RFC 8785
///   sorts by UTF-16 code units, which differs only between astral characters and U+E000..U+FFFF).
///   The sort is stable: duplicate keys stay, in source order, since servers disagree on which one
///   wins.
/// - No whitespace outside strings.
/// - Numbers are kept exactly as written (`1` and `1.0` stay different).
/// - Strings are re-escaped minimally: `"` and `\` and the control characters U+0000..U+001F only
///   (`\b \f \n \r \t` in short form, the others as `\u00xx`, lowercase); everything else, `/` and
///   non-ASCII included, is written as itself. So `"\u00e9"` and `"é"` canonicalize the same.
///
/// A document with an unpaired surrogate escape (`"\ud800"`) gives `None`: the reader replaces it
/// with U+FFFD, which would make it collide with a document holding a real U+FFFD. It is then
/// hashed raw, like any non-JSON body. Documents nested deeper than the reader's limit also give
/// `None`.
pub fn canonical_json(text: &str) -> Option<String> {
    canonical(&Body::new(text))
}

/// [`canonical_json`] of a parsed body.
fn canonical(body: &Body) -> Option<String> {
    let value = body.json.as_ref()?;
    if has_lone_surrogate_escape(body.text) {
        return None;
    }
    let mut out = String::with_capacity(body.text.len());
    value.write_sorted(&mut out);
    Some(out)
}

/// Whether valid JSON `text` has a `\uD800..\uDFFF` escape that is not half of a
/// high-then-low pair of adjacent escapes.
fn has_lone_surrogate_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    // The previous escape was a high surrogate ending right at `at`.
    let mut high_pending = false;
    while let Some(offset) = bytes.get(at..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        if high_pending && offset > 0 {
            return true;
        }
        let escape = at + offset + 1;
        if bytes.get(escape) != Some(&b'u') {
            if high_pending {
                return true;
            }
            at = escape + 1;
            continue;
        }
        let code = text
            .get(escape + 1..escape + 5)
            .and_then(|digits| u32::from_str_radix(digits, 16).ok());
        let Some(code) = code else {
            // Not reachable for valid JSON; refuse to canonicalize rather than guess.
            return true;
        };
        at = escape + 5;
        match code {
            0xD800..=0xDBFF if !high_pending => high_pending = true,
            0xDC00..=0xDFFF if high_pending => high_pending = false,
            0xD800..=0xDFFF => return true,
            _ if high_pending => return true,
            _ => {}
        }
    }
    high_pending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Option<String> {
        canonical_json(text)
    }

    fn key(
        method: &str,
        url: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
        ns: &str,
    ) -> String {
        cache_key(&KeyParts {
            method,
            url,
            body: body.map(Body::new).as_ref(),
            headers,
            namespace: ns,
        })
    }

    #[test]
    fn canonical_form() {
        assert_eq!(
            canon(r#" { "b" : [ 1 , 2.50, -0, 1E3 ] , "a" : { "z" : null , "y" : true } } "#)
                .as_deref(),
            Some(r#"{"a":{"y":true,"z":null},"b":[1,2.50,-0,1E3]}"#)
        );
        assert_eq!(canon("\"x\"").as_deref(), Some("\"x\""));
        assert_eq!(canon("  false ").as_deref(), Some("false"));
        assert_eq!(canon("{}").as_deref(), Some("{}"));
        assert_eq!(canon("[ ]").as_deref(), Some("[]"));
        for not_json in ["", "hello", "{\"a\":1", "{'a':1}", "[1,]", "1 2"] {
            assert_eq!(canon(not_json), None, "{not_json:?}");
        }
    }

    #[test]
    fn keys_sort_by_code_point_and_duplicates_stay_in_order() {
        assert_eq!(
            canon(r#"{"é":1,"z":2,"Z":3,"a":{"b":1,"a":2},"a":0}"#).as_deref(),
            Some(r#"{"Z":3,"a":{"a":2,"b":1},"a":0,"z":2,"é":1}"#)
        );
        assert_ne!(canon(r#"{"a":1,"a":2}"#), canon(r#"{"a":2,"a":1}"#));
    }

    #[test]
    fn strings_are_reescaped_one_way() {
        assert_eq!(canon(r#""\u00e9""#), canon("\"é\""));
        assert_eq!(canon(r#""\u00E9""#).as_deref(), Some("\"é\""));
        assert_eq!(canon(r#""\/\ud83d\ude00""#).as_deref(), Some("\"/😀\""));
        assert_eq!(
            canon(r#""\u0000\u0001\b\f\n\r\t\u001F\u007f\"\\""#).as_deref(),
            Some("\"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\u{7f}\\\"\\\\\"")
        );
        assert_eq!(canon(r#""\u0008""#).as_deref(), Some(r#""\b""#));
        // Canonical output is a fixed point.
        let once = canon(r#"{"k":"a\u0002\"b\\c\n","\u00e9":[1.0]}"#).unwrap_or_default();
        assert_eq!(canon(&once).as_deref(), Some(once.as_str()));
    }

    #[test]
    fn lone_surrogates_are_not_canonicalized() {
        for lone in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\n""#,
            r#""\ud800\ud800\udc00""#,
            r#"["\ud800","\udc00"]"#,
            r#""\udc00\ud800""#,
        ] {
            assert_eq!(canon(lone), None, "{lone}");
        }
        assert_eq!(
            canon(r#""\ud83d\ude00\\ud800""#).as_deref(),
            Some(r#""😀\\ud800""#)
        );
        // Raw-hashed, so it does not collide with a real U+FFFD.
        assert_ne!(
            key("POST", "u", Some(r#""\ud800""#), &[], ""),
            key("POST", "u", Some("\"\u{FFFD}\""), &[], "")
        );
    }

    #[test]
    fn surrogate_scan_is_total() {
        // Only ever called on valid JSON, but must not panic on anything else.
        for (text, lone) in [
            ("plain", false),
            ("\\", false),
            ("x\\", false),
            ("\\u", true),
            ("\\u12", true),
            ("\\ud8", true),
            ("\\ud800\\", true),
        ] {
            assert_eq!(has_lone_surrogate_escape(text), lone, "{text}");
        }
    }

    #[test]
    fn key_ignores_json_layout_and_header_spelling() {
        let creds = [("Authorization", "Bearer sk-1"), ("X-Api-Key", "k")];
        let a = key(
            "POST",
            "https://x/v1",
            Some(r#"{"a":1,"b":2}"#),
            &creds,
            "n",
        );
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let swapped = [("x-api-key", "k"), ("AUTHORIZATION", "Bearer sk-1")];
        let b = key(
            "post",
            "https://x/v1",
            Some("{ \"b\": 2,\n \"a\": 1 }"),
            &swapped,
            "n",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn every_part_counts() {
        let creds = [("authorization", "Bearer sk-1")];
        let body = Some(r#"{"model":"m","temperature":0}"#);
        let base = key("POST", "https://x/v1", body, &creds, "n");
        let variants = [
            key("GET", "https://x/v1", body, &creds, "n"),
            key("POST", "https://x/v2", body, &creds, "n"),
            key(
                "POST",
                "https://x/v1",
                Some(r#"{"model":"m","temperature":1}"#),
                &creds,
                "n",
            ),
            key(
                "POST",
                "https://x/v1",
                Some(r#"{"model":"m","temperature":0.0}"#),
                &creds,
                "n",
            ),
            key("POST", "https://x/v1", None, &creds, "n"),
            key(
                "POST",
                "https://x/v1",
                body,
                &[("authorization", "Bearer sk-2")],
                "n",
            ),
            key(
                "POST",
                "https://x/v1",
                body,
                &[("x-api-key", "Bearer sk-1")],
                "n",
            ),
            key("POST", "https://x/v1", body, &[], "n"),
            key("POST", "https://x/v1", body, &creds, "m"),
            key("POST", "https://x/v1", body, &creds, ""),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(&base, v, "variant {i}");
        }
        // Raw bodies too.
        assert_ne!(
            key("POST", "u", Some("a=1"), &[], ""),
            key("POST", "u", Some("a=2"), &[], "")
        );
        assert_ne!(
            key("POST", "u", Some(""), &[], ""),
            key("POST", "u", None, &[], "")
        );
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        assert_ne!(
            key("GE", "Tu", None, &[], ""),
            key("GET", "u", None, &[], "")
        );
        assert_ne!(
            key("GET", "ab", None, &[], ""),
            key("GET", "a", None, &[], "b")
        );
        assert_ne!(
            key("GET", "u", None, &[("a", "bc")], ""),
            key("GET", "u", None, &[("ab", "c")], "")
        );
        assert_ne!(
            key("GET", "u", None, &[("a", ""), ("b", "")], ""),
            key("GET", "u", None, &[("a", "b")], "")
        );
        // Repeated values of one header keep their order; distinct headers do not.
        assert_ne!(
            key("GET", "u", None, &[("a", "1"), ("a", "2")], ""),
            key("GET", "u", None, &[("a", "2"), ("a", "1")], "")
        );
        assert_eq!(
            key("GET", "u", None, &[("a", "1"), ("b", "2")], ""),
            key("GET", "u", None, &[("B", "2"), ("a", "1")], "")
        );
    }

    #[test]
    fn embedding_keys_partition_by_everything_but_header_spelling() {
        let ek = |text, model, dimensions, url, headers: &[(&str, &str)], namespace| {
            embedding_key(&EmbeddingKeyParts {
                text,
                model,
                dimensions,
                url,
                headers,
                namespace,
            })
        };
        let creds = [("authorization", "Bearer sk-1")];
        let base = ek("hello", "m", None, "u", &creds, "n");
        assert_eq!(base.len(), 64);
        assert_eq!(
            base,
            ek(
                "hello",
                "m",
                None,
                "u",
                &[("Authorization", " Bearer sk-1")],
                "n"
            )
        );
        let variants = [
            ek("hello ", "m", None, "u", &creds, "n"),
            ek("hello", "m2", None, "u", &creds, "n"),
            ek("hello", "m", Some(256), "u", &creds, "n"),
            ek("hello", "m", None, "v", &creds, "n"),
            ek(
                "hello",
                "m",
                None,
                "u",
                &[("authorization", "Bearer sk-2")],
                "n",
            ),
            ek("hello", "m", None, "u", &[], "n"),
            ek("hello", "m", None, "u", &creds, ""),
            ek("hellom", "", None, "u", &creds, "n"),
            key("POST", "u", Some("hello"), &creds, "n"),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(&base, v, "variant {i}");
        }
        assert_ne!(
            ek("a", "m", Some(0), "u", &[], ""),
            ek("a", "m", None, "u", &[], "")
        );
    }

    #[test]
    fn debug_hides_credential_values() {
        let parts = KeyParts {
            method: "GET",
            url: "u",
            body: None,
            headers: &[("authorization", "Bearer sk-secret")],
            namespace: "",
        };
        let shown = format!("{parts:?}");
        assert!(
            shown.contains("authorization") && !shown.contains("sk-secret"),
            "{shown}"
        );
    }
}
