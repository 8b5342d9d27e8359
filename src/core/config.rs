//! The validated client configuration the pipeline runs on. The wasm layer builds it from JS options
//! (and names the field when one is wrong); native tests build it directly.
//!
//! A call's deadlines are its client's with the request's `resilience.timeout` laid over them
//! ([`Timeouts::overridden_by`]), merged once when the request is prepared; every bound the call
//! runs under (attempt, total, first byte, idle gap) is read from that one merged value, through
//! the bounds below, so a per-request override cannot be honoured in one place and missed in another.

use crate::core::breaker::BreakerConfig;
use crate::core::error::TimeoutPhase;
use crate::core::rate_limit::RateLimitConfig;
use crate::core::retry::RetryConfig;

/// Deadlines, in milliseconds; `None` means no deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One attempt, until response headers.
    pub attempt_ms: Option<u64>,
    /// The whole call: every attempt, backoff and rate-limit wait.
    pub total_ms: Option<u64>,
    /// Until response headers (fetch) or the first event (streams).
    pub first_byte_ms: Option<u64>,
    /// The longest gap between stream chunks.
    pub idle_ms: Option<u64>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            attempt_ms: Some(600_000),
            total_ms: None,
            first_byte_ms: None,
            idle_ms: None,
        }
    }
}

impl Timeouts {
    /// These timeouts with every field `other` sets taking precedence (per-request overrides).
    pub fn overridden_by(self, other: &TimeoutOverrides) -> Timeouts {
        Timeouts {
            attempt_ms: other.attempt_ms.unwrap_or(self.attempt_ms),
            total_ms: other.total_ms.unwrap_or(self.total_ms),
            first_byte_ms: other.first_byte_ms.unwrap_or(self.first_byte_ms),
            idle_ms: other.idle_ms.unwrap_or(self.idle_ms),
        }
    }

    /// The deadline on one attempt, until its answer is usable (headers; a stream's first event):
    /// the tighter of `attemptMs` and `firstByteMs`, and the option that set it.
    pub fn first_byte_bound(self) -> Option<(TimeoutPhase, u64)> {
        match (self.attempt_ms, self.first_byte_ms) {
            (Some(a), Some(f)) if f < a => Some((TimeoutPhase::FirstByte, f)),
            (Some(a), _) => Some((TimeoutPhase::Attempt, a)),
            (None, Some(f)) => Some((TimeoutPhase::FirstByte, f)),
            (None, None) => None,
        }
    }

    /// The longest gap between the chunks of a body under way (an event stream after its first
    /// event, a chat answer after its headers): `idleMs`, else `attemptMs`, so that with the
    /// defaults a body that stalls is still given up on (after 600 s).
    pub fn idle_bound(self) -> Option<(TimeoutPhase, u64)> {
        match (self.idle_ms, self.attempt_ms) {
            (Some(ms), _) => Some((TimeoutPhase::Idle, ms)),
            (None, Some(ms)) => Some((TimeoutPhase::Attempt, ms)),
            (None, None) => None,
        }
    }
}

/// Per-request timeout fields: `None` keeps the client's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutOverrides {
    /// Overrides [`Timeouts::attempt_ms`].
    pub attempt_ms: Option<Option<u64>>,
    /// Overrides [`Timeouts::total_ms`].
    pub total_ms: Option<Option<u64>>,
    /// Overrides [`Timeouts::first_byte_ms`].
    pub first_byte_ms: Option<Option<u64>>,
    /// Overrides [`Timeouts::idle_ms`].
    pub idle_ms: Option<Option<u64>>,
}

/// A request's `resilience.cache` mode: how it may use stored and in-flight answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Cacheable requests (GET, deterministic POST) use the cache and share identical calls in flight.
    #[default]
    Default,
    /// Always go to the upstream; never share.
    Bypass,
    /// Treat the request as cacheable whatever its method or body.
    Force,
    /// Answer only from the cache.
    OnlyIfCached,
}

/// Whether a breaker or bucket is shared by the whole client or kept per upstream origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One for every upstream origin.
    Origin,
    /// One for the whole client.
    Client,
}

/// Everything the pipeline needs to know, validated.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Default deadlines.
    pub timeout: Timeouts,
    /// Retry policy; `None` disables retries.
    pub retry: Option<RetryConfig>,
    /// Circuit breaker and its scope; `None` disables it.
    pub breaker: Option<(BreakerConfig, Scope)>,
    /// Rate limit and its scope; `None` disables it.
    pub rate_limit: Option<(RateLimitConfig, Scope)>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Timeouts::default(),
            retry: Some(RetryConfig::default()),
            breaker: Some((BreakerConfig::default(), Scope::Origin)),
            rate_limit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Timeouts {
        Timeouts {
            attempt_ms: Some(10_000),
            total_ms: Some(60_000),
            first_byte_ms: Some(5_000),
            idle_ms: Some(8_000),
        }
    }

    #[test]
    fn per_request_timeouts_override_the_clients_field_by_field() {
        let request = TimeoutOverrides {
            idle_ms: Some(Some(300)),
            first_byte_ms: Some(Some(250)),
            total_ms: Some(Some(1_000)),
            ..TimeoutOverrides::default()
        };
        let merged = client().overridden_by(&request);
        assert_eq!(merged.idle_bound(), Some((TimeoutPhase::Idle, 300)));
        assert_eq!(
            merged.first_byte_bound(),
            Some((TimeoutPhase::FirstByte, 250))
        );
        assert_eq!(merged.total_ms, Some(1_000));
        assert_eq!(
            merged.attempt_ms,
            Some(10_000),
            "fields the request leaves keep the client's"
        );
        assert_eq!(
            client().overridden_by(&TimeoutOverrides::default()),
            client()
        );
    }

    #[test]
    fn a_request_can_lift_a_client_deadline() {
        let request = TimeoutOverrides {
            idle_ms: Some(None),
            first_byte_ms: Some(None),
            ..TimeoutOverrides::default()
        };
        let merged = client().overridden_by(&request);
        // Without idleMs a body's gaps fall back to the attempt deadline, never to none at all.
        assert_eq!(merged.idle_bound(), Some((TimeoutPhase::Attempt, 10_000)));
        assert_eq!(
            merged.first_byte_bound(),
            Some((TimeoutPhase::Attempt, 10_000))
        );
    }

    #[test]
    fn the_tighter_of_attempt_and_first_byte_bounds_an_attempt() {
        let bound = |attempt_ms, first_byte_ms| {
            Timeouts {
                attempt_ms,
                first_byte_ms,
                ..Timeouts::default()
            }
            .first_byte_bound()
        };
        assert_eq!(
            bound(Some(100), Some(50)),
            Some((TimeoutPhase::FirstByte, 50))
        );
        assert_eq!(
            bound(Some(100), Some(100)),
            Some((TimeoutPhase::Attempt, 100))
        );
        assert_eq!(
            bound(Some(100), Some(200)),
            Some((TimeoutPhase::Attempt, 100))
        );
        assert_eq!(bound(None, Some(200)), Some((TimeoutPhase::FirstByte, 200)));
        assert_eq!(bound(None, None), None);
    }

    #[test]
    fn a_body_with_no_deadlines_at_all_has_no_idle_bound() {
        let none = Timeouts {
            attempt_ms: None,
            ..Timeouts::default()
        };
        assert_eq!(none.idle_bound(), None);
        assert_eq!(
            Timeouts::default().idle_bound(),
            Some((TimeoutPhase::Attempt, 600_000))
        );
    }
}
