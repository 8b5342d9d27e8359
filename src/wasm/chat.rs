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
//!
//! A call is asked in two phases, up to the answer's headers ([`Inner::send_first`]) and its body
//! ([`Inner::read_rest`]), so that a hedge ([`crate::core::hedge`]) races on the first byte only.

use crate::core::error::TimeoutPhase;
use crate::core::event::{Event, RetryReason};
use crate::core::limits::{Bound, Limits};
use crate::core::llm::charge::{self, Charge};
use crate::core::llm::request::has_cache_marks;
use crate::core::llm::{
    build_request, estimate_tokens, parse_completion, Exceeded, Hold, Outcome, Pricing, Usage,
    MAX_TARGETS,
};
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use crate::wasm::abort::is_aborted;
use crate::wasm::body::{chunk_of, decode_text, reader_of, Chunks};
use crate::wasm::chain_walk::{target_key, Hedging};
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::chat_request::{parse_chat_request, ChatCall};
use crate::wasm::chat_result::{
    budget_exceeded, chat_result, is_too_large, target_error, upstream_failure, TargetCompletion,
    TargetFailure,
};
use crate::wasm::errors::{abort_error, named_error, past_limit, timeout_error};
use crate::wasm::fetch::FetchResponse;
use crate::wasm::inner::Inner;
use crate::wasm::js::{abort_reason, get, ignore_rejection, ObjectBuilder};
use crate::wasm::request::Prepared;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Response};

/// An answer whose headers arrived, and how to read its body.
struct Sent {
    response: FetchResponse,
    /// Times its body may be asked again after failing.
    again: u32,
    limits: Limits,
    idle: Option<(TimeoutPhase, u64)>,
}

impl Inner {
    /// `client.chat(request)`.
    pub(crate) async fn chat(self: &Rc<Self>, request: JsValue) -> Result<JsValue, JsValue> {
        let call = parse_chat_request(request, self.engine.config().retry.as_ref())?;
        let hold = self.reserve_budget(&call)?;
        let probe = self.probe(&call, call.signal.clone());
        if let Some(answer) = self.answer_first(probe.as_ref()).await {
            self.release(hold);
            return Ok(answer);
        }
        let asked = &call;
        let answered = self
            .along_chain_telling(
                (&call.signal, &call.policy),
                self.hedging(&call),
                |_, target| self.send_first(target, asked),
                |index, target, sent| async move {
                    Ok((index, target, self.read_rest(target, asked, sent).await?))
                },
            )
            .await;
        match answered {
            Ok((index, target, answered)) => {
                let usage = (&answered.completion.usage, answered.cached);
                let cost = self.settle(hold, &call, target, usage);
                let stored = (index, &answered.completion);
                self.remember(probe, stored, &call.policy);
                Ok(chat_result(target, &answered, cost))
            }
            Err((error, outcomes)) => {
                self.release(hold);
                match self.answer_failure(probe.as_ref(), &outcomes).await {
                    Some(answer) => Ok(answer),
                    None => Err(error),
                }
            }
        }
    }

    /// How `call` hedges: its own `hedge`, else the client's; `None`: it does not.
    pub(crate) fn hedging<'c>(&self, call: &'c ChatCall) -> Option<Hedging<'c>> {
        let after = call.hedge.unwrap_or(self.options.hedge)?;
        Some(Hedging { after, call })
    }

    /// One target, through dedupe, the cache and the pipeline, up to the answer's headers (its
    /// first byte: what a hedge races on); `true` beside it when it came from the upstream.
    async fn send_first(
        self: &Rc<Self>,
        target: &TargetConfig,
        call: &ChatCall,
    ) -> Result<(Sent, bool), TargetFailure> {
        let prepared = self.chat_request(target, call, false).await?;
        let client_retry = self.engine.config().retry.as_ref();
        let again = prepared.retry(client_retry).map_or(0, |r| r.max_retries);
        let limits = self.options.limits.overridden_by(&prepared.policy.limits);
        let idle = prepared.timeout.idle_bound();
        let response = self.send_to(target, prepared).await?;
        let live = !response.cached;
        let sent = Sent {
            response,
            again,
            limits,
            idle,
        };
        Ok((sent, live))
    }

    /// The rest of one target's answer: its body, read and parsed. An answer whose body fails
    /// after its headers (a stall, a reset) is asked again, up to `retry.maxRetries` times (the
    /// request's own `resilience.retry`, else the client's), before the chain moves on: nothing
    /// was delivered yet.
    async fn read_rest(
        self: &Rc<Self>,
        target: &TargetConfig,
        call: &ChatCall,
        sent: Sent,
    ) -> Result<TargetCompletion, TargetFailure> {
        let Sent {
            mut response,
            mut again,
            limits,
            idle,
        } = sent;
        let mut attempts = response.attempts;
        let text = loop {
            match self
                .read_answer(&response.response, &call.signal, &limits, idle)
                .await
            {
                Ok(text) => break text,
                Err(TargetFailure {
                    outcome: Outcome::Unavailable,
                    error,
                }) if again > 0 && !is_too_large(&error) => {
                    again -= 1;
                    let prepared = self.chat_request(target, call, false).await?;
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
                    response = self.send_to(target, prepared).await?;
                    attempts += response.attempts;
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
        Ok(TargetCompletion {
            completion,
            attempts,
            cached: response.cached,
        })
    }

    /// Reads an answer's body, each gap between its chunks bounded like a stream's by `idle` (the
    /// request's [`idle_bound`](crate::core::config::Timeouts::idle_bound)): a server that stalls
    /// after its headers must not hang the call, nor keep its connection once given up on. Its size
    /// is bounded by `limits.maxResponseBytes`. `signal` is the caller's: its abort ends the chain.
    pub(crate) async fn read_answer(
        &self,
        response: &Response,
        signal: &JsValue,
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
            let aborted = || signal.dyn_ref::<AbortSignal>().and_then(abort_reason);
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
            .build();
        let mut prepared = self
            .prepare_with(target.endpoint.as_str().into(), init, call.policy.clone())
            .await
            .map_err(TargetFailure::unprepared)?;
        prepared.origin = target_key(target);
        prepared.learn_limits = target.learn_limits;
        if prepared.learn_limits && prepared.tokens == 0 {
            // What a provider's token limit counts: the input, and the output asked for.
            let output = call.max_tokens.map_or(0, u64::from);
            prepared.tokens = estimate_tokens(&call.messages, &call.tools).saturating_add(output);
        }
        prepared.request.classify_errors = true;
        Ok(prepared)
    }

    /// Sends `call` to `target`; a non-2xx answer becomes the target's failure.
    pub(crate) async fn send_to(
        self: &Rc<Self>,
        target: &TargetConfig,
        prepared: Prepared,
    ) -> Result<FetchResponse, TargetFailure> {
        let signal = prepared.signal.clone();
        let fetched = self
            .fetch_prepared(prepared)
            .await
            .map_err(|error| target_error(target, error, is_aborted(signal.as_ref())))?;
        if fetched.response.ok() {
            return Ok(fetched);
        }
        Err(upstream_failure(target, &fetched.response, fetched.attempts).await)
    }

    /// Holds the call's worst case in the budgets; `BudgetExceededError` when a cap would be passed.
    pub(crate) fn reserve_budget(&self, call: &ChatCall) -> Result<Option<Hold>, JsValue> {
        self.hold_call(call)
            .map_err(|exceeded| self.refused(&call.user, &exceeded))
    }

    /// Holds the call's worst case in the budgets (a second hold for a hedge), or says which cap
    /// would be passed; nothing is counted.
    pub(crate) fn hold_call(&self, call: &ChatCall) -> Result<Option<Hold>, Exceeded> {
        let prices = self.options.targets.iter().take(MAX_TARGETS);
        self.try_hold(
            &call.user,
            (
                estimate_tokens(&call.messages, &call.tools),
                call.max_tokens,
                has_cache_marks(&call.messages, &call.tools),
            ),
            prices.map(|t| &t.pricing),
        )
    }

    /// Holds `tokens` (input, the most output, and whether the prompt carries cache marks) for
    /// `user` at the dearest of `prices` ([`charge::hold`]); `BudgetExceededError` when a cap would
    /// be passed.
    pub(crate) fn hold_budget<'p>(
        &self,
        user: &str,
        tokens: (u64, Option<u32>, bool),
        prices: impl IntoIterator<Item = &'p Pricing>,
    ) -> Result<Option<Hold>, JsValue> {
        self.try_hold(user, tokens, prices)
            .map_err(|exceeded| self.refused(user, &exceeded))
    }

    /// [`Inner::hold_budget`], uncounted, with the cap that refused.
    fn try_hold<'p>(
        &self,
        user: &str,
        tokens: (u64, Option<u32>, bool),
        prices: impl IntoIterator<Item = &'p Pricing>,
    ) -> Result<Option<Hold>, Exceeded> {
        let Some(ledger) = &self.budget else {
            return Ok(None);
        };
        let held = charge::hold(
            &mut ledger.borrow_mut(),
            user,
            tokens,
            prices,
            self.platform.wall_ms(),
        );
        held.map(Some)
    }

    /// Counts a call a budget refused; its `BudgetExceededError`.
    fn refused(&self, user: &str, exceeded: &Exceeded) -> JsValue {
        self.engine.count_budget_rejection();
        budget_exceeded(user, exceeded)
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
        self.settle_charge(
            hold,
            Charge {
                user: &call.user,
                model: &target.model,
                pricing: &target.pricing,
                usage: *usage,
                free,
            },
        )
    }

    /// Replaces the budget hold with what `charged` says was used ([`charge::settle`]), announcing
    /// a crossed threshold; returns the cost in micro-dollars.
    pub(crate) fn settle_charge(&self, hold: Option<Hold>, charged: Charge) -> u64 {
        self.settle_parts(hold, &[charged]).0
    }

    /// [`Inner::settle_charge`] for an answer in parts ([`charge::settle_parts`]); returns its cost
    /// and each part's, in micro-dollars.
    pub(crate) fn settle_parts(&self, hold: Option<Hold>, charges: &[Charge]) -> (u64, Vec<u64>) {
        let (settled, costs) = charge::settle_parts(
            self.budget.as_ref().map(|l| l.borrow_mut()).as_deref_mut(),
            &mut self.costs.borrow_mut(),
            hold,
            charges,
            self.platform.wall_ms(),
        );
        if let (Some((cap, used)), Some(charged)) = (settled.crossed, charges.first()) {
            self.platform.emit(Event::Budget {
                user: charged.user,
                cap: cap.as_str(),
                used_per_mille: used,
            });
        }
        (settled.cost_micros, costs)
    }

    /// Gives a budget hold back (the call failed).
    pub(crate) fn release(&self, hold: Option<Hold>) {
        let mut ledger = self.budget.as_ref().map(|l| l.borrow_mut());
        charge::release(ledger.as_deref_mut(), hold);
    }
}
