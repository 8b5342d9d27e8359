//! Breaker and rate-limit state shared by many isolates.
//!
//! On the edge every isolate has its own memory: a breaker in one knows nothing of the failures seen
//! by the others, and a per-user limit becomes a per-isolate limit. With `sharedState`, the pipeline
//! asks a `StateStore` (the package ships one on a Durable Object: `resilient-llm/workers`) instead of
//! its local breaker and bucket, so all isolates see one breaker (one half-open probe in all) and one
//! bucket. [`SharedState`] is the core's [`StateStore`] on a JS store; each question carries the
//! client's own `breaker` or `rateLimit` settings, which the store applies ([`PolicyBoard`], run in
//! the Durable Object, is the core's board behind a JS face).
//!
//! Off the hot path where a local decision is safe: while the shared breaker is closed, an isolate
//! admits calls on a lease (`leaseMs`) without asking, and reports verdicts without waiting. Only an
//! open or half-open breaker, and every rate-limit take (one exact global budget), go to the store.
//! If the store is unreachable, `failOpen` (default) carries on without it; `failOpen: false` refuses
//! the call.

use crate::core::breaker::{BreakerConfig, StateKind, Verdict};
use crate::core::error::Failure;
use crate::core::policy_board;
use crate::core::rate_limit::RateLimitConfig;
use crate::core::sorted_map::SortedMap;
use crate::core::state_store::StateStore;
use crate::wasm::js::{get, ignore_rejection, ObjectBuilder};
use crate::wasm::options::parse_client_options;
use js_sys::{Function, Object, Promise};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// `sharedState` options.
pub struct SharedStateOptions {
    /// The store: `admit(key, settings)`, `record(key, verdict, permit, settings)`,
    /// `take(key, tokens, settings)`.
    pub store: JsValue,
    /// Carry on without the store when it fails (else refuse the call).
    pub fail_open: bool,
    /// How long a "closed" answer lets an isolate admit calls without asking.
    pub lease_ms: u64,
}

/// The client side: asks the store, with leases.
pub struct SharedState {
    options: SharedStateOptions,
    closed_until: RefCell<SortedMap<String, u64>>,
}

/// What an admission holds until the call's verdict is reported.
pub struct Ticket {
    key: String,
    permit: JsValue,
    settings: JsValue,
}

impl SharedState {
    /// A client of `options.store`.
    pub fn new(options: SharedStateOptions) -> SharedState {
        SharedState {
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

impl StateStore for SharedState {
    type Ticket = Ticket;

    /// On a lease while the shared breaker is closed, else from the store.
    async fn admit(&self, key: &str, cfg: &BreakerConfig, now_ms: u64) -> Result<Ticket, Failure> {
        let settings = breaker_settings(cfg);
        let ticket = |permit| Ticket {
            key: key.to_string(),
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
        let answer = match self.ask("admit", &[key.into(), settings.clone()]).await {
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
    fn record(&self, ticket: Ticket, verdict: Verdict) {
        if verdict == Verdict::Failure {
            self.closed_until.borrow_mut().remove(&ticket.key);
        }
        let args = [
            ticket.key.into(),
            verdict_name(verdict).into(),
            ticket.permit,
            ticket.settings,
        ];
        if let Ok(promise) = self.call("record", &args) {
            ignore_rejection(&promise);
        }
    }

    async fn take(&self, key: &str, tokens: u64, cfg: &RateLimitConfig) -> Result<u64, Failure> {
        let args = [key.into(), (tokens as f64).into(), rate_settings(cfg)];
        let answer = match self.ask("take", &args).await {
            Ok(answer) => answer,
            Err(_) if self.options.fail_open => return Ok(0),
            Err(_) => return Err(unavailable(key)),
        };
        if get(&answer, "ok").as_bool() == Some(true) {
            Ok(millis(&answer, "waitMs"))
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

/// `{ breaker }` as the client's options spell it, for the store to apply.
fn breaker_settings(cfg: &BreakerConfig) -> JsValue {
    let breaker = ObjectBuilder::new()
        .num("failureThreshold", cfg.failure_threshold)
        .num("errorThresholdPercentage", cfg.error_threshold_percentage)
        .num("volumeThreshold", cfg.volume_threshold)
        .num("windowMs", cfg.window_ms as f64)
        .num("resetTimeoutMs", cfg.reset_timeout_ms as f64)
        .num("halfOpenMaxCalls", cfg.half_open_max_calls)
        .num("successThreshold", cfg.success_threshold)
        .build();
    ObjectBuilder::new().value("breaker", &breaker).build()
}

/// `{ rateLimit }` as the client's options spell it, for the store to apply.
fn rate_settings(cfg: &RateLimitConfig) -> JsValue {
    let mut limit = ObjectBuilder::new().num("maxWaitMs", cfg.max_wait_ms as f64);
    if let Some(n) = cfg.requests_per_minute {
        limit = limit.num("requestsPerMinute", n);
    }
    if let Some(n) = cfg.burst {
        limit = limit.num("burst", n);
    }
    if let Some(n) = cfg.tokens_per_minute {
        limit = limit.num("tokensPerMinute", n as f64);
    }
    ObjectBuilder::new()
        .value("rateLimit", &limit.build())
        .build()
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Success => "success",
        Verdict::Failure => "failure",
        Verdict::Ignored => "ignored",
    }
}

/// The state behind a shared `StateStore` (the core's [`policy_board::PolicyBoard`]); the package's
/// Durable Object (`resilient-llm/workers`) hosts one. Each call passes the caller's settings
/// (`{ breaker }` or `{ rateLimit }`, as for `ResilientClient`); the board's own options serve a
/// caller that passes none.
#[wasm_bindgen]
pub struct PolicyBoard(policy_board::PolicyBoard);

#[wasm_bindgen]
impl PolicyBoard {
    /// A board whose defaults are `{ breaker, rateLimit }` options (as for `ResilientClient`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Pick<ClientOptions, \"breaker\" | \"rateLimit\">")]
        options: JsValue,
    ) -> Result<PolicyBoard, JsValue> {
        let config = parse_client_options(options)?.config;
        Ok(PolicyBoard(policy_board::PolicyBoard::new(
            config.breaker.map(|(cfg, _)| cfg),
            config.rate_limit.map(|(cfg, _)| cfg),
        )))
    }

    /// `{ ok, state, probe, permit?, retryAfterMs? }` for a call on `key` at `now` (ms) under the
    /// caller's `{ breaker }` settings. Throws a TypeError or RangeError naming a wrong setting.
    pub fn admit(
        &mut self,
        key: &str,
        now: f64,
        settings: Option<Object>,
    ) -> Result<JsValue, JsValue> {
        let cfg = breaker_of(settings)?;
        let admission = self.0.admit(key, cfg.as_ref(), now as u64);
        let answer = match admission.admitted {
            Ok(Some(permit)) => ObjectBuilder::new()
                .bool("ok", true)
                .bool("probe", true)
                .num("permit", permit),
            Ok(None) => ObjectBuilder::new().bool("ok", true),
            Err(retry_after_ms) => ObjectBuilder::new()
                .bool("ok", false)
                .num("retryAfterMs", retry_after_ms as f64),
        };
        Ok(answer.str("state", admission.state.as_str()).build())
    }

    /// Records a call's verdict (`"success"`, `"failure"`, `"ignored"`); a probe passes its permit.
    pub fn record(
        &mut self,
        key: &str,
        verdict: &str,
        permit: JsValue,
        now: f64,
        settings: Option<Object>,
    ) -> Result<JsValue, JsValue> {
        let cfg = breaker_of(settings)?;
        let verdict = match verdict {
            "success" => Verdict::Success,
            "failure" => Verdict::Failure,
            _ => Verdict::Ignored,
        };
        let probe = permit.as_f64().map(|id| id as u32);
        let state: StateKind = self.0.record(key, verdict, probe, cfg.as_ref(), now as u64);
        Ok(ObjectBuilder::new().str("state", state.as_str()).build())
    }

    /// `{ ok: true, waitMs }` or `{ ok: false, retryAfterMs }` for one request and `tokens`, under
    /// the caller's `{ rateLimit }` settings.
    pub fn take(
        &mut self,
        key: &str,
        tokens: f64,
        now: f64,
        settings: Option<Object>,
    ) -> Result<JsValue, JsValue> {
        let cfg = match settings {
            Some(settings) => parse_client_options(settings.into())?
                .config
                .rate_limit
                .map(|(cfg, _)| cfg),
            None => None,
        };
        let answer = match self
            .0
            .take(key, tokens.max(0.0) as u64, cfg.as_ref(), now as u64)
        {
            Ok(wait_ms) => ObjectBuilder::new()
                .bool("ok", true)
                .num("waitMs", wait_ms as f64),
            Err(retry_after_ms) => ObjectBuilder::new()
                .bool("ok", false)
                .num("retryAfterMs", retry_after_ms as f64),
        };
        Ok(answer.build())
    }
}

/// The `breaker` of a caller's settings, if it sent any.
fn breaker_of(settings: Option<Object>) -> Result<Option<BreakerConfig>, JsValue> {
    match settings {
        Some(settings) => Ok(parse_client_options(settings.into())?
            .config
            .breaker
            .map(|(cfg, _)| cfg)),
        None => Ok(None),
    }
}
