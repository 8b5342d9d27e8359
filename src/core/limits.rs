//! Byte limits on what an upstream sends: one buffered answer, and one line or event of a stream.
//!
//! Everything the client reads itself is read into memory a Worker shares with every request (and
//! wasm memory never shrinks): a hostile or broken upstream sending an endless body or an endless
//! event line must fail its call with `RESPONSE_TOO_LARGE` once past the bound, not take the memory
//! or the process. The bounds are checked on each chunk's length before the chunk is copied.

pub use resilient_llm_sse::DEFAULT_MAX_EVENT_BYTES;

/// The bound on a buffered answer (a `chat()` body, the generated text of a stream, a cached body,
/// a usage read) when none is set: 8 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 << 20;

/// The largest bound an option may set: 1 GiB (wasm32 memory is 4 GiB, and a JS string at most 1 GiB).
pub const MAX_LIMIT_BYTES: usize = 1 << 30;

/// The limits in force for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `limits.maxResponseBytes`.
    pub max_response_bytes: usize,
    /// `limits.maxEventBytes`.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// A request's own limits, each replacing the client's when set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `resilience.limits.maxResponseBytes`.
    pub max_response_bytes: Option<usize>,
    /// `resilience.limits.maxEventBytes`.
    pub max_event_bytes: Option<usize>,
}

impl Limits {
    /// These limits with a request's overrides applied.
    pub fn overridden_by(self, overrides: &LimitOverrides) -> Limits {
        Limits {
            max_response_bytes: overrides
                .max_response_bytes
                .unwrap_or(self.max_response_bytes),
            max_event_bytes: overrides.max_event_bytes.unwrap_or(self.max_event_bytes),
        }
    }
}

/// Which bound an answer went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A buffered answer.
    Response,
    /// One line or event of a stream.
    Event,
}

impl Bound {
    /// The option that raises it.
    pub fn option_name(self) -> &'static str {
        match self {
            Bound::Response => "limits.maxResponseBytes",
            Bound::Event => "limits.maxEventBytes",
        }
    }

    /// What went past it, for the message.
    pub fn what(self) -> &'static str {
        match self {
            Bound::Response => "The answer is larger than",
            Bound::Event => "A line or event of the stream is larger than",
        }
    }
}

/// Adds a chunk of `len` bytes to `total` bytes read so far: the new total, or `None` once past `max`.
pub fn add_within(total: usize, len: usize, max: usize) -> Option<usize> {
    total.checked_add(len).filter(|sum| *sum <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_overrides_each_limit_on_its_own() {
        let client = Limits {
            max_response_bytes: 10,
            max_event_bytes: 5,
        };
        let request = LimitOverrides {
            max_event_bytes: Some(7),
            ..LimitOverrides::default()
        };
        assert_eq!(
            client.overridden_by(&request),
            Limits {
                max_response_bytes: 10,
                max_event_bytes: 7
            }
        );
    }

    #[test]
    fn totals_stop_at_the_bound_without_overflow() {
        assert_eq!(add_within(6, 4, 10), Some(10));
        assert_eq!(add_within(6, 5, 10), None);
        assert_eq!(add_within(usize::MAX, 1, usize::MAX), None);
    }
}
