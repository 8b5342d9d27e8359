//! A request's own `resilience` options (`fetch(url, { resilience })`), parsed on top of the client's.

use crate::core::config::{CacheMode, TimeoutOverrides};
use crate::core::limits::LimitOverrides;
use crate::core::retry::RetryConfig;
use crate::wasm::options::{parse_limits, parse_retry, parse_timeouts};
use crate::wasm::reader::{type_error, Reader, Toggle};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A per-request `resilience` object, parsed.
#[derive(Clone, Default)]
pub struct RequestPolicy {
    /// `resilience.cache`.
    pub cache: CacheMode,
    /// Per-caller rate-limit bucket.
    pub rate_limit_key: Option<String>,
    /// `Some(None)` turns retries off for this request; `Some(Some(cfg))` replaces the retry config.
    pub retry: Option<Option<RetryConfig>>,
    /// Timeout fields to override.
    pub timeout: TimeoutOverrides,
    /// Sent as `Idempotency-Key` on every attempt.
    pub idempotency_key: Option<String>,
    /// GET event streams: how many times to reconnect (with `Last-Event-ID`) after a cut.
    pub reconnect: Option<u32>,
    /// Receives background work (cache writes) to keep alive: a Worker's `ctx.waitUntil`.
    pub wait_until: Option<js_sys::Function>,
    /// Byte limits to override.
    pub limits: LimitOverrides,
}

/// Reconnections allowed by `resilience.reconnect: true`.
const DEFAULT_RECONNECTS: u32 = 3;

/// Parses `init.resilience`, with the client's retry config as the base for partial overrides.
pub fn parse_request_policy(
    value: JsValue,
    client_retry: Option<&RetryConfig>,
) -> Result<RequestPolicy, JsValue> {
    let mut policy = RequestPolicy::default();
    let Some(p) = Reader::root(value, "resilience")? else {
        return Ok(policy);
    };
    p.only(&[
        "cache",
        "rateLimitKey",
        "retry",
        "timeout",
        "idempotencyKey",
        "reconnect",
        "waitUntil",
        "limits",
    ])?;
    policy.wait_until = match p.raw("waitUntil")? {
        None => None,
        Some(f) => Some(f.dyn_into().map_err(|f| {
            type_error(
                "resilience.waitUntil",
                "a function (e.g. ctx.waitUntil.bind(ctx))",
                &f,
            )
        })?),
    };
    policy.reconnect = match p.toggle("reconnect")? {
        Toggle::Off => None,
        Toggle::Default if p.raw("reconnect")?.is_none() => None,
        Toggle::Default => Some(DEFAULT_RECONNECTS),
        Toggle::On(r) => {
            r.only(&["maxAttempts"])?;
            Some(
                r.integer("maxAttempts", 0, 1000)?
                    .map_or(DEFAULT_RECONNECTS, |n| n as u32),
            )
        }
    };
    policy.cache = match p.choice("cache", &["default", "bypass", "force", "only-if-cached"])? {
        Some("bypass") => CacheMode::Bypass,
        Some("force") => CacheMode::Force,
        Some("only-if-cached") => CacheMode::OnlyIfCached,
        _ => CacheMode::Default,
    };
    policy.rate_limit_key = p.string("rateLimitKey")?;
    policy.idempotency_key = p.header_value("idempotencyKey")?;
    policy.retry = match p.toggle("retry")? {
        Toggle::Default => None,
        Toggle::Off => Some(None),
        Toggle::On(r) => Some(Some(parse_retry(
            &r,
            client_retry.cloned().unwrap_or_default(),
        )?)),
    };
    if let Some(t) = p.object("timeout")? {
        policy.timeout = parse_timeouts(&t)?;
    }
    if let Some(l) = p.object("limits")? {
        policy.limits = parse_limits(&l)?;
    }
    Ok(policy)
}
