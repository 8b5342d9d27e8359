//! The OpenAI Chat Completions dialect (and every compatible server): the portable request written
//! as its body, its non-streamed answer read back.
//!
//! It is the portable request's own shape (the API was modelled on it), so the writing is one for
//! one: a message's content is a string when it is one text part, else an array of `text` and
//! `image_url` parts; an assistant's tool calls are `tool_calls` of `type: "function"` (its
//! `content` `null` when it has no text); a tool result is a `tool` message.

use super::provider::{
    count, text_of, write_array, write_json_text, write_milli, Body, Completion,
};
use super::request::{
    with_prefill, ChatParams, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
};
use crate::core::json::{write_string, Json};
use crate::core::stream::Usage;

/// Writes `{"model","messages","tools"?,"tool_choice"?,"response_format"?,"max_tokens"?,
/// "temperature"?,"top_p"?,"stop"?,"seed"?,"user"?}` plus, when streaming,
/// `"stream":true,"stream_options":{"include_usage":true}` (without it the stream carries no
/// usage, and budgets could not be settled).
///
/// `tool_choice` is `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name"}}`;
/// A [`prefill`](ChatParams::prefill) is the final assistant message, as written: a server that
/// continues one (llama.cpp, vLLM with `continue_final_message`, OpenRouter, DeepSeek's and
/// Mistral's `prefix`) answers with what follows it; the target's `prefill` option says it does.
///
/// `response_format` `{"type":"json_object"}` or `{"type":"json_schema","json_schema":{"name",
/// "schema","strict"?}}`. Note that OpenAI's reasoning models (o1, o3…) refuse `max_tokens` and
/// want `max_completion_tokens`: leave `max_tokens` unset and pass it in the provider options.
pub fn write_body(params: &ChatParams, body: &mut Body) {
    if let Some(out) = body.member("model") {
        write_string(params.model, out);
    }
    if let Some(out) = body.member("messages") {
        write_array(
            &with_prefill(params.messages, params.prefill),
            out,
            write_message,
        );
    }
    if !params.tools.is_empty() {
        if let Some(out) = body.member("tools") {
            write_array(params.tools, out, write_tool);
        }
    }
    if let Some(choice) = params.tool_choice {
        if let Some(out) = body.member("tool_choice") {
            write_tool_choice(choice, out);
        }
    }
    if let Some(format) = params.response_format {
        if let Some(out) = body.member("response_format") {
            write_response_format(format, out);
        }
    }
    if let Some(max) = params.max_tokens {
        if let Some(out) = body.member("max_tokens") {
            out.push_str(&max.to_string());
        }
    }
    write_sampling(params, "stop", body);
    if let Some(seed) = params.seed {
        if let Some(out) = body.member("seed") {
            out.push_str(&seed.to_string());
        }
    }
    if let Some(user) = params.user {
        if let Some(out) = body.member("user") {
            write_string(user, out);
        }
    }
    if params.stream {
        if let Some(out) = body.member("stream") {
            out.push_str("true");
        }
        if let Some(out) = body.member("stream_options") {
            out.push_str("{\"include_usage\":true}");
        }
    }
}

/// `temperature`, `top_p` and the stop sequences under `stop_name` (the one sampling block both
/// dialects write the same way, but for that name).
pub(super) fn write_sampling(params: &ChatParams, stop_name: &str, body: &mut Body) {
    for (name, milli) in [
        ("temperature", params.temperature_milli),
        ("top_p", params.top_p_milli),
    ] {
        if let Some(milli) = milli {
            if let Some(out) = body.member(name) {
                write_milli(milli, out);
            }
        }
    }
    if !params.stop.is_empty() {
        if let Some(out) = body.member(stop_name) {
            write_array(params.stop, out, |s, out| write_string(s, out));
        }
    }
}

fn write_message(message: &Message, out: &mut String) {
    out.push_str("{\"role\":\"");
    out.push_str(message.role.as_str());
    out.push_str("\",\"content\":");
    let empty = message
        .content
        .iter()
        .all(|part| part == &Part::Text(String::new()));
    if message.role == Role::Assistant && empty && !message.tool_calls.is_empty() {
        out.push_str("null");
    } else {
        write_content(&message.content, out);
    }
    if message.role == Role::Assistant && !message.tool_calls.is_empty() {
        out.push_str(",\"tool_calls\":");
        write_array(&message.tool_calls, out, write_tool_call);
    }
    if message.role == Role::Tool {
        out.push_str(",\"tool_call_id\":");
        write_string(message.tool_call_id.as_deref().unwrap_or_default(), out);
    }
    out.push('}');
}

/// A string for one text part (or none), else an array of parts.
fn write_content(content: &[Part], out: &mut String) {
    match content {
        [] => out.push_str("\"\""),
        [Part::Text(text)] => write_string(text, out),
        parts => write_array(parts, out, |part, out| match part {
            Part::Text(text) => {
                out.push_str("{\"type\":\"text\",\"text\":");
                write_string(text, out);
                out.push('}');
            }
            Part::Image(url) => {
                out.push_str("{\"type\":\"image_url\",\"image_url\":{\"url\":");
                write_string(url, out);
                out.push_str("}}");
            }
        }),
    }
}

fn write_tool_call(call: &ToolCall, out: &mut String) {
    out.push_str("{\"id\":");
    write_string(&call.id, out);
    out.push_str(",\"type\":\"function\",\"function\":{\"name\":");
    write_string(&call.name, out);
    out.push_str(",\"arguments\":");
    write_string(&call.arguments, out);
    out.push_str("}}");
}

fn write_tool(tool: &Tool, out: &mut String) {
    out.push_str("{\"type\":\"function\",\"function\":{\"name\":");
    write_string(&tool.name, out);
    if let Some(description) = &tool.description {
        out.push_str(",\"description\":");
        write_string(description, out);
    }
    out.push_str(",\"parameters\":");
    write_json_text(&tool.parameters, "{}", out);
    out.push_str("}}");
}

fn write_tool_choice(choice: &ToolChoice, out: &mut String) {
    match choice {
        ToolChoice::Auto => out.push_str("\"auto\""),
        ToolChoice::None => out.push_str("\"none\""),
        ToolChoice::Required => out.push_str("\"required\""),
        ToolChoice::Named(name) => {
            out.push_str("{\"type\":\"function\",\"function\":{\"name\":");
            write_string(name, out);
            out.push_str("}}");
        }
    }
}

fn write_response_format(format: &ResponseFormat, out: &mut String) {
    match format {
        ResponseFormat::Json => out.push_str("{\"type\":\"json_object\"}"),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            out.push_str("{\"type\":\"json_schema\",\"json_schema\":{\"name\":");
            write_string(name, out);
            out.push_str(",\"schema\":");
            write_json_text(schema, "{}", out);
            if let Some(strict) = strict {
                out.push_str(if *strict {
                    ",\"strict\":true"
                } else {
                    ",\"strict\":false"
                });
            }
            out.push_str("}}");
        }
    }
}

/// `choices[0].message.content` (`null` reads as empty), its `tool_calls` (`function.arguments`
/// as sent; an object, as some compatible servers send, written back as JSON text),
/// `choices[0].finish_reason` as sent, the usage through `read_usage`. `None`
/// without `choices[0].message`.
pub fn read_completion(json: &Json) -> Option<Completion> {
    let choice = json.get("choices")?.at(0)?;
    let message = choice.get("message")?;
    let usage = json.get("usage");
    let tool_calls = match message.get("tool_calls") {
        Some(Json::Array(calls)) => calls.iter().map(read_tool_call).collect(),
        _ => Vec::new(),
    };
    Some(Completion {
        text: text_of(message.get("content")),
        tool_calls,
        finish_reason: text_of(choice.get("finish_reason")),
        usage: read_usage(usage),
    })
}

/// `usage` → [`Usage`]: `prompt_tokens` (its cached tokens included, as [`Usage`] counts them),
/// `completion_tokens`, `prompt_tokens_details.cached_tokens`; OpenAI reports no cache writes
/// (its caching is automatic and writes cost nothing extra). Zero where absent.
pub(crate) fn read_usage(usage: Option<&Json>) -> Usage {
    let details = usage.and_then(|u| u.get("prompt_tokens_details"));
    Usage {
        input_tokens: count(usage, "prompt_tokens"),
        output_tokens: count(usage, "completion_tokens"),
        cached_input_tokens: count(details, "cached_tokens"),
        cache_write_tokens: 0,
    }
}

fn read_tool_call(call: &Json) -> ToolCall {
    let function = call.get("function");
    ToolCall {
        id: text_of(call.get("id")),
        name: text_of(function.and_then(|f| f.get("name"))),
        arguments: arguments_text(function.and_then(|f| f.get("arguments"))),
    }
}

/// Arguments as JSON text: a string as is, any other value written as JSON, absent as empty.
pub(crate) fn arguments_text(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(text)) => text.to_string(),
        Some(other) => {
            let mut out = String::new();
            other.write(&mut out);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::llm::request::*;
    use crate::core::llm::{build_request, parse_completion, Provider};

    fn body(params: &ChatParams) -> String {
        build_request(Provider::OpenAi, params, None).body
    }

    pub(crate) fn weather_tool() -> Tool {
        Tool {
            name: "weather".into(),
            description: Some("The weather in a city".into()),
            parameters: r#"{ "type": "object", "properties": { "city": { "type": "string" } } }"#
                .into(),
            cache: false,
        }
    }

    #[test]
    fn tools_choice_format_and_sampling_field_by_field() {
        let messages = [Message::text(Role::User, "hi")];
        let tools = [
            weather_tool(),
            Tool {
                name: "now".into(),
                description: None,
                parameters: "{}".into(),
                cache: false,
            },
        ];
        let stop = ["END".to_string(), "\n\n".to_string()];
        let schema = ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: r#"{"type":"object","required":["a"]}"#.into(),
            strict: Some(true),
        };
        let choice = ToolChoice::Named("weather".into());
        let params = ChatParams {
            model: "gpt",
            messages: &messages,
            tools: &tools,
            tool_choice: Some(&choice),
            response_format: Some(&schema),
            max_tokens: Some(10),
            temperature_milli: Some(200),
            top_p_milli: Some(950),
            stop: &stop,
            seed: Some(-42),
            ..ChatParams::default()
        };
        assert_eq!(
            body(&params),
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"weather","description":"The weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},{"type":"function","function":{"name":"now","parameters":{}}}],"tool_choice":{"type":"function","function":{"name":"weather"}},"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","required":["a"]},"strict":true}},"max_tokens":10,"temperature":0.2,"top_p":0.95,"stop":["END","\n\n"],"seed":-42}"#
        );
        for (choice, written) in [
            (ToolChoice::Auto, r#""tool_choice":"auto""#),
            (ToolChoice::None, r#""tool_choice":"none""#),
            (ToolChoice::Required, r#""tool_choice":"required""#),
        ] {
            let params = ChatParams {
                tool_choice: Some(&choice),
                ..params.clone()
            };
            assert!(body(&params).contains(written), "{written}");
        }
        for (format, written) in [
            (
                ResponseFormat::Json,
                r#""response_format":{"type":"json_object"}"#,
            ),
            (
                ResponseFormat::JsonSchema {
                    name: "n".into(),
                    schema: "{}".into(),
                    strict: None,
                },
                r#""response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{}}}"#,
            ),
        ] {
            let params = ChatParams {
                response_format: Some(&format),
                ..params.clone()
            };
            assert!(body(&params).contains(written), "{written}");
        }
    }

    #[test]
    fn content_parts_tool_calls_and_tool_results() {
        let mut user = Message::text(Role::User, "what is this?");
        user.content
            .push(Part::Image("https://x.test/a.png".into()));
        user.content
            .push(Part::Image("data:image/png;base64,iVBO".into()));
        let mut call = Message::text(Role::Assistant, "");
        call.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: r#"{"city":"Oslo"}"#.into(),
        });
        let mut text_and_call = call.clone();
        text_and_call.content = vec![Part::Text("Let me look.".into())];
        let mut no_content = call.clone();
        no_content.content.clear();
        let mut result = Message::text(Role::Tool, "-3 °C");
        result.tool_call_id = Some("call_1".into());
        let messages = [user, call, text_and_call, no_content, result];
        let params = ChatParams {
            model: "gpt",
            messages: &messages,
            ..ChatParams::default()
        };
        assert_eq!(
            body(&params),
            r#"{"model":"gpt","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://x.test/a.png"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"assistant","content":"Let me look.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","content":"-3 °C","tool_call_id":"call_1"}]}"#
        );
    }

    #[test]
    fn cache_marks_are_dropped() {
        let mut system = Message::text(Role::System, "Long instructions");
        system.cache = true;
        let mut user = Message::text(Role::User, "doc");
        user.content.push(Part::Text("question".into()));
        user.cache_parts = vec![0];
        let mut tool = weather_tool();
        tool.cache = true;
        let messages = [system, user];
        let tools = [tool];
        let params = ChatParams {
            model: "gpt",
            messages: &messages,
            tools: &tools,
            ..ChatParams::default()
        };
        assert_eq!(
            body(&params),
            r#"{"model":"gpt","messages":[{"role":"system","content":"Long instructions"},{"role":"user","content":[{"type":"text","text":"doc"},{"type":"text","text":"question"}]}],"tools":[{"type":"function","function":{"name":"weather","description":"The weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#
        );
    }

    #[test]
    fn reads_tool_calls() {
        let answer = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}},
                          {"id":"call_2","type":"function","function":{"name":"now","arguments":{"tz":"UTC"}}}]},
            "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#;
        let completion = parse_completion(Provider::OpenAi, answer).expect("an answer");
        assert_eq!(completion.text, "");
        assert_eq!(completion.finish_reason, "tool_calls");
        assert_eq!(
            completion.tool_calls,
            vec![
                ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into(),
                },
                ToolCall {
                    id: "call_2".into(),
                    name: "now".into(),
                    arguments: r#"{"tz":"UTC"}"#.into(),
                },
            ]
        );
    }
}
