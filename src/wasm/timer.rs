//! The timers behind [`Platform::sleep`](crate::core::platform::Platform::sleep): a `setTimeout` per
//! sleep whose callback is one function, made once, handed the sleep's slot number.
//!
//! Every call sleeps at least once (its attempt and total deadlines race the fetch). A timer made the
//! usual way (a Rust closure per timer, as gloo-timers does) costs a JS function registered with the
//! closure finalizer, and two crossings more to make and free it; here a number crosses instead, and
//! the sleep's waker stays in wasm, in a slot that the sleep frees when it ends or is dropped (a
//! dropped sleep clears its timer, so a slot is never woken for a sleep that is gone; the slot's
//! generation guards the reuse anyway).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = "let fire;
export function onTimer(f) { fire = f; }
export function startTimer(ms, key) { return setTimeout(fire, ms, key); }")]
extern "C" {
    #[wasm_bindgen(js_name = onTimer)]
    fn on_timer(fire: &Closure<dyn FnMut(f64)>);
    /// The timer's handle (a number, or a `Timeout` object in Node).
    #[wasm_bindgen(js_name = startTimer)]
    fn start_timer(ms: u32, key: f64) -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// A sleep's slot: whether its timer fired, and the task to wake when it does.
struct Slot {
    generation: u32,
    fired: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::default();
    static FIRE: Closure<dyn FnMut(f64)> = {
        let fire = Closure::new(fired);
        on_timer(&fire);
        fire
    };
}

/// The callback of every timer: marks the slot `key` names fired and wakes its task.
fn fired(key: f64) {
    let (index, generation) = split(key);
    let waker = SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let slot = slots.slots.get_mut(index as usize)?;
        if slot.generation != generation {
            return None;
        }
        slot.fired = true;
        slot.waker.take()
    });
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Generations wrap at 2^20, so that a key (generation * 2^32 + index) stays an exact JS number.
const MAX_GENERATION: u32 = (1 << 20) - 1;

/// A slot index and its generation in one JS number.
fn key(index: u32, generation: u32) -> f64 {
    f64::from(generation) * 4_294_967_296.0 + f64::from(index)
}

fn split(key: f64) -> (u32, u32) {
    let generation = (key / 4_294_967_296.0) as u32;
    let index = (key - f64::from(generation) * 4_294_967_296.0) as u32;
    (index, generation)
}

/// A future that is ready `ms` milliseconds after its first poll.
pub struct Sleep {
    ms: u32,
    /// The slot and the timer's handle, once started.
    started: Option<(u32, JsValue)>,
}

impl Sleep {
    /// A sleep of `ms` milliseconds (`setTimeout`'s bound: at most 2^31 - 1).
    pub fn new(ms: u32) -> Sleep {
        Sleep { ms, started: None }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((index, _)) = &self.started {
            let index = *index as usize;
            return SLOTS.with(|slots| {
                let mut slots = slots.borrow_mut();
                match slots.slots.get_mut(index) {
                    Some(slot) if !slot.fired => {
                        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            slot.waker = Some(cx.waker().clone());
                        }
                        Poll::Pending
                    }
                    _ => Poll::Ready(()),
                }
            });
        }
        let (index, generation) = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let waker = Some(cx.waker().clone());
            match slots.free.pop() {
                Some(index) => {
                    let slot = &mut slots.slots[index as usize]; // a freed slot exists
                    slot.generation = (slot.generation + 1) & MAX_GENERATION;
                    slot.fired = false;
                    slot.waker = waker;
                    (index, slot.generation)
                }
                None => {
                    let index = slots.slots.len() as u32;
                    slots.slots.push(Slot {
                        generation: 0,
                        fired: false,
                        waker,
                    });
                    (index, 0)
                }
            }
        });
        FIRE.with(|_| ()); // the callback exists before the first timer starts
        let handle = start_timer(self.ms, key(index, generation));
        self.started = Some((index, handle));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some((index, handle)) = self.started.take() else {
            return;
        };
        let fired = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let slot = slots.slots.get_mut(index as usize)?;
            let fired = slot.fired;
            slot.fired = false;
            slot.waker = None;
            slots.free.push(index);
            Some(fired)
        });
        if fired == Some(false) {
            clear_timeout(&handle);
        }
    }
}
