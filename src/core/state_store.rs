//! Where breaker and bucket state lives: the [`StateStore`] every call is admitted on, the client's
//! own ([`LocalState`]) or one shared across isolates (`sharedState`: a Durable Object in wasm, a
//! [`PolicyBoard`] in the tests).
//!
//! Why one trait for both, asked from inside the pipeline? A shared refusal must be what a local one
//! is: counted, emitted as an error event, and bounded by the call's deadline. The pipeline does all
//! three on one path, whichever store answers ([`OwnOrShared`] picks it). The store is asynchronous
//! because a shared one is a round trip away; the local one answers at once. The caller's own
//! settings travel with every question, so a shared store applies the client's `breaker` and
//! `rateLimit`, never settings of its own.
//!
//! [`LocalState`]: crate::core::local_state::LocalState
//! [`PolicyBoard`]: crate::core::policy_board::PolicyBoard

use crate::core::breaker::{BreakerConfig, StateKind, Verdict};
use crate::core::error::Failure;
use crate::core::rate_limit::{RateLimitConfig, Reservation};
use std::future::Future;

/// Breakers and buckets, by key.
pub trait StateStore {
    /// What an admission holds until the call's verdict is reported.
    type Ticket;

    /// Breaker admission for `key` under `cfg`. `Err`: [`Failure::CircuitOpen`], or
    /// [`Failure::SharedStateUnavailable`] when a shared store cannot answer and the client fails
    /// closed.
    fn admit(
        &self,
        key: &str,
        cfg: &BreakerConfig,
        now_ms: u64,
    ) -> impl Future<Output = Result<Self::Ticket, Failure>>;

    /// Reports the verdict of a call admitted on `key` with `ticket`, without waiting.
    fn record(&self, key: &str, ticket: Self::Ticket, verdict: Verdict, now_ms: u64);

    /// The change of `key`'s breaker since last observed, for an event. None by default: a shared
    /// breaker changes in the store, where no client watches it.
    fn observe(&self, key: &str, now_ms: u64) -> Option<(StateKind, StateKind)> {
        let _ = (key, now_ms);
        None
    }

    /// Takes one request and `tokens` from the bucket `key` under `cfg`: the reservation says how
    /// long to wait before sending. `Err`: [`Failure::RateLimited`] (longer than `cfg.max_wait_ms`),
    /// or [`Failure::SharedStateUnavailable`].
    fn take(
        &self,
        key: &str,
        tokens: u64,
        cfg: &RateLimitConfig,
        now_ms: u64,
    ) -> impl Future<Output = Result<Reservation, Failure>>;

    /// The caller gave up waiting for `reservation`. Nothing by default: a shared store's take is
    /// one exact global count, kept once made.
    fn give_back(&self, key: &str, reservation: Reservation, now_ms: u64) {
        let _ = (key, reservation, now_ms);
    }
}

/// The client's own store or a shared one; also what an admission on either holds.
pub enum OwnOrShared<L, S> {
    /// The client's own.
    Own(L),
    /// Shared across isolates.
    Shared(S),
}

impl<L: StateStore, S: StateStore> StateStore for OwnOrShared<&L, &S> {
    type Ticket = OwnOrShared<L::Ticket, S::Ticket>;

    async fn admit(
        &self,
        key: &str,
        cfg: &BreakerConfig,
        now_ms: u64,
    ) -> Result<Self::Ticket, Failure> {
        match self {
            OwnOrShared::Own(own) => own.admit(key, cfg, now_ms).await.map(OwnOrShared::Own),
            OwnOrShared::Shared(shared) => shared
                .admit(key, cfg, now_ms)
                .await
                .map(OwnOrShared::Shared),
        }
    }

    fn record(&self, key: &str, ticket: Self::Ticket, verdict: Verdict, now_ms: u64) {
        // A ticket goes back to the store that issued it; a client's store never changes.
        match (self, ticket) {
            (OwnOrShared::Own(own), OwnOrShared::Own(t)) => own.record(key, t, verdict, now_ms),
            (OwnOrShared::Shared(shared), OwnOrShared::Shared(t)) => {
                shared.record(key, t, verdict, now_ms)
            }
            _ => {}
        }
    }

    fn observe(&self, key: &str, now_ms: u64) -> Option<(StateKind, StateKind)> {
        match self {
            OwnOrShared::Own(own) => own.observe(key, now_ms),
            OwnOrShared::Shared(shared) => shared.observe(key, now_ms),
        }
    }

    async fn take(
        &self,
        key: &str,
        tokens: u64,
        cfg: &RateLimitConfig,
        now_ms: u64,
    ) -> Result<Reservation, Failure> {
        match self {
            OwnOrShared::Own(own) => own.take(key, tokens, cfg, now_ms).await,
            OwnOrShared::Shared(shared) => shared.take(key, tokens, cfg, now_ms).await,
        }
    }

    fn give_back(&self, key: &str, reservation: Reservation, now_ms: u64) {
        match self {
            OwnOrShared::Own(own) => own.give_back(key, reservation, now_ms),
            OwnOrShared::Shared(shared) => shared.give_back(key, reservation, now_ms),
        }
    }
}

/// The shared store of a platform that has none: it cannot be made, so it is never asked.
pub enum NoStore {}

impl StateStore for NoStore {
    type Ticket = ();

    async fn admit(&self, _: &str, _: &BreakerConfig, _: u64) -> Result<(), Failure> {
        match *self {}
    }

    fn record(&self, _: &str, _: (), _: Verdict, _: u64) {
        match *self {}
    }

    async fn take(
        &self,
        _: &str,
        _: u64,
        _: &RateLimitConfig,
        _: u64,
    ) -> Result<Reservation, Failure> {
        match *self {}
    }
}
