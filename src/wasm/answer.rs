//! What one attempt produced ([`JsResponse`]): the response and, for an event stream, its [`LiveStream`] read
//! up to the first event ([`prime`]), so that a failure before the first event is an ordinary failed
//! attempt the pipeline retries. The transport ([`crate::wasm::platform`]) primes; the pull loop
//! ([`crate::wasm::stream`]) reads on from where priming stopped.

use crate::core::error::TimeoutPhase;
use crate::core::limits::{Bound, Limits};
use crate::core::llm::mid_stream::Continuation;
use crate::core::llm::{ErrorClass, ToolCall};
use crate::core::platform::ResponseMeta;
use crate::core::resume::{Delivered, Failure, Resume};
use crate::core::sse::{EventSink, Packed, SseParser};
use crate::core::stream::{Delta, Observation, StreamError, StreamMonitor};
use crate::core::text;
use crate::wasm::chat_result::chat_delta;
use crate::wasm::errors::{named_error, past_limit, timeout_error};
use crate::wasm::js::{get, set};
use crate::wasm::tap::{Chunk, Cursor, Tap};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Response;

/// What an attempt produced: the response and, for an event stream, its body read up to the first
/// event. One type for both keeps a single copy of the pipeline in the wasm.
pub struct JsResponse {
    /// The fetch `Response`.
    pub response: Response,
    /// The live event stream, when the request asked for one and the response is one.
    pub stream: Option<LiveStream>,
    /// For chat calls: the class of an error answer, read from its body.
    pub error_class: Option<ErrorClass>,
}

impl ResponseMeta for JsResponse {
    fn status(&self) -> u16 {
        self.response.status()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.response.headers().get(name).ok().flatten()
    }
    fn error_class(&self) -> Option<ErrorClass> {
        self.error_class
    }
}

/// One reader of a live stream: its place in the body, parser, and the watch holding the monitor and
/// the events not yet handed out. Dropping it releases its place (the last one cancels the body).
pub struct LiveStream {
    pub(crate) cursor: Cursor,
    pub(crate) parser: SseParser,
    pub(crate) watch: Watch,
    pub(crate) ended: bool,
    pub(crate) failed: Option<JsValue>,
    /// The failure is a cut (the connection failed, went quiet, or ended early): a chat stream may
    /// be resumed after it.
    pub(crate) cut: bool,
    /// The failure is a bound passed: final, whatever the stream.
    pub(crate) oversized: bool,
    pub(crate) limits: Limits,
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.cursor.release();
    }
}

/// The parser's sink for a live stream: each event goes past the monitor, then into the batch for JS
/// (whole events for `events()`, the deltas for `chatStream()`); after an in-band error nothing
/// more is passed on.
pub(crate) struct Watch {
    pub(crate) monitor: StreamMonitor,
    pub(crate) output: Output,
    pub(crate) error: Option<StreamError>,
    /// What a resumed chat stream already delivered, checked against the new answer, not handed out
    /// again.
    pub(crate) resume: Resume,
    /// A bound was passed (nothing more is passed on).
    pub(crate) oversized: Option<Bound>,
    /// A mid-stream fallback's continuation: what earlier targets wrote, and the whitespace its
    /// prefill was sent without (not handed out again).
    pub(crate) continues: Continuation,
}

/// What a stream hands to JS.
pub(crate) enum Output {
    /// Events, packed.
    Events(Packed),
    /// The answer's deltas (text and tool-call pieces), joined per batch.
    Deltas(Delta),
}

impl Output {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Output::Events(packed) => packed.is_empty(),
            Output::Deltas(delta) => delta.is_empty(),
        }
    }

    /// The batch for JS: the packed events, or one `ChatDelta`.
    pub(crate) fn take(&mut self) -> Option<JsValue> {
        match self {
            Output::Events(packed) => packed.take().map(JsValue::from),
            Output::Deltas(delta) => {
                (!delta.is_empty()).then(|| chat_delta(&std::mem::take(delta)))
            }
        }
    }
}

impl EventSink for Watch {
    fn event(&mut self, event_type: &str, data: &str, id: &str, id_changed: bool) {
        if self.error.is_some() || self.resume.diverged() || self.oversized.is_some() {
            return;
        }
        match (self.monitor.observe(event_type, data), &mut self.output) {
            ((_, Observation::Error(error)), _) => self.error = Some(error),
            ((_, Observation::TooLarge), _) => self.oversized = Some(Bound::Response),
            (_, Output::Events(packed)) => packed.event(event_type, data, id, id_changed),
            ((Some(delta), _), Output::Deltas(batch)) => {
                // Past the part of it a resumed stream already delivered.
                if let Some(mut fresh) = self.resume.fresh(&delta) {
                    let kept = self.continues.fresh(&fresh.text).len();
                    fresh.text.drain(..fresh.text.len() - kept);
                    batch.extend(fresh);
                }
            }
            ((None, _), Output::Deltas(_)) => {}
        }
    }
}

impl LiveStream {
    pub(crate) fn new(cursor: Cursor, start: StreamStart) -> Self {
        let StreamStart {
            parser,
            monitor,
            deltas,
            delivered,
            limits,
            continues,
            ..
        } = start;
        LiveStream {
            cursor,
            parser,
            watch: Watch {
                monitor,
                output: if deltas {
                    Output::Deltas(Delta::default())
                } else {
                    Output::Events(Packed::default())
                },
                error: None,
                resume: Resume::after(delivered),
                oversized: None,
                continues,
            },
            ended: false,
            failed: None,
            cut: false,
            oversized: false,
            limits,
        }
    }

    /// Parses a chunk. An in-band error or a cut stops the stream after the events before it: they
    /// are still handed out, then the failure is raised.
    pub(crate) fn take(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Bytes(bytes) => {
                if self.parser.feed(&bytes, &mut self.watch).is_err() {
                    self.watch.oversized.get_or_insert(Bound::Event);
                }
            }
            Chunk::End => {
                self.parser.end(&mut self.watch);
                self.ended = true;
            }
        }
        if let Some(bound) = self.watch.oversized.filter(|_| !self.oversized) {
            let error = past_limit(bound, &self.limits);
            set(&error, "partialText", &self.partial_text().into());
            self.oversized = self.failed.is_none();
            self.fail(error);
        } else if let Some(error) = self.watch.error.take() {
            let js = named_error(
                "UpstreamError",
                "UPSTREAM_STREAM_ERROR",
                &format!(
                    "The upstream reported an error mid-stream: {} ({})",
                    error.message, error.kind
                ),
            );
            set(&js, "kind", &error.kind.as_str().into());
            set(&js, "partialText", &self.partial_text().into());
            self.fail(js.into());
        } else if self.ended && self.watch.monitor.complete() {
            // A resumed answer that ended before reaching the text already delivered diverged.
            self.watch.resume.completed();
        } else if self.ended && !self.watch.monitor.complete() {
            let error = incomplete(
                &self.partial_text(),
                "the stream ended before its end marker",
            );
            self.cut = self.failed.is_none();
            self.cursor.tap().spoil();
            self.fail(error);
        }
        if self.watch.resume.diverged() {
            let error = incomplete(
                &self.partial_text(),
                "it was resumed, but the new answer does not start with the text already delivered",
            );
            self.fail(error);
        }
    }

    /// Ends the stream with `error`, raised once the events before it are handed out.
    pub(crate) fn fail(&mut self, error: JsValue) {
        self.ended = true;
        self.failed.get_or_insert(error);
    }

    /// Ends the stream after a failed read; a broken or quiet connection is a cut.
    pub(crate) fn fail_read(&mut self, failure: ReadFailure) {
        let (error, cut) = match failure {
            ReadFailure::Aborted(abort) => (abort, false),
            ReadFailure::Broken(message) => (
                incomplete(
                    &self.partial_text(),
                    &format!("the connection failed ({message})"),
                ),
                true,
            ),
            ReadFailure::Quiet(idle) => (idle_timeout(idle, &self.partial_text()), true),
        };
        self.cut = cut && self.failed.is_none();
        if self.cut {
            self.cursor.tap().spoil();
        }
        self.fail(error);
    }

    /// How the stream failed, for the decision to recover.
    pub(crate) fn failure(&self) -> Failure {
        match (self.cut, self.oversized) {
            (true, _) => Failure::Cut,
            (_, true) => Failure::TooLarge,
            _ => Failure::Other,
        }
    }

    /// The text the caller has received: all of this stream's (after what earlier targets wrote,
    /// for a continuation), unless it resumed one and has not caught up with (or diverged from)
    /// what was already delivered.
    pub(crate) fn partial_text(&self) -> String {
        self.watch.continues.whole(self.partial().0)
    }

    /// What the caller has received (text and tool calls), for a resumption to check.
    pub(crate) fn delivered(&self) -> Delivered {
        let (text, tool_calls) = self.partial();
        Delivered {
            text: text.to_string(),
            tool_calls: tool_calls.to_vec(),
        }
    }

    fn partial(&self) -> (&str, &[ToolCall]) {
        let monitor = &self.watch.monitor;
        self.watch
            .resume
            .partial(monitor.text(), monitor.tool_calls())
    }
}

fn incomplete(partial: &str, reason: &str) -> JsValue {
    let error = named_error(
        "IncompleteStreamError",
        "INCOMPLETE_STREAM",
        &format!(
            "The stream was cut off: {reason}. The text received so far is in error.partialText."
        ),
    );
    set(&error, "partialText", &partial.into());
    error.into()
}

/// Where an event stream starts: fresh, or resuming a cut one (its parser keeps the last event ID and
/// the `retry:` delay; its monitor the text so far).
#[derive(Clone, Default)]
pub struct StreamStart {
    pub(crate) parser: SseParser,
    pub(crate) monitor: StreamMonitor,
    /// Keep the whole body, so that identical requests can join it and it can be stored in the
    /// cache once it completes.
    pub(crate) retain: bool,
    /// Hand out deltas (`chatStream()`) rather than events.
    pub(crate) deltas: bool,
    /// Resuming a cut chat stream: what was already delivered (checked, not handed out again).
    pub(crate) delivered: Delivered,
    /// Continuing another target's cut chat stream (its text is not part of this stream's).
    pub(crate) continues: Continuation,
    /// The byte limits of the request.
    pub(crate) limits: Limits,
}

impl StreamStart {
    /// A fresh start bounded by `limits`.
    pub(crate) fn bounded(self, limits: Limits) -> StreamStart {
        StreamStart {
            parser: SseParser::with_max_event_bytes(limits.max_event_bytes),
            // A continuation's text adds to what earlier targets wrote.
            monitor: StreamMonitor::with_max_text(
                (limits.max_response_bytes).saturating_sub(self.continues.before().len()),
            ),
            limits,
            ..self
        }
    }
}

/// A chat stream's start: deltas.
pub(crate) fn chat_start() -> StreamStart {
    StreamStart {
        deltas: true,
        ..StreamStart::default()
    }
}

/// Reads an event-stream response until its first event. A 2xx that is not an event stream, or an
/// error status, is handed back as is. An error before the first event fails the attempt (nothing
/// was delivered, so the pipeline may retry it).
pub async fn prime(response: Response, start: StreamStart) -> Result<JsResponse, String> {
    let streaming = response.ok()
        && response
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|t| text::contains(&t, "text/event-stream"));
    let Some(stream) = response.body().filter(|_| streaming) else {
        return Ok(JsResponse {
            response,
            stream: None,
            error_class: None,
        });
    };
    // Dropped before the first event (a deadline, an abort), the body is cancelled with it.
    let tap = Tap::new(stream.get_reader().unchecked_into(), start.retain);
    let mut body = LiveStream::new(tap.cursor(), start);
    // A resumed stream is under way once its first delta matched: catching up with the text
    // already delivered is bounded by the idle timeout, not by the time to first byte.
    let under_way =
        |body: &LiveStream| !body.watch.output.is_empty() || body.watch.resume.started();
    while !under_way(&body) && !body.ended {
        body.take(body.cursor.next().await?);
        // A resumed answer that diverged, or one past a bound, is final (sending it again would
        // not help); anything else failing before the first event fails the attempt.
        if let (true, false, Some(error)) = (
            body.watch.output.is_empty(),
            body.watch.resume.diverged() || body.oversized,
            &body.failed,
        ) {
            return Err(get(error, "message").as_string().unwrap_or_default());
        }
    }
    if body.ended && body.watch.output.is_empty() && !body.watch.monitor.is_llm() && !body.oversized
    {
        return Err("the stream ended before its first event".to_string());
    }
    Ok(JsResponse {
        response,
        stream: Some(body),
        error_class: None,
    })
}

/// Why a read gave no chunk.
pub(crate) enum ReadFailure {
    /// The caller's signal fired (its AbortError).
    Aborted(JsValue),
    /// The connection failed.
    Broken(String),
    /// No chunk within the idle bound.
    Quiet((TimeoutPhase, u64)),
}

fn idle_timeout((phase, ms): (TimeoutPhase, u64), partial: &str) -> JsValue {
    let error = timeout_error(phase, ms, "The stream went quiet for", "");
    set(&error, "partialText", &partial.into());
    error.into()
}

/// A non-2xx answer (after retries) or a body that is not an event stream: nothing to iterate.
pub(crate) fn not_a_stream(response: &Response) -> JsValue {
    let status = response.status();
    let error = if response.ok() {
        named_error(
            "UpstreamError",
            "NOT_AN_EVENT_STREAM",
            &format!("The upstream answered {status} but not with text/event-stream."),
        )
    } else {
        named_error(
            "UpstreamError",
            "UPSTREAM_STATUS",
            &format!("The upstream answered HTTP {status}; no events to read (error.response has the body)."),
        )
    };
    set(&error, "status", &status.into());
    set(&error, "attempts", &get(response, "attempts"));
    set(&error, "response", response);
    error.into()
}
