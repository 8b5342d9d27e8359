//! Substring search and joining for the few short texts the client handles: a content type, a
//! URL's scheme separator, an upstream error message, lists in error messages.
//!
//! Why not `str::find(&str)`, `str::contains(&str)` and `[&str]::join`? The standard library's
//! Two-Way searcher adds some 2.5 KB to the wasm and its join 1 KB, where plain loops do on texts
//! this short.

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

/// `parts` with `separator` between each two.
pub fn join(parts: &[&str], separator: &str) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(part);
    }
    out
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

    #[test]
    fn joins_like_slice_join() {
        for parts in [&[][..], &["a"], &["a", "", "bc"]] {
            assert_eq!(join(parts, ", "), parts.join(", "));
        }
    }
}
