//! Substring search for the few short texts the client scans: a content type, a URL's scheme
//! separator, an upstream error message.
//!
//! Why not `str::find(&str)` or `str::contains(&str)`? The standard library's Two-Way searcher adds
//! some 2.5 KB to the wasm, and a plain scan is as fast on texts this short.

/// The byte offset of the first `needle` in `haystack`.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &str, needle: &str) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_str_find() {
        for (haystack, needle) in [
            ("https://a.example/x://y", "://"),
            ("application/json; charset=utf-8", "json"),
            ("text/event-stream", "text/event-stream"),
            ("text/event", "text/event-stream"),
            ("ééjson", "json"),
            ("", "x"),
            ("abc", ""),
            ("", ""),
        ] {
            assert_eq!(
                find(haystack, needle),
                haystack.find(needle),
                "{haystack:?} {needle:?}"
            );
            assert_eq!(contains(haystack, needle), haystack.contains(needle));
        }
    }
}
