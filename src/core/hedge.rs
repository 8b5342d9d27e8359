//! Hedged first tokens: when a target is late with its first token, ask the next one too.
//!
//! Why hedge? An LLM provider's time to first token has a long tail: most answers start in a few
//! hundred milliseconds, a few wait seconds in a queue. Falling back only after a failure does
//! nothing for those; a hedge does. Once the first token of the target being tried is `afterMs`
//! late, the target the chain would try next is started too, and the first of the two to produce
//! a first token wins. The other is dropped, and dropping a platform future cancels it on the
//! wire ([`crate::core::race`]), unless identical calls joined it ([`crate::core::dedupe`]): then
//! only the loser's seat is given up, and the call goes on for them. At most one hedge runs per
//! call, so a hedge at most doubles the load, and only for the late calls.
//!
//! When is late? Either a fixed delay, or `"p95"`: the target's own observed time to first token,
//! from a bounded window of its most recent first tokens ([`FirstTokens`]). Until
//! [`MIN_SAMPLES`] are known there is no p95 worth the name, so there is no hedge.
//!
//! What a loser costs. A failure of one side is not the call's failure while the other still
//! runs: [`hedged`] waits for it and reports both. A side dropped because the other won is not a
//! failure at all: it is dropped with `superseding` set, which the pipeline reads as "cancelled,
//! neither success nor failure" (its breaker permit is given back unjudged either way).

use crate::core::llm::MAX_TARGETS;
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

/// First tokens kept per target for its p95.
pub const WINDOW: usize = 100;

/// First tokens a target must have produced before a `"p95"` hedge uses its percentile.
pub const MIN_SAMPLES: usize = 20;

/// The longest fixed hedge delay accepted (one day): past it a hedge could never start.
pub const MAX_AFTER_MS: u64 = 86_400_000;

/// When a late first token starts a hedge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// A fixed delay, in milliseconds.
    Ms(u64),
    /// The target's observed 95th percentile time to first token.
    P95,
}

/// One target's most recent times to first token: a ring.
#[derive(Debug, Clone, Copy)]
struct Window {
    times: [u32; WINDOW],
    len: usize,
    next: usize,
}

impl Window {
    const EMPTY: Window = Window {
        times: [0; WINDOW],
        len: 0,
        next: 0,
    };
}

/// Recent times to first token, per target (by index, the first [`MAX_TARGETS`]), and the hedges
/// started and won. Fixed-size: nothing grows however many calls there are.
#[derive(Debug, Clone)]
pub struct FirstTokens {
    windows: [Window; MAX_TARGETS],
    /// Hedges started.
    pub started: u64,
    /// Hedges that produced their first token first.
    pub won: u64,
}

impl Default for FirstTokens {
    fn default() -> Self {
        FirstTokens {
            windows: [Window::EMPTY; MAX_TARGETS],
            started: 0,
            won: 0,
        }
    }
}

impl FirstTokens {
    /// Records that `target` produced its first token `ms` after it was asked.
    pub fn record(&mut self, target: usize, ms: u64) {
        let Some(window) = self.windows.get_mut(target) else {
            return;
        };
        if let Some(slot) = window.times.get_mut(window.next) {
            *slot = u32::try_from(ms).unwrap_or(u32::MAX);
        }
        window.next = (window.next + 1) % WINDOW;
        window.len = (window.len + 1).min(WINDOW);
    }

    /// The 95th percentile (nearest rank) of `target`'s recent times to first token, once
    /// [`MIN_SAMPLES`] are known.
    pub fn p95(&self, target: usize) -> Option<u64> {
        let window = self.windows.get(target)?;
        let times = window.times.get(..window.len)?;
        if times.len() < MIN_SAMPLES {
            return None;
        }
        // The value whose rank range holds the 95th percentile's rank (no sort: at most 100 values,
        // and a sort would cost more code than it saves time).
        let rank = (times.len() * 95).div_ceil(100);
        let count = |keep: &dyn Fn(u32) -> bool| times.iter().filter(|&&t| keep(t)).count();
        let p95 = times
            .iter()
            .copied()
            .find(|&x| count(&|t| t < x) < rank && rank <= count(&|t| t <= x));
        p95.map(u64::from)
    }

    /// How long to wait for `target`'s first token before hedging; `None`: no hedge.
    pub fn delay(&self, after: HedgeAfter, target: usize) -> Option<u64> {
        match after {
            HedgeAfter::Ms(ms) => Some(ms),
            HedgeAfter::P95 => self.p95(target),
        }
    }
}

/// Which side of a hedged race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The target asked first.
    Primary,
    /// The next target, asked once the primary was late.
    Hedge,
}

/// How a hedged race ended.
#[derive(Debug)]
pub struct Raced<T, E> {
    /// The first side to succeed, with its output (`None`: every side started failed).
    pub won: Option<(Side, T)>,
    /// The primary's failure, if it failed.
    pub primary: Option<E>,
    /// The hedge's failure, if it was started and failed.
    pub hedge: Option<E>,
    /// Whether the hedge was started.
    pub hedged: bool,
}

impl<T, E> Raced<T, E> {
    /// The primary ended before a hedge was started.
    fn alone(done: Result<T, E>) -> Raced<T, E> {
        let (won, primary) = match done {
            Ok(value) => (Some((Side::Primary, value)), None),
            Err(error) => (None, Some(error)),
        };
        Raced {
            won,
            primary,
            hedge: None,
            hedged: false,
        }
    }
}

/// Runs `primary`; if it has not finished `after_ms` later (never, when `None`), asks `hedge` for
/// a second attempt (it may decline: `None`, e.g. no next target or no budget for it) and runs
/// both. The first to succeed wins and the other is dropped with `superseding` set (see the module
/// docs); a failure waits for the other side. A primary that ends before the delay ends the race.
pub async fn hedged<P, T, E, A, B>(
    platform: &P,
    primary: A,
    after_ms: Option<u64>,
    hedge: impl FnOnce() -> Option<B>,
    superseding: &Cell<bool>,
) -> Raced<T, E>
where
    P: Platform,
    A: Future<Output = Result<T, E>>,
    B: Future<Output = Result<T, E>>,
{
    let Some(ms) = after_ms else {
        return Raced::alone(primary.await);
    };
    let mut primary = pin!(Some(primary));
    let first = poll_fn(|cx| match primary.as_mut().as_pin_mut() {
        Some(f) => f.poll(cx),
        None => Poll::Pending,
    });
    if let Either::Left(done) = race(first, platform.sleep(ms)).await {
        return Raced::alone(done);
    }
    let mut raced = Raced {
        won: None,
        primary: None,
        hedge: None,
        hedged: false,
    };
    let mut second = pin!(hedge());
    raced.hedged = second.is_some();
    let winner = poll_fn(|cx| {
        if let Some(f) = primary.as_mut().as_pin_mut() {
            if let Poll::Ready(done) = f.poll(cx) {
                primary.set(None);
                match done {
                    Ok(value) => return Poll::Ready(Some((Side::Primary, value))),
                    Err(error) => raced.primary = Some(error),
                }
            }
        }
        if let Some(f) = second.as_mut().as_pin_mut() {
            if let Poll::Ready(done) = f.poll(cx) {
                second.set(None);
                match done {
                    Ok(value) => return Poll::Ready(Some((Side::Hedge, value))),
                    Err(error) => raced.hedge = Some(error),
                }
            }
        }
        if primary.is_none() && second.is_none() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    // The loser (if still running) is cancelled, not failed.
    superseding.set(true);
    primary.set(None);
    second.set(None);
    superseding.set(false);
    raced.won = winner;
    raced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_needs_enough_samples_and_forgets_old_ones() {
        let mut times = FirstTokens::default();
        for ms in 1..MIN_SAMPLES as u64 {
            times.record(2, ms * 10);
        }
        assert_eq!(times.p95(2), None);
        assert_eq!(times.delay(HedgeAfter::P95, 2), None);
        assert_eq!(times.delay(HedgeAfter::Ms(7), 2), Some(7));
        times.record(2, 200);
        // 20 samples 10..=200: the 19th is 190.
        assert_eq!(times.p95(2), Some(190));
        assert_eq!(times.p95(0), None);
        // A full window of fast answers pushes the slow ones out.
        for _ in 0..WINDOW {
            times.record(2, 5);
        }
        assert_eq!(times.p95(2), Some(5));
        times.record(2, u64::MAX);
        assert_eq!(times.p95(2), Some(5));
        // Past the targets tried, nothing is kept.
        times.record(MAX_TARGETS, 1);
        assert_eq!(times.p95(MAX_TARGETS), None);
    }

    #[test]
    fn p95_is_the_nearest_rank_with_ties() {
        let mut times = FirstTokens::default();
        for ms in [7, 7, 7, 1, 1, 9, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3] {
            times.record(0, ms);
        }
        // Sorted: 1 1 3x15 7 7 7 9 -> rank 19 is a 7.
        assert_eq!(times.p95(0), Some(7));
        times.record(0, 100);
        // 21 values: rank 20 is the 9.
        assert_eq!(times.p95(0), Some(9));
    }
}
