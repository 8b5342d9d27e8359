//! String keys ordered by a stamp, first stamp first: the recency index of an LRU map (the stamp is
//! a tick that only grows), or the expiry index of a cache (the stamp is a deadline).
//!
//! Why not a `BTreeMap<stamp, String>`? Each of its instantiations adds some 7 KB of code to the
//! wasm, and these indexes need little of it. Keys live in a `Vec` sorted by stamp, so lookups are
//! binary searches, and a growing tick always inserts at the end. Removing a key leaves a tombstone
//! instead of shifting the tail, so marking an entry of a large cache as used stays O(log n);
//! tombstones are swept once they outnumber the live keys (amortised O(1) per removal).

/// Keys by distinct stamps (see the module doc).
#[derive(Debug, Clone)]
pub struct OrderedKeys<S> {
    /// Sorted by stamp; `None` is a removed key. Everything before `head` is removed, and
    /// `items[head]`, if any, is live.
    items: Vec<(S, Option<String>)>,
    head: usize,
    live: usize,
}

impl<S> Default for OrderedKeys<S> {
    fn default() -> Self {
        OrderedKeys {
            items: Vec::new(),
            head: 0,
            live: 0,
        }
    }
}

impl<S: Ord + Copy> OrderedKeys<S> {
    /// An empty index.
    pub fn new() -> Self {
        OrderedKeys::default()
    }

    /// Adds `key` at `stamp`, which no key holds yet. O(log n), plus a shift of the keys stamped
    /// later (none when stamps grow).
    pub fn insert(&mut self, stamp: S, key: String) {
        let at = self.head + self.items[self.head..].partition_point(|(s, _)| *s < stamp);
        self.items.insert(at, (stamp, Some(key)));
        self.live += 1;
    }

    /// Removes the key at `stamp`, if any, and returns it.
    pub fn remove(&mut self, stamp: &S) -> Option<String> {
        let at = self.items[self.head..]
            .binary_search_by(|(s, _)| s.cmp(stamp))
            .ok()?;
        self.take(self.head + at)
    }

    /// The first stamp.
    pub fn first(&self) -> Option<&S> {
        self.items.get(self.head).map(|(s, _)| s)
    }

    /// Removes the key with the first stamp, if any, and returns it.
    pub fn pop_first(&mut self) -> Option<String> {
        self.take(self.head)
    }

    /// The keys, first stamp first.
    pub fn iter(&self) -> impl Iterator<Item = (&S, &str)> {
        self.items[self.head..]
            .iter()
            .filter_map(|(s, k)| Some((s, k.as_deref()?)))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
        self.live = 0;
    }

    /// Tombstones `items[at]`, then restores the invariants.
    fn take(&mut self, at: usize) -> Option<String> {
        let key = self.items.get_mut(at)?.1.take()?;
        self.live -= 1;
        while self.items.get(self.head).is_some_and(|(_, k)| k.is_none()) {
            self.head += 1;
        }
        if self.items.len() > 2 * self.live + 16 {
            self.items.retain(|(_, k)| k.is_some());
            self.head = 0;
        }
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(index: &OrderedKeys<u64>) -> Vec<(u64, &str)> {
        index.items[index.head..]
            .iter()
            .filter_map(|(s, k)| Some((*s, k.as_deref()?)))
            .collect()
    }

    #[test]
    fn first_stamp_first_whatever_the_insertion_order() {
        let mut index = OrderedKeys::new();
        for (stamp, key) in [(5, "e"), (1, "a"), (3, "c"), (9, "i")] {
            index.insert(stamp, key.to_string());
        }
        assert_eq!(keys(&index), [(1, "a"), (3, "c"), (5, "e"), (9, "i")]);
        assert_eq!(index.remove(&3).as_deref(), Some("c"));
        assert_eq!(index.remove(&3), None);
        assert_eq!(index.remove(&4), None);
        assert_eq!(index.first(), Some(&1));
        assert_eq!(index.pop_first().as_deref(), Some("a"));
        // Below every stamp left, though removed stamps lie before it.
        index.insert(2, "b".to_string());
        assert_eq!(keys(&index), [(2, "b"), (5, "e"), (9, "i")]);
        assert_eq!((index.first(), index.len()), (Some(&2), 3));
        index.clear();
        assert!(index.is_empty() && index.first().is_none() && index.pop_first().is_none());
    }

    #[test]
    fn touching_keys_sweeps_tombstones() {
        // An LRU of 3 keys touched 1000 times: the index stays small and in order.
        let mut index = OrderedKeys::new();
        let mut stamps = [0, 1, 2];
        for (i, stamp) in stamps.iter().enumerate() {
            index.insert(*stamp, i.to_string());
        }
        for tick in 3..1003 {
            let which = (tick * 7 % 3) as usize;
            let key = index.remove(&stamps[which]).unwrap();
            index.insert(tick, key);
            stamps[which] = tick;
            assert!(index.items.len() <= 2 * 3 + 16);
        }
        assert_eq!(index.len(), 3);
        let mut expected: Vec<(u64, String)> = stamps
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i.to_string()))
            .collect();
        expected.sort();
        let got: Vec<(u64, String)> = keys(&index)
            .into_iter()
            .map(|(s, k)| (s, k.to_string()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(index.pop_first(), Some(expected[0].1.clone()));
    }
}
