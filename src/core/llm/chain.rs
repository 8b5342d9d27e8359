//! The fallback chain: which target a chat call tries next, and when it stops.
//!
//! `chat()` and `chatStream()` (before its first delta) walk the same chain, so the rules live here
//! once, as a small state machine the binding layer drives: it asks where to start, reports how each
//! attempt failed, and is told to try the next target, to stop with that failure, or that every
//! target failed (with one failure per target, in order). A stop is a failure that another target
//! would repeat or that the caller must fix: bad credentials, a malformed request, the caller's
//! abort, the client-wide rate limit, a request that could not be prepared. Everything else (an
//! outage, an open breaker, an exhausted quota, a context too long for the model, a refused prompt,
//! an unreadable or oversized answer) is this target's problem, and the next one may answer.
//! At most [`MAX_TARGETS`] are tried, so a long list cannot turn one call into dozens. A hedged
//! attempt ([`crate::core::hedge`]) runs the next target early ([`Chain::hedge_index`]); their
//! failures are reported in chain order, so the walk ends as it would have tried them in turn.
//!
//! A full outage waited out. When every target failed and each said when it is back (an open
//! breaker's next probe, a rate limit's refill: the failure's `retryAfterMs`), the chain waits for
//! the earliest of them, if it comes within the wait allowed ([`Chain::waiting_up_to`], the client's
//! `fallback.maxWaitMs`), and tries that target again ([`Step::Wait`]): a few seconds of outage
//! then cost a few seconds, not a failed call. If one failure says nothing of when (a 5xx that did
//! not open its target's breaker, a network error), or the earliest is too far or past the call's
//! deadline, the call fails at once, and the earliest return is there to report
//! ([`Chain::back_in`]). The waits of one call add up within the allowance, and there are at most
//! [`MAX_WAITS`], so a target that keeps failing cannot hold a call forever.

use crate::core::llm::ErrorClass;

/// Most targets tried for one call.
pub const MAX_TARGETS: usize = 5;

/// Most waits for a target to come back in one call (each ends in a new attempt).
pub const MAX_WAITS: usize = 20;

/// The shortest wait for a target that said it is back "now" (an open breaker's probe is in flight
/// for another call): that probe answers in about a round trip, and asking again at once would spin.
pub const MIN_WAIT_MS: u64 = 50;

/// How one target's attempt failed, as far as the chain cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered with an error, classified from its status and body.
    ErrorStatus(ErrorClass),
    /// No usable answer from this target: a network failure, a timeout, its open breaker or its own
    /// rate limit, an answer unreadable, not a stream, or past a byte limit.
    Unavailable,
    /// The caller aborted.
    Aborted,
    /// The client-wide rate limit refused the call: the same whichever target is next.
    ClientLimited,
    /// The request could not be prepared (its options are invalid): the same for every target.
    Unprepared,
}

impl Outcome {
    /// Whether the next target may be tried after this failure.
    pub fn falls_back(self) -> bool {
        match self {
            Outcome::ErrorStatus(class) => class.falls_back(),
            Outcome::Unavailable => true,
            Outcome::Aborted | Outcome::ClientLimited | Outcome::Unprepared => false,
        }
    }
}

/// What the caller of the chain does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<E> {
    /// Wait `ms`, then try the target at `index` again: every target is out, and this one is back
    /// first.
    Wait {
        /// The target's index in the configured list.
        index: usize,
        /// How long to wait first.
        ms: u64,
    },
    /// Try a target.
    Try {
        /// The target's index in the configured list.
        index: usize,
        /// The target it falls back from (for the `fallback` event); `None` for the first.
        from: Option<usize>,
    },
    /// End the call with this failure, as it is.
    Stop(E),
    /// Every target tried failed (two or more): their failures, one per target, in the order
    /// tried.
    AllFailed(Vec<E>),
}

/// A chat call's walk along its targets; `E` is the failure each attempt ends with.
#[derive(Debug)]
pub struct Chain<E> {
    len: usize,
    /// One failure per target tried, by index (a target tried again after a wait replaces its own).
    failures: Vec<E>,
    /// How each attempt failed, in order (the semantic cache decides on them).
    outcomes: Vec<Outcome>,
    /// When each target failed said it is back (platform ms), by index; `None`: it did not say.
    back_at: Vec<Option<u64>>,
    /// The target being tried.
    current: usize,
    /// What the waits of this call may add up to, and what they add up to so far.
    max_wait_ms: u64,
    waited_ms: u64,
    waits: usize,
    /// The call's total deadline (platform ms): no wait reaches it.
    deadline_ms: Option<u64>,
    /// A hedge was started: there is no other in this call.
    hedged: bool,
}

impl<E> Chain<E> {
    /// The chain over `targets` configured targets (the first [`MAX_TARGETS`] of them); `None` when
    /// there are none. It never waits unless told to ([`Chain::waiting_up_to`]).
    pub fn new(targets: usize) -> Option<Chain<E>> {
        (targets > 0).then(|| Chain {
            len: targets.min(MAX_TARGETS),
            failures: Vec::new(),
            outcomes: Vec::new(),
            back_at: Vec::new(),
            current: 0,
            max_wait_ms: 0,
            waited_ms: 0,
            waits: 0,
            deadline_ms: None,
            hedged: false,
        })
    }

    /// This chain, waiting out a full outage when the earliest target is back within `max_wait_ms`
    /// (all of this call's waits together) and before the call's `deadline_ms` (a wait that would
    /// reach it fails the call at once instead: an error now says more than a timeout later).
    pub fn waiting_up_to(mut self, max_wait_ms: u64, deadline_ms: Option<u64>) -> Chain<E> {
        self.max_wait_ms = max_wait_ms;
        self.deadline_ms = deadline_ms;
        self
    }

    /// The first step: try the first target.
    pub fn start(&self) -> Step<E> {
        Step::Try {
            index: 0,
            from: None,
        }
    }

    /// The target a hedge of the current attempt would ask ([`crate::core::hedge`]): the next one
    /// the chain would try, when the current target is tried for the first time and is not the
    /// last, and no hedge was started yet (at most one per call: a hedge at most doubles a call's
    /// load). A hedge's failure is reported after its primary's, as if it had been tried next.
    /// None either when `shut(next)` (its breaker is open): it would fail at once, and spend the
    /// call's one hedge on nothing.
    pub fn hedge_index(&self, shut: impl FnOnce(usize) -> bool) -> Option<usize> {
        let next = self.current + 1;
        let first_try = self.current == self.failures.len();
        (!self.hedged && first_try && next < self.len && !shut(next)).then_some(next)
    }

    /// A hedge of the current attempt was started: no later attempt of this call hedges.
    pub fn hedge_started(&mut self) {
        self.hedged = true;
    }

    /// The current target failed with `failure`, classified as `outcome`: the next step. The chain
    /// never waits after a failure reported this way (it does not say when the target is back).
    pub fn failed(&mut self, outcome: Outcome, failure: E) -> Step<E> {
        self.failed_at(outcome, failure, None, 0)
    }

    /// The current target failed at `now_ms` with `failure`, classified as `outcome`, and said it
    /// is back in `retry_after_ms` (an open breaker, a rate limit): the next step.
    pub fn failed_at(
        &mut self,
        outcome: Outcome,
        failure: E,
        retry_after_ms: Option<u64>,
        now_ms: u64,
    ) -> Step<E> {
        self.outcomes.push(outcome);
        if !outcome.falls_back() {
            return Step::Stop(failure);
        }
        let back_at = retry_after_ms.map(|ms| now_ms.saturating_add(ms.max(MIN_WAIT_MS)));
        match (
            self.failures.get_mut(self.current),
            self.back_at.get_mut(self.current),
        ) {
            (Some(slot), Some(back)) => {
                *slot = failure;
                *back = back_at;
            }
            _ => {
                self.failures.push(failure);
                self.back_at.push(back_at);
            }
        }
        let tried = self.failures.len();
        if tried < self.len {
            let from = std::mem::replace(&mut self.current, tried);
            return Step::Try {
                index: tried,
                from: Some(from),
            };
        }
        if let Some((index, ms)) = self.first_back(now_ms) {
            let allowed = self.max_wait_ms.saturating_sub(self.waited_ms);
            let before_deadline = self
                .deadline_ms
                .is_none_or(|deadline| now_ms.saturating_add(ms) < deadline);
            if ms <= allowed && self.waits < MAX_WAITS && before_deadline {
                self.waited_ms += ms;
                self.waits += 1;
                self.current = index;
                return Step::Wait { index, ms };
            }
        }
        let mut failures = std::mem::take(&mut self.failures);
        // A chain of one target ends with that target's own error, not a list of one.
        match failures.pop() {
            Some(only) if failures.is_empty() => Step::Stop(only),
            last => {
                failures.extend(last);
                Step::AllFailed(failures)
            }
        }
    }

    /// The target back first and how long until then, when every target said when it is back.
    fn first_back(&self, now_ms: u64) -> Option<(usize, u64)> {
        let mut first: Option<(usize, u64)> = None;
        for (index, back) in self.back_at.iter().enumerate() {
            let at = (*back)?;
            if first.is_none_or(|(_, earliest)| at < earliest) {
                first = Some((index, at));
            }
        }
        first.map(|(index, at)| (index, at.saturating_sub(now_ms)))
    }

    /// How long until the first target is back, when every target tried said so: the
    /// `retryAfterMs` of a call that failed at `now_ms` without waiting for it.
    pub fn back_in(&self, now_ms: u64) -> Option<u64> {
        self.first_back(now_ms).map(|(_, ms)| ms)
    }

    /// The failures so far, one per target tried, in order (the last one is the reason of a
    /// fallback).
    pub fn failures(&self) -> &[E] {
        &self.failures
    }

    /// How each target tried so far failed, in order, the stopping failure included (what the
    /// semantic cache decides on: [`crate::core::semantic::answers_failure`]).
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: Outcome = Outcome::Unavailable;

    #[test]
    fn a_hedge_asks_the_next_target_and_its_failure_follows_its_primarys() {
        let mut chain = Chain::new(3)
            .map(|c| c.waiting_up_to(5000, None))
            .expect("targets");
        assert_eq!(chain.hedge_index(|_| false), Some(1));
        // Both failed: the primary's failure first, then the hedge's, as if tried in turn.
        assert!(matches!(
            chain.failed_at(OUT, "a", None, 0),
            Step::Try { index: 1, .. }
        ));
        assert_eq!(chain.hedge_index(|_| false), Some(2));
        assert!(matches!(
            chain.failed_at(OUT, "b", None, 0),
            Step::Try { index: 2, .. }
        ));
        // Nor to a target that is shut (its breaker open).
        assert_eq!(chain.hedge_index(|next| next == 2), None);
        // The last target has nothing to hedge with, nor has a chain of one.
        assert_eq!(chain.hedge_index(|_| false), None);
        assert_eq!(
            Chain::<&str>::new(1).and_then(|c| c.hedge_index(|_| false)),
            None
        );
        // At most one hedge per call: once one was started, the next attempts are not hedged.
        let mut chain = Chain::new(4).expect("targets");
        chain.hedge_started();
        chain.failed(OUT, "a");
        chain.failed(OUT, "b");
        assert_eq!(chain.hedge_index(|_| false), None);
        // Nor a target tried again after a wait.
        let mut chain = Chain::new(2)
            .map(|c| c.waiting_up_to(5000, None))
            .expect("targets");
        chain.failed_at(OUT, "a", Some(100), 0);
        assert!(matches!(
            chain.failed_at(OUT, "b", Some(500), 0),
            Step::Wait { index: 0, .. }
        ));
        assert_eq!(chain.hedge_index(|_| false), None);
    }

    #[test]
    fn a_full_outage_is_waited_out_on_the_target_back_first() {
        let mut chain = Chain::new(3)
            .map(|c| c.waiting_up_to(5000, None))
            .expect("targets");
        assert!(matches!(
            chain.failed_at(OUT, "a", Some(4000), 0),
            Step::Try { index: 1, .. }
        ));
        assert!(matches!(
            chain.failed_at(OUT, "b", Some(1000), 10),
            Step::Try { index: 2, .. }
        ));
        // Back at 4000, 1010 and 2020: b first, 990 ms from now.
        assert_eq!(
            chain.failed_at(OUT, "c", Some(2000), 20),
            Step::Wait { index: 1, ms: 990 }
        );
        // b fails again (its probe failed): its new return counts; c is next, 1010 ms later,
        // within what is left of the 5 s.
        assert_eq!(
            chain.failed_at(OUT, "b2", Some(3000), 1010),
            Step::Wait { index: 2, ms: 1010 }
        );
        // c again: a is back at 4000, 1980 ms away, within the 3000 ms left.
        assert_eq!(
            chain.failed_at(OUT, "c2", Some(9000), 2020),
            Step::Wait { index: 0, ms: 1980 }
        );
        // a fails too, back in 2 s; b is back first (4010).
        assert_eq!(
            chain.failed_at(OUT, "a2", Some(2000), 4000),
            Step::Wait { index: 1, ms: 10 }
        );
        // b's probe fails without saying when it is back: no more waiting.
        assert_eq!(
            chain.failed_at(OUT, "b3", None, 4020),
            Step::AllFailed(vec!["a2", "b3", "c2"])
        );
    }

    #[test]
    fn no_wait_when_a_target_does_not_say_when_or_is_back_too_late() {
        let mut chain = Chain::new(2)
            .map(|c| c.waiting_up_to(5000, None))
            .expect("targets");
        chain.failed_at(OUT, "a", Some(1000), 0);
        // A 5xx says nothing of when: no wait.
        assert_eq!(
            chain.failed_at(OUT, "b", None, 0),
            Step::AllFailed(vec!["a", "b"])
        );
        assert_eq!(chain.back_in(0), None);
        let mut chain = Chain::new(2)
            .map(|c| c.waiting_up_to(5000, None))
            .expect("targets");
        chain.failed_at(OUT, "a", Some(7000), 0);
        assert_eq!(
            chain.failed_at(OUT, "b", Some(6000), 500),
            Step::AllFailed(vec!["a", "b"])
        );
        // The earliest return, for the error.
        assert_eq!(chain.back_in(500), Some(6000));
        // Nor when the wait would reach the call's deadline.
        let mut chain = Chain::new(1)
            .map(|c| c.waiting_up_to(5000, Some(1000)))
            .expect("targets");
        assert_eq!(chain.failed_at(OUT, "a", Some(600), 400), Step::Stop("a"));
        let mut chain = Chain::new(1)
            .map(|c| c.waiting_up_to(5000, Some(1000)))
            .expect("targets");
        assert_eq!(
            chain.failed_at(OUT, "a", Some(599), 400),
            Step::Wait { index: 0, ms: 599 }
        );
        // A chain told nothing about waiting never waits.
        let mut chain = Chain::new(1).expect("targets");
        assert_eq!(chain.failed_at(OUT, "a", Some(10), 0), Step::Stop("a"));
    }

    #[test]
    fn a_single_target_is_waited_for_and_a_stop_is_never_waited_out() {
        let mut chain = Chain::new(1)
            .map(|c| c.waiting_up_to(1000, None))
            .expect("targets");
        assert_eq!(
            chain.failed_at(OUT, "a", Some(800), 0),
            Step::Wait { index: 0, ms: 800 }
        );
        assert_eq!(chain.failed_at(OUT, "a2", Some(800), 800), Step::Stop("a2"));
        // "Back now" (a probe in flight for another call) is waited for briefly, within the
        // allowance, and at most MAX_WAITS times.
        let mut chain = Chain::new(1)
            .map(|c| c.waiting_up_to(1000, None))
            .expect("targets");
        for i in 0..20 {
            let step = chain.failed_at(OUT, "a", Some(0), i * MIN_WAIT_MS);
            assert_eq!(
                step,
                Step::Wait {
                    index: 0,
                    ms: MIN_WAIT_MS
                }
            );
        }
        assert_eq!(chain.failed_at(OUT, "a", Some(0), 1000), Step::Stop("a"));
        let mut chain = Chain::new(1)
            .map(|c| c.waiting_up_to(u64::MAX, None))
            .expect("targets");
        for _ in 0..MAX_WAITS {
            assert!(matches!(
                chain.failed_at(OUT, "a", Some(0), 0),
                Step::Wait { .. }
            ));
        }
        assert_eq!(chain.failed_at(OUT, "a", Some(0), 0), Step::Stop("a"));
        let mut chain = Chain::new(2)
            .map(|c| c.waiting_up_to(1000, None))
            .expect("targets");
        chain.failed_at(OUT, "a", Some(10), 0);
        assert_eq!(
            chain.failed_at(Outcome::Aborted, "b", Some(10), 0),
            Step::Stop("b")
        );
    }
}
