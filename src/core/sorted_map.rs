//! A map kept as a sorted `Vec` of pairs: binary search, iteration in key order.
//!
//! Why not `BTreeMap`? Each of its instantiations adds some 7 KB of code to the wasm, and the maps
//! that need key order here (breakers by origin, spend by model and user, probes by id) are small or
//! grow slowly: a lookup is a binary search, and only inserting a new key (or dropping one) shifts
//! the pairs after it, a `memmove`.

use std::borrow::Borrow;

/// Keys sorted, each once, and their values.
#[derive(Debug, Clone)]
pub struct SortedMap<K, V> {
    /// Apart from the values, so that the binary search is compiled once per key type, not once
    /// per map.
    keys: Vec<K>,
    values: Vec<V>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

/// Where `key` is (`Ok`) or would go (`Err`) in `keys`.
fn find<K: Borrow<Q>, Q: Ord + ?Sized>(keys: &[K], key: &Q) -> Result<usize, usize> {
    keys.binary_search_by(|k| k.borrow().cmp(key))
}

impl<K: Ord, V> SortedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        SortedMap::default()
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let i = find(&self.keys, key).ok()?;
        Some(&self.values[i])
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = find(&self.keys, key).ok()?;
        Some(&mut self.values[i])
    }

    /// The value of `key`, inserting `default()` first if absent.
    pub fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        let i = match find(&self.keys, &key) {
            Ok(i) => i,
            Err(i) => {
                self.keys.insert(i, key);
                self.values.insert(i, default());
                i
            }
        };
        &mut self.values[i]
    }

    /// Sets the value of `key`.
    pub fn insert(&mut self, key: K, value: V) {
        match find(&self.keys, &key) {
            Ok(i) => self.values[i] = value,
            Err(i) => {
                self.keys.insert(i, key);
                self.values.insert(i, value);
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = find(&self.keys, key).ok()?;
        self.keys.remove(i);
        Some(self.values.remove(i))
    }

    /// Removes the smallest key.
    pub fn pop_first(&mut self) {
        if !self.keys.is_empty() {
            self.keys.remove(0);
            self.values.remove(0);
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.keys.iter().zip(&self.values)
    }

    /// The pairs in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.keys.iter().zip(&mut self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_unique() {
        let mut m = SortedMap::new();
        for (k, v) in [("b", 2), ("a", 1), ("c", 3), ("b", 20)] {
            m.insert(k.to_string(), v);
        }
        let pairs: Vec<(&str, i32)> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(pairs, [("a", 1), ("b", 20), ("c", 3)]);
        assert_eq!(m.get("c"), Some(&3));
        assert_eq!(m.get("d"), None);
        *m.get_mut("a").unwrap() += 10;
        *m.get_or_insert_with("d".to_string(), || 0) += 4;
        *m.get_or_insert_with("d".to_string(), || 0) += 4;
        for (_, v) in m.iter_mut() {
            *v += 1;
        }
        assert_eq!(m.remove("b"), Some(21));
        assert_eq!(m.remove("b"), None);
        m.pop_first();
        let pairs: Vec<(&str, i32)> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(pairs, [("c", 4), ("d", 9)]);
        assert_eq!(m.len(), 2);
        m.pop_first();
        m.pop_first();
        m.pop_first();
        assert!(m.is_empty());
    }
}
