//! Walking a call's fallback chain ([`Chain`], decided in the core) for `chat()`, `chatStream()`
//! and `embed()`: each target tried in turn, a `fallback` event at each move, and, when every target
//! is out, a wait for the first one back that the caller's signal cuts. A chat call may hedge a
//! late first token on the next target ([`crate::core::hedge`]): both race to a first token, the
//! loser is cancelled, and failures reach the chain in its order.

use crate::core::event::Event;
use crate::core::hedge::{hedged, HedgeAfter, Raced, Side};
use crate::core::llm::{Chain, Hold, Outcome, Step};
use crate::core::platform::Platform;
use crate::wasm::abort::until_aborted;
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::chat_request::ChatCall;
use crate::wasm::chat_result::{
    all_targets_failed, back_in, failure_reason, no_targets, TargetFailure,
};
use crate::wasm::errors::named_error;
use crate::wasm::inner::Inner;
use crate::wasm::js::set;
use crate::wasm::request_policy::RequestPolicy;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

/// How a chat call hedges ([`crate::core::hedge`]): when its first token is late, and the call
/// whose worst case a hedge holds in the budgets too.
pub(crate) struct Hedging<'c> {
    pub(crate) after: HedgeAfter,
    pub(crate) call: &'c ChatCall,
}

/// A hedge's budget hold, given back when dropped.
struct HeldBack<'i>(&'i Inner, Option<Hold>);

impl Drop for HeldBack<'_> {
    fn drop(&mut self) {
        self.0.release(self.1.take());
    }
}

/// One side of a hedged race: an attempt up to its first token, with how long that took.
type Attempt<'a, U> = Pin<Box<dyn Future<Output = Result<(U, Option<u64>), TargetFailure>> + 'a>>;

/// A target's place in the configured list, and its configuration.
type Indexed<'t> = (usize, &'t TargetConfig);

/// What a failed step leaves the chain: the failure of the target tried, then, when its hedge
/// ran and failed too, the hedge's target and failure (reported after it, as if tried next), and
/// whether a hedge was started (the call's one).
type Failed<'t> = (TargetFailure, Option<(Indexed<'t>, TargetFailure)>, bool);

/// How a walk tries one step: the target given, and, when `hedge_to` says which target the chain
/// would try next, maybe that one too. Separate from the walk so that a call that never hedges
/// (`embed()`) carries none of the hedging code.
trait Attempts<'t> {
    type Answer;
    /// Whether a step may be hedged (the chain then names the target a hedge would ask).
    fn hedges(&self) -> bool;
    async fn step(
        &mut self,
        inner: &'t Inner,
        tried: Indexed<'t>,
        hedge_to: Option<usize>,
    ) -> Result<Self::Answer, Failed<'t>>;
}

/// One attempt per step.
struct Plain<A, F, T>(A, PhantomData<fn() -> (F, T)>);

impl<'t, A, F, T> Attempts<'t> for Plain<A, F, T>
where
    A: FnMut(usize, &'t TargetConfig) -> F,
    F: Future<Output = Result<T, TargetFailure>>,
{
    type Answer = T;

    fn hedges(&self) -> bool {
        false
    }

    async fn step(
        &mut self,
        _: &'t Inner,
        (i, target): Indexed<'t>,
        _: Option<usize>,
    ) -> Result<T, Failed<'t>> {
        (self.0)(i, target)
            .await
            .map_err(|failure| (failure, None, false))
    }
}

/// The types of a step's two phases (its first and its rest, and what passes between them).
type Phases<F, G, U> = PhantomData<fn() -> (F, G, U)>;

/// Two phases per step, the first one hedged ([`Inner::along_chain_telling`]).
struct Racing<'c, A, F, R, G, U> {
    hedging: Option<Hedging<'c>>,
    first: A,
    rest: R,
    phases: Phases<F, G, U>,
}

impl<'t, A, F, R, G, U, T> Attempts<'t> for Racing<'_, A, F, R, G, U>
where
    A: FnMut(usize, &'t TargetConfig) -> F,
    F: Future<Output = Result<(U, bool), TargetFailure>> + 't,
    R: FnMut(usize, &'t TargetConfig, U) -> G,
    G: Future<Output = Result<T, TargetFailure>>,
    U: 't,
{
    type Answer = T;

    fn hedges(&self) -> bool {
        self.hedging.is_some()
    }

    async fn step(
        &mut self,
        inner: &'t Inner,
        (index, target): Indexed<'t>,
        hedge_to: Option<usize>,
    ) -> Result<T, Failed<'t>> {
        let hedge = self.hedging.as_ref().and_then(|hedging| {
            let to = hedge_to?;
            let after_ms = inner.first_tokens.borrow().delay(hedging.after, index)?;
            let to = inner.options.targets.get(to).map(|t| (to, t))?;
            Some((hedging.call, to, after_ms))
        });
        let first = &mut self.first;
        // Boxed: the two sides are polled from one place, and each attempt's code is kept once
        // rather than inlined at both.
        let primary: Attempt<'t, U> = Box::pin(inner.timed(first(index, target)));
        // Given back when the race is decided, or if the step is dropped (a cancelled stream).
        let mut extra_hold = HeldBack(inner, None);
        let start_hedge = || {
            let (call, (to, hedge_target), _) = hedge?;
            // A budget that cannot hold both means no hedge: the call goes on without one.
            extra_hold.1 = inner.hold_call(call).ok()?;
            inner.first_tokens.borrow_mut().started += 1;
            Some(Box::pin(inner.timed(first(to, hedge_target))) as Attempt<'t, U>)
        };
        let after_ms = hedge.map(|(_, _, ms)| ms);
        let superseding = inner.engine.superseding();
        let raced = hedged(&inner.platform, primary, after_ms, start_hedge, superseding).await;
        drop(extra_hold);
        let hedge = hedge.filter(|_| raced.hedged).map(|(_, to, ms)| (to, ms));
        inner.decided(&raced, (index, target), hedge);
        let failed = match (raced.won, hedge) {
            (Some((Side::Primary, (answer, _))), _) => {
                match (self.rest)(index, target, answer).await {
                    Ok(answer) => return Ok(answer),
                    Err(failure) => (Some(failure), raced.hedge),
                }
            }
            (Some((Side::Hedge, (answer, _))), Some(((to, to_target), ms))) => {
                match (self.rest)(to, to_target, answer).await {
                    Ok(answer) => return Ok(answer),
                    // Its primary was cancelled, not failed, but the chain has passed it.
                    Err(failure) => (
                        raced
                            .primary
                            .or_else(|| Some(superseded(target, to_target, ms))),
                        Some(failure),
                    ),
                }
            }
            (_, _) => (raced.primary, raced.hedge),
        };
        let hedge_failed = match (failed.1, hedge) {
            (Some(failure), Some((to, _))) => Some((to, failure)),
            _ => None,
        };
        let primary = failed
            .0
            .unwrap_or_else(|| TargetFailure::unavailable(no_targets().into()));
        Err((primary, hedge_failed, raced.hedged))
    }
}

impl Inner {
    /// Walks the fallback chain ([`Chain`]): `attempt` is tried on each target in turn (with its
    /// index) until one answers, the chain stops on a failure no other target would fix, or every
    /// target failed (`AllTargetsFailedError`). Each move to the next target emits `fallback`. When
    /// every target is out, the chain may say to wait for the first one back: the wait is a
    /// platform sleep that the caller's signal cuts.
    pub(crate) async fn along_chain<'t, T, F>(
        &'t self,
        call: (&JsValue, &RequestPolicy),
        attempt: impl FnMut(usize, &'t TargetConfig) -> F,
    ) -> Result<T, JsValue>
    where
        F: Future<Output = Result<T, TargetFailure>>,
    {
        let walked = self.walk(call, Plain(attempt, PhantomData)).await;
        walked.map_err(|(error, _)| error)
    }

    /// [`Inner::along_chain`] for a call of `(signal, its request policy)` in two phases: `first` runs up
    /// to the target's first token (`true` beside it when it came from the upstream, so its time
    /// counts for `"p95"`), `rest` completes the answer. With `hedging`, a first token later than
    /// the delay starts `first` on the next target too ([`hedged`]); the first to produce one goes
    /// on to `rest`. The error is paired with how each target tried failed (what the semantic
    /// cache decides on; a caller's abort during a wait is [`Outcome::Aborted`]).
    pub(crate) async fn along_chain_telling<'t, T, U, F, G>(
        &'t self,
        call: (&JsValue, &RequestPolicy),
        hedging: Option<Hedging<'_>>,
        first: impl FnMut(usize, &'t TargetConfig) -> F,
        rest: impl FnMut(usize, &'t TargetConfig, U) -> G,
    ) -> Result<T, (JsValue, Vec<Outcome>)>
    where
        F: Future<Output = Result<(U, bool), TargetFailure>> + 't,
        G: Future<Output = Result<T, TargetFailure>>,
        U: 't,
    {
        let phases = PhantomData;
        let racing = Racing {
            hedging,
            first,
            rest,
            phases,
        };
        self.walk(call, racing).await
    }

    /// The walk itself: each step's failures told to the chain, in its order.
    async fn walk<'t, W: Attempts<'t>>(
        &'t self,
        (signal, policy): (&JsValue, &RequestPolicy),
        mut attempts: W,
    ) -> Result<W::Answer, (JsValue, Vec<Outcome>)> {
        let deadline = self
            .total_ms(policy)
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
            let hedge_to = attempts
                .hedges()
                .then(|| chain.hedge_index(|next| self.is_shut(next)))
                .flatten();
            let (failure, hedge, hedged) =
                match attempts.step(self, (index, target), hedge_to).await {
                    Ok(answer) => return Ok(answer),
                    Err(failed) => failed,
                };
            if hedged {
                chain.hedge_started();
            }
            step = self.record(&mut chain, target, failure);
            // The hedge's failure follows, as if it had been tried next (unless the chain stopped).
            if let Some(((to, to_target), failure)) = hedge {
                if matches!(step, Step::Try { index, .. } if index == to) {
                    step = self.record(&mut chain, to_target, failure);
                }
            }
        }
    }

    /// `attempt`, with how long it took to its first token (from its first poll) when that came
    /// from the upstream.
    async fn timed<U>(
        &self,
        attempt: impl Future<Output = Result<(U, bool), TargetFailure>>,
    ) -> Result<(U, Option<u64>), TargetFailure> {
        let started = self.platform.now_ms();
        let (answer, live) = attempt.await?;
        let took = live.then(|| self.platform.now_ms().saturating_sub(started));
        Ok((answer, took))
    }

    /// Notes a decided race: the winner's time to first token, and, when a hedge ran, who won
    /// (the `hedge` event, `stats().hedges`).
    fn decided<U, E>(
        &self,
        raced: &Raced<(U, Option<u64>), E>,
        (index, target): Indexed,
        hedge: Option<(Indexed, u64)>,
    ) {
        let mut times = self.first_tokens.borrow_mut();
        let winner = raced
            .won
            .as_ref()
            .and_then(|(side, (_, took))| match (side, hedge) {
                (Side::Primary, _) => Some((index, target, *took)),
                (Side::Hedge, Some(((to, to_target), _))) => Some((to, to_target, *took)),
                (Side::Hedge, None) => None,
            });
        if let Some((winner, _, Some(ms))) = winner {
            times.record(winner, ms);
        }
        let Some(((to, to_target), after_ms)) = hedge else {
            return;
        };
        if winner.is_some_and(|(winner, ..)| winner == to) {
            times.won += 1;
        }
        drop(times);
        self.platform.emit(Event::Hedge {
            from: &target.name,
            to: &to_target.name,
            after_ms,
            winner: winner.map(|(_, t, _)| t.name.as_str()),
        });
    }

    /// Tells the chain that `target` failed: the next step.
    fn record(
        &self,
        chain: &mut Chain<JsValue>,
        target: &TargetConfig,
        failure: TargetFailure,
    ) -> Step<JsValue> {
        let now = self.platform.now_ms();
        // A failure that does not say when it ends (a probe's 503) may have opened the target's
        // breaker, which does.
        let key = target_key(target);
        let back = back_in(&failure.error).or_else(|| self.engine.opens_in(&key, now));
        chain.failed_at(failure.outcome, failure.error, back, now)
    }

    /// Whether target `index`'s breaker is open (and allows no probe yet).
    fn is_shut(&self, index: usize) -> bool {
        let Some(target) = self.options.targets.get(index) else {
            return true;
        };
        let now = self.platform.now_ms();
        (self.engine.opens_in(&target_key(target), now)).is_some_and(|ms| ms > 0)
    }

    /// The longest a chat call may wait, in all, for a target to come back: `fallback.maxWaitMs`,
    /// else the rate limiter's `maxWaitMs`.
    fn outage_wait_ms(&self) -> u64 {
        let limiter = self.engine.max_wait_ms();
        self.options.fallback.max_wait_ms.unwrap_or(limiter)
    }

    /// A call's `timeout.totalMs` (its own `resilience.timeout`, else the client's).
    fn total_ms(&self, policy: &RequestPolicy) -> Option<u64> {
        let client = self.engine.config();
        client.timeout.overridden_by(&policy.timeout).total_ms
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
            let reason = chain.failures().last().map(failure_reason);
            self.platform.emit(Event::Fallback {
                from: &from.name,
                to: &target.name,
                reason: &reason.unwrap_or_default(),
            });
        }
        Ok((index, target))
    }
}

/// The failure of a target whose first token was `ms` late and whose hedge answered first: it
/// was cancelled, and the chain has moved past it (what the call reports if the hedge fails
/// after its first token).
fn superseded(target: &TargetConfig, hedge: &TargetConfig, ms: u64) -> TargetFailure {
    let message = format!(
        "{}: no first token within {ms} ms (hedge.afterMs); {} answered first",
        target.name, hedge.name
    );
    let error = named_error("TimeoutError", "TIMEOUT", &message);
    set(&error, "timeoutMs", &(ms as f64).into());
    TargetFailure::unavailable(error.into())
}

/// A target's breaker and bucket key: one per target, even for targets sharing an origin.
pub(crate) fn target_key(target: &TargetConfig) -> String {
    format!("target:{}", target.name)
}
