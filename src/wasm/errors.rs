//! JS error objects for failures: instances of the package's exported classes (`errors.js`, so
//! `instanceof` works, and `isInstance` across copies of the package), each with its `name`, a
//! stable `code` and the numbers a caller needs to act (`retryAfterMs`, `attempts`, ...). An abort
//! rejects with the signal's own `reason`, as fetch does.

use crate::core::error::{Failure, TimeoutPhase};
use crate::core::limits::{Bound, Limits};
use crate::wasm::js::set;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/wasm/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeError)]
    fn make_error(name: &str, code: &str, message: &str) -> js_sys::Error;
    #[wasm_bindgen(js_name = abortedError)]
    fn aborted_error() -> JsValue;
}

/// An instance of the error class `name` with the given code and message.
pub fn named_error(name: &str, code: &str, message: &str) -> js_sys::Error {
    make_error(name, code, message)
}

/// The rejection for a caller's abort, as fetch gives it: the signal's `reason` (a `DOMException`
/// named `AbortError` unless the caller gave one).
pub fn abort_error(reason: &JsValue) -> JsValue {
    if reason.is_undefined() {
        aborted_error()
    } else {
        reason.clone()
    }
}

/// `UpstreamError` `RESPONSE_TOO_LARGE`: `what` went past `limit` bytes, which `option` raises. The
/// upstream is at fault (like an unreadable answer), so a `chat()` moves down its chain.
pub fn too_large(what: &str, limit: usize, option: &str) -> JsValue {
    let error = named_error(
        "UpstreamError",
        "RESPONSE_TOO_LARGE",
        &format!("{what} {limit} bytes; {option} raises the limit."),
    );
    set(&error, "limit", &(limit as f64).into());
    set(&error, "option", &option.into());
    error.into()
}

/// The error for an answer past `bound` in `limits`.
pub fn past_limit(bound: Bound, limits: &Limits) -> JsValue {
    let limit = match bound {
        Bound::Response => limits.max_response_bytes,
        Bound::Event => limits.max_event_bytes,
    };
    too_large(bound.what(), limit, bound.option_name())
}

/// A `TimeoutError` for the deadline `phase` of `ms` that ran out: its message is `what`, the
/// deadline and the option that set it, then `detail`; it carries `timeoutMs` and `option`.
pub fn timeout_error(phase: TimeoutPhase, ms: u64, what: &str, detail: &str) -> js_sys::Error {
    let option = phase.option_name();
    let error = named_error(
        "TimeoutError",
        "TIMEOUT",
        &format!("{what} {ms} ms ({option}){detail}."),
    );
    set(&error, "timeoutMs", &(ms as f64).into());
    set(&error, "option", &option.into());
    error
}

/// The JS rejection value for a core failure.
pub fn failure_to_js(failure: &Failure) -> JsValue {
    match failure {
        Failure::Timeout {
            phase,
            after_ms,
            attempts,
        } => {
            let error = timeout_error(
                *phase,
                *after_ms,
                "No response within",
                &format!(", after {attempts} attempt(s)"),
            );
            set(&error, "attempts", &(*attempts).into());
            error.into()
        }
        Failure::InvalidRequest { message } => {
            let error = js_sys::TypeError::new(message);
            set(&error, "code", &"INVALID_REQUEST".into());
            error.into()
        }
        // The caller's own signal's reason is given where it is known (`Inner::call`).
        Failure::Aborted { .. } => abort_error(&JsValue::UNDEFINED),
        Failure::Network { message, attempts } => {
            let error = js_sys::TypeError::new(&format!("{message} (after {attempts} attempt(s))"));
            set(&error, "code", &"NETWORK".into());
            set(&error, "attempts", &(*attempts).into());
            error.into()
        }
        Failure::CircuitOpen {
            key,
            retry_after_ms,
        } => {
            let error = named_error(
                "CircuitOpenError",
                "CIRCUIT_OPEN",
                &format!(
                    "The circuit breaker for {key} is open after repeated failures; \
                     the next probe is allowed in {retry_after_ms} ms."
                ),
            );
            set(&error, "retryAfterMs", &(*retry_after_ms as f64).into());
            set(&error, "key", &key.as_str().into());
            error.into()
        }
        Failure::SharedStateUnavailable { key } => {
            let error = named_error(
                "CircuitOpenError",
                "SHARED_STATE_UNAVAILABLE",
                &format!(
                    "The shared state store for {key} is unreachable and sharedState.failOpen is \
                     false, so the call is refused."
                ),
            );
            set(&error, "retryAfterMs", &1000.into());
            set(&error, "key", &key.as_str().into());
            error.into()
        }
        Failure::RateLimited {
            key,
            retry_after_ms,
        } => {
            let error = named_error(
                "RateLimitError",
                "RATE_LIMITED",
                &format!(
                    "Rate limit for {key}: capacity expected in {retry_after_ms} ms, \
                     longer than rateLimit.maxWaitMs."
                ),
            );
            set(&error, "retryAfterMs", &(*retry_after_ms as f64).into());
            set(&error, "key", &key.as_str().into());
            error.into()
        }
    }
}
