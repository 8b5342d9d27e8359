//! Mid-stream fallback (`fallback.midStream`): a chat stream cut past resuming continues on the
//! next target that can prefill. Which target, the prefill and its whitespace, and the charges are
//! decided in [`crate::core::llm::mid_stream`]; this drives it: the budget hold extended, each
//! candidate opened through the pipeline (its breaker and rate limits admit it or not, as for any
//! call) with a `fallback` event, and the continuation made the stream's body.

use super::{ChatProgress, Purpose, Stream};
use crate::core::event::Event;
use crate::core::llm::charge::{hold_more, Charge};
use crate::core::llm::mid_stream::{can_prefill, written_usage, Continuation, Handover};
use crate::core::llm::request::has_cache_marks;
use crate::core::llm::{estimate_tokens, with_prefill, ToolCall, Usage, MAX_TARGETS};
use crate::core::platform::Platform;
use crate::core::resume::{Delivered, Failure, Recoveries};
use crate::wasm::answer::{chat_start, LiveStream, StreamStart};
use crate::wasm::chat_request::ChatCall;
use crate::wasm::chat_result::{budget_exceeded, failure_reason};
use crate::wasm::inner::Inner;
use crate::wasm::js::set;
use wasm_bindgen::prelude::*;

/// What one upstream answer of a chat stream used, and where its text ends in the answer.
pub(crate) struct Written {
    /// The target's index.
    pub(crate) target: usize,
    /// Where its part ends in the answer's text (bytes).
    pub(crate) end: usize,
    /// What it used.
    pub(crate) usage: Usage,
    /// It made no upstream call of its own (a stream shared with an identical request).
    pub(crate) free: bool,
    /// Its text is a part of the answer: false for a cut answer that was resumed, or that nothing
    /// continued (it is charged all the same: the provider bills what it generated).
    pub(crate) kept: bool,
}

/// A chat stream cut past resuming: what the caller has (every part).
pub(super) struct Cut {
    delivered: Delivered,
}

impl ChatProgress {
    /// What `body` used (`usage` from what it reported, its input and what it generated), its
    /// text ending at `end` in the answer; kept in the answer or not as its caller decides.
    pub(super) fn part_of(
        &self,
        body: &LiveStream,
        usage: fn(Usage, u64, (&str, &[ToolCall])) -> Usage,
        end: usize,
    ) -> Written {
        let monitor = &body.watch.monitor;
        let continues = &body.watch.continues;
        let input = input_tokens(&self.call, continues.before());
        let generated = (monitor.text(), monitor.tool_calls());
        Written {
            target: self.target.get(),
            end,
            usage: usage(monitor.usage(), input, generated),
            free: self.cached.get() || self.joined.get(),
            kept: false,
        }
    }

    /// What `body`, ended before completing the answer, used: what it generated, at least (a cut
    /// stream reports its input, not what it wrote after).
    pub(super) fn cut_short(&self, body: &LiveStream) -> Written {
        self.part_of(body, written_usage, body.partial_text().len())
    }

    /// What the call is charged for `part`: its writer's model and prices, its usage.
    pub(super) fn charge<'a>(&'a self, inner: &'a Inner, part: &Written) -> Option<Charge<'a>> {
        let target = inner.options.targets.get(part.target)?;
        Some(Charge {
            user: &self.call.user,
            model: &target.model,
            pricing: &target.pricing,
            usage: part.usage,
            free: part.free,
        })
    }
}

impl Stream {
    /// The cut of a chat stream `body` that a mid-stream fallback may continue (`fallback.midStream`
    /// on): the stream was cut, or resumed after a cut with an answer that came out differently
    /// (its own target cannot resume it either; what the caller has is what was delivered before).
    pub(super) fn cut_of(&self, body: &LiveStream) -> Option<Cut> {
        let Purpose::Chat(_) = &self.purpose else {
            return None;
        };
        let cut = body.failure() == Failure::Cut || body.watch.resume.diverged();
        if !self.inner.options.fallback.mid_stream || !cut {
            return None;
        }
        let own = body.delivered();
        Some(Cut {
            delivered: Delivered {
                text: body.watch.continues.whole(&own.text),
                tool_calls: own.tool_calls,
            },
        })
    }

    /// Notes what a chat stream's `body` used as it ends without completing the answer (cut,
    /// failed or cancelled): the call is charged for it whatever happens next. Its text is not (yet)
    /// a part of the answer: a continuation on another target makes it one.
    pub(super) fn spent(&self, body: &LiveStream) {
        if let Purpose::Chat(progress) = &self.purpose {
            progress.written.borrow_mut().push(progress.cut_short(body));
        }
    }

    /// A chat stream failed with `error` and was not recovered on its own target: continues it on
    /// another (`cut`: when it may), else fails it. `Ok` once a continuation is the stream's body
    /// (or the stream was cancelled meanwhile); the error it ended with otherwise.
    pub(super) async fn hand_over(&self, cut: Option<Cut>, error: JsValue) -> Result<(), JsValue> {
        let moved = match (&self.purpose, cut) {
            (Purpose::Chat(progress), Some(cut)) => {
                self.continue_elsewhere(progress, cut, &error).await
            }
            _ => Ok(false),
        };
        let error = match moved {
            Ok(true) => return Ok(()),
            Ok(false) => error,
            Err(stop) => stop,
        };
        self.fail_chat(&error, None);
        Err(error)
    }

    /// Opens the continuation of `cut` on the next target that can prefill and is not out;
    /// `Ok(false)` when none could take it.
    async fn continue_elsewhere(
        &self,
        progress: &ChatProgress,
        cut: Cut,
        error: &JsValue,
    ) -> Result<bool, JsValue> {
        let inner = &self.inner;
        let targets = &inner.options.targets;
        let format = progress.call.response_format.is_some();
        let handover = Handover::new(
            targets
                .iter()
                .map(|t| can_prefill(t.provider, t.prefill, format)),
        );
        let writer = progress.target.get();
        let Some(mut index) = handover.cut(writer, &cut.delivered) else {
            return Ok(false);
        };
        let whole = cut.delivered.text;
        let call = ChatCall {
            prefill: Some(whole.clone()),
            ..progress.call.clone()
        };
        self.hold_continuation(progress, &call, index, &whole)?;
        // The reason of each move: the cut, then how the last candidate failed.
        let mut reason = failure_reason(error);
        let mut from = writer;
        loop {
            let Some(to) = targets.get(index) else {
                return Ok(false);
            };
            if let Some(from) = targets.get(from) {
                inner.platform.emit(Event::Fallback {
                    from: &from.name,
                    to: &to.name,
                    reason: &reason,
                });
            }
            // A continuation cut in turn moves on, rather than being resumed: its answer would
            // have to repeat itself exactly.
            self.recoveries.set(Recoveries::resumes(0));
            let start = StreamStart {
                continues: Continuation::after(whole.clone(), to.provider),
                ..chat_start()
            };
            // Free only if the continuation is (a stream shared with an identical request).
            progress.cached.set(true);
            progress.joined.set(true);
            // A listener of the event, or the caller meanwhile, may have ended the stream.
            let opened = match self.stopped() {
                None => self.reopen(progress, (index, &call), start, &|_| {}).await,
                Some(stopped) => return stopped,
            };
            if let Some(stopped) = self.stopped() {
                return stopped;
            }
            match opened {
                Ok(()) => {
                    // The cut answer, noted last when it ended, is the answer's part before this.
                    if let Some(part) = progress.written.borrow_mut().last_mut() {
                        part.kept = true;
                    }
                    return Ok(true);
                }
                Err(failure) if !failure.outcome.falls_back() => return Err(failure.error),
                Err(failure) => match handover.failed(index, failure.outcome) {
                    Some(next) => {
                        (from, index) = (index, next);
                        reason = failure_reason(&failure.error);
                    }
                    None => return Ok(false),
                },
            }
        }
    }

    /// Whether the stream was ended during a move: cancelled (`Ok`: nothing more to do) or aborted
    /// (the signal's reason, which wins over the failure it may have caused: a browser may fail
    /// the fetch first).
    fn stopped(&self) -> Option<Result<bool, JsValue>> {
        if self.cancelled.is_set() {
            return Some(Ok(true));
        }
        self.aborted().map(Err)
    }

    /// Adds the continuation's worst case to the call's budget hold, priced at the dearest target
    /// that may write it (from `index` on); `BudgetExceededError` (with the text delivered) when a
    /// cap would be passed.
    fn hold_continuation(
        &self,
        progress: &ChatProgress,
        call: &ChatCall,
        index: usize,
        whole: &str,
    ) -> Result<(), JsValue> {
        let inner = &self.inner;
        let mut held = progress.hold.borrow_mut();
        let (Some(ledger), Some(hold)) = (&inner.budget, held.as_mut()) else {
            return Ok(());
        };
        let input = input_tokens(call, "");
        let marked = has_cache_marks(&call.messages, &call.tools);
        let targets = inner.options.targets.iter().take(MAX_TARGETS).skip(index);
        let now = inner.platform.wall_ms();
        let prices = targets.map(|t| &t.pricing);
        let extended = hold_more(
            &mut ledger.borrow_mut(),
            hold,
            (input, call.max_tokens, marked),
            prices,
            now,
        );
        extended.map_err(|exceeded| {
            inner.engine.count_budget_rejection();
            let error = budget_exceeded(&call.user, &exceeded);
            set(&error, "partialText", &whole.into());
            error
        })
    }
}

/// The input tokens of `call` (its own prefill included) continuing `before`, estimated.
pub(super) fn input_tokens(call: &ChatCall, before: &str) -> u64 {
    let prefill = call.prefill.as_deref().or(Some(before));
    let messages = with_prefill(&call.messages, prefill);
    estimate_tokens(&messages, &call.tools)
}
