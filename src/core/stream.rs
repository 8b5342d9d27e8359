//! Watching an LLM event stream: which dialect it speaks, whether it finished, what went wrong.
//!
//! An SSE stream that simply stops looks like a normal end of stream to a parser. For an LLM answer
//! it is not: an OpenAI-compatible stream ends with `data: [DONE]`, an Anthropic one with
//! `event: message_stop`. A stream cut before that is incomplete, and the caller must hear so (with
//! the text received so far) instead of getting a silently truncated answer. Errors also arrive
//! in-band: an `event: error` (Anthropic) or a `{"error": ...}` data object (OpenAI and compatibles).
//! The monitor reads each event's JSON with the core's small [`Json`] reader; streams that are not
//! recognisably an LLM stream are passed through and end normally at end of stream.
//!
//! Each event's addition to the answer is one [`Delta`]: text and tool-call pieces in OpenAI's
//! shape whichever dialect answers (OpenAI's `delta.tool_calls`; Anthropic's `tool_use` block
//! starts and their `input_json_delta`s, a tool call's index counting tool blocks only). The
//! monitor keeps the text and the calls assembled, bounded together: an event that would take
//! them past the bound is refused ([`Observation::TooLarge`]). The finish reason is kept in
//! OpenAI's words; an Anthropic `responseFormat` answer's forced tool streams as text (see
//! [`crate::core::llm::anthropic`]).

use crate::core::json::Json;
use crate::core::limits::DEFAULT_MAX_RESPONSE_BYTES;
use crate::core::llm::anthropic::{finish_reason, merge_usage, ANSWER_TOOL};
use crate::core::llm::openai::{arguments_text, read_usage};
use crate::core::llm::request::{ToolCall, ToolCallDelta};

/// The wire dialect, recognised from the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Nothing recognisable yet: a plain event stream.
    Unknown,
    /// OpenAI Chat Completions chunks (and compatible servers).
    OpenAi,
    /// Anthropic Messages events.
    Anthropic,
}

/// An error the upstream reported inside the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The error type or code (`overloaded_error`, `server_error`, ...), when given.
    pub kind: String,
    /// The upstream's message.
    pub message: String,
}

/// Token counts reported by the upstream, in one meaning for both dialects.
///
/// `input_tokens` is every prompt token the model read, prompt-cache reads and writes included
/// (OpenAI's `prompt_tokens` already counts its cached tokens; Anthropic's `input_tokens` leaves
/// its cache reads and writes out, so they are added back): it is what a context window and a
/// token budget see whoever answered. The two cache counts are parts of it, priced apart
/// ([`crate::core::llm::cost_micros`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cache reads and writes included.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Of the prompt tokens, read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Of the prompt tokens, written to the provider's prompt cache (Anthropic; OpenAI reports none).
    pub cache_write_tokens: u64,
}

/// What one event meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Keep reading.
    Continue,
    /// The stream said it is complete.
    Done,
    /// The stream reported an error.
    Error(StreamError),
    /// A delta would take the text past the monitor's bound: it was not added.
    TooLarge,
}

/// What one event added to the answer: text and tool-call pieces, in OpenAI's shape whichever
/// dialect the stream speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The next piece of the text (may be empty when the event only carried tool-call pieces).
    pub text: String,
    /// The next pieces of tool calls.
    pub tool_calls: Vec<ToolCallDelta>,
}

impl Delta {
    /// Nothing added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.tool_calls.is_empty()
    }

    /// Appends `next` (a later delta of the same answer): text after text, and a piece that
    /// continues the last one's call (same index, no id or name of its own) joined to it.
    pub fn extend(&mut self, next: Delta) {
        self.text.push_str(&next.text);
        for piece in next.tool_calls {
            match self.tool_calls.last_mut() {
                Some(last)
                    if last.index == piece.index && piece.id.is_none() && piece.name.is_none() =>
                {
                    last.arguments_delta.push_str(&piece.arguments_delta);
                }
                _ => self.tool_calls.push(piece),
            }
        }
    }
}

/// Bytes a new tool call counts against the bound before any of its text: a stream of empty calls
/// must not grow the list unbounded.
const TOOL_CALL_BYTES: usize = 64;

/// Most reused OpenAI tool-call indexes remembered (the latest win): each piece looks them up, so a
/// hostile stream reusing every index cannot make that quadratic.
const MAX_REUSED: usize = 8;

/// An Anthropic content block that streams JSON (`input_json_delta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonBlock {
    /// A tool call: its index among the answer's tool calls.
    Tool(usize),
    /// The [`ANSWER_TOOL`]: its input is the answer's text.
    Answer,
}

/// Follows a stream event by event.
#[derive(Debug, Clone)]
pub struct StreamMonitor {
    dialect: Dialect,
    done: bool,
    text: String,
    tool_calls: Vec<ToolCall>,
    /// Anthropic's JSON blocks by their block index.
    blocks: Vec<(u64, JsonBlock)>,
    /// OpenAI tool-call indexes the server reused for another call (told apart by a new id; some
    /// OpenAI-compatible servers number every call 0), each with the index of our call it now means.
    reused: Vec<(usize, usize)>,
    /// Bytes kept: the text, the tool calls' ids, names and arguments, [`TOOL_CALL_BYTES`] each.
    kept: usize,
    usage: Usage,
    finish_reason: Option<String>,
    max_text: usize,
}

impl Default for StreamMonitor {
    fn default() -> Self {
        StreamMonitor::with_max_text(DEFAULT_MAX_RESPONSE_BYTES)
    }
}

impl StreamMonitor {
    /// A monitor at the start of a stream, keeping at most [`DEFAULT_MAX_RESPONSE_BYTES`] of text.
    pub fn new() -> Self {
        StreamMonitor::default()
    }

    /// A monitor keeping at most `max` bytes of text and tool calls together.
    pub fn with_max_text(max: usize) -> Self {
        StreamMonitor {
            dialect: Dialect::Unknown,
            done: false,
            text: String::new(),
            tool_calls: Vec::new(),
            blocks: Vec::new(),
            reused: Vec::new(),
            kept: 0,
            usage: Usage::default(),
            finish_reason: None,
            max_text: max,
        }
    }

    /// Takes one event into account; returns what it added to the answer (the delta), if anything,
    /// and what it meant.
    pub fn observe(&mut self, event_type: &str, data: &str) -> (Option<Delta>, Observation) {
        if data == "[DONE]" {
            self.dialect = Dialect::OpenAi;
            self.done = true;
            return (None, Observation::Done);
        }
        let Some(json) = Json::parse(data) else {
            return (None, Observation::Continue);
        };
        if event_type == "error" {
            self.dialect = Dialect::Anthropic;
            return (None, Observation::Error(error_of(&json)));
        }
        if json.get("error").is_some_and(|e| !e.is_null()) {
            return (None, Observation::Error(error_of(&json)));
        }
        match json.get("type").and_then(Json::as_str) {
            Some(kind) if kind.starts_with("message_") || kind.starts_with("content_block_") => {
                self.observe_anthropic(kind, &json)
            }
            _ if json.get("choices").is_some() => self.observe_openai(&json),
            _ => (None, Observation::Continue),
        }
    }

    fn observe_openai(&mut self, json: &Json) -> (Option<Delta>, Observation) {
        self.dialect = Dialect::OpenAi;
        if let Some(usage) = json.get("usage").filter(|u| !u.is_null()) {
            self.usage = read_usage(Some(usage));
        }
        let choice = json.get("choices").and_then(|c| c.at(0));
        if let Some(reason) = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Json::as_str)
        {
            self.finish_reason = Some(reason.to_string());
        }
        let delta = choice.and_then(|c| c.get("delta"));
        let text = delta
            .and_then(|d| d.get("content"))
            .and_then(Json::as_str)
            .unwrap_or("");
        let mut pieces = Vec::new();
        if let Some(Json::Array(calls)) = delta.and_then(|d| d.get("tool_calls")) {
            // Calls this event opens, counted as `append` does, so a reused index maps to its call.
            let mut calls_so_far = self.tool_calls.len();
            let mut opened_ids: Vec<&str> = Vec::new();
            for call in calls {
                let function = call.get("function");
                let id = call.get("id").and_then(Json::as_str);
                // A call without an index continues the last one, unless it opens with an id.
                let mut index = match call.get("index").and_then(Json::as_u64) {
                    Some(index) => self.our_index(usize::try_from(index).unwrap_or(usize::MAX)),
                    None if id.is_some() => usize::MAX,
                    None => calls_so_far.saturating_sub(1),
                };
                if let (Some(given), Some(server)) = (id, call.get("index").and_then(Json::as_u64))
                {
                    let known = match self.tool_calls.get(index) {
                        Some(call) => Some(call.id.as_str()),
                        None => index
                            .checked_sub(self.tool_calls.len())
                            .and_then(|i| opened_ids.get(i).copied()),
                    };
                    if known.is_some_and(|known| {
                        !known.is_empty() && !given.is_empty() && known != given
                    }) {
                        let server = usize::try_from(server).unwrap_or(usize::MAX);
                        self.reused.retain(|(reused, _)| *reused != server);
                        if self.reused.len() == MAX_REUSED {
                            self.reused.remove(0);
                        }
                        self.reused.push((server, calls_so_far));
                        index = usize::MAX;
                    }
                }
                if index >= calls_so_far {
                    calls_so_far += 1;
                    opened_ids.push(id.unwrap_or(""));
                }
                let arguments = arguments_text(function.and_then(|f| f.get("arguments")));
                pieces.push(Piece {
                    index,
                    id,
                    name: function.and_then(|f| f.get("name")).and_then(Json::as_str),
                    arguments,
                });
            }
        }
        self.append(text, pieces)
    }

    fn observe_anthropic(&mut self, kind: &str, json: &Json) -> (Option<Delta>, Observation) {
        self.dialect = Dialect::Anthropic;
        let block_index = json.get("index").and_then(Json::as_u64).unwrap_or(0);
        // Blocks are kept in increasing block index (a start at an index not past the last one's
        // is ignored), so finding one takes a binary search, not a scan per event.
        let block = self
            .blocks
            .binary_search_by_key(&block_index, |(index, _)| *index)
            .ok()
            .and_then(|at| self.blocks.get(at))
            .map(|(_, block)| *block);
        match kind {
            "message_start" => {
                let usage = json.get("message").and_then(|m| m.get("usage"));
                if let Some(usage) = usage {
                    self.usage = merge_usage(Usage::default(), usage);
                }
                (None, Observation::Continue)
            }
            "content_block_start" => {
                let Some(start) = json
                    .get("content_block")
                    .filter(|b| b.get("type").and_then(Json::as_str) == Some("tool_use"))
                else {
                    return (None, Observation::Continue);
                };
                if self
                    .blocks
                    .last()
                    .is_some_and(|(last, _)| *last >= block_index)
                {
                    return (None, Observation::Continue);
                }
                let field = |name| start.get(name).and_then(Json::as_str);
                // The input is `{}` here and streams after; a server that sends it whole here is
                // read too.
                let input = match start.get("input") {
                    Some(Json::Object(members)) if members.is_empty() => String::new(),
                    input => arguments_text(input),
                };
                if field("name") == Some(ANSWER_TOOL) {
                    // Each block counts like a tool call: a stream of empty answer blocks must not
                    // grow the list unbounded.
                    if self.kept.saturating_add(TOOL_CALL_BYTES) > self.max_text {
                        return (None, Observation::TooLarge);
                    }
                    self.kept += TOOL_CALL_BYTES;
                    self.blocks.push((block_index, JsonBlock::Answer));
                    return self.append(&input, Vec::new());
                }
                let index = self.tool_calls.len();
                let piece = Piece {
                    index,
                    id: field("id"),
                    name: field("name"),
                    arguments: input,
                };
                let appended = self.append("", vec![piece]);
                if appended.1 == Observation::Continue {
                    self.blocks.push((block_index, JsonBlock::Tool(index)));
                }
                appended
            }
            "content_block_delta" => {
                let delta = json.get("delta");
                let text = |name| delta.and_then(|d| d.get(name)).and_then(Json::as_str);
                match (text("partial_json"), block) {
                    (Some(json), Some(JsonBlock::Answer)) => self.append(json, Vec::new()),
                    (Some(json), Some(JsonBlock::Tool(index))) => {
                        let piece = Piece {
                            index,
                            id: None,
                            name: None,
                            arguments: json.to_string(),
                        };
                        self.append("", vec![piece])
                    }
                    (Some(_), None) => (None, Observation::Continue),
                    (None, _) => self.append(text("text").unwrap_or(""), Vec::new()),
                }
            }
            "message_delta" => {
                if let Some(usage) = json.get("usage") {
                    self.usage = merge_usage(self.usage, usage);
                }
                if let Some(reason) = json
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Json::as_str)
                {
                    let reason = finish_reason(reason, !self.tool_calls.is_empty());
                    self.finish_reason = Some(reason.to_string());
                }
                (None, Observation::Continue)
            }
            "message_stop" => {
                self.done = true;
                (None, Observation::Done)
            }
            _ => (None, Observation::Continue),
        }
    }

    /// Our index for a tool call the server numbered `server`.
    fn our_index(&self, server: usize) -> usize {
        self.reused
            .iter()
            .find(|(reused, _)| *reused == server)
            .map_or(server, |(_, ours)| *ours)
    }

    /// Adds an event's text and tool-call pieces, all or nothing: refused whole when they would
    /// take what is kept past the bound. A piece's index past the calls so far opens the next
    /// call (indexes cannot skip, so a hostile index allocates nothing).
    fn append(&mut self, text: &str, pieces: Vec<Piece>) -> (Option<Delta>, Observation) {
        let mut calls = self.tool_calls.len();
        let mut added = text.len();
        for piece in &pieces {
            if piece.index >= calls {
                calls += 1;
                added = added.saturating_add(TOOL_CALL_BYTES);
            }
            let id = piece.id.map_or(0, str::len);
            let name = piece.name.map_or(0, str::len);
            added = added.saturating_add(id + name + piece.arguments.len());
        }
        if self.kept.saturating_add(added) > self.max_text {
            return (None, Observation::TooLarge);
        }
        self.kept += added;
        self.text.push_str(text);
        let mut delta = Delta {
            text: text.to_string(),
            tool_calls: Vec::new(),
        };
        for piece in pieces {
            let index = piece.index.min(self.tool_calls.len());
            if index == self.tool_calls.len() {
                self.tool_calls.push(ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
            }
            let Some(call) = self.tool_calls.get_mut(index) else {
                continue;
            };
            // An id or name is taken once: servers that repeat it on every piece hand it out once.
            let first = |kept: &mut String, given: Option<&str>| {
                let given = given.filter(|g| kept.is_empty() && !g.is_empty())?;
                kept.push_str(given);
                Some(given.to_string())
            };
            let id = first(&mut call.id, piece.id);
            let name = first(&mut call.name, piece.name);
            call.arguments.push_str(&piece.arguments);
            if id.is_some() || name.is_some() || !piece.arguments.is_empty() {
                delta.tool_calls.push(ToolCallDelta {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    id,
                    name,
                    arguments_delta: piece.arguments,
                });
            }
        }
        let empty = delta.text.is_empty() && delta.tool_calls.is_empty();
        ((!empty).then_some(delta), Observation::Continue)
    }

    /// At end of stream: true when the stream is complete (a plain event stream always is; an LLM
    /// stream only after its end marker).
    pub fn complete(&self) -> bool {
        self.done || self.dialect == Dialect::Unknown
    }

    /// True once the stream was recognised as an LLM answer (OpenAI or Anthropic).
    pub fn is_llm(&self) -> bool {
        self.dialect != Dialect::Unknown
    }

    /// The dialect recognised so far.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// All generated text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The tool calls received so far, assembled (the last one may still be streaming).
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.tool_calls
    }

    /// Token usage reported so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The finish / stop reason, once reported, in OpenAI's words (see
    /// [`crate::core::llm::anthropic::finish_reason`]).
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }
}

/// One tool-call piece of an event, as read.
struct Piece<'e> {
    index: usize,
    id: Option<&'e str>,
    name: Option<&'e str>,
    arguments: String,
}

/// `{"error": {"type"|"code", "message"}}` or `{"type": "error", "error": {...}}`.
fn error_of(json: &Json) -> StreamError {
    let error = json.get("error").unwrap_or(json);
    let field = |key: &str| error.get(key).and_then(Json::as_str).map(str::to_string);
    StreamError {
        kind: field("type")
            .or_else(|| field("code"))
            .unwrap_or_else(|| "error".to_string()),
        message: field("message").unwrap_or_else(|| "the upstream reported an error".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sse::SseEvent;

    impl StreamMonitor {
        /// The event's text delta and meaning.
        fn see(&mut self, event: &SseEvent) -> (Option<String>, Observation) {
            let (delta, seen) = self.observe(&event.event, &event.data);
            (delta.map(|d| d.text), seen)
        }
    }

    fn event(kind: &str, data: &str) -> SseEvent {
        SseEvent {
            event: kind.to_string(),
            data: data.to_string(),
            id: String::new(),
        }
    }

    fn chunk(content: &str) -> SseEvent {
        event(
            "message",
            &format!(
                r#"{{"object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{content}"}},"finish_reason":null}}]}}"#
            ),
        )
    }

    #[test]
    fn an_openai_stream_is_complete_only_after_done() {
        let mut monitor = StreamMonitor::new();
        assert_eq!(monitor.see(&chunk("Hel")).0.as_deref(), Some("Hel"));
        assert_eq!(monitor.see(&chunk("lo")).0.as_deref(), Some("lo"));
        assert!(!monitor.complete(), "cut before [DONE]");
        monitor.see(&event(
            "message",
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
        ));
        assert_eq!(
            monitor.see(&event("message", "[DONE]")).1,
            Observation::Done
        );
        assert!(monitor.complete());
        assert_eq!(monitor.text(), "Hello");
        assert_eq!(
            monitor.usage(),
            Usage {
                input_tokens: 5,
                output_tokens: 2,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn prompt_cache_usage_streams_in_both_dialects() {
        let mut monitor = StreamMonitor::new();
        monitor.see(&event(
            "message",
            r#"{"choices":[],"usage":{"prompt_tokens":1500,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1024}}}"#,
        ));
        assert_eq!(
            monitor.usage(),
            Usage {
                input_tokens: 1500,
                output_tokens: 2,
                cached_input_tokens: 1024,
                cache_write_tokens: 0,
            }
        );
        let mut monitor = StreamMonitor::new();
        monitor.see(&event(
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":4000,"output_tokens":1}}}"#,
        ));
        assert_eq!(
            monitor.usage(),
            Usage {
                input_tokens: 4012,
                output_tokens: 1,
                cached_input_tokens: 4000,
                cache_write_tokens: 0,
            }
        );
        // message_delta: cumulative, in part; what it leaves out keeps its value.
        monitor.see(&event(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":30}}"#,
        ));
        assert_eq!(monitor.usage().input_tokens, 4012);
        assert_eq!(monitor.usage().cached_input_tokens, 4000);
        monitor.see(&event(
            "message_delta",
            r#"{"type":"message_delta","delta":{},"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":4000,"output_tokens":31}}"#,
        ));
        assert_eq!(
            monitor.usage(),
            Usage {
                input_tokens: 4112,
                output_tokens: 31,
                cached_input_tokens: 4000,
                cache_write_tokens: 100,
            }
        );
    }

    #[test]
    fn an_anthropic_stream_is_complete_only_after_message_stop() {
        let mut monitor = StreamMonitor::new();
        let events = [
            event(
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#,
            ),
            event("ping", r#"{"type":"ping"}"#),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            ),
            event(
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
            ),
        ];
        for e in &events {
            monitor.see(e);
        }
        assert_eq!(monitor.dialect(), Dialect::Anthropic);
        assert!(!monitor.complete());
        monitor.see(&event("message_stop", r#"{"type":"message_stop"}"#));
        assert!(monitor.complete());
        assert_eq!(monitor.text(), "Hi");
        assert_eq!(
            monitor.finish_reason(),
            Some("stop"),
            "end_turn, in OpenAI's words"
        );
        assert_eq!(monitor.usage().output_tokens, 3);
    }

    #[test]
    fn in_band_errors_are_reported() {
        let mut monitor = StreamMonitor::new();
        let (_, seen) = monitor.see(&event(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ));
        assert_eq!(
            seen,
            Observation::Error(StreamError {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            })
        );
        let (_, seen) = StreamMonitor::new().see(&event(
            "message",
            r#"{"error":{"message":"boom","type":"server_error"}}"#,
        ));
        assert!(matches!(seen, Observation::Error(e) if e.kind == "server_error"));
    }

    #[test]
    fn a_delta_past_the_text_bound_is_refused_and_the_text_kept_stays_within_it() {
        let mut monitor = StreamMonitor::with_max_text(5);
        assert_eq!(monitor.see(&chunk("Hel")).1, Observation::Continue);
        assert_eq!(monitor.see(&chunk("lo")).1, Observation::Continue);
        assert_eq!(monitor.see(&chunk("!")), (None, Observation::TooLarge));
        assert_eq!(monitor.text(), "Hello");
        assert_eq!(
            StreamMonitor::new().max_text,
            crate::core::limits::DEFAULT_MAX_RESPONSE_BYTES
        );
    }

    #[test]
    fn a_plain_event_stream_ends_normally() {
        let mut monitor = StreamMonitor::new();
        monitor.see(&event("tick", "not json"));
        monitor.see(&event("message", r#"{"n":1}"#));
        assert!(monitor.complete());
    }

    fn piece(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(str::to_string),
            name: name.map(str::to_string),
            arguments_delta: arguments.to_string(),
        }
    }

    fn deltas(monitor: &mut StreamMonitor, events: &[SseEvent]) -> Vec<Delta> {
        events
            .iter()
            .filter_map(|e| monitor.observe(&e.event, &e.data).0)
            .collect()
    }

    #[test]
    fn openai_tool_call_deltas_are_handed_out_and_assembled() {
        let chunk = |delta: &str| {
            event(
                "message",
                &format!(r#"{{"choices":[{{"index":0,"delta":{delta},"finish_reason":null}}]}}"#),
            )
        };
        let events = [
            chunk(r#"{"role":"assistant","content":null}"#),
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":""}}]}"#,
            ),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}"#),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}]}"#),
            chunk(
                r#"{"tool_calls":[{"index":1,"id":"call_2","function":{"name":"now","arguments":"{}"}}]}"#,
            ),
            event(
                "message",
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            ),
        ];
        let mut monitor = StreamMonitor::new();
        let seen = deltas(&mut monitor, &events);
        let pieces: Vec<ToolCallDelta> = seen.iter().flat_map(|d| d.tool_calls.clone()).collect();
        assert_eq!(
            pieces,
            vec![
                piece(0, Some("call_1"), Some("weather"), ""),
                piece(0, None, None, "{\"ci"),
                piece(0, None, None, "ty\":\"Oslo\"}"),
                piece(1, Some("call_2"), Some("now"), "{}"),
            ]
        );
        assert!(seen.iter().all(|d| d.text.is_empty()));
        assert_eq!(
            monitor.tool_calls(),
            &[
                ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into(),
                },
                ToolCall {
                    id: "call_2".into(),
                    name: "now".into(),
                    arguments: "{}".into(),
                },
            ]
        );
        assert_eq!(monitor.finish_reason(), Some("tool_calls"));
    }

    #[test]
    fn calls_that_reuse_index_0_with_new_ids_stay_apart() {
        let chunk = |calls: &str| {
            event(
                "message",
                &format!(r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":{calls}}}}}]}}"#),
            )
        };
        let events = [
            chunk(
                r#"[{"index":0,"id":"a","function":{"name":"weather","arguments":"{\"city\""}}]"#,
            ),
            chunk(r#"[{"index":0,"function":{"arguments":":\"Oslo\"}"}}]"#),
            // The same id again is the same call; a new id at index 0 is the next call.
            chunk(r#"[{"index":0,"id":"a","function":{"arguments":""}}]"#),
            chunk(r#"[{"index":0,"id":"b","function":{"name":"now","arguments":"{"}}]"#),
            chunk(r#"[{"index":0,"function":{"arguments":"}"}}]"#),
            // Two in one event, both numbered 0.
            chunk(
                r#"[{"index":0,"id":"c","function":{"name":"x","arguments":"1"}},{"index":0,"id":"d","function":{"name":"y","arguments":"2"}}]"#,
            ),
        ];
        let mut monitor = StreamMonitor::new();
        let seen = deltas(&mut monitor, &events);
        let indexes: Vec<u32> = seen
            .iter()
            .flat_map(|d| d.tool_calls.iter().map(|c| c.index))
            .collect();
        assert_eq!(indexes, [0, 0, 1, 1, 2, 3]);
        let calls: Vec<(&str, &str, &str)> = monitor
            .tool_calls()
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("a", "weather", r#"{"city":"Oslo"}"#),
                ("b", "now", "{}"),
                ("c", "x", "1"),
                ("d", "y", "2"),
            ]
        );
    }

    #[test]
    fn anthropic_tool_use_blocks_stream_in_openai_shape() {
        let events = [
            event(
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#,
            ),
            event(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#,
            ),
            event(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            event(
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Os"}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"lo\"}"}}"#,
            ),
            event(
                "content_block_start",
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"now","input":{}}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            ),
            event(
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#,
            ),
            event("message_stop", r#"{"type":"message_stop"}"#),
        ];
        let mut monitor = StreamMonitor::new();
        let seen = deltas(&mut monitor, &events);
        assert_eq!(seen[0].text, "Checking.");
        let pieces: Vec<ToolCallDelta> = seen.iter().flat_map(|d| d.tool_calls.clone()).collect();
        assert_eq!(
            pieces,
            vec![
                piece(0, Some("toolu_1"), Some("weather"), ""),
                piece(0, None, None, "{\"city\": \"Os"),
                piece(0, None, None, "lo\"}"),
                piece(1, Some("toolu_2"), Some("now"), ""),
                piece(1, None, None, "{}"),
            ]
        );
        assert_eq!(monitor.tool_calls()[0].arguments, r#"{"city": "Oslo"}"#);
        assert_eq!(monitor.tool_calls().len(), 2);
        assert_eq!(monitor.finish_reason(), Some("tool_calls"));
        assert!(monitor.complete());
    }

    #[test]
    fn the_anthropic_answer_tool_streams_as_text() {
        let events = [
            event(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"json_answer","input":{}}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\":"}}"#,
            ),
            event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}"#,
            ),
            event(
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"}}"#,
            ),
        ];
        let mut monitor = StreamMonitor::new();
        let seen = deltas(&mut monitor, &events);
        assert!(seen.iter().all(|d| d.tool_calls.is_empty()));
        assert_eq!(monitor.text(), r#"{"name":"Oslo"}"#);
        assert!(monitor.tool_calls().is_empty());
        assert_eq!(monitor.finish_reason(), Some("stop"));
    }

    #[test]
    fn tool_calls_count_against_the_bound_and_indexes_cannot_skip() {
        let mut monitor = StreamMonitor::with_max_text(TOOL_CALL_BYTES + 8);
        let call = |index: &str, arguments: &str| {
            event(
                "message",
                &format!(
                    r#"{{"choices":[{{"delta":{{"tool_calls":[{{"index":{index},"function":{{"arguments":"{arguments}"}}}}]}}}}]}}"#
                ),
            )
        };
        // A hostile index opens the next call, not a call a billion places on.
        let (delta, seen) = monitor.observe("message", &call("1000000000", "1234").data);
        assert_eq!(seen, Observation::Continue);
        assert_eq!(delta.map(|d| d.tool_calls[0].index), Some(0));
        assert_eq!(monitor.see(&call("0", "5678")).1, Observation::Continue);
        assert_eq!(monitor.see(&call("0", "9")), (None, Observation::TooLarge));
        assert_eq!(monitor.see(&call("1", "")), (None, Observation::TooLarge));
        assert_eq!(monitor.tool_calls().len(), 1);
        assert_eq!(monitor.tool_calls()[0].arguments, "12345678");
    }

    /// A hostile Anthropic stream of empty answer-tool blocks kept no text, so nothing bounded
    /// the list of blocks, and each event scanned it: memory and CPU grew without end.
    #[test]
    fn anthropic_blocks_count_against_the_bound_and_only_go_forward() {
        let start = |index: u64, name: &str| {
            format!(
                r#"{{"type":"content_block_start","index":{index},"content_block":{{"type":"tool_use","id":"t{index}","name":"{name}","input":{{}}}}}}"#
            )
        };
        let delta = |index: u64, json: &str| {
            format!(
                r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"input_json_delta","partial_json":"{json}"}}}}"#
            )
        };
        let mut monitor = StreamMonitor::with_max_text(3 * TOOL_CALL_BYTES);
        let mut seen = Vec::new();
        for index in 0..10 {
            seen.push(
                monitor
                    .observe("content_block_start", &start(index, ANSWER_TOOL))
                    .1,
            );
        }
        assert_eq!(
            seen.iter().filter(|s| **s == Observation::Continue).count(),
            3
        );
        assert_eq!(seen.last(), Some(&Observation::TooLarge));
        assert_eq!(monitor.blocks.len(), 3);

        // A block index seen again (or going back) starts nothing; deltas go to the first block.
        let mut monitor = StreamMonitor::new();
        monitor.observe("content_block_start", &start(1, "f"));
        monitor.observe("content_block_start", &start(1, "g"));
        monitor.observe("content_block_start", &start(0, "h"));
        monitor.observe("content_block_delta", &delta(1, "{}"));
        monitor.observe("content_block_delta", &delta(7, "lost"));
        assert_eq!(monitor.tool_calls().len(), 1);
        assert_eq!(monitor.tool_calls()[0].name, "f");
        assert_eq!(monitor.tool_calls()[0].arguments, "{}");
    }

    #[test]
    fn deltas_join_per_batch() {
        let mut batch = Delta::default();
        assert!(batch.is_empty());
        batch.extend(Delta {
            text: "a".into(),
            tool_calls: vec![piece(0, Some("c"), Some("n"), "{")],
        });
        batch.extend(Delta {
            text: "b".into(),
            tool_calls: vec![piece(0, None, None, "}"), piece(1, Some("d"), None, "")],
        });
        assert_eq!(batch.text, "ab");
        assert_eq!(
            batch.tool_calls,
            vec![
                piece(0, Some("c"), Some("n"), "{}"),
                piece(1, Some("d"), None, "")
            ]
        );
    }
}
