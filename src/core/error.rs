//! Why a call failed, as the core knows it; the wasm layer turns each into a JS error with a stable
//! `name` and `code`.

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// `timeout.attemptMs`: one attempt took too long.
    Attempt,
    /// `timeout.totalMs`: the whole call, all attempts and waits included.
    Total,
    /// `timeout.firstByteMs`: no response headers (or first event) in time.
    FirstByte,
    /// `timeout.idleMs`: a stream went quiet.
    Idle,
}

impl TimeoutPhase {
    /// The option that set this deadline, for messages.
    pub fn option_name(self) -> &'static str {
        match self {
            TimeoutPhase::Attempt => "timeout.attemptMs",
            TimeoutPhase::Total => "timeout.totalMs",
            TimeoutPhase::FirstByte => "timeout.firstByteMs",
            TimeoutPhase::Idle => "timeout.idleMs",
        }
    }
}

/// A call that ended without a response to hand back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A deadline ran out.
    Timeout {
        /// Which one.
        phase: TimeoutPhase,
        /// Its length.
        after_ms: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// The platform refused to send the request (fetch rejected it as malformed); nothing was
    /// retried and no breaker counted it.
    InvalidRequest {
        /// The platform's message.
        message: String,
    },
    /// The caller aborted the call: no failure of the upstream (no breaker counted it).
    Aborted {
        /// Attempts made, the aborted one included.
        attempts: u32,
    },
    /// The connection failed (fetch rejected).
    Network {
        /// The platform's message.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The circuit breaker for `key` is open.
    CircuitOpen {
        /// The breaker's key.
        key: String,
        /// When a probe may be admitted.
        retry_after_ms: u64,
    },
    /// The shared state store (breakers and buckets shared across isolates) is unreachable, and the
    /// client is configured to fail closed.
    SharedStateUnavailable {
        /// The breaker or bucket key.
        key: String,
    },
    /// The rate limiter would have made the call wait longer than `maxWaitMs`.
    RateLimited {
        /// The bucket's key.
        key: String,
        /// When capacity is expected.
        retry_after_ms: u64,
    },
}
