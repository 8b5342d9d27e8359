//! Exponential backoff with jitter, as an iterator of delays.
//!
//! Why exponential? A failing upstream is usually overloaded, and a client that retries at a fixed
//! pace keeps it overloaded. Doubling the wait gives it room to recover while keeping the first
//! retry quick for the common transient blip.
//!
//! Why jitter? Clients that failed together retry together: without randomness every client that
//! saw the same 503 comes back at the same instant, and the herd knocks the upstream over again.
//! The modes follow the AWS Architecture Blog's "Exponential Backoff and Jitter":
//! - [`Jitter::Full`]: uniform in `[0, d]`. The least total work and the best spread; the default.
//! - [`Jitter::Equal`]: `d/2 + uniform [0, d/2]`, i.e. uniform in `[d/2, d]`. Keeps a floor.
//! - [`Jitter::Decorrelated`]: `min(max, uniform [base, prev * 3])`, each delay grown from the
//!   previous *delay* rather than the attempt number. Never shorter than `base`.
//! - [`Jitter::None`]: exactly `d`, for tests and for callers that jitter elsewhere.
//!
//! Here `d = min(max, base * 2^attempt)`, computed with saturating integer arithmetic so that any
//! attempt number (even `u32::MAX`) yields `max` instead of overflowing, and no float is involved.
//!
//! Why an iterator (in the style of `backon`)? The whole schedule is a tiny piece of state
//! (attempt number, previous delay, generator), and an `Iterator<Item = u64>` composes with
//! `take(n)` and friends. The iterator is endless: the caller (or [`super::RetryState`], which
//! counts retries itself) decides when to stop.

use super::Jitter;
use crate::core::rng::Rng;

/// `min(max_ms, base_ms * 2^attempt)`, saturating: never overflows, for any inputs.
pub fn exponential(base_ms: u64, max_ms: u64, attempt: u32) -> u64 {
    if base_ms == 0 {
        return 0;
    }
    1u64.checked_shl(attempt)
        .and_then(|factor| base_ms.checked_mul(factor))
        .unwrap_or(u64::MAX)
        .min(max_ms)
}

/// Uniform in `[lo, hi]` (both inclusive); `lo` when `hi <= lo`.
fn uniform_inclusive(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let span = hi - lo;
    match span.checked_add(1) {
        Some(n) => lo + rng.below(n),
        // The span covers all of u64 (lo == 0, hi == u64::MAX).
        None => rng.next_u64(),
    }
}

/// The schedule without its generator, so that [`Backoff`] can draw from its own generator or
/// from one lent by the caller.
#[derive(Debug, Clone)]
struct Schedule {
    base_ms: u64,
    max_ms: u64,
    jitter: Jitter,
    attempt: u32,
    prev_ms: u64,
}

impl Schedule {
    fn step(&mut self, rng: &mut Rng) -> u64 {
        let delay = match self.jitter {
            Jitter::None => exponential(self.base_ms, self.max_ms, self.attempt),
            Jitter::Full => {
                let d = exponential(self.base_ms, self.max_ms, self.attempt);
                uniform_inclusive(rng, 0, d)
            }
            Jitter::Equal => {
                let d = exponential(self.base_ms, self.max_ms, self.attempt);
                uniform_inclusive(rng, d / 2, d)
            }
            Jitter::Decorrelated => {
                let hi = self.prev_ms.saturating_mul(3).max(self.base_ms);
                let d = uniform_inclusive(rng, self.base_ms, hi).min(self.max_ms);
                self.prev_ms = d;
                d
            }
        };
        self.attempt = self.attempt.saturating_add(1);
        delay
    }
}

/// An endless schedule of retry delays in milliseconds (see the module doc for each jitter mode).
///
/// Bounds of the `n`-th delay (`n` from 0), with `d = min(max, base * 2^n)`:
/// `Full` in `[0, d]`, `Equal` in `[d/2, d]`, `None` exactly `d`, and `Decorrelated` in
/// `[min(base, max), max]`. Every delay is within `[0, max]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    schedule: Schedule,
    rng: Rng,
}

impl Backoff {
    /// A schedule starting at `base_ms`, capped at `max_ms`, jittered by `jitter` using `rng`.
    pub fn new(base_ms: u64, max_ms: u64, jitter: Jitter, rng: Rng) -> Self {
        Backoff {
            schedule: Schedule {
                base_ms,
                max_ms,
                jitter,
                attempt: 0,
                prev_ms: base_ms,
            },
            rng,
        }
    }

    /// How many delays have been produced so far.
    pub fn attempt(&self) -> u32 {
        self.schedule.attempt
    }

    /// The next delay, drawing randomness from `rng` instead of the schedule's own generator
    /// (used by [`super::RetryState`], which shares the pipeline's generator).
    pub fn next_with(&mut self, rng: &mut Rng) -> u64 {
        self.schedule.step(rng)
    }
}

impl Iterator for Backoff {
    type Item = u64;

    /// Always `Some`: the schedule never ends (use `take(n)`).
    fn next(&mut self) -> Option<u64> {
        Some(self.schedule.step(&mut self.rng))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_saturates() {
        assert_eq!(exponential(500, 8000, 0), 500);
        assert_eq!(exponential(500, 8000, 1), 1000);
        assert_eq!(exponential(500, 8000, 4), 8000);
        assert_eq!(exponential(500, 8000, 5), 8000);
        assert_eq!(exponential(500, u64::MAX, 63), u64::MAX);
        assert_eq!(exponential(500, u64::MAX, 64), u64::MAX);
        assert_eq!(exponential(1, u64::MAX, 63), 1 << 63);
        assert_eq!(exponential(u64::MAX, 10, u32::MAX), 10);
        assert_eq!(exponential(0, 10, u32::MAX), 0);
    }

    #[test]
    fn no_jitter_is_exact() {
        let delays: Vec<u64> = Backoff::new(100, 1000, Jitter::None, Rng::new(1))
            .take(6)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_bounds() {
        for seed in 0..50 {
            let mut full = Backoff::new(100, 5000, Jitter::Full, Rng::new(seed));
            let mut equal = Backoff::new(100, 5000, Jitter::Equal, Rng::new(seed));
            let mut deco = Backoff::new(100, 5000, Jitter::Decorrelated, Rng::new(seed));
            let mut prev = 100;
            for n in 0..40 {
                let d = exponential(100, 5000, n);
                let f = full.next().unwrap_or(u64::MAX);
                assert!(f <= d);
                let e = equal.next().unwrap_or(u64::MAX);
                assert!(e >= d / 2 && e <= d);
                let x = deco.next().unwrap_or(u64::MAX);
                assert!((100..=5000).contains(&x));
                assert!(x <= (prev * 3).min(5000));
                prev = x;
            }
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::None,
        ] {
            let mut b = Backoff::new(u64::MAX, u64::MAX, jitter, Rng::new(3));
            for _ in 0..70 {
                b.next();
            }
            let mut b = Backoff::new(0, 0, jitter, Rng::new(3));
            assert_eq!(b.next(), Some(0));
            // base above max: everything is clamped to max.
            let mut b = Backoff::new(1000, 10, jitter, Rng::new(3));
            for _ in 0..5 {
                assert!(b.next().unwrap_or(u64::MAX) <= 10);
            }
        }
    }

    #[test]
    fn next_with_uses_the_lent_generator() {
        let mut a = Backoff::new(100, 10_000, Jitter::Full, Rng::new(0));
        let mut b = Backoff::new(100, 10_000, Jitter::Full, Rng::new(999));
        let (mut r1, mut r2) = (Rng::new(5), Rng::new(5));
        for _ in 0..10 {
            assert_eq!(a.next_with(&mut r1), b.next_with(&mut r2));
        }
        assert_eq!(a.attempt(), 10);
    }
}
