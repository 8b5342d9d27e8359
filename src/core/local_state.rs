//! The client's own breakers and buckets: the [`StateStore`] its calls are admitted on unless state is
//! shared across isolates (`sharedState`).
//!
//! Why a store like the shared one, although nothing here waits? The pipeline then admits every call
//! on one path, whichever store answers (see [`state_store`](crate::core::state_store)). The
//! futures resolve at once, so a local admission still happens within the poll that asked for it,
//! before any other call can run.

use crate::core::breaker::registry::Breakers;
use crate::core::breaker::{BreakerConfig, Permit, StateKind, Verdict};
use crate::core::error::Failure;
use crate::core::learned_limit::{LearnedLimits, LearnedView};
use crate::core::rate_limit::{KeyedRateLimiter, RateLimitConfig, Reservation};
use crate::core::retry::limit_headers::LimitReport;
use crate::core::state_store::StateStore;
use std::cell::RefCell;

/// Most per-key rate-limit buckets kept at once (least recently used evicted).
const MAX_RATE_KEYS: usize = 10_000;

/// A snapshot of one breaker for `stats()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerView {
    /// Origin or "client".
    pub key: String,
    /// Current state, computed lazily from now.
    pub state: StateKind,
    /// Consecutive failures counted.
    pub failures: u32,
}

/// One client's breakers and rate-limit buckets, and the limits its targets' providers reported.
/// Each is borrowed only within a call, never across an await.
pub struct LocalState {
    breakers: RefCell<Breakers>,
    buckets: RefCell<KeyedRateLimiter>,
    learned: RefCell<LearnedLimits>,
}

impl LocalState {
    /// No breakers or buckets yet; buckets are made from `rate_limit`.
    pub fn new(rate_limit: Option<&RateLimitConfig>) -> LocalState {
        LocalState {
            breakers: RefCell::new(Breakers::new()),
            buckets: RefCell::new(KeyedRateLimiter::new(
                rate_limit.cloned().unwrap_or_default(),
                MAX_RATE_KEYS,
            )),
            learned: RefCell::new(LearnedLimits::default()),
        }
    }

    /// Adopts the limits an answer for `key` reported to a call admitted with `tokens` (see
    /// [`LearnedLimits`]).
    pub fn learn(&self, key: &str, report: &LimitReport, tokens: u64, now_ms: u64) {
        self.learned.borrow_mut().adopt(key, report, tokens, now_ms);
    }

    /// Admits a request on `key`'s learned limit (`again`: a retry of a call admitted before): the
    /// wait before it may go, or `Err(retry_after)` past `max_wait_ms`.
    pub fn take_learned(
        &self,
        key: &str,
        tokens: u64,
        now_ms: u64,
        (max_wait_ms, again): (u64, bool),
    ) -> Result<u64, u64> {
        self.learned
            .borrow_mut()
            .take(key, tokens, now_ms, max_wait_ms, again)
    }

    /// A call admitted on `key`'s learned limit with `tokens` has finished.
    pub fn learned_done(&self, key: &str, tokens: u64) {
        self.learned.borrow_mut().done(key, tokens);
    }

    /// Every learned limit at `now_ms`, by key.
    pub fn learned(&self, now_ms: u64) -> Vec<LearnedView> {
        self.learned.borrow().views(now_ms)
    }

    /// While `key`'s breaker is open at `now_ms`: how long until it allows a probe.
    pub fn opens_in(&self, key: &str, now_ms: u64) -> Option<u64> {
        self.breakers
            .borrow_mut()
            .get_mut(key)?
            .breaker
            .opens_in(now_ms)
    }

    /// Every breaker's state at `now_ms`, by key.
    pub fn breakers(&self, now_ms: u64) -> Vec<BreakerView> {
        self.breakers
            .borrow_mut()
            .iter_mut()
            .map(|(key, tracked)| BreakerView {
                key: key.clone(),
                state: tracked.breaker.state(now_ms),
                failures: tracked.breaker.consecutive_failures(),
            })
            .collect()
    }

    /// The request bucket of `key`: (tokens, capacity).
    pub fn level(&self, key: &str, now_ms: u64) -> (f64, f64) {
        self.buckets.borrow_mut().get(key, now_ms).level(now_ms)
    }

    /// Corrects the token charge of `reservation`, taken on `key`, with the real usage.
    pub fn settle(&self, key: &str, reservation: Reservation, actual_tokens: u64, now_ms: u64) {
        self.buckets
            .borrow_mut()
            .get(key, now_ms)
            .settle(now_ms, reservation, actual_tokens);
    }
}

impl StateStore for LocalState {
    type Ticket = Permit;

    async fn admit(&self, key: &str, cfg: &BreakerConfig, now_ms: u64) -> Result<Permit, Failure> {
        let mut breakers = self.breakers.borrow_mut();
        let tracked = breakers.get_or_insert(key, cfg, now_ms);
        tracked
            .breaker
            .try_acquire(now_ms)
            .map_err(|retry_after_ms| Failure::CircuitOpen {
                key: key.to_string(),
                retry_after_ms,
            })
    }

    fn record(&self, key: &str, permit: Permit, verdict: Verdict, now_ms: u64) {
        if let Some(tracked) = self.breakers.borrow_mut().get_mut(key) {
            tracked.breaker.record(now_ms, permit, verdict);
        }
    }

    fn observe(&self, key: &str, now_ms: u64) -> Option<(StateKind, StateKind)> {
        self.breakers.borrow_mut().get_mut(key)?.observe(now_ms)
    }

    async fn take(
        &self,
        key: &str,
        tokens: u64,
        cfg: &RateLimitConfig,
        now_ms: u64,
    ) -> Result<Reservation, Failure> {
        let mut buckets = self.buckets.borrow_mut();
        buckets
            .get_with(key, cfg, now_ms)
            .reserve(now_ms, tokens)
            .map_err(|retry_after_ms| Failure::RateLimited {
                key: key.to_string(),
                retry_after_ms,
            })
    }

    fn give_back(&self, key: &str, reservation: Reservation, now_ms: u64) {
        self.buckets
            .borrow_mut()
            .get(key, now_ms)
            .cancel(now_ms, reservation);
    }
}
