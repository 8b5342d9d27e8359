//! [`PolicyBoard`]: the state behind a shared `StateStore`, hosted by the package's Durable Object
//! (`sturdy-llm/workers`). The core's board behind a JS face; the client side of the exchange is
//! [`crate::wasm::shared_state`].

use crate::core::breaker::{BreakerConfig, StateKind, Verdict};
use crate::core::policy_board;
use crate::core::rate_limit::RateLimitConfig;
use crate::core::sorted_map::SortedMap;
use crate::wasm::js::ObjectBuilder;
use crate::wasm::options::parse_client_options;
use crate::wasm::reader::{range_error, type_error};
use wasm_bindgen::prelude::*;

/// Most distinct settings whose parse a board keeps.
const MAX_SETTINGS: usize = 64;
/// Longest settings string a board reads (a client's are about 200 bytes).
const MAX_SETTINGS_BYTES: usize = 1024;

/// A caller's settings, parsed.
type Settings = (Option<BreakerConfig>, Option<RateLimitConfig>);

/// The state behind a shared `StateStore` (the core's [`policy_board::PolicyBoard`]); the package's
/// Durable Object (`sturdy-llm/workers`) hosts one. Each call passes the caller's settings
/// (`{ breaker }` or `{ rateLimit }` as JSON, as for `ResilientClient`); the board's own options serve
/// a caller that passes none.
#[wasm_bindgen]
pub struct PolicyBoard {
    board: policy_board::PolicyBoard,
    /// Settings strings already parsed: clients send the same few on every call.
    parsed: SortedMap<String, Settings>,
}

#[wasm_bindgen]
impl PolicyBoard {
    /// A board whose defaults are `{ breaker, rateLimit }` options (as for `ResilientClient`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Pick<ClientOptions, \"breaker\" | \"rateLimit\">")]
        options: JsValue,
    ) -> Result<PolicyBoard, JsValue> {
        let config = parse_client_options(options)?.config;
        Ok(PolicyBoard {
            board: policy_board::PolicyBoard::new(
                config.breaker.map(|(cfg, _)| cfg),
                config.rate_limit.map(|(cfg, _)| cfg),
            ),
            parsed: SortedMap::new(),
        })
    }

    /// `{ ok, state, probe, permit?, retryAfterMs? }` for a call on `key` at `now` (ms) under the
    /// caller's `{ breaker }` settings. Throws a TypeError or RangeError naming a wrong setting.
    pub fn admit(
        &mut self,
        key: &str,
        now: f64,
        #[wasm_bindgen(unchecked_param_type = "string | undefined")] settings: JsValue,
    ) -> Result<JsValue, JsValue> {
        let cfg = self.settings(settings)?.0;
        let admission = self.board.admit(key, cfg.as_ref(), now as u64);
        let answer = match admission.admitted {
            Ok(Some(permit)) => ObjectBuilder::new()
                .bool("ok", true)
                .bool("probe", true)
                .num("permit", permit),
            Ok(None) => ObjectBuilder::new().bool("ok", true),
            Err(retry_after_ms) => ObjectBuilder::new()
                .bool("ok", false)
                .num("retryAfterMs", retry_after_ms as f64),
        };
        Ok(answer.str("state", admission.state.as_str()).build())
    }

    /// Records a call's verdict (`"success"`, `"failure"`, `"ignored"`); a probe passes its permit.
    pub fn record(
        &mut self,
        key: &str,
        verdict: &str,
        permit: JsValue,
        now: f64,
        #[wasm_bindgen(unchecked_param_type = "string | undefined")] settings: JsValue,
    ) -> Result<JsValue, JsValue> {
        let cfg = self.settings(settings)?.0;
        let verdict = Verdict::from_name(verdict);
        let probe = permit.as_f64().map(|id| id as u32);
        let state: StateKind = self
            .board
            .record(key, verdict, probe, cfg.as_ref(), now as u64);
        Ok(ObjectBuilder::new().str("state", state.as_str()).build())
    }

    /// `{ ok: true, waitMs }` or `{ ok: false, retryAfterMs }` for one request and `tokens`, under
    /// the caller's `{ rateLimit }` settings.
    pub fn take(
        &mut self,
        key: &str,
        tokens: f64,
        now: f64,
        #[wasm_bindgen(unchecked_param_type = "string | undefined")] settings: JsValue,
    ) -> Result<JsValue, JsValue> {
        let cfg = self.settings(settings)?.1;
        let tokens = tokens.max(0.0) as u64;
        let answer = match self.board.take(key, tokens, cfg.as_ref(), now as u64) {
            Ok(wait_ms) => ObjectBuilder::new()
                .bool("ok", true)
                .num("waitMs", wait_ms as f64),
            Err(retry_after_ms) => ObjectBuilder::new()
                .bool("ok", false)
                .num("retryAfterMs", retry_after_ms as f64),
        };
        Ok(answer.build())
    }
}

impl PolicyBoard {
    /// A caller's settings (none when it sent none), parsed once per distinct string.
    fn settings(&mut self, settings: JsValue) -> Result<Settings, JsValue> {
        if settings.is_undefined() || settings.is_null() {
            return Ok((None, None));
        }
        let Some(text) = settings.as_string() else {
            return Err(type_error("settings", "a JSON string", &settings));
        };
        if let Some(parsed) = self.parsed.get(&text) {
            return Ok(parsed.clone());
        }
        if text.len() > MAX_SETTINGS_BYTES {
            return Err(range_error(
                "settings",
                &format!("at most {MAX_SETTINGS_BYTES} bytes of JSON"),
                &(text.len() as f64).into(),
            ));
        }
        let value = js_sys::JSON::parse(&text).map_err(|_| {
            type_error(
                "settings",
                "JSON of { breaker } or { rateLimit }",
                &text.as_str().into(),
            )
        })?;
        let config = parse_client_options(value)?.config;
        let parsed = (
            config.breaker.map(|(cfg, _)| cfg),
            config.rate_limit.map(|(cfg, _)| cfg),
        );
        if self.parsed.len() >= MAX_SETTINGS {
            self.parsed.pop_first();
        }
        self.parsed.insert(text, parsed.clone());
        Ok(parsed)
    }
}
