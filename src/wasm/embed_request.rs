//! `embed(request)` in: the `EmbedRequest` read and bounded ([`parse_embed_request`]), and one
//! batch of it prepared for a target like a chat request ([`Inner::embed_batch_request`]), so that
//! retries, breakers, rate limits and timeouts apply as they do to `chat()`.

use crate::core::llm::embed::MAX_DIMENSIONS;
use crate::core::llm::embed_answer::embeddings_body;
use crate::core::retry::RetryConfig;
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::chat_result::TargetFailure;
use crate::wasm::inner::Inner;
use crate::wasm::js::ObjectBuilder;
use crate::wasm::reader::{array, range_error, type_error, Reader};
use crate::wasm::request::Prepared;
use crate::wasm::request_policy::{parse_request_policy, RequestPolicy};
use js_sys::JsString;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Headers;

/// Most texts in one `embed()` call (they are sent in batches the provider accepts).
pub const MAX_EMBED_INPUTS: u32 = 100_000;
/// Most text in one `embed()` call, in UTF-16 code units (32 Mi).
pub const MAX_EMBED_CHARS: u32 = 1 << 25;

/// A parsed `EmbedRequest`: what [`Inner::embed_texts`](crate::wasm::inner::Inner) embeds.
pub struct EmbedCall {
    /// `input`, as a list (a single string is a list of one).
    pub texts: Vec<String>,
    /// `model`: overrides each target's `embeddingModel`.
    pub model: Option<String>,
    /// `dimensions`.
    pub dimensions: Option<u32>,
    /// `user`, or "anonymous": budgets are per user.
    pub user: String,
    /// `signal`, passed on to every upstream call.
    pub signal: JsValue,
    /// `resilience`, parsed once over the client's retry settings: every batch runs on it.
    pub policy: RequestPolicy,
}

/// Parses `embed(request)`; a partial `resilience.retry` is read over `client_retry`.
pub fn parse_embed_request(
    value: JsValue,
    client_retry: Option<&RetryConfig>,
) -> Result<EmbedCall, JsValue> {
    let Some(r) = Reader::root(value.clone(), "request")? else {
        return Err(type_error("request", "an EmbedRequest object", &value));
    };
    r.only(&[
        "input",
        "model",
        "dimensions",
        "user",
        "signal",
        "resilience",
    ])?;
    let input = r.raw("input")?.unwrap_or(JsValue::UNDEFINED);
    let items = if input.is_string() {
        vec![input]
    } else if input.is_object() {
        array(&input, "request.input", MAX_EMBED_INPUTS)?
    } else {
        return Err(type_error(
            "request.input",
            "a string or an array of strings",
            &input,
        ));
    };
    let mut left = MAX_EMBED_CHARS;
    let mut texts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("request.input[{i}]");
        let Some(text) = item.dyn_ref::<JsString>() else {
            return Err(type_error(&path, "a string", item));
        };
        // OpenAI refuses a whole batch for one empty input: refused here, naming it.
        if text.length() == 0 {
            return Err(range_error(&path, "a non-empty string", item));
        }
        left = left.checked_sub(text.length()).ok_or_else(|| {
            range_error(
                &path,
                &format!("within {MAX_EMBED_CHARS} characters for the whole request"),
                &JsValue::UNDEFINED,
            )
        })?;
        texts.push(String::from(text));
    }
    Ok(EmbedCall {
        texts,
        model: r.string("model")?,
        dimensions: r
            .integer("dimensions", 1, MAX_DIMENSIONS as u64)?
            .map(|n| n as u32),
        user: r.string("user")?.unwrap_or_else(|| "anonymous".to_string()),
        signal: r.raw("signal")?.unwrap_or(JsValue::UNDEFINED),
        policy: parse_request_policy(
            r.raw("resilience")?.unwrap_or(JsValue::UNDEFINED),
            client_retry,
        )?,
    })
}

impl Inner {
    /// The headers of `target`'s embeddings requests: the client's, the credential, the target's
    /// (later ones win). They enter each text's cache key, so the credential partitions it.
    pub(crate) fn embed_headers(&self, target: &TargetConfig) -> Vec<(String, String)> {
        let mut headers = self.options.headers.clone();
        headers.push(("content-type".into(), "application/json".into()));
        if let Some(key) = &target.api_key {
            headers.push(("authorization".into(), format!("Bearer {key}")));
        }
        headers.extend(target.headers.iter().cloned());
        headers
    }

    /// The prepared request embedding `texts` with `model` on `target` (whose endpoint is `url`).
    pub(crate) async fn embed_batch_request(
        &self,
        (target, url, model): (&TargetConfig, &str, &str),
        call: &EmbedCall,
        texts: &[&str],
    ) -> Result<Prepared, TargetFailure> {
        let headers = Headers::new().map_err(TargetFailure::unprepared)?;
        for (name, value) in self
            .embed_headers(target)
            .iter()
            .skip(self.options.headers.len())
        {
            let _ = headers.set(name, value);
        }
        let init = ObjectBuilder::new()
            .str("method", "POST")
            .value("headers", &headers)
            .str("body", &embeddings_body(model, texts, call.dimensions))
            .value("signal", &call.signal)
            .build();
        let mut prepared = self
            .prepare_with(url.into(), init, call.policy.clone())
            .await
            .map_err(TargetFailure::unprepared)?;
        // A breaker and bucket of their own, apart from the target's chat calls: the embeddings
        // endpoint fails and is rate-limited apart (providers limit each model), and an embedding
        // that succeeds must not reset the count of a chat outage (the semantic cache embeds on
        // every call).
        prepared.origin = format!("target:{}:embeddings", target.name);
        prepared.request.classify_errors = true;
        Ok(prepared)
    }
}
