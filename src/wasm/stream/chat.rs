//! The chat side of a stream (`chatStream()`): the chain's targets tried until one streams its first
//! delta, a cut stream resumed past the text already delivered, and the `result` settled once.

use super::{ChatProgress, Purpose, Stream};
use crate::core::event::{Event, RetryReason};
use crate::core::llm::charge::reported_or_estimated;
use crate::core::llm::{estimate_tokens, Completion};
use crate::core::platform::Platform;
use crate::core::resume::{Delivered, Recoveries};
use crate::wasm::abort::is_aborted;
use crate::wasm::answer::{chat_start, not_a_stream, LiveStream, StreamStart};
use crate::wasm::chat_result::{
    chat_result, target_error, upstream_failure, TargetCompletion, TargetFailure,
};
use wasm_bindgen::prelude::*;

impl Stream {
    /// Tries the chain's targets in order until one streams its first delta (hedged: the first of
    /// two to stream one; the other is dropped before it touches the stream's state).
    pub(super) async fn start_chat(&self, progress: &ChatProgress) -> Result<JsValue, JsValue> {
        let inner = &self.inner;
        let client_retry = inner.engine.config().retry.as_ref();
        let call = (&progress.call.signal, &progress.call.resilience);
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

    /// A chat stream that ended cleanly: settle its budget and resolve `result`.
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
        let input = estimate_tokens(&progress.call.messages, &progress.call.tools);
        let generated = (monitor.text(), monitor.tool_calls());
        let usage = reported_or_estimated(monitor.usage(), input, generated);
        let micros = inner.settle(
            progress.hold.take(),
            &progress.call,
            target,
            (&usage, progress.cached.get() || progress.joined.get()),
        );
        let answered = TargetCompletion {
            completion: Completion {
                text: monitor.text().to_string(),
                tool_calls: monitor.tool_calls().to_vec(),
                finish_reason: monitor.finish_reason().unwrap_or("stop").to_string(),
                usage,
            },
            attempts: progress.attempts.get(),
            cached: progress.cached.get(),
        };
        let probe = inner.probe(&progress.call, JsValue::UNDEFINED);
        let stored = (progress.target.get(), &answered.completion);
        inner.remember(probe, stored, &progress.call.resilience);
        let _ = progress
            .resolve
            .call1(&JsValue::NULL, &chat_result(target, &answered, micros));
    }

    /// A chat stream that failed: give the budget hold back (or charge what was generated) and
    /// reject `result`.
    pub(super) fn fail_chat(&self, error: &JsValue) {
        let Purpose::Chat(progress) = &self.purpose else {
            return;
        };
        if progress.settled.replace(true) {
            return;
        }
        self.inner.release(progress.hold.take());
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
        let inner = &self.inner;
        let Some(target) = inner.options.targets.get(progress.target.get()) else {
            return Ok(false);
        };
        if self.cancelled.get() {
            return Ok(false);
        }
        let prepared = match inner.chat_request(target, &progress.call, true).await {
            Ok(prepared) => prepared,
            Err(failure) if failure.outcome.falls_back() => return Ok(false),
            Err(failure) => return Err(failure.error),
        };
        inner.platform.emit(Event::Retry {
            url: &prepared.url,
            attempt: progress.attempts.get() + 1,
            delay_ms: 0,
            reason: RetryReason::StreamCut,
            from_server: false,
        });
        let start = StreamStart {
            delivered: delivered.clone(),
            ..chat_start()
        };
        match self.open_prepared(prepared, start).await {
            Ok(opened) if self.is_live() => {
                progress
                    .attempts
                    .set(progress.attempts.get() + opened.attempts);
                // Free only if no part of the answer made an upstream call of its own.
                progress.cached.set(progress.cached.get() && opened.cached);
                progress.joined.set(progress.joined.get() && opened.joined);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(error) => match target_error(target, error, is_aborted(self.signal.as_ref())) {
                failure if failure.outcome.falls_back() => Ok(false),
                failure => Err(failure.error),
            },
        }
    }
}
