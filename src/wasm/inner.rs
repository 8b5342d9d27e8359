//! [`Inner`]: a client's state (its engine, platform, caches, budgets), shared by its calls. The call
//! modules ([`crate::wasm::fetch`], [`crate::wasm::chat`], [`crate::wasm::stream`]) build on it; the
//! exported class ([`crate::wasm::client`]) owns it.

use crate::core::hedge::FirstTokens;
use crate::core::llm::{CostTally, Ledger};
use crate::core::pipeline::{CallSpec, Engine, JoinableCalls, UpstreamResponse};
use crate::core::platform::Platform;
use crate::wasm::abort::until_aborted;
use crate::wasm::answer::{JsResponse, LiveStream};
use crate::wasm::cache::Cache;
use crate::wasm::errors::{abort_error, failure_to_js};
use crate::wasm::js::abort_reason;
use crate::wasm::options::ClientOptions;
use crate::wasm::platform::JsPlatform;
use crate::wasm::request::{prepare, Prepared, RequestDefaults};
use crate::wasm::request_policy::RequestPolicy;
use crate::wasm::semantic_cache::SemanticCache;
use crate::wasm::tap::JoinableStreams;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A client's state, shared (behind an `Rc`) by the class and every call in flight.
pub(crate) struct Inner {
    /// Shared with the calls in flight that identical calls joined (they outlive their starter).
    pub(crate) engine: Rc<Engine>,
    pub(crate) platform: JsPlatform,
    pub(crate) options: ClientOptions,
    pub(crate) in_flight: JoinableCalls<JsResponse>,
    /// Identical stream requests in flight, sharing one upstream body.
    pub(crate) streams: JoinableStreams<LiveStream>,
    pub(crate) cache: Option<Cache>,
    /// Answers to similar questions (`cache.semantic`), in memory.
    pub(crate) semantic: Option<SemanticCache>,
    /// Token and cost budgets for chat calls.
    pub(crate) budget: Option<RefCell<Ledger>>,
    /// What chat calls have cost, per model and per user.
    pub(crate) costs: RefCell<CostTally>,
    /// Each target's recent times to first token, and the hedges started and won.
    pub(crate) first_tokens: RefCell<FirstTokens>,
    pub(crate) seeded: Cell<bool>,
}

impl Inner {
    pub(crate) fn platform_now(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    /// Seeds jitter on first use: workerd forbids `crypto.getRandomValues` at module scope, where
    /// clients are commonly constructed.
    fn seed_once(&self) {
        if self.seeded.replace(true) {
            return;
        }
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_ok() {
            self.engine.reseed(u64::from_le_bytes(bytes));
        } else {
            self.engine.reseed(js_sys::Date::now() as u64);
        }
    }

    /// Empties the cache, the semantic cache included.
    pub(crate) async fn clear_cache(&self) -> Result<JsValue, JsValue> {
        if let Some(semantic) = &self.semantic {
            semantic.clear();
        }
        if let Some(cache) = &self.cache {
            cache.clear().await?;
        }
        Ok(JsValue::UNDEFINED)
    }

    /// Normalises fetch arguments with the client's defaults.
    pub(crate) async fn prepare(&self, input: JsValue, init: JsValue) -> Result<Prepared, JsValue> {
        self.prepare_policy(input, init, None).await
    }

    /// [`Inner::prepare`] for a request whose `resilience` was parsed already (a chat or embed
    /// call's, once for all its targets): `init` carries none.
    pub(crate) async fn prepare_with(
        &self,
        input: JsValue,
        init: JsValue,
        policy: RequestPolicy,
    ) -> Result<Prepared, JsValue> {
        self.prepare_policy(input, init, Some(policy)).await
    }

    async fn prepare_policy(
        &self,
        input: JsValue,
        init: JsValue,
        policy: Option<RequestPolicy>,
    ) -> Result<Prepared, JsValue> {
        self.seed_once();
        let defaults = RequestDefaults {
            base_url: self.options.base_url.as_deref(),
            headers: &self.options.headers,
            retry: self.engine.config().retry.as_ref(),
            timeout: self.engine.config().timeout,
            keyed: self.options.dedupe || self.cache.is_some(),
            namespace: self
                .cache
                .as_ref()
                .map_or("", |c| c.options.namespace.as_str()),
            count_tokens: self
                .engine
                .config()
                .rate_limit
                .as_ref()
                .is_some_and(|(limit, _)| limit.tokens_per_minute.is_some()),
            now_ms: self.platform.now_ms(),
        };
        prepare(input, init, &defaults, policy).await
    }

    /// Runs a prepared request through the pipeline on `platform`, racing the caller's signal;
    /// with `joinable`, identical calls in flight share one upstream call.
    pub(crate) async fn call(
        &self,
        prepared: Prepared,
        joinable: Option<(&JoinableCalls<JsResponse>, &str)>,
    ) -> Result<UpstreamResponse<JsResponse>, JsValue> {
        let platform = &self.platform;
        let retry = prepared.retry(self.engine.config().retry.as_ref()).cloned();
        let call = Rc::new(CallSpec {
            request: prepared.request,
            url: prepared.url,
            origin: prepared.origin,
            rate_key: prepared.policy.rate_limit_key,
            timeout: prepared.timeout,
            spent_ms: platform.now_ms().saturating_sub(prepared.started_ms),
            retry,
            tokens: prepared.tokens,
            learn_limits: prepared.learn_limits,
        });
        // Boxed: the pipeline's future is the bulk of a call's state, and kept inline it would be
        // counted once per path a call can take (~10 KB per call in flight instead of ~4).
        let work = async {
            match joinable {
                Some((flights, key)) => {
                    Box::pin(self.engine.execute_or_join(platform, flights, &call, key)).await
                }
                None => Box::pin(self.engine.execute(platform, &call)).await,
            }
        };
        let signal = prepared.signal.as_ref();
        let result = until_aborted(signal, work).await?;
        // The caller's abort also fails the fetch in flight; when that failure is seen before the
        // abort itself (the order of the two is the runtime's), it is still the abort.
        result.map_err(|failure| match signal.and_then(abort_reason) {
            Some(reason) => abort_error(&reason),
            None => failure_to_js(&failure),
        })
    }
}
