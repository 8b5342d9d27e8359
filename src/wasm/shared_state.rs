//! Breaker and rate-limit state shared by many isolates.
//!
//! On the edge every isolate has its own memory: a breaker in one knows nothing of the failures seen
//! by the others, and a per-user limit becomes a per-isolate limit. With `sharedState`, the client asks
//! a `StateStore` (the package ships one on a Durable Object: `resilient-llm/workers`) instead of its
//! local breaker and bucket, so all isolates see one breaker (one half-open probe in all) and one
//! bucket. The store's own breaker/limiter logic is the core's, run in the Durable Object by
//! [`PolicyBoard`].
//!
//! Off the hot path where a local decision is safe: while the shared breaker is closed, an isolate
//! admits calls on a lease (`leaseMs`) without asking, and reports verdicts without waiting. Only an
//! open or half-open breaker, and every rate-limit take (one exact global budget), go to the store.
//! If the store is unreachable, `failOpen` (default) carries on without it; `failOpen: false` refuses
//! the call.

use crate::core::breaker::registry::Breakers;
use crate::core::breaker::{BreakerConfig, Permit, StateKind, Verdict};
use crate::core::error::Failure;
use crate::core::rate_limit::KeyedRateLimiter;
use crate::core::sorted_map::SortedMap;
use crate::wasm::js::{get, ignore_rejection, ObjectBuilder};
use crate::wasm::options::parse_client_options;
use js_sys::{Function, Promise};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// `sharedState` options.
pub struct SharedStateOptions {
    /// The store: `admit(key)`, `record(key, verdict, permit)`, `take(key, tokens)`.
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
}

impl SharedState {
    /// A client of `options.store`.
    pub fn new(options: SharedStateOptions) -> SharedState {
        SharedState {
            options,
            closed_until: RefCell::new(SortedMap::new()),
        }
    }

    /// Breaker admission for `key`: on a lease while the shared breaker is closed, else from the
    /// store. `Err` is the failure to reject the call with.
    pub async fn admit(&self, key: &str, now_ms: u64) -> Result<Ticket, Failure> {
        let ticket = |permit| Ticket {
            key: key.to_string(),
            permit,
        };
        if self
            .closed_until
            .borrow()
            .get(key)
            .is_some_and(|until| now_ms < *until)
        {
            return Ok(ticket(JsValue::UNDEFINED));
        }
        let answer = match self.ask("admit", &[key.into()]).await {
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

    /// Reports a call's verdict, without waiting (a failure also ends this isolate's lease, so the
    /// next call learns whether it opened the breaker).
    pub fn record(&self, ticket: Ticket, verdict: Verdict) {
        if verdict == Verdict::Failure {
            self.closed_until.borrow_mut().remove(&ticket.key);
        }
        let verdict = match verdict {
            Verdict::Success => "success",
            Verdict::Failure => "failure",
            Verdict::Ignored => "ignored",
        };
        if let Ok(promise) = self.call(
            "record",
            &[ticket.key.into(), verdict.into(), ticket.permit],
        ) {
            ignore_rejection(&promise);
        }
    }

    /// Takes one request (and `tokens`) from the shared bucket `key`: the wait before sending, or
    /// the failure to reject the call with.
    pub async fn take(&self, key: &str, tokens: u64) -> Result<u64, Failure> {
        let answer = match self
            .ask("take", &[key.into(), (tokens as f64).into()])
            .await
        {
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

/// Most outstanding probe permits a board keeps (a client that never reports frees its slot through
/// the breaker's own lease; this only bounds memory).
const MAX_PERMITS: usize = 10_000;

/// The state behind a shared `StateStore`: one breaker per key and per-key buckets, run by the core
/// policies, bounded as a client's are (at most 1,000 breakers, 10,000 buckets, long keys hashed). The package's Durable Object (`resilient-llm/workers`) hosts one.
#[wasm_bindgen]
pub struct PolicyBoard {
    breaker: Option<BreakerConfig>,
    breakers: Breakers,
    probes: SortedMap<u32, (String, Permit)>,
    next_probe: u32,
    limiter: Option<KeyedRateLimiter>,
}

#[wasm_bindgen]
impl PolicyBoard {
    /// A board for `{ breaker, rateLimit }` options (as for `ResilientClient`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Pick<ClientOptions, \"breaker\" | \"rateLimit\">")]
        options: JsValue,
    ) -> Result<PolicyBoard, JsValue> {
        let config = parse_client_options(options)?.config;
        Ok(PolicyBoard {
            breaker: config.breaker.map(|(cfg, _)| cfg),
            breakers: Breakers::new(),
            probes: SortedMap::new(),
            next_probe: 0,
            limiter: config
                .rate_limit
                .map(|(cfg, _)| KeyedRateLimiter::new(cfg, 10_000)),
        })
    }

    /// `{ ok, state, probe, permit?, retryAfterMs? }` for a call on `key` at `now` (ms).
    pub fn admit(&mut self, key: &str, now: f64) -> JsValue {
        let now = now as u64;
        let Some(cfg) = &self.breaker else {
            return ObjectBuilder::new()
                .bool("ok", true)
                .str("state", "closed")
                .build();
        };
        let breaker = &mut self.breakers.get_or_insert(key, cfg, now).breaker;
        let answer = match breaker.try_acquire(now) {
            Ok(permit) if permit.probe => {
                let id = self.next_probe;
                self.next_probe = self.next_probe.wrapping_add(1);
                self.probes.insert(id, (key.to_string(), permit));
                if self.probes.len() > MAX_PERMITS {
                    self.probes.pop_first();
                }
                ObjectBuilder::new()
                    .bool("ok", true)
                    .bool("probe", true)
                    .num("permit", id)
            }
            Ok(_) => ObjectBuilder::new().bool("ok", true),
            Err(retry_after_ms) => ObjectBuilder::new()
                .bool("ok", false)
                .num("retryAfterMs", retry_after_ms as f64),
        };
        let state = breaker_state(&mut self.breakers, key, now);
        answer.str("state", state).build()
    }

    /// Records a call's verdict (`"success"`, `"failure"`, `"ignored"`); a probe passes its permit.
    pub fn record(&mut self, key: &str, verdict: &str, permit: JsValue, now: f64) -> JsValue {
        let now = now as u64;
        let verdict = match verdict {
            "success" => Verdict::Success,
            "failure" => Verdict::Failure,
            _ => Verdict::Ignored,
        };
        let probe = permit
            .as_f64()
            .and_then(|id| self.probes.remove(&(id as u32)))
            .filter(|(probe_key, _)| probe_key == key)
            .map(|(_, permit)| permit);
        if let Some(breaker) = self.breakers.get_mut(key).map(|t| &mut t.breaker) {
            // A call admitted on a lease while closed counts as one admitted now (never as a probe).
            let permit = match probe {
                Some(permit) => Some(permit),
                None if breaker.state(now) == StateKind::Closed => breaker.try_acquire(now).ok(),
                None => None,
            };
            if let Some(permit) = permit {
                breaker.record(now, permit, verdict);
            }
        }
        let state = breaker_state(&mut self.breakers, key, now);
        ObjectBuilder::new().str("state", state).build()
    }

    /// `{ ok: true, waitMs }` or `{ ok: false, retryAfterMs }` for one request and `tokens`.
    pub fn take(&mut self, key: &str, tokens: f64, now: f64) -> JsValue {
        let now = now as u64;
        let Some(limiter) = &mut self.limiter else {
            return ObjectBuilder::new()
                .bool("ok", true)
                .num("waitMs", 0)
                .build();
        };
        match limiter.get(key, now).reserve(now, tokens.max(0.0) as u64) {
            Ok(reservation) => ObjectBuilder::new()
                .bool("ok", true)
                .num("waitMs", reservation.wait_ms as f64)
                .build(),
            Err(retry_after_ms) => ObjectBuilder::new()
                .bool("ok", false)
                .num("retryAfterMs", retry_after_ms as f64)
                .build(),
        }
    }
}

fn breaker_state(breakers: &mut Breakers, key: &str, now: u64) -> &'static str {
    breakers
        .get_mut(key)
        .map_or(StateKind::Closed, |t| t.breaker.state(now))
        .as_str()
}
