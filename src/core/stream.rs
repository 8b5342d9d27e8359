//! Watching an LLM event stream: which dialect it speaks, whether it finished, what went wrong.
//!
//! An SSE stream that simply stops looks like a normal end of stream to a parser. For an LLM answer
//! it is not: an OpenAI-compatible stream ends with `data: [DONE]`, an Anthropic one with
//! `event: message_stop`. A stream cut before that is incomplete, and the caller must hear so (with
//! the text received so far) instead of getting a silently truncated answer. Errors also arrive
//! in-band: an `event: error` (Anthropic) or a `{"error": ...}` data object (OpenAI and compatibles).
//! The monitor reads each event's JSON with the core's small [`Json`] reader; streams that are not
//! recognisably an LLM stream are passed through and end normally at end of stream. The text kept is
//! bounded: a delta that would take it past the bound is refused ([`Observation::TooLarge`]).

use crate::core::json::Json;
use crate::core::limits::DEFAULT_MAX_RESPONSE_BYTES;

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

/// Token counts reported by the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
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

/// Follows a stream event by event.
#[derive(Debug, Clone)]
pub struct StreamMonitor {
    dialect: Dialect,
    done: bool,
    text: String,
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

    /// A monitor keeping at most `max` bytes of text.
    pub fn with_max_text(max: usize) -> Self {
        StreamMonitor {
            dialect: Dialect::Unknown,
            done: false,
            text: String::new(),
            usage: Usage::default(),
            finish_reason: None,
            max_text: max,
        }
    }

    /// Takes one event into account; returns the text it added (the delta), if any, and what it
    /// meant.
    pub fn observe(&mut self, event_type: &str, data: &str) -> (Option<String>, Observation) {
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

    fn observe_openai(&mut self, json: &Json) -> (Option<String>, Observation) {
        self.dialect = Dialect::OpenAi;
        if let Some(usage) = json.get("usage").filter(|u| !u.is_null()) {
            self.usage = Usage {
                input_tokens: count(usage, "prompt_tokens"),
                output_tokens: count(usage, "completion_tokens"),
            };
        }
        let choice = json.get("choices").and_then(|c| c.at(0));
        if let Some(reason) = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Json::as_str)
        {
            self.finish_reason = Some(reason.to_string());
        }
        let delta = choice
            .and_then(|c| c.get("delta"))
            .and_then(|d| d.get("content"))
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty());
        self.append(delta)
    }

    fn observe_anthropic(&mut self, kind: &str, json: &Json) -> (Option<String>, Observation) {
        self.dialect = Dialect::Anthropic;
        match kind {
            "message_start" => {
                let usage = json.get("message").and_then(|m| m.get("usage"));
                if let Some(usage) = usage {
                    self.usage.input_tokens = count(usage, "input_tokens");
                    self.usage.output_tokens = count(usage, "output_tokens");
                }
                (None, Observation::Continue)
            }
            "content_block_delta" => {
                let delta = json
                    .get("delta")
                    .and_then(|d| d.get("text"))
                    .and_then(Json::as_str);
                self.append(delta)
            }
            "message_delta" => {
                if let Some(usage) = json.get("usage") {
                    self.usage.output_tokens = count(usage, "output_tokens");
                }
                if let Some(reason) = json
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Json::as_str)
                {
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

    fn append(&mut self, delta: Option<&str>) -> (Option<String>, Observation) {
        let Some(delta) = delta else {
            return (None, Observation::Continue);
        };
        if self.text.len().saturating_add(delta.len()) > self.max_text {
            return (None, Observation::TooLarge);
        }
        self.text.push_str(delta);
        (Some(delta.to_string()), Observation::Continue)
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

    /// Token usage reported so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The finish / stop reason, once reported.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }
}

fn count(usage: &Json, key: &str) -> u64 {
    usage.get(key).and_then(Json::as_u64).unwrap_or(0)
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
        fn see(&mut self, event: &SseEvent) -> (Option<String>, Observation) {
            self.observe(&event.event, &event.data)
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
                output_tokens: 2
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
        assert_eq!(monitor.finish_reason(), Some("end_turn"));
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
}
