//! Single flight: identical calls in flight at the same time share one upstream call.
//!
//! A chat UI that re-renders, or a Worker that fans the same prompt out, easily sends the same
//! deterministic request twice within milliseconds. The first caller (the leader) makes the call; the
//! others (followers) wait for it and each receive their own copy of the outcome, so every caller can
//! read its response body independently.
//!
//! Aborts stay private. If the leader is dropped (its caller aborted) before the call completes, the
//! followers are released with "no result" and the first of them to run again becomes the new leader
//! and makes its own call: one caller's abort never fails another caller. There is no background
//! task, so nothing here needs a spawner, and nothing outlives the callers who wait for it.

use crate::core::string_map::StringMap;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

/// What a follower finds in its slot: `None` until the leader finishes; then `Some(None)` when the
/// leader was dropped without an outcome, or `Some(Some(outcome))`.
struct Slot<T> {
    outcome: Option<Option<T>>,
    waker: Option<Waker>,
}

type SharedSlot<T> = Rc<RefCell<Slot<T>>>;

/// The calls in flight, by key.
pub struct Flights<T> {
    waiting: RefCell<StringMap<Vec<SharedSlot<T>>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            waiting: RefCell::new(StringMap::new()),
        }
    }
}

/// A caller's part in a flight.
pub enum Role<'a, T> {
    /// Make the call, then [`Leader::complete`] it.
    Leader(Leader<'a, T>),
    /// Wait: resolves to the leader's outcome, or `None` if the leader gave up (then try again).
    Follower(Follower<T>),
}

impl<T> Flights<T> {
    /// Joins the flight for `key`, or starts one.
    pub fn join(&self, key: &str) -> Role<'_, T> {
        let mut waiting = self.waiting.borrow_mut();
        match waiting.get_mut(key) {
            Some(followers) => {
                let slot = Rc::new(RefCell::new(Slot {
                    outcome: None,
                    waker: None,
                }));
                followers.push(slot.clone());
                Role::Follower(Follower { slot })
            }
            None => {
                waiting.insert(key.to_string(), Vec::new());
                Role::Leader(Leader {
                    flights: self,
                    key: Some(key.to_string()),
                })
            }
        }
    }

    /// How many keys have a call in flight.
    pub fn len(&self) -> usize {
        self.waiting.borrow().len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(&self, key: &str, mut copy: impl FnMut() -> Option<T>) {
        let followers = self.waiting.borrow_mut().remove(key).unwrap_or_default();
        for slot in followers {
            // A follower that went away holds no reference: do not make it a copy.
            let gone = Rc::strong_count(&slot) == 1;
            let mut slot = slot.borrow_mut();
            slot.outcome = Some(if gone { None } else { copy() });
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }
}

/// The caller making the call for everybody.
pub struct Leader<'a, T> {
    flights: &'a Flights<T>,
    key: Option<String>,
}

impl<T> Leader<'_, T> {
    /// Hands every follower its copy of the outcome. `copy` returns `None` when no copy can be made
    /// (that follower then makes its own call).
    pub fn complete(mut self, copy: impl FnMut() -> Option<T>) {
        if let Some(key) = self.key.take() {
            self.flights.finish(&key, copy);
        }
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.flights.finish(&key, || None);
        }
    }
}

/// A caller waiting for the leader.
pub struct Follower<T> {
    slot: SharedSlot<T>,
}

impl<T> Follower<T> {
    /// The leader's outcome, or `None` when the leader gave up without one.
    pub fn outcome(self) -> impl Future<Output = Option<T>> {
        poll_fn(move |cx| {
            let mut slot = self.slot.borrow_mut();
            match slot.outcome.take() {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Context;

    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn followers_get_their_own_copy_of_the_leaders_outcome() {
        let flights = Flights::<u32>::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first caller leads")
        };
        let Role::Follower(a) = flights.join("k") else {
            panic!("second caller follows")
        };
        let Role::Follower(b) = flights.join("k") else {
            panic!("third caller follows")
        };
        let mut a = pin!(a.outcome());
        assert!(poll_once(a.as_mut()).is_pending());
        let mut copies = 0;
        leader.complete(|| {
            copies += 1;
            Some(7)
        });
        assert_eq!(copies, 2);
        assert_eq!(poll_once(a.as_mut()), Poll::Ready(Some(7)));
        assert_eq!(poll_once(pin!(b.outcome())), Poll::Ready(Some(7)));
        assert!(flights.is_empty());
    }

    #[test]
    fn a_dropped_leader_releases_followers_without_an_outcome() {
        let flights = Flights::<u32>::default();
        let leader = flights.join("k");
        let Role::Follower(follower) = flights.join("k") else {
            panic!("second caller follows")
        };
        drop(leader);
        assert_eq!(poll_once(pin!(follower.outcome())), Poll::Ready(None));
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "the next caller leads anew"
        );
    }

    #[test]
    fn no_copy_is_made_for_a_follower_that_left() {
        let flights = Flights::<u32>::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first caller leads")
        };
        drop(flights.join("k"));
        let mut copies = 0;
        leader.complete(|| {
            copies += 1;
            Some(1)
        });
        assert_eq!(copies, 0);
    }

    #[test]
    fn different_keys_fly_separately() {
        let flights = Flights::<u32>::default();
        let _a = flights.join("a");
        assert!(matches!(flights.join("b"), Role::Leader(_)));
    }
}
