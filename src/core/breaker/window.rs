//! The breaker's rolling window of call results.
//!
//! Why buckets? A log of every call would grow with traffic; a single pair of counters would never
//! forget. A fixed ring of [`BUCKETS`] counters, each covering `window_ms / BUCKETS`, forgets old
//! results one bucket at a time in constant memory. Buckets are rotated lazily from `now_ms` on each
//! access (no timer), so an idle breaker costs nothing and a long gap clears the ring in at most
//! [`BUCKETS`] steps. The price is granularity: the window is accurate to one bucket.

/// Number of buckets in the ring.
pub const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    successes: u32,
    failures: u32,
}

/// Success and failure counts over the last `window_ms` (to one bucket's precision).
#[derive(Debug, Clone)]
pub struct RollingWindow {
    buckets: [Bucket; BUCKETS],
    bucket_ms: u64,
    /// Index of the current bucket in absolute time (`now_ms / bucket_ms`).
    current: u64,
}

impl RollingWindow {
    /// An empty window covering `window_ms` (at least one millisecond per bucket).
    pub fn new(window_ms: u64) -> Self {
        RollingWindow {
            buckets: [Bucket::default(); BUCKETS],
            bucket_ms: window_ms.div_ceil(BUCKETS as u64).max(1),
            current: 0,
        }
    }

    /// Count one success (`true`) or failure (`false`) at `now_ms`.
    pub fn record(&mut self, now_ms: u64, success: bool) {
        let b = self.advance(now_ms);
        let bucket = &mut self.buckets[b];
        if success {
            bucket.successes = bucket.successes.saturating_add(1);
        } else {
            bucket.failures = bucket.failures.saturating_add(1);
        }
    }

    /// `(successes, failures)` in the window ending at `now_ms`.
    pub fn totals(&mut self, now_ms: u64) -> (u64, u64) {
        self.advance(now_ms);
        self.buckets.iter().fold((0, 0), |(s, f), b| {
            (s + u64::from(b.successes), f + u64::from(b.failures))
        })
    }

    /// Forget everything.
    pub fn reset(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }

    fn advance(&mut self, now_ms: u64) -> usize {
        let index = now_ms / self.bucket_ms;
        if index > self.current {
            let stale = (index - self.current).min(BUCKETS as u64);
            for i in 1..=stale {
                self.buckets[(self.current.wrapping_add(i) % BUCKETS as u64) as usize] =
                    Bucket::default();
            }
            self.current = index;
        }
        // A clock that went backwards keeps counting in the current bucket.
        (self.current % BUCKETS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_forgets() {
        let mut w = RollingWindow::new(10_000);
        w.record(0, false);
        w.record(500, true);
        w.record(5_000, false);
        assert_eq!(w.totals(9_999), (1, 2));
        // The first bucket (0..1000) leaves the window at 10 s.
        assert_eq!(w.totals(10_000), (0, 1));
        assert_eq!(w.totals(15_999), (0, 0));
        w.record(u64::MAX, true);
        assert_eq!(w.totals(u64::MAX), (1, 0));
        // Backwards clock: no panic, counted in the current bucket.
        w.record(3, false);
        assert_eq!(w.totals(u64::MAX), (1, 1));
        w.reset();
        assert_eq!(w.totals(u64::MAX), (0, 0));
    }

    #[test]
    fn tiny_window() {
        let mut w = RollingWindow::new(0);
        w.record(0, false);
        assert_eq!(w.totals(9), (0, 1));
        assert_eq!(w.totals(10), (0, 0));
    }
}
