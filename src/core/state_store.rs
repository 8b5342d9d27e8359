//! Breaker and bucket state held outside the client: the [`StateStore`] the pipeline asks instead of
//! its own breakers and buckets when state is shared across isolates (`sharedState`).
//!
//! Why a trait the pipeline calls, and not an admission step around it? A shared rejection must be
//! what a local one is: counted, emitted as an error event, and bounded by the call's deadline. Only
//! the pipeline does all three, so the store is asked from inside it. The store is asynchronous (the
//! wasm one is a Durable Object behind the JS platform; the tests' one a [`PolicyBoard`] on the
//! simulated clock). The caller's own settings travel with every question, so a store applies the
//! client's `breaker` and `rateLimit`, never settings of its own.
//!
//! [`PolicyBoard`]: crate::core::policy_board::PolicyBoard

use crate::core::breaker::{BreakerConfig, Verdict};
use crate::core::error::Failure;
use crate::core::rate_limit::RateLimitConfig;
use std::future::Future;

/// A breaker and bucket store shared by many clients.
pub trait StateStore {
    /// What an admission holds until the call's verdict is reported.
    type Ticket;

    /// Breaker admission for `key` under `cfg`. `Err`: [`Failure::CircuitOpen`], or
    /// [`Failure::SharedStateUnavailable`] when the store cannot answer and the client fails closed.
    fn admit(
        &self,
        key: &str,
        cfg: &BreakerConfig,
        now_ms: u64,
    ) -> impl Future<Output = Result<Self::Ticket, Failure>>;

    /// Reports the verdict of a call admitted with `ticket`, without waiting.
    fn record(&self, ticket: Self::Ticket, verdict: Verdict);

    /// Takes one request and `tokens` from the bucket `key` under `cfg`: the wait before sending.
    /// `Err`: [`Failure::RateLimited`] (longer than `cfg.max_wait_ms`), or
    /// [`Failure::SharedStateUnavailable`].
    fn take(
        &self,
        key: &str,
        tokens: u64,
        cfg: &RateLimitConfig,
    ) -> impl Future<Output = Result<u64, Failure>>;
}

/// The store of a platform that has none: it cannot be made, so it is never asked.
pub enum NoStore {}

impl StateStore for NoStore {
    type Ticket = ();

    async fn admit(&self, _: &str, _: &BreakerConfig, _: u64) -> Result<(), Failure> {
        match *self {}
    }

    fn record(&self, _: (), _: Verdict) {
        match *self {}
    }

    async fn take(&self, _: &str, _: u64, _: &RateLimitConfig) -> Result<u64, Failure> {
        match *self {}
    }
}
