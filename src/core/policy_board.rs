//! The state behind a shared [`StateStore`](crate::core::state_store::StateStore): breakers and
//! buckets for many clients, run by the core's own policies (a Durable Object hosts one).
//!
//! Each question carries the caller's settings, and state is kept per key *and* settings: clients
//! with the same `breaker` (or `rateLimit`) share one breaker (or bucket) per key, and a client never
//! runs on settings other than its own. The board's own settings (the Durable Object's
//! `RESILIENCE_OPTIONS`) only serve a caller that sends none. Bounded as a client is: at most 1,000
//! breakers, 10,000 buckets, 10,000 outstanding probe permits, long keys hashed.

use crate::core::breaker::registry::Breakers;
use crate::core::breaker::{BreakerConfig, Permit, StateKind, Verdict};
use crate::core::rate_limit::{KeyedRateLimiter, RateLimitConfig};
use crate::core::sorted_map::SortedMap;

/// Most outstanding probe permits a board keeps (a client that never reports frees its slot through
/// the breaker's own lease; this only bounds memory).
const MAX_PERMITS: usize = 10_000;
/// Most buckets kept at once.
const MAX_BUCKETS: usize = 10_000;

/// A breaker admission's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// `Ok(permit)`: admitted, with the probe permit to report back when it is a probe;
    /// `Err(retry_after_ms)`: refused.
    pub admitted: Result<Option<u32>, u64>,
    /// The breaker's state after the admission.
    pub state: StateKind,
}

/// Breakers and buckets shared by many clients.
pub struct PolicyBoard {
    breaker: Option<BreakerConfig>,
    rate_limit: Option<RateLimitConfig>,
    breakers: Breakers,
    probes: SortedMap<u32, (String, Permit)>,
    next_probe: u32,
    buckets: KeyedRateLimiter,
}

impl PolicyBoard {
    /// A board whose defaults (for callers that send no settings) are `breaker` and `rate_limit`.
    pub fn new(breaker: Option<BreakerConfig>, rate_limit: Option<RateLimitConfig>) -> PolicyBoard {
        PolicyBoard {
            breaker,
            rate_limit,
            breakers: Breakers::new(),
            probes: SortedMap::new(),
            next_probe: 0,
            buckets: KeyedRateLimiter::new(RateLimitConfig::default(), MAX_BUCKETS),
        }
    }

    /// Admission for a call on `key` under `cfg` (the board's default when `None`).
    pub fn admit(&mut self, key: &str, cfg: Option<&BreakerConfig>, now_ms: u64) -> Admission {
        let Some(cfg) = cfg.or(self.breaker.as_ref()) else {
            return Admission {
                admitted: Ok(None),
                state: StateKind::Closed,
            };
        };
        let key = breaker_key(key, cfg);
        let breaker = &mut self.breakers.get_or_insert(&key, cfg, now_ms).breaker;
        let admitted = match breaker.try_acquire(now_ms) {
            Ok(permit) if permit.probe => {
                let id = self.next_probe;
                self.next_probe = self.next_probe.wrapping_add(1);
                self.probes.insert(id, (key.clone(), permit));
                if self.probes.len() > MAX_PERMITS {
                    self.probes.pop_first();
                }
                Ok(Some(id))
            }
            Ok(_) => Ok(None),
            Err(retry_after_ms) => Err(retry_after_ms),
        };
        Admission {
            admitted,
            state: self.state(&key, now_ms),
        }
    }

    /// Records a call's verdict; a probe passes its permit. Returns the breaker's state.
    pub fn record(
        &mut self,
        key: &str,
        verdict: Verdict,
        probe: Option<u32>,
        cfg: Option<&BreakerConfig>,
        now_ms: u64,
    ) -> StateKind {
        let Some(cfg) = cfg.or(self.breaker.as_ref()) else {
            return StateKind::Closed;
        };
        let key = breaker_key(key, cfg);
        let probe = probe
            .and_then(|id| self.probes.remove(&id))
            .filter(|(probe_key, _)| *probe_key == key)
            .map(|(_, permit)| permit);
        if let Some(breaker) = self.breakers.get_mut(&key).map(|t| &mut t.breaker) {
            // A call admitted on a lease while closed counts as one admitted now (never as a probe).
            let permit = match probe {
                Some(permit) => Some(permit),
                None if breaker.state(now_ms) == StateKind::Closed => {
                    breaker.try_acquire(now_ms).ok()
                }
                None => None,
            };
            if let Some(permit) = permit {
                breaker.record(now_ms, permit, verdict);
            }
        }
        self.state(&key, now_ms)
    }

    /// `Ok(wait_ms)` or `Err(retry_after_ms)` for one request and `tokens` on `key` under `cfg` (the
    /// board's default when `None`).
    pub fn take(
        &mut self,
        key: &str,
        tokens: u64,
        cfg: Option<&RateLimitConfig>,
        now_ms: u64,
    ) -> Result<u64, u64> {
        let Some(cfg) = cfg.or(self.rate_limit.as_ref()) else {
            return Ok(0);
        };
        let key = format!(
            "{key}#{:?}/{:?}/{:?}/{}",
            cfg.requests_per_minute, cfg.burst, cfg.tokens_per_minute, cfg.max_wait_ms
        );
        self.buckets
            .get_with(&key, cfg, now_ms)
            .reserve(now_ms, tokens)
            .map(|reservation| reservation.wait_ms)
    }

    fn state(&mut self, key: &str, now_ms: u64) -> StateKind {
        self.breakers
            .get_mut(key)
            .map_or(StateKind::Closed, |t| t.breaker.state(now_ms))
    }
}

/// The breaker of `key` under `cfg`: clients with other settings have their own.
fn breaker_key(key: &str, cfg: &BreakerConfig) -> String {
    format!(
        "{key}#{}/{}/{}/{}/{}/{}/{}",
        cfg.failure_threshold,
        cfg.error_threshold_percentage,
        cfg.volume_threshold,
        cfg.window_ms,
        cfg.reset_timeout_ms,
        cfg.half_open_max_calls,
        cfg.success_threshold
    )
}
