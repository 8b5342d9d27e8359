//! `ClientOptions` from JS into the validated core configuration (a request's `resilience` is parsed in
//! [`crate::wasm::request_policy`] with the same field parsers). Every check names the field path;
//! unknown keys are errors, so a typo never silently means "default".

use crate::core::breaker::BreakerConfig;
use crate::core::cache::DEFAULT_STORE_TIMEOUT_MS;
use crate::core::config::{ClientConfig, Scope, TimeoutOverrides, Timeouts};
use crate::core::hedge::HedgeAfter;
use crate::core::limits::{LimitOverrides, Limits, MAX_LIMIT_BYTES};
use crate::core::llm::BudgetConfig;
use crate::core::rate_limit::RateLimitConfig;
use crate::core::retry::{Jitter, RetryConfig, MAX_RETRIES_CAP};
use crate::wasm::cache::{CacheOptions, StoreChoice};
use crate::wasm::chat_options::{
    parse_budget, parse_fallback, parse_hedge, parse_semantic, parse_targets, FallbackOptions,
    TargetConfig, MAX_TARGETS,
};
use crate::wasm::reader::{range_error, short_string, type_error, Reader, Toggle};
use crate::wasm::shared_state::SharedStateOptions;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use wasm_bindgen::prelude::*;

/// Set by the workerd entry: each request there is its own I/O context, and a request waiting on an
/// answer another request fetched is cancelled as hung ("a promise was resolved from a different
/// request context"). A client usually outlives requests (built lazily or at module scope), so there
/// `dedupe` is off unless the options turn it on (for a client built and used within one request).
static REQUESTS_ISOLATED: AtomicBool = AtomicBool::new(false);

/// Called once by the workerd entry, before any client is built: `dedupe` defaults to off.
#[wasm_bindgen(js_name = isolateRequests)]
pub fn isolate_requests() {
    REQUESTS_ISOLATED.store(true, Relaxed);
}

/// The client options, parsed.
pub struct ClientOptions {
    /// Policy configuration for the pipeline; the client moves it into its `Engine`, the one copy
    /// every call reads.
    pub config: ClientConfig,
    /// Prefix for relative URLs.
    pub base_url: Option<String>,
    /// Headers sent on every request.
    pub headers: Vec<(String, String)>,
    /// Share identical cacheable calls in flight.
    pub dedupe: bool,
    /// The response cache, when enabled.
    pub cache: Option<CacheOptions>,
    /// The fallback chain for `chat()` / `chatStream()`, in order.
    pub targets: Vec<TargetConfig>,
    /// Token and cost budgets for `chat()` / `chatStream()`.
    pub budget: Option<BudgetConfig>,
    /// How the chain falls back (`fallback`).
    pub fallback: FallbackOptions,
    /// When a late first token starts the next target too (`hedge`); `None`: never.
    pub hedge: Option<HedgeAfter>,
    /// Breaker and rate-limit state shared across isolates, when set.
    pub shared_state: Option<SharedStateOptions>,
    /// Byte limits on what upstreams send.
    pub limits: Limits,
}

const CLIENT_KEYS: [&str; 14] = [
    "baseUrl",
    "headers",
    "timeout",
    "retry",
    "breaker",
    "rateLimit",
    "cache",
    "dedupe",
    "targets",
    "budget",
    "sharedState",
    "limits",
    "fallback",
    "hedge",
];

/// Parses `new ResilientClient(options)`.
pub fn parse_client_options(value: JsValue) -> Result<ClientOptions, JsValue> {
    let mut options = ClientOptions {
        config: ClientConfig::default(),
        base_url: None,
        headers: Vec::new(),
        dedupe: true,
        cache: None,
        targets: Vec::new(),
        budget: None,
        fallback: FallbackOptions::default(),
        hedge: None,
        shared_state: None,
        limits: Limits::default(),
    };
    let Some(o) = Reader::root(value, "options")? else {
        return Ok(options);
    };
    o.only(&CLIENT_KEYS)?;
    if let Some(base) = o.string("baseUrl")? {
        if web_sys::Url::new(&base).is_err() {
            return Err(range_error("baseUrl", "an absolute URL", &base.into()));
        }
        options.base_url = Some(base);
    }
    options.headers = o.string_map("headers")?.unwrap_or_default();
    if let Some(t) = o.object("timeout")? {
        options.config.timeout = Timeouts::default().overridden_by(&parse_timeouts(&t)?);
    }
    if let Some(l) = o.object("limits")? {
        options.limits = options.limits.overridden_by(&parse_limits(&l)?);
    }
    options.config.retry = match o.toggle("retry")? {
        Toggle::Off => None,
        Toggle::Default => Some(RetryConfig::default()),
        Toggle::On(r) => Some(parse_retry(&r, RetryConfig::default())?),
    };
    options.config.breaker = match o.toggle("breaker")? {
        Toggle::Off => None,
        Toggle::Default => Some((BreakerConfig::default(), Scope::Origin)),
        Toggle::On(b) => Some(parse_breaker(&b)?),
    };
    options.config.rate_limit = match o.toggle("rateLimit")? {
        Toggle::Off | Toggle::Default => None,
        Toggle::On(r) => Some(parse_rate_limit(&r)?),
    };
    options.dedupe = o
        .boolean("dedupe")?
        .unwrap_or(!REQUESTS_ISOLATED.load(Relaxed));
    if let Some(targets) = o.list("targets", MAX_TARGETS)? {
        options.targets = parse_targets(targets)?;
    }
    if let Some(shared) = o.object("sharedState")? {
        shared.only(&["store", "failOpen", "leaseMs"])?;
        let store = shared.raw("store")?.unwrap_or(JsValue::UNDEFINED);
        for method in ["admit", "record", "take"] {
            let function = crate::wasm::js::get(&store, method);
            if !function.is_function() {
                return Err(type_error(
                    &format!("sharedState.store.{method}"),
                    "a function (a StateStore has admit, record and take)",
                    &function,
                ));
            }
        }
        options.shared_state = Some(SharedStateOptions {
            store,
            fail_open: shared.boolean("failOpen")?.unwrap_or(true),
            lease_ms: shared.millis("leaseMs")?.unwrap_or(1000),
        });
    }
    if let Some(b) = o.object("budget")? {
        options.budget = Some(parse_budget(&b)?);
    }
    if let Some(f) = o.object("fallback")? {
        options.fallback = parse_fallback(&f)?;
    }
    options.hedge = parse_hedge(&o)?.flatten();
    options.cache = match o.toggle("cache")? {
        Toggle::Off => None,
        Toggle::Default if o.raw("cache")?.is_none() => None,
        Toggle::Default => Some(parse_cache(None, &options.targets)?),
        Toggle::On(c) => Some(parse_cache(Some(&c), &options.targets)?),
    };
    Ok(options)
}

/// `cache`: off unless given (`true` or an object). Entries are fresh for `ttlMs` (5 min) and may
/// answer for `staleIfErrorMs` more when the upstream fails; a store call waits `timeoutMs` at most.
/// `semantic` (off unless given) embeds with one of `targets`.
fn parse_cache(c: Option<&Reader>, targets: &[TargetConfig]) -> Result<CacheOptions, JsValue> {
    let mut options = CacheOptions {
        store: StoreChoice::Memory,
        ttl_ms: 300_000,
        stale_if_error_ms: 0,
        max_entries: 1000,
        max_bytes: 50 << 20,
        namespace: String::new(),
        timeout_ms: DEFAULT_STORE_TIMEOUT_MS,
        semantic: None,
    };
    let Some(c) = c else {
        return Ok(options);
    };
    c.only(&[
        "store",
        "ttlMs",
        "maxEntries",
        "maxBytes",
        "staleIfErrorMs",
        "namespace",
        "timeoutMs",
        "semantic",
    ])?;
    options.store = match c.raw("store")? {
        None => StoreChoice::Memory,
        Some(value) if short_string(&value, 16).as_deref() == Some("memory") => StoreChoice::Memory,
        Some(value) if short_string(&value, 16).as_deref() == Some("indexeddb") => {
            StoreChoice::IndexedDb
        }
        Some(value) if value.is_object() => {
            for method in ["get", "put", "delete"] {
                if !crate::wasm::js::get(&value, method).is_function() {
                    return Err(type_error(
                        &format!("cache.store.{method}"),
                        "a function (a CacheStore has get, put and delete)",
                        &crate::wasm::js::get(&value, method),
                    ));
                }
            }
            StoreChoice::Custom(value)
        }
        Some(value) => {
            return Err(type_error(
                "cache.store",
                "\"memory\", \"indexeddb\" or a CacheStore object",
                &value,
            ))
        }
    };
    if let Some(ms) = c.millis("ttlMs")? {
        options.ttl_ms = ms;
    }
    if let Some(ms) = c.millis("staleIfErrorMs")? {
        options.stale_if_error_ms = ms;
    }
    if let Some(n) = c.integer("maxEntries", 1, 1 << 32)? {
        options.max_entries = n as usize;
    }
    if let Some(n) = c.integer("maxBytes", 1, 1 << 40)? {
        options.max_bytes = n as usize;
    }
    if let Some(namespace) = c.string("namespace")? {
        options.namespace = namespace;
    }
    if let Some(ms) = c.integer("timeoutMs", 1, i32::MAX as u64)? {
        options.timeout_ms = ms;
    }
    if let Some(s) = c.object("semantic")? {
        options.semantic = Some(parse_semantic(&s, targets)?);
    }
    Ok(options)
}

/// `limits`: byte counts from 1 byte to 1 GiB.
pub(crate) fn parse_limits(l: &Reader) -> Result<LimitOverrides, JsValue> {
    l.only(&["maxResponseBytes", "maxEventBytes"])?;
    let bytes = |key| {
        Ok::<_, JsValue>(
            l.integer(key, 1, MAX_LIMIT_BYTES as u64)?
                .map(|n| n as usize),
        )
    };
    Ok(LimitOverrides {
        max_response_bytes: bytes("maxResponseBytes")?,
        max_event_bytes: bytes("maxEventBytes")?,
    })
}

pub(crate) fn parse_timeouts(t: &Reader) -> Result<TimeoutOverrides, JsValue> {
    t.only(&["attemptMs", "totalMs", "firstByteMs", "idleMs"])?;
    let positive = |key: &str| -> Result<Option<Option<u64>>, JsValue> {
        match t.millis(key)? {
            Some(0) => Err(range_error(
                &format!("{}.{key}", t.path()),
                "a positive number of milliseconds",
                &JsValue::from_f64(0.0),
            )),
            other => Ok(other.map(Some)),
        }
    };
    Ok(TimeoutOverrides {
        attempt_ms: positive("attemptMs")?,
        total_ms: positive("totalMs")?,
        first_byte_ms: positive("firstByteMs")?,
        idle_ms: positive("idleMs")?,
    })
}

pub(crate) fn parse_retry(r: &Reader, base: RetryConfig) -> Result<RetryConfig, JsValue> {
    r.only(&[
        "maxRetries",
        "baseDelayMs",
        "maxDelayMs",
        "jitter",
        "retryOn",
        "maxRetryAfterMs",
        "budgetRatio",
        "resumeStreams",
    ])?;
    let mut cfg = base;
    if let Some(n) = r.integer("maxRetries", 0, u64::from(MAX_RETRIES_CAP))? {
        cfg.max_retries = n as u32;
    }
    if let Some(ms) = r.millis("baseDelayMs")? {
        cfg.base_delay_ms = ms;
    }
    if let Some(ms) = r.millis("maxDelayMs")? {
        cfg.max_delay_ms = ms;
    }
    if cfg.max_delay_ms < cfg.base_delay_ms {
        return Err(range_error(
            &format!("{}.maxDelayMs", r.path()),
            &format!("at least baseDelayMs ({})", cfg.base_delay_ms),
            &JsValue::from_f64(cfg.max_delay_ms as f64),
        ));
    }
    if let Some(jitter) = r.choice("jitter", &["full", "equal", "decorrelated", "none"])? {
        cfg.jitter = match jitter {
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            "decorrelated" => Jitter::Decorrelated,
            _ => Jitter::None,
        };
    }
    if let Some(statuses) = r.integers("retryOn", 100, 599)? {
        cfg.retry_on = statuses.into_iter().map(|s| s as u16).collect();
    }
    if let Some(ms) = r.millis("maxRetryAfterMs")? {
        cfg.max_retry_after_ms = ms;
    }
    if let Some(ratio) = r.number("budgetRatio", 0.0, 1000.0)? {
        cfg.budget_ratio = ratio;
    }
    if let Some(resume) = r.boolean("resumeStreams")? {
        cfg.resume_streams = resume;
    }
    Ok(cfg)
}

fn parse_scope(r: &Reader, default: Scope) -> Result<Scope, JsValue> {
    Ok(match r.choice("scope", &["origin", "client"])? {
        Some("client") => Scope::Client,
        Some(_) => Scope::Origin,
        None => default,
    })
}

fn parse_breaker(b: &Reader) -> Result<(BreakerConfig, Scope), JsValue> {
    b.only(&[
        "failureThreshold",
        "errorThresholdPercentage",
        "volumeThreshold",
        "windowMs",
        "resetTimeoutMs",
        "halfOpenMaxCalls",
        "successThreshold",
        "scope",
    ])?;
    let mut cfg = BreakerConfig::default();
    let count = |key: &str| {
        b.integer(key, 1, u64::from(u32::MAX))
            .map(|n| n.map(|n| n as u32))
    };
    if let Some(n) = count("failureThreshold")? {
        cfg.failure_threshold = n;
    }
    if let Some(n) = b.integer("errorThresholdPercentage", 1, 100)? {
        cfg.error_threshold_percentage = n as u32;
    }
    if let Some(n) = count("volumeThreshold")? {
        cfg.volume_threshold = n;
    }
    if let Some(n) = count("halfOpenMaxCalls")? {
        cfg.half_open_max_calls = n;
    }
    if let Some(n) = count("successThreshold")? {
        cfg.success_threshold = n;
    }
    if let Some(ms) = b.millis("windowMs")? {
        if ms == 0 {
            return Err(range_error(
                &format!("{}.windowMs", b.path()),
                "a positive number of milliseconds",
                &JsValue::from_f64(0.0),
            ));
        }
        cfg.window_ms = ms;
    }
    if let Some(ms) = b.millis("resetTimeoutMs")? {
        cfg.reset_timeout_ms = ms;
    }
    Ok((cfg, parse_scope(b, Scope::Origin)?))
}

fn parse_rate_limit(r: &Reader) -> Result<(RateLimitConfig, Scope), JsValue> {
    r.only(&[
        "requestsPerMinute",
        "burst",
        "tokensPerMinute",
        "maxWaitMs",
        "scope",
    ])?;
    let mut cfg = RateLimitConfig::default();
    let count = |key: &str| r.integer(key, 1, u64::from(u32::MAX));
    cfg.requests_per_minute = count("requestsPerMinute")?.map(|n| n as u32);
    cfg.burst = count("burst")?.map(|n| n as u32);
    cfg.tokens_per_minute = r.integer("tokensPerMinute", 1, 1 << 53)?;
    if let Some(ms) = r.millis("maxWaitMs")? {
        cfg.max_wait_ms = ms;
    }
    if cfg.requests_per_minute.is_none() && cfg.tokens_per_minute.is_none() {
        return Err(range_error(
            r.path(),
            "an object with requestsPerMinute or tokensPerMinute",
            r.value(),
        ));
    }
    Ok((cfg, parse_scope(r, Scope::Client)?))
}
