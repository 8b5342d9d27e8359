//! Client-side rate limiting: requests per minute and tokens per minute, fair and without timers.
//!
//! Why limit on the client when the server already returns 429? A 429 costs a round trip, counts
//! against some providers' quotas anyway, and arrives only after the damage; many tabs or workers
//! hammering the same key then all back off and return together. Knowing the provider's published
//! limits, the client can space its own calls and never hear a 429 in the first place.
//!
//! Why token buckets? Provider limits are "N per minute" with some tolerance for bursts, which is
//! exactly a bucket of capacity `burst` (default: the per-minute figure) refilling continuously at
//! `rpm / 60000` per millisecond. LLM providers also limit *tokens* per minute, so an optional
//! second bucket is charged with the request's estimated token count, corrected by
//! [`RateLimiter::settle`] once the response reports real usage.
//!
//! Why reservations in virtual time? A limiter that says "not yet, try later" makes callers poll,
//! and the lucky poller wins, not the first one. Here [`RateLimiter::reserve`] finds the earliest
//! instant at which the request fits every bucket, books it there at once and returns the wait.
//! Each bucket keeps its level as of its latest booking, which may lie in the future, and never
//! books anyone earlier: admission order is call order (FIFO), each caller sleeps exactly once, and
//! there is no timer or queue in the core. [`RateLimiter::level`] shows the queue as debt: the level
//! now is negative while callers are booked ahead. If the wait would exceed `max_wait_ms`, nothing
//! is booked and the caller gets the wait as a `retry_after` instead.
//!
//! Why book at the admission instant rather than simply charge now and let the bucket go negative?
//! On one bucket the waits are the same, but charging early counts the refill during the wait even
//! where a full bucket would have wasted it: a request held back by the *token* bucket would spend
//! its *request* slot early, and two requests could leave together beyond the burst. Booking at the
//! admission instant, with the capped refill evaluated at whole milliseconds, keeps the token
//! bucket's guarantee exactly: over any `d` ms, at most `capacity + rate * d` requests (and
//! estimated tokens) are admitted. Waits round up to the millisecond, so they never undercut it.
//!
//! Cancelling. A caller that gives up ([`RateLimiter::cancel`]) hands its booking back *if it is the
//! latest one*: the buckets return exactly to their state before it, and the booking before it
//! becomes the latest. A booking with later ones behind it is kept: their waits were computed on top
//! of it and cannot be shortened, and refunding it would let a newcomer leave together with them,
//! over the limit. A cancel may waste a slot, never overshoot. (If the token bucket was settled in
//! the meantime, the token charge is refunded at the latest booking's instant, capped at capacity,
//! instead of restoring the older state.)
//!
//! Oversized requests: an estimate above the token bucket's capacity could never be admitted, so it
//! is charged at capacity (it waits for a full bucket) instead of being rejected forever; settling
//! then charges the real usage. A rate of 0 admits nothing beyond the bucket's initial content: the
//! reservation is refused with `retry_after = u64::MAX` ("never"). A request bucket with a positive
//! rate holds at least one request (`burst = 0` is read as 1), or it could never admit anything.
//!
//! Exactness. Levels are integers in sixty-thousandths of a request (or token), so that a rate of
//! `n` per minute is exactly `n` units per millisecond: no float drift, and `i128` with saturating
//! arithmetic keeps every input total.
//!
//! [`KeyedRateLimiter`] keeps one limiter per key (API key, model...) and bounds memory by evicting
//! the least recently used key; an evicted key that comes back starts with a full bucket, which is
//! the price of the bound. A long key is kept as its [`bounded_key`], so the bound holds in bytes.

use crate::core::bounded_key::bounded_key;
use crate::core::ordered_keys::OrderedKeys;
use crate::core::string_map::StringMap;
use crate::core::wide;

/// Rate limit configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per minute; `None`: requests are not limited.
    pub requests_per_minute: Option<u32>,
    /// Request bucket capacity; `None`: `requests_per_minute`.
    pub burst: Option<u32>,
    /// Tokens per minute (also the token bucket's capacity); `None`: tokens are not limited.
    pub tokens_per_minute: Option<u64>,
    /// The longest wait a reservation may be given; longer ones are refused.
    pub max_wait_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests_per_minute: None,
            burst: None,
            tokens_per_minute: None,
            max_wait_ms: 5000,
        }
    }
}

/// Sub-units per request or token: a rate of `n` per minute refills `n` units per millisecond.
const UNIT: i128 = 60_000;

#[derive(Debug, Clone)]
struct Bucket {
    /// The level at `at`, after every booking so far (all made at or before `at`).
    level: i128,
    /// The latest booking's instant, or the last time the bucket was looked at if later. May be in
    /// the future.
    at: u64,
    capacity: i128,
    /// Units per millisecond.
    rate: i128,
    /// Bumped by every settle, so that a cancel knows whether restoring an older state is exact.
    settles: u64,
}

/// What a booking changed in one bucket, to undo it.
#[derive(Debug, Clone, Copy)]
struct Booking {
    cost: i128,
    prev_level: i128,
    prev_at: u64,
    settles: u64,
}

impl Bucket {
    fn new(capacity: u64, per_minute: u64, now_ms: u64) -> Self {
        let capacity = i128::from(capacity) * UNIT;
        Bucket {
            level: capacity,
            at: now_ms,
            capacity,
            rate: i128::from(per_minute),
            settles: 0,
        }
    }

    /// The level at `t >= at`: refilled, capped at capacity.
    fn level_at(&self, t: u64) -> i128 {
        if t <= self.at || self.level >= self.capacity {
            return self.level;
        }
        let refill = self.rate.saturating_mul(i128::from(t - self.at));
        self.level.saturating_add(refill).min(self.capacity)
    }

    /// The level now, extrapolated backwards (as debt) when bookings lie in the future.
    fn level_now(&self, now_ms: u64) -> i128 {
        if now_ms >= self.at {
            self.level_at(now_ms)
        } else {
            let ahead = self.rate.saturating_mul(i128::from(self.at - now_ms));
            self.level.saturating_sub(ahead)
        }
    }

    /// Move `at` up to `now_ms` if it is in the past (the state means the same afterwards).
    fn advance(&mut self, now_ms: u64) {
        if now_ms > self.at {
            self.level = self.level_at(now_ms);
            self.at = now_ms;
        }
    }

    /// The earliest instant, not before `at`, at which `cost` fits; `None`: never.
    fn earliest(&self, cost: i128) -> Option<u64> {
        if self.level >= cost {
            return Some(self.at);
        }
        if self.rate <= 0 || cost > self.capacity {
            return None;
        }
        let deficit = u128::try_from(cost.saturating_sub(self.level)).ok()?;
        let wait = wide::div_ceil(deficit, u64::try_from(self.rate).ok()?);
        self.at.checked_add(u64::try_from(wait).ok()?)
    }

    /// Book `cost` at instant `t` (not before `at`).
    fn book(&mut self, t: u64, cost: i128) -> Booking {
        let booking = Booking {
            cost,
            prev_level: self.level,
            prev_at: self.at,
            settles: self.settles,
        };
        self.level = self.level_at(t).saturating_sub(cost);
        self.at = self.at.max(t);
        booking
    }

    /// Undo `booking`, which must be the latest one.
    fn unbook(&mut self, booking: &Booking) {
        if booking.settles == self.settles {
            self.level = booking.prev_level;
            self.at = booking.prev_at;
        } else {
            self.refund(booking.cost);
        }
    }

    fn charge(&mut self, cost: i128) {
        self.level = self.level.saturating_sub(cost);
    }

    fn refund(&mut self, amount: i128) {
        self.level = self.level.saturating_add(amount).min(self.capacity);
    }
}

/// An admitted reservation: wait `wait_ms`, then send. Keep it to [`cancel`](RateLimiter::cancel)
/// (if the caller gives up) or [`settle`](RateLimiter::settle) (when usage is known); dropping it
/// keeps the charge.
#[derive(Debug)]
pub struct Reservation {
    /// How long to wait before sending.
    pub wait_ms: u64,
    seq: u64,
    request: Option<Booking>,
    tokens: Option<Booking>,
}

impl Reservation {
    /// A wait a shared store decided: its buckets were charged there, so nothing here is charged,
    /// given back or settled.
    pub fn remote(wait_ms: u64) -> Reservation {
        Reservation {
            wait_ms,
            seq: 0,
            request: None,
            tokens: None,
        }
    }

    /// The tokens this reservation was charged (the estimate, capped at the bucket capacity; 0
    /// without a token limit).
    pub fn charged_tokens(&self) -> u64 {
        self.tokens
            .and_then(|b| u128::try_from(b.cost).ok())
            .map_or(0, |cost| {
                u64::try_from(wide::div_rem(cost, UNIT as u64).0).unwrap_or(0)
            })
    }
}

/// The rate limiter of one key (see the module doc).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    max_wait_ms: u64,
    /// Sequence number of the latest booking still standing.
    seq: u64,
}

impl RateLimiter {
    /// A limiter with full buckets at `now_ms`.
    pub fn new(cfg: &RateLimitConfig, now_ms: u64) -> Self {
        let requests = cfg.requests_per_minute.map(|rpm| {
            let capacity = cfg.burst.unwrap_or(rpm);
            let capacity = if rpm > 0 { capacity.max(1) } else { capacity };
            Bucket::new(u64::from(capacity), u64::from(rpm), now_ms)
        });
        let tokens = cfg
            .tokens_per_minute
            .map(|tpm| Bucket::new(tpm, tpm, now_ms));
        RateLimiter {
            requests,
            tokens,
            max_wait_ms: cfg.max_wait_ms,
            seq: 0,
        }
    }

    fn advance(&mut self, now_ms: u64) {
        if let Some(b) = &mut self.requests {
            b.advance(now_ms);
        }
        if let Some(b) = &mut self.tokens {
            b.advance(now_ms);
        }
    }

    /// Reserve one request and `tokens` estimated tokens. Fair FIFO by virtual time: each admitted
    /// reservation is booked at once at its admission instant, so a later caller waits behind
    /// earlier ones. If the wait would exceed `max_wait_ms`, nothing is charged and
    /// `Err(retry_after_ms)` is returned (the time until this request could be admitted;
    /// `u64::MAX` if never).
    pub fn reserve(&mut self, now_ms: u64, tokens: u64) -> Result<Reservation, u64> {
        self.advance(now_ms);
        let token_cost = self.tokens.as_ref().map_or(0, |b| {
            let want = i128::from(tokens) * UNIT;
            // Capped at capacity, unless the capacity is 0 (then only 0 tokens ever fit).
            if b.capacity > 0 {
                want.min(b.capacity)
            } else {
                want
            }
        });
        let mut admit = now_ms;
        for (bucket, cost) in [(&self.requests, UNIT), (&self.tokens, token_cost)] {
            if let Some(b) = bucket {
                match b.earliest(cost) {
                    Some(t) => admit = admit.max(t),
                    None => return Err(u64::MAX),
                }
            }
        }
        let wait_ms = admit - now_ms;
        if wait_ms > self.max_wait_ms {
            return Err(wait_ms);
        }
        let request = self.requests.as_mut().map(|b| b.book(admit, UNIT));
        let tokens = self.tokens.as_mut().map(|b| b.book(admit, token_cost));
        self.seq = self.seq.wrapping_add(1);
        Ok(Reservation {
            wait_ms,
            seq: self.seq,
            request,
            tokens,
        })
    }

    /// The caller gave up waiting (abort): return its charge if it is the latest reservation
    /// (restoring the buckets exactly; a refund is capped at capacity); otherwise keep it, since
    /// later callers' waits already count on it (see the module doc).
    pub fn cancel(&mut self, now_ms: u64, reservation: Reservation) {
        self.advance(now_ms);
        if reservation.seq != self.seq {
            return;
        }
        self.seq = self.seq.wrapping_sub(1);
        if let (Some(b), Some(booking)) = (&mut self.requests, &reservation.request) {
            b.unbook(booking);
        }
        if let (Some(b), Some(booking)) = (&mut self.tokens, &reservation.tokens) {
            b.unbook(booking);
        }
    }

    /// The response's real token usage is known: correct the token bucket by `actual - charged`,
    /// either way (`charged` is the estimate unless it was capped at capacity). The correction
    /// applies at the latest booking's instant; a refund is capped at capacity.
    pub fn settle(&mut self, now_ms: u64, reservation: Reservation, actual_tokens: u64) {
        self.advance(now_ms);
        if let Some(b) = &mut self.tokens {
            let charged = reservation.tokens.map_or(0, |booking| booking.cost);
            let correction = i128::from(actual_tokens) * UNIT - charged;
            if correction >= 0 {
                b.charge(correction);
            } else {
                b.refund(-correction);
            }
            b.settles = b.settles.wrapping_add(1);
        }
    }

    /// `(request tokens now, capacity)` of the request bucket; the level is negative while callers
    /// are booked ahead. `(inf, inf)` when requests are not limited.
    pub fn level(&mut self, now_ms: u64) -> (f64, f64) {
        self.advance(now_ms);
        match &self.requests {
            Some(b) => (
                b.level_now(now_ms) as f64 / UNIT as f64,
                b.capacity as f64 / UNIT as f64,
            ),
            None => (f64::INFINITY, f64::INFINITY),
        }
    }
}

#[derive(Debug)]
struct Slot {
    limiter: RateLimiter,
    stamp: u64,
}

/// Per-key limiters, at most `max_keys` of them; the least recently used key is evicted first.
/// Each [`get`](Self::get) is O(log n) amortised: a hash map of limiters plus an index from
/// recency stamp to key ([`OrderedKeys`]).
#[derive(Debug)]
pub struct KeyedRateLimiter {
    cfg: RateLimitConfig,
    max_keys: usize,
    slots: StringMap<Slot>,
    recency: OrderedKeys<u64>,
    tick: u64,
}

impl KeyedRateLimiter {
    /// Limiters built from `cfg`, at most `max_keys` of them (at least 1).
    pub fn new(cfg: RateLimitConfig, max_keys: usize) -> Self {
        KeyedRateLimiter {
            cfg,
            max_keys: max_keys.max(1),
            slots: StringMap::new(),
            recency: OrderedKeys::new(),
            tick: 0,
        }
    }

    /// The limiter of `key` (a long key stands for its [`bounded_key`]), created (full, at
    /// `now_ms`) if absent, evicting the least recently used key if the bound is reached.
    pub fn get(&mut self, key: &str, now_ms: u64) -> &mut RateLimiter {
        let cfg = self.cfg.clone();
        self.get_with(key, &cfg, now_ms)
    }

    /// [`KeyedRateLimiter::get`], creating an absent limiter from `cfg` instead (a shared board
    /// keeps each caller's buckets on the caller's settings).
    pub fn get_with(&mut self, key: &str, cfg: &RateLimitConfig, now_ms: u64) -> &mut RateLimiter {
        let key = &*bounded_key(key);
        self.tick = self.tick.wrapping_add(1);
        let stamp = self.tick;
        if let Some(slot) = self.slots.get_mut(key) {
            let previous = std::mem::replace(&mut slot.stamp, stamp);
            if let Some(k) = self.recency.remove(&previous) {
                self.recency.insert(stamp, k);
            }
        } else {
            while self.slots.len() >= self.max_keys {
                match self.recency.pop_first() {
                    Some(oldest) => {
                        self.slots.remove(&oldest);
                    }
                    None => break,
                }
            }
            self.recency.insert(stamp, key.to_owned());
        }
        &mut self
            .slots
            .get_or_insert_with(key, || Slot {
                limiter: RateLimiter::new(cfg, now_ms),
                stamp,
            })
            .limiter
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpm(rpm: u32, burst: Option<u32>) -> RateLimitConfig {
        RateLimitConfig {
            requests_per_minute: Some(rpm),
            burst,
            tokens_per_minute: None,
            max_wait_ms: u64::MAX,
        }
    }

    #[test]
    fn unlimited_by_default() {
        let mut l = RateLimiter::new(&RateLimitConfig::default(), 0);
        for _ in 0..10_000 {
            assert_eq!(l.reserve(0, 1_000_000).map(|r| r.wait_ms), Ok(0));
        }
        assert_eq!(l.level(0), (f64::INFINITY, f64::INFINITY));
    }

    #[test]
    fn fifo_waits() {
        let mut l = RateLimiter::new(&rpm(60, Some(2)), 0);
        let waits: Vec<u64> = (0..5)
            .map(|_| l.reserve(0, 0).map_or(u64::MAX, |r| r.wait_ms))
            .collect();
        assert_eq!(waits, [0, 0, 1000, 2000, 3000]);
        assert_eq!(l.level(0), (-3.0, 2.0));
        // Refill is continuous: 1.5 s later the debt is 1.5 requests.
        assert_eq!(l.level(1500), (-1.5, 2.0));
        assert_eq!(l.reserve(1500, 0).map(|r| r.wait_ms), Ok(2500));
    }

    #[test]
    fn rounding_up_to_the_millisecond() {
        let mut l = RateLimiter::new(&rpm(7, Some(1)), 0);
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Ok(0));
        // 60000 / 7 = 8571.43 ms per request.
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Ok(8572));
    }

    #[test]
    fn max_wait_rejects_without_charging() {
        let mut l = RateLimiter::new(
            &RateLimitConfig {
                max_wait_ms: 1000,
                ..rpm(60, Some(1))
            },
            0,
        );
        assert!(l.reserve(0, 0).is_ok());
        assert!(l.reserve(0, 0).is_ok());
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Err(2000));
        assert_eq!(l.level(0), (-1.0, 1.0));
    }

    #[test]
    fn zero_rates() {
        let mut l = RateLimiter::new(&rpm(0, None), 0);
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Err(u64::MAX));
        let mut l = RateLimiter::new(&rpm(0, Some(2)), 0);
        assert!(l.reserve(0, 0).is_ok());
        assert!(l.reserve(0, 0).is_ok());
        assert_eq!(l.reserve(9_999_999, 0).map(|r| r.wait_ms), Err(u64::MAX));
        // burst 0 with a positive rate holds one request.
        let mut l = RateLimiter::new(&rpm(60, Some(0)), 0);
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Ok(0));
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Ok(1000));
        let cfg = RateLimitConfig {
            tokens_per_minute: Some(0),
            ..RateLimitConfig::default()
        };
        let mut l = RateLimiter::new(&cfg, 0);
        assert!(l.reserve(0, 0).is_ok());
        assert_eq!(l.reserve(0, 1).map(|r| r.wait_ms), Err(u64::MAX));
    }

    #[test]
    fn tokens_and_settle() {
        let cfg = RateLimitConfig {
            tokens_per_minute: Some(6000),
            max_wait_ms: u64::MAX,
            ..RateLimitConfig::default()
        };
        let mut l = RateLimiter::new(&cfg, 0);
        let r = l.reserve(0, 5000).map_err(|_| ()).unwrap();
        assert_eq!(r.wait_ms, 0);
        // Only 1000 tokens left: a 3000-token call waits 2000 tokens = 20 s.
        l.settle(0, r, 5000);
        assert_eq!(l.reserve(0, 3000).map(|r| r.wait_ms), Ok(20_000));
        // Over capacity: charged at capacity.
        let mut l = RateLimiter::new(&cfg, 0);
        let r = l.reserve(0, 1_000_000).map_err(|_| ()).unwrap();
        assert_eq!((r.wait_ms, r.charged_tokens()), (0, 6000));
        l.settle(0, r, 100);
        assert_eq!(l.reserve(0, 5900).map(|r| r.wait_ms), Ok(0));
        assert_eq!(l.reserve(0, 1).map(|r| r.wait_ms), Ok(10));
    }

    #[test]
    fn cancel_latest_is_exact_and_earlier_is_kept() {
        let mut l = RateLimiter::new(&rpm(60, Some(2)), 0);
        let a = l.reserve(0, 0).map_err(|_| ()).unwrap();
        let b = l.reserve(0, 0).map_err(|_| ()).unwrap();
        let c = l.reserve(0, 0).map_err(|_| ()).unwrap();
        assert_eq!(c.wait_ms, 1000);
        // `a` is not the latest: `c`'s wait counts on its charge.
        l.cancel(0, a);
        assert_eq!(l.level(0), (-1.0, 2.0));
        // `c` then `b` are, in turn.
        l.cancel(10, c);
        assert_eq!(l.level(10), (0.01, 2.0));
        l.cancel(10, b);
        assert_eq!(l.level(10), (1.01, 2.0));
        // Only `a` stands: a newcomer goes at once.
        let d = l.reserve(10, 0).map_err(|_| ()).unwrap();
        assert_eq!(d.wait_ms, 0);
        l.cancel(100_000, d);
        assert_eq!(l.level(100_000), (2.0, 2.0));
    }

    #[test]
    fn cancel_after_settle_refunds_tokens_at_the_latest_booking() {
        let cfg = RateLimitConfig {
            tokens_per_minute: Some(60_000),
            max_wait_ms: u64::MAX,
            ..RateLimitConfig::default()
        };
        let mut l = RateLimiter::new(&cfg, 0);
        let a = l.reserve(0, 60_000).map_err(|_| ()).unwrap();
        let b = l.reserve(0, 10_000).map_err(|_| ()).unwrap();
        assert_eq!(b.wait_ms, 10_000);
        l.settle(5, a, 30_000);
        l.cancel(5, b);
        // b's 10k come back at its instant (t = 10 s): a really used 30k at t = 0, so 30k left
        // plus 10 s of refill.
        assert_eq!(l.reserve(10_000, 40_000).map(|r| r.wait_ms), Ok(0));
        assert_eq!(l.reserve(10_000, 1).map(|r| r.wait_ms), Ok(1));
    }

    #[test]
    fn request_slot_is_spent_when_the_request_leaves() {
        // A request held back by the token bucket must not spend its request slot early.
        let cfg = RateLimitConfig {
            requests_per_minute: Some(60),
            burst: Some(1),
            tokens_per_minute: Some(60_000),
            max_wait_ms: u64::MAX,
        };
        let mut l = RateLimiter::new(&cfg, 0);
        assert_eq!(l.reserve(0, 60_000).map(|r| r.wait_ms), Ok(0));
        // Tokens hold this one until t = 5 s; the request bucket is full again by then.
        assert_eq!(l.reserve(0, 5_000).map(|r| r.wait_ms), Ok(5_000));
        // The next one needs a request slot: one second after the previous *admission*.
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Ok(6_000));
    }

    #[test]
    fn keyed_lru() {
        let mut k = KeyedRateLimiter::new(rpm(60, Some(1)), 2);
        assert!(k.is_empty());
        assert_eq!(k.get("a", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(0));
        assert_eq!(k.get("b", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(0));
        // Touch "a": "b" becomes the least recently used.
        assert_eq!(k.get("a", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(1000));
        assert_eq!(k.get("c", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(0));
        assert_eq!(k.len(), 2);
        // "a" kept its debt; "b" was evicted and comes back full.
        assert_eq!(k.get("a", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(2000));
        assert_eq!(k.get("b", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(0));
        assert_eq!(k.len(), 2);
        let mut k = KeyedRateLimiter::new(RateLimitConfig::default(), 0);
        k.get("x", 0);
        k.get("y", 0);
        assert_eq!(k.len(), 1);
    }
}
