//! A hash map from `String` keys whose hash table is compiled once, whatever the value type.
//!
//! Why? Each `HashMap<String, V>` instantiates hashbrown's table code again for its `V` (measured:
//! some 0.7 KB of gzipped wasm per map type). Here the table always maps a key to a `usize`, the
//! index of the value's slot in a `Vec`; a removed value's slot is reused by the next insertion.
//!
//! Keys are hashed with [`WordHasher`] rather than std's SipHash: on wasm32-unknown-unknown std has
//! no entropy and seeds SipHash from two addresses, so its keys are predictable there anyway, and
//! the multiply-rotate hash is smaller and faster.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash over 8-byte words (as rustc's `FxHasher`), with a final mix that carries
/// the well-mixed high bits down to the bucket index.
#[derive(Default)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        self.add(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    fn finish(&self) -> u64 {
        let h = (self.0 ^ (self.0 >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 32)
    }
}

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0xf135_7aea_2e62_a9c5)
            .rotate_left(5);
    }
}

/// Values by `String` key (see the module doc).
#[derive(Debug)]
pub struct StringMap<V> {
    index: HashMap<String, usize, BuildHasherDefault<WordHasher>>,
    /// `None` for the slots listed in `free`.
    slots: Vec<Option<V>>,
    free: Vec<usize>,
}

impl<V> Default for StringMap<V> {
    fn default() -> Self {
        StringMap {
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<V> StringMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        StringMap::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.slots[*self.index.get(key)?].as_ref()
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.slots[*self.index.get(key)?].as_mut()
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key`, inserting `default()` first if absent.
    pub fn get_or_insert_with(&mut self, key: &str, default: impl FnOnce() -> V) -> &mut V {
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => {
                let at = self.vacant_slot();
                self.index.insert(key.to_owned(), at);
                at
            }
        };
        self.slots[at].get_or_insert_with(default)
    }

    /// Sets the value of `key`.
    pub fn insert(&mut self, key: String, value: V) {
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None => {
                let at = self.vacant_slot();
                self.index.insert(key, at);
                at
            }
        };
        self.slots[at] = Some(value);
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let at = self.index.remove(key)?;
        self.free.push(at);
        self.slots[at].take()
    }

    /// Keeps only the values for which `keep` returns `true` (it may change them).
    pub fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        let (slots, free) = (&mut self.slots, &mut self.free);
        self.index.retain(|_, &mut at| {
            let kept = slots[at].as_mut().is_some_and(&mut keep);
            if !kept {
                slots[at] = None;
                free.push(at);
            }
            kept
        });
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }

    /// The values, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().flatten()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// A free slot's index, the slots growing by one if none is free.
    fn vacant_slot(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn word_hasher_spreads_similar_keys() {
        let build = BuildHasherDefault::<WordHasher>::default();
        let hashes: Vec<u64> = (0..10_000)
            .map(|i| build.hash_one(format!("https://api.example/v1/user-{i}")))
            .collect();
        let mut distinct = hashes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), hashes.len());
        // hashbrown indexes buckets by the low bits: 10,000 keys in 1,024 buckets average ~10.
        let mut buckets = [0u32; 1024];
        for h in &hashes {
            buckets[(h & 1023) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n < 30), "{buckets:?}");
        assert_ne!(build.hash_one("ab"), build.hash_one("ab\0"));
    }

    #[test]
    fn behaves_like_a_hash_map_and_reuses_slots() {
        let mut m = StringMap::new();
        m.insert("a".to_string(), 1);
        m.insert("b".to_string(), 2);
        m.insert("a".to_string(), 10);
        *m.get_or_insert_with("c", || 0) += 3;
        *m.get_or_insert_with("c", || 0) += 3;
        *m.get_mut("b").unwrap() += 1;
        assert_eq!(
            (m.get("a"), m.get("b"), m.get("c")),
            (Some(&10), Some(&3), Some(&6))
        );
        assert_eq!((m.len(), m.contains_key("b"), m.get("d")), (3, true, None));
        assert_eq!(m.remove("b"), Some(3));
        assert_eq!(m.remove("b"), None);
        m.insert("d".to_string(), 5);
        assert_eq!(m.slots.len(), 3, "the freed slot is reused");
        m.retain(|v| {
            *v += 1;
            *v % 2 == 1
        });
        assert_eq!(
            (m.get("a"), m.get("c"), m.get("d")),
            (Some(&11), Some(&7), None)
        );
        assert_eq!(m.free.len(), 1);
        m.clear();
        assert!(m.is_empty() && m.get("a").is_none());
    }
}
