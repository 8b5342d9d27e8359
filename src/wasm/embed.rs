//! `client.embed()`: texts embedded across the fallback chain, each text cached on its own so that
//! only the texts not seen before go upstream.
//!
//! The decisions are the core's ([`crate::core::llm::embed`]): identical texts in a call are
//! embedded once, the misses are sent in batches the provider accepts, the answers put back in
//! input order. Here, per target: each unique text's key ([`embedding_key`]: text, model,
//! dimensions, endpoint, every request header so the credential partitions it, the namespace) is
//! looked up in the client's cache (any store: memory, IndexedDB, a custom one); the misses go
//! upstream through the same pipeline as a chat request (the target's breaker and bucket,
//! retries, limits, timeouts), each answer read within `limits.maxResponseBytes`; each vector
//! received is stored as float32 bytes. A target whose provider has no embeddings API (Anthropic)
//! or that has no `embeddingModel` (when the request names no `model`) is passed over as failed;
//! an unreadable answer fails the target, and the chain moves on as `chat()`'s does. The budget
//! holds a token per 4 characters of the misses before they are sent and settles to
//! `usage.prompt_tokens` after, priced at the target's `pricing.embeddingPerMTok`.

use crate::core::cache::key::{embedding_key, EmbeddingKeyParts};
use crate::core::cache::memory::Freshness;
use crate::core::cache::store::lookup_wait_ms;
use crate::core::llm::charge::Charge;
use crate::core::llm::embed::{
    batches, cached_vector, estimate_tokens, to_bytes, Plan, MAX_BATCH_BYTES, MAX_BATCH_INPUTS,
};
use crate::core::llm::embed_answer::parse_embeddings;
use crate::core::llm::{Outcome, Usage};
use crate::core::platform::Platform;
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::chat_result::TargetFailure;
use crate::wasm::embed_request::{parse_embed_request, EmbedCall};
use crate::wasm::errors::{abort_error, named_error};
use crate::wasm::inner::Inner;
use crate::wasm::js::{abort_reason, ObjectBuilder};
use js_sys::{Array, Float32Array};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

/// What [`Inner::embed_texts`] answers.
pub(crate) struct Embedded {
    /// One vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The name of the target that answered (or whose cache did).
    pub target: String,
    /// The embedding model.
    pub model: String,
    /// Input tokens billed (0 when every text was cached).
    pub input_tokens: u64,
    /// What the call cost, in micro-dollars.
    pub cost_micros: u64,
    /// How many inputs were answered from the cache.
    pub cached: usize,
}

/// The texts of one target's attempt: its model and endpoint, the call's unique texts and their
/// cache keys (none without a cache).
struct Attempt<'a> {
    target: &'a TargetConfig,
    url: &'a str,
    model: &'a str,
    unique: Vec<&'a str>,
    keys: Vec<String>,
}

impl Inner {
    /// `client.embed(request)`.
    pub(crate) async fn embed(self: &Rc<Self>, request: JsValue) -> Result<JsValue, JsValue> {
        let call = parse_embed_request(request, self.engine.config().retry.as_ref())?;
        let embedded = self.embed_texts(&call).await?;
        let embeddings: Array = embedded
            .vectors
            .iter()
            .map(|v| JsValue::from(Float32Array::from(v.as_slice())))
            .collect();
        Ok(ObjectBuilder::new()
            .value("embeddings", &embeddings)
            .str("target", &embedded.target)
            .str("model", &embedded.model)
            .value(
                "usage",
                &ObjectBuilder::new()
                    .num("inputTokens", embedded.input_tokens as f64)
                    .build(),
            )
            .num("costUsd", embedded.cost_micros as f64 / 1e6)
            .num("cached", embedded.cached as f64)
            .build())
    }

    /// Embeds `call.texts` across the fallback chain, reading and filling the cache per text (see
    /// the module doc). For use inside the crate (the semantic cache embeds with it too).
    ///
    /// # Errors
    /// As `chat()`: `AllTargetsFailedError` when no target could embed (each one's reason in
    /// `errors`), `BudgetExceededError`, the caller's abort reason, a stopping target's error.
    pub(crate) async fn embed_texts(
        self: &Rc<Self>,
        call: &EmbedCall,
    ) -> Result<Embedded, JsValue> {
        let plan = &Plan::new(&call.texts);
        self.along_chain((&call.signal, &call.policy), |_, target| async move {
            self.embed_on(target, call, plan).await
        })
        .await
    }

    /// Embeds `call.texts` with `target` alone, through the cache as [`Inner::embed_texts`] does:
    /// the semantic cache's embedder (one target, so that all its vectors are in one space).
    pub(crate) async fn embed_with(
        self: &Rc<Self>,
        target: &TargetConfig,
        call: &EmbedCall,
    ) -> Result<Embedded, JsValue> {
        let plan = &Plan::new(&call.texts);
        let embedded = self.embed_on(target, call, plan).await;
        embedded.map_err(|failure| failure.error)
    }

    /// One target's attempt: the cache, then the misses upstream.
    async fn embed_on(
        self: &Rc<Self>,
        target: &TargetConfig,
        call: &EmbedCall,
        plan: &Plan,
    ) -> Result<Embedded, TargetFailure> {
        let model = call.model.as_deref().or(target.embedding_model.as_deref());
        let (Some(url), Some(model)) = (target.embeddings_endpoint.as_deref(), model) else {
            return Err(cannot_embed(target));
        };
        let unique: Vec<&str> = plan
            .unique
            .iter()
            .filter_map(|&i| call.texts.get(i).map(String::as_str))
            .collect();
        let keys = self.embedding_keys(target, (url, model), call, &unique);
        let attempt = Attempt {
            target,
            url,
            model,
            unique,
            keys,
        };
        let mut vectors = self.cached_vectors(&attempt, call).await?;
        let cached: Vec<bool> = vectors.iter().map(Option::is_some).collect();
        let misses: Vec<usize> = (0..cached.len()).filter(|&i| !cached[i]).collect();
        let (mut input_tokens, mut cost_micros) = (0, 0);
        if !misses.is_empty() {
            let texts: Vec<&str> = misses.iter().map(|&i| attempt.unique[i]).collect();
            let hold = self
                .hold_budget(
                    &call.user,
                    (estimate_tokens(&texts), Some(0), false),
                    [&target.embedding_pricing],
                )
                .map_err(|error| TargetFailure {
                    outcome: Outcome::Unprepared,
                    error,
                })?;
            let fetched = self
                .embed_misses(&attempt, call, &misses, &mut vectors)
                .await;
            input_tokens = match &fetched {
                Ok(tokens) | Err((tokens, _)) => *tokens,
            };
            let charged = Charge {
                user: &call.user,
                model,
                pricing: &target.embedding_pricing,
                usage: Usage {
                    input_tokens,
                    ..Usage::default()
                },
                free: input_tokens == 0,
            };
            cost_micros = self.settle_charge(hold, charged);
            fetched.map_err(|(_, failure)| failure)?;
        }
        let (vectors, cached) = plan
            .assemble(&vectors, &cached)
            .ok_or_else(|| unreadable(target, "fewer embeddings than texts"))?;
        Ok(Embedded {
            vectors,
            target: target.name.clone(),
            model: model.to_string(),
            input_tokens,
            cost_micros,
            cached,
        })
    }

    /// Each unique text's cache key on `target`; none when the client has no cache.
    fn embedding_keys(
        &self,
        target: &TargetConfig,
        (url, model): (&str, &str),
        call: &EmbedCall,
        unique: &[&str],
    ) -> Vec<String> {
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        let owned = self.embed_headers(target);
        let headers: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        unique
            .iter()
            .map(|text| {
                embedding_key(&EmbeddingKeyParts {
                    text,
                    model,
                    dimensions: call.dimensions,
                    url,
                    headers: &headers,
                    namespace: &cache.options.namespace,
                })
            })
            .collect()
    }

    /// The fresh cached vector of each unique text, if any. A store that fails is reported and
    /// is a miss; a stored vector of another length than the others (or than `dimensions`) too.
    async fn cached_vectors(
        &self,
        attempt: &Attempt<'_>,
        call: &EmbedCall,
    ) -> Result<Vec<Option<Vec<f32>>>, TargetFailure> {
        let mut vectors = vec![None; attempt.unique.len()];
        let Some(cache) = &self.cache else {
            return Ok(vectors);
        };
        let signal = call.signal.dyn_ref::<AbortSignal>();
        let wait = lookup_wait_ms(cache.options.timeout_ms, None);
        let now = self.platform.wall_ms();
        let found = cache.lookup_many(&attempt.keys, now, wait, signal).await;
        if let Some(reason) = signal.and_then(abort_reason) {
            return Err(TargetFailure {
                outcome: Outcome::Aborted,
                error: abort_error(&reason),
            });
        }
        let mut width = call.dimensions.map(|n| n as usize);
        for (slot, hit) in vectors.iter_mut().zip(found) {
            let hit = hit.unwrap_or_else(|error| {
                self.store_error(attempt.url, &error);
                None
            });
            *slot = hit
                .filter(|hit| hit.freshness == Freshness::Fresh)
                .and_then(|hit| cached_vector(&hit.entry.body, &mut width));
        }
        Ok(vectors)
    }

    /// Sends the `misses` (indices into the unique texts) upstream in batches, filling `vectors`
    /// and the cache; the input tokens billed, also when a batch after the first fails.
    async fn embed_misses(
        self: &Rc<Self>,
        attempt: &Attempt<'_>,
        call: &EmbedCall,
        misses: &[usize],
        vectors: &mut [Option<Vec<f32>>],
    ) -> Result<u64, (u64, TargetFailure)> {
        let mut width = call
            .dimensions
            .map(|n| n as usize)
            .or_else(|| vectors.iter().flatten().map(Vec::len).next());
        let mut tokens = 0;
        let size = |i: usize| attempt.unique.get(i).map_or(0, |t| t.len());
        for run in batches(misses, size, MAX_BATCH_INPUTS, MAX_BATCH_BYTES) {
            let slots = misses.get(run).unwrap_or_default();
            let texts: Vec<&str> = slots.iter().map(|&i| attempt.unique[i]).collect();
            let answer = self.embed_batch(attempt, call, &texts, width).await;
            let (fresh, used) = answer.map_err(|failure| (tokens, failure))?;
            tokens = used.saturating_add(tokens); // counts from upstream are hostile
            width = width.or_else(|| fresh.first().map(Vec::len));
            self.store_vectors(attempt, slots, &fresh).await;
            for (&slot, vector) in slots.iter().zip(fresh) {
                if let Some(place) = vectors.get_mut(slot) {
                    *place = Some(vector);
                }
            }
        }
        Ok(tokens)
    }

    /// One upstream request: `texts`' vectors (each `width` long when known) and the input tokens
    /// billed (estimated when the answer does not say).
    async fn embed_batch(
        self: &Rc<Self>,
        attempt: &Attempt<'_>,
        call: &EmbedCall,
        texts: &[&str],
        width: Option<usize>,
    ) -> Result<(Vec<Vec<f32>>, u64), TargetFailure> {
        let target = attempt.target;
        let prepared = self
            .embed_batch_request((target, attempt.url, attempt.model), call, texts)
            .await?;
        let limits = self.options.limits.overridden_by(&prepared.policy.limits);
        let idle = prepared.timeout.idle_bound();
        let response = self.send_to(target, prepared).await?;
        let text = self
            .read_answer(&response.response, &call.signal, &limits, idle)
            .await?;
        let parsed =
            parse_embeddings(&text, texts.len(), width).map_err(|why| unreadable(target, why))?;
        let used = match response.cached {
            true => 0,
            false => parsed
                .prompt_tokens
                .unwrap_or_else(|| estimate_tokens(texts)),
        };
        Ok((parsed.vectors, used))
    }

    /// Stores the `fresh` vectors of the unique texts `slots` under their keys, all at once; a
    /// store that fails is reported.
    async fn store_vectors(&self, attempt: &Attempt<'_>, slots: &[usize], fresh: &[Vec<f32>]) {
        let Some(cache) = &self.cache else {
            return;
        };
        let now = self.platform.wall_ms();
        let entries = slots
            .iter()
            .zip(fresh)
            .filter_map(|(&slot, vector)| {
                let key = attempt.keys.get(slot)?;
                Some((
                    key.as_str(),
                    cache.entry(200, Vec::new(), to_bytes(vector), now),
                ))
            })
            .collect();
        for error in cache.put_many(entries, now).await {
            self.store_error(attempt.url, &error);
        }
    }
}

/// The target cannot embed: its provider has no embeddings API, or it names no model.
fn cannot_embed(target: &TargetConfig) -> TargetFailure {
    let why = match target.embeddings_endpoint {
        None => "has no embeddings API",
        Some(_) => "has no embeddingModel (and the request names no model)",
    };
    let message = format!("{} ({}) {why}", target.name, target.provider.as_str());
    TargetFailure::unavailable(named_error("UpstreamError", "NO_EMBEDDINGS", &message).into())
}

/// The target answered, but not with usable embeddings.
fn unreadable(target: &TargetConfig, why: &str) -> TargetFailure {
    let message = format!("{} answered, but not with embeddings: {why}", target.name);
    TargetFailure::unavailable(named_error("UpstreamError", "UNREADABLE_ANSWER", &message).into())
}
