//! Counters and a latency window behind `client.stats()` and `client.metrics()`.
//!
//! Latency percentiles come from the most recent [`LATENCY_WINDOW`] calls, kept in a ring and, beside
//! it, in sorted order (a binary search and a short move per call): exact for that window, constant
//! memory, and no sort at all.

/// How many recent call latencies the percentiles are computed over.
pub const LATENCY_WINDOW: usize = 1024;

/// What the client has done so far.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Calls started.
    pub requests: u64,
    /// Calls that ended with a 2xx/3xx response.
    pub successes: u64,
    /// Calls that ended otherwise (error status, timeout, network, rejection).
    pub failures: u64,
    /// Retries made.
    pub retries: u64,
    /// Calls rejected by an open breaker.
    pub rejected_breaker: u64,
    /// Calls rejected by the rate limiter.
    pub rejected_rate_limit: u64,
    /// Calls rejected by a token or cost budget.
    pub rejected_budget: u64,
    /// Calls answered by sharing an identical call in flight (no upstream request of their own).
    pub deduplicated: u64,
    /// Retries refused by the retry budget.
    pub retry_budget_exhausted: u64,
    /// The window in arrival order (a ring) ...
    latencies: Vec<u32>,
    /// ... and the same values kept sorted, so percentiles need no sort.
    sorted: Vec<u32>,
    next_slot: usize,
}

/// Response cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered by a fresh entry.
    pub hits: u64,
    /// Lookups that went to the upstream.
    pub misses: u64,
    /// Entries held (known for the memory store).
    pub entries: u64,
}

impl CacheStats {
    /// Hits per lookup, in per mille (integer, to keep float formatting out of the wasm).
    pub fn hit_rate_per_mille(&self) -> u64 {
        (self.hits * 1000)
            .checked_div(self.hits + self.misses)
            .unwrap_or(0)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

impl Stats {
    /// Records one finished call's latency.
    pub fn record_latency(&mut self, ms: u64) {
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        if self.latencies.len() < LATENCY_WINDOW {
            self.latencies.push(ms);
        } else {
            let evicted = std::mem::replace(&mut self.latencies[self.next_slot], ms);
            let at = self.sorted.partition_point(|v| *v < evicted);
            self.sorted.remove(at);
        }
        let at = self.sorted.partition_point(|v| *v < ms);
        self.sorted.insert(at, ms);
        self.next_slot = (self.next_slot + 1) % LATENCY_WINDOW;
    }

    /// Nearest-rank percentiles over the recent window; zeros before the first call.
    pub fn percentiles(&self) -> Percentiles {
        let sorted = &self.sorted;
        let rank = |p: usize| -> u64 {
            if sorted.is_empty() {
                return 0;
            }
            let index = (p * sorted.len()).div_ceil(100).saturating_sub(1);
            u64::from(sorted[index.min(sorted.len() - 1)])
        };
        Percentiles {
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut stats = Stats::default();
        assert_eq!(stats.percentiles(), Percentiles::default());
        for ms in 1..=100 {
            stats.record_latency(ms);
        }
        assert_eq!(
            stats.percentiles(),
            Percentiles {
                p50: 50,
                p95: 95,
                p99: 99
            }
        );
    }

    #[test]
    fn window_keeps_only_recent_calls() {
        let mut stats = Stats::default();
        for _ in 0..LATENCY_WINDOW {
            stats.record_latency(1000);
        }
        for _ in 0..LATENCY_WINDOW {
            stats.record_latency(7);
        }
        assert_eq!(stats.percentiles().p99, 7);
    }
}
