//! A retry budget: retries as a fraction of recent traffic, not a fixed count per call.
//!
//! Why budgets and not only max retries? `max_retries = 2` looks harmless, but when the upstream is
//! down *every* call makes three attempts: the client triples the load on a service that is already
//! failing, and the retries themselves keep it down. A per-call limit cannot see that everyone is
//! retrying. A budget can: it is shared by all calls (of a client, or of a key) and allows retries
//! only in proportion to the original requests that went through recently. In normal operation,
//! when few calls fail, it never bites; in an outage it caps the extra load at `ratio` (20% by
//! default) instead of `max_retries` (200%). This is the idea of Finagle's and tower's
//! `RetryBudget`.
//!
//! Semantics. Each original request [`deposit`](RetryBudget::deposit)s; each retry must
//! [`try_withdraw`](RetryBudget::try_withdraw) first and is skipped when refused. Over any window
//! of `ttl_ms`, the number of successful withdrawals is at most
//! `min_per_sec * ttl_ms / 1000 + ratio * deposits in that window`. The first term is a reserve,
//! so that a client with little traffic (where a percentage means nothing) can still retry a few
//! times; `ratio = 0` leaves only the reserve, and `min_per_sec = 0` with `ratio = 0` disables
//! retries altogether. Both deposits and withdrawals age out after `ttl_ms`, so a budget drained
//! during an outage refills by itself once traffic is healthy again.
//!
//! Implementation. A ring of 10 slots, each covering `ttl_ms / 10` (rounded up), holds the net
//! balance (deposits minus withdrawals) of its slice of time; slots that fell out of the window are
//! cleared lazily from `now_ms` when the budget is next touched, so there is no timer, memory is
//! constant, and the window is accurate to one slot. Amounts are integers in millionths of a retry,
//! so a ratio like `0.3` is exact enough and nothing accumulates float error. `ratio` is clamped
//! to `[0, 1000]` (NaN counts as 0).

/// The default window: deposits count for 10 seconds, as in tower. The pipeline's budget uses it.
pub const DEFAULT_TTL_MS: u64 = 10_000;
/// The default reserve: 10 retries per second of window, whatever the success rate.
pub const DEFAULT_MIN_PER_SEC: u32 = 10;

const SLOTS: usize = 10;
/// Units per retry.
const SCALE: i64 = 1_000_000;

/// A sliding-window retry budget (see the module doc).
#[derive(Debug, Clone)]
pub struct RetryBudget {
    slots: [i64; SLOTS],
    slot_ms: u64,
    /// Index of the current slot in absolute time (`now_ms / slot_ms`).
    current: u64,
    deposit_units: i64,
    reserve_units: i64,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per original request over the last `ttl_ms`, plus a
    /// reserve of `min_per_sec` retries per second of that window.
    pub fn new(ratio: f64, ttl_ms: u64, min_per_sec: u32) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1000.0)
        };
        // In range: at most 1e9 units. `as` saturates anyway.
        let deposit_units = (ratio * SCALE as f64) as i64;
        let ttl_ms = ttl_ms.max(1);
        // min_per_sec * (ttl_ms / 1000) retries, in units of 1e-6 retry.
        let reserve_units = i64::from(min_per_sec)
            .saturating_mul(i64::try_from(ttl_ms).unwrap_or(i64::MAX))
            .saturating_mul(SCALE / 1000);
        RetryBudget {
            slots: [0; SLOTS],
            slot_ms: ttl_ms.div_ceil(SLOTS as u64).max(1),
            current: 0,
            deposit_units,
            reserve_units,
        }
    }

    /// Record an original (non-retry) request at `now_ms`.
    pub fn deposit(&mut self, now_ms: u64) {
        let slot = self.advance(now_ms);
        self.slots[slot] = self.slots[slot].saturating_add(self.deposit_units);
    }

    /// Ask for one retry at `now_ms`: `true` (and the retry is charged) if the budget allows it.
    pub fn try_withdraw(&mut self, now_ms: u64) -> bool {
        let slot = self.advance(now_ms);
        if self.balance() >= SCALE {
            self.slots[slot] = self.slots[slot].saturating_sub(SCALE);
            true
        } else {
            false
        }
    }

    /// How many whole retries would be allowed right now.
    pub fn remaining(&mut self, now_ms: u64) -> u64 {
        self.advance(now_ms);
        u64::try_from(self.balance() / SCALE).unwrap_or(0)
    }

    fn balance(&self) -> i64 {
        self.slots
            .iter()
            .fold(self.reserve_units, |acc, s| acc.saturating_add(*s))
    }

    /// Clear the slots that left the window since the last call; returns the current slot.
    fn advance(&mut self, now_ms: u64) -> usize {
        let index = now_ms / self.slot_ms;
        if index > self.current {
            let stale = (index - self.current).min(SLOTS as u64);
            for i in 1..=stale {
                self.slots[(self.current.wrapping_add(i) % SLOTS as u64) as usize] = 0;
            }
            self.current = index;
        }
        // A clock that went backwards keeps writing to the current slot.
        (self.current % SLOTS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_only_with_zero_ratio() {
        let mut b = RetryBudget::new(0.0, 10_000, 1);
        for t in 0..1000 {
            b.deposit(t);
        }
        let allowed = (0..100).filter(|_| b.try_withdraw(1000)).count();
        assert_eq!(allowed, 10);
        // Withdrawals age out with the window, restoring the reserve.
        assert!(!b.try_withdraw(5000));
        assert!(b.try_withdraw(11_000));
    }

    #[test]
    fn ratio_of_deposits() {
        let mut b = RetryBudget::new(0.2, 10_000, 0);
        assert!(!b.try_withdraw(0));
        for _ in 0..100 {
            b.deposit(0);
        }
        let allowed = (0..100).filter(|_| b.try_withdraw(0)).count();
        assert_eq!(allowed, 20);
        assert_eq!(b.remaining(0), 0);
    }

    #[test]
    fn fractional_ratio_is_exact() {
        let mut b = RetryBudget::new(0.3, 10_000, 0);
        for _ in 0..10 {
            b.deposit(0);
        }
        assert_eq!(b.remaining(0), 3);
    }

    #[test]
    fn deposits_expire() {
        let mut b = RetryBudget::new(1.0, 1000, 0);
        for _ in 0..5 {
            b.deposit(0);
        }
        assert_eq!(b.remaining(900), 5);
        assert_eq!(b.remaining(1000), 0);
        // A long gap clears everything without iterating over it.
        b.deposit(5_000);
        assert_eq!(b.remaining(u64::MAX), 0);
    }

    #[test]
    fn odd_inputs_are_total() {
        for ratio in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            let mut b = RetryBudget::new(ratio, 0, u32::MAX);
            b.deposit(0);
            b.try_withdraw(u64::MAX);
            b.deposit(3);
            let _ = b.remaining(1);
        }
        let mut b = RetryBudget::new(0.0, u64::MAX, u32::MAX);
        assert!(b.try_withdraw(0));
    }
}
