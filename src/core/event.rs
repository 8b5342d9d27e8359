//! Events the pipeline reports as it works: what `client.on(type, listener)` delivers.
//!
//! Events borrow from the call in flight, so emitting one allocates nothing; the platform converts it
//! only when somebody listens to its kind.

use crate::core::breaker::StateKind;
use crate::core::error::Failure;

/// Why an attempt is being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// A retryable HTTP status.
    Status(u16),
    /// The attempt timed out.
    Timeout,
    /// The connection failed.
    Network,
    /// A chat stream was cut after its first delta and is resumed.
    StreamCut,
}

/// One thing that happened inside the pipeline.
#[derive(Debug)]
pub enum Event<'a> {
    /// An attempt is about to be sent.
    Request {
        /// The request URL.
        url: &'a str,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// An attempt got response headers.
    Response {
        /// The request URL.
        url: &'a str,
        /// The HTTP status.
        status: u16,
        /// 1 for the first attempt.
        attempt: u32,
        /// Time from the start of the call.
        elapsed_ms: u64,
    },
    /// The previous attempt failed and another follows after a delay.
    Retry {
        /// The request URL.
        url: &'a str,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
        /// How long the pipeline waits first.
        delay_ms: u64,
        /// What failed.
        reason: RetryReason,
        /// Whether the delay came from the server (`Retry-After` and friends).
        from_server: bool,
    },
    /// A circuit breaker changed state.
    Breaker {
        /// The breaker's key (an origin, or "client").
        key: &'a str,
        /// The state before.
        from: StateKind,
        /// The state now.
        to: StateKind,
    },
    /// The rate limiter delayed or rejected a call.
    RateLimited {
        /// The bucket's key.
        key: &'a str,
        /// How long the call waits (or would have had to wait, when rejected).
        wait_ms: u64,
        /// True when the wait exceeded `maxWaitMs` and the call was rejected.
        rejected: bool,
    },
    /// The response cache answered, missed, stored, or served a stale entry.
    Cache {
        /// The request URL.
        url: &'a str,
        /// `"hit"`, `"miss"`, `"stale"` (served on upstream failure) or `"store"`.
        result: &'static str,
    },
    /// A chat call moved on to the next target of its fallback chain.
    Fallback {
        /// The target that failed.
        from: &'a str,
        /// The target tried next.
        to: &'a str,
        /// Why: the failed target's error code.
        reason: &'a str,
    },
    /// A hedged call's race was decided ([`crate::core::hedge`]).
    Hedge {
        /// The target whose first token was late.
        from: &'a str,
        /// The target started beside it.
        to: &'a str,
        /// How late the first token was when the hedge started.
        after_ms: u64,
        /// The target that produced its first token first; `None` when both failed.
        winner: Option<&'a str>,
    },
    /// A budget crossed a threshold (80% or 100% of a cap) for a user.
    Budget {
        /// The user (or "anonymous").
        user: &'a str,
        /// Which cap (the option name).
        cap: &'static str,
        /// How much of it is used, per mille.
        used_per_mille: u64,
    },
    /// A cache store failed; the request carried on as a miss.
    StoreError {
        /// The request URL.
        url: &'a str,
        /// The store's message.
        message: &'a str,
    },
    /// A call failed with an error (not an HTTP status).
    Error {
        /// The request URL.
        url: &'a str,
        /// What went wrong.
        failure: &'a Failure,
    },
}

impl Event<'_> {
    /// The event type name listeners subscribe to.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Request { .. } => "request",
            Event::Response { .. } => "response",
            Event::Retry { .. } => "retry",
            Event::Breaker { .. } => "breaker",
            Event::RateLimited { .. } => "rateLimited",
            Event::Cache { .. } => "cache",
            Event::Fallback { .. } => "fallback",
            Event::Hedge { .. } => "hedge",
            Event::Budget { .. } => "budget",
            Event::StoreError { .. } | Event::Error { .. } => "error",
        }
    }
}
