//! The validated client configuration the pipeline runs on. The wasm layer builds it from JS options
//! (and names the field when one is wrong); native tests build it directly.

use crate::core::breaker::BreakerConfig;
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
