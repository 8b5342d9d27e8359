//! `client.on(type, listener)`: listener lists per event type, and the conversion of core events to
//! plain JS objects — done only when somebody listens to that type.
//!
//! Listeners run with no borrow held (the list is copied first), so they may call any client
//! method, `on()` and unsubscribing included. A call a listener starts is not run inside the event's
//! stack, though: [`in_listener`] tells `fetch` to start it on the next microtask (a listener that
//! fetches on every `request` event would otherwise nest calls until the wasm stack overflowed).

use crate::core::event::{Event, RetryReason};
use crate::core::text;
use crate::wasm::errors::failure_to_js;
use crate::wasm::js::{set, ObjectBuilder};
use js_sys::Function;
use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;

/// The event types `on()` accepts.
pub const EVENT_TYPES: [&str; 10] = [
    "request",
    "response",
    "retry",
    "breaker",
    "cache",
    "rateLimited",
    "fallback",
    "hedge",
    "budget",
    "error",
];

thread_local! {
    /// How many listeners are running, over all clients (one client's listener may call another).
    static RUNNING: Cell<u32> = const { Cell::new(0) };
}

/// Whether a listener is running: a client call made now is started on the next microtask.
pub fn in_listener() -> bool {
    RUNNING.get() > 0
}

/// Registered listeners, by id so an unsubscribe removes exactly one.
#[derive(Default)]
pub struct Listeners {
    entries: RefCell<Vec<(u32, &'static str, Function)>>,
    next_id: Cell<u32>,
}

impl Listeners {
    /// Registers `listener` for `kind`; returns its id, or a TypeError for an unknown kind.
    pub fn add(&self, kind: &str, listener: Function) -> Result<u32, JsValue> {
        let Some(kind) = EVENT_TYPES.iter().find(|k| **k == kind) else {
            return Err(js_sys::TypeError::new(&format!(
                "on(): unknown event type \"{kind}\"; expected one of {}",
                text::join(&EVENT_TYPES, ", ")
            ))
            .into());
        };
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        self.entries.borrow_mut().push((id, kind, listener));
        Ok(id)
    }

    /// Removes the listener registered under `id`, if still there.
    pub fn remove(&self, id: u32) {
        self.entries.borrow_mut().retain(|(i, _, _)| *i != id);
    }

    /// Calls every listener of the event's type. A listener that throws does not disturb the call.
    pub fn dispatch(&self, event: &Event) {
        let kind = event.kind();
        let targets: Vec<Function> = self
            .entries
            .borrow()
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, f)| f.clone())
            .collect();
        if targets.is_empty() {
            return;
        }
        RUNNING.set(RUNNING.get() + 1);
        let object = event_to_js(event);
        for listener in targets {
            let _ = listener.call1(&JsValue::NULL, &object);
        }
        RUNNING.set(RUNNING.get() - 1);
    }
}

fn event_to_js(event: &Event) -> JsValue {
    let o = ObjectBuilder::new().str("type", event.kind());
    let o = match event {
        Event::Request { url, attempt } => o.str("url", url).num("attempt", *attempt),
        Event::Response {
            url,
            status,
            attempt,
            elapsed_ms,
        } => o
            .str("url", url)
            .num("status", *status)
            .num("attempt", *attempt)
            .num("elapsedMs", *elapsed_ms as f64),
        Event::Retry {
            url,
            attempt,
            delay_ms,
            reason,
            from_server,
        } => {
            let o = o
                .str("url", url)
                .num("attempt", *attempt)
                .num("delayMs", *delay_ms as f64)
                .bool("fromServer", *from_server);
            match reason {
                RetryReason::Status(status) => o.str("reason", "status").num("status", *status),
                RetryReason::Timeout => o.str("reason", "timeout"),
                RetryReason::Network => o.str("reason", "network"),
                RetryReason::StreamCut => o.str("reason", "cut"),
            }
        }
        Event::Breaker { key, from, to } => o
            .str("key", key)
            .str("from", from.as_str())
            .str("to", to.as_str()),
        Event::RateLimited {
            key,
            wait_ms,
            rejected,
        } => o
            .str("key", key)
            .num("waitMs", *wait_ms as f64)
            .bool("rejected", *rejected),
        Event::Cache { url, result } => o.str("url", url).str("result", result),
        Event::Fallback { from, to, reason } => {
            o.str("from", from).str("to", to).str("reason", reason)
        }
        Event::Hedge {
            from,
            to,
            after_ms,
            winner,
        } => {
            let o = o.str("from", from).str("to", to);
            let o = o.num("afterMs", *after_ms as f64);
            match winner {
                Some(winner) => o.str("winner", winner),
                None => o.value("winner", &JsValue::NULL),
            }
        }
        Event::Budget {
            user,
            cap,
            used_per_mille,
        } => o
            .str("user", user)
            .str("cap", cap)
            .num("used", *used_per_mille as f64 / 1000.0),
        Event::StoreError { url, message } => {
            let error = crate::wasm::errors::named_error("CacheStoreError", "CACHE_STORE", message);
            o.str("url", url).value("error", &error)
        }
        Event::Error { url, failure } => {
            let o = o.str("url", url);
            set(o.as_ref(), "error", &failure_to_js(failure));
            o
        }
    };
    o.build()
}
