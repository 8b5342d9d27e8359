//! The client options `chat()` reads: the `targets` of its fallback chain, how it falls back
//! (`fallback`) and its `budget`.

use crate::core::llm::endpoint::chat_endpoint;
use crate::core::llm::{BudgetConfig, Pricing, Provider};
use crate::wasm::reader::{range_error, type_error, Reader};
use wasm_bindgen::prelude::*;

/// One entry of `targets`.
pub struct TargetConfig {
    /// `name`, or `provider:model`.
    pub name: String,
    /// The wire protocol.
    pub provider: Provider,
    /// Where its chat requests go: `baseUrl` with the provider's path
    /// ([`chat_endpoint`]).
    pub endpoint: String,
    /// Sent as `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic).
    pub api_key: Option<String>,
    /// The model asked for.
    pub model: String,
    /// Extra headers for this target.
    pub headers: Vec<(String, String)>,
    /// Prices per million tokens, for cost tracking and cost budgets.
    pub pricing: Pricing,
    /// `learnLimits` (default true): adopt the rate limits the provider reports in its headers.
    pub learn_limits: bool,
}

/// Most targets in a chain.
pub(crate) const MAX_TARGETS: u32 = 16;

/// Parses `targets`: each entry checked, names unique.
pub(crate) fn parse_targets(items: Vec<JsValue>) -> Result<Vec<TargetConfig>, JsValue> {
    let mut targets: Vec<TargetConfig> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("targets[{i}]");
        let Some(t) = Reader::root(item.clone(), &path)? else {
            return Err(type_error(&path, "a target object", &item));
        };
        t.only(&[
            "name",
            "provider",
            "baseUrl",
            "apiKey",
            "model",
            "headers",
            "pricing",
            "learnLimits",
        ])?;
        let provider_name = t
            .choice("provider", &["openai", "anthropic"])?
            .ok_or_else(|| required(&path, "provider"))?;
        let provider = Provider::parse(provider_name).ok_or_else(|| required(&path, "provider"))?;
        let base_url = t
            .string("baseUrl")?
            .ok_or_else(|| required(&path, "baseUrl"))?;
        let parsed = web_sys::Url::new(&base_url).ok();
        let plain = parsed.filter(|url| {
            matches!(url.protocol().as_str(), "http:" | "https:")
                && url.search().is_empty()
                && url.hash().is_empty()
        });
        if plain.is_none() {
            return Err(range_error(
                &format!("{path}.baseUrl"),
                "an absolute http(s) URL without query or fragment",
                &base_url.into(),
            ));
        }
        let model = t.string("model")?.ok_or_else(|| required(&path, "model"))?;
        let name = t
            .string("name")?
            .unwrap_or_else(|| format!("{provider_name}:{model}"));
        if targets.iter().any(|other| other.name == name) {
            return Err(range_error(
                &format!("{path}.name"),
                "unique within targets (it names the target's breaker)",
                &name.into(),
            ));
        }
        let pricing = match t.object("pricing")? {
            None => Pricing::default(),
            Some(p) => {
                p.only(&["inputPerMTok", "outputPerMTok"])?;
                let micros = |key: &str| -> Result<u64, JsValue> {
                    Ok(p.number(key, 0.0, 1e6)?
                        .map_or(0, |usd| (usd * 1e6).round() as u64))
                };
                Pricing {
                    input_micros_per_mtok: micros("inputPerMTok")?,
                    output_micros_per_mtok: micros("outputPerMTok")?,
                }
            }
        };
        targets.push(TargetConfig {
            name,
            provider,
            endpoint: chat_endpoint(provider, &base_url),
            api_key: t.string("apiKey")?,
            model,
            headers: t.string_map("headers")?.unwrap_or_default(),
            pricing,
            learn_limits: t.boolean("learnLimits")?.unwrap_or(true),
        });
    }
    Ok(targets)
}

fn required(path: &str, field: &str) -> JsValue {
    js_sys::TypeError::new(&format!("{path}.{field} is required")).into()
}

/// Parses `budget`.
pub(crate) fn parse_budget(b: &Reader) -> Result<BudgetConfig, JsValue> {
    b.only(&[
        "perRequestTokens",
        "perUserDailyTokens",
        "perUserMonthlyTokens",
        "dailyCostUsd",
    ])?;
    let tokens = |key: &str| b.integer(key, 1, 1 << 53);
    Ok(BudgetConfig {
        per_request_tokens: tokens("perRequestTokens")?,
        per_user_daily_tokens: tokens("perUserDailyTokens")?,
        per_user_monthly_tokens: tokens("perUserMonthlyTokens")?,
        daily_cost_micros: b
            .number("dailyCostUsd", 0.0, 1e9)?
            .map(|usd| (usd * 1e6).round() as u64),
    })
}

/// `fallback`: how the chain falls back.
#[derive(Default)]
pub struct FallbackOptions {
    /// `maxWaitMs`: how long a call may wait, in all, for the first target back when every target
    /// is out (open or rate-limited); `None`: the rate limiter's `maxWaitMs`.
    pub max_wait_ms: Option<u64>,
}

/// Parses `fallback`.
pub(crate) fn parse_fallback(f: &Reader) -> Result<FallbackOptions, JsValue> {
    f.only(&["maxWaitMs"])?;
    Ok(FallbackOptions {
        max_wait_ms: f.millis("maxWaitMs")?,
    })
}
