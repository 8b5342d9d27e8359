//! One chat request, two wire formats: building the OpenAI and Anthropic request bodies and reading
//! their non-streamed answers.
//!
//! Why in the core? Fallback from one provider to the other only works if the *same* call can be
//! written for either, and the two differ in ways that are easy to get subtly wrong: Anthropic takes
//! the system prompt out of the message list, requires strictly alternating roles and a
//! `max_tokens`, and names the user and the usage fields differently. Doing it once here, with
//! tests, keeps the JS layer a thin adapter.
//!
//! Why by hand? No serde in the wasm (see [`crate::core::json`]); the bodies have a handful of
//! fixed members, every string goes through the one shared escaper ([`write_string`]), and the
//! temperature is written from an integer (thousandths) so no float formatting is linked in.

use crate::core::json::{write_string, Json};
use crate::core::stream::Usage;
use crate::core::text;

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

/// Who wrote a message. (OpenAI's `developer` and `tool` roles are not modelled: a portable chat
/// has only these three.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions; Anthropic takes them out of the list into its top-level `system`.
    System,
    /// The human side.
    User,
    /// The model side (earlier answers, or a prefill).
    Assistant,
}

impl Role {
    /// `"system"`, `"user"` or `"assistant"` (exactly); `None` for anything else.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }

    /// The wire name, as [`Role::parse`] accepts it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message (text only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
}

/// What to ask, independent of the provider.
#[derive(Debug, Clone)]
pub struct ChatParams<'a> {
    /// The provider's model name, sent as is.
    pub model: &'a str,
    /// The conversation, in order.
    pub messages: &'a [Message],
    /// Most tokens to generate; `None`: OpenAI's model limit, Anthropic
    /// [`DEFAULT_ANTHROPIC_MAX_TOKENS`].
    pub max_tokens: Option<u32>,
    /// Temperature × 1000 as an integer: 0 = greedy, 700 = 0.7. Sent as given (Anthropic accepts
    /// 0..=1, OpenAI 0..=2; the upstream rejects the rest with a 400 rather than this layer
    /// clamping a misconfiguration away).
    pub temperature_milli: Option<u32>,
    /// An opaque end-user id for the provider's abuse monitoring (OpenAI `user`, Anthropic
    /// `metadata.user_id`).
    pub user: Option<&'a str>,
    /// Ask for a server-sent-event stream.
    pub stream: bool,
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

/// The request for `provider`.
///
/// Both get `content-type: application/json` (a string body would otherwise go out as
/// `text/plain`, which Anthropic rejects).
///
/// - OpenAI: path `/v1/chat/completions`, `authorization: Bearer <key>` when a key is given (a
///   local or proxy server may need none), body
///   `{"model","messages":[{"role","content"}…],"max_tokens"?,"temperature"?,"user"?}` plus, when
///   streaming, `"stream":true,"stream_options":{"include_usage":true}` (without it the stream
///   carries no usage, and budgets could not be settled). Messages are sent one for one. Note that
///   OpenAI's reasoning models (o1, o3…) refuse `max_tokens` and want `max_completion_tokens`:
///   leave `max_tokens` unset for them.
/// - Anthropic: path `/v1/messages`, `x-api-key` when a key is given,
///   `anthropic-version: 2023-06-01`, body
///   `{"model","max_tokens","system"?,"messages","temperature"?,"metadata":{"user_id"}?,"stream"?}`.
///   All system messages, wherever they stand, are joined with a blank line into `system` (the API
///   has no system role in the list); consecutive messages of the same role are merged the same
///   way, since the API requires user and assistant to alternate. `max_tokens` is required there:
///   [`DEFAULT_ANTHROPIC_MAX_TOKENS`] when `None`. Nothing else is repaired: a conversation that
///   opens with an assistant message or has no message left is sent as is, for the API to judge.
///
/// The temperature is written as a decimal from the integer thousandths (700 → `0.7`, 0 → `0`,
/// 1500 → `1.5`, 25 → `0.025`).
pub fn build_request(
    provider: Provider,
    params: &ChatParams,
    api_key: Option<&str>,
) -> HttpRequest {
    let mut headers = vec![("content-type", "application/json".to_string())];
    let mut body = String::with_capacity(
        128 + params
            .messages
            .iter()
            .map(|m| m.content.len() + 32)
            .sum::<usize>(),
    );
    body.push_str("{\"model\":");
    write_string(params.model, &mut body);
    let path = match provider {
        Provider::OpenAi => {
            if let Some(key) = api_key {
                headers.push(("authorization", format!("Bearer {key}")));
            }
            body.push_str(",\"messages\":[");
            for (i, message) in params.messages.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                write_message(message.role, &message.content, &mut body);
            }
            body.push(']');
            if let Some(max) = params.max_tokens {
                body.push_str(",\"max_tokens\":");
                body.push_str(&max.to_string());
            }
            write_temperature(params.temperature_milli, &mut body);
            if let Some(user) = params.user {
                body.push_str(",\"user\":");
                write_string(user, &mut body);
            }
            if params.stream {
                body.push_str(",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
            }
            "/v1/chat/completions"
        }
        Provider::Anthropic => {
            if let Some(key) = api_key {
                headers.push(("x-api-key", key.to_string()));
            }
            headers.push(("anthropic-version", ANTHROPIC_VERSION.to_string()));
            body.push_str(",\"max_tokens\":");
            let max = params.max_tokens.unwrap_or(DEFAULT_ANTHROPIC_MAX_TOKENS);
            body.push_str(&max.to_string());
            let system: Vec<&str> = params
                .messages
                .iter()
                .filter(|m| m.role == Role::System)
                .map(|m| m.content.as_str())
                .collect();
            if !system.is_empty() {
                body.push_str(",\"system\":");
                write_string(&text::join(&system, "\n\n"), &mut body);
            }
            body.push_str(",\"messages\":[");
            let mut turns = params.messages.iter().filter(|m| m.role != Role::System);
            if let Some(first) = turns.next() {
                let mut role = first.role;
                let mut text = first.content.clone();
                for message in turns {
                    if message.role == role {
                        text.push_str("\n\n");
                        text.push_str(&message.content);
                    } else {
                        write_message(role, &text, &mut body);
                        body.push(',');
                        role = message.role;
                        text.clear();
                        text.push_str(&message.content);
                    }
                }
                write_message(role, &text, &mut body);
            }
            body.push(']');
            write_temperature(params.temperature_milli, &mut body);
            if let Some(user) = params.user {
                body.push_str(",\"metadata\":{\"user_id\":");
                write_string(user, &mut body);
                body.push('}');
            }
            if params.stream {
                body.push_str(",\"stream\":true");
            }
            "/v1/messages"
        }
    };
    body.push('}');
    HttpRequest {
        path,
        headers,
        body,
    }
}

/// `{"role":…,"content":…}`.
fn write_message(role: Role, content: &str, out: &mut String) {
    out.push_str("{\"role\":\"");
    out.push_str(role.as_str());
    out.push_str("\",\"content\":");
    write_string(content, out);
    out.push('}');
}

/// `,"temperature":<decimal>` when set.
fn write_temperature(milli: Option<u32>, out: &mut String) {
    if let Some(milli) = milli {
        out.push_str(",\"temperature\":");
        write_milli(milli, out);
    }
}

/// `milli / 1000` as a JSON number, shortest form: `0`, `0.7`, `1.5`, `0.025`.
fn write_milli(milli: u32, out: &mut String) {
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

/// A complete, non-streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The generated text (empty when the model produced none, e.g. only a tool call or a
    /// refusal).
    pub text: String,
    /// OpenAI `finish_reason` (`stop`, `length`…) or Anthropic `stop_reason` (`end_turn`,
    /// `max_tokens`…), as sent; empty when absent.
    pub finish_reason: String,
    /// Token counts; zero when the body has none. Anthropic's `input_tokens` excludes prompt-cache
    /// reads and writes, as in the streamed usage.
    pub usage: Usage,
}

/// A non-streamed 2xx body → [`Completion`].
///
/// - OpenAI: `choices[0].message.content` (`null` reads as empty), `choices[0].finish_reason`,
///   `usage.prompt_tokens` / `usage.completion_tokens`.
/// - Anthropic: the `text` of every `content[*]` block of type `text`, concatenated (citations
///   split one answer into several blocks meant to be read back to back), `stop_reason`,
///   `usage.input_tokens` / `usage.output_tokens`.
///
/// `None` when the body is not JSON, or lacks `choices[0].message` (OpenAI) or a `content` array
/// (Anthropic).
pub fn parse_completion(provider: Provider, body: &str) -> Option<Completion> {
    let json = Json::parse(body)?;
    let text_of = |value: Option<&Json>| value.and_then(Json::as_str).unwrap_or("").to_string();
    let count = |usage: Option<&Json>, name: &str| {
        usage
            .and_then(|u| u.get(name))
            .and_then(Json::as_u64)
            .unwrap_or(0)
    };
    match provider {
        Provider::OpenAi => {
            let choice = json.get("choices")?.at(0)?;
            let message = choice.get("message")?;
            let usage = json.get("usage");
            Some(Completion {
                text: text_of(message.get("content")),
                finish_reason: text_of(choice.get("finish_reason")),
                usage: Usage {
                    input_tokens: count(usage, "prompt_tokens"),
                    output_tokens: count(usage, "completion_tokens"),
                },
            })
        }
        Provider::Anthropic => {
            let Json::Array(blocks) = json.get("content")? else {
                return None;
            };
            let mut text = String::new();
            for block in blocks {
                if block.get("type").and_then(Json::as_str) == Some("text") {
                    text.push_str(block.get("text").and_then(Json::as_str).unwrap_or(""));
                }
            }
            let usage = json.get("usage");
            Some(Completion {
                text,
                finish_reason: text_of(json.get("stop_reason")),
                usage: Usage {
                    input_tokens: count(usage, "input_tokens"),
                    output_tokens: count(usage, "output_tokens"),
                },
            })
        }
    }
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

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.to_string(),
        }
    }

    fn params<'a>(messages: &'a [Message]) -> ChatParams<'a> {
        ChatParams {
            model: "m",
            messages,
            max_tokens: None,
            temperature_milli: None,
            user: None,
            stream: false,
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
        for r in [Role::System, Role::User, Role::Assistant] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Provider::parse("OpenAI"), None);
        assert_eq!(Provider::parse(""), None);
        assert_eq!(Role::parse("tool"), None);
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
                finish_reason: "stop".into(),
                usage: Usage {
                    input_tokens: 19,
                    output_tokens: 10
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
                finish_reason: "end_turn".into(),
                usage: Usage {
                    input_tokens: 2095,
                    output_tokens: 503
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
}
