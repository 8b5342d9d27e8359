//! Racing two futures: the one combinator the pipeline needs for timeouts.
//!
//! Cancellation in this crate is `Drop`: the loser of a race is dropped, and dropping a platform future
//! (a timer, a fetch) cancels it. So a timeout is just `race(work, sleep(ms))`, and an abort is
//! `race(call, aborted)` one layer up — no cancellation tokens threaded through the core.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

/// Which side of a [`race`] finished first.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future won.
    Left(A),
    /// The second future won.
    Right(B),
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
