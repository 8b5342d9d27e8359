//! resilient-llm: resilient `fetch` for LLM APIs.
//!
//! The crate has two layers and one rule: [`core`] never touches JavaScript, a clock or the network.
//! Every policy (retry, circuit breaker, rate limiter, SSE parser) is a small state machine that takes
//! `now` as an argument, and the request pipeline that composes them is one async function generic over
//! a [`core::platform::Platform`]. Native tests drive it with a simulated clock and a scripted upstream;
//! the `wasm` layer (wasm32 only) implements the platform with `fetch` and timers and exposes the
//! `ResilientClient` class to JavaScript.
#![deny(missing_docs)]

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
