//! The portable chat request: what a caller asks, independent of the provider that answers.
//!
//! A fallback from an OpenAI-compatible target to Anthropic only keeps a conversation's meaning if
//! the request is held in one neutral shape that each dialect is written from
//! ([`crate::core::llm::provider`]): content parts (text and images), the assistant's tool calls,
//! tool results, tool definitions, the tool choice, the response format and the sampling options.
//! JSON the caller hands over as a value (a tool's parameter schema, a response schema, provider
//! options) is held as its JSON text, validated once when the request is read, and written into the
//! body as is: the layer never needs to understand a JSON Schema, only to carry it.
//!
//! A caller marks where the provider may cache the prompt up to (`cache: true` on a content part,
//! a message or a tool): Anthropic caches only where a block says so (`cache_control`), OpenAI
//! caches long prefixes by itself, so the marks mean something to the first dialect only. Anthropic
//! takes at most [`MAX_CACHE_BREAKPOINTS`] of them in a request; the request reader refuses more,
//! naming the one too many, rather than let the provider answer 400 on one target of a chain.

use std::borrow::Cow;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions; Anthropic takes them out of the list into its top-level `system`.
    System,
    /// The human side.
    User,
    /// The model side (earlier answers with their tool calls, or a prefill).
    Assistant,
    /// A tool's result, answering the assistant's tool call `tool_call_id`.
    Tool,
}

impl Role {
    /// `"system"`, `"user"`, `"assistant"` or `"tool"` (exactly); `None` for anything else.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }

    /// The wire name, as [`Role::parse`] accepts it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image by URL: `https:` (or `http:`) for the provider to fetch, or a `data:` URL
    /// carrying it in base64.
    Image(String),
}

/// A `data:` URL's media type and base64 data: `data:<type>/<subtype>[;param…];base64,<data>`
/// (the scheme in any case), the media type without its parameters. `None` for any other URL and
/// for a malformed `data:` URL (no comma, not base64, no media type, no data), which the request
/// reader refuses naming the field: the dialect that needs it split (Anthropic's `base64`
/// source) could not send it.
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let scheme = url.get(..5)?;
    if !scheme.eq_ignore_ascii_case("data:") {
        return None;
    }
    let (header, data) = url.get(5..)?.split_once(',')?;
    let mut params = header.split(';');
    let media_type = params.next()?;
    let base64 = params
        .next_back()
        .is_some_and(|p| p.eq_ignore_ascii_case("base64"));
    let valid = base64
        && !data.is_empty()
        && media_type
            .split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty());
    valid.then_some((media_type, data))
}

/// A call the model made to one of the request's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's id for the call, echoed by the tool message that answers it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the JSON text the model wrote (it may be invalid JSON: models err).
    pub arguments: String,
}

/// Most prompt-cache marks in one request: Anthropic's limit on `cache_control` blocks.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

/// Counts a request's prompt-cache marks as the reader meets them.
#[derive(Debug, Default)]
pub struct CacheMarks(usize);

impl CacheMarks {
    /// One more mark; `Err(count)` when it takes the request past [`MAX_CACHE_BREAKPOINTS`].
    pub fn add(&mut self) -> Result<(), usize> {
        self.0 = self.0.saturating_add(1);
        if self.0 > MAX_CACHE_BREAKPOINTS {
            return Err(self.0);
        }
        Ok(())
    }
}

/// Whether a request carries any prompt-cache mark (only then may it write to the cache, at the
/// write price).
pub fn has_cache_marks(messages: &[Message], tools: &[Tool]) -> bool {
    messages
        .iter()
        .any(|m| m.cache || !m.cache_parts.is_empty())
        || tools.iter().any(|t| t.cache)
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The content, in order; a plain string is one [`Part::Text`]. Empty for an assistant message
    /// that only calls tools (`content: null`).
    pub content: Vec<Part>,
    /// The assistant's tool calls (assistant messages only).
    pub tool_calls: Vec<ToolCall>,
    /// The tool call this message answers (tool messages only).
    pub tool_call_id: Option<String>,
    /// Indexes of the content parts marked for the prompt cache (`cache: true` on a part).
    pub cache_parts: Vec<usize>,
    /// The whole message is marked (`cache: true` on it): the cache ends at its last block.
    pub cache: bool,
}

impl Message {
    /// A message of plain text.
    pub fn text(role: Role, text: &str) -> Message {
        Message {
            role,
            content: vec![Part::Text(text.to_string())],
            tool_calls: Vec::new(),
            tool_call_id: None,
            cache_parts: Vec::new(),
            cache: false,
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// Its parameters' JSON Schema, as JSON text (an object).
    pub parameters: String,
    /// Marked for the prompt cache: the cache ends after this definition (tools come first in
    /// Anthropic's prompt, so this caches the tools up to it).
    pub cache: bool,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool call.
    None,
    /// Some tool call.
    Required,
    /// This tool.
    Named(String),
}

/// The shape of the answer's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFormat {
    /// Any JSON object.
    Json,
    /// JSON valid against a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The JSON Schema, as JSON text (an object).
        schema: String,
        /// Ask the provider to enforce the schema exactly.
        strict: Option<bool>,
    },
}

/// Members `providerOptions` may not set, since the layer's own guarantees rest on them: `model` is
/// the target's (its price, its breaker, its cache entries), `messages` is the conversation the
/// budget estimated, `stream` and `stream_options` decide how the answer is read and that a stream
/// reports its usage. The request reader refuses them by name; the body writer drops them.
pub const RESERVED_OPTIONS: [&str; 4] = ["model", "messages", "stream", "stream_options"];

/// What to ask, independent of the provider.
#[derive(Debug, Clone, Default)]
pub struct ChatParams<'a> {
    /// The provider's model name, sent as is.
    pub model: &'a str,
    /// The conversation, in order.
    pub messages: &'a [Message],
    /// The tools the model may call.
    pub tools: &'a [Tool],
    /// Whether and which tool it must call.
    pub tool_choice: Option<&'a ToolChoice>,
    /// The shape of the answer.
    pub response_format: Option<&'a ResponseFormat>,
    /// Most tokens to generate; `None`: OpenAI's model limit, Anthropic
    /// [`DEFAULT_ANTHROPIC_MAX_TOKENS`](crate::core::llm::provider::DEFAULT_ANTHROPIC_MAX_TOKENS).
    pub max_tokens: Option<u32>,
    /// Temperature × 1000 as an integer: 0 = greedy, 700 = 0.7. Sent as given (Anthropic accepts
    /// 0..=1, OpenAI 0..=2; the upstream rejects the rest with a 400 rather than this layer
    /// clamping a misconfiguration away).
    pub temperature_milli: Option<u32>,
    /// Nucleus sampling × 1000 (`top_p`).
    pub top_p_milli: Option<u32>,
    /// Stop sequences.
    pub stop: &'a [String],
    /// A seed for deterministic sampling where the provider has one (OpenAI; Anthropic has none).
    pub seed: Option<i64>,
    /// An opaque end-user id for the provider's abuse monitoring (OpenAI `user`, Anthropic
    /// `metadata.user_id`).
    pub user: Option<&'a str>,
    /// Members merged as is into this provider's body (`providerOptions.openai` or
    /// `.anthropic`), as the JSON text of an object: they win over the fields written from the
    /// portable request, but for [`RESERVED_OPTIONS`].
    pub provider_options: Option<&'a str>,
    /// Ask for a server-sent-event stream.
    pub stream: bool,
    /// Text the answer must continue (a mid-stream fallback: what another target already wrote),
    /// sent as the final assistant message ([`with_prefill`]); the answer is only what follows it.
    pub prefill: Option<&'a str>,
}

/// `messages` ending in an assistant message holding `prefill`: appended to the last text of a
/// final assistant message without tool calls (a caller's own prefill, which the text continues),
/// else added as a new assistant message. Both dialects write it from here, so the model sees one
/// message to continue, not two (Anthropic would join two with a blank line). An empty prefill
/// changes nothing.
pub fn with_prefill<'m>(messages: &'m [Message], prefill: Option<&str>) -> Cow<'m, [Message]> {
    let Some(prefill) = prefill.filter(|p| !p.is_empty()) else {
        return Cow::Borrowed(messages);
    };
    let mut messages = messages.to_vec();
    match messages.last_mut() {
        Some(last) if last.role == Role::Assistant && last.tool_calls.is_empty() => {
            match last.content.last_mut() {
                Some(Part::Text(text)) => text.push_str(prefill),
                _ => last.content.push(Part::Text(prefill.to_string())),
            }
        }
        _ => messages.push(Message::text(Role::Assistant, prefill)),
    }
    Cow::Owned(messages)
}

/// A piece of a tool call as it streams, in OpenAI's shape whichever provider answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// Which call of the answer (0, 1…), in the order the model made them.
    pub index: u32,
    /// The call's id, on its first piece.
    pub id: Option<String>,
    /// The tool's name, on its first piece.
    pub name: Option<String>,
    /// The next piece of the arguments' JSON text.
    pub arguments_delta: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_four_cache_marks() {
        let mut marks = CacheMarks::default();
        for _ in 0..MAX_CACHE_BREAKPOINTS {
            assert_eq!(marks.add(), Ok(()));
        }
        assert_eq!(MAX_CACHE_BREAKPOINTS, 4);
        assert_eq!(marks.add(), Err(5));
        assert_eq!(marks.add(), Err(6));
    }

    #[test]
    fn a_prefill_continues_a_final_assistant_text_or_is_a_new_message() {
        let user = Message::text(Role::User, "Hi");
        let plain = [user.clone()];
        assert!(matches!(with_prefill(&plain, None), Cow::Borrowed(_)));
        assert!(matches!(with_prefill(&plain, Some("")), Cow::Borrowed(_)));
        let added = with_prefill(&plain, Some("Hel"));
        assert_eq!(added[1], Message::text(Role::Assistant, "Hel"));
        // The caller's own prefill is continued, not followed by a second assistant message.
        let own = [user.clone(), Message::text(Role::Assistant, "{\"a\":")];
        let joined = with_prefill(&own, Some("1,"));
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[1], Message::text(Role::Assistant, "{\"a\":1,"));
        // After an assistant's tool calls, the prefill is a message of its own.
        let mut calls = Message::text(Role::Assistant, "");
        calls.tool_calls.push(ToolCall {
            id: "c".into(),
            name: "n".into(),
            arguments: "{}".into(),
        });
        let after_calls = [user, calls];
        assert_eq!(with_prefill(&after_calls, Some("x")).len(), 3);
    }

    #[test]
    fn data_urls_split_into_media_type_and_data() {
        assert_eq!(
            parse_data_url("data:image/png;base64,iVBO"),
            Some(("image/png", "iVBO"))
        );
        assert_eq!(
            parse_data_url("DATA:image/jpeg;name=a.jpg;BASE64,/9j="),
            Some(("image/jpeg", "/9j="))
        );
        for bad in [
            "https://x.test/a.png",
            "data:image/png,iVBO",
            "data:image/png;base64",
            "data:image/png;base64,",
            "data:;base64,iVBO",
            "data:png;base64,iVBO",
            "data:/png;base64,iVBO",
            "data",
            "dаta:image/png;base64,x",
            "",
        ] {
            assert_eq!(parse_data_url(bad), None, "{bad}");
        }
    }
}
