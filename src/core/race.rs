//! Racing two futures: the one combinator the pipeline needs for timeouts.
//!
//! Cancellation in this crate is `Drop`: the loser of a race is dropped, and dropping a platform future
//! (a timer, a fetch) cancels it. So a timeout is just `race(work, sleep(ms))`, and an abort is
//! `race(call, aborted)` one layer up — no cancellation tokens threaded through the core.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Poll, Waker};

/// Which side of a [`race`] finished first.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future won.
    Left(A),
    /// The second future won.
    Right(B),
}

/// A caller's cancel that comes with no signal (a stream's `cancel()`): once set it stays set, and
/// [`Cancel::cancelled`] resolves, so that work raced against it is dropped (cancelled) at once.
#[derive(Debug, Default)]
pub struct Cancel {
    set: Cell<bool>,
    /// Who waits in [`Cancel::cancelled`] (one waiter: the work it cuts).
    waker: RefCell<Option<Waker>>,
}

impl Cancel {
    /// Sets it, waking the waiter.
    pub fn cancel(&self) {
        self.set.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Whether it was set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once it is set.
    pub async fn cancelled(&self) {
        poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// `work`, unless `cancel` is set first (`None`): then `work` is dropped with `cancelling` set, so
/// that what it held is released as cancelled, neither failed nor succeeded (the pipeline reads
/// [`crate::core::pipeline::Engine::superseding`] so).
pub async fn unless_cancelled<T>(
    work: impl Future<Output = T>,
    cancel: &Cancel,
    cancelling: &Cell<bool>,
) -> Option<T> {
    let mut work = pin!(Some(work));
    let running = poll_fn(|cx| match work.as_mut().as_pin_mut() {
        Some(f) => f.poll(cx),
        None => Poll::Pending,
    });
    if let Either::Left(done) = race(running, cancel.cancelled()).await {
        return Some(done);
    }
    cancelling.set(true);
    work.set(None);
    cancelling.set(false);
    None
}

/// Polls both futures until one completes; the other is dropped. `a` is polled first, so it wins ties.
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}
