//! The in-memory store: bounded in entries and in bytes, least recently used out first.
//!
//! Time is an argument. The core has no clock (`std::time` panics on wasm32), so every call takes
//! `now_ms`, wall-clock milliseconds like the entry's own timestamps; tests drive it with plain
//! numbers.
//!
//! An entry has two deadlines. Before `fresh_until_ms` it answers requests directly
//! ([`Freshness::Fresh`]); between that and `stale_until_ms` it is [`Freshness::Stale`], kept only
//! to answer when the upstream fails (stale-if-error); from `stale_until_ms` on it is dead and is
//! dropped as soon as it is seen. "Seen" is cheap: [`MemoryStore::get`] drops the one entry it
//! finds dead, and [`MemoryStore::put`] drops every dead entry before evicting any live one, so a
//! store full of expired answers never pushes out a fresh one.
//!
//! No operation scans the store. A hash map holds the entries; an index from a recency stamp (a
//! counter bumped on every use) to key gives the least recently used entry first; a second index
//! from `(stale_until_ms, id)` to key gives the first entry to die first (both [`OrderedKeys`]:
//! O(log n) amortised, and a `put` whose deadline is not the latest shifts the later ones).
//! Dropping dead entries at `put` costs O(log n) per entry dropped, and each entry dies once.
//!
//! Bounds are kept exactly: after every call, `len() <= max_entries` and `bytes() <= max_bytes`,
//! where `bytes()` is the sum of [`Entry::size`] over the entries held. An entry that could never
//! fit (larger than `max_bytes` alone) is refused up front rather than emptying the store for
//! nothing.

use crate::core::ordered_keys::OrderedKeys;
use crate::core::string_map::StringMap;
use std::fmt;

/// Bytes counted for an entry on top of its body and header text: the bookkeeping around it.
pub const ENTRY_OVERHEAD: usize = 64;

/// A stored response. Times are wall-clock milliseconds; `stale_until_ms >= fresh_until_ms`
/// (a smaller value is read as `fresh_until_ms` when stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The HTTP status.
    pub status: u16,
    /// The headers to replay, as filtered by [`storable_headers`](super::storable_headers).
    pub headers: Vec<(String, String)>,
    /// The (decoded) body.
    pub body: Vec<u8>,
    /// When the response was stored.
    pub stored_at_ms: u64,
    /// Until when (exclusive) the entry answers requests directly.
    pub fresh_until_ms: u64,
    /// Until when (exclusive) the entry may answer on an upstream error.
    pub stale_until_ms: u64,
}

impl Entry {
    /// The bytes this entry counts against a store's `max_bytes`: body, header names and values,
    /// and [`ENTRY_OVERHEAD`].
    pub fn size(&self) -> usize {
        self.headers.iter().fold(
            ENTRY_OVERHEAD.saturating_add(self.body.len()),
            |n, (k, v)| n.saturating_add(k.len()).saturating_add(v.len()),
        )
    }
}

/// How usable a live entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Before `fresh_until_ms`: serve it.
    Fresh,
    /// Past `fresh_until_ms` but before `stale_until_ms`: servable only on upstream error.
    Stale,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    size: usize,
    /// Key in `recency`.
    stamp: u64,
    /// Key in `expiry`: `(stale_until_ms, id)`.
    expiry: (u64, u64),
}

/// A bounded in-memory cache of [`Entry`]s by key (see the module doc).
pub struct MemoryStore {
    max_entries: usize,
    /// `usize::MAX` when unbounded.
    max_bytes: usize,
    bytes: usize,
    slots: StringMap<Slot>,
    /// Recency stamp -> key, least recently used first.
    recency: OrderedKeys<u64>,
    /// `(stale_until_ms, id)` -> key, first to die first.
    expiry: OrderedKeys<(u64, u64)>,
    tick: u64,
}

/// Shows sizes and bounds, not the cached responses.
impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.slots.len())
            .field("bytes", &self.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store holding at most `max_entries` entries (0: it stores nothing) and at most
    /// `max_bytes` bytes ([`Entry::size`]; 0 or `usize::MAX`: unbounded).
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        MemoryStore {
            max_entries,
            max_bytes: if max_bytes == 0 {
                usize::MAX
            } else {
                max_bytes
            },
            bytes: 0,
            slots: StringMap::new(),
            recency: OrderedKeys::new(),
            expiry: OrderedKeys::new(),
            tick: 0,
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        self.tick
    }

    /// The entry of `key` and how fresh it is at `now_ms`, marking it recently used. An entry past
    /// `stale_until_ms` is removed and `None` returned.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<(&Entry, Freshness)> {
        if now_ms >= self.slots.get(key)?.entry.stale_until_ms {
            self.delete(key);
            return None;
        }
        let stamp = self.next_tick();
        let slot = self.slots.get_mut(key)?;
        let previous = std::mem::replace(&mut slot.stamp, stamp);
        if let Some(k) = self.recency.remove(&previous) {
            self.recency.insert(stamp, k);
        }
        let freshness = if now_ms < slot.entry.fresh_until_ms {
            Freshness::Fresh
        } else {
            Freshness::Stale
        };
        Some((&slot.entry, freshness))
    }

    /// The entry of `key` and how fresh it is at `now_ms`, without marking it used or removing it;
    /// `None` if absent or past `stale_until_ms`.
    pub fn peek(&self, key: &str, now_ms: u64) -> Option<(&Entry, Freshness)> {
        let entry = &self.slots.get(key)?.entry;
        if now_ms >= entry.stale_until_ms {
            None
        } else if now_ms < entry.fresh_until_ms {
            Some((entry, Freshness::Fresh))
        } else {
            Some((entry, Freshness::Stale))
        }
    }

    /// Whether an entry is held for `key`, dead or alive (dead ones go at the next `get` or `put`).
    /// Does not mark it used.
    pub fn contains(&self, key: &str) -> bool {
        self.slots.contains_key(key)
    }

    /// Stores `entry` under `key`, replacing any entry there, and marks it most recently used.
    /// Dead entries go first, then the least recently used ones, until both bounds hold.
    ///
    /// Returns `false`, changing nothing (an older entry under `key` stays), when the entry cannot
    /// be kept: it alone exceeds `max_bytes`, `max_entries` is 0, or it is already dead at `now_ms`.
    pub fn put(&mut self, key: String, mut entry: Entry, now_ms: u64) -> bool {
        entry.stale_until_ms = entry.stale_until_ms.max(entry.fresh_until_ms);
        let size = entry.size();
        if self.max_entries == 0 || size > self.max_bytes || now_ms >= entry.stale_until_ms {
            return false;
        }
        self.delete(&key);
        while self
            .expiry
            .first()
            .is_some_and(|(until, _)| *until <= now_ms)
        {
            if let Some(dead) = self.expiry.pop_first() {
                self.remove_slot(&dead);
            }
        }
        while self.slots.len() >= self.max_entries
            || self.bytes.saturating_add(size) > self.max_bytes
        {
            let Some(oldest) = self.recency.pop_first() else {
                break;
            };
            self.remove_slot(&oldest);
        }
        let stamp = self.next_tick();
        let expiry = (entry.stale_until_ms, stamp);
        self.recency.insert(stamp, key.clone());
        self.expiry.insert(expiry, key.clone());
        self.bytes = self.bytes.saturating_add(size);
        self.slots.insert(
            key,
            Slot {
                entry,
                size,
                stamp,
                expiry,
            },
        );
        true
    }

    /// Removes the entry of `key`, if any.
    pub fn delete(&mut self, key: &str) {
        self.remove_slot(key);
    }

    /// Removes the slot of `key` from every index.
    fn remove_slot(&mut self, key: &str) {
        if let Some(slot) = self.slots.remove(key) {
            self.recency.remove(&slot.stamp);
            self.expiry.remove(&slot.expiry);
            self.bytes = self.bytes.saturating_sub(slot.size);
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.recency.clear();
        self.expiry.clear();
        self.bytes = 0;
    }

    /// Number of entries held (dead ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sum of [`Entry::size`] over the entries held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of exactly `size` bytes, fresh until `fresh`, stale until `stale`.
    fn entry(size: usize, fresh: u64, stale: u64) -> Entry {
        Entry {
            status: 200,
            headers: Vec::new(),
            body: vec![b'x'; size.saturating_sub(ENTRY_OVERHEAD)],
            stored_at_ms: 0,
            fresh_until_ms: fresh,
            stale_until_ms: stale,
        }
    }

    #[test]
    fn size_counts_body_headers_and_overhead() {
        let e = Entry {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"hello".to_vec(),
            stored_at_ms: 0,
            fresh_until_ms: 0,
            stale_until_ms: 0,
        };
        assert_eq!(e.size(), 5 + 12 + 10 + ENTRY_OVERHEAD);
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let mut s = MemoryStore::new(10, 0);
        assert!(s.put("k".into(), entry(100, 1000, 2000), 0));
        assert_eq!(s.get("k", 0).map(|(_, f)| f), Some(Freshness::Fresh));
        assert_eq!(s.get("k", 999).map(|(_, f)| f), Some(Freshness::Fresh));
        assert_eq!(s.get("k", 1000).map(|(_, f)| f), Some(Freshness::Stale));
        assert_eq!(s.peek("k", 1999).map(|(_, f)| f), Some(Freshness::Stale));
        assert_eq!(s.peek("k", 2000), None);
        assert!(s.contains("k"));
        assert_eq!(s.get("k", 2000), None);
        assert!(!s.contains("k"));
        assert_eq!((s.len(), s.bytes()), (0, 0));
    }

    #[test]
    fn stale_until_below_fresh_until_is_raised() {
        let mut s = MemoryStore::new(10, 0);
        assert!(s.put("k".into(), entry(100, 1000, 10), 0));
        assert_eq!(s.get("k", 999).map(|(e, _)| e.stale_until_ms), Some(1000));
        assert_eq!(s.get("k", 1000), None);
    }

    #[test]
    fn dead_or_impossible_entries_are_refused() {
        let mut s = MemoryStore::new(10, 0);
        assert!(s.put("k".into(), entry(100, 10, 20), 0));
        assert!(!s.put("k".into(), entry(100, 5, 5), 5));
        assert!(s.contains("k"));
        let mut none = MemoryStore::new(0, 0);
        assert!(!none.put("k".into(), entry(100, 10, 20), 0));
        assert!(none.is_empty());
    }

    #[test]
    fn lru_by_use() {
        let mut s = MemoryStore::new(3, 0);
        for k in ["a", "b", "c"] {
            assert!(s.put(k.into(), entry(100, 1000, 1000), 0));
        }
        // Using "a" makes "b" the least recently used; peek and contains do not count as use.
        assert!(s.get("a", 1).is_some());
        assert!(s.peek("b", 1).is_some() && s.contains("b"));
        assert!(s.put("d".into(), entry(100, 1000, 1000), 2));
        assert!(!s.contains("b"));
        assert!(s.put("e".into(), entry(100, 1000, 1000), 3));
        assert!(!s.contains("c"));
        assert!(s.contains("a") && s.contains("d") && s.contains("e"));
        assert_eq!((s.len(), s.bytes()), (3, 300));
    }

    #[test]
    fn dead_entries_go_before_live_ones() {
        let mut s = MemoryStore::new(3, 0);
        assert!(s.put("old".into(), entry(100, 1000, 1000), 0));
        assert!(s.put("short".into(), entry(100, 10, 50), 0));
        assert!(s.put("stale".into(), entry(100, 10, 1000), 0));
        // At 50, "short" is dead: it goes, though "old" is less recently used.
        assert!(s.put("new".into(), entry(100, 1000, 1000), 50));
        assert!(s.contains("old") && !s.contains("short"));
        // Stale entries are still alive: plain LRU applies to them.
        assert!(s.put("newer".into(), entry(100, 1000, 1000), 60));
        assert!(!s.contains("old") && s.contains("stale"));
    }

    #[test]
    fn byte_bound_and_oversized_entries() {
        let mut s = MemoryStore::new(100, 1000);
        for k in ["a", "b", "c", "d"] {
            assert!(s.put(k.into(), entry(250, 10, 10), 0));
        }
        assert_eq!(s.bytes(), 1000);
        // 600 bytes more: "a", "b" and "c" must go.
        assert!(s.put("big".into(), entry(600, 10, 10), 0));
        assert_eq!((s.len(), s.bytes()), (2, 850));
        assert!(s.contains("d") && s.contains("big"));
        // Larger than the whole store: refused, nothing evicted.
        assert!(!s.put("huge".into(), entry(1001, 10, 10), 0));
        assert_eq!((s.len(), s.bytes()), (2, 850));
        assert!(s.put("exact".into(), entry(1000, 10, 10), 0));
        assert_eq!((s.len(), s.bytes()), (1, 1000));
    }

    #[test]
    fn replacing_a_key_updates_bytes_exactly() {
        let mut s = MemoryStore::new(2, 1000);
        assert!(s.put("a".into(), entry(300, 10, 10), 0));
        assert!(s.put("b".into(), entry(300, 10, 10), 0));
        assert!(s.put("a".into(), entry(700, 10, 10), 0));
        // The old "a" no longer counts: 700 + 300 fits, nothing else is evicted.
        assert_eq!((s.len(), s.bytes()), (2, 1000));
        assert!(s.put("a".into(), entry(100, 10, 10), 0));
        assert_eq!((s.len(), s.bytes()), (2, 400));
        assert_eq!(s.get("a", 0).map(|(e, _)| e.size()), Some(100));
        s.delete("a");
        s.delete("missing");
        assert_eq!((s.len(), s.bytes()), (1, 300));
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        assert!(s.put("a".into(), entry(300, 10, 10), 0));
        assert_eq!((s.len(), s.bytes()), (1, 300));
    }

    #[test]
    fn debug_shows_no_bodies() {
        let mut s = MemoryStore::new(2, usize::MAX);
        assert!(s.put("a".into(), entry(100, 10, 10), 0));
        let shown = format!("{s:?}");
        assert!(
            shown.contains("len: 1") && !shown.contains("xxx"),
            "{shown}"
        );
    }
}
