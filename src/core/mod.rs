//! The pure core: policies, the request pipeline and the SSE parser, with no JavaScript in sight.

pub mod bounded_key;
pub mod breaker;
pub mod cache;
pub mod config;
pub mod dedupe;
pub mod error;
pub mod event;
pub mod json;
pub mod limits;
pub mod llm;
pub mod metrics;
pub mod ordered_keys;
pub mod pipeline;
pub mod platform;
pub mod race;
pub mod rate_limit;
pub mod resume;
pub mod retry;
pub mod rng;
pub mod sorted_map;
pub mod sse;
pub mod stats;
pub mod stream;
pub mod string_map;
pub mod text;
pub mod wide;
