//! The breakers of a client, one per key (an origin), bounded in number and in bytes.
//!
//! A client that calls many origins (a crawler, a proxy) would otherwise keep a breaker for each
//! one forever. At most [`MAX_BREAKERS`] are kept, each under its [`bounded_key`]. To make room, the
//! least recently used breaker that is closed with no failure counted goes first (it is the same as
//! a new one: nothing is lost); failing that, the least recently used closed one (its failures are
//! forgotten); only when every breaker kept is open or half-open does the least recently used of
//! those go, and with it an outage it remembered: that origin's next call goes through, and its
//! failures open the breaker again.

use crate::core::bounded_key::bounded_key;
use crate::core::breaker::{Breaker, BreakerConfig, StateKind};
use crate::core::ordered_keys::OrderedKeys;
use crate::core::sorted_map::SortedMap;

/// Most breakers kept (see the module doc).
pub const MAX_BREAKERS: usize = 1_000;

/// A breaker and the state last reported in an event: transitions such as open -> half-open happen
/// lazily inside the breaker, so the pipeline notices them by comparing.
#[derive(Debug)]
pub struct TrackedBreaker {
    /// The breaker.
    pub breaker: Breaker,
    reported: StateKind,
    /// When last used, in [`Breakers`] ticks.
    stamp: u64,
}

impl TrackedBreaker {
    /// The transition since the last report, if any.
    pub fn observe(&mut self, now_ms: u64) -> Option<(StateKind, StateKind)> {
        let current = self.breaker.state(now_ms);
        let from = std::mem::replace(&mut self.reported, current);
        (from != current).then_some((from, current))
    }

    /// 0: the same as a new breaker; 1: closed, with failures counted; 2: open or half-open.
    fn keep_rank(&mut self, now_ms: u64) -> u8 {
        match self.breaker.state(now_ms) {
            StateKind::Closed if self.breaker.consecutive_failures() == 0 => 0,
            StateKind::Closed => 1,
            _ => 2,
        }
    }
}

/// Breakers by key, sorted by key for the reports (see the module doc).
#[derive(Debug, Default)]
pub struct Breakers {
    entries: SortedMap<String, TrackedBreaker>,
    recency: OrderedKeys<u64>,
    tick: u64,
    limit: usize,
}

impl Breakers {
    /// No breakers yet; at most [`MAX_BREAKERS`].
    pub fn new() -> Self {
        Breakers::with_limit(MAX_BREAKERS)
    }

    /// No breakers yet; at most `limit` (at least 1).
    pub fn with_limit(limit: usize) -> Self {
        Breakers {
            limit: limit.max(1),
            ..Breakers::default()
        }
    }

    /// The breaker of `key`, made closed from `cfg` if absent (room made first), and marked used.
    pub fn get_or_insert(
        &mut self,
        key: &str,
        cfg: &BreakerConfig,
        now_ms: u64,
    ) -> &mut TrackedBreaker {
        let key = bounded_key(key);
        self.tick += 1;
        let stamp = self.tick;
        if let Some(tracked) = self.entries.get_mut(&*key) {
            let used = std::mem::replace(&mut tracked.stamp, stamp);
            self.recency.remove(&used);
        } else if self.entries.len() >= self.limit {
            self.evict(now_ms);
        }
        self.recency.insert(stamp, key.to_string());
        self.entries
            .get_or_insert_with(key.into_owned(), || TrackedBreaker {
                breaker: Breaker::new(cfg.clone()),
                reported: StateKind::Closed,
                stamp,
            })
    }

    /// The breaker of `key`, if kept.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut TrackedBreaker> {
        self.entries.get_mut(&*bounded_key(key))
    }

    /// The breakers in key order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut TrackedBreaker)> {
        self.entries.iter_mut()
    }

    /// Number of breakers kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops one breaker: the least recently used of the lowest rank (see the module doc).
    fn evict(&mut self, now_ms: u64) {
        let mut victim: Option<(u8, u64)> = None;
        for (stamp, key) in self.recency.iter() {
            let Some(tracked) = self.entries.get_mut(key) else {
                continue;
            };
            let rank = tracked.keep_rank(now_ms);
            if victim.is_none_or(|(best, _)| rank < best) {
                victim = Some((rank, *stamp));
            }
            if rank == 0 {
                break;
            }
        }
        if let Some(key) = victim.and_then(|(_, stamp)| self.recency.remove(&stamp)) {
            self.entries.remove(&key);
        }
    }
}
