//! `client.chat()`: one call across a fallback chain of targets, inside token and cost budgets, that
//! says what it cost.
//!
//! Each target is tried through the whole pipeline (its own breaker and bucket, keyed by the target's
//! name; retries with the provider's hints), and the chain moves on when a target fails in a way
//! another target may not: an outage, an open breaker, an exhausted quota, a context too long for the
//! model, a refused prompt. Auth errors and malformed requests stop the chain (another target would
//! fail the same way, or the caller must fix something). Budgets hold the worst case before the first
//! attempt and settle to the real usage after, so concurrent calls can never overshoot a cap.
//!
//! An answer is read chunk by chunk within `limits.maxResponseBytes`, each chunk's length checked
//! before it is copied: past the bound the body is cancelled and the target has failed (like an
//! unreadable answer, it is the target's fault, so the chain moves on; it is not asked again).

use crate::core::error::TimeoutPhase;
use crate::core::event::{Event, RetryReason};
use crate::core::limits::{Bound, Limits};
use crate::core::llm::charge::{self, Charge};
use crate::core::llm::{
    build_request, classify, error_message, parse_completion, Cap, Chain, ChatParams, Completion,
    Exceeded, Hold, Message, Outcome, Role, Step, Usage, MAX_TARGETS,
};
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use crate::wasm::body::{chunk_of, decode_text, error_text, reader_of, Chunks};
use crate::wasm::errors::{abort_error, named_error, past_limit, timeout_error};
use crate::wasm::fetch::Fetched;
use crate::wasm::inner::Inner;
use crate::wasm::js::{abort_reason, get, ignore_rejection, set, ObjectBuilder};
use crate::wasm::options::TargetConfig;
use crate::wasm::reader::{range_error, type_error, Reader};
use crate::wasm::request::Prepared;
use js_sys::{Array, JsString};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Response};

/// Most messages in one chat request.
pub const MAX_MESSAGES: u32 = 10_000;
/// Most text in one chat request's messages, in UTF-16 code units (8 Mi, about 2M tokens: past
/// the largest context windows; measured before anything is copied into wasm memory, which never
/// shrinks).
pub const MAX_CHAT_CHARS: u32 = 1 << 23;

/// A parsed `ChatRequest`.
pub struct ChatCall {
    /// The conversation.
    pub messages: Vec<Message>,
    /// `maxTokens`.
    pub max_tokens: Option<u32>,
    /// `temperature` × 1000.
    pub temperature_milli: Option<u32>,
    /// `user`, or "anonymous": budgets are per user.
    pub user: String,
    /// `signal`, passed on to every attempt.
    pub signal: JsValue,
    /// `resilience`, passed on as the request policy.
    pub resilience: JsValue,
}

/// How one target's attempt ended, when it did not answer: the error the caller may see, and what
/// it means for the chain ([`Chain`] decides whether the next target is tried).
pub struct TargetFailure {
    /// How it failed, for the chain.
    pub outcome: Outcome,
    /// The error.
    pub error: JsValue,
}

impl TargetFailure {
    /// The target gave no usable answer; the next one may.
    pub(crate) fn unavailable(error: JsValue) -> Self {
        TargetFailure {
            outcome: Outcome::Unavailable,
            error,
        }
    }

    /// The request could not be prepared: no target would take it.
    fn unprepared(error: JsValue) -> Self {
        TargetFailure {
            outcome: Outcome::Unprepared,
            error,
        }
    }
}

/// A target's answer.
pub struct Answered {
    /// Text, finish reason, usage.
    pub completion: Completion,
    /// Attempts the target took (0 when cached).
    pub attempts: u32,
    /// From the cache.
    pub cached: bool,
}

/// Parses `chat(request)`.
pub fn parse_chat_request(value: JsValue) -> Result<ChatCall, JsValue> {
    let Some(r) = Reader::root(value.clone(), "request")? else {
        return Err(type_error("request", "a ChatRequest object", &value));
    };
    r.only(&[
        "messages",
        "maxTokens",
        "temperature",
        "user",
        "signal",
        "resilience",
    ])?;
    let list = match r.list("messages", MAX_MESSAGES)? {
        Some(list) if !list.is_empty() => list,
        _ => {
            return Err(type_error(
                "request.messages",
                "a non-empty array of messages",
                &r.raw("messages")?.unwrap_or(JsValue::UNDEFINED),
            ))
        }
    };
    let mut messages = Vec::with_capacity(list.len());
    let mut chars_left = MAX_CHAT_CHARS;
    for (i, item) in list.into_iter().enumerate() {
        let path = format!("request.messages[{i}]");
        let Some(m) = Reader::root(item.clone(), &path)? else {
            return Err(type_error(&path, "a { role, content } object", &item));
        };
        m.only(&["role", "content"])?;
        let role = match m.choice("role", &["system", "user", "assistant"])? {
            Some("system") => Role::System,
            Some("assistant") => Role::Assistant,
            Some(_) => Role::User,
            None => {
                return Err(type_error(
                    &format!("{path}.role"),
                    "a role",
                    &JsValue::UNDEFINED,
                ))
            }
        };
        let value = m.raw("content")?.unwrap_or(JsValue::UNDEFINED);
        let content_path = format!("{path}.content");
        let Some(text) = value.dyn_ref::<JsString>() else {
            return Err(type_error(&content_path, "a string", &value));
        };
        // Measured before it is copied: the messages' text together is bounded.
        chars_left = chars_left.checked_sub(text.length()).ok_or_else(|| {
            range_error(
                &content_path,
                &format!("within {MAX_CHAT_CHARS} characters for all messages together"),
                &value,
            )
        })?;
        let content = String::from(text);
        messages.push(Message { role, content });
    }
    let temperature_milli = r
        .number("temperature", 0.0, 2.0)?
        .map(|t| (t * 1000.0).round() as u32);
    Ok(ChatCall {
        messages,
        max_tokens: r.integer("maxTokens", 1, 1 << 24)?.map(|n| n as u32),
        temperature_milli,
        user: r.string("user")?.unwrap_or_else(|| "anonymous".to_string()),
        signal: r.raw("signal")?.unwrap_or(JsValue::UNDEFINED),
        resilience: r.raw("resilience")?.unwrap_or(JsValue::UNDEFINED),
    })
}

impl ChatCall {
    /// The provider-neutral parameters for `target`.
    pub fn params<'a>(&'a self, target: &'a TargetConfig, stream: bool) -> ChatParams<'a> {
        ChatParams {
            model: &target.model,
            messages: &self.messages,
            max_tokens: self.max_tokens,
            temperature_milli: self.temperature_milli,
            user: (self.user != "anonymous").then_some(self.user.as_str()),
            stream,
        }
    }
}

impl Inner {
    /// `client.chat(request)`.
    pub(crate) async fn chat(self: &Rc<Self>, request: JsValue) -> Result<JsValue, JsValue> {
        let call = parse_chat_request(request)?;
        let hold = self.reserve_budget(&call)?;
        let asked = &call;
        let answered = self
            .along_chain(|_, target| async move { Ok((target, self.ask(target, asked).await?)) })
            .await;
        match answered {
            Ok((target, answered)) => {
                let usage = (&answered.completion.usage, answered.cached);
                let cost = self.settle(hold, &call, target, usage);
                Ok(chat_result(target, &answered, cost))
            }
            Err(error) => {
                self.release(hold);
                Err(error)
            }
        }
    }

    /// Walks the fallback chain ([`Chain`]): `attempt` is tried on each target in turn (with its
    /// index) until one answers, the chain stops on a failure no other target would fix, or every
    /// target failed (`AllTargetsFailedError`). Each move to the next target emits `fallback`.
    pub(crate) async fn along_chain<'t, T, F>(
        &'t self,
        mut attempt: impl FnMut(usize, &'t TargetConfig) -> F,
    ) -> Result<T, JsValue>
    where
        F: Future<Output = Result<T, TargetFailure>>,
    {
        let mut chain = Chain::new(self.options.targets.len()).ok_or_else(no_targets)?;
        let mut step = chain.start();
        loop {
            let (index, target) = self.next_target(&chain, step)?;
            match attempt(index, target).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => step = chain.failed(failure.outcome, failure.error),
            }
        }
    }

    /// The target `step` says to try (announcing a fallback to it), or the error that ends the
    /// call.
    fn next_target(
        &self,
        chain: &Chain<JsValue>,
        step: Step<JsValue>,
    ) -> Result<(usize, &TargetConfig), JsValue> {
        let targets = &self.options.targets;
        let (index, from) = match step {
            Step::Try { index, from } => (index, from),
            Step::Stop(error) => return Err(error),
            Step::AllFailed(errors) => return Err(all_targets_failed(targets, errors)),
        };
        let target = targets.get(index).ok_or_else(no_targets)?;
        if let Some(from) = from.and_then(|from| targets.get(from)) {
            let reason = chain.failures().last().and_then(|e| {
                get(e, "code")
                    .as_string()
                    .or_else(|| get(e, "name").as_string())
            });
            self.platform.emit(Event::Fallback {
                from: &from.name,
                to: &target.name,
                reason: &reason.unwrap_or_default(),
            });
        }
        Ok((index, target))
    }

    /// One target, through dedupe, the cache and the pipeline. An answer whose body fails after its
    /// headers (a stall, a reset) is asked again, up to `retry.maxRetries` times (the request's own
    /// `resilience.retry`, else the client's), before the chain moves on: nothing was delivered yet.
    async fn ask(
        self: &Rc<Self>,
        target: &TargetConfig,
        call: &ChatCall,
    ) -> Result<Answered, TargetFailure> {
        let mut prepared = self.chat_request(target, call, false).await?;
        let client_retry = self.engine.config().retry.as_ref();
        let mut again = prepared.retry(client_retry).map_or(0, |r| r.max_retries);
        let limits = self.options.limits.overridden_by(&prepared.policy.limits);
        let idle = prepared.timeout.idle_bound();
        let mut attempts = 0;
        let (response, text) = loop {
            let response = self.send_to(target, prepared).await?;
            attempts += response.attempts;
            match self
                .read_answer(&response.response, call, &limits, idle)
                .await
            {
                Ok(text) => break (response, text),
                Err(TargetFailure {
                    outcome: Outcome::Unavailable,
                    error,
                }) if again > 0 && !is_too_large(&error) => {
                    again -= 1;
                    prepared = self.chat_request(target, call, false).await?;
                    let timed_out =
                        get(&error, "name").as_string().as_deref() == Some("TimeoutError");
                    self.platform.emit(Event::Retry {
                        url: &response.response.url(),
                        attempt: attempts + 1,
                        delay_ms: 0,
                        reason: if timed_out {
                            RetryReason::Timeout
                        } else {
                            RetryReason::Network
                        },
                        from_server: false,
                    });
                }
                Err(failure) => return Err(failure),
            }
        };
        let completion = parse_completion(target.provider, &text).ok_or_else(|| {
            TargetFailure::unavailable(
                named_error(
                    "UpstreamError",
                    "UNREADABLE_ANSWER",
                    &format!(
                        "{} answered, but not with a {} completion",
                        target.name,
                        target.provider.as_str()
                    ),
                )
                .into(),
            )
        })?;
        Ok(Answered {
            completion,
            attempts,
            cached: response.cached,
        })
    }

    /// Reads an answer's body, each gap between its chunks bounded like a stream's by `idle` (the
    /// request's [`idle_bound`](crate::core::config::Timeouts::idle_bound)): a server that stalls
    /// after its headers must not hang the call, nor keep its connection once given up on. Its size
    /// is bounded by `limits.maxResponseBytes`.
    async fn read_answer(
        &self,
        response: &Response,
        call: &ChatCall,
        limits: &Limits,
        idle: Option<(TimeoutPhase, u64)>,
    ) -> Result<String, TargetFailure> {
        let Some(body) = response.body() else {
            return Ok(String::new());
        };
        let reader = reader_of(&body).map_err(TargetFailure::unavailable)?;
        let mut chunks = Chunks::default();
        loop {
            let read = JsFuture::from(reader.read());
            let result = match idle {
                None => read.await,
                Some((phase, ms)) => match race(read, self.platform.sleep(ms)).await {
                    Either::Left(result) => result,
                    Either::Right(()) => {
                        ignore_rejection(&reader.cancel());
                        let error =
                            timeout_error(phase, ms, "The answer's body went quiet for", "");
                        return Err(TargetFailure::unavailable(error.into()));
                    }
                },
            };
            let aborted = || call.signal.dyn_ref::<AbortSignal>().and_then(abort_reason);
            let result = result.map_err(|error| match aborted() {
                // The caller's signal errors the body too: that is an abort, which ends the chain.
                Some(reason) => TargetFailure {
                    outcome: Outcome::Aborted,
                    error: abort_error(&reason),
                },
                None => TargetFailure::unavailable(error),
            })?;
            if get(&result, "done").as_bool() == Some(true) {
                return Ok(decode_text(chunks.copy()));
            }
            let chunk = chunk_of(&result).map_err(TargetFailure::unavailable)?;
            if !chunks.add(&chunk, limits.max_response_bytes) {
                ignore_rejection(&reader.cancel());
                return Err(TargetFailure::unavailable(past_limit(
                    Bound::Response,
                    limits,
                )));
            }
        }
    }

    /// The prepared request for `call` on `target`, streamed or not.
    pub(crate) async fn chat_request(
        &self,
        target: &TargetConfig,
        call: &ChatCall,
        stream: bool,
    ) -> Result<Prepared, TargetFailure> {
        let http = build_request(
            target.provider,
            &call.params(target, stream),
            target.api_key.as_deref(),
        );
        let headers = Headers::new().map_err(TargetFailure::unprepared)?;
        let _ = headers.set("content-type", "application/json");
        for (name, value) in &http.headers {
            let _ = headers.set(name, value);
        }
        for (name, value) in &target.headers {
            let _ = headers.set(name, value);
        }
        let init = ObjectBuilder::new()
            .str("method", "POST")
            .value("headers", &headers)
            .str("body", &http.body)
            .value("signal", &call.signal)
            .value("resilience", &call.resilience)
            .build();
        let url = format!("{}{}", target.base_url, http.path);
        let mut prepared = self
            .prepare(url.into(), init)
            .await
            .map_err(TargetFailure::unprepared)?;
        // One breaker and bucket per target, even for targets sharing an origin.
        prepared.origin = format!("target:{}", target.name);
        prepared.request.classify_errors = true;
        Ok(prepared)
    }

    /// Sends `call` to `target`; a non-2xx answer becomes the target's failure.
    async fn send_to(
        self: &Rc<Self>,
        target: &TargetConfig,
        prepared: Prepared,
    ) -> Result<Fetched, TargetFailure> {
        let fetched = self
            .fetch_prepared(prepared)
            .await
            .map_err(|error| target_error(target, error))?;
        if fetched.response.ok() {
            return Ok(fetched);
        }
        Err(upstream_failure(target, &fetched.response, fetched.attempts).await)
    }

    /// Holds the call's worst case in the budgets; `BudgetExceededError` when a cap would be passed.
    pub(crate) fn reserve_budget(&self, call: &ChatCall) -> Result<Option<Hold>, JsValue> {
        let Some(ledger) = &self.budget else {
            return Ok(None);
        };
        let prices = self.options.targets.iter().take(MAX_TARGETS);
        let held = charge::hold(
            &mut ledger.borrow_mut(),
            &call.user,
            (&call.messages, call.max_tokens),
            prices.map(|t| &t.pricing),
            self.platform.wall_ms(),
        );
        held.map(Some).map_err(|exceeded| {
            self.engine.count_budget_rejection();
            budget_exceeded(&call.user, &exceeded)
        })
    }

    /// Replaces the budget hold with the real usage and tallies the cost (an answer that made no
    /// upstream call of its own, `free`, costs nothing), announcing a crossed threshold; returns
    /// the call's cost in micro-dollars.
    pub(crate) fn settle(
        &self,
        hold: Option<Hold>,
        call: &ChatCall,
        target: &TargetConfig,
        (usage, free): (&Usage, bool),
    ) -> u64 {
        let charged = Charge {
            user: &call.user,
            model: &target.model,
            pricing: &target.pricing,
            usage: *usage,
            free,
        };
        let settled = charge::settle(
            self.budget.as_ref().map(|l| l.borrow_mut()).as_deref_mut(),
            &mut self.costs.borrow_mut(),
            hold,
            charged,
            self.platform.wall_ms(),
        );
        if let Some((cap, used)) = settled.crossed {
            self.platform.emit(Event::Budget {
                user: &call.user,
                cap: cap.as_str(),
                used_per_mille: used,
            });
        }
        settled.cost_micros
    }

    /// Gives a budget hold back (the call failed).
    pub(crate) fn release(&self, hold: Option<Hold>) {
        let mut ledger = self.budget.as_ref().map(|l| l.borrow_mut());
        charge::release(ledger.as_deref_mut(), hold);
    }
}

/// A chat call on a client without targets.
fn no_targets() -> js_sys::TypeError {
    js_sys::TypeError::new(
        "chat() needs options.targets: [{ provider, baseUrl, model, apiKey? }, ...]",
    )
}

/// Whether `error` is an answer past a byte limit (asking the same target again would not help).
fn is_too_large(error: &JsValue) -> bool {
    get(error, "code").as_string().as_deref() == Some("RESPONSE_TOO_LARGE")
}

/// A target's pipeline error, read for the chain: an abort, the client's own rate limit (a
/// client-wide bucket, the same whichever target is next), or this target unavailable.
pub(crate) fn target_error(target: &TargetConfig, error: JsValue) -> TargetFailure {
    set(&error, "target", &target.name.as_str().into());
    let name = get(&error, "name").as_string().unwrap_or_default();
    let client_wide_limit = name == "RateLimitError"
        && get(&error, "key")
            .as_string()
            .is_some_and(|key| key == "client" || key.starts_with("client|"));
    let outcome = match name.as_str() {
        "AbortError" => Outcome::Aborted,
        _ if client_wide_limit => Outcome::ClientLimited,
        _ => Outcome::Unavailable,
    };
    TargetFailure { outcome, error }
}

/// The error for a target's non-2xx answer: classified from its status and body.
pub(crate) async fn upstream_failure(
    target: &TargetConfig,
    response: &Response,
    attempts: u32,
) -> TargetFailure {
    let status = response.status();
    let body = error_text(response).await.unwrap_or_default();
    let class = classify(status, &body);
    let message = error_message(&body).unwrap_or_else(|| "no error message".to_string());
    let error = named_error(
        "UpstreamError",
        &class.as_str().to_ascii_uppercase(),
        &format!(
            "{} answered HTTP {status} ({}): {message}",
            target.name,
            class.as_str()
        ),
    );
    set(&error, "status", &status.into());
    set(&error, "kind", &class.as_str().into());
    set(&error, "attempts", &attempts.into());
    set(&error, "target", &target.name.as_str().into());
    TargetFailure {
        outcome: Outcome::Answered(class),
        error: error.into(),
    }
}

/// `BudgetExceededError`: which cap, its limit, what remains and what the call needed.
fn budget_exceeded(user: &str, exceeded: &Exceeded) -> JsValue {
    let cap = exceeded.cap.as_str();
    // The cost cap is kept in micro-dollars; it is reported in dollars, like the option.
    let (scale, unit) = if exceeded.cap == Cap::DailyCost {
        (1e6, "USD")
    } else {
        (1.0, "tokens")
    };
    let [needed, remaining, limit] =
        [exceeded.needed, exceeded.remaining, exceeded.limit].map(|n| n as f64 / scale);
    let error = named_error(
        "BudgetExceededError",
        "BUDGET_EXCEEDED",
        &format!(
            "The {cap} budget for {user} would be exceeded by this call (it may use more {unit} than remain); \
             see error.needed, error.remaining and error.limit."
        ),
    );
    set(&error, "cap", &cap.into());
    set(&error, "limit", &limit.into());
    set(&error, "remaining", &remaining.into());
    set(&error, "needed", &needed.into());
    set(&error, "user", &user.into());
    error.into()
}

/// `AllTargetsFailedError` with every target's error (`errors[i]` is `targets[i]`'s).
fn all_targets_failed(targets: &[TargetConfig], errors: Vec<JsValue>) -> JsValue {
    let mut summary = String::from("Every target failed. ");
    for (i, (target, e)) in targets.iter().zip(&errors).enumerate() {
        let message = get(e, "message").as_string().unwrap_or_default();
        let separator = if i == 0 { "" } else { "; " };
        summary += &format!("{separator}{}: {message}", target.name);
    }
    let error = named_error("AllTargetsFailedError", "ALL_TARGETS_FAILED", &summary);
    let list: Array = errors.into_iter().collect();
    set(&error, "errors", &list);
    error.into()
}

/// The `ChatResult` object.
pub(crate) fn chat_result(target: &TargetConfig, answered: &Answered, cost_micros: u64) -> JsValue {
    let completion = &answered.completion;
    ObjectBuilder::new()
        .str("text", &completion.text)
        .str("target", &target.name)
        .str("provider", target.provider.as_str())
        .str("model", &target.model)
        .str("finishReason", &completion.finish_reason)
        .value(
            "usage",
            &ObjectBuilder::new()
                .num("inputTokens", completion.usage.input_tokens as f64)
                .num("outputTokens", completion.usage.output_tokens as f64)
                .build(),
        )
        .num("costUsd", cost_micros as f64 / 1e6)
        .bool("cached", answered.cached)
        .num("attempts", answered.attempts)
        .build()
}
