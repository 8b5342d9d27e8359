//! The SSE parser: see the `resilient-llm-sse` crate (built for speed while the rest is built for
//! size).

pub use resilient_llm_sse::{EventSink, Packed, SseEvent, SseParser};
