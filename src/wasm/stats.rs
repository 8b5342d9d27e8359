//! `stats()` and `metrics()` for JS.

use crate::core::hedge::FirstTokens;
use crate::core::llm::{CostTally, Spend};
use crate::core::metrics::{hedges, learned_limits, prometheus};
use crate::core::pipeline::Engine;
use crate::wasm::cache::Cache;
use crate::wasm::js::ObjectBuilder;
use wasm_bindgen::prelude::*;

/// The client's own bucket level; none with shared state, whose bucket lives in the store.
fn rate_level(engine: &Engine, shared: bool, now_ms: u64) -> Option<(f64, f64)> {
    (!shared).then(|| engine.rate_level(now_ms)).flatten()
}

/// The `ClientStats` object of the API (`shared`: breakers and buckets live in a shared store).
pub fn stats_to_js(
    engine: &Engine,
    shared: bool,
    cache: Option<&Cache>,
    costs: &CostTally,
    first_tokens: &FirstTokens,
    now_ms: u64,
) -> JsValue {
    let stats = engine.stats();
    let breakers = js_sys::Array::new();
    for view in engine.breakers(now_ms) {
        breakers.push(
            &ObjectBuilder::new()
                .str("key", &view.key)
                .str("state", view.state.as_str())
                .num("failures", view.failures)
                .build(),
        );
    }
    let rate_limit = match rate_level(engine, shared, now_ms) {
        Some((tokens, capacity)) => ObjectBuilder::new()
            .num("tokens", tokens)
            .num("capacity", capacity)
            .build(),
        None => JsValue::NULL,
    };
    let p = stats.percentiles();
    let counts = cache.map(Cache::counts).unwrap_or_default();
    let cache = ObjectBuilder::new()
        .num("hits", counts.hits as f64)
        .num("misses", counts.misses as f64)
        .num("entries", counts.entries as f64)
        .num("hitRate", counts.hit_rate_per_mille() as f64 / 1000.0)
        .build();
    ObjectBuilder::new()
        .num("requests", stats.requests as f64)
        .num("successes", stats.successes as f64)
        .num("failures", stats.failures as f64)
        .num("retries", stats.retries as f64)
        .num("deduplicated", stats.deduplicated as f64)
        .value(
            "rejected",
            &ObjectBuilder::new()
                .num("breaker", stats.rejected_breaker as f64)
                .num("rateLimit", stats.rejected_rate_limit as f64)
                .num("budget", stats.rejected_budget as f64)
                .build(),
        )
        .value("cache", &cache)
        .value("breakers", &breakers)
        .value("rateLimit", &rate_limit)
        .value("learnedLimits", &learned_to_js(engine, now_ms))
        .value(
            "latencyMs",
            &ObjectBuilder::new()
                .num("p50", p.p50 as f64)
                .num("p95", p.p95 as f64)
                .num("p99", p.p99 as f64)
                .build(),
        )
        .value("usage", &spend_to_js(&costs.total()))
        .value(
            "hedges",
            &ObjectBuilder::new()
                .num("started", first_tokens.started as f64)
                .num("won", first_tokens.won as f64)
                .build(),
        )
        .value(
            "memory",
            // wasm memory only grows: this is the high-water mark of what the client held at once.
            &ObjectBuilder::new()
                .num(
                    "wasmBytes",
                    (core::arch::wasm32::memory_size(0) * 65536) as f64,
                )
                .build(),
        )
        .value(
            "costs",
            &ObjectBuilder::new()
                .value("byModel", &lines_to_js("model", costs.by_model()))
                .value("byUser", &lines_to_js("user", costs.by_user()))
                .build(),
        )
        .build()
}

/// `[{ key, remainingRequests, remainingTokens, resetInMs }]`: what the providers said is left
/// (null when they did not say, or it is refilled since).
fn learned_to_js(engine: &Engine, now_ms: u64) -> js_sys::Array {
    let count = |n: Option<u64>| n.map_or(JsValue::NULL, |n| (n as f64).into());
    engine
        .learned_limits(now_ms)
        .into_iter()
        .map(|view| {
            ObjectBuilder::new()
                .str("key", &view.key)
                .value("remainingRequests", &count(view.remaining_requests))
                .value("remainingTokens", &count(view.remaining_tokens))
                .num("resetInMs", view.reset_in_ms as f64)
                .build()
        })
        .collect()
}

/// `{ inputTokens, outputTokens, cachedInputTokens, cacheWriteTokens, costUsd, cacheSavedUsd }`.
fn spend_to_js(spend: &Spend) -> JsValue {
    let usage = &spend.usage;
    ObjectBuilder::new()
        .num("inputTokens", usage.input_tokens as f64)
        .num("outputTokens", usage.output_tokens as f64)
        .num("cachedInputTokens", usage.cached_input_tokens as f64)
        .num("cacheWriteTokens", usage.cache_write_tokens as f64)
        .num("costUsd", spend.micros as f64 / 1e6)
        .num("cacheSavedUsd", spend.saved_micros as f64 / 1e6)
        .build()
}

/// `[{ model|user, ...spend }]`.
fn lines_to_js(label: &str, lines: Vec<(String, Spend)>) -> js_sys::Array {
    lines
        .into_iter()
        .map(|(key, spend)| {
            let line = spend_to_js(&spend);
            crate::wasm::js::set(&line, label, &key.into());
            line
        })
        .collect()
}

/// The Prometheus text.
pub fn metrics_text(
    engine: &Engine,
    shared: bool,
    cache: Option<&Cache>,
    costs: &CostTally,
    first_tokens: &FirstTokens,
    now_ms: u64,
) -> String {
    let mut text = prometheus(
        &engine.stats(),
        &engine.breakers(now_ms),
        rate_level(engine, shared, now_ms),
        cache.map(Cache::counts),
        costs,
    );
    text.push_str(&hedges(first_tokens));
    text.push_str(&learned_limits(&engine.learned_limits(now_ms)));
    text
}
