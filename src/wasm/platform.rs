//! The [`Platform`] for JS runtimes: global `fetch`, `setTimeout` (through gloo-timers) and `Date.now`.
//!
//! `fetch` and the timers are bound from the global scope, never through `Window`, so the same module
//! runs in a page, a Web Worker, Node and workerd. Every attempt gets its own `AbortController` that is
//! aborted when the attempt's future is dropped: a timeout or a caller's abort cancels the request on
//! the wire, not just our interest in it.

use crate::core::event::Event;
use crate::core::llm::{classify, ErrorClass};
use crate::core::platform::{Platform, SendError};
use crate::wasm::abort::is_aborted;
use crate::wasm::answer::{prime, JsResponse, StreamStart};
use crate::wasm::body::error_text;
use crate::wasm::fan_out;
use crate::wasm::js::ignore_rejection;
use crate::wasm::listeners::Listeners;
use crate::wasm::shared_state::JsStateStore;
use js_sys::{Object, Promise, Reflect};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Response};

#[wasm_bindgen(inline_js = "export function response(value) {
  if (!(value instanceof Response)) throw new TypeError('fetch resolved with something other than a Response');
  for (const field of ['status', 'ok', 'body']) value[field];
  value.headers.get('content-type');
  return value;
}")]
extern "C" {
    /// The value a (possibly replaced) global `fetch` resolved with, if it is a `Response` whose
    /// fields the pipeline reads (through getters that do not catch) can be read; else what reading
    /// one threw: a Proxy or a wrapper whose getters throw must not throw through the wasm.
    #[wasm_bindgen(catch)]
    fn response(value: &JsValue) -> Result<Response, JsValue>;
}

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, which a caller may have replaced by one that throws.
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(input: &JsValue, init: &Object) -> Result<Promise, JsValue>;
    /// `AbortSignal.any` (absent in older runtimes: then `Err`).
    #[wasm_bindgen(js_namespace = AbortSignal, js_name = any, catch)]
    fn any_signal(signals: &js_sys::Array) -> Result<AbortSignal, JsValue>;
}

/// One attempt's worth of request: the URL and a `RequestInit` whose `signal` is set per attempt.
pub struct JsRequest {
    /// Absolute URL, as a JS string (not converted again on every attempt).
    pub url: JsValue,
    /// method, headers, body and the caller's other `RequestInit` fields.
    pub init: Object,
    /// For `events()`: an attempt succeeds only once its event stream delivered a first event.
    pub stream: Option<StreamStart>,
    /// For chat calls: read error bodies, so that an error retrying cannot fix (an exhausted quota
    /// behind a 429) is not retried.
    pub classify_errors: bool,
    /// The caller's signal: it must cancel the response body too, not only the wait for headers.
    pub signal: Option<AbortSignal>,
}

/// Global fetch and timers, the client's event listeners and its shared state store (a clone is
/// the same platform: a shared call's work holds one, [`crate::core::dedupe`]).
#[derive(Clone)]
pub struct JsPlatform {
    /// Where events go.
    pub listeners: Rc<Listeners>,
    /// Breaker and bucket state shared across isolates (`sharedState`), when set.
    pub store: Option<Rc<JsStateStore>>,
}

/// Aborts the attempt's fetch when dropped before it finished.
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

/// `setTimeout` fires at once for delays above 2^31-1 ms, so long sleeps are taken in slices.
const MAX_TIMER_MS: u64 = i32::MAX as u64;

impl Platform for JsPlatform {
    type Request = JsRequest;
    type Response = JsResponse;
    type Store = JsStateStore;

    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn wall_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    async fn sleep(&self, ms: u64) {
        let mut left = ms;
        loop {
            let slice = left.min(MAX_TIMER_MS);
            gloo_timers::future::TimeoutFuture::new(slice as u32).await;
            left -= slice;
            if left == 0 {
                break;
            }
        }
    }

    async fn send(&self, request: &JsRequest) -> Result<JsResponse, SendError> {
        let response = self.fetch(request).await?;
        if request.classify_errors && !response.ok() {
            let error_class = error_class(&response).await;
            return Ok(JsResponse {
                response,
                stream: None,
                error_class,
            });
        }
        match &request.stream {
            None => Ok(JsResponse {
                response,
                stream: None,
                error_class: None,
            }),
            Some(start) => {
                prime(response, start.clone()).await.map_err(|message| {
                    // The caller's signal errors the body too.
                    if is_aborted(request.signal.as_ref()) {
                        SendError::Aborted
                    } else {
                        SendError::Network(message)
                    }
                })
            }
        }
    }

    fn discard(&self, answer: JsResponse) {
        // A stream's body is released (and cancelled) when its reader drops.
        if let (None, Some(body)) = (answer.stream, answer.response.body()) {
            ignore_rejection(&body.cancel());
        }
    }

    fn share(&self, answer: &JsResponse, copies: usize, each: &mut dyn FnMut(JsResponse)) {
        if answer.stream.is_none() {
            fan_out::copies(&answer.response, copies, &mut |response| {
                each(JsResponse {
                    response,
                    stream: None,
                    error_class: answer.error_class,
                })
            });
        }
    }

    fn emit(&self, event: Event) {
        self.listeners.dispatch(&event);
    }

    fn store(&self) -> Option<&JsStateStore> {
        self.store.as_deref()
    }
}

impl JsPlatform {
    /// One fetch, aborted on the wire if the future is dropped before the headers arrive.
    fn fetch(&self, request: &JsRequest) -> impl Future<Output = Result<Response, SendError>> {
        let controller = AbortController::new().ok();
        if let Some(controller) = &controller {
            // The attempt's own signal (deadlines, drops) and the caller's: the caller's must also
            // reach the body after the headers, as with plain fetch (an SDK stops a stream that way).
            let own = controller.signal();
            let signal = match &request.signal {
                Some(caller) => any_signal(&js_sys::Array::of2(caller, &own)).unwrap_or(own),
                None => own,
            };
            let _ = Reflect::set(&request.init, &"signal".into(), &signal);
        }
        // A synchronous throw is taken as the rejection it should have been.
        let promise = global_fetch(&request.url, &request.init)
            .unwrap_or_else(|thrown| Promise::reject(&thrown));
        let (url, init) = (request.url.clone(), request.init.clone());
        let caller = request.signal.clone();
        async move {
            let mut guard = AbortOnDrop(controller);
            let result = JsFuture::from(promise).await;
            guard.0 = None;
            match result {
                Ok(value) => {
                    response(&value).map_err(|error| SendError::Network(network_message(&error)))
                }
                // The caller's signal fails the fetch too: its abort, not the upstream's failure.
                Err(_) if is_aborted(caller.as_ref()) => Err(SendError::Aborted),
                Err(error) if refused(&url, &init) => Err(SendError::Invalid(
                    Reflect::get(&error, &"message".into())
                        .ok()
                        .and_then(|m| m.as_string())
                        .unwrap_or_else(|| "fetch refused the request".into()),
                )),
                Err(error) => Err(SendError::Network(network_message(&error))),
            }
        }
    }
}

/// Whether fetch rejected the request itself rather than failed to send it: building the same
/// `Request` throws too. Only asked after a rejection (a `Request` costs ~20 µs). A streamed body
/// was consumed by the attempt, so it cannot be asked about again: that counts as a network failure.
fn refused(url: &JsValue, init: &Object) -> bool {
    let streamed = Reflect::get(init, &"body".into())
        .is_ok_and(|body| body.is_instance_of::<web_sys::ReadableStream>());
    let url = url.as_string().unwrap_or_default();
    !streamed && web_sys::Request::new_with_str_and_init(&url, init.unchecked_ref()).is_err()
}

/// The class of an error answer, from the start of a copy of its body (the caller's stays unread).
async fn error_class(response: &Response) -> Option<ErrorClass> {
    let body = error_text(&Response::clone(response).ok()?).await.ok()?;
    Some(classify(response.status(), &body))
}

/// "fetch failed (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9)": the message and, when the runtime
/// gives one (Node does), the cause that says what actually went wrong.
fn network_message(error: &JsValue) -> String {
    let text = |value: &JsValue, key: &str| {
        Reflect::get(value, &key.into())
            .ok()
            .and_then(|v| v.as_string())
    };
    let message = text(error, "message").unwrap_or_else(|| "fetch failed".to_string());
    let cause = Reflect::get(error, &"cause".into()).unwrap_or(JsValue::UNDEFINED);
    match (text(&cause, "code"), text(&cause, "message")) {
        (Some(code), Some(detail)) => format!("{message} ({code}: {detail})"),
        (None, Some(detail)) => format!("{message} ({detail})"),
        _ => message,
    }
}
