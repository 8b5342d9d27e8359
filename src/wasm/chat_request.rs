//! `chat(request)` in: the `ChatRequest` read into the core's portable request
//! ([`crate::core::llm::request`]), bounded before anything is copied into wasm memory.
//!
//! Every string and every JSON value (a tool's parameter schema, a response schema, provider
//! options) counts against one budget for the whole request, [`MAX_CHAT_CHARS`], measured in JS
//! before the copy; each message, content part and tool call counts
//! [`ITEM_CHARS`](crate::wasm::chat_request_bounds::ITEM_CHARS) more, so their number is bounded
//! too. JSON values are taken as `JSON.stringify` writes them (a throwing getter, a
//! cycle or a BigInt is a `TypeError` naming the field) and must be objects the core's reader
//! accepts (nesting at most 64 deep). Prompt-cache marks (`cache: true`) are counted as they are
//! read: one past [`MAX_CACHE_BREAKPOINTS`](crate::core::llm::request::MAX_CACHE_BREAKPOINTS) is a
//! `RangeError` naming it and the count (see [`crate::wasm::chat_request_bounds`]).

use crate::core::hedge::HedgeAfter;
use crate::core::json::Json;
use crate::core::llm::request::{
    parse_data_url, CacheMarks as Marks, ChatParams, Message, Part, ResponseFormat, Role, Tool,
    ToolCall, ToolChoice, RESERVED_OPTIONS,
};
use crate::core::llm::Provider;
use crate::core::retry::RetryConfig;
use crate::wasm::chat_options::{parse_hedge, TargetConfig};
use crate::wasm::chat_request_bounds::{cache_mark, Chars, MAX_CHAT_CHARS};
use crate::wasm::reader::{array, range_error, type_error, Reader};
use crate::wasm::request_policy::{parse_request_policy, RequestPolicy};
use wasm_bindgen::prelude::*;

/// Most messages in one chat request.
pub const MAX_MESSAGES: u32 = 10_000;
/// Most tools in one request (OpenAI's own limit).
pub const MAX_TOOLS: u32 = 128;
/// Most tool calls in one assistant message, and stop sequences in a request.
pub const MAX_ITEMS: u32 = 128;

/// A parsed `ChatRequest`.
#[derive(Clone)]
pub struct ChatCall {
    /// The conversation.
    pub messages: Vec<Message>,
    /// `tools`.
    pub tools: Vec<Tool>,
    /// `toolChoice`.
    pub tool_choice: Option<ToolChoice>,
    /// `responseFormat`.
    pub response_format: Option<ResponseFormat>,
    /// `maxTokens`.
    pub max_tokens: Option<u32>,
    /// `temperature` × 1000.
    pub temperature_milli: Option<u32>,
    /// `topP` × 1000.
    pub top_p_milli: Option<u32>,
    /// `stop`.
    pub stop: Vec<String>,
    /// `seed`.
    pub seed: Option<i64>,
    /// `providerOptions.openai` and `.anthropic`, as JSON text.
    pub provider_options: [Option<String>; 2],
    /// `user`, or "anonymous": budgets are per user.
    pub user: String,
    /// `signal`, passed on to every attempt.
    pub signal: JsValue,
    /// `resilience`, parsed once over the client's retry settings: every target's request runs on it.
    pub policy: RequestPolicy,
    /// Text the answer continues (a mid-stream fallback's continuation; never the caller's).
    pub prefill: Option<String>,
    /// `hedge`: `None` follows the client's; `Some(None)` (`false`) never hedges.
    pub hedge: Option<Option<HedgeAfter>>,
}

/// Parses `chat(request)`; a partial `resilience.retry` is read over `client_retry`.
pub fn parse_chat_request(
    value: JsValue,
    client_retry: Option<&RetryConfig>,
) -> Result<ChatCall, JsValue> {
    let Some(r) = Reader::root(value.clone(), "request")? else {
        return Err(type_error("request", "a ChatRequest object", &value));
    };
    r.only(&[
        "messages",
        "tools",
        "toolChoice",
        "responseFormat",
        "maxTokens",
        "temperature",
        "topP",
        "stop",
        "seed",
        "user",
        "signal",
        "resilience",
        "providerOptions",
        "hedge",
    ])?;
    let mut chars = Chars(MAX_CHAT_CHARS);
    let mut marks = Marks::default();
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
    let messages = list
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("request.messages[{i}]");
            message(item, &path, (&mut chars, &mut marks))
        })
        .collect::<Result<_, _>>()?;
    let tools = r
        .list("tools", MAX_TOOLS)?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, item)| tool(item, &format!("request.tools[{i}]"), &mut chars, &mut marks))
        .collect::<Result<_, _>>()?;
    let stop = r
        .list("stop", MAX_ITEMS)?
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, item)| chars.string(item, &format!("request.stop[{i}]")))
        .collect::<Result<_, _>>()?;
    let milli = |key: &str, max: f64| -> Result<Option<u32>, JsValue> {
        Ok(r.number(key, 0.0, max)?
            .map(|t| (t * 1000.0).round() as u32))
    };
    Ok(ChatCall {
        messages,
        tools,
        tool_choice: tool_choice(&r)?,
        response_format: response_format(&r, &mut chars)?,
        max_tokens: r.integer("maxTokens", 1, 1 << 24)?.map(|n| n as u32),
        temperature_milli: milli("temperature", 2.0)?,
        top_p_milli: milli("topP", 1.0)?,
        stop,
        seed: seed(&r)?,
        provider_options: provider_options(&r, &mut chars)?,
        user: r.string("user")?.unwrap_or_else(|| "anonymous".to_string()),
        signal: r.raw("signal")?.unwrap_or(JsValue::UNDEFINED),
        policy: parse_request_policy(
            r.raw("resilience")?.unwrap_or(JsValue::UNDEFINED),
            client_retry,
        )?,
        prefill: None,
        hedge: parse_hedge(&r)?,
    })
}

/// One `ChatMessage`: `{ role, content, cache? }`, an assistant's `toolCalls`, a tool's
/// `toolCallId`.
fn message(
    item: JsValue,
    path: &str,
    (chars, marks): (&mut Chars, &mut Marks),
) -> Result<Message, JsValue> {
    chars.item(path)?;
    let Some(m) = Reader::root(item.clone(), path)? else {
        return Err(type_error(path, "a { role, content } object", &item));
    };
    let role = m
        .choice("role", &["system", "user", "assistant", "tool"])?
        .and_then(Role::parse)
        .ok_or_else(|| type_error(&format!("{path}.role"), "a role", &JsValue::UNDEFINED))?;
    let mut message = Message {
        role,
        content: Vec::new(),
        tool_calls: Vec::new(),
        tool_call_id: None,
        cache_parts: Vec::new(),
        cache: false,
    };
    let content = m.raw("content")?.unwrap_or(JsValue::UNDEFINED);
    let content_path = format!("{path}.content");
    match role {
        Role::System | Role::User => {
            m.only(&["role", "content", "cache"])?;
            (message.content, message.cache_parts) =
                parts(&content, &content_path, (chars, marks))?;
        }
        Role::Assistant => {
            m.only(&["role", "content", "toolCalls", "cache"])?;
            if !content.is_null() {
                message.content = vec![Part::Text(chars.string(&content, &content_path)?)];
            }
            let calls = m.list("toolCalls", MAX_ITEMS)?.unwrap_or_default();
            for (i, call) in calls.into_iter().enumerate() {
                let call_path = format!("{path}.toolCalls[{i}]");
                chars.item(&call_path)?;
                let Some(c) = Reader::root(call.clone(), &call_path)? else {
                    return Err(type_error(
                        &call_path,
                        "a { id, name, arguments } object",
                        &call,
                    ));
                };
                c.only(&["id", "name", "arguments"])?;
                message.tool_calls.push(ToolCall {
                    id: chars.field(&c, "id")?,
                    name: chars.field(&c, "name")?,
                    arguments: chars.field(&c, "arguments")?,
                });
            }
        }
        Role::Tool => {
            m.only(&["role", "content", "toolCallId", "cache"])?;
            message.tool_call_id = Some(chars.field(&m, "toolCallId")?);
            message.content = vec![Part::Text(chars.string(&content, &content_path)?)];
        }
    }
    message.cache = cache_mark(&m, marks)?;
    Ok(message)
}

/// A message's content: a string, or an array of `{ type: "text", text, cache? }` and
/// `{ type: "image", url, cache? }` parts; with the indexes of the parts marked for the cache.
fn parts(
    content: &JsValue,
    path: &str,
    (chars, marks): (&mut Chars, &mut Marks),
) -> Result<(Vec<Part>, Vec<usize>), JsValue> {
    if content.is_string() {
        return Ok((vec![Part::Text(chars.string(content, path)?)], Vec::new()));
    }
    if !content.is_object() {
        return Err(type_error(path, "a string or an array of parts", content));
    }
    let items = array(content, path, MAX_MESSAGES)?;
    let mut parts = Vec::with_capacity(items.len());
    let mut cached = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let part_path = format!("{path}[{i}]");
        chars.item(&part_path)?;
        let Some(p) = Reader::root(item.clone(), &part_path)? else {
            return Err(type_error(&part_path, "a content part object", &item));
        };
        match p.choice("type", &["text", "image"])? {
            Some("text") => {
                p.only(&["type", "text", "cache"])?;
                parts.push(Part::Text(chars.field(&p, "text")?));
            }
            Some(_) => {
                p.only(&["type", "url", "cache"])?;
                let url = chars.field(&p, "url")?;
                if let Some(problem) = image_url_problem(&url) {
                    return Err(range_error(
                        &format!("{part_path}.url"),
                        problem,
                        &url.into(),
                    ));
                }
                parts.push(Part::Image(url));
            }
            None => {
                return Err(type_error(
                    &format!("{part_path}.type"),
                    "\"text\" or \"image\"",
                    &JsValue::UNDEFINED,
                ))
            }
        }
        if cache_mark(&p, marks)? {
            cached.push(i);
        }
    }
    Ok((parts, cached))
}

/// Why an image URL cannot be sent, if it cannot: it must be `https:` / `http:`, or a base64
/// `data:image/...;base64,` URL (the form Anthropic's image blocks need).
fn image_url_problem(url: &str) -> Option<&'static str> {
    let web = ["https:", "http:"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    });
    let image_data =
        parse_data_url(url).is_some_and(|(media_type, _)| media_type.starts_with("image/"));
    (!web && !image_data).then_some("an https: URL or a data:image/...;base64, URL")
}

/// One `Tool`: `{ name, description?, parameters, cache? }`.
fn tool(item: JsValue, path: &str, chars: &mut Chars, marks: &mut Marks) -> Result<Tool, JsValue> {
    let Some(t) = Reader::root(item.clone(), path)? else {
        return Err(type_error(path, "a { name, parameters } object", &item));
    };
    t.only(&["name", "description", "parameters", "cache"])?;
    let description = match t.raw("description")? {
        Some(text) => Some(chars.string(&text, &format!("{path}.description"))?),
        None => None,
    };
    Ok(Tool {
        name: chars.field(&t, "name")?,
        description,
        parameters: chars.json(&t, "parameters")?.ok_or_else(|| {
            type_error(
                &format!("{path}.parameters"),
                "a JSON Schema object",
                &JsValue::UNDEFINED,
            )
        })?,
        cache: cache_mark(&t, marks)?,
    })
}

/// `toolChoice`: `"auto"`, `"none"`, `"required"` or `{ name }`.
fn tool_choice(r: &Reader) -> Result<Option<ToolChoice>, JsValue> {
    let Some(value) = r.raw("toolChoice")? else {
        return Ok(None);
    };
    if value.is_string() {
        return Ok(
            match r.choice("toolChoice", &["auto", "none", "required"])? {
                Some("none") => Some(ToolChoice::None),
                Some("required") => Some(ToolChoice::Required),
                _ => Some(ToolChoice::Auto),
            },
        );
    }
    let Some(named) = r.object("toolChoice")? else {
        return Ok(None);
    };
    named.only(&["name"])?;
    let name = named.string("name")?.ok_or_else(|| {
        type_error(
            "request.toolChoice.name",
            "a tool's name",
            &JsValue::UNDEFINED,
        )
    })?;
    Ok(Some(ToolChoice::Named(name)))
}

/// `responseFormat`: `{ type: "json" }` or `{ type: "json_schema", name, schema, strict? }`.
fn response_format(r: &Reader, chars: &mut Chars) -> Result<Option<ResponseFormat>, JsValue> {
    let Some(f) = r.object("responseFormat")? else {
        return Ok(None);
    };
    match f.choice("type", &["json", "json_schema"])? {
        Some("json") => {
            f.only(&["type"])?;
            Ok(Some(ResponseFormat::Json))
        }
        Some(_) => {
            f.only(&["type", "name", "schema", "strict"])?;
            let schema = chars.json(&f, "schema")?.ok_or_else(|| {
                type_error(
                    "request.responseFormat.schema",
                    "a JSON Schema object",
                    &JsValue::UNDEFINED,
                )
            })?;
            Ok(Some(ResponseFormat::JsonSchema {
                name: chars.field(&f, "name")?,
                schema,
                strict: f.boolean("strict")?,
            }))
        }
        None => Err(type_error(
            "request.responseFormat.type",
            "\"json\" or \"json_schema\"",
            &JsValue::UNDEFINED,
        )),
    }
}

/// `seed`: a whole number a JS number holds exactly.
fn seed(r: &Reader) -> Result<Option<i64>, JsValue> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    let Some(n) = r.number("seed", -MAX_SAFE, MAX_SAFE)? else {
        return Ok(None);
    };
    if n.fract() != 0.0 {
        return Err(range_error("request.seed", "a whole number", &n.into()));
    }
    Ok(Some(n as i64))
}

/// `providerOptions`: `{ openai?, anthropic? }`, objects merged into that dialect's body, without
/// the members the layer sets ([`RESERVED_OPTIONS`]).
fn provider_options(r: &Reader, chars: &mut Chars) -> Result<[Option<String>; 2], JsValue> {
    let Some(o) = r.object("providerOptions")? else {
        return Ok([None, None]);
    };
    o.only(&["openai", "anthropic"])?;
    let options = [chars.json(&o, "openai")?, chars.json(&o, "anthropic")?];
    for (dialect, text) in ["openai", "anthropic"].iter().zip(&options) {
        let Some(Json::Object(members)) = text.as_deref().and_then(Json::parse) else {
            continue;
        };
        if let Some((key, _)) = members
            .iter()
            .find(|(key, _)| RESERVED_OPTIONS.contains(&key.as_ref()))
        {
            let message = format!(
                "request.providerOptions.{dialect}.{key} cannot be set: the layer sets it \
                 (the target's model, the conversation, and whether and how the answer streams)"
            );
            return Err(js_sys::TypeError::new(&message).into());
        }
    }
    Ok(options)
}

impl ChatCall {
    /// The provider-neutral parameters for `target`.
    pub fn params<'a>(&'a self, target: &'a TargetConfig, stream: bool) -> ChatParams<'a> {
        let options = match target.provider {
            Provider::OpenAi => &self.provider_options[0],
            Provider::Anthropic => &self.provider_options[1],
        };
        ChatParams {
            model: &target.model,
            messages: &self.messages,
            tools: &self.tools,
            tool_choice: self.tool_choice.as_ref(),
            response_format: self.response_format.as_ref(),
            max_tokens: self.max_tokens,
            temperature_milli: self.temperature_milli,
            top_p_milli: self.top_p_milli,
            stop: &self.stop,
            seed: self.seed,
            user: (self.user != "anonymous").then_some(self.user.as_str()),
            provider_options: options.as_deref(),
            stream,
            prefill: self.prefill.as_deref(),
        }
    }
}
