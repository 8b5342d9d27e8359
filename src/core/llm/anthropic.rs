//! The Anthropic Messages dialect: the portable request written as its body, its non-streamed
//! answer read back, and the two decisions the stream reader shares ([`finish_reason`],
//! [`ANSWER_TOOL`]).
//!
//! What differs from the portable (OpenAI-shaped) request:
//! - The system prompt is not a message: the text of every system message, wherever it stands, is
//!   joined with a blank line into the top-level `system` (images there are dropped: it takes
//!   text only).
//! - Roles must alternate, and there is no tool role: a tool result is a `tool_result` block in a
//!   user turn, and consecutive messages of one side (tool results, then the user's next message)
//!   are merged into one turn. A turn of text only is written as a string (the texts joined with a
//!   blank line), any other as an array of blocks (empty texts left out: the API refuses them).
//! - Images are `image` blocks: a `data:` URL becomes a `base64` source with its media type, any
//!   other URL a `url` source. A malformed `data:` URL (see [`parse_data_url`]; the request reader
//!   refuses it) is sent as a `url` source, for the API to refuse with its own message.
//! - An assistant's tool calls are `tool_use` blocks whose `input` is the arguments' JSON object.
//!   Arguments that are not one (models err, and a history may hold what they wrote) are kept
//!   visible rather than dropped: blank text becomes `{}`, anything else
//!   `{"arguments": <the text as a string>}`.
//! - A prompt-cache mark (see [`crate::core::llm::request`]) is `cache_control:
//!   {"type":"ephemeral"}` on its block: a part's on that part, a message's on its last block
//!   written (a turn with a mark is an array of blocks, never a string), a tool's on its
//!   definition. A system prompt with a mark is an array of text blocks, one per text part, instead
//!   of one string. A mark on an empty text (which the API refuses and this writer leaves out) or on
//!   a system image (dropped) goes with it.
//! - `tool_choice`: auto → `{"type":"auto"}`, required → `{"type":"any"}`, named →
//!   `{"type":"tool","name"}`, none → `{"type":"none"}`; stop sequences are `stop_sequences`; there
//!   is no seed (it is not sent) and `max_tokens` is required.
//!
//! `responseFormat` uses the forced-tool technique, not Anthropic's own structured outputs (a beta
//! on some models only): the request gets one more tool, [`ANSWER_TOOL`], whose `input_schema` is
//! the response schema (`{"type":"object"}` for plain JSON), and `tool_choice` forces it. That works
//! on every Claude model and every Anthropic-compatible server. Reading the answer turns that
//! tool's input back into the answer's *text* (its JSON), with finish reason `stop` and no tool
//! call, streamed too (its `input_json_delta` pieces are text deltas, see
//! [`crate::core::stream`]): the caller sees what OpenAI's `response_format` gives. With tools of
//! its own, the request keeps them beside the answer tool, and the model must call one of them
//! (`any`) unless the caller named one; `none` forces the answer tool.

use super::openai::{arguments_text, write_sampling};
use super::provider::{
    text_of, write_array, write_json_text, Body, Completion, DEFAULT_ANTHROPIC_MAX_TOKENS,
};
use super::request::{
    parse_data_url, with_prefill, ChatParams, Message, Part, ResponseFormat, Role, ToolCall,
    ToolChoice,
};
use crate::core::json::{write_string, Json};
use crate::core::stream::Usage;

/// The tool a `responseFormat` is answered through (a name reserved by this layer: a tool call to
/// it is read as the answer's text).
pub const ANSWER_TOOL: &str = "json_answer";

/// Anthropic's `stop_reason` in OpenAI's words: `end_turn` and `stop_sequence` → `stop`,
/// `max_tokens` → `length`, `tool_use` → `tool_calls` (`stop` when the only call was the
/// [`ANSWER_TOOL`], i.e. `tool_calls` is false), `refusal` → `content_filter`; any other as sent.
pub fn finish_reason(reason: &str, tool_calls: bool) -> &str {
    match reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" if tool_calls => "tool_calls",
        "tool_use" => "stop",
        "refusal" => "content_filter",
        other => other,
    }
}

/// What of a [`prefill`](ChatParams::prefill) is sent: the API refuses a final assistant message
/// that ends in whitespace, so it is cut off (the stream reader then drops it from the start of the
/// continuation if the model writes it again: [`crate::core::llm::mid_stream`]).
pub fn sent_prefill(prefill: &str) -> &str {
    prefill.trim_end()
}

/// Writes `{"model","max_tokens","system"?,"messages","tools"?,"tool_choice"?,"temperature"?,
/// "top_p"?,"stop_sequences"?,"metadata":{"user_id"}?,"stream"?}` (see the module doc).
/// `max_tokens` is [`DEFAULT_ANTHROPIC_MAX_TOKENS`] when unset. Nothing else is repaired: a
/// conversation that opens with an assistant message or has no message left is sent as is, for
/// the API to judge.
pub fn write_body(params: &ChatParams, body: &mut Body) {
    if let Some(out) = body.member("model") {
        write_string(params.model, out);
    }
    if let Some(out) = body.member("max_tokens") {
        let max = params.max_tokens.unwrap_or(DEFAULT_ANTHROPIC_MAX_TOKENS);
        out.push_str(&max.to_string());
    }
    let system = system_blocks(params.messages);
    if !system.is_empty() {
        if let Some(out) = body.member("system") {
            write_system(&system, out);
        }
    }
    if let Some(out) = body.member("messages") {
        let messages = with_prefill(params.messages, params.prefill.map(sent_prefill));
        write_array(&turns(&messages), out, write_turn);
    }
    let answer = params.response_format;
    if !params.tools.is_empty() || answer.is_some() {
        if let Some(out) = body.member("tools") {
            write_tools(params, out);
        }
    }
    let forced = || Some(ToolChoice::Named(ANSWER_TOOL.to_string()));
    let choice = match (answer, params.tool_choice) {
        (None, choice) => choice.cloned(),
        (Some(_), Some(ToolChoice::Named(name))) if !params.tools.is_empty() => {
            Some(ToolChoice::Named(name.clone()))
        }
        (Some(_), Some(ToolChoice::None)) => forced(),
        (Some(_), _) if params.tools.is_empty() => forced(),
        (Some(_), _) => Some(ToolChoice::Required),
    };
    if let Some(choice) = choice {
        if let Some(out) = body.member("tool_choice") {
            write_tool_choice(&choice, out);
        }
    }
    write_sampling(params, "stop_sequences", body);
    if let Some(user) = params.user {
        if let Some(out) = body.member("metadata") {
            out.push_str("{\"user_id\":");
            write_string(user, out);
            out.push('}');
        }
    }
    if params.stream {
        if let Some(out) = body.member("stream") {
            out.push_str("true");
        }
    }
}

/// The text parts of every system message, in order, each with its prompt-cache mark.
fn system_blocks(messages: &[Message]) -> Vec<(&str, bool)> {
    let mut blocks = Vec::new();
    for message in messages.iter().filter(|m| m.role == Role::System) {
        let mut own: Vec<(&str, bool)> = message
            .content
            .iter()
            .enumerate()
            .filter_map(|(i, part)| match part {
                Part::Text(text) => Some((text.as_str(), message.cache_parts.contains(&i))),
                Part::Image(_) => None,
            })
            .collect();
        if message.cache {
            if let Some(last) = own.iter_mut().rev().find(|(text, _)| !text.is_empty()) {
                last.1 = true;
            }
        }
        blocks.extend(own);
    }
    blocks
}

/// `system`: the texts joined with a blank line, or with a prompt-cache mark among them an array
/// of text blocks (empty ones left out).
fn write_system(blocks: &[(&str, bool)], out: &mut String) {
    if !blocks.iter().any(|(_, cache)| *cache) {
        let texts: Vec<&str> = blocks.iter().map(|(text, _)| *text).collect();
        return write_string(&texts.join("\n\n"), out);
    }
    let written: Vec<_> = blocks.iter().filter(|(text, _)| !text.is_empty()).collect();
    write_array(&written, out, |(text, cache), out| {
        out.push_str("{\"type\":\"text\",\"text\":");
        write_string(text, out);
        out.push('}');
        if *cache {
            mark_cached(out);
        }
    });
}

/// Marks the block just written (its closing brace last in `out`) for the prompt cache.
fn mark_cached(out: &mut String) {
    if out.ends_with('}') {
        out.pop();
        out.push_str(",\"cache_control\":{\"type\":\"ephemeral\"}}");
    }
}

/// One block of a turn.
enum Block<'m> {
    Part(&'m Part),
    ToolUse(&'m ToolCall),
    ToolResult(&'m Message),
}

impl Block<'_> {
    /// An empty text, which the API refuses: it is left out.
    fn is_empty_text(&self) -> bool {
        matches!(self, Block::Part(Part::Text(text)) if text.is_empty())
    }
}

/// A block and its prompt-cache mark.
type Marked<'m> = (Block<'m>, bool);

/// A turn: one side's consecutive messages.
struct Turn<'m> {
    assistant: bool,
    blocks: Vec<Marked<'m>>,
}

/// A message's content parts as blocks, each with its mark.
fn part_blocks(message: &Message) -> impl Iterator<Item = Marked<'_>> {
    message
        .content
        .iter()
        .enumerate()
        .map(|(i, part)| (Block::Part(part), message.cache_parts.contains(&i)))
}

fn turns(messages: &[Message]) -> Vec<Turn<'_>> {
    let mut turns: Vec<Turn> = Vec::new();
    for message in messages.iter().filter(|m| m.role != Role::System) {
        let assistant = message.role == Role::Assistant;
        let mut blocks: Vec<Marked> = match message.role {
            Role::Tool => vec![(Block::ToolResult(message), false)],
            _ => part_blocks(message)
                .chain(
                    message
                        .tool_calls
                        .iter()
                        .map(|c| (Block::ToolUse(c), false)),
                )
                .collect(),
        };
        if message.cache {
            if let Some(last) = blocks.iter_mut().rev().find(|(b, _)| !b.is_empty_text()) {
                last.1 = true;
            }
        }
        match turns.last_mut() {
            Some(turn) if turn.assistant == assistant => turn.blocks.extend(blocks),
            _ => turns.push(Turn { assistant, blocks }),
        }
    }
    turns
}

fn write_turn(turn: &Turn, out: &mut String) {
    out.push_str(if turn.assistant {
        "{\"role\":\"assistant\",\"content\":"
    } else {
        "{\"role\":\"user\",\"content\":"
    });
    write_content(&turn.blocks, out);
    out.push('}');
}

/// A turn's or a tool result's content: a string when it is text only without a prompt-cache
/// mark (the texts joined with a blank line), else an array of blocks, empty texts left out (the
/// API refuses them).
fn write_content(blocks: &[Marked], out: &mut String) {
    let text: Option<Vec<&str>> = blocks
        .iter()
        .map(|block| match block {
            (Block::Part(Part::Text(text)), false) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if let Some(text) = text {
        return write_string(&text.join("\n\n"), out);
    }
    out.push('[');
    let mut first = true;
    for (block, cache) in blocks {
        if block.is_empty_text() {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        match block {
            Block::Part(part) => write_part(part, out),
            Block::ToolUse(call) => {
                out.push_str("{\"type\":\"tool_use\",\"id\":");
                write_string(&call.id, out);
                out.push_str(",\"name\":");
                write_string(&call.name, out);
                out.push_str(",\"input\":");
                write_input(&call.arguments, out);
                out.push('}');
            }
            Block::ToolResult(message) => {
                out.push_str("{\"type\":\"tool_result\",\"tool_use_id\":");
                write_string(message.tool_call_id.as_deref().unwrap_or_default(), out);
                out.push_str(",\"content\":");
                let parts: Vec<Marked> = part_blocks(message).collect();
                write_content(&parts, out);
                out.push('}');
            }
        }
        if *cache {
            mark_cached(out);
        }
    }
    out.push(']');
}

fn write_part(part: &Part, out: &mut String) {
    match part {
        Part::Text(text) => {
            out.push_str("{\"type\":\"text\",\"text\":");
            write_string(text, out);
            out.push('}');
        }
        Part::Image(url) => {
            out.push_str("{\"type\":\"image\",\"source\":");
            match parse_data_url(url) {
                Some((media_type, data)) => {
                    out.push_str("{\"type\":\"base64\",\"media_type\":");
                    write_string(media_type, out);
                    out.push_str(",\"data\":");
                    write_string(data, out);
                }
                None => {
                    out.push_str("{\"type\":\"url\",\"url\":");
                    write_string(url, out);
                }
            }
            out.push_str("}}");
        }
    }
}

/// A tool call's `input`: its arguments when they are a JSON object (see the module doc).
fn write_input(arguments: &str, out: &mut String) {
    match Json::parse(arguments) {
        Some(object @ Json::Object(_)) => object.write(out),
        _ if arguments.trim().is_empty() => out.push_str("{}"),
        _ => {
            out.push_str("{\"arguments\":");
            write_string(arguments, out);
            out.push('}');
        }
    }
}

/// The request's tools, then the answer tool when it has a response format.
fn write_tools(params: &ChatParams, out: &mut String) {
    out.push('[');
    for (i, tool) in params.tools.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_tool(
            &tool.name,
            tool.description.as_deref(),
            &tool.parameters,
            out,
        );
        if tool.cache {
            mark_cached(out);
        }
    }
    if let Some(format) = params.response_format {
        if !params.tools.is_empty() {
            out.push(',');
        }
        let (description, schema) = match format {
            ResponseFormat::Json => (
                "Answer with a JSON object.".to_string(),
                "{\"type\":\"object\"}",
            ),
            ResponseFormat::JsonSchema { name, schema, .. } => (
                format!("Answer with a JSON object: the {name} schema."),
                schema.as_str(),
            ),
        };
        write_tool(ANSWER_TOOL, Some(&description), schema, out);
    }
    out.push(']');
}

fn write_tool(name: &str, description: Option<&str>, schema: &str, out: &mut String) {
    out.push_str("{\"name\":");
    write_string(name, out);
    if let Some(description) = description {
        out.push_str(",\"description\":");
        write_string(description, out);
    }
    out.push_str(",\"input_schema\":");
    write_json_text(schema, "{\"type\":\"object\"}", out);
    out.push('}');
}

fn write_tool_choice(choice: &ToolChoice, out: &mut String) {
    match choice {
        ToolChoice::Auto => out.push_str("{\"type\":\"auto\"}"),
        ToolChoice::None => out.push_str("{\"type\":\"none\"}"),
        ToolChoice::Required => out.push_str("{\"type\":\"any\"}"),
        ToolChoice::Named(name) => {
            out.push_str("{\"type\":\"tool\",\"name\":");
            write_string(name, out);
            out.push('}');
        }
    }
}

/// The `text` of every `content[*]` block of type `text`, concatenated (citations split one answer
/// into several blocks meant to be read back to back); each `tool_use` block a tool call (its
/// `input` written back as JSON text), the [`ANSWER_TOOL`]'s appended to the text instead;
/// `stop_reason` through [`finish_reason`]; the usage through `merge_usage`. `None`
/// without a `content` array.
pub fn read_completion(json: &Json) -> Option<Completion> {
    let Json::Array(blocks) = json.get("content")? else {
        return None;
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Json::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Json::as_str).unwrap_or("")),
            Some("tool_use") => {
                let name = text_of(block.get("name"));
                let input = arguments_text(block.get("input"));
                if name == ANSWER_TOOL {
                    text.push_str(&input);
                } else {
                    tool_calls.push(ToolCall {
                        id: text_of(block.get("id")),
                        name,
                        arguments: input,
                    });
                }
            }
            _ => {}
        }
    }
    let usage = json.get("usage");
    let reason = text_of(json.get("stop_reason"));
    Some(Completion {
        finish_reason: finish_reason(&reason, !tool_calls.is_empty()).to_string(),
        text,
        tool_calls,
        usage: usage.map_or_else(Usage::default, |u| merge_usage(Usage::default(), u)),
    })
}

/// `usage` read over what is known so far: Anthropic reports it in `message_start` and again,
/// cumulatively and maybe in part, in `message_delta`, so a field absent keeps its earlier value.
/// `input_tokens` there leaves out `cache_read_input_tokens` and `cache_creation_input_tokens`;
/// [`Usage::input_tokens`] counts them in (see [`Usage`]).
pub(crate) fn merge_usage(known: Usage, usage: &Json) -> Usage {
    let field = |name| usage.get(name).and_then(Json::as_u64);
    let plain = known
        .input_tokens
        .saturating_sub(known.cached_input_tokens)
        .saturating_sub(known.cache_write_tokens);
    let plain = field("input_tokens").unwrap_or(plain);
    let read = field("cache_read_input_tokens").unwrap_or(known.cached_input_tokens);
    let write = field("cache_creation_input_tokens").unwrap_or(known.cache_write_tokens);
    Usage {
        input_tokens: plain.saturating_add(read).saturating_add(write),
        output_tokens: field("output_tokens").unwrap_or(known.output_tokens),
        cached_input_tokens: read,
        cache_write_tokens: write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::request::Tool;
    use crate::core::llm::{build_request, parse_completion, Provider};

    fn body(params: &ChatParams) -> String {
        build_request(Provider::Anthropic, params, None).body
    }

    fn call(id: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "weather".into(),
            arguments: arguments.into(),
        }
    }

    fn result(id: &str, text: &str) -> Message {
        let mut message = Message::text(Role::Tool, text);
        message.tool_call_id = Some(id.into());
        message
    }

    fn weather() -> Tool {
        Tool {
            name: "weather".into(),
            description: Some("The weather".into()),
            parameters: r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.into(),
            cache: false,
        }
    }

    #[test]
    fn a_tool_round_trip_alternates_roles() {
        let mut image_question = Message::text(Role::User, "Weather where this was taken?");
        image_question
            .content
            .push(Part::Image("data:image/jpeg;base64,/9j/4AAQ".into()));
        image_question
            .content
            .push(Part::Image("https://x.test/b.webp".into()));
        let mut calls = Message::text(Role::Assistant, "Looking.");
        calls.tool_calls = vec![call("toolu_1", r#"{"city":"Oslo"}"#), call("toolu_2", "")];
        let mut no_text = Message::text(Role::Assistant, "");
        no_text.tool_calls = vec![call("toolu_3", "[1,2]")];
        let messages = [
            Message::text(Role::System, "Be brief."),
            image_question,
            calls,
            result("toolu_1", "-3 °C"),
            result("toolu_2", "sunny"),
            Message::text(Role::User, "And tomorrow?"),
            no_text,
            result("toolu_3", "cloudy"),
        ];
        let tools = [weather()];
        let stop = ["END".to_string()];
        let params = ChatParams {
            model: "claude",
            messages: &messages,
            tools: &tools,
            tool_choice: Some(&ToolChoice::Auto),
            top_p_milli: Some(900),
            stop: &stop,
            seed: Some(7),
            ..ChatParams::default()
        };
        assert_eq!(
            body(&params),
            concat!(
                r#"{"model":"claude","max_tokens":1024,"system":"Be brief.","messages":["#,
                r#"{"role":"user","content":[{"type":"text","text":"Weather where this was taken?"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},{"type":"image","source":{"type":"url","url":"https://x.test/b.webp"}}]},"#,
                r#"{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Oslo"}},{"type":"tool_use","id":"toolu_2","name":"weather","input":{}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"-3 °C"},{"type":"tool_result","tool_use_id":"toolu_2","content":"sunny"},{"type":"text","text":"And tomorrow?"}]},"#,
                r#"{"role":"assistant","content":[{"type":"tool_use","id":"toolu_3","name":"weather","input":{"arguments":"[1,2]"}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_3","content":"cloudy"}]}],"#,
                r#""tools":[{"name":"weather","description":"The weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"#,
                r#""tool_choice":{"type":"auto"},"top_p":0.9,"stop_sequences":["END"]}"#
            )
        );
    }

    const MARK: &str = r#","cache_control":{"type":"ephemeral"}}"#;

    #[test]
    fn cache_marks_become_cache_control_field_by_field() {
        let mut system = Message::text(Role::System, "You are a librarian.");
        system.content.push(Part::Text("The catalogue: …".into()));
        system.content.push(Part::Text(String::new()));
        system.cache = true;
        let mut question = Message::text(Role::User, "The long document");
        question.content.push(Part::Text("Question?".into()));
        question.cache_parts = vec![0];
        let mut calls = Message::text(Role::Assistant, "");
        calls.tool_calls = vec![call("toolu_1", "{}")];
        calls.cache = true;
        let mut answer = result("toolu_1", "sunny");
        answer.cache = true;
        let messages = [
            system,
            Message::text(Role::System, "Be brief."),
            question,
            calls,
            answer,
        ];
        let mut cached_tool = weather();
        cached_tool.cache = true;
        let tools = [weather(), cached_tool];
        let params = ChatParams {
            model: "claude",
            messages: &messages,
            tools: &tools,
            ..ChatParams::default()
        };
        let mark = |block: &str| format!("{}{MARK}", block.strip_suffix('}').unwrap_or(block));
        let expected = [
            r#"{"model":"claude","max_tokens":1024,"system":["#.to_string(),
            r#"{"type":"text","text":"You are a librarian."},"#.into(),
            mark(r#"{"type":"text","text":"The catalogue: …"}"#),
            r#",{"type":"text","text":"Be brief."}],"messages":["#.into(),
            r#"{"role":"user","content":["#.into(),
            mark(r#"{"type":"text","text":"The long document"}"#),
            r#",{"type":"text","text":"Question?"}]},"#.into(),
            r#"{"role":"assistant","content":["#.into(),
            mark(r#"{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}"#),
            r#"]},{"role":"user","content":["#.into(),
            mark(r#"{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}"#),
            r#"]}],"tools":["#.into(),
            r#"{"name":"weather","description":"The weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},"#.into(),
            mark(r#"{"name":"weather","description":"The weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}"#),
            "]}".into(),
        ]
        .concat();
        assert_eq!(body(&params), expected);
    }

    #[test]
    fn a_marked_string_message_becomes_one_text_block() {
        let mut message = Message::text(Role::User, "Summarise the contract.");
        message.cache = true;
        let mut image = Message::text(Role::User, "");
        image.content = vec![Part::Image("https://x.test/a.png".into())];
        image.cache_parts = vec![0];
        let messages = [message];
        let params = ChatParams {
            messages: &messages,
            ..ChatParams::default()
        };
        assert!(body(&params).contains(&format!(
            r#""messages":[{{"role":"user","content":[{{"type":"text","text":"Summarise the contract."{MARK}]}}]"#
        )));
        let messages = [image];
        let params = ChatParams {
            messages: &messages,
            ..ChatParams::default()
        };
        assert!(body(&params).contains(&format!(
            r#"[{{"type":"image","source":{{"type":"url","url":"https://x.test/a.png"}}{MARK}]"#
        )));
        // Without a mark, the system prompt stays one string.
        let messages = [
            Message::text(Role::System, "a"),
            Message::text(Role::System, "b"),
        ];
        let params = ChatParams {
            messages: &messages,
            ..ChatParams::default()
        };
        assert!(body(&params).contains(r#""system":"a\n\nb""#));
    }

    #[test]
    fn tool_choices_map_to_anthropic_words() {
        let messages = [Message::text(Role::User, "hi")];
        let tools = [weather()];
        for (choice, written) in [
            (ToolChoice::Auto, r#""tool_choice":{"type":"auto"}"#),
            (ToolChoice::Required, r#""tool_choice":{"type":"any"}"#),
            (ToolChoice::None, r#""tool_choice":{"type":"none"}"#),
            (
                ToolChoice::Named("weather".into()),
                r#""tool_choice":{"type":"tool","name":"weather"}"#,
            ),
        ] {
            let params = ChatParams {
                messages: &messages,
                tools: &tools,
                tool_choice: Some(&choice),
                ..ChatParams::default()
            };
            assert!(body(&params).contains(written), "{written}");
        }
    }

    #[test]
    fn a_response_format_is_a_forced_tool() {
        let messages = [Message::text(Role::User, "hi")];
        let json = ResponseFormat::Json;
        let params = ChatParams {
            messages: &messages,
            response_format: Some(&json),
            ..ChatParams::default()
        };
        assert!(body(&params).ends_with(
            r#""tools":[{"name":"json_answer","description":"Answer with a JSON object.","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"json_answer"}}"#
        ));
        let schema = ResponseFormat::JsonSchema {
            name: "city".into(),
            schema: r#"{"type":"object","required":["name"]}"#.into(),
            strict: Some(true),
        };
        let tools = [weather()];
        let with_tools = |choice: Option<&ToolChoice>| {
            body(&ChatParams {
                messages: &messages,
                tools: &tools,
                tool_choice: choice,
                response_format: Some(&schema),
                ..ChatParams::default()
            })
        };
        let written = with_tools(None);
        assert!(written.contains(r#"{"name":"json_answer","description":"Answer with a JSON object: the city schema.","input_schema":{"type":"object","required":["name"]}}]"#), "{written}");
        assert!(written.contains(r#""tool_choice":{"type":"any"}"#));
        assert!(with_tools(Some(&ToolChoice::Auto)).contains(r#""tool_choice":{"type":"any"}"#));
        assert!(with_tools(Some(&ToolChoice::None))
            .contains(r#""tool_choice":{"type":"tool","name":"json_answer"}"#));
        assert!(with_tools(Some(&ToolChoice::Named("weather".into())))
            .contains(r#""tool_choice":{"type":"tool","name":"weather"}"#));
    }

    #[test]
    fn a_malformed_data_url_is_sent_as_a_url_for_the_api_to_refuse() {
        let mut message = Message::text(Role::User, "");
        message.content = vec![Part::Image("data:image/png,notbase64".into())];
        let messages = [message];
        let params = ChatParams {
            messages: &messages,
            ..ChatParams::default()
        };
        assert!(body(&params).contains(
            r#"[{"type":"image","source":{"type":"url","url":"data:image/png,notbase64"}}]"#
        ));
    }

    #[test]
    fn a_tool_result_with_an_image_is_an_array_of_blocks() {
        let mut shot = result("toolu_1", "");
        shot.content = vec![
            Part::Text("the page:".into()),
            Part::Image("data:image/webp;base64,UklG".into()),
        ];
        let messages = [shot];
        let params = ChatParams {
            messages: &messages,
            ..ChatParams::default()
        };
        assert!(body(&params).contains(
            r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"the page:"},{"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklG"}}]}]}"#
        ));
    }

    #[test]
    fn reads_tool_use_blocks_and_the_answer_tool() {
        let answer = r#"{"type":"message","content":[
            {"type":"text","text":"Let me check."},
            {"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Oslo","days":[1,2]}}],
            "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#;
        let completion = parse_completion(Provider::Anthropic, answer).expect("an answer");
        assert_eq!(completion.text, "Let me check.");
        assert_eq!(completion.finish_reason, "tool_calls");
        assert_eq!(
            completion.tool_calls,
            vec![ToolCall {
                id: "toolu_1".into(),
                name: "weather".into(),
                arguments: r#"{"city":"Oslo","days":[1,2]}"#.into(),
            }]
        );
        let structured = r#"{"content":[{"type":"tool_use","id":"toolu_2","name":"json_answer","input":{"name":"Oslo"}}],"stop_reason":"tool_use"}"#;
        let completion = parse_completion(Provider::Anthropic, structured).expect("an answer");
        assert_eq!(completion.text, r#"{"name":"Oslo"}"#);
        assert_eq!(completion.finish_reason, "stop");
        assert!(completion.tool_calls.is_empty());
    }

    #[test]
    fn finish_reasons_in_openai_words() {
        for (reason, calls, normalised) in [
            ("end_turn", false, "stop"),
            ("stop_sequence", false, "stop"),
            ("max_tokens", false, "length"),
            ("tool_use", true, "tool_calls"),
            ("tool_use", false, "stop"),
            ("refusal", false, "content_filter"),
            ("pause_turn", false, "pause_turn"),
            ("", false, ""),
        ] {
            assert_eq!(finish_reason(reason, calls), normalised, "{reason}");
        }
    }
}
