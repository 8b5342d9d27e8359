//! One chat request, two wire formats: what both dialects share (the request's headers and path,
//! the body writer that lets provider options win, the answer's shape); each dialect's own fields
//! are written and read in [`openai`](super::openai) and [`anthropic`](super::anthropic).
//!
//! Why in the core? Fallback from one provider to the other only works if the *same* call can be
//! written for either, and the two differ in ways that are easy to get subtly wrong: Anthropic takes
//! the system prompt out of the message list, requires strictly alternating roles and a
//! `max_tokens`, and names the user and the usage fields differently. Doing it once here, with
//! tests, keeps the JS layer a thin adapter.
//!
//! Why by hand? No serde in the wasm (see [`crate::core::json`]); every string goes through the
//! one shared escaper ([`write_string`]), JSON the caller handed over (schemas, provider options)
//! is re-emitted from its parsed value ([`Json::write`]) so a body stays valid JSON whatever text
//! it was given, and the temperature is written from an integer (thousandths) so no float
//! formatting is linked in. Writing never fails: what the API would refuse (a malformed image
//! URL, a tool result with no call before it) is sent for the API to judge, with its own message.
//!
//! Provider options (`providerOptions.openai` / `.anthropic`) win: a member they set is left out
//! of what the portable request writes, then all of theirs are written as given ([`Body`]).

use super::request::{ChatParams, Part, ToolCall};
use super::{anthropic, openai};
use crate::core::json::{write_string, Json};
use crate::core::stream::Usage;

/// The `max_tokens` sent to Anthropic when the caller gives none: its API requires the field, and
/// 1024 is the figure of Anthropic's own examples, enough for a usual chat answer. OpenAI gets no
/// `max_tokens` at all in that case (the model's own limit applies).
pub const DEFAULT_ANTHROPIC_MAX_TOKENS: u32 = 1024;

/// The `anthropic-version` header value the bodies are written for.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// An upstream API dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI Chat Completions (and compatible servers).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl Provider {
    /// `"openai"` or `"anthropic"` (exactly, lowercase); `None` for anything else.
    pub fn parse(name: &str) -> Option<Provider> {
        match name {
            "openai" => Some(Provider::OpenAi),
            "anthropic" => Some(Provider::Anthropic),
            _ => None,
        }
    }

    /// The name [`Provider::parse`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

/// A request ready to send: `POST {base}{path}` with these headers and body.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Appended to the provider's base URL (which must not already end in `/v1`).
    pub path: &'static str,
    /// Lowercase header names with their values, credentials included.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

/// Shows header names only for credentials (`authorization`, `x-api-key`), never their values.
impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| match *name {
                "authorization" | "x-api-key" => (*name, "<redacted>"),
                _ => (*name, value.as_str()),
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// The request for `provider`: its path, its headers (`content-type: application/json` for both,
/// since a string body would otherwise go out as `text/plain`, which Anthropic rejects; the key as
/// OpenAI's `authorization: Bearer` or Anthropic's `x-api-key` when one is given, as a local or
/// proxy server may need none; Anthropic's `anthropic-version`) and the body, written by
/// [`openai::write_body`] or [`anthropic::write_body`] (their docs list the fields).
pub fn build_request(
    provider: Provider,
    params: &ChatParams,
    api_key: Option<&str>,
) -> HttpRequest {
    let mut headers = vec![("content-type", "application/json".to_string())];
    let mut body = Body::new(params);
    let path = match provider {
        Provider::OpenAi => {
            if let Some(key) = api_key {
                headers.push(("authorization", format!("Bearer {key}")));
            }
            openai::write_body(params, &mut body);
            "/v1/chat/completions"
        }
        Provider::Anthropic => {
            if let Some(key) = api_key {
                headers.push(("x-api-key", key.to_string()));
            }
            headers.push(("anthropic-version", ANTHROPIC_VERSION.to_string()));
            anthropic::write_body(params, &mut body);
            "/v1/messages"
        }
    };
    HttpRequest {
        path,
        headers,
        body: body.finish(),
    }
}

/// A JSON body being written member by member, leaving out the members the provider options set;
/// [`Body::finish`] appends those.
pub struct Body<'p> {
    out: String,
    options: Vec<(std::borrow::Cow<'p, str>, Json<'p>)>,
}

impl<'p> Body<'p> {
    fn new(params: &ChatParams<'p>) -> Body<'p> {
        // Options that are not a JSON object (the request reader refuses them) are ignored.
        let options = match params.provider_options.and_then(Json::parse) {
            Some(Json::Object(members)) => members,
            _ => Vec::new(),
        };
        let size: usize = params.messages.iter().map(message_size).sum();
        let mut out = String::with_capacity(256 + size);
        out.push('{');
        Body { out, options }
    }

    /// The place to write member `name`'s value (its key written), or `None` when the provider
    /// options set it.
    pub fn member(&mut self, name: &str) -> Option<&mut String> {
        if self.options.iter().any(|(key, _)| key == name) {
            return None;
        }
        self.key(name);
        Some(&mut self.out)
    }

    fn key(&mut self, name: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        write_string(name, &mut self.out);
        self.out.push(':');
    }

    fn finish(mut self) -> String {
        for (name, value) in std::mem::take(&mut self.options) {
            self.key(&name);
            value.write(&mut self.out);
        }
        self.out.push('}');
        self.out
    }
}

/// About the bytes a message takes in a body, to size the buffer once.
fn message_size(message: &super::request::Message) -> usize {
    let parts: usize = message
        .content
        .iter()
        .map(|part| match part {
            Part::Text(text) | Part::Image(text) => text.len() + 32,
        })
        .sum();
    let calls: usize = message
        .tool_calls
        .iter()
        .map(|call| call.id.len() + call.name.len() + call.arguments.len() + 64)
        .sum();
    parts + calls + 48
}

/// Writes `text`, JSON the caller handed over (a schema), compact as parsed; `fallback` when it is
/// not JSON (the request reader refuses that, so only a caller of the core bypassing it gets here).
pub(super) fn write_json_text(text: &str, fallback: &str, out: &mut String) {
    match Json::parse(text) {
        Some(json) => json.write(out),
        None => out.push_str(fallback),
    }
}

/// `milli / 1000` as a JSON number, shortest form: `0`, `0.7`, `1.5`, `0.025`.
pub(super) fn write_milli(milli: u32, out: &mut String) {
    out.push_str(&(milli / 1000).to_string());
    let mut fraction = milli % 1000;
    if fraction == 0 {
        return;
    }
    out.push('.');
    let mut divisor = 100;
    while fraction > 0 {
        let digit = fraction / divisor;
        out.push(char::from(b'0' + digit as u8));
        fraction -= digit * divisor;
        divisor /= 10;
    }
}

/// A JSON array of `items`, each written by `write`.
pub(super) fn write_array<T>(
    items: &[T],
    out: &mut String,
    mut write: impl FnMut(&T, &mut String),
) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(item, out);
    }
    out.push(']');
}

/// A complete, non-streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The generated text (empty when the model produced none, e.g. only a tool call or a
    /// refusal). For a `responseFormat` answered by Anthropic, the JSON (see
    /// [`anthropic`](super::anthropic)).
    pub text: String,
    /// The tool calls the model made, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped, in OpenAI's words whichever provider answered: `stop`, `length`,
    /// `tool_calls`, `content_filter`, or another provider's own reason as sent; empty when absent.
    pub finish_reason: String,
    /// Token counts; zero when the body has none. Anthropic's `input_tokens` excludes prompt-cache
    /// reads and writes, as in the streamed usage.
    pub usage: Usage,
}

/// A non-streamed 2xx body → [`Completion`] ([`openai::read_completion`],
/// [`anthropic::read_completion`]); `None` when the body is not that dialect's answer.
pub fn parse_completion(provider: Provider, body: &str) -> Option<Completion> {
    let json = Json::parse(body)?;
    match provider {
        Provider::OpenAi => openai::read_completion(&json),
        Provider::Anthropic => anthropic::read_completion(&json),
    }
}

/// A count in a `usage` object; 0 when absent.
pub(super) fn count(usage: Option<&Json>, name: &str) -> u64 {
    usage
        .and_then(|u| u.get(name))
        .and_then(Json::as_u64)
        .unwrap_or(0)
}

/// A string member; empty when absent.
pub(super) fn text_of(value: Option<&Json>) -> String {
    value.and_then(Json::as_str).unwrap_or("").to_string()
}

/// The total tokens of a JSON answer's `usage` object (its JSON text), for correcting a
/// tokens-per-minute estimate: OpenAI's `total_tokens`, else `prompt_tokens` +
/// `completion_tokens`, else Anthropic's `input_tokens` + `output_tokens`. `None` when it is not
/// JSON or has none of these (the estimate then stands). The one reader of usage in a plain
/// `fetch` answer, whichever provider.
pub fn usage_total(usage: &str) -> Option<u64> {
    let usage = Json::parse(usage)?;
    let count = |name: &str| usage.get(name).and_then(Json::as_u64);
    let sum = |a: &str, b: &str| count(a)?.checked_add(count(b)?);
    count("total_tokens")
        .or_else(|| sum("prompt_tokens", "completion_tokens"))
        .or_else(|| sum("input_tokens", "output_tokens"))
}
