//! `stats()` and `metrics()` for JS.

use crate::core::metrics::prometheus;
use crate::core::pipeline::Engine;
use crate::wasm::cache::Cache;
use crate::wasm::js::ObjectBuilder;
use wasm_bindgen::prelude::*;

/// The `ClientStats` object of the API.
pub fn stats_to_js(engine: &Engine, cache: Option<&Cache>, now_ms: u64) -> JsValue {
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
    let rate_limit = match engine.rate_level(now_ms) {
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
        .value(
            "latencyMs",
            &ObjectBuilder::new()
                .num("p50", p.p50 as f64)
                .num("p95", p.p95 as f64)
                .num("p99", p.p99 as f64)
                .build(),
        )
        .value(
            "usage",
            &ObjectBuilder::new()
                .num("inputTokens", 0)
                .num("outputTokens", 0)
                .num("costUsd", 0)
                .build(),
        )
        .build()
}

/// The Prometheus text.
pub fn metrics_text(engine: &Engine, cache: Option<&Cache>, now_ms: u64) -> String {
    prometheus(
        &engine.stats(),
        &engine.breakers(now_ms),
        engine.rate_level(now_ms),
        cache.map(Cache::counts),
    )
}
