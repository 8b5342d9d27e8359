//! Single flight: identical calls in flight at the same time share one upstream call.
//!
//! A chat UI that re-renders, or a Worker that fans the same prompt out, easily sends the same
//! deterministic request twice within milliseconds. The first caller (the leader) makes the call; the
//! others (followers) wait for it and each receive their own copy of the outcome, so every caller can
//! read its response body independently.
//!
//! Copies are made all at once, when the leader completes ([`Leader::complete`] is told how many),
//! so that the platform can arrange them: a JS `Response` tees its body on every clone, and clones
//! made one after another read through a chain as long as their number (see
//! `crate::wasm::fan_out`). A flight serves at most [`MAX_CALLERS`]: the next identical caller
//! leads a new flight under the same key, which later callers join. So one upstream failure reaches
//! a bounded number of callers, and one answer is copied a bounded number of times.
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

/// Most callers one flight serves, its leader included; the next identical caller leads a new one.
pub const MAX_CALLERS: usize = 1_000;

/// What a follower finds in its slot: `None` until the leader finishes; then `Some(None)` when the
/// leader was dropped without an outcome, or `Some(Some(outcome))`.
struct Slot<T> {
    outcome: Option<Option<T>>,
    waker: Option<Waker>,
}

/// A slot, held by its follower and by the flight that fills it.
type SlotRef<T> = Rc<RefCell<Slot<T>>>;

/// One flight's followers.
type Flight<T> = Rc<RefCell<Vec<SlotRef<T>>>>;

/// The calls in flight, by key: the flight that the next identical caller joins.
pub struct Flights<T> {
    open: RefCell<StringMap<Flight<T>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            open: RefCell::new(StringMap::new()),
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
    /// Joins the flight for `key`, or starts one (also when the flight for `key` is full).
    pub fn join(&self, key: &str) -> Role<'_, T> {
        let mut open = self.open.borrow_mut();
        if let Some(flight) = open.get(key) {
            let mut followers = flight.borrow_mut();
            if followers.len() + 1 < MAX_CALLERS {
                let slot = Rc::new(RefCell::new(Slot {
                    outcome: None,
                    waker: None,
                }));
                followers.push(slot.clone());
                return Role::Follower(Follower { slot });
            }
        }
        let flight = Flight::default();
        open.insert(key.to_string(), flight.clone());
        Role::Leader(Leader {
            flights: self,
            key: key.to_string(),
            flight: Some(flight),
        })
    }

    /// How many keys have a call in flight that a caller can join.
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes `flight` (no one joins it any more) and hands its followers their outcomes: the
    /// copies that `copies(n)` makes for the `n` followers still waiting, in order; a follower
    /// left without one gets `None`.
    fn finish(&self, key: &str, flight: &Flight<T>, copies: &mut dyn FnMut(usize) -> Vec<T>) {
        {
            let mut open = self.open.borrow_mut();
            if open
                .get(key)
                .is_some_and(|current| Rc::ptr_eq(current, flight))
            {
                open.remove(key);
            }
        }
        let followers = std::mem::take(&mut *flight.borrow_mut());
        // A follower that went away holds no reference: do not make it a copy.
        let waiting = |slot: &SlotRef<T>| Rc::strong_count(slot) > 1;
        let mut outcomes = copies(followers.iter().filter(|s| waiting(s)).count()).into_iter();
        for slot in followers.iter().filter(|s| waiting(s)) {
            let mut slot = slot.borrow_mut();
            slot.outcome = Some(outcomes.next());
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }
}

/// The caller making the call for everybody.
pub struct Leader<'a, T> {
    flights: &'a Flights<T>,
    key: String,
    flight: Option<Flight<T>>,
}

impl<T> Leader<'_, T> {
    /// Hands every follower its copy of the outcome: `copies(n)` makes all `n` at once; a follower
    /// it makes none for (it returns fewer) makes its own call.
    pub fn complete(mut self, mut copies: impl FnMut(usize) -> Vec<T>) {
        if let Some(flight) = self.flight.take() {
            self.flights.finish(&self.key, &flight, &mut copies);
        }
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            self.flights.finish(&self.key, &flight, &mut |_| Vec::new());
        }
    }
}

/// A caller waiting for the leader.
pub struct Follower<T> {
    slot: SlotRef<T>,
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
        let mut asked = Vec::new();
        leader.complete(|n| {
            asked.push(n);
            vec![7; n]
        });
        assert_eq!(asked, [2], "all copies are asked for at once");
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
        let mut asked = Vec::new();
        leader.complete(|n| {
            asked.push(n);
            vec![1; n]
        });
        assert_eq!(asked, [0]);
    }

    #[test]
    fn a_follower_left_without_a_copy_makes_its_own_call() {
        let flights = Flights::<u32>::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first caller leads")
        };
        let (Role::Follower(a), Role::Follower(b)) = (flights.join("k"), flights.join("k")) else {
            panic!("later callers follow")
        };
        leader.complete(|_| vec![5]);
        assert_eq!(poll_once(pin!(a.outcome())), Poll::Ready(Some(5)));
        assert_eq!(poll_once(pin!(b.outcome())), Poll::Ready(None));
    }

    #[test]
    fn a_full_flight_makes_the_next_caller_lead_a_new_one() {
        let flights = Flights::<usize>::default();
        let Role::Leader(first) = flights.join("k") else {
            panic!("first caller leads")
        };
        let followers: Vec<_> = (1..MAX_CALLERS).map(|_| flights.join("k")).collect();
        assert!(followers.iter().all(|r| matches!(r, Role::Follower(_))));
        let Role::Leader(second) = flights.join("k") else {
            panic!("the caller past the bound leads a new flight")
        };
        let Role::Follower(late) = flights.join("k") else {
            panic!("later callers join the new flight")
        };
        // The first flight ending leaves the second one open to identical callers.
        first.complete(|n| {
            assert_eq!(n, MAX_CALLERS - 1);
            vec![1; n]
        });
        let Role::Follower(later) = flights.join("k") else {
            panic!("the second flight is still open to identical callers")
        };
        second.complete(|n| {
            assert_eq!(n, 2);
            vec![2; n]
        });
        assert_eq!(poll_once(pin!(later.outcome())), Poll::Ready(Some(2)));
        assert_eq!(poll_once(pin!(late.outcome())), Poll::Ready(Some(2)));
        assert!(flights.is_empty());
        drop(followers);
    }

    #[test]
    fn different_keys_fly_separately() {
        let flights = Flights::<u32>::default();
        let _a = flights.join("a");
        assert!(matches!(flights.join("b"), Role::Leader(_)));
    }
}
