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
        // 0 for an absent rate: no configured rate is 0.
        let key = format!(
            "{key}#{}/{}/{}/{}",
            cfg.requests_per_minute.unwrap_or(0),
            cfg.burst.unwrap_or(0),
            cfg.tokens_per_minute.unwrap_or(0),
            cfg.max_wait_ms
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::registry::MAX_BREAKERS;

    fn threshold(n: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: n,
            ..BreakerConfig::default()
        }
    }

    fn fail(board: &mut PolicyBoard, cfg: Option<&BreakerConfig>, times: u32) {
        for _ in 0..times {
            assert!(board.admit("k", cfg, 0).admitted.is_ok());
            board.record("k", Verdict::Failure, None, cfg, 0);
        }
    }

    #[test]
    fn each_caller_runs_on_its_own_settings_and_the_boards_serve_only_callers_without() {
        let mut board = PolicyBoard::new(Some(threshold(5)), None);
        fail(&mut board, Some(&threshold(2)), 2);
        assert!(board.admit("k", Some(&threshold(2)), 0).admitted.is_err());
        // Another threshold is another breaker: still closed after the two failures above.
        assert!(board.admit("k", Some(&threshold(3)), 0).admitted.is_ok());
        fail(&mut board, None, 4);
        assert!(
            board.admit("k", None, 0).admitted.is_ok(),
            "the default is 5"
        );
        fail(&mut board, None, 1);
        assert!(board.admit("k", None, 0).admitted.is_err());
    }

    #[test]
    fn a_caller_limit_applies_without_board_options_and_settings_cannot_grow_memory() {
        let mut board = PolicyBoard::new(None, None);
        let five = RateLimitConfig {
            requests_per_minute: Some(5),
            max_wait_ms: 0,
            ..RateLimitConfig::default()
        };
        let taken: Vec<_> = (0..8).map(|_| board.take("u", 0, Some(&five), 0)).collect();
        assert_eq!(taken.iter().filter(|t| t.is_ok()).count(), 5);
        assert_eq!(board.take("u", 0, None, 0), Ok(0), "no default: unlimited");
        for n in 1..=5_000 {
            board.admit("k", Some(&threshold(n)), 0);
        }
        assert_eq!(board.breakers.len(), MAX_BREAKERS);
    }
}
