//! The `ResilientClient` class: options in, `fetch` through the pipeline, stats and events out.

use crate::core::llm::{CostTally, Ledger};
use crate::core::pipeline::{CallSpec, Delivered, Engine, SharedCalls};
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use crate::wasm::cache::Cache;
use crate::wasm::errors::{abort_error, failure_to_js};
use crate::wasm::js::{abort_reason, promise, promise_now};
use crate::wasm::listeners::{in_listener, Listeners};
use crate::wasm::options::{parse_client_options, ClientOptions};
use crate::wasm::platform::{Answer, JsPlatform};
use crate::wasm::request::{prepare, Prepared, RequestDefaults};
use crate::wasm::shared_state::SharedState;
use crate::wasm::stats::{metrics_text, stats_to_js};
use crate::wasm::stream::SseStream;
use crate::wasm::tap::SharedStreams;
use js_sys::{Function, Promise};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, AddEventListenerOptions};

/// A fetch wrapper with retries, circuit breakers, rate limits and timeouts.
#[wasm_bindgen]
pub struct ResilientClient {
    inner: Rc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) platform: JsPlatform,
    pub(crate) options: ClientOptions,
    pub(crate) in_flight: SharedCalls<Answer>,
    /// Identical stream requests in flight, sharing one upstream body.
    pub(crate) streams: SharedStreams,
    pub(crate) cache: Option<Cache>,
    /// Token and cost budgets for chat calls.
    pub(crate) budget: Option<RefCell<Ledger>>,
    /// What chat calls have cost, per model and per user.
    pub(crate) costs: RefCell<CostTally>,
    seeded: Cell<bool>,
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
        let engine = Engine::new(std::mem::take(&mut options.config), 0);
        let store = options.shared_state.take().map(SharedState::new);
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
                in_flight: SharedCalls::default(),
                streams: SharedStreams::default(),
                cache,
                budget,
                costs: RefCell::new(CostTally::default()),
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

impl Inner {
    pub(crate) fn platform_now(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    /// Seeds jitter on first use: workerd forbids `crypto.getRandomValues` at module scope, where
    /// clients are commonly constructed.
    fn seed_once(&self) {
        if self.seeded.replace(true) {
            return;
        }
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_ok() {
            self.engine.reseed(u64::from_le_bytes(bytes));
        } else {
            self.engine.reseed(js_sys::Date::now() as u64);
        }
    }

    /// Empties the cache.
    async fn clear_cache(&self) -> Result<JsValue, JsValue> {
        if let Some(cache) = &self.cache {
            cache.clear().await?;
        }
        Ok(JsValue::UNDEFINED)
    }

    /// Normalises fetch arguments with the client's defaults.
    pub(crate) async fn prepare(&self, input: JsValue, init: JsValue) -> Result<Prepared, JsValue> {
        self.seed_once();
        let defaults = RequestDefaults {
            base_url: self.options.base_url.as_deref(),
            headers: &self.options.headers,
            retry: self.engine.config().retry.as_ref(),
            timeout: self.engine.config().timeout,
            keyed: self.options.dedupe || self.cache.is_some(),
            namespace: self
                .cache
                .as_ref()
                .map_or("", |c| c.options.namespace.as_str()),
            count_tokens: self
                .engine
                .config()
                .rate_limit
                .as_ref()
                .is_some_and(|(limit, _)| limit.tokens_per_minute.is_some()),
            now_ms: self.platform.now_ms(),
        };
        prepare(input, init, &defaults).await
    }

    /// Runs a prepared request through the pipeline on `platform`, racing the caller's signal;
    /// with `shared`, identical calls in flight share one upstream call.
    pub(crate) async fn call(
        &self,
        prepared: Prepared,
        shared: Option<(&SharedCalls<Answer>, &str)>,
    ) -> Result<Delivered<Answer>, JsValue> {
        let platform = &self.platform;
        let retry = prepared.retry(self.engine.config().retry.as_ref()).cloned();
        let call = CallSpec {
            request: prepared.request,
            url: prepared.url,
            origin: prepared.origin,
            rate_key: prepared.policy.rate_limit_key,
            timeout: prepared.timeout,
            spent_ms: platform.now_ms().saturating_sub(prepared.started_ms),
            retry,
            tokens: prepared.tokens,
        };
        // Boxed: the pipeline's future is the bulk of a call's state, and kept inline it would be
        // counted once per path a call can take (~10 KB per call in flight instead of ~4).
        let work = async {
            match shared {
                Some((flights, key)) => {
                    Box::pin(self.engine.execute_shared(platform, flights, &call, key)).await
                }
                None => Box::pin(self.engine.execute(platform, &call)).await,
            }
        };
        let result = until_aborted(prepared.signal.as_ref(), work).await?;
        result.map_err(|failure| failure_to_js(&failure))
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
    /// The next text (one batch per network chunk), `null` at the end.
    #[wasm_bindgen(js_name = nextBatch, unchecked_return_type = "Promise<string | null>")]
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
    let outcome = race(work, aborted).await;
    unsubscribe();
    match outcome {
        Either::Left(value) => Ok(value),
        Either::Right(_) => Err(abort_error(
            &abort_reason(signal).unwrap_or(JsValue::UNDEFINED),
        )),
    }
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
