//! The semantic cache in chat calls (`cache.semantic`): what [`crate::core::semantic`] decides,
//! wired to the client's embeddings and the chat chain.
//!
//! A call whose question the cache may use ([`question`]) starts embedding it at once, with the one
//! embedding target (`embeddingTarget`, or the first target that can embed, so that every vector is
//! in one space), through [`Inner::embed_with`]: the per-text embedding cache, the target's breaker,
//! retries and budgets. Started before the chain, the embedding is ready when the chain fails (and
//! was asked before this call's own failures could open the embedder's breaker), and it is the
//! vector the answer is stored under when the chain succeeds: one embedding per call either way.
//! With `as: "first"` the call waits for it and looks up before asking any target.
//!
//! An embedding that fails never fails the call: the call goes on without the semantic cache, and
//! an `error` event (a `CacheStoreError`) says why. `chatStream()` answers are stored too (embedded
//! once the stream has ended); the cache answers `chat()` calls.
//!
//! When the answer comes before the embedding, its store finishes in the background (kept alive by
//! `resilience.waitUntil` in a Worker). A lookup waits for the stores under way when calls may wait
//! on each other (`dedupe`, off by default in workerd, where a request must not wait on another's
//! I/O), so that a question asked right after an answer finds it.

use crate::core::config::CacheMode;
use crate::core::event::Event;
use crate::core::llm::{Completion, Outcome, MAX_TARGETS};
use crate::core::platform::Platform;
use crate::core::semantic::{
    question, rest_of_request, semantic_key, storable, Mode, SemanticKeyParts, TargetIdentity,
};
use crate::wasm::abort::is_aborted;
use crate::wasm::chat_request::ChatCall;
use crate::wasm::chat_result::{chat_result, TargetCompletion};
use crate::wasm::embed_request::EmbedCall;
use crate::wasm::inner::Inner;
use crate::wasm::js::{get, promise, set};
use crate::wasm::request_policy::RequestPolicy;
use crate::wasm::semantic_cache::{Keyed, Probe, Stored};
use js_sys::{Array, Promise};
use std::cell::OnceCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

impl Inner {
    /// Starts embedding `call`'s question for the semantic cache (the embedding aborts with
    /// `signal`); `None` when the cache is off, the call says `resilience.cache: "bypass"` (go to
    /// the upstream, never share: no similar answer, none stored), or it has no question it may use.
    pub(crate) fn probe(self: &Rc<Self>, call: &ChatCall, signal: JsValue) -> Option<Probe> {
        let semantic = self.semantic.as_ref()?;
        if call.policy.cache == CacheMode::Bypass {
            return None;
        }
        let asked = question(&call.messages)?;
        let targets = &self.options.targets;
        let embedder = semantic.config.embedding_target.as_deref();
        let embedder = targets
            .iter()
            .position(|t| Some(t.name.as_str()) == embedder)?;
        let rest = rest_of_request(&call.params(targets.first()?, false), asked.index);
        let options = call.provider_options.clone();
        let embedding = EmbedCall {
            texts: vec![asked.text],
            model: None,
            dimensions: None,
            user: call.user.clone(),
            signal,
            policy: call.policy.clone(),
        };
        let keyed = Rc::new(OnceCell::new());
        let (inner, slot) = (self.clone(), keyed.clone());
        let done = promise(async move {
            let Some(target) = inner.options.targets.get(embedder) else {
                return Ok(JsValue::UNDEFINED);
            };
            match inner.embed_with(target, &embedding).await {
                Ok(embedded) => {
                    let digest =
                        inner.semantic_digest(&rest, &options, (&embedded.target, &embedded.model));
                    if let Some(vector) = embedded.vectors.into_iter().next() {
                        let _ = slot.set(Keyed { vector, digest });
                    }
                }
                Err(_) if is_aborted(embedding.signal.dyn_ref::<AbortSignal>()) => {}
                Err(error) => {
                    let url = target.embeddings_endpoint.as_deref().unwrap_or_default();
                    let why = get(&error, "message").as_string().unwrap_or_default();
                    inner.platform.emit(Event::StoreError {
                        url,
                        message: &format!(
                            "cache.semantic could not embed the question, so the call goes on \
                             without the semantic cache: {why}"
                        ),
                    });
                }
            }
            Ok(JsValue::UNDEFINED)
        });
        Some(Probe { keyed, done })
    }

    /// With `as: "first"`, the semantic cache's answer, if it has one.
    pub(crate) async fn answer_first(&self, probe: Option<&Probe>) -> Option<JsValue> {
        let semantic = self.semantic.as_ref()?;
        if semantic.config.mode != Mode::First {
            return None;
        }
        self.semantic_answer(probe?).await
    }

    /// The semantic cache's answer to a call whose targets failed with `outcomes`, if that is a
    /// failure it may answer ([`SemanticConfig::answers_failure`]) and it has one.
    pub(crate) async fn answer_failure(
        &self,
        probe: Option<&Probe>,
        outcomes: &[Outcome],
    ) -> Option<JsValue> {
        let semantic = self.semantic.as_ref()?;
        if !semantic.config.answers_failure(outcomes) {
            return None;
        }
        self.semantic_answer(probe?).await
    }

    /// Looks the question up: a hit becomes a `ChatResult` marked `cached: "semantic"` with its
    /// `similarity`, announced by a `cache` event.
    async fn semantic_answer(&self, probe: &Probe) -> Option<JsValue> {
        let semantic = self.semantic.as_ref()?;
        if self.options.dedupe {
            let stores = semantic.stores.borrow().clone();
            let _ = JsFuture::from(stores).await;
        }
        let keyed = probe.keyed().await?;
        let (target, completion, similarity) = {
            let mut index = semantic.index.borrow_mut();
            let hit = index.lookup(&keyed.digest, &keyed.vector, semantic.config.threshold)?;
            (
                hit.value.target,
                hit.value.completion.clone(),
                hit.similarity,
            )
        };
        let target = self.options.targets.get(target)?;
        self.platform.emit(Event::Cache {
            url: &target.endpoint,
            result: "semantic",
        });
        let answered = TargetCompletion {
            completion,
            attempts: 0,
            cached: false,
        };
        let result = chat_result(target, &answered, 0);
        set(&result, "cached", &"semantic".into());
        set(&result, "similarity", &f64::from(similarity).into());
        Some(result)
    }

    /// Stores `target`'s answer under the probe's question, if it is one to store
    /// ([`storable`]): at once when the question is embedded, else once it is (in the background,
    /// handed to `resilience.waitUntil` when given).
    pub(crate) fn remember(
        self: &Rc<Self>,
        probe: Option<Probe>,
        (target, completion): (usize, &Completion),
        policy: &RequestPolicy,
    ) {
        let (Some(semantic), Some(probe)) = (&self.semantic, probe) else {
            return;
        };
        if !storable(completion) {
            return;
        }
        let stored = Stored {
            target,
            completion: completion.clone(),
        };
        if let Some(keyed) = probe.keyed.get() {
            semantic.insert(keyed, stored);
            return;
        }
        let inner = self.clone();
        let store = promise(async move {
            if let (Some(keyed), Some(semantic)) = (probe.keyed().await, &inner.semantic) {
                semantic.insert(keyed, stored);
            }
            Ok(JsValue::UNDEFINED)
        });
        let all = Promise::all(&Array::of2(&semantic.stores.borrow(), &store));
        *semantic.stores.borrow_mut() = all;
        if let Some(wait_until) = &policy.wait_until {
            let _ = wait_until.call1(&JsValue::NULL, &store);
        }
    }

    /// The digest of everything but the question: the request without it (`rest`), both
    /// providers' options, the chain's targets with their headers and credentials, the embedding
    /// target and model, the cache's namespace.
    fn semantic_digest(
        &self,
        rest: &str,
        options: &[Option<String>; 2],
        embedding: (&str, &str),
    ) -> [u8; 32] {
        let targets = self.options.targets.iter().take(MAX_TARGETS);
        let headers: Vec<Vec<(&str, &str)>> = targets
            .clone()
            .map(|t| {
                let all = self.options.headers.iter().chain(&t.headers);
                all.map(|(n, v)| (n.as_str(), v.as_str())).collect()
            })
            .collect();
        let identities: Vec<TargetIdentity> = targets
            .zip(&headers)
            .map(|(t, headers)| TargetIdentity {
                provider: t.provider.as_str(),
                url: &t.endpoint,
                model: &t.model,
                api_key: t.api_key.as_deref(),
                headers,
            })
            .collect();
        semantic_key(&SemanticKeyParts {
            request: rest,
            provider_options: [options[0].as_deref(), options[1].as_deref()],
            targets: &identities,
            embedding,
            namespace: self
                .cache
                .as_ref()
                .map_or("", |c| c.options.namespace.as_str()),
        })
    }
}
