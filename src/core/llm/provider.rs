//! One chat request, two wire formats: what both dialects share (the request's headers and path,
//! the body writer that lets provider options win, the answer's shape); each dialect's own fields
//! are written and read in [`openai`] and [`anthropic`].
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
//! of what the portable request writes, then all of theirs are written as given ([`Body`]), but
//! for the members the layer keeps to itself ([`RESERVED_OPTIONS`]), which are dropped.

use super::request::{ChatParams, Part, ToolCall, RESERVED_OPTIONS};
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
/// finishing it appends those.
pub struct Body<'p> {
    out: String,
    options: Vec<(std::borrow::Cow<'p, str>, Json<'p>)>,
}

impl<'p> Body<'p> {
    fn new(params: &ChatParams<'p>) -> Body<'p> {
        // Options that are not a JSON object, or members the layer keeps to itself (the request
        // reader refuses both), are ignored.
        let mut options = match params.provider_options.and_then(Json::parse) {
            Some(Json::Object(members)) => members,
            _ => Vec::new(),
        };
        options.retain(|(key, _)| !RESERVED_OPTIONS.contains(&key.as_ref()));
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
    /// [`anthropic`]).
    pub text: String,
    /// The tool calls the model made, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped, in OpenAI's words whichever provider answered: `stop`, `length`,
    /// `tool_calls`, `content_filter`, or another provider's own reason as sent; empty when absent.
    pub finish_reason: String,
    /// Token counts; zero when the body has none. Prompt-cache reads and writes are part of
    /// `input_tokens` in both dialects (see [`Usage`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::request::{Message, ResponseFormat, Role, Tool, ToolChoice};

    fn msg(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    pub(crate) fn params<'a>(messages: &'a [Message]) -> ChatParams<'a> {
        ChatParams {
            model: "m",
            messages,
            ..ChatParams::default()
        }
    }

    fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
        request
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn names_round_trip() {
        for p in [Provider::OpenAi, Provider::Anthropic] {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        for r in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Provider::parse("OpenAI"), None);
        assert_eq!(Provider::parse(""), None);
        assert_eq!(Role::parse("developer"), None);
    }

    #[test]
    fn temperature_is_written_from_thousandths() {
        let cases = [
            (0, "0"),
            (700, "0.7"),
            (1500, "1.5"),
            (1000, "1"),
            (25, "0.025"),
            (1234, "1.234"),
            (100, "0.1"),
            (1, "0.001"),
            (2000, "2"),
            (u32::MAX, "4294967.295"),
        ];
        for (milli, text) in cases {
            let mut out = String::new();
            write_milli(milli, &mut out);
            assert_eq!(out, text, "{milli}");
            assert!(Json::parse(&out).is_some());
        }
    }

    #[test]
    fn openai_body_exactly() {
        let messages = [msg(Role::System, "be brief"), msg(Role::User, "hi \"you\"")];
        let mut p = params(&messages);
        p.max_tokens = Some(50);
        p.temperature_milli = Some(700);
        p.user = Some("u-1");
        p.stream = true;
        let r = build_request(Provider::OpenAi, &p, Some("sk-x"));
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(header(&r, "authorization"), Some("Bearer sk-x"));
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(
            r.body,
            r#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi \"you\""}],"max_tokens":50,"temperature":0.7,"user":"u-1","stream":true,"stream_options":{"include_usage":true}}"#
        );
        let bare = build_request(Provider::OpenAi, &params(&messages[1..]), None);
        assert_eq!(header(&bare, "authorization"), None);
        assert_eq!(
            bare.body,
            r#"{"model":"m","messages":[{"role":"user","content":"hi \"you\""}]}"#
        );
    }

    #[test]
    fn anthropic_body_exactly() {
        let messages = [
            msg(Role::System, "rule 1"),
            msg(Role::User, "a"),
            msg(Role::User, "b"),
            msg(Role::System, "rule 2"),
            msg(Role::Assistant, "c"),
            msg(Role::User, "d"),
        ];
        let mut p = params(&messages);
        p.temperature_milli = Some(0);
        p.user = Some("u-1");
        p.stream = true;
        let r = build_request(Provider::Anthropic, &p, Some("sk-ant"));
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(header(&r, "x-api-key"), Some("sk-ant"));
        assert_eq!(header(&r, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(header(&r, "authorization"), None);
        assert_eq!(
            r.body,
            r#"{"model":"m","max_tokens":1024,"system":"rule 1\n\nrule 2","messages":[{"role":"user","content":"a\n\nb"},{"role":"assistant","content":"c"},{"role":"user","content":"d"}],"temperature":0,"metadata":{"user_id":"u-1"},"stream":true}"#
        );
        let mut p = params(&messages[1..2]);
        p.max_tokens = Some(7);
        let r = build_request(Provider::Anthropic, &p, None);
        assert_eq!(header(&r, "x-api-key"), None);
        assert_eq!(
            r.body,
            r#"{"model":"m","max_tokens":7,"messages":[{"role":"user","content":"a"}]}"#
        );
        let empty = build_request(Provider::Anthropic, &params(&[]), None);
        assert_eq!(
            empty.body,
            r#"{"model":"m","max_tokens":1024,"messages":[]}"#
        );
    }

    #[test]
    fn provider_options_win_and_are_written_as_given() {
        let messages = [msg(Role::User, "hi")];
        let mut p = params(&messages);
        p.max_tokens = Some(50);
        p.temperature_milli = Some(500);
        p.provider_options = Some(
            r#"{"max_tokens":null,"reasoning_effort":"low","max_completion_tokens":9,"nested":{"a":[1,2.5e-3,"x\"y"]}}"#,
        );
        let r = build_request(Provider::OpenAi, &p, None);
        assert_eq!(
            r.body,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"max_tokens":null,"reasoning_effort":"low","max_completion_tokens":9,"nested":{"a":[1,2.5e-3,"x\"y"]}}"#
        );
        p.provider_options =
            Some(r#"{"thinking":{"type":"enabled","budget_tokens":2048},"top_k":5}"#);
        let r = build_request(Provider::Anthropic, &p, None);
        assert_eq!(
            r.body,
            r#"{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"thinking":{"type":"enabled","budget_tokens":2048},"top_k":5}"#
        );
        // The members the layer keeps to itself are never taken from the options.
        p.stream = true;
        p.provider_options = Some(
            r#"{"model":"m2","messages":[],"stream":false,"stream_options":{"include_usage":false}}"#,
        );
        for provider in [Provider::OpenAi, Provider::Anthropic] {
            let r = build_request(provider, &p, None);
            assert!(r.body.starts_with(r#"{"model":"m","#), "{}", r.body);
            assert!(r.body.contains(r#""stream":true"#), "{}", r.body);
            assert!(
                !r.body.contains("m2") && !r.body.contains("false"),
                "{}",
                r.body
            );
        }
        p.stream = false;
        // Options that are not an object are ignored (the request reader refuses them).
        for bad in ["[1]", "not json", "\"x\"", ""] {
            p.provider_options = Some(bad);
            let r = build_request(Provider::OpenAi, &p, None);
            assert!(
                r.body.ends_with(r#""max_tokens":50,"temperature":0.5}"#),
                "{bad}"
            );
        }
    }

    /// Every caller string holding quotes, backslashes, control characters and non-ASCII text, in
    /// every field both dialects write: the body stays valid JSON and reads back the same text.
    #[test]
    fn hostile_text_stays_valid_json_in_both_dialects() {
        let hostile = "\"q\" \\ \n\r\t\u{0}\u{1f}\u{7f} é 你好 😀 </script> \u{2028}";
        let call = ToolCall {
            id: hostile.into(),
            name: hostile.into(),
            arguments: hostile.into(),
        };
        let mut assistant = msg(Role::Assistant, hostile);
        assistant.tool_calls.push(call);
        let mut tool = msg(Role::Tool, hostile);
        tool.tool_call_id = Some(hostile.into());
        let mut user = msg(Role::User, hostile);
        user.content.push(Part::Image(hostile.into()));
        user.content
            .push(Part::Image(format!("data:{hostile};base64,{hostile}")));
        let messages = [msg(Role::System, hostile), user, assistant, tool];
        let tools = [Tool {
            name: hostile.into(),
            description: Some(hostile.into()),
            parameters: hostile.into(),
            cache: false,
        }];
        let stop = [hostile.to_string()];
        let choice = ToolChoice::Named(hostile.into());
        let format = ResponseFormat::JsonSchema {
            name: hostile.into(),
            schema: hostile.into(),
            strict: Some(true),
        };
        let p = ChatParams {
            model: hostile,
            messages: &messages,
            tools: &tools,
            tool_choice: Some(&choice),
            response_format: Some(&format),
            max_tokens: Some(u32::MAX),
            temperature_milli: Some(u32::MAX),
            top_p_milli: Some(1),
            stop: &stop,
            seed: Some(i64::MIN),
            user: Some(hostile),
            provider_options: Some(hostile),
            stream: true,
            prefill: Some(hostile),
        };
        for provider in [Provider::OpenAi, Provider::Anthropic] {
            let r = build_request(provider, &p, Some(hostile));
            let json = Json::parse(&r.body).unwrap_or_else(|| panic!("{provider:?}: {}", r.body));
            assert_eq!(json.get("model").and_then(Json::as_str), Some(hostile));
            let texts = r.body.matches("\\\"q\\\"").count();
            assert!(texts >= 10, "{provider:?}: {texts}");
        }
    }

    /// Both dialects end the conversation with the prefill as an assistant message; Anthropic's
    /// without its trailing whitespace (the API refuses it), and a caller's own final assistant
    /// message continued rather than followed by a second one.
    #[test]
    fn a_prefill_is_the_final_assistant_message_in_both_dialects() {
        let messages = [msg(Role::User, "Hi")];
        let p = ChatParams {
            prefill: Some("Hello, \n"),
            ..params(&messages)
        };
        let last = |provider| {
            let body = build_request(provider, &p, None).body;
            let json = Json::parse(&body).expect("json");
            let messages = json.get("messages").expect("messages");
            let last = messages.at(1).expect("two messages");
            let role = last.get("role").and_then(Json::as_str).map(str::to_string);
            let content = last
                .get("content")
                .and_then(Json::as_str)
                .map(str::to_string);
            (role, content)
        };
        let assistant = Some("assistant".to_string());
        assert_eq!(
            last(Provider::OpenAi),
            (assistant.clone(), Some("Hello, \n".into()))
        );
        assert_eq!(
            last(Provider::Anthropic),
            (assistant, Some("Hello,".into()))
        );
        // Whitespace only: Anthropic gets no prefill at all (an empty one is refused too).
        let blank = ChatParams {
            prefill: Some(" \n"),
            ..params(&messages)
        };
        let body = build_request(Provider::Anthropic, &blank, None).body;
        assert!(!body.contains("assistant"), "{body}");
        let own = [msg(Role::User, "Hi"), msg(Role::Assistant, "{")];
        let continued = ChatParams {
            prefill: Some("\"a\""),
            ..params(&own)
        };
        for provider in [Provider::OpenAi, Provider::Anthropic] {
            let body = build_request(provider, &continued, None).body;
            assert!(
                body.contains(r#""content":"{\"a\"""#),
                "{provider:?}: {body}"
            );
        }
    }

    #[test]
    fn debug_hides_keys() {
        for p in [Provider::OpenAi, Provider::Anthropic] {
            let r = build_request(p, &params(&[]), Some("sk-secret"));
            let shown = format!("{r:?}");
            assert!(
                !shown.contains("sk-secret") && shown.contains("redacted"),
                "{shown}"
            );
        }
    }

    #[test]
    fn parses_openai_completion() {
        let body = r#"{
          "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
          "object": "chat.completion",
          "created": 1741569952,
          "model": "gpt-4.1-2025-04-14",
          "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
          }],
          "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}},
          "service_tier": "default"
        }"#;
        assert_eq!(
            parse_completion(Provider::OpenAi, body),
            Some(Completion {
                text: "Hello! How can I help?".into(),
                tool_calls: Vec::new(),
                finish_reason: "stop".into(),
                usage: Usage {
                    input_tokens: 19,
                    output_tokens: 10,
                    ..Usage::default()
                },
            })
        );
        let tool_call = r#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}"#;
        let c = parse_completion(Provider::OpenAi, tool_call);
        assert_eq!(c.as_ref().map(|c| c.text.as_str()), Some(""));
        assert_eq!(c.map(|c| c.usage), Some(Usage::default()));
    }

    #[test]
    fn parses_anthropic_completion() {
        let body = r#"{
          "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
          "type": "message",
          "role": "assistant",
          "model": "claude-sonnet-4-20250514",
          "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "Hi! "},
            {"type": "text", "text": "My name is Claude.", "citations": null}
          ],
          "stop_reason": "end_turn",
          "stop_sequence": null,
          "usage": {"input_tokens": 2095, "output_tokens": 503,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }"#;
        assert_eq!(
            parse_completion(Provider::Anthropic, body),
            Some(Completion {
                text: "Hi! My name is Claude.".into(),
                tool_calls: Vec::new(),
                finish_reason: "stop".into(),
                usage: Usage {
                    input_tokens: 2095,
                    output_tokens: 503,
                    ..Usage::default()
                },
            })
        );
    }

    #[test]
    fn rejects_other_bodies() {
        let anthropic = r#"{"type":"message","content":[{"type":"text","text":"x"}]}"#;
        let openai = r#"{"choices":[{"message":{"content":"x"}}]}"#;
        for (p, body) in [
            (Provider::OpenAi, ""),
            (Provider::OpenAi, "not json"),
            (Provider::OpenAi, r#"{"choices":[]}"#),
            (Provider::OpenAi, r#"{"choices":[{"text":"legacy"}]}"#),
            (Provider::OpenAi, anthropic),
            (Provider::OpenAi, r#"{"error":{"message":"x"}}"#),
            (Provider::Anthropic, openai),
            (Provider::Anthropic, r#"{"content":"x"}"#),
            (
                Provider::Anthropic,
                r#"{"type":"error","error":{"type":"x"}}"#,
            ),
        ] {
            assert_eq!(parse_completion(p, body), None, "{body}");
        }
        assert!(parse_completion(Provider::OpenAi, openai).is_some());
        assert!(parse_completion(Provider::Anthropic, anthropic).is_some());
    }

    #[test]
    fn usage_total_reads_openai_total_then_parts_then_anthropic_parts() {
        assert_eq!(
            usage_total(r#"{"prompt_tokens":19,"completion_tokens":10,"total_tokens":30}"#),
            Some(30)
        );
        assert_eq!(
            usage_total(r#"{"prompt_tokens":19,"completion_tokens":10}"#),
            Some(29)
        );
        assert_eq!(
            usage_total(r#"{"input_tokens":2095,"output_tokens":503}"#),
            Some(2598)
        );
        assert_eq!(usage_total(r#"{"prompt_tokens":19}"#), None);
        assert_eq!(usage_total(r#"{"total_tokens":-3}"#), None);
        assert_eq!(usage_total(r#"{"total_tokens":"30"}"#), None);
        assert_eq!(usage_total("null"), None);
        assert_eq!(usage_total("not json"), None);
        assert_eq!(
            usage_total(r#"{"input_tokens":18446744073709551615,"output_tokens":1}"#),
            None
        );
    }

    #[test]
    fn prompt_cache_usage_in_both_dialects() {
        let openai = r#"{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":2006,"completion_tokens":300,
                     "prompt_tokens_details":{"cached_tokens":1920}}}"#;
        assert_eq!(
            parse_completion(Provider::OpenAi, openai).map(|c| c.usage),
            Some(Usage {
                input_tokens: 2006,
                output_tokens: 300,
                cached_input_tokens: 1920,
                cache_write_tokens: 0,
            })
        );
        // Anthropic leaves cache reads and writes out of input_tokens: they are added back.
        let anthropic = r#"{"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",
            "usage":{"input_tokens":21,"cache_creation_input_tokens":188086,
                     "cache_read_input_tokens":5,"output_tokens":393}}"#;
        assert_eq!(
            parse_completion(Provider::Anthropic, anthropic).map(|c| c.usage),
            Some(Usage {
                input_tokens: 21 + 188_086 + 5,
                output_tokens: 393,
                cached_input_tokens: 5,
                cache_write_tokens: 188_086,
            })
        );
        let nulls = r#"{"content":[],"usage":{"input_tokens":3,"cache_creation_input_tokens":null,
            "cache_read_input_tokens":"7","output_tokens":1}}"#;
        assert_eq!(
            parse_completion(Provider::Anthropic, nulls).map(|c| c.usage),
            Some(Usage {
                input_tokens: 3,
                output_tokens: 1,
                ..Usage::default()
            })
        );
    }
}
