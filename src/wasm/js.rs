//! Small helpers for building and reading plain JS objects, and for turning futures into promises.
//!
//! Reading a caller's value runs the caller's code (getters, Proxy traps), and a JS exception thrown
//! through wasm frames skips every destructor: borrows stay held, the stack pointer stays moved, and
//! the instance is corrupted for every client. So caller values are read only through the catching
//! accessors here ([`own`], [`is_array`], [`abort_reason`]), never through a non-catching import.

use js_sys::{Object, Promise, Reflect};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

/// Sets `object[key] = value`, ignoring the (impossible for plain objects) failure.
pub fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// Reads `object[key]`; `undefined` when absent or unreadable.
pub fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen(
    inline_js = "export function own(o, k) { return Object.hasOwn(o, k) ? o[k] : undefined; }"
)]
extern "C" {
    /// The caller's own property `object[key]` in one crossing (`undefined` when absent: an
    /// inherited value, such as one set on `Object.prototype` elsewhere, is never read); what a
    /// getter or trap throws is `Err`.
    #[wasm_bindgen(catch)]
    pub fn own(object: &JsValue, key: &str) -> Result<JsValue, JsValue>;
    /// The own element `index` of an array (`undefined` for a hole), as [`own`].
    #[wasm_bindgen(catch, js_name = own)]
    pub fn own_item(array: &JsValue, index: u32) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen]
extern "C" {
    /// `Array.isArray(value)`; `Err` for a revoked Proxy.
    #[wasm_bindgen(js_namespace = Array, js_name = isArray, catch)]
    pub fn is_array(value: &JsValue) -> Result<bool, JsValue>;
    /// An `AbortSignal` read through getters that catch (a caller's may be a Proxy).
    type SignalFields;
    #[wasm_bindgen(method, getter, catch)]
    fn aborted(this: &SignalFields) -> Result<bool, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn reason(this: &SignalFields) -> Result<JsValue, JsValue>;
}

/// The abort reason of a caller's signal once it fired. A signal that throws when read (a Proxy)
/// counts as aborted, with a TypeError saying so as the reason (what it threw is the `cause`): the
/// hostile value's own error never escapes as if it were the caller's reason.
pub fn abort_reason(signal: &AbortSignal) -> Option<JsValue> {
    let signal: &SignalFields = signal.unchecked_ref();
    let unreadable = |thrown: JsValue| {
        let error = js_sys::TypeError::new("The request's signal could not be read.");
        set(&error, "cause", &thrown);
        JsValue::from(error)
    };
    match signal.aborted() {
        Ok(false) => None,
        Ok(true) => Some(signal.reason().unwrap_or_else(unreadable)),
        Err(thrown) => Some(unreadable(thrown)),
    }
}

/// Builds a plain object field by field.
pub struct ObjectBuilder(Object);

impl ObjectBuilder {
    /// An empty object.
    pub fn new() -> Self {
        ObjectBuilder(Object::new())
    }
    /// Adds a string field.
    pub fn str(self, key: &str, value: &str) -> Self {
        set(&self.0, key, &JsValue::from_str(value));
        self
    }
    /// Adds a number field.
    pub fn num(self, key: &str, value: impl Into<f64>) -> Self {
        set(&self.0, key, &JsValue::from_f64(value.into()));
        self
    }
    /// Adds a boolean field.
    pub fn bool(self, key: &str, value: bool) -> Self {
        set(&self.0, key, &JsValue::from_bool(value));
        self
    }
    /// Adds any JS value.
    pub fn value(self, key: &str, value: &JsValue) -> Self {
        set(&self.0, key, value);
        self
    }
    /// The object.
    pub fn build(self) -> JsValue {
        self.0.into()
    }
}

impl AsRef<JsValue> for ObjectBuilder {
    fn as_ref(&self) -> &JsValue {
        &self.0
    }
}

thread_local! {
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// Marks a promise's rejection as handled: for fire-and-forget calls such as `reader.cancel()` on an
/// already failed stream, whose rejection would otherwise surface as an unhandled rejection (which
/// terminates Node).
pub fn ignore_rejection(promise: &js_sys::Promise) {
    IGNORE.with(|ignore| {
        let _ = promise.catch(ignore);
    });
}

/// The promise of `future`, which runs at once in the background.
///
/// Every future goes through one boxed type, so wasm-bindgen-futures' spawning code is compiled once
/// rather than once per call site.
pub fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    wasm_bindgen_futures::future_to_promise(boxed(future))
}

/// `future` as a promise, polled once at once: a call that completes without waiting (a memory-cache
/// hit) settles without a round trip through the executor (a promise, closures and a microtask of
/// its own, a good part of such a call's time). Otherwise the executor carries it on; its polls
/// replace the no-op waker, as every future must allow.
pub fn promise_now(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    let mut future = boxed(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(value)) => Promise::resolve(&value),
        Poll::Ready(Err(error)) => Promise::reject(&error),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(future),
    }
}

type BoxedCall = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

fn boxed(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> BoxedCall {
    Box::pin(future)
}
