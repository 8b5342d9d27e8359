//! The response cache for JS: the core's in-memory LRU, the IndexedDB store, or any user `CacheStore`
//! object (Workers KV, the Cache API, Redis over HTTP...). A store that fails, does not answer in
//! time or hands back an entry that could not have been stored is reported with an `error` event
//! and treated as a miss: a cache never fails a request (see `core::cache::store`).
//!
//! An entry is written once its body has arrived, after the caller got the response: a lookup of a key
//! whose write is under way waits for it (within the store's bound), so that an identical call made
//! in that gap is answered from the cache rather than sent upstream again.

use crate::core::cache::memory::{Entry, Freshness, MemoryStore};
use crate::core::cache::{checked_entry, RawEntry};
use crate::core::semantic::SemanticConfig;
use crate::core::stats::CacheStats;
use crate::wasm::js::{get, ObjectBuilder};
use js_sys::{Array, Map, Promise, Uint8Array};
use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Response};

#[wasm_bindgen(module = "/src/wasm/indexeddb.js")]
extern "C" {
    /// The IndexedDB store (see indexeddb.js).
    pub type IndexedDbStore;
    #[wasm_bindgen(constructor)]
    fn new(name: &str) -> IndexedDbStore;
}

#[wasm_bindgen(module = "/src/wasm/cache.js")]
extern "C" {
    /// Every header of a `HeadersInit`, packed; `None` if it is invalid (see cache.js).
    #[wasm_bindgen(js_name = keyHeaders, catch)]
    pub fn key_headers(init: &JsValue) -> Result<Option<String>, JsValue>;
    /// `store[method](...args)`, settled within `ms` or when `signal` aborts (see cache.js).
    #[wasm_bindgen(js_name = callStore)]
    fn call_store(
        store: &JsValue,
        method: &str,
        args: &Array,
        ms: f64,
        signal: Option<&AbortSignal>,
    ) -> Promise;
    /// A stored entry's fields, or what is wrong with it (see cache.js).
    #[wasm_bindgen(js_name = readEntry)]
    fn read_entry(value: &JsValue, max_bytes: f64) -> JsValue;
    /// The same response with `x-cache: MISS` added, its body ending only once `stored` settles
    /// when given (see cache.js).
    #[wasm_bindgen(js_name = markMiss, catch)]
    pub fn mark_miss(response: &Response, stored: Option<&Promise>) -> Result<Response, JsValue>;
    /// Notes `done` in `writes` as the write of `key` under way until it settles (see cache.js).
    #[wasm_bindgen(js_name = beginWrite)]
    fn begin_write(writes: &Map, key: &str, done: &Promise);
    /// The wait for the write of `key` under way, if any, at most `ms` and until `signal` aborts
    /// (see cache.js).
    #[wasm_bindgen(js_name = joinWrite)]
    fn join_write(
        writes: &Map,
        key: &str,
        ms: f64,
        signal: Option<&AbortSignal>,
    ) -> Option<Promise>;
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
    /// The longest wait for a store call (custom stores and IndexedDB).
    pub timeout_ms: u64,
    /// The semantic cache, when enabled (it lives in memory, whatever the store).
    pub semantic: Option<SemanticConfig>,
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
    /// Writes under way: key -> the promise that settles when the write is done.
    writes: Map,
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
            writes: Map::new(),
        }
    }

    /// Notes a write of `key` under way until `done` (which never rejects) settles.
    pub fn begin_write(&self, key: &str, done: &Promise) {
        begin_write(&self.writes, key, done);
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

    /// Looks `key` up, waiting for a store at most `wait_ms` and until `signal` aborts. A store error
    /// (a failure, no answer in time, an invalid entry; or the signal's reason) is returned for the
    /// caller to report; it counts as a miss. With `join`, a write of `key` under way is waited for
    /// first, within the same bound (a write that takes longer leaves a miss).
    pub async fn lookup(
        &self,
        key: &str,
        now_ms: u64,
        wait_ms: u64,
        signal: Option<&AbortSignal>,
        join: bool,
    ) -> Result<Option<Hit>, JsValue> {
        let write = join.then(|| join_write(&self.writes, key, wait_ms as f64, signal));
        let mut wait_ms = wait_ms;
        if let Some(write) = write.flatten() {
            let started = js_sys::Date::now();
            JsFuture::from(write).await?;
            // The store's answer and this wait share one bound.
            wait_ms = wait_ms.saturating_sub((js_sys::Date::now() - started) as u64);
        }
        let found = match &self.store {
            Store::Memory(memory) => {
                Ok(memory
                    .borrow_mut()
                    .get(key, now_ms)
                    .map(|(entry, freshness)| Hit {
                        entry: entry.clone(),
                        freshness,
                    }))
            }
            Store::Js(store) => {
                let value = bounded(store, "get", &[key.into()], wait_ms, signal).await;
                value.and_then(|value| self.js_hit(&value, now_ms))
            }
        };
        self.count(&found);
        found
    }

    /// Looks each of `keys` up as [`Self::lookup`] does (without waiting for writes under way),
    /// a JS store's calls all started at once rather than one after the other: a thousand texts
    /// to embed must not take a thousand round trips to IndexedDB or KV.
    pub async fn lookup_many(
        &self,
        keys: &[String],
        now_ms: u64,
        wait_ms: u64,
        signal: Option<&AbortSignal>,
    ) -> Vec<Result<Option<Hit>, JsValue>> {
        let store = match &self.store {
            Store::Js(store) => store,
            Store::Memory(_) => {
                let mut found = Vec::with_capacity(keys.len());
                for key in keys {
                    found.push(self.lookup(key, now_ms, wait_ms, signal, false).await);
                }
                return found;
            }
        };
        let started: Vec<Promise> = keys
            .iter()
            .map(|key| {
                let args = Array::of1(&key.into());
                call_store(store, "get", &args, wait_ms as f64, signal)
            })
            .collect();
        let mut found = Vec::with_capacity(keys.len());
        for promise in started {
            let hit = JsFuture::from(promise)
                .await
                .and_then(|value| self.js_hit(&value, now_ms));
            self.count(&hit);
            found.push(hit);
        }
        found
    }

    /// Counts a lookup: a hit when it found a fresh entry, a miss otherwise.
    fn count(&self, found: &Result<Option<Hit>, JsValue>) {
        let fresh = matches!(
            found,
            Ok(Some(Hit {
                freshness: Freshness::Fresh,
                ..
            }))
        );
        let counter = if fresh { &self.hits } else { &self.misses };
        counter.set(counter.get() + 1);
    }

    /// What a JS store's `get` answered, as a hit (or a miss, or what is wrong with it).
    fn js_hit(&self, value: &JsValue, now_ms: u64) -> Result<Option<Hit>, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let entry = entry_from_js(value, self.options.max_bytes)
            .map_err(|problem| JsValue::from(js_sys::Error::new(&problem)))?;
        let freshness = if now_ms < entry.fresh_until_ms {
            Freshness::Fresh
        } else if now_ms < entry.stale_until_ms {
            Freshness::Stale
        } else {
            return Ok(None);
        };
        Ok(Some(Hit { entry, freshness }))
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
                let args = [key.into(), entry_to_js(&entry), ttl.into()];
                bounded(store, "put", &args, self.options.timeout_ms, None)
                    .await
                    .map(drop)
            }
        }
    }

    /// Stores each entry as [`Self::put`] does, a JS store's calls all started at once; the
    /// errors of those that failed.
    pub async fn put_many(&self, entries: Vec<(&str, Entry)>, now_ms: u64) -> Vec<JsValue> {
        let store = match &self.store {
            Store::Js(store) => store,
            Store::Memory(memory) => {
                let mut memory = memory.borrow_mut();
                for (key, entry) in entries {
                    memory.put(key.to_string(), entry, now_ms);
                }
                return Vec::new();
            }
        };
        let started: Vec<Promise> = entries
            .into_iter()
            .map(|(key, entry)| {
                let ttl = entry.stale_until_ms.saturating_sub(now_ms) as f64;
                let args = Array::of3(&key.into(), &entry_to_js(&entry), &ttl.into());
                call_store(store, "put", &args, self.options.timeout_ms as f64, None)
            })
            .collect();
        let mut errors = Vec::new();
        for promise in started {
            if let Err(error) = JsFuture::from(promise).await {
                errors.push(error);
            }
        }
        errors
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
                    bounded(store, "clear", &[], self.options.timeout_ms, None).await?;
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

/// `store[method](...args)`, given up after `ms` or when `signal` aborts: a `CacheStoreError` when
/// it throws, rejects or does not settle in time, the signal's reason when it aborts.
async fn bounded(
    store: &JsValue,
    method: &str,
    args: &[JsValue],
    ms: u64,
    signal: Option<&AbortSignal>,
) -> Result<JsValue, JsValue> {
    let args: Array = args.iter().collect();
    JsFuture::from(call_store(store, method, &args, ms as f64, signal)).await
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

/// A stored entry from a JS store, if it has the documented shape and could have been stored.
fn entry_from_js(value: &JsValue, max_bytes: usize) -> Result<Entry, String> {
    let fields = read_entry(value, max_bytes as f64);
    if let Some(problem) = fields.as_string() {
        return Err(problem);
    }
    let fields: Array = fields.unchecked_into();
    let number = |i: u32| fields.get(i).as_f64().unwrap_or(f64::NAN);
    let packed = fields.get(1).as_string().unwrap_or_default();
    let mut parts = packed.split_terminator('\r');
    let mut headers = Vec::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        headers.push((name.to_string(), value.to_string()));
    }
    checked_entry(RawEntry {
        status: number(0),
        headers,
        body: fields.get(2).unchecked_into::<Uint8Array>().to_vec(),
        times: [number(3), number(4), number(5)],
    })
    .map_err(str::to_string)
}

/// A `Response` replaying a stored entry, marked `x-cache: HIT|STALE` with its `Age`. (No header
/// holds a CR: responses cannot, and `readEntry` refuses store entries with one.)
pub fn response_from(entry: &Entry, label: &str, now_ms: u64) -> Result<Response, JsValue> {
    let mut packed = String::new();
    for (name, value) in &entry.headers {
        packed.extend([name.as_str(), "\r", value.as_str(), "\r"]);
    }
    let age = now_ms.saturating_sub(entry.stored_at_ms) / 1000;
    replay(entry.status, &packed, &entry.body, label, age as u32)
}
