//! `chat(request)` in: the `ChatRequest` parsed and bounded before anything is copied into wasm
//! memory, and the provider-neutral parameters for each target.

use crate::core::llm::{ChatParams, Message, Role, Tool};
use crate::wasm::chat_options::TargetConfig;
use crate::wasm::reader::{range_error, type_error, Reader};
use js_sys::JsString;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Most messages in one chat request.
pub const MAX_MESSAGES: u32 = 10_000;
/// Most text in one chat request's messages, in UTF-16 code units (8 Mi, about 2M tokens: past
/// the largest context windows; measured before anything is copied into wasm memory, which never
/// shrinks).
pub const MAX_CHAT_CHARS: u32 = 1 << 23;

/// A parsed `ChatRequest`.
pub struct ChatCall {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<Tool>,
    /// `maxTokens`.
    pub max_tokens: Option<u32>,
    /// `temperature` × 1000.
    pub temperature_milli: Option<u32>,
    /// `user`, or "anonymous": budgets are per user.
    pub user: String,
    /// `signal`, passed on to every attempt.
    pub signal: JsValue,
    /// `resilience`, passed on as the request policy.
    pub resilience: JsValue,
}

/// Parses `chat(request)`.
pub fn parse_chat_request(value: JsValue) -> Result<ChatCall, JsValue> {
    let Some(r) = Reader::root(value.clone(), "request")? else {
        return Err(type_error("request", "a ChatRequest object", &value));
    };
    r.only(&[
        "messages",
        "maxTokens",
        "temperature",
        "user",
        "signal",
        "resilience",
    ])?;
    let list = match r.list("messages", MAX_MESSAGES)? {
        Some(list) if !list.is_empty() => list,
        _ => {
            return Err(type_error(
                "request.messages",
                "a non-empty array of messages",
                &r.raw("messages")?.unwrap_or(JsValue::UNDEFINED),
            ))
        }
    };
    let mut messages = Vec::with_capacity(list.len());
    let mut chars_left = MAX_CHAT_CHARS;
    for (i, item) in list.into_iter().enumerate() {
        let path = format!("request.messages[{i}]");
        let Some(m) = Reader::root(item.clone(), &path)? else {
            return Err(type_error(&path, "a { role, content } object", &item));
        };
        m.only(&["role", "content"])?;
        let role = match m.choice("role", &["system", "user", "assistant"])? {
            Some("system") => Role::System,
            Some("assistant") => Role::Assistant,
            Some(_) => Role::User,
            None => {
                return Err(type_error(
                    &format!("{path}.role"),
                    "a role",
                    &JsValue::UNDEFINED,
                ))
            }
        };
        let value = m.raw("content")?.unwrap_or(JsValue::UNDEFINED);
        let content_path = format!("{path}.content");
        let Some(text) = value.dyn_ref::<JsString>() else {
            return Err(type_error(&content_path, "a string", &value));
        };
        // Measured before it is copied: the messages' text together is bounded.
        chars_left = chars_left.checked_sub(text.length()).ok_or_else(|| {
            range_error(
                &content_path,
                &format!("within {MAX_CHAT_CHARS} characters for all messages together"),
                &value,
            )
        })?;
        let content = String::from(text);
        messages.push(Message::text(role, &content));
    }
    let temperature_milli = r
        .number("temperature", 0.0, 2.0)?
        .map(|t| (t * 1000.0).round() as u32);
    Ok(ChatCall {
        messages,
        tools: Vec::new(),
        max_tokens: r.integer("maxTokens", 1, 1 << 24)?.map(|n| n as u32),
        temperature_milli,
        user: r.string("user")?.unwrap_or_else(|| "anonymous".to_string()),
        signal: r.raw("signal")?.unwrap_or(JsValue::UNDEFINED),
        resilience: r.raw("resilience")?.unwrap_or(JsValue::UNDEFINED),
    })
}

impl ChatCall {
    /// The provider-neutral parameters for `target`.
    pub fn params<'a>(&'a self, target: &'a TargetConfig, stream: bool) -> ChatParams<'a> {
        ChatParams {
            model: &target.model,
            messages: &self.messages,
            tools: &self.tools,
            max_tokens: self.max_tokens,
            temperature_milli: self.temperature_milli,
            user: (self.user != "anonymous").then_some(self.user.as_str()),
            stream,
            ..ChatParams::default()
        }
    }
}
