//! The `Platform`: everything the pipeline needs from the outside world, and nothing more.
//!
//! The wasm build implements it with `fetch`, `setTimeout` and `Date.now`; the native tests implement it
//! with a simulated clock and a scripted upstream, so the whole interplay of retries, breakers and rate
//! limits runs deterministically in simulated time. Requests and responses stay opaque to the core: it
//! only reads a status and headers, so a JS `Response` never has to be copied into Rust.

use crate::core::event::Event;
use crate::core::llm::ErrorClass;
use crate::core::state_store::StateStore;
use std::future::Future;

/// What the core may read of a response.
pub trait ResponseMeta {
    /// The HTTP status code.
    fn status(&self) -> u16;
    /// A header value by (case-insensitive) name.
    fn header(&self, name: &str) -> Option<String>;
    /// For LLM calls: the class of an error answer, read from its body (what retrying can fix).
    fn error_class(&self) -> Option<ErrorClass> {
        None
    }
}

/// Why an attempt got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The connection failed: worth retrying.
    Network(String),
    /// The platform refused to send the request at all (a malformed method, header or body):
    /// retrying cannot help, and it says nothing about the upstream's health.
    Invalid(String),
    /// The caller aborted the attempt (the platform sends with the caller's signal, and it
    /// fired): nothing is known of the upstream, so no breaker counts it and it is not retried.
    Aborted,
}

/// Clock, timers, transport and event sink. All futures are cancelled by dropping them.
pub trait Platform {
    /// A request ready to send; sent again as is on every retry.
    type Request;
    /// A response whose status and headers the core can read.
    type Response: ResponseMeta;
    /// Where breaker and bucket state lives when it is shared ([`NoStore`](crate::core::state_store::NoStore) when it never is).
    type Store: StateStore;

    /// Monotonic milliseconds, for policies.
    fn now_ms(&self) -> u64;
    /// Milliseconds since the Unix epoch, for HTTP-dates.
    fn wall_ms(&self) -> u64;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    /// Sends one attempt; resolves when the response headers arrive.
    fn send(
        &self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<Self::Response, SendError>>;
    /// Releases a response that will not be handed back (a retried attempt): cancels its body.
    fn discard(&self, response: Self::Response);
    /// Hands `each` up to `copies` more, independently readable copies of a response, for the
    /// callers sharing one upstream call; fewer (none) when they cannot be made (the body was
    /// already read). Asked for all at once, so that copying costs the same for each of them
    /// however many there are.
    fn share(&self, response: &Self::Response, copies: usize, each: &mut dyn FnMut(Self::Response));
    /// Tells listeners what happened. Cheap when nobody listens.
    fn emit(&self, event: Event);
    /// The shared store the pipeline asks instead of its own breakers and buckets, when set.
    fn store(&self) -> Option<&Self::Store> {
        None
    }
}
