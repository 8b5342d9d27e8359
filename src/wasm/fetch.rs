//! `client.fetch`: dedupe, the response cache (hit, miss, stale-if-error, background store), then the
//! pipeline; and the corrections made after a response (tokens-per-minute usage). The bodies read
//! here (to store, for usage) are copies read within `limits.maxResponseBytes`: a longer one is not
//! stored, or not read for usage. The caller's own body is never bounded: the caller reads it.

use crate::core::cache::{
    cache_first, lookup_wait_ms, response_storable, serves_stale, storable_headers, CacheFirst,
};
use crate::core::config::CacheMode;
use crate::core::event::Event;
use crate::core::llm::provider::usage_total;
use crate::core::pipeline::{JoinableCalls, TokenTicket};
use crate::core::platform::Platform;
use crate::core::text;
use crate::wasm::abort::is_aborted;
use crate::wasm::answer::JsResponse;
use crate::wasm::body::{read_within, Past};
use crate::wasm::cache::{mark_miss, response_from, Cache, Hit, StoreChoice};
use crate::wasm::errors::abort_error;
use crate::wasm::inner::Inner;
use crate::wasm::js::{abort_reason, get, promise, set};
use crate::wasm::reader::unreadable;
use crate::wasm::request::Prepared;
use js_sys::{Function, Promise};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

/// What `client.fetch` hands back: the response, and how it was obtained.
pub struct FetchResponse {
    /// The response handed to the caller.
    pub response: Response,
    /// Attempts made (0 when the cache answered).
    pub attempts: u32,
    /// Answered from the cache.
    pub cached: bool,
}

impl FetchResponse {
    fn cached(response: Response) -> Result<FetchResponse, JsValue> {
        Ok(FetchResponse {
            response,
            attempts: 0,
            cached: true,
        })
    }
}

impl Inner {
    /// `client.fetch`.
    pub(crate) async fn fetch(
        self: &Rc<Self>,
        input: JsValue,
        init: JsValue,
    ) -> Result<JsValue, JsValue> {
        let prepared = self.prepare(input, init).await?;
        Ok(self.fetch_prepared(prepared).await?.response.into())
    }

    /// A prepared request through dedupe, the cache and the pipeline.
    pub(crate) async fn fetch_prepared(
        self: &Rc<Self>,
        prepared: Prepared,
    ) -> Result<FetchResponse, JsValue> {
        let key = prepared.key.clone();
        let cache = self.cache.as_ref().zip(key.as_deref());
        let Some((cache, key)) = cache.filter(|_| prepared.policy.cache != CacheMode::Bypass)
        else {
            return self
                .fetch_upstream(prepared, self.joinable(key.as_deref()))
                .await;
        };
        let url = prepared.url.clone();
        let wait_until = prepared.policy.wait_until.clone();
        // A body the memory store cannot hold is not read at all.
        let store_max = match cache.options.store {
            StoreChoice::Memory => cache.options.max_bytes,
            _ => usize::MAX,
        }
        .min(
            self.options
                .limits
                .overridden_by(&prepared.policy.limits)
                .max_response_bytes,
        );
        let now = self.platform.wall_ms();
        let found = self.look_up(cache, &prepared, key, now).await?;
        let found = found.map(|hit| (hit.entry, hit.freshness));
        let upstream = match cache_first(&self.platform, &url, prepared.policy.cache, found) {
            CacheFirst::Hit(entry) => {
                return FetchResponse::cached(response_from(&entry, "HIT", now)?)
            }
            CacheFirst::Unsatisfiable => return FetchResponse::cached(gateway_timeout()?),
            CacheFirst::Upstream(upstream) => upstream,
        };
        let signal = prepared.signal.clone();
        let outcome = self
            .fetch_upstream(prepared, self.joinable(Some(key)))
            .await;
        let upstream_outcome = outcome.as_ref().map(|fetched| &fetched.response);
        let failed = upstream_failed(upstream_outcome, is_aborted(signal.as_ref()));
        if let Some(entry) = upstream.stale_if_error(&self.platform, &url, failed) {
            let stale = response_from(&entry, "STALE", self.platform.wall_ms())?;
            return FetchResponse::cached(stale);
        }
        let mut fetched = outcome?;
        let response = &fetched.response;
        let cache_control = response.headers().get("cache-control").ok().flatten();
        let stored = response_storable(response.status(), cache_control.as_deref())
            .then(|| {
                self.store_in_background(&url, key, response, (store_max, wait_until.as_ref()))
            })
            .flatten();
        // A memory write is done as soon as the body is in: the caller's body ends after it, so its
        // next identical call is a hit. (A write to another store may take as long as the store
        // does: the caller is not held up by it; an identical call waits for it in `look_up`.)
        let hold = stored.filter(|_| matches!(cache.options.store, StoreChoice::Memory));
        fetched.response = mark_miss(response, hold.as_ref())?;
        Ok(fetched)
    }

    /// The in-flight calls a keyed request may join: none with `dedupe` off.
    fn joinable<'a>(
        &'a self,
        key: Option<&'a str>,
    ) -> Option<(&'a JoinableCalls<JsResponse>, &'a str)> {
        key.filter(|_| self.options.dedupe)
            .map(|key| (&self.in_flight, key))
    }

    /// The pipeline's answer for a prepared request (with dedupe when `joinable`).
    async fn fetch_upstream(
        self: &Rc<Self>,
        mut prepared: Prepared,
        joinable: Option<(&JoinableCalls<JsResponse>, &str)>,
    ) -> Result<FetchResponse, JsValue> {
        // A joined call's body is read by every caller that joined it: one caller's abort must cut
        // only its own copy, not the fetch.
        let own_signal = match joinable {
            Some(_) => prepared.request.signal.take(),
            None => None,
        };
        let max_usage_body = self
            .options
            .limits
            .overridden_by(&prepared.policy.limits)
            .max_response_bytes;
        let delivered = self.call(prepared, joinable).await?;
        let mut response = delivered.response.response;
        if let Some(signal) = own_signal {
            response = abortable(&response, &signal)
                .map_err(|thrown| unreadable("init.signal", &thrown))?;
        }
        if let Some(ms) = delivered.retry_after_ms {
            set(&response, "retryAfterMs", &(ms as f64).into());
        }
        if let Some(ticket) = delivered.tokens {
            self.settle_from_usage(&response, ticket, max_usage_body);
        }
        Ok(FetchResponse {
            response,
            attempts: delivered.attempts,
            cached: false,
        })
    }

    /// Stores a copy of the response body once it has arrived, without holding up the caller; a
    /// body longer than `max` bytes is not stored (nor read past `max`). The promise of the write.
    fn store_in_background(
        self: &Rc<Self>,
        url: &str,
        key: &str,
        response: &Response,
        (max, wait_until): (usize, Option<&Function>),
    ) -> Option<Promise> {
        let copy = Response::clone(response).ok()?;
        let body = async move { Some(read_within(&copy, max, Past::Nothing).await.ok()??.copy()) };
        let head = (response.status(), response_headers(response));
        Some(self.write_later(url, key, head, body, wait_until))
    }

    /// Stores an entry once `body` resolves (`None`: the body failed, nothing is stored). The work
    /// runs in the background; `wait_until` (a Worker's `ctx.waitUntil`) keeps it alive past the
    /// response. Until it is done, a lookup of `key` may wait for it ([`Cache::begin_write`]).
    pub(crate) fn store_later(
        self: &Rc<Self>,
        url: &str,
        key: &str,
        head: (u16, Vec<(String, String)>),
        body: impl std::future::Future<Output = Option<Vec<u8>>> + 'static,
        wait_until: Option<&Function>,
    ) {
        let _write = self.write_later(url, key, head, body, wait_until);
    }

    /// [`Self::store_later`], and the promise of the write (which never rejects).
    fn write_later(
        self: &Rc<Self>,
        url: &str,
        key: &str,
        (status, headers): (u16, Vec<(String, String)>),
        body: impl std::future::Future<Output = Option<Vec<u8>>> + 'static,
        wait_until: Option<&Function>,
    ) -> Promise {
        let (inner, url, owned_key) = (self.clone(), url.to_string(), key.to_string());
        let task = promise(async move {
            let (Some(cache), Some(body)) = (&inner.cache, body.await) else {
                return Ok(JsValue::UNDEFINED);
            };
            let now = inner.platform.wall_ms();
            let entry = cache.entry(status, storable_headers(&headers), body, now);
            match cache.put(&owned_key, entry, now).await {
                Ok(()) => inner.platform.emit(Event::Cache {
                    url: &url,
                    result: "store",
                }),
                Err(error) => inner.store_error(&url, &error),
            }
            Ok(JsValue::UNDEFINED)
        });
        if let Some(cache) = &self.cache {
            cache.begin_write(key, &task);
        }
        if let Some(wait_until) = wait_until {
            let _ = wait_until.call1(&JsValue::NULL, &task);
        }
        task
    }

    /// `key`'s entry in `cache`. A store that fails, does not answer within `cache.timeoutMs` and half
    /// of what is left of the call's total deadline, or gives an invalid entry, is reported and is a
    /// miss.
    ///
    /// # Errors
    /// The caller's AbortError when its signal cuts the wait.
    pub(crate) async fn look_up(
        &self,
        cache: &Cache,
        prepared: &Prepared,
        key: &str,
        now: u64,
    ) -> Result<Option<Hit>, JsValue> {
        let left = prepared.timeout.total_ms.map(|total| {
            let spent = self.platform.now_ms().saturating_sub(prepared.started_ms);
            total.saturating_sub(spent)
        });
        let wait = lookup_wait_ms(cache.options.timeout_ms, left);
        let signal = prepared.signal.as_ref();
        let join = self.options.dedupe; // waiting on another call's write is sharing it
        let error = match cache.lookup(key, now, wait, signal, join).await {
            Ok(found) => return Ok(found),
            Err(error) => error,
        };
        match signal.and_then(abort_reason) {
            Some(reason) => Err(abort_error(&reason)),
            None => {
                self.store_error(&prepared.url, &error);
                Ok(None)
            }
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

    /// Corrects the tokens-per-minute charge with the `usage` of a JSON response, read from a copy
    /// in the background (the caller's body is untouched). Without usage (or past `max` bytes), the
    /// estimate stands.
    fn settle_from_usage(self: &Rc<Self>, response: &Response, ticket: TokenTicket, max: usize) {
        let is_json = response
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|t| text::contains(&t, "json"));
        if !is_json || !response.ok() {
            return;
        }
        let Ok(copy) = Response::clone(response) else {
            return;
        };
        let inner = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(Some(chunks)) = read_within(&copy, max, Past::Nothing).await else {
                return;
            };
            let Ok(promise) = chunks.json() else { return };
            let Ok(body) = JsFuture::from(promise).await else {
                return;
            };
            // Only the `usage` member crosses into wasm, as JSON text: the body may be megabytes.
            let usage = js_sys::JSON::stringify(&get(&body, "usage")).ok();
            if let Some(tokens) = usage
                .and_then(|u| u.as_string())
                .and_then(|u| usage_total(&u))
            {
                inner
                    .engine
                    .settle_tokens(ticket, tokens, inner.platform_now());
            }
        });
    }
}

#[wasm_bindgen(inline_js = "export function abortable(response, signal) {
  if (!response.body) return response;
  // A signal of our own that follows the caller's: the pipe then never calls the caller's methods.
  signal = AbortSignal.any?.([signal]) ?? signal;
  return new Response(response.body.pipeThrough(new TransformStream(), { signal }), response);
}")]
extern "C" {
    /// `response` with a body that `signal` errors (with its reason, as fetch does) without
    /// cancelling the copies other callers read. `Err` when the caller's signal is not one (a
    /// Proxy of one, in runtimes that check).
    #[wasm_bindgen(catch)]
    fn abortable(response: &Response, signal: &web_sys::AbortSignal) -> Result<Response, JsValue>;
}

/// Whether the upstream's outcome is a failure a stale entry may stand in for ([`serves_stale`]):
/// a 5xx, or no response, but not the caller's own abort.
pub(crate) fn upstream_failed(upstream: Result<&Response, &JsValue>, aborted: bool) -> bool {
    match upstream {
        Ok(response) => serves_stale(Some(response.status()), false),
        Err(_) => serves_stale(None, aborted),
    }
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
