//! The retry policy: which outcomes to retry, and after how long.
//!
//! Why a decision function and not a retry loop? The loop needs a clock, a sleep and the network,
//! which the core does not have. [`RetryState::decide`] only looks at what one attempt produced and
//! says what to do next; the pipeline sleeps, re-sends and calls it again. That keeps the policy
//! testable in simulated time and identical on every platform.
//!
//! The order of questions matters:
//! 1. Success (2xx/3xx) is [`Decision::Done`], whatever the headers say.
//! 2. Retryable? An error class read from the body that retrying cannot fix (an exhausted quota
//!    behind a 429, see [`ErrorClass::retryable`]) stops. Then the server's `x-should-retry` wins when present (`true` retries even a status
//!    outside `retry_on`, `false` stops); otherwise timeouts, network errors and the statuses in
//!    `retry_on` are retryable. Anything else is `Done`: retrying a 400 only repeats the error.
//! 3. Out of retries? [`Decision::Exhausted`]. It takes precedence over a too-long hint, since
//!    nothing will be retried either way.
//! 4. How long? A server hint (`retry-after-ms`, then `Retry-After`; see [`hints`]) is used as is,
//!    never jittered: the server knows its own window. A hint above `max_retry_after_ms` is
//!    [`Decision::HintTooLong`]: sleeping a minute inside a `fetch` is worse than handing the
//!    response back with the delay attached. Without a hint the delay comes from the [`Backoff`].
//!
//! The backoff advances on every retry, hinted or not, so the `n`-th retry without a hint always
//! waits about `base * 2^n` no matter which earlier retries were hinted.
//!
//! Retries per call are only half of the story: [`budget::RetryBudget`] bounds the retries of all
//! calls together, which is what protects an upstream in an outage. The pipeline asks the budget
//! before acting on a [`Decision::Retry`].

use crate::core::llm::ErrorClass;

pub mod backoff;
pub mod budget;
pub mod hints;
pub mod limit_headers;

pub use backoff::Backoff;
pub use budget::RetryBudget;

use crate::core::rng::Rng;

/// How backoff delays are randomized (see [`backoff`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`.
    Equal,
    /// AWS's decorrelated jitter: `min(max, uniform [base, previous delay * 3])`.
    Decorrelated,
    /// Exactly `d`.
    None,
}

/// The hard ceiling on `max_retries`, whatever the configuration says.
pub const MAX_RETRIES_CAP: u32 = 10;

/// Retry configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt (capped at [`MAX_RETRIES_CAP`]); 0 disables retries.
    pub max_retries: u32,
    /// The first backoff delay, doubled on each retry.
    pub base_delay_ms: u64,
    /// The ceiling of a backoff delay (not of a server hint: see `max_retry_after_ms`).
    pub max_delay_ms: u64,
    /// How backoff delays are randomized.
    pub jitter: Jitter,
    /// HTTP statuses worth retrying.
    pub retry_on: Vec<u16>,
    /// The longest server-requested delay that is honored by waiting; longer ones end the call.
    pub max_retry_after_ms: u64,
    /// Retries allowed per original request across calls (see [`budget`]).
    pub budget_ratio: f64,
    /// Resume a chat stream cut after its first delta (up to `max_retries` times) by sending it again
    /// and handing out only what follows the text already delivered, provided the new answer starts
    /// with exactly that text.
    pub resume_streams: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 2,
            base_delay_ms: 500,
            max_delay_ms: 8000,
            jitter: Jitter::Full,
            retry_on: vec![408, 409, 429, 500, 502, 503, 504, 529],
            max_retry_after_ms: 60_000,
            budget_ratio: 0.2,
            resume_streams: true,
        }
    }
}

/// What one attempt produced, as the retry policy sees it.
#[derive(Clone, Copy)]
pub enum Outcome<'a> {
    /// The server answered.
    Response {
        /// The HTTP status.
        status: u16,
        /// Header lookup. Names are passed in lowercase; the lookup should be case-insensitive
        /// (as `Headers.get` is).
        headers: &'a dyn Fn(&str) -> Option<String>,
        /// For LLM calls: the class of an error answer, read from its body.
        error_class: Option<ErrorClass>,
    },
    /// The attempt timed out.
    Timeout,
    /// The request failed before any response (DNS, connection reset, CORS...).
    Network,
}

impl core::fmt::Debug for Outcome<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outcome::Response { status, .. } => f
                .debug_struct("Response")
                .field("status", status)
                .finish_non_exhaustive(),
            Outcome::Timeout => f.write_str("Timeout"),
            Outcome::Network => f.write_str("Network"),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Return this outcome: it succeeded, or retrying it would not help.
    Done,
    /// Wait `delay_ms`, then try again. `from_server` when the delay came from a response header.
    Retry {
        /// How long to wait before the next attempt.
        delay_ms: u64,
        /// Whether the delay was requested by the server (and so was not jittered).
        from_server: bool,
    },
    /// The server asked for a delay above `max_retry_after_ms`: return the response now, with the
    /// requested delay attached.
    HintTooLong {
        /// The delay the server asked for.
        delay_ms: u64,
    },
    /// The outcome is retryable but no retries are left.
    Exhausted,
}

const X_SHOULD_RETRY: &str = "x-should-retry";
const RETRY_AFTER_MS: &str = "retry-after-ms";
const RETRY_AFTER: &str = "retry-after";

/// The retry state of one call.
#[derive(Debug, Clone)]
pub struct RetryState {
    retries: u32,
    backoff: Backoff,
}

impl RetryState {
    /// Fresh state for a call. The backoff parameters (`base_delay_ms`, `max_delay_ms`, `jitter`)
    /// are taken from `cfg` here; [`decide`](Self::decide) reads the rest.
    pub fn new(cfg: &RetryConfig) -> Self {
        RetryState {
            retries: 0,
            // The backoff's own generator is unused: `decide` lends the pipeline's.
            backoff: Backoff::new(cfg.base_delay_ms, cfg.max_delay_ms, cfg.jitter, Rng::new(0)),
        }
    }

    /// Classify `outcome` and decide. `wall_now_ms` is Unix-epoch ms (for HTTP-date Retry-After).
    /// Increments [`retries`](Self::retries) exactly when it returns [`Decision::Retry`].
    pub fn decide(
        &mut self,
        cfg: &RetryConfig,
        outcome: &Outcome,
        wall_now_ms: u64,
        rng: &mut Rng,
    ) -> Decision {
        let headers = match *outcome {
            Outcome::Timeout | Outcome::Network => None,
            Outcome::Response {
                status,
                headers,
                error_class,
            } => {
                if (200..400).contains(&status) {
                    return Decision::Done;
                }
                if error_class.is_some_and(|class| !class.retryable()) {
                    return Decision::Done;
                }
                let server_says = headers(X_SHOULD_RETRY)
                    .as_deref()
                    .and_then(hints::parse_should_retry);
                let retryable = server_says.unwrap_or_else(|| cfg.retry_on.contains(&status));
                if !retryable {
                    return Decision::Done;
                }
                Some(headers)
            }
        };
        if self.retries >= cfg.max_retries.min(MAX_RETRIES_CAP) {
            return Decision::Exhausted;
        }
        let hint = headers.and_then(|h| server_delay(h, wall_now_ms));
        if let Some(delay_ms) = hint {
            if delay_ms > cfg.max_retry_after_ms {
                return Decision::HintTooLong { delay_ms };
            }
        }
        let backoff_ms = self.backoff.next_with(rng);
        self.retries += 1;
        match hint {
            Some(delay_ms) => Decision::Retry {
                delay_ms,
                from_server: true,
            },
            None => Decision::Retry {
                delay_ms: backoff_ms,
                from_server: false,
            },
        }
    }

    /// Retries decided so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

/// The server's requested delay: `retry-after-ms`, else `Retry-After`; unparseable values are
/// skipped.
pub(crate) fn server_delay(
    headers: &dyn Fn(&str) -> Option<String>,
    wall_now_ms: u64,
) -> Option<u64> {
    headers(RETRY_AFTER_MS)
        .as_deref()
        .and_then(hints::parse_retry_after_ms)
        .or_else(|| {
            headers(RETRY_AFTER)
                .as_deref()
                .and_then(|v| hints::parse_retry_after(v, wall_now_ms))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_with(
        state: &mut RetryState,
        cfg: &RetryConfig,
        status: u16,
        pairs: &[(&str, &str)],
    ) -> Decision {
        let lookup = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
        };
        let outcome = Outcome::Response {
            status,
            headers: &lookup,
            error_class: None,
        };
        state.decide(cfg, &outcome, 0, &mut Rng::new(1))
    }

    fn no_jitter() -> RetryConfig {
        RetryConfig {
            jitter: Jitter::None,
            max_retries: 5,
            ..RetryConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let c = RetryConfig::default();
        assert_eq!(c.max_retries, 2);
        assert_eq!((c.base_delay_ms, c.max_delay_ms), (500, 8000));
        assert_eq!(c.jitter, Jitter::Full);
        assert_eq!(c.retry_on, [408, 409, 429, 500, 502, 503, 504, 529]);
        assert_eq!(c.max_retry_after_ms, 60_000);
        assert!((c.budget_ratio - 0.2).abs() < 1e-12);
    }

    #[test]
    fn success_and_non_retryable_are_done() {
        let cfg = no_jitter();
        let mut s = RetryState::new(&cfg);
        for status in [200, 204, 301, 304, 400, 401, 404, 422, 501] {
            assert_eq!(decide_with(&mut s, &cfg, status, &[]), Decision::Done);
        }
        // Even when the server says retry, a success is a success.
        assert_eq!(
            decide_with(&mut s, &cfg, 200, &[("x-should-retry", "true")]),
            Decision::Done
        );
        assert_eq!(s.retries(), 0);
    }

    #[test]
    fn backoff_sequence_without_hints() {
        let cfg = no_jitter();
        let mut s = RetryState::new(&cfg);
        let mut rng = Rng::new(0);
        let mut delays = Vec::new();
        for outcome in [
            Outcome::Timeout,
            Outcome::Network,
            Outcome::Timeout,
            Outcome::Network,
            Outcome::Timeout,
        ] {
            match s.decide(&cfg, &outcome, 0, &mut rng) {
                Decision::Retry {
                    delay_ms,
                    from_server: false,
                } => delays.push(delay_ms),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000]);
        assert_eq!(
            s.decide(&cfg, &Outcome::Timeout, 0, &mut rng),
            Decision::Exhausted
        );
        assert_eq!(s.retries(), 5);
    }

    #[test]
    fn hints_in_order() {
        let cfg = no_jitter();
        let mut s = RetryState::new(&cfg);
        let both = [("retry-after-ms", "250.9"), ("retry-after", "7")];
        assert_eq!(
            decide_with(&mut s, &cfg, 429, &both),
            Decision::Retry {
                delay_ms: 250,
                from_server: true
            }
        );
        let bad_ms = [("retry-after-ms", "soon"), ("retry-after", "7")];
        assert_eq!(
            decide_with(&mut s, &cfg, 503, &bad_ms),
            Decision::Retry {
                delay_ms: 7000,
                from_server: true
            }
        );
        // Unparseable everything: backoff (third retry: 500 * 2^2).
        let junk = [("retry-after-ms", "-1"), ("retry-after", "later")];
        assert_eq!(
            decide_with(&mut s, &cfg, 503, &junk),
            Decision::Retry {
                delay_ms: 2000,
                from_server: false
            }
        );
    }

    #[test]
    fn an_error_class_retrying_cannot_fix_stops_even_against_the_servers_hint() {
        let cfg = no_jitter();
        let mut s = RetryState::new(&cfg);
        let hint = |name: &str| (name == X_SHOULD_RETRY).then(|| "true".to_string());
        let answer = |error_class| Outcome::Response {
            status: 429,
            headers: &hint,
            error_class,
        };
        let mut rng = Rng::new(1);
        let quota = answer(Some(ErrorClass::QuotaExhausted));
        assert_eq!(s.decide(&cfg, &quota, 0, &mut rng), Decision::Done);
        let busy = answer(Some(ErrorClass::RateLimited));
        assert!(matches!(
            s.decide(&cfg, &busy, 0, &mut rng),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn should_retry_header_overrides_status() {
        let cfg = no_jitter();
        let mut s = RetryState::new(&cfg);
        assert!(matches!(
            decide_with(&mut s, &cfg, 400, &[("x-should-retry", "true")]),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide_with(&mut s, &cfg, 503, &[("x-should-retry", "false")]),
            Decision::Done
        );
        // Garbage is ignored: the status decides.
        assert!(matches!(
            decide_with(&mut s, &cfg, 503, &[("x-should-retry", "maybe")]),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn too_long_hint_and_exhaustion_precedence() {
        let cfg = RetryConfig {
            max_retries: 1,
            max_retry_after_ms: 10_000,
            ..no_jitter()
        };
        let mut s = RetryState::new(&cfg);
        assert_eq!(
            decide_with(&mut s, &cfg, 429, &[("retry-after", "11")]),
            Decision::HintTooLong { delay_ms: 11_000 }
        );
        assert_eq!(s.retries(), 0);
        assert!(matches!(
            decide_with(&mut s, &cfg, 429, &[("retry-after", "10")]),
            Decision::Retry {
                delay_ms: 10_000,
                from_server: true
            }
        ));
        assert_eq!(
            decide_with(&mut s, &cfg, 429, &[("retry-after", "11")]),
            Decision::Exhausted
        );
    }

    #[test]
    fn max_retries_is_capped() {
        let cfg = RetryConfig {
            max_retries: u32::MAX,
            base_delay_ms: 1,
            ..RetryConfig::default()
        };
        let mut s = RetryState::new(&cfg);
        let mut rng = Rng::new(9);
        let mut n = 0;
        while let Decision::Retry { .. } = s.decide(&cfg, &Outcome::Network, 0, &mut rng) {
            n += 1;
            assert!(n <= MAX_RETRIES_CAP);
        }
        assert_eq!(n, MAX_RETRIES_CAP);
    }

    #[test]
    fn zero_retries() {
        let cfg = RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        };
        let mut s = RetryState::new(&cfg);
        assert_eq!(decide_with(&mut s, &cfg, 503, &[]), Decision::Exhausted);
        assert_eq!(decide_with(&mut s, &cfg, 404, &[]), Decision::Done);
    }

    #[test]
    fn outcome_debug_hides_headers() {
        let h = |_: &str| None;
        let o = Outcome::Response {
            status: 503,
            headers: &h,
            error_class: None,
        };
        assert_eq!(format!("{o:?}"), "Response { status: 503, .. }");
    }
}
