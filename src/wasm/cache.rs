//! The response cache for JS: the core's in-memory LRU, the IndexedDB store, or any user `CacheStore`
//! object (Workers KV, the Cache API, Redis over HTTP...). A store that fails is reported with an
//! `error` event and treated as a miss: a cache never fails a request.

use crate::core::cache::memory::{Entry, Freshness, MemoryStore};
use crate::core::stats::CacheStats;
use crate::wasm::js::{get, ObjectBuilder};
use js_sys::{Array, Function, Promise, Uint8Array};
use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Response, ResponseInit};

#[wasm_bindgen(module = "/src/wasm/indexeddb.js")]
extern "C" {
    /// The IndexedDB store (see indexeddb.js).
    pub type IndexedDbStore;
    #[wasm_bindgen(constructor)]
    fn new(name: &str) -> IndexedDbStore;
}

#[wasm_bindgen(module = "/src/wasm/cache.js")]
extern "C" {
    /// The Cache-Control and credential headers of a `HeadersInit`, packed (see cache.js).
    #[wasm_bindgen(js_name = keyHeaders, catch)]
    pub fn key_headers(init: &JsValue) -> Result<String, JsValue>;
    /// `new Response(body, ...)` with the packed headers, `x-cache` and `age` (see cache.js).
    #[wasm_bindgen(catch)]
    fn replay(
        status: u16,
        packed: &str,
        body: &[u8],
        label: &str,
        age: u32,
    ) -> Result<Response, JsValue>;
}

/// Cache settings, parsed from `options.cache`.
pub struct CacheOptions {
    /// Where entries live.
    pub store: StoreChoice,
    /// How long an entry is fresh.
    pub ttl_ms: u64,
    /// How long past freshness an entry may still answer when the upstream fails.
    pub stale_if_error_ms: u64,
    /// Memory store bound: entries.
    pub max_entries: usize,
    /// Memory store bound: bytes.
    pub max_bytes: usize,
    /// Separates caches sharing one store.
    pub namespace: String,
}

/// `cache.store`.
pub enum StoreChoice {
    /// The in-memory LRU.
    Memory,
    /// IndexedDB (browsers).
    IndexedDb,
    /// A user object with `get`, `put`, `delete` (and optionally `clear`).
    Custom(JsValue),
}

enum Store {
    Memory(RefCell<MemoryStore>),
    Js(JsValue),
}

/// What a lookup found.
pub struct Hit {
    /// The stored entry.
    pub entry: Entry,
    /// Fresh, or only good for stale-if-error.
    pub freshness: Freshness,
}

/// The client's cache.
pub struct Cache {
    store: Store,
    /// Settings.
    pub options: CacheOptions,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl Cache {
    /// A cache on the chosen store.
    pub fn new(options: CacheOptions) -> Cache {
        let store = match &options.store {
            StoreChoice::Memory => Store::Memory(RefCell::new(MemoryStore::new(
                options.max_entries,
                options.max_bytes,
            ))),
            StoreChoice::IndexedDb => Store::Js(
                IndexedDbStore::new(&format!("resilient-llm:{}", options.namespace)).into(),
            ),
            StoreChoice::Custom(object) => Store::Js(object.clone()),
        };
        Cache {
            store,
            options,
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// An entry stored now, fresh for `ttlMs`, servable on upstream failure `staleIfErrorMs` longer.
    pub fn entry(
        &self,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Entry {
        let fresh_until_ms = now_ms.saturating_add(self.options.ttl_ms);
        Entry {
            status,
            headers,
            body,
            stored_at_ms: now_ms,
            fresh_until_ms,
            stale_until_ms: fresh_until_ms.saturating_add(self.options.stale_if_error_ms),
        }
    }

    /// Looks `key` up. A store error is returned for the caller to report; it counts as a miss.
    pub async fn lookup(&self, key: &str, now_ms: u64) -> Result<Option<Hit>, JsValue> {
        let found = match &self.store {
            Store::Memory(memory) => {
                memory
                    .borrow_mut()
                    .get(key, now_ms)
                    .map(|(entry, freshness)| Hit {
                        entry: entry.clone(),
                        freshness,
                    })
            }
            Store::Js(store) => {
                let value = call_store(store, "get", &[key.into()]).await?;
                entry_from_js(&value).and_then(|entry| {
                    let freshness = if now_ms < entry.fresh_until_ms {
                        Freshness::Fresh
                    } else if now_ms < entry.stale_until_ms {
                        Freshness::Stale
                    } else {
                        return None;
                    };
                    Some(Hit { entry, freshness })
                })
            }
        };
        let fresh = matches!(
            &found,
            Some(Hit {
                freshness: Freshness::Fresh,
                ..
            })
        );
        let counter = if fresh { &self.hits } else { &self.misses };
        counter.set(counter.get() + 1);
        Ok(found)
    }

    /// Stores an entry.
    pub async fn put(&self, key: &str, entry: Entry, now_ms: u64) -> Result<(), JsValue> {
        match &self.store {
            Store::Memory(memory) => {
                memory.borrow_mut().put(key.to_string(), entry, now_ms);
                Ok(())
            }
            Store::Js(store) => {
                let ttl = entry.stale_until_ms.saturating_sub(now_ms) as f64;
                let value = entry_to_js(&entry);
                call_store(store, "put", &[key.into(), value, ttl.into()])
                    .await
                    .map(drop)
            }
        }
    }

    /// Empties the store (`clearCache()`).
    pub async fn clear(&self) -> Result<(), JsValue> {
        match &self.store {
            Store::Memory(memory) => {
                memory.borrow_mut().clear();
                Ok(())
            }
            Store::Js(store) => {
                if get(store, "clear").is_function() {
                    call_store(store, "clear", &[]).await?;
                }
                Ok(())
            }
        }
    }

    /// Hits, misses, and entries (known for the memory store only).
    pub fn counts(&self) -> CacheStats {
        let entries = match &self.store {
            Store::Memory(memory) => memory.borrow().len() as u64,
            Store::Js(_) => 0,
        };
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            entries,
        }
    }
}

/// Calls `store[method](...args)` and awaits the result if it is a promise.
async fn call_store(store: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let function: Function = get(store, method)
        .dyn_into()
        .map_err(|_| js_sys::TypeError::new(&format!("cache.store has no {method}() method")))?;
    let result = function.apply(store, &args.iter().collect::<Array>())?;
    match result.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await,
        Err(value) => Ok(value),
    }
}

fn entry_to_js(entry: &Entry) -> JsValue {
    let headers = Array::new();
    for (name, value) in &entry.headers {
        headers.push(&Array::of2(&name.into(), &value.into()));
    }
    ObjectBuilder::new()
        .num("status", entry.status)
        .value("headers", &headers)
        .value("body", &Uint8Array::from(entry.body.as_slice()))
        .num("storedAt", entry.stored_at_ms as f64)
        .num("freshUntil", entry.fresh_until_ms as f64)
        .num("staleUntil", entry.stale_until_ms as f64)
        .build()
}

/// A stored entry from a JS store; `None` for anything malformed (treated as a miss).
fn entry_from_js(value: &JsValue) -> Option<Entry> {
    if !value.is_object() {
        return None;
    }
    let number = |key: &str| get(value, key).as_f64().filter(|n| *n >= 0.0);
    let body = get(value, "body");
    let body = if let Some(bytes) = body.dyn_ref::<Uint8Array>() {
        bytes.to_vec()
    } else if let Some(buffer) = body.dyn_ref::<js_sys::ArrayBuffer>() {
        Uint8Array::new(buffer).to_vec()
    } else {
        return None;
    };
    let mut headers = Vec::new();
    for pair in get(value, "headers").dyn_ref::<Array>()?.iter() {
        let pair = pair.dyn_ref::<Array>()?.clone();
        headers.push((pair.get(0).as_string()?, pair.get(1).as_string()?));
    }
    Some(Entry {
        status: u16::try_from(number("status")? as u64).ok()?,
        headers,
        body,
        stored_at_ms: number("storedAt")? as u64,
        fresh_until_ms: number("freshUntil")? as u64,
        stale_until_ms: number("staleUntil")? as u64,
    })
}

/// A `Response` replaying a stored entry, marked `x-cache: HIT|STALE` with its `Age`. A header
/// holding a CR (which no platform accepts, so only a malformed custom-store entry has one) is dropped.
pub fn response_from(entry: &Entry, label: &str, now_ms: u64) -> Result<Response, JsValue> {
    let mut packed = String::new();
    let plain = |text: &str| !text.contains('\r');
    for (name, value) in entry.headers.iter().filter(|(n, v)| plain(n) && plain(v)) {
        packed.extend([name.as_str(), "\r", value.as_str(), "\r"]);
    }
    let age = now_ms.saturating_sub(entry.stored_at_ms) / 1000;
    replay(entry.status, &packed, &entry.body, label, age as u32)
}

/// The same response with `x-cache: MISS` added (fetched headers are immutable, so it is re-wrapped
/// around the same body stream).
pub fn mark_miss(response: &Response) -> Result<Response, JsValue> {
    let headers = Headers::new_with_headers(&response.headers())?;
    headers.set("x-cache", "MISS")?;
    let init = ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&headers);
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
}
