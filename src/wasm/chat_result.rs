//! What a chat call hands back: the `ChatResult` (and a stream's `ChatDelta`s), and the errors of a
//! target, a budget and a chain (each naming the target, cap or limit concerned).

use crate::core::llm::mid_stream::utf16_ranges;
use crate::core::llm::{classify, error_message, Cap, Completion, Exceeded, Outcome, ToolCall};
use crate::core::stream::Delta;
use crate::wasm::body::error_text;
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::errors::named_error;
use crate::wasm::js::{get, set, ObjectBuilder};
use js_sys::Array;
use wasm_bindgen::prelude::*;
use web_sys::Response;

/// How one target's attempt ended, when it did not answer: the error the caller may see, and what
/// it means for the chain ([`Chain`](crate::core::llm::Chain) decides whether the next target is tried).
pub struct TargetFailure {
    /// How it failed, for the chain.
    pub outcome: Outcome,
    /// The error.
    pub error: JsValue,
}

impl TargetFailure {
    /// The target gave no usable answer; the next one may.
    pub(crate) fn unavailable(error: JsValue) -> Self {
        TargetFailure {
            outcome: Outcome::Unavailable,
            error,
        }
    }

    /// The request could not be prepared: no target would take it.
    pub(crate) fn unprepared(error: JsValue) -> Self {
        TargetFailure {
            outcome: Outcome::Unprepared,
            error,
        }
    }
}

/// A target's completion, and how it was obtained.
pub struct TargetCompletion {
    /// Text, finish reason, usage.
    pub completion: Completion,
    /// Attempts the target took (0 when cached).
    pub attempts: u32,
    /// From the cache.
    pub cached: bool,
}

/// A chat call on a client without targets.
pub(crate) fn no_targets() -> js_sys::TypeError {
    js_sys::TypeError::new(
        "chat() needs options.targets: [{ provider, baseUrl, model, apiKey? }, ...]",
    )
}

/// Whether `error` is an answer past a byte limit (asking the same target again would not help).
pub(crate) fn is_too_large(error: &JsValue) -> bool {
    get(error, "code").as_string().as_deref() == Some("RESPONSE_TOO_LARGE")
}

/// A target's pipeline error, read for the chain: the caller's abort (`aborted`), the client's own
/// rate limit (a client-wide bucket, the same whichever target is next), or this target unavailable.
pub(crate) fn target_error(target: &TargetConfig, error: JsValue, aborted: bool) -> TargetFailure {
    if aborted {
        // The caller's own reason, handed back untouched.
        return TargetFailure {
            outcome: Outcome::Aborted,
            error,
        };
    }
    set(&error, "target", &target.name.as_str().into());
    let name = get(&error, "name").as_string().unwrap_or_default();
    let client_wide_limit = name == "RateLimitError"
        && get(&error, "key")
            .as_string()
            .is_some_and(|key| key == "client" || key.starts_with("client|"));
    let outcome = if client_wide_limit {
        Outcome::ClientLimited
    } else {
        Outcome::Unavailable
    };
    TargetFailure { outcome, error }
}

/// What a `fallback` event gives as its reason for `error`: its code, else its name.
pub(crate) fn failure_reason(error: &JsValue) -> String {
    let code = get(error, "code").as_string();
    code.or_else(|| get(error, "name").as_string())
        .unwrap_or_default()
}

/// When the target that failed with `error` said it is back: the `retryAfterMs` of an open breaker,
/// a rate limit (the client's or the provider's, learned) or a too-long retry hint.
pub(crate) fn back_in(error: &JsValue) -> Option<u64> {
    let ms = get(error, "retryAfterMs").as_f64()?;
    (ms.is_finite() && ms >= 0.0).then_some(ms as u64)
}

/// The error for a target's non-2xx answer: classified from its status and body.
pub(crate) async fn upstream_failure(
    target: &TargetConfig,
    response: &Response,
    attempts: u32,
) -> TargetFailure {
    let status = response.status();
    let body = error_text(response).await.unwrap_or_default();
    let class = classify(status, &body);
    let message = error_message(&body).unwrap_or_else(|| "no error message".to_string());
    let error = named_error(
        "UpstreamError",
        &class.as_str().to_ascii_uppercase(),
        &format!(
            "{} answered HTTP {status} ({}): {message}",
            target.name,
            class.as_str()
        ),
    );
    set(&error, "status", &status.into());
    set(&error, "kind", &class.as_str().into());
    set(&error, "attempts", &attempts.into());
    set(&error, "target", &target.name.as_str().into());
    // A retry hint too long to wait for within the call (set by the pipeline's caller).
    let hinted = get(response, "retryAfterMs");
    if hinted.as_f64().is_some() {
        set(&error, "retryAfterMs", &hinted);
    }
    TargetFailure {
        outcome: Outcome::ErrorStatus(class),
        error: error.into(),
    }
}

/// `BudgetExceededError`: which cap, its limit, what remains and what the call needed.
pub(crate) fn budget_exceeded(user: &str, exceeded: &Exceeded) -> JsValue {
    let cap = exceeded.cap.as_str();
    // The cost cap is kept in micro-dollars; it is reported in dollars, like the option.
    let (scale, unit) = if exceeded.cap == Cap::DailyCost {
        (1e6, "USD")
    } else {
        (1.0, "tokens")
    };
    let [needed, remaining, limit] =
        [exceeded.needed, exceeded.remaining, exceeded.limit].map(|n| n as f64 / scale);
    let error = named_error(
        "BudgetExceededError",
        "BUDGET_EXCEEDED",
        &format!(
            "The {cap} budget for {user} would be exceeded by this call (it may use more {unit} than remain); \
             see error.needed, error.remaining and error.limit."
        ),
    );
    set(&error, "cap", &cap.into());
    set(&error, "limit", &limit.into());
    set(&error, "remaining", &remaining.into());
    set(&error, "needed", &needed.into());
    set(&error, "user", &user.into());
    error.into()
}

/// `AllTargetsFailedError` with every target's error (`errors[i]` is `targets[i]`'s), and when the
/// first of them is back, if every one said (`retryAfterMs`).
pub(crate) fn all_targets_failed(
    targets: &[TargetConfig],
    errors: Vec<JsValue>,
    back_in_ms: Option<u64>,
) -> JsValue {
    let mut summary = String::from("Every target failed. ");
    for (i, (target, e)) in targets.iter().zip(&errors).enumerate() {
        let message = get(e, "message").as_string().unwrap_or_default();
        let separator = if i == 0 { "" } else { "; " };
        summary += &format!("{separator}{}: {message}", target.name);
    }
    let error = named_error("AllTargetsFailedError", "ALL_TARGETS_FAILED", &summary);
    let list: Array = errors.into_iter().collect();
    set(&error, "errors", &list);
    if let Some(ms) = back_in_ms {
        set(&error, "retryAfterMs", &(ms as f64).into());
    }
    error.into()
}

/// The `ChatResult` object.
pub(crate) fn chat_result(
    target: &TargetConfig,
    answered: &TargetCompletion,
    cost_micros: u64,
) -> JsValue {
    let completion = &answered.completion;
    ObjectBuilder::new()
        .str("text", &completion.text)
        .value("toolCalls", &tool_calls(&completion.tool_calls))
        .str("target", &target.name)
        .str("provider", target.provider.as_str())
        .str("model", &target.model)
        .str("finishReason", &completion.finish_reason)
        .value(
            "usage",
            &ObjectBuilder::new()
                .num("inputTokens", completion.usage.input_tokens as f64)
                .num("outputTokens", completion.usage.output_tokens as f64)
                .num(
                    "cachedInputTokens",
                    completion.usage.cached_input_tokens as f64,
                )
                .num(
                    "cacheWriteTokens",
                    completion.usage.cache_write_tokens as f64,
                )
                .build(),
        )
        .num("costUsd", cost_micros as f64 / 1e6)
        .bool("cached", answered.cached)
        .num("attempts", answered.attempts)
        .value(
            "parts",
            &Array::of1(&part(
                target,
                (0, completion.text.encode_utf16().count()),
                cost_micros,
            )),
        )
        .build()
}

/// One `{ target, model, start, end, costUsd }` of `result.parts`: who wrote `text.slice(start, end)`.
fn part(target: &TargetConfig, (start, end): (usize, usize), cost_micros: u64) -> JsValue {
    ObjectBuilder::new()
        .str("target", &target.name)
        .str("model", &target.model)
        .num("start", start as f64)
        .num("end", end as f64)
        .num("costUsd", cost_micros as f64 / 1e6)
        .build()
}

/// Sets `result.parts` for an answer that several targets wrote (a mid-stream fallback): each
/// `(target index, where its part ends in text (bytes), its cost in micro-dollars)`, its range of
/// `text` given in UTF-16 code units.
pub(crate) fn set_parts(
    result: &JsValue,
    targets: &[TargetConfig],
    text: &str,
    parts: &[(usize, usize, u64)],
) {
    let ends: Vec<usize> = parts.iter().map(|&(_, end, _)| end).collect();
    let list: Array = parts
        .iter()
        .zip(utf16_ranges(text, &ends))
        .filter_map(|(&(index, _, cost), range)| Some(part(targets.get(index)?, range, cost)))
        .collect();
    set(result, "parts", &list);
}
/// `[{ id, name, arguments }]`.
fn tool_calls(calls: &[ToolCall]) -> Array {
    calls
        .iter()
        .map(|call| {
            ObjectBuilder::new()
                .str("id", &call.id)
                .str("name", &call.name)
                .str("arguments", &call.arguments)
                .build()
        })
        .collect()
}

/// A `ChatDelta`: `{ text, toolCalls? }`, the tool-call pieces as
/// `{ index, id?, name?, argumentsDelta }`.
pub(crate) fn chat_delta(delta: &Delta) -> JsValue {
    let mut object = ObjectBuilder::new().str("text", &delta.text);
    if !delta.tool_calls.is_empty() {
        let pieces: Array = delta
            .tool_calls
            .iter()
            .map(|piece| {
                let mut piece_object = ObjectBuilder::new().num("index", piece.index);
                if let Some(id) = &piece.id {
                    piece_object = piece_object.str("id", id);
                }
                if let Some(name) = &piece.name {
                    piece_object = piece_object.str("name", name);
                }
                piece_object
                    .str("argumentsDelta", &piece.arguments_delta)
                    .build()
            })
            .collect();
        object = object.value("toolCalls", &pieces);
    }
    object.build()
}
