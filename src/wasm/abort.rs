//! A caller's `AbortSignal` as a future, and work raced against it.

use crate::core::race::{race, Either};
use crate::wasm::errors::abort_error;
use crate::wasm::js::abort_reason;
use js_sys::{Function, Promise};
use std::future::Future;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, AddEventListenerOptions};

/// `work`, or the AbortError of `signal` if it fires first (or already has).
pub(crate) async fn until_aborted<T>(
    signal: Option<&AbortSignal>,
    work: impl Future<Output = T>,
) -> Result<T, JsValue> {
    let Some(signal) = signal else {
        return Ok(work.await);
    };
    if let Some(reason) = abort_reason(signal) {
        return Err(abort_error(&reason));
    }
    let (aborted, unsubscribe) = abort_future(signal);
    // Run when this future ends or is dropped mid-way (a hedge's loser, a cancelled stream's
    // start): a listener left on a long-lived signal would keep its promise's callbacks forever.
    let _unsubscribe = OnDrop(Some(unsubscribe));
    let outcome = race(work, aborted).await;
    match outcome {
        Either::Left(value) => Ok(value),
        Either::Right(_) => Err(abort_error(
            &abort_reason(signal).unwrap_or(JsValue::UNDEFINED),
        )),
    }
}

/// Runs its function once, when dropped.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run();
        }
    }
}

/// Whether the caller's `signal` has aborted: a failure then is the caller's abort, whatever its
/// reason (which the caller chose, so its name says nothing).
pub(crate) fn is_aborted(signal: Option<&AbortSignal>) -> bool {
    signal.is_some_and(|signal| abort_reason(signal).is_some())
}

/// A future that resolves when `signal` aborts, and a function that stops listening.
pub(crate) fn abort_future(signal: &AbortSignal) -> (JsFuture, impl FnOnce() + '_) {
    let mut resolver: Option<Function> = None;
    let promise = Promise::new(&mut |resolve, _reject| {
        let options = AddEventListenerOptions::new();
        options.set_once(true);
        let _ = signal.add_event_listener_with_callback_and_add_event_listener_options(
            "abort", &resolve, &options,
        );
        resolver = Some(resolve);
    });
    let unsubscribe = move || {
        if let Some(resolve) = resolver {
            let _ = signal.remove_event_listener_with_callback("abort", &resolve);
            // Settle the promise, so the future's callbacks are released even when the signal is
            // never aborted (a long-lived signal would otherwise keep two closures per call).
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    };
    (JsFuture::from(promise), unsubscribe)
}
