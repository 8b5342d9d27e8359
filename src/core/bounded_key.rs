//! Keys that callers choose (user ids, rate-limit keys) or that come from a URL (origins) are kept
//! for the life of a client, in maps bounded by count: each key is bounded in bytes too, or 10,000
//! keys of 16 KB would hold 320 MB.
//!
//! A key of up to [`MAX_KEY_BYTES`] bytes is kept as it is. A longer one is replaced by its first
//! 64 bytes (cut at a character boundary), `…sha256:` and the SHA-256 of the whole key in hex: at
//! most 138 bytes, still readable in `stats()` and `metrics()`, and two different keys never share
//! an entry (which, for a budget, would spend one user's allowance on another's calls). Such a
//! replacement is always longer than [`MAX_KEY_BYTES`], so no key kept as it is can equal one.

use crate::core::cache::{hex, sha256};
use std::borrow::Cow;

/// The longest key kept as it is.
pub const MAX_KEY_BYTES: usize = 128;

/// Bytes of a long key kept before its hash.
const PREFIX_BYTES: usize = 64;

/// `key`, or its bounded replacement (see the module doc).
pub fn bounded_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_BYTES {
        return Cow::Borrowed(key);
    }
    // `get` is `None` inside a character: at most 3 steps back to a boundary.
    let prefix = (0..=PREFIX_BYTES)
        .rev()
        .find_map(|cut| key.get(..cut))
        .unwrap_or_default();
    Cow::Owned(format!("{prefix}…sha256:{}", hex(&sha256(key.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_become_a_prefix_and_a_hash() {
        let short = "u".repeat(MAX_KEY_BYTES);
        assert_eq!(bounded_key(&short), short.as_str());
        let long = "é".repeat(8 * 1024);
        let bounded = bounded_key(&long);
        assert!(bounded.starts_with(&"é".repeat(32)));
        assert!(bounded.len() > MAX_KEY_BYTES && bounded.len() <= 138);
        let other = format!("{}x", &long[..long.len() - 2]);
        assert_ne!(bounded, bounded_key(&other), "same prefix, different keys");
        // A key cut inside a character keeps whole characters: 21 × 3 bytes, not 64.
        let cjk = "語".repeat(100);
        assert!(bounded_key(&cjk).starts_with(&format!("{}…", "語".repeat(21))));
        assert!(bounded_key(&cjk).len() > MAX_KEY_BYTES);
    }
}
