//! Walking a call's fallback chain ([`Chain`], decided in the core) for `chat()`, `chatStream()`
//! and `embed()`: each target tried in turn, a `fallback` event at each move, and, when every target
//! is out, a wait for the first one back that the caller's signal cuts.

use crate::core::event::Event;
use crate::core::llm::{Chain, Outcome, Step};
use crate::core::platform::Platform;
use crate::wasm::abort::until_aborted;
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::chat_result::{all_targets_failed, back_in, no_targets, TargetFailure};
use crate::wasm::inner::Inner;
use crate::wasm::js::get;
use crate::wasm::request_policy::parse_request_policy;
use std::future::Future;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

impl Inner {
    /// Walks the fallback chain ([`Chain`]): `attempt` is tried on each target in turn (with its
    /// index) until one answers, the chain stops on a failure no other target would fix, or every
    /// target failed (`AllTargetsFailedError`). Each move to the next target emits `fallback`. When
    /// every target is out, the chain may say to wait for the first one back: the wait is a
    /// platform sleep that the caller's signal cuts.
    pub(crate) async fn along_chain<'t, T, F>(
        &'t self,
        call: (&JsValue, &JsValue),
        attempt: impl FnMut(usize, &'t TargetConfig) -> F,
    ) -> Result<T, JsValue>
    where
        F: Future<Output = Result<T, TargetFailure>>,
    {
        let walked = self.along_chain_telling(call, attempt).await;
        walked.map_err(|(error, _)| error)
    }

    /// [`Inner::along_chain`] for a call of `(signal, resilience)`, its error paired with how
    /// each target tried failed (what the semantic cache decides on; a caller's abort during a
    /// wait is [`Outcome::Aborted`]).
    pub(crate) async fn along_chain_telling<'t, T, F>(
        &'t self,
        (signal, resilience): (&JsValue, &JsValue),
        mut attempt: impl FnMut(usize, &'t TargetConfig) -> F,
    ) -> Result<T, (JsValue, Vec<Outcome>)>
    where
        F: Future<Output = Result<T, TargetFailure>>,
    {
        let deadline = self
            .total_ms(resilience)
            .map(|ms| self.platform.now_ms().saturating_add(ms));
        let targets = self.options.targets.len();
        let chain = Chain::new(targets).ok_or_else(|| (no_targets().into(), Vec::new()))?;
        let mut chain = chain.waiting_up_to(self.outage_wait_ms(), deadline);
        let mut step = chain.start();
        loop {
            if let Step::Wait { ms, .. } = step {
                let signal = signal.dyn_ref::<AbortSignal>();
                if let Err(aborted) = until_aborted(signal, self.platform.sleep(ms)).await {
                    let mut outcomes = chain.outcomes().to_vec();
                    outcomes.push(Outcome::Aborted);
                    return Err((aborted, outcomes));
                }
            }
            let (index, target) = self
                .next_target(&chain, step)
                .map_err(|error| (error, chain.outcomes().to_vec()))?;
            match attempt(index, target).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => {
                    let now = self.platform.now_ms();
                    // A failure that does not say when it ends (a probe's 503) may have opened
                    // the target's breaker, which does.
                    let key = target_key(target);
                    let back = back_in(&failure.error).or_else(|| self.engine.opens_in(&key, now));
                    step = chain.failed_at(failure.outcome, failure.error, back, now);
                }
            }
        }
    }

    /// The longest a chat call may wait, in all, for a target to come back: `fallback.maxWaitMs`,
    /// else the rate limiter's `maxWaitMs`.
    fn outage_wait_ms(&self) -> u64 {
        let limiter = self.engine.max_wait_ms();
        self.options.fallback.max_wait_ms.unwrap_or(limiter)
    }

    /// A call's `timeout.totalMs` (its own `resilience.timeout`, else the client's).
    fn total_ms(&self, resilience: &JsValue) -> Option<u64> {
        let client = self.engine.config();
        // An invalid `resilience` is reported when the request is prepared; here it is the client's.
        let own = parse_request_policy(resilience.clone(), client.retry.as_ref()).ok();
        let timeout = own.map_or(client.timeout, |p| client.timeout.overridden_by(&p.timeout));
        timeout.total_ms
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
            Step::Wait { index, .. } => (index, None),
            Step::Stop(error) => return Err(error),
            Step::AllFailed(errors) => {
                let back = chain.back_in(self.platform.now_ms());
                return Err(all_targets_failed(targets, errors, back));
            }
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
}

/// A target's breaker and bucket key: one per target, even for targets sharing an origin.
pub(crate) fn target_key(target: &TargetConfig) -> String {
    format!("target:{}", target.name)
}
