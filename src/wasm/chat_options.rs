//! The client options `chat()` and `embed()` read: the `targets` of their fallback chain, how it
//! falls back (`fallback`), when it hedges (`hedge`, also per request), the `budget`, and the
//! semantic cache (`cache.semantic`, which embeds with one of the targets).

use crate::core::hedge::{HedgeAfter, MAX_AFTER_MS};
use crate::core::llm::endpoint::{chat_endpoint, embeddings_endpoint};
use crate::core::llm::{cache_prices, BudgetConfig, Pricing, Provider};
use crate::core::semantic::{Mode, SemanticConfig};
use crate::wasm::reader::{range_error, type_error, Reader, Toggle};
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
    /// `embeddingModel`: the model `embed()` asks this target for by default.
    pub embedding_model: Option<String>,
    /// Where its embeddings requests go; `None` for a provider without an embeddings API.
    pub embeddings_endpoint: Option<String>,
    /// `pricing.embeddingPerMTok`, as the input price of a [`Pricing`] with no output price.
    pub embedding_pricing: Pricing,
    /// `learnLimits` (default true): adopt the rate limits the provider reports in its headers.
    pub learn_limits: bool,
    /// `prefill`: the server continues a final assistant message (`None`: the dialect's default;
    /// see [`can_prefill`](crate::core::llm::mid_stream::can_prefill)).
    pub prefill: Option<bool>,
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
            "embeddingModel",
            "headers",
            "pricing",
            "learnLimits",
            "prefill",
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
        let mut embedding_pricing = Pricing::default();
        let pricing = match t.object("pricing")? {
            None => Pricing::default(),
            Some(p) => {
                p.only(&[
                    "inputPerMTok",
                    "outputPerMTok",
                    "cachedInputPerMTok",
                    "cacheWritePerMTok",
                    "embeddingPerMTok",
                ])?;
                let micros = |key: &str| -> Result<Option<u64>, JsValue> {
                    Ok(p.number(key, 0.0, 1e6)?
                        .map(|usd| (usd * 1e6).round() as u64))
                };
                let input = micros("inputPerMTok")?.unwrap_or(0);
                let (read, write) = cache_prices(provider, input);
                embedding_pricing.input_micros_per_mtok = micros("embeddingPerMTok")?.unwrap_or(0);
                Pricing {
                    input_micros_per_mtok: input,
                    output_micros_per_mtok: micros("outputPerMTok")?.unwrap_or(0),
                    cached_input_micros_per_mtok: micros("cachedInputPerMTok")?.unwrap_or(read),
                    cache_write_micros_per_mtok: micros("cacheWritePerMTok")?.unwrap_or(write),
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
            embedding_model: t.string("embeddingModel")?,
            embeddings_endpoint: embeddings_endpoint(provider, &base_url),
            embedding_pricing,
            learn_limits: t.boolean("learnLimits")?.unwrap_or(true),
            prefill: t.boolean("prefill")?,
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

/// Parses `cache.semantic`: `threshold` (required, a cosine similarity from 0 to 1), `as`,
/// `maxEntries`, `maxBytes`, and `embeddingTarget`, which must name one of `targets` that can embed
/// (without it, some target must).
pub(crate) fn parse_semantic(
    s: &Reader,
    targets: &[TargetConfig],
) -> Result<SemanticConfig, JsValue> {
    s.only(&[
        "threshold",
        "embeddingTarget",
        "as",
        "maxEntries",
        "maxBytes",
    ])?;
    let threshold = s
        .number("threshold", 0.0, 1.0)?
        .ok_or_else(|| required(s.path(), "threshold"))?;
    let mut config = SemanticConfig::new(threshold as f32);
    if s.choice("as", &["fallback", "first"])? == Some("first") {
        config.mode = Mode::First;
    }
    if let Some(n) = s.integer("maxEntries", 1, 1 << 20)? {
        config.max_entries = n as usize;
    }
    if let Some(n) = s.integer("maxBytes", 1, 1 << 32)? {
        config.max_bytes = n as usize;
    }
    // One embedder for every question, so that all vectors share one space.
    let embeds = |t: &&TargetConfig| t.embeddings_endpoint.is_some() && t.embedding_model.is_some();
    let path = format!("{}.embeddingTarget", s.path());
    let embedder = match s.string("embeddingTarget")? {
        Some(name) => {
            let target = targets.iter().find(|t| t.name == name).ok_or_else(|| {
                range_error(
                    &path,
                    "the name of one of options.targets",
                    &name.as_str().into(),
                )
            })?;
            Some(target).filter(embeds).ok_or_else(|| {
                range_error(
                    &path,
                    "a target with an embeddings API (Anthropic has none) and an embeddingModel",
                    &name.as_str().into(),
                )
            })?
        }
        None => targets.iter().find(embeds).ok_or_else(|| {
            js_sys::TypeError::new(&format!(
                "{} needs a target that can embed questions: one with an embeddings API (Anthropic \
                 has none) and an embeddingModel in options.targets",
                s.path()
            ))
        })?,
    };
    config.embedding_target = Some(embedder.name.clone());
    Ok(config)
}

/// `fallback`: how the chain falls back.
#[derive(Default)]
pub struct FallbackOptions {
    /// `maxWaitMs`: how long a call may wait, in all, for the first target back when every target
    /// is out (open or rate-limited); `None`: the rate limiter's `maxWaitMs`.
    pub max_wait_ms: Option<u64>,
    /// `midStream`: a `chatStream()` cut past resuming continues on the next target that can
    /// prefill ([`crate::core::llm::mid_stream`]).
    pub mid_stream: bool,
}

/// Parses `fallback`.
pub(crate) fn parse_fallback(f: &Reader) -> Result<FallbackOptions, JsValue> {
    f.only(&["maxWaitMs", "midStream"])?;
    Ok(FallbackOptions {
        max_wait_ms: f.millis("maxWaitMs")?,
        mid_stream: f.boolean("midStream")?.unwrap_or(false),
    })
}

/// Parses the `hedge` option of `o` (the client's options or a request): `false` turns hedging
/// off (`Some(None)`), `{ afterMs: number | "p95" }` turns it on; `None` when absent.
pub(crate) fn parse_hedge(o: &Reader) -> Result<Option<Option<HedgeAfter>>, JsValue> {
    let h = match (o.toggle("hedge")?, o.raw("hedge")?) {
        (Toggle::Off, _) => return Ok(Some(None)),
        (Toggle::Default, None) => return Ok(None),
        (Toggle::Default, Some(given)) => {
            let path = format!("{}.hedge", o.path());
            return Err(type_error(&path, "false or { afterMs }", &given));
        }
        (Toggle::On(h), _) => h,
    };
    h.only(&["afterMs"])?;
    let after = h.raw("afterMs")?.unwrap_or(JsValue::UNDEFINED);
    if after.as_string().as_deref() == Some("p95") {
        return Ok(Some(Some(HedgeAfter::P95)));
    }
    if after.as_f64().is_none() {
        let path = format!("{}.afterMs", h.path());
        return Err(type_error(
            &path,
            "a number of milliseconds or \"p95\"",
            &after,
        ));
    }
    let ms = h
        .number("afterMs", 0.0, MAX_AFTER_MS as f64)?
        .unwrap_or(0.0);
    Ok(Some(Some(HedgeAfter::Ms(ms as u64))))
}
