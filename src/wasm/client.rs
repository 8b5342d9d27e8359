//! The `ResilientClient` class: options in, `fetch` through the pipeline, stats and events out.

use crate::core::llm::{CostTally, Ledger};
use crate::core::pipeline::{Engine, JoinableCalls};
use crate::wasm::cache::Cache;
use crate::wasm::inner::Inner;
use crate::wasm::js::{promise, promise_now};
use crate::wasm::listeners::{in_listener, Listeners};
use crate::wasm::options::parse_client_options;
use crate::wasm::platform::JsPlatform;
use crate::wasm::semantic_cache::SemanticCache;
use crate::wasm::shared_state::JsStateStore;
use crate::wasm::stats::{metrics_text, stats_to_js};
use crate::wasm::stream::SseStream;
use crate::wasm::tap::JoinableStreams;
use js_sys::{Function, Promise};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A fetch wrapper with retries, circuit breakers, rate limits and timeouts.
#[wasm_bindgen]
pub struct ResilientClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl ResilientClient {
    /// Validates `options`; throws a TypeError or RangeError naming the field when one is wrong.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<ResilientClient, JsValue> {
        crate::wasm::install_panic_hook();
        let mut options = parse_client_options(options)?;
        // The engine holds the one copy of the policy configuration, shared state or not: a shared
        // store is asked from inside the pipeline, on these settings.
        let engine = Rc::new(Engine::new(std::mem::take(&mut options.config), 0));
        let store = options
            .shared_state
            .take()
            .map(|s| Rc::new(JsStateStore::new(s)));
        let semantic = options.cache.as_mut().and_then(|c| c.semantic.take());
        let cache = options.cache.take().map(Cache::new);
        let budget = options
            .budget
            .take()
            .map(|cfg| RefCell::new(Ledger::new(cfg)));
        Ok(ResilientClient {
            inner: Rc::new(Inner {
                engine,
                platform: JsPlatform {
                    listeners: Rc::new(Listeners::default()),
                    store,
                },
                options,
                in_flight: JoinableCalls::default(),
                streams: JoinableStreams::default(),
                cache,
                semantic: semantic.map(SemanticCache::new),
                budget,
                costs: RefCell::new(CostTally::default()),
                first_tokens: RefCell::default(),
                seeded: Cell::new(false),
            }),
        })
    }

    /// `fetch` with the client's policies. Resolves with the final `Response` (an error status after
    /// exhausted retries included); rejects with a typed error when there is no response to give.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL | Request")] input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ResilientInit")] init: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let call = async move { inner.fetch(input, init).await };
        match in_listener() {
            true => promise(call),
            false => promise_now(call),
        }
    }

    /// Opens an SSE stream through the pipeline (the package's `events()` wraps it in an async
    /// iterator).
    #[wasm_bindgen(js_name = openEvents)]
    pub fn open_events(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL | Request")] input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ResilientInit")] init: JsValue,
    ) -> SseStream {
        SseStream::open(self.inner.clone(), input, init)
    }

    /// One chat call across the fallback chain (`options.targets`), within the budgets.
    #[wasm_bindgen(unchecked_return_type = "Promise<ChatResult>")]
    pub fn chat(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatRequest")] request: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move { inner.chat(request).await })
    }

    /// Embeddings of one text or many, each text cached on its own, across the fallback chain.
    #[wasm_bindgen(unchecked_return_type = "Promise<EmbedResult>")]
    pub fn embed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "EmbedRequest")] request: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move { inner.embed(request).await })
    }

    /// A streamed chat call (the package's `chatStream()` wraps it): text deltas, then `result`.
    #[wasm_bindgen(js_name = openChat)]
    pub fn open_chat(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatRequest")] request: JsValue,
    ) -> Result<ChatStreamRaw, JsValue> {
        let (stream, result) = SseStream::open_chat(self.inner.clone(), request)?;
        Ok(ChatStreamRaw { stream, result })
    }

    /// Empties the response cache (its store included).
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "Promise<void>")]
    pub fn clear_cache(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { inner.clear_cache().await })
    }

    /// Counters, breaker states, bucket level and latency percentiles.
    #[wasm_bindgen(unchecked_return_type = "ClientStats")]
    pub fn stats(&self) -> JsValue {
        stats_to_js(
            &self.inner.engine,
            self.inner.platform.store.is_some(),
            self.inner.cache.as_ref(),
            &self.inner.costs.borrow(),
            &self.inner.first_tokens.borrow(),
            self.inner.platform_now(),
        )
    }

    /// The stats in Prometheus text exposition format.
    pub fn metrics(&self) -> String {
        metrics_text(
            &self.inner.engine,
            self.inner.platform.store.is_some(),
            self.inner.cache.as_ref(),
            &self.inner.costs.borrow(),
            &self.inner.first_tokens.borrow(),
            self.inner.platform_now(),
        )
    }

    /// Subscribes `listener` to events of `type`; returns a function that unsubscribes it.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        #[wasm_bindgen(js_name = "type", unchecked_param_type = "ClientEventType")] kind: &str,
        #[wasm_bindgen(unchecked_param_type = "(e: ClientEvent) => void")] listener: JsValue,
    ) -> Result<JsValue, JsValue> {
        let Some(listener) = listener.dyn_ref::<Function>() else {
            return Err(crate::wasm::reader::type_error(
                "listener",
                "a function",
                &listener,
            ));
        };
        let listeners = self.inner.platform.listeners.clone();
        let id = listeners.add(kind, listener.clone())?;
        Ok(Closure::once_into_js(move || listeners.remove(id)))
    }
}

/// The wasm side of a `ChatStream`: text batches from the stream, and the call's result.
#[wasm_bindgen]
pub struct ChatStreamRaw {
    stream: SseStream,
    result: Promise,
}

#[wasm_bindgen]
impl ChatStreamRaw {
    /// The next `ChatDelta` (one batch per network chunk), `null` at the end.
    #[wasm_bindgen(js_name = nextBatch, unchecked_return_type = "Promise<ChatDelta | null>")]
    pub fn next_batch(&self) -> Promise {
        self.stream.next_batch()
    }

    /// Settles with the `ChatResult` when the stream ends (rejects if it fails).
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<ChatResult>")]
    pub fn result(&self) -> Promise {
        self.result.clone()
    }

    /// Stops the stream and cancels the request body.
    pub fn cancel(&self) {
        self.stream.cancel();
    }
}
