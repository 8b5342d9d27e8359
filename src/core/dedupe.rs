//! Single flight: identical calls in flight at the same time share one upstream call.
//!
//! A chat UI that re-renders, or a Worker that fans the same prompt out, easily sends the same
//! deterministic request twice within milliseconds. The first caller starts the call; the others
//! join it, and each receives its own copy of the outcome, so every caller can read its response
//! body independently.
//!
//! The call belongs to the flight, not to the caller who started it: it is polled by whichever of
//! its callers is waiting, and it goes on while any of them still wants it. So the caller who
//! started it may leave (its own abort, or a hedge that answered it first,
//! [`crate::core::hedge`]) without cutting the others' answer, and without making them ask again.
//! Only when its last caller leaves is the call dropped, which cancels it on the wire. There is no
//! background task, so nothing here needs a spawner, and nothing outlives the callers who wait
//! for it.
//!
//! Copies are made all at once, when the call completes (the flight's `share` is told how many),
//! so that the platform can arrange them: a JS `Response` tees its body on every clone, and clones
//! made one after another read through a chain as long as their number (see
//! `crate::wasm::fan_out`). The call's own outcome goes to the caller who started it, or, when
//! that one left, to the caller who saw it complete: that caller owns the call (it pays for it). A
//! flight serves at most [`MAX_CALLERS`]: the next identical caller starts a new flight under the
//! same key, which later callers join. So one upstream failure reaches a bounded number of
//! callers, and one answer is copied a bounded number of times. A caller left without a copy (the
//! body could not be copied) gets `None`, and makes its own call.

use crate::core::string_map::StringMap;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

/// Most callers one flight serves, the one who started it included; the next identical caller
/// starts a new one.
pub const MAX_CALLERS: usize = 1_000;

/// A flight's call: owns what it needs, so that it outlives the caller who started it.
pub type Work<T> = Pin<Box<dyn Future<Output = T>>>;

/// Makes `n` copies of an outcome (fewer, none, when it cannot be copied).
pub type Share<T> = Box<dyn Fn(&T, usize) -> Vec<T>>;

/// What a caller finds in its slot: `None` until the call completes; then `Some(None)` when no
/// copy could be made for it, or `Some(Some(outcome))`.
struct Slot<T> {
    outcome: Option<Option<T>>,
    waker: Option<Waker>,
    /// The outcome is the call's own, not a copy.
    own: bool,
}

/// A slot, held by its caller and by the flight that fills it.
type SlotRef<T> = Rc<RefCell<Slot<T>>>;

/// One call in flight and the callers waiting for it.
struct Flight<T> {
    /// The call; `None` while a caller polls it, and once it completed or was dropped.
    work: RefCell<Option<Work<T>>>,
    share: Share<T>,
    waiting: RefCell<Vec<SlotRef<T>>>,
    /// The caller who started it.
    starter: Weak<RefCell<Slot<T>>>,
}

/// The calls in flight, by key: the flight that the next identical caller joins.
pub struct Flights<T> {
    open: RefCell<StringMap<Rc<Flight<T>>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            open: RefCell::new(StringMap::new()),
        }
    }
}

impl<T> Flights<T> {
    /// Joins the flight for `key`, or starts one (also when the flight for `key` is full) on the
    /// call `start` makes, whose outcome `share` copies for the others.
    pub fn join(&self, key: &str, start: impl FnOnce() -> (Work<T>, Share<T>)) -> Seat<'_, T> {
        let slot = Rc::new(RefCell::new(Slot {
            outcome: None,
            waker: None,
            own: false,
        }));
        let open = self.open.borrow().get(key).cloned();
        if let Some(flight) = open {
            let mut waiting = flight.waiting.borrow_mut();
            if waiting.len() < MAX_CALLERS {
                waiting.push(slot.clone());
                drop(waiting);
                return Seat {
                    flights: self,
                    key: key.to_string(),
                    flight,
                    slot,
                    joined: true,
                };
            }
        }
        // Made with no borrow held: making the call may run the caller's code.
        let (work, share) = start();
        let flight = Rc::new(Flight {
            work: RefCell::new(Some(work)),
            share,
            waiting: RefCell::new(vec![slot.clone()]),
            starter: Rc::downgrade(&slot),
        });
        self.open
            .borrow_mut()
            .insert(key.to_string(), flight.clone());
        Seat {
            flights: self,
            key: key.to_string(),
            flight,
            slot,
            joined: false,
        }
    }

    /// How many keys have a call in flight that a caller can join.
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No one joins `flight` any more.
    fn close(&self, key: &str, flight: &Rc<Flight<T>>) {
        let mut open = self.open.borrow_mut();
        if open
            .get(key)
            .is_some_and(|current| Rc::ptr_eq(current, flight))
        {
            open.remove(key);
        }
    }
}

/// A caller's place in a flight: [`Seat::outcome`] waits for the call; dropped, the caller
/// leaves (the call is dropped with its last caller).
pub struct Seat<'a, T> {
    flights: &'a Flights<T>,
    key: String,
    flight: Rc<Flight<T>>,
    slot: SlotRef<T>,
    joined: bool,
}

impl<'a, T> Seat<'a, T> {
    /// Whether this caller joined a call another one started.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Whether the outcome this caller received is the call's own rather than a copy: it started
    /// the call, or it saw the call complete after its starter left. Either way it owns the call.
    pub fn owns(&self) -> bool {
        self.slot.borrow().own
    }

    /// The call's outcome (this caller's copy of it), or `None` when no copy could be made for
    /// it: then it makes its own call.
    pub fn outcome(&mut self) -> impl Future<Output = Option<T>> + use<'_, 'a, T> {
        poll_fn(move |cx| {
            if let Some(outcome) = self.slot.borrow_mut().outcome.take() {
                return Poll::Ready(outcome);
            }
            self.slot.borrow_mut().waker = Some(cx.waker().clone());
            // Taken out while polled: a poll that re-enters (a listener) finds it busy.
            let Some(mut work) = self.flight.work.borrow_mut().take() else {
                return Poll::Pending;
            };
            let Poll::Ready(outcome) = work.as_mut().poll(cx) else {
                *self.flight.work.borrow_mut() = Some(work);
                return Poll::Pending;
            };
            drop(work);
            self.finish(outcome);
            Poll::Ready(self.slot.borrow_mut().outcome.take().flatten())
        })
    }

    /// The call completed with `outcome`: its owner keeps it (its starter while it waits, else
    /// this caller), the others get their copies.
    fn finish(&self, outcome: T) {
        self.flights.close(&self.key, &self.flight);
        let mut others = std::mem::take(&mut *self.flight.waiting.borrow_mut());
        let starter = self.flight.starter.as_ptr();
        let owner = others
            .iter()
            .position(|slot| Rc::as_ptr(slot) == starter)
            .or_else(|| others.iter().position(|slot| Rc::ptr_eq(slot, &self.slot)))
            .map(|at| others.remove(at));
        let mut copies = (self.flight.share)(&outcome, others.len()).into_iter();
        if let Some(owner) = owner {
            let mut owner = owner.borrow_mut();
            owner.outcome = Some(Some(outcome));
            owner.own = true;
            if let Some(waker) = owner.waker.take() {
                waker.wake();
            }
        }
        for slot in others {
            let mut slot = slot.borrow_mut();
            slot.outcome = Some(copies.next());
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }
}

impl<T> Drop for Seat<'_, T> {
    fn drop(&mut self) {
        let (last, next) = {
            let mut waiting = self.flight.waiting.borrow_mut();
            waiting.retain(|slot| !Rc::ptr_eq(slot, &self.slot));
            // One waiting caller is enough to poll the call on (it registers its own waker with
            // it: this caller's may have been the one): waking them all, on every leave, made a
            // thousand callers aborting one by one a million wake-ups.
            let next = waiting
                .iter()
                .find_map(|slot| slot.borrow_mut().waker.take());
            (waiting.is_empty(), next)
        };
        if last {
            // The last caller left: the call is dropped (cancelled), with no borrow held.
            self.flights.close(&self.key, &self.flight);
            let work = self.flight.work.borrow_mut().take();
            drop(work);
            return;
        }
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::Context;

    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// A call that completes with what `answer` is set to, and notes in `dropped` that it was
    /// dropped before completing.
    struct Call {
        answer: Rc<Cell<Option<u32>>>,
        dropped: Rc<Cell<bool>>,
        done: bool,
    }

    impl Future for Call {
        type Output = u32;
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            match self.answer.get() {
                Some(answer) => {
                    self.done = true;
                    Poll::Ready(answer)
                }
                None => Poll::Pending,
            }
        }
    }

    impl Drop for Call {
        fn drop(&mut self) {
            if !self.done {
                self.dropped.set(true);
            }
        }
    }

    /// A call, how to answer it, whether it was cancelled, and how many copies were asked for.
    struct Upstream {
        answer: Rc<Cell<Option<u32>>>,
        dropped: Rc<Cell<bool>>,
        asked: Rc<RefCell<Vec<usize>>>,
        /// How many copies `share` makes at most.
        most: usize,
    }

    impl Upstream {
        fn new() -> Upstream {
            Upstream {
                answer: Rc::default(),
                dropped: Rc::default(),
                asked: Rc::default(),
                most: usize::MAX,
            }
        }

        fn start(&self) -> impl FnOnce() -> (Work<u32>, Share<u32>) + '_ {
            move || {
                let call = Call {
                    answer: self.answer.clone(),
                    dropped: self.dropped.clone(),
                    done: false,
                };
                let (asked, most) = (self.asked.clone(), self.most);
                let share: Share<u32> = Box::new(move |outcome, n| {
                    asked.borrow_mut().push(n);
                    vec![*outcome; n.min(most)]
                });
                (Box::pin(call) as Work<u32>, share)
            }
        }
    }

    #[test]
    fn callers_get_their_own_copy_of_the_one_call() {
        let flights = Flights::<u32>::default();
        let upstream = Upstream::new();
        let mut first = flights.join("k", upstream.start());
        let mut second = flights.join("k", || unreachable!("joins"));
        let mut third = flights.join("k", || unreachable!("joins"));
        assert!(!first.joined() && second.joined() && third.joined());
        assert!(poll_once(pin!(first.outcome())).is_pending());
        upstream.answer.set(Some(7));
        // Whoever sees it complete, the caller who started it owns it.
        assert_eq!(poll_once(pin!(third.outcome())), Poll::Ready(Some(7)));
        assert_eq!(
            *upstream.asked.borrow(),
            [2],
            "all copies are asked for at once"
        );
        assert_eq!(poll_once(pin!(first.outcome())), Poll::Ready(Some(7)));
        assert_eq!(poll_once(pin!(second.outcome())), Poll::Ready(Some(7)));
        assert!(first.owns() && !second.owns() && !third.owns());
        assert!(flights.is_empty());
    }

    #[test]
    fn the_call_goes_on_when_its_starter_leaves_and_is_dropped_with_its_last_caller() {
        let flights = Flights::<u32>::default();
        let upstream = Upstream::new();
        let mut first = flights.join("k", upstream.start());
        let mut second = flights.join("k", || unreachable!("joins"));
        assert!(poll_once(pin!(first.outcome())).is_pending());
        drop(first);
        assert!(
            !upstream.dropped.get(),
            "the call goes on for the caller who joined it"
        );
        let mut late = flights.join("k", || unreachable!("still joinable"));
        upstream.answer.set(Some(5));
        assert_eq!(poll_once(pin!(second.outcome())), Poll::Ready(Some(5)));
        assert_eq!(poll_once(pin!(late.outcome())), Poll::Ready(Some(5)));
        assert_eq!(*upstream.asked.borrow(), [1]);
        // Its starter gone, the caller who saw it complete owns it.
        assert!(second.owns() && !late.owns());
        // Every caller leaving drops the call (cancelled on the wire), and the next one starts anew.
        let upstream = Upstream::new();
        let first = flights.join("k", upstream.start());
        let second = flights.join("k", || unreachable!("joins"));
        drop(second);
        assert!(!upstream.dropped.get());
        drop(first);
        assert!(upstream.dropped.get());
        assert!(flights.is_empty());
    }

    #[test]
    fn a_caller_left_without_a_copy_makes_its_own_call() {
        let flights = Flights::<u32>::default();
        let upstream = Upstream {
            most: 1,
            ..Upstream::new()
        };
        let mut first = flights.join("k", upstream.start());
        let (mut a, mut b) = (
            flights.join("k", || unreachable!()),
            flights.join("k", || unreachable!()),
        );
        upstream.answer.set(Some(5));
        assert_eq!(poll_once(pin!(first.outcome())), Poll::Ready(Some(5)));
        assert_eq!(poll_once(pin!(a.outcome())), Poll::Ready(Some(5)));
        assert_eq!(poll_once(pin!(b.outcome())), Poll::Ready(None));
    }

    #[test]
    fn a_full_flight_makes_the_next_caller_start_a_new_one() {
        let flights = Flights::<u32>::default();
        let (one, two) = (Upstream::new(), Upstream::new());
        let mut first = flights.join("k", one.start());
        let others: Vec<_> = (1..MAX_CALLERS)
            .map(|_| flights.join("k", || unreachable!("joins")))
            .collect();
        assert!(others.iter().all(Seat::joined));
        let mut second = flights.join("k", two.start());
        assert!(
            !second.joined(),
            "the caller past the bound starts a new flight"
        );
        let mut late = flights.join("k", || unreachable!("joins the new flight"));
        // The first flight ending leaves the second one open to identical callers.
        one.answer.set(Some(1));
        assert_eq!(poll_once(pin!(first.outcome())), Poll::Ready(Some(1)));
        assert_eq!(*one.asked.borrow(), [MAX_CALLERS - 1]);
        let mut later = flights.join("k", || unreachable!("the second flight is still open"));
        two.answer.set(Some(2));
        assert_eq!(poll_once(pin!(second.outcome())), Poll::Ready(Some(2)));
        assert_eq!(poll_once(pin!(late.outcome())), Poll::Ready(Some(2)));
        assert_eq!(poll_once(pin!(later.outcome())), Poll::Ready(Some(2)));
        assert!(flights.is_empty());
        drop(others);
    }

    #[test]
    fn different_keys_fly_separately() {
        let flights = Flights::<u32>::default();
        let (a, b) = (Upstream::new(), Upstream::new());
        let _a = flights.join("a", a.start());
        assert!(!flights.join("b", b.start()).joined());
    }
}
