//! Breaker and rate-limit state shared by many isolates.
//!
//! On the edge every isolate has its own memory: a breaker in one knows nothing of the failures seen
//! by the others, and a per-user limit becomes a per-isolate limit. With `sharedState`, the pipeline
//! asks a `StateStore` (the package ships one on a Durable Object: `sturdy-llm/workers`) instead of
//! the client's own (`LocalState`), so all isolates see one breaker (one half-open probe in all) and one
//! bucket. [`JsStateStore`] is the core's [`StateStore`] on a JS store; each question carries the
//! client's own `breaker` or `rateLimit` settings, which the store applies ([`PolicyBoard`](crate::wasm::policy_board::PolicyBoard), run in
//! the Durable Object, is the core's board behind a JS face).
//!
//! Off the hot path where a local decision is safe: while the shared breaker is closed, an isolate
//! admits calls on a lease (`leaseMs`) without asking, and reports verdicts without waiting. Only an
//! open or half-open breaker, and every rate-limit take (one exact global budget), go to the store.
//! If the store is unreachable, `failOpen` (default) carries on without it; `failOpen: false` refuses
//! the call.

use crate::core::breaker::{BreakerConfig, Verdict};
use crate::core::error::Failure;
use crate::core::rate_limit::{RateLimitConfig, Reservation};
use crate::core::sorted_map::SortedMap;
use crate::core::state_store::StateStore;
use crate::wasm::js::{get, ignore_rejection};
use js_sys::{Function, Promise};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// `sharedState` options.
pub struct SharedStateOptions {
    /// The store: `admit(key, settings)`, `record(key, verdict, permit, settings)`,
    /// `take(key, tokens, settings)`; `settings` is the client's `{ breaker }` or `{ rateLimit }` as
    /// JSON (the same settings, the same string: a store may cache what it parsed by it).
    pub store: JsValue,
    /// Carry on without the store when it fails (else refuse the call).
    pub fail_open: bool,
    /// How long a "closed" answer lets an isolate admit calls without asking.
    pub lease_ms: u64,
}

/// The core's `StateStore` on a JS store (the client side): asks the store, with leases.
pub struct JsStateStore {
    options: SharedStateOptions,
    closed_until: RefCell<SortedMap<String, u64>>,
}

/// What an admission holds until the call's verdict is reported.
pub struct Ticket {
    permit: JsValue,
    settings: String,
}

impl JsStateStore {
    /// A client of `options.store`.
    pub fn new(options: SharedStateOptions) -> JsStateStore {
        JsStateStore {
            options,
            closed_until: RefCell::new(SortedMap::new()),
        }
    }

    fn call(&self, method: &str, args: &[JsValue]) -> Result<Promise, JsValue> {
        let function: Function = get(&self.options.store, method).dyn_into()?;
        let result = function.apply(&self.options.store, &args.iter().collect())?;
        Ok(result
            .dyn_into::<Promise>()
            .unwrap_or_else(|value| Promise::resolve(&value)))
    }

    async fn ask(&self, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        JsFuture::from(self.call(method, args)?).await
    }
}

impl StateStore for JsStateStore {
    type Ticket = Ticket;

    /// On a lease while the shared breaker is closed, else from the store.
    async fn admit(&self, key: &str, cfg: &BreakerConfig, now_ms: u64) -> Result<Ticket, Failure> {
        let settings = breaker_settings(cfg);
        let ticket = |permit| Ticket {
            permit,
            settings: settings.clone(),
        };
        if self
            .closed_until
            .borrow()
            .get(key)
            .is_some_and(|until| now_ms < *until)
        {
            return Ok(ticket(JsValue::UNDEFINED));
        }
        let answer = match self
            .ask("admit", &[key.into(), settings.as_str().into()])
            .await
        {
            Ok(answer) => answer,
            Err(_) if self.options.fail_open => return Ok(ticket(JsValue::UNDEFINED)),
            Err(_) => return Err(unavailable(key)),
        };
        if get(&answer, "state").as_string().as_deref() == Some("closed") {
            let until = now_ms.saturating_add(self.options.lease_ms);
            self.closed_until
                .borrow_mut()
                .insert(key.to_string(), until);
        } else {
            self.closed_until.borrow_mut().remove(key);
        }
        if get(&answer, "ok").as_bool() == Some(true) {
            Ok(ticket(get(&answer, "permit")))
        } else {
            Err(Failure::CircuitOpen {
                key: key.to_string(),
                retry_after_ms: millis(&answer, "retryAfterMs"),
            })
        }
    }

    /// Without waiting; a failure also ends this isolate's lease, so the next call learns whether it
    /// opened the breaker.
    fn record(&self, key: &str, ticket: Ticket, verdict: Verdict, _: u64) {
        if verdict == Verdict::Failure {
            self.closed_until.borrow_mut().remove(key);
        }
        let args = [
            key.into(),
            verdict.as_str().into(),
            ticket.permit,
            ticket.settings.into(),
        ];
        if let Ok(promise) = self.call("record", &args) {
            ignore_rejection(&promise);
        }
    }

    async fn take(
        &self,
        key: &str,
        tokens: u64,
        cfg: &RateLimitConfig,
        _: u64,
    ) -> Result<Reservation, Failure> {
        let args = [
            key.into(),
            (tokens as f64).into(),
            rate_settings(cfg).into(),
        ];
        let answer = match self.ask("take", &args).await {
            Ok(answer) => answer,
            Err(_) if self.options.fail_open => return Ok(Reservation::remote(0)),
            Err(_) => return Err(unavailable(key)),
        };
        if get(&answer, "ok").as_bool() == Some(true) {
            Ok(Reservation::remote(millis(&answer, "waitMs")))
        } else {
            Err(Failure::RateLimited {
                key: key.to_string(),
                retry_after_ms: millis(&answer, "retryAfterMs"),
            })
        }
    }
}

fn millis(answer: &JsValue, key: &str) -> u64 {
    get(answer, key)
        .as_f64()
        .filter(|n| *n >= 0.0)
        .unwrap_or(0.0) as u64
}

/// The store is unreachable and `failOpen` is off.
fn unavailable(key: &str) -> Failure {
    Failure::SharedStateUnavailable {
        key: key.to_string(),
    }
}

/// `{ breaker }` as the client's options spell it, as JSON, for the store to apply.
fn breaker_settings(cfg: &BreakerConfig) -> String {
    format!(
        r#"{{"breaker":{{"failureThreshold":{},"errorThresholdPercentage":{},"volumeThreshold":{},"windowMs":{},"resetTimeoutMs":{},"halfOpenMaxCalls":{},"successThreshold":{}}}}}"#,
        cfg.failure_threshold,
        cfg.error_threshold_percentage,
        cfg.volume_threshold,
        cfg.window_ms,
        cfg.reset_timeout_ms,
        cfg.half_open_max_calls,
        cfg.success_threshold
    )
}

/// `{ rateLimit }` as the client's options spell it, as JSON, for the store to apply.
fn rate_settings(cfg: &RateLimitConfig) -> String {
    let mut fields = format!(r#""maxWaitMs":{}"#, cfg.max_wait_ms);
    let optional = [
        ("requestsPerMinute", cfg.requests_per_minute.map(u64::from)),
        ("burst", cfg.burst.map(u64::from)),
        ("tokensPerMinute", cfg.tokens_per_minute),
    ];
    for (name, value) in optional {
        if let Some(n) = value {
            fields.push_str(&format!(r#","{name}":{n}"#));
        }
    }
    format!(r#"{{"rateLimit":{{{fields}}}}}"#)
}
