//! The chat side of a stream (`chatStream()`): the chain's targets tried until one streams its first
//! delta, a cut stream resumed past the text already delivered, and the `result` settled once.

use super::mid_stream::Written;
use super::open::cancelled;
use super::{ChatProgress, Purpose, Stream};
use crate::core::event::{Event, RetryReason};
use crate::core::llm::charge::reported_or_estimated;
use crate::core::llm::mid_stream::{part_costs, total};
use crate::core::llm::Completion;
use crate::core::platform::Platform;
use crate::core::race::unless_cancelled;
use crate::core::resume::{Delivered, Recoveries};
use crate::wasm::abort::is_aborted;
use crate::wasm::answer::{chat_start, not_a_stream, LiveStream, StreamStart};
use crate::wasm::chat_request::ChatCall;
use crate::wasm::chat_result::{
    chat_result, no_targets, set_parts, target_error, upstream_failure, TargetCompletion,
    TargetFailure,
};
use wasm_bindgen::prelude::*;

impl Stream {
    /// Tries the chain's targets in order until one streams its first delta (hedged: the first of
    /// two to stream one; the other is dropped before it touches the stream's state).
    pub(super) async fn start_chat(&self, progress: &ChatProgress) -> Result<JsValue, JsValue> {
        let inner = &self.inner;
        let client_retry = inner.engine.config().retry.as_ref();
        let call = (&progress.call.signal, &progress.call.policy);
        let hedging = inner.hedging(&progress.call);
        let rest = |_, _, response| std::future::ready(Ok(response));
        inner
            .along_chain_telling(
                call,
                hedging,
                |index, target| async move {
                    let prepared = inner.chat_request(target, &progress.call, true).await?;
                    // Resumptions follow the request's own `resilience.retry`, else the client's.
                    let resumes = match prepared.retry(client_retry) {
                        Some(retry) if retry.resume_streams => retry.max_retries,
                        _ => 0,
                    };
                    self.recoveries.set(Recoveries::resumes(resumes));
                    let opened = self.open_prepared(prepared, chat_start()).await;
                    let failure = match (opened, self.oversized_before_output()) {
                        (Err(error), _) => {
                            target_error(target, error, is_aborted(self.signal.as_ref()))
                        }
                        // Past a bound before its first delta: nothing was delivered, so the next
                        // target may answer instead, as for a chat() answer too large.
                        (Ok(_), Some(error)) => TargetFailure::unavailable(error),
                        (Ok(opened), None) if opened.response.ok() && !self.is_live() => {
                            TargetFailure::unavailable(not_a_stream(&opened.response))
                        }
                        (Ok(opened), None) if opened.response.ok() => {
                            progress.target.set(index);
                            progress.attempts.set(opened.attempts);
                            progress.cached.set(opened.cached);
                            progress.joined.set(opened.joined);
                            let live = !(opened.cached || opened.joined);
                            return Ok((JsValue::from(opened.response), live));
                        }
                        (Ok(opened), None) => {
                            upstream_failure(target, &opened.response, opened.attempts).await
                        }
                    };
                    Err(failure)
                },
                rest,
            )
            .await
            .map_err(|(error, _)| error)
    }

    /// A chat stream that ended cleanly: settle its budget (each upstream answer's part: the
    /// targets that wrote the answer, and cut answers resumed or moved on from) and resolve `result`.
    pub(super) fn finish_chat(&self, body: &LiveStream) {
        let Purpose::Chat(progress) = &self.purpose else {
            return;
        };
        if progress.settled.replace(true) {
            return;
        }
        let inner = &self.inner;
        let Some(target) = inner.options.targets.get(progress.target.get()) else {
            return;
        };
        let monitor = &body.watch.monitor;
        let text = body.watch.continues.whole(monitor.text());
        let mut used = progress.written.take();
        used.push(Written {
            kept: true,
            ..progress.part_of(body, reported_or_estimated, text.len())
        });
        let charges: Vec<_> = used
            .iter()
            .filter_map(|p| progress.charge(inner, p))
            .collect();
        let (micros, costs) = inner.settle_parts(progress.hold.take(), &charges);
        let answered = TargetCompletion {
            completion: Completion {
                text,
                tool_calls: monitor.tool_calls().to_vec(),
                finish_reason: monitor.finish_reason().unwrap_or("stop").to_string(),
                usage: total(used.iter().map(|p| p.usage)),
            },
            attempts: progress.attempts.get(),
            cached: progress.cached.get(),
        };
        let probe = inner.probe(&progress.call, JsValue::UNDEFINED);
        let stored = (progress.target.get(), &answered.completion);
        inner.remember(probe, stored, &progress.call.policy);
        let result = chat_result(target, &answered, micros);
        let kept = used.iter().filter(|p| p.kept);
        let paid = part_costs(used.iter().map(|p| p.kept).zip(costs));
        let parts: Vec<_> = kept.zip(paid).map(|(p, c)| (p.target, p.end, c)).collect();
        if parts.len() > 1 {
            set_parts(
                &result,
                &inner.options.targets,
                &answered.completion.text,
                &parts,
            );
        }
        let _ = progress.resolve.call1(&JsValue::NULL, &result);
    }

    /// A chat stream that failed (or was cancelled), with its `live` body if one was streaming:
    /// charge what its upstream answers used (the provider bills what they generated, delivered
    /// or not; a call that got no answer streaming gives its hold back) and reject `result`.
    pub(super) fn fail_chat(&self, error: &JsValue, live: Option<&LiveStream>) {
        let Purpose::Chat(progress) = &self.purpose else {
            return;
        };
        if progress.settled.replace(true) {
            return;
        }
        let mut used = progress.written.take();
        used.extend(live.map(|body| progress.cut_short(body)));
        let charges: Vec<_> = used
            .iter()
            .filter_map(|p| progress.charge(&self.inner, p))
            .collect();
        self.inner.settle_parts(progress.hold.take(), &charges);
        let _ = progress.reject.call1(&JsValue::NULL, error);
    }

    /// Sends a cut chat stream's request to the same target again. The new stream hands out only
    /// what follows the text already `delivered`, and fails if the new answer does not start with
    /// exactly that text. `Ok(false)` when no new stream could be opened; an error that ends the
    /// call (an abort, a budget) is passed on.
    pub(super) async fn resume(
        &self,
        progress: &ChatProgress,
        delivered: &Delivered,
    ) -> Result<bool, JsValue> {
        if self.cancelled.is_set() {
            return Ok(false);
        }
        let start = StreamStart {
            delivered: delivered.clone(),
            ..chat_start()
        };
        let attempt = progress.attempts.get() + 1;
        let announce = |url: &str| {
            self.inner.platform.emit(Event::Retry {
                url,
                attempt,
                delay_ms: 0,
                reason: RetryReason::StreamCut,
                from_server: false,
            })
        };
        let writer = (progress.target.get(), &progress.call);
        match self.reopen(progress, writer, start, &announce).await {
            Ok(()) => Ok(true),
            Err(failure) if failure.outcome.falls_back() => Ok(false),
            Err(failure) => Err(failure.error),
        }
    }

    /// Opens `call` on the target at `index` from `start` as the stream's new body (a resumption,
    /// or a mid-stream fallback's continuation), `announce`d with its URL once prepared: `Ok` once
    /// it is live (its attempts counted; the answer free only if it was so far and this is too),
    /// else how the target failed (or that the stream was cancelled meanwhile).
    pub(super) async fn reopen(
        &self,
        progress: &ChatProgress,
        (index, call): (usize, &ChatCall),
        start: StreamStart,
        announce: &dyn Fn(&str),
    ) -> Result<(), TargetFailure> {
        let inner = &self.inner;
        let Some(target) = inner.options.targets.get(index) else {
            return Err(TargetFailure::unavailable(no_targets().into()));
        };
        let prepared = inner.chat_request(target, call, true).await?;
        announce(&prepared.url);
        // A `cancel()` meanwhile drops the opening at once (cancelled on the wire, no failure).
        let superseding = inner.engine.superseding();
        let opening = self.open_prepared(prepared, start);
        let Some(opened) = unless_cancelled(opening, &self.cancelled, superseding).await else {
            return Err(TargetFailure::unavailable(cancelled()));
        };
        match opened {
            Ok(opened) if self.is_live() => {
                progress.target.set(index);
                progress
                    .attempts
                    .set(progress.attempts.get() + opened.attempts);
                progress.cached.set(progress.cached.get() && opened.cached);
                progress.joined.set(progress.joined.get() && opened.joined);
                Ok(())
            }
            Ok(opened) => Err(TargetFailure::unavailable(not_a_stream(&opened.response))),
            Err(error) => Err(target_error(
                target,
                error,
                is_aborted(self.signal.as_ref()),
            )),
        }
    }
}
