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
//! At most [`MAX_TARGETS`] are tried, so a long list cannot turn one call into dozens.

use crate::core::llm::ErrorClass;

/// Most targets tried for one call.
pub const MAX_TARGETS: usize = 5;

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
    failures: Vec<E>,
    outcomes: Vec<Outcome>,
}

impl<E> Chain<E> {
    /// The chain over `targets` configured targets (the first [`MAX_TARGETS`] of them); `None` when
    /// there are none.
    pub fn new(targets: usize) -> Option<Chain<E>> {
        (targets > 0).then(|| Chain {
            len: targets.min(MAX_TARGETS),
            failures: Vec::new(),
            outcomes: Vec::new(),
        })
    }

    /// The first step: try the first target.
    pub fn start(&self) -> Step<E> {
        Step::Try {
            index: 0,
            from: None,
        }
    }

    /// The current target failed with `failure`, classified as `outcome`: the next step.
    pub fn failed(&mut self, outcome: Outcome, failure: E) -> Step<E> {
        self.outcomes.push(outcome);
        if !outcome.falls_back() {
            return Step::Stop(failure);
        }
        self.failures.push(failure);
        let tried = self.failures.len();
        if tried == self.len {
            let mut failures = std::mem::take(&mut self.failures);
            // A chain of one target ends with that target's own error, not a list of one.
            return match failures.pop() {
                Some(only) if failures.is_empty() => Step::Stop(only),
                last => {
                    failures.extend(last);
                    Step::AllFailed(failures)
                }
            };
        }
        Step::Try {
            index: tried,
            from: Some(tried - 1),
        }
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
