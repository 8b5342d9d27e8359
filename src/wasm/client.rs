//! The `ResilientClient` class: options in, `fetch` through the pipeline, stats and events out.

use crate::core::cache::{response_storable, storable_headers, Freshness};
use crate::core::config::{CacheMode, Timeouts};
use crate::core::event::Event;
use crate::core::pipeline::{CallSpec, Delivered, Engine, SharedCalls, TokenTicket};
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use crate::wasm::cache::{mark_miss, response_from, Cache, Hit};
use crate::wasm::errors::{abort_error, failure_to_js};
use crate::wasm::js::{get, set};
use crate::wasm::listeners::Listeners;
use crate::wasm::options::{parse_client_options, ClientOptions};
use crate::wasm::platform::{Answer, JsPlatform};
use crate::wasm::request::{prepare, Prepared, RequestDefaults};
use crate::wasm::stats::{metrics_text, stats_to_js};
use crate::wasm::stream::SseStream;
use js_sys::{Function, Promise};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{AbortSignal, AddEventListenerOptions, Response};

/// A fetch wrapper with retries, circuit breakers, rate limits and timeouts.
#[wasm_bindgen]
pub struct ResilientClient {
    inner: Rc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) platform: JsPlatform,
    options: ClientOptions,
    in_flight: SharedCalls<Answer>,
    pub(crate) cache: Option<Cache>,
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
        let engine = Engine::new(options.config.clone(), 0);
        let cache = options.cache.take().map(Cache::new);
        Ok(ResilientClient {
            inner: Rc::new(Inner {
                engine,
                platform: JsPlatform {
                    listeners: Rc::new(Listeners::default()),
                },
                options,
                in_flight: SharedCalls::default(),
                cache,
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
        future_to_promise(async move { inner.fetch(input, init).await })
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

    /// Empties the response cache (its store included).
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "Promise<void>")]
    pub fn clear_cache(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { inner.clear_cache().await })
    }

    /// Counters, breaker states, bucket level and latency percentiles.
    #[wasm_bindgen(unchecked_return_type = "ClientStats")]
    pub fn stats(&self) -> JsValue {
        stats_to_js(
            &self.inner.engine,
            self.inner.cache.as_ref(),
            self.inner.platform_now(),
        )
    }

    /// The stats in Prometheus text exposition format.
    pub fn metrics(&self) -> String {
        metrics_text(
            &self.inner.engine,
            self.inner.cache.as_ref(),
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

    async fn fetch(self: &Rc<Self>, input: JsValue, init: JsValue) -> Result<JsValue, JsValue> {
        let prepared = self.prepare(input, init).await?;
        let key = prepared.key.clone();
        let cache = self.cache.as_ref().zip(key.as_deref());
        let Some((cache, key)) = cache.filter(|_| prepared.policy.cache != CacheMode::Bypass)
        else {
            let shared = key.as_deref().map(|key| (&self.in_flight, key));
            return Ok(self.fetch_upstream(prepared, shared).await?.into());
        };
        let url = prepared.url.clone();
        let wait_until = prepared.policy.wait_until.clone();
        let now = self.platform.wall_ms();
        let found = match cache.lookup(key, now).await {
            Ok(found) => found,
            Err(error) => {
                self.store_error(&url, &error);
                None
            }
        };
        let stale = match found {
            Some(Hit {
                entry,
                freshness: Freshness::Fresh,
            }) => {
                self.platform.emit(Event::Cache {
                    url: &url,
                    result: "hit",
                });
                return Ok(response_from(&entry, "HIT", now)?.into());
            }
            Some(hit) => Some(hit.entry),
            None => None,
        };
        self.platform.emit(Event::Cache {
            url: &url,
            result: "miss",
        });
        if prepared.policy.cache == CacheMode::OnlyIfCached {
            return Ok(gateway_timeout()?.into());
        }
        let outcome = self
            .fetch_upstream(prepared, Some((&self.in_flight, key)))
            .await;
        let upstream_failed = match &outcome {
            Ok(response) => response.status() >= 500,
            Err(error) => get(error, "name").as_string().as_deref() != Some("AbortError"),
        };
        if let (true, Some(entry)) = (upstream_failed, &stale) {
            self.platform.emit(Event::Cache {
                url: &url,
                result: "stale",
            });
            return Ok(response_from(entry, "STALE", self.platform.wall_ms())?.into());
        }
        let response = outcome?;
        let cache_control = response.headers().get("cache-control").ok().flatten();
        if response_storable(response.status(), cache_control.as_deref()) {
            self.store_in_background(&url, key, &response, wait_until.as_ref());
        }
        Ok(mark_miss(&response)?.into())
    }

    /// The pipeline's answer for a prepared request (with dedupe when `shared`).
    async fn fetch_upstream(
        self: &Rc<Self>,
        prepared: Prepared,
        shared: Option<(&SharedCalls<Answer>, &str)>,
    ) -> Result<Response, JsValue> {
        let delivered = self.call(prepared, shared).await?;
        let response = delivered.response.response;
        if let Some(ms) = delivered.retry_after_ms {
            set(&response, "retryAfterMs", &(ms as f64).into());
        }
        if let Some(ticket) = delivered.tokens {
            self.settle_from_usage(&response, ticket);
        }
        Ok(response)
    }

    /// Stores a copy of the response body once it has arrived, without holding up the caller.
    fn store_in_background(
        self: &Rc<Self>,
        url: &str,
        key: &str,
        response: &Response,
        wait_until: Option<&Function>,
    ) {
        let Ok(copy) = Response::clone(response) else {
            return;
        };
        let body = async move {
            let body = JsFuture::from(copy.array_buffer().ok()?).await.ok()?;
            Some(js_sys::Uint8Array::new(&body).to_vec())
        };
        let head = (response.status(), response_headers(response));
        self.store_later(url, key, head, body, wait_until);
    }

    /// Stores an entry once `body` resolves (`None`: the body failed, nothing is stored). The work
    /// runs in the background; `wait_until` (a Worker's `ctx.waitUntil`) keeps it alive past the
    /// response.
    pub(crate) fn store_later(
        self: &Rc<Self>,
        url: &str,
        key: &str,
        (status, headers): (u16, Vec<(String, String)>),
        body: impl std::future::Future<Output = Option<Vec<u8>>> + 'static,
        wait_until: Option<&Function>,
    ) {
        let (inner, url, key) = (self.clone(), url.to_string(), key.to_string());
        let task = future_to_promise(async move {
            let (Some(cache), Some(body)) = (&inner.cache, body.await) else {
                return Ok(JsValue::UNDEFINED);
            };
            let now = inner.platform.wall_ms();
            let entry = cache.entry(status, storable_headers(&headers), body, now);
            match cache.put(&key, entry, now).await {
                Ok(()) => inner.platform.emit(Event::Cache {
                    url: &url,
                    result: "store",
                }),
                Err(error) => inner.store_error(&url, &error),
            }
            Ok(JsValue::UNDEFINED)
        });
        if let Some(wait_until) = wait_until {
            let _ = wait_until.call1(&JsValue::NULL, &task);
        }
    }

    pub(crate) fn store_error(&self, url: &str, error: &JsValue) {
        let message = get(error, "message")
            .as_string()
            .unwrap_or_else(|| "the cache store failed".to_string());
        self.platform.emit(Event::StoreError {
            url,
            message: &message,
        });
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
            retry: self.options.config.retry.as_ref(),
            keyed: self.options.dedupe || self.cache.is_some(),
            namespace: self
                .cache
                .as_ref()
                .map_or("", |c| c.options.namespace.as_str()),
            count_tokens: self
                .options
                .config
                .rate_limit
                .as_ref()
                .is_some_and(|(limit, _)| limit.tokens_per_minute.is_some()),
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
        let config = self.engine.config();
        let call = CallSpec {
            request: prepared.request,
            url: prepared.url,
            origin: prepared.origin,
            rate_key: prepared.policy.rate_limit_key,
            timeout: Timeouts::overridden_by(config.timeout, &prepared.policy.timeout),
            retry: prepared
                .policy
                .retry
                .unwrap_or_else(|| config.retry.clone()),
            tokens: prepared.tokens,
        };
        let work = async {
            match shared {
                Some((flights, key)) => {
                    self.engine
                        .execute_shared(platform, flights, &call, key)
                        .await
                }
                None => self.engine.execute(platform, &call).await,
            }
        };
        let result = match &prepared.signal {
            None => work.await,
            Some(signal) => {
                if signal.aborted() {
                    return Err(abort_error(&signal.reason()));
                }
                let (aborted, unsubscribe) = abort_future(signal);
                let outcome = race(work, aborted).await;
                unsubscribe();
                match outcome {
                    Either::Left(result) => result,
                    Either::Right(_) => return Err(abort_error(&signal.reason())),
                }
            }
        };
        result.map_err(|failure| failure_to_js(&failure))
    }
}

impl Inner {
    /// Corrects the tokens-per-minute charge with the `usage` of a JSON response, read from a copy
    /// in the background (the caller's body is untouched). Without usage, the estimate stands.
    fn settle_from_usage(self: &Rc<Self>, response: &Response, ticket: TokenTicket) {
        let is_json = response
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|t| t.contains("json"));
        if !is_json || !response.ok() {
            return;
        }
        let Ok(copy) = Response::clone(response) else {
            return;
        };
        let inner = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(promise) = copy.json() else { return };
            let Ok(body) = JsFuture::from(promise).await else {
                return;
            };
            if let Some(tokens) = usage_tokens(&get(&body, "usage")) {
                inner
                    .engine
                    .settle_tokens(ticket, tokens, inner.platform_now());
            }
        });
    }
}

/// Total tokens from an OpenAI (`total_tokens`, or prompt + completion) or Anthropic (input + output)
/// `usage` object.
fn usage_tokens(usage: &JsValue) -> Option<u64> {
    let count = |key: &str| get(usage, key).as_f64().filter(|n| *n >= 0.0);
    let total = count("total_tokens")
        .or_else(|| Some(count("prompt_tokens")? + count("completion_tokens")?))
        .or_else(|| Some(count("input_tokens")? + count("output_tokens")?))?;
    Some(total as u64)
}

/// The answer to `only-if-cached` on a miss: a 504, as the fetch Cache API gives.
pub(crate) fn gateway_timeout() -> Result<Response, JsValue> {
    let init = web_sys::ResponseInit::new();
    init.set_status(504);
    init.set_status_text("Gateway Timeout");
    let headers = web_sys::Headers::new()?;
    headers.set("x-cache", "MISS")?;
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(None, &init)
}

/// All headers of a response, as (name, value) pairs.
pub(crate) fn response_headers(response: &Response) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(Some(entries)) = js_sys::try_iter(&response.headers()) {
        for pair in entries.flatten() {
            let pair: js_sys::Array = pair.unchecked_into();
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.push((name, value));
            }
        }
    }
    out
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
        }
    };
    (JsFuture::from(promise), unsubscribe)
}
