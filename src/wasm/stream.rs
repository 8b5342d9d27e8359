//! `client.events()`: Server-Sent Events over the resilient pipeline, with stream safeguards.
//!
//! A stream attempt succeeds only when its first event arrives: the transport used for streams reads
//! the body until then, so a 503, a reset or silence before the first event is an ordinary failed
//! attempt that the pipeline retries (and `timeout.firstByteMs` means "time to first event"). After the
//! first event the caller has seen data and the request is never replayed: a cut becomes an
//! `IncompleteStreamError` carrying the text received so far, a gap longer than `timeout.idleMs` a
//! `TimeoutError`, an in-band error event an `UpstreamError`. Events cross to JS one batch per network
//! chunk. Cancelling (`break`, `cancel()`, the caller's signal) cancels the body on the wire.

use crate::core::cache::Freshness;
use crate::core::config::CacheMode;
use crate::core::error::TimeoutPhase;
use crate::core::event::Event;
use crate::core::llm::{estimate_tokens, Completion, Hold, Usage};
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use crate::core::sse::{EventSink, Packed, SseParser};
use crate::core::stream::{Observation, StreamError, StreamMonitor};
use crate::core::text;
use crate::wasm::cache::{response_from, Hit};
use crate::wasm::chat::{
    all_targets_failed, chat_result, parse_chat_request, target_error, upstream_failure, Answered,
    ChatCall, TargetFailure,
};
use crate::wasm::client::{abort_future, Inner};
use crate::wasm::errors::{abort_error, named_error};
use crate::wasm::fetch::{gateway_timeout, response_headers};
use crate::wasm::js::{get, ignore_rejection, promise, set};
use crate::wasm::platform::Answer;
use crate::wasm::request::Prepared;
use js_sys::{Object, Promise, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, ReadableStreamDefaultReader, Response};

/// The body of a live stream: reader, parser, and the watch holding the monitor and the events not
/// yet handed out.
pub struct Body {
    reader: ReadableStreamDefaultReader,
    parser: SseParser,
    watch: Watch,
    ended: bool,
    failed: Option<JsValue>,
    /// The raw bytes so far, for a cacheable stream (stored only if it completes).
    recording: Option<Vec<u8>>,
}

/// The parser's sink for a live stream: each event goes past the monitor, then into the batch for JS
/// (whole events for `events()`, the text deltas for `chatStream()`); after an in-band error nothing
/// more is passed on.
struct Watch {
    monitor: StreamMonitor,
    output: Output,
    error: Option<StreamError>,
}

/// What a stream hands to JS.
enum Output {
    /// Events, packed.
    Events(Packed),
    /// Generated text, concatenated per batch.
    Deltas(String),
}

impl Output {
    fn is_empty(&self) -> bool {
        match self {
            Output::Events(packed) => packed.is_empty(),
            Output::Deltas(text) => text.is_empty(),
        }
    }

    fn take(&mut self) -> Option<String> {
        match self {
            Output::Events(packed) => packed.take(),
            Output::Deltas(text) => (!text.is_empty()).then(|| std::mem::take(text)),
        }
    }
}

impl EventSink for Watch {
    fn event(&mut self, event_type: &str, data: &str, id: &str) {
        if self.error.is_some() {
            return;
        }
        match (self.monitor.observe(event_type, data), &mut self.output) {
            ((_, Observation::Error(error)), _) => self.error = Some(error),
            (_, Output::Events(packed)) => packed.event(event_type, data, id),
            ((Some(delta), _), Output::Deltas(text)) => text.push_str(&delta),
            ((None, _), Output::Deltas(_)) => {}
        }
    }
}

/// What reading one chunk produced.
enum Chunk {
    Bytes(Vec<u8>),
    End,
}

impl Body {
    fn new(reader: ReadableStreamDefaultReader, start: StreamStart) -> Self {
        let StreamStart {
            parser,
            monitor,
            record,
            deltas,
        } = start;
        Body {
            reader,
            parser,
            watch: Watch {
                monitor,
                output: if deltas {
                    Output::Deltas(String::new())
                } else {
                    Output::Events(Packed::default())
                },
                error: None,
            },
            ended: false,
            failed: None,
            recording: record.then(Vec::new),
        }
    }

    /// Parses a chunk. An in-band error or a cut stops the stream after the events before it: they
    /// are still handed out, then the failure is raised.
    fn take(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Bytes(bytes) => {
                self.parser.feed(&bytes, &mut self.watch);
                if let Some(recording) = &mut self.recording {
                    recording.extend_from_slice(&bytes);
                }
            }
            Chunk::End => {
                self.parser.end(&mut self.watch);
                self.ended = true;
            }
        }
        if let Some(error) = self.watch.error.take() {
            let js = named_error(
                "UpstreamError",
                "UPSTREAM_STREAM_ERROR",
                &format!(
                    "The upstream reported an error mid-stream: {} ({})",
                    error.message, error.kind
                ),
            );
            set(&js, "kind", &error.kind.as_str().into());
            set(&js, "partialText", &self.watch.monitor.text().into());
            self.fail(js.into());
        } else if self.ended && !self.watch.monitor.complete() {
            let error = incomplete(
                self.watch.monitor.text(),
                "the stream ended before its end marker",
            );
            self.fail(error);
        }
    }

    /// Ends the stream with `error`, raised once the events before it are handed out.
    fn fail(&mut self, error: JsValue) {
        self.ended = true;
        self.failed.get_or_insert(error);
    }

    /// Cancels the body on the wire.
    pub fn cancel(&self) {
        ignore_rejection(&self.reader.cancel());
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

async fn read_chunk(reader: &ReadableStreamDefaultReader) -> Result<Chunk, String> {
    let result = JsFuture::from(reader.read()).await.map_err(|e| {
        get(&e, "message")
            .as_string()
            .unwrap_or_else(|| "stream read failed".into())
    })?;
    if get(&result, "done").as_bool() == Some(true) {
        return Ok(Chunk::End);
    }
    let value: Uint8Array = get(&result, "value").unchecked_into();
    Ok(Chunk::Bytes(value.to_vec()))
}

/// Where an event stream starts: fresh, or resuming a cut one (its parser keeps the last event ID and
/// the `retry:` delay; its monitor the text so far).
#[derive(Clone, Default)]
pub struct StreamStart {
    parser: SseParser,
    monitor: StreamMonitor,
    /// Keep the raw bytes, to store the stream in the cache once it completes.
    record: bool,
    /// Hand out text deltas (`chatStream()`) rather than events.
    deltas: bool,
}

/// Reads an event-stream response until its first event. A 2xx that is not an event stream, or an
/// error status, is handed back as is. An error before the first event fails the attempt (nothing
/// was delivered, so the pipeline may retry it).
pub async fn prime(response: Response, start: StreamStart) -> Result<Answer, String> {
    let streaming = response.ok()
        && response
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|t| text::contains(&t, "text/event-stream"));
    let Some(stream) = response.body().filter(|_| streaming) else {
        return Ok(Answer {
            response,
            stream: None,
            error_class: None,
        });
    };
    let mut body = Body::new(stream.get_reader().unchecked_into(), start);
    // Dropped before the first event (a deadline, an abort): the body is cancelled with it.
    let mut guard = CancelOnDrop(Some(body.reader.clone()));
    while body.watch.output.is_empty() && !body.ended {
        body.take(read_chunk(&body.reader).await?);
        if let (true, Some(error)) = (body.watch.output.is_empty(), &body.failed) {
            return Err(get(error, "message").as_string().unwrap_or_default());
        }
    }
    if body.ended && body.watch.output.is_empty() && !body.watch.monitor.is_llm() {
        return Err("the stream ended before its first event".to_string());
    }
    guard.0 = None;
    Ok(Answer {
        response,
        stream: Some(body),
        error_class: None,
    })
}

struct CancelOnDrop(Option<ReadableStreamDefaultReader>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(reader) = self.0.take() {
            ignore_rejection(&reader.cancel());
        }
    }
}

/// What `next_batch` does next, decided under the borrow and done after it.
enum Step {
    Read(ReadableStreamDefaultReader),
    Reconnect(Body),
}

/// Where a stream is.
enum Phase {
    /// The request is in flight.
    Starting,
    /// Events flow.
    Live(Body),
    /// Nothing more to read (ended, failed, or cancelled).
    Closed,
}

struct Shared {
    phase: RefCell<Phase>,
    signal: Option<AbortSignal>,
    /// The longest gap between chunks, and the option that set it.
    idle: Option<(u64, TimeoutPhase)>,
    inner: Rc<Inner>,
    /// `events()` or `chatStream()`.
    purpose: Purpose,
    /// Reconnections left (GET streams with `resilience.reconnect`).
    reconnects: Cell<u32>,
    /// Where a completed stream is stored, when it is cacheable.
    recording: RefCell<Option<Recording>>,
}

/// A cacheable stream being recorded: stored once it completes cleanly.
struct Recording {
    url: String,
    key: String,
    status: u16,
    headers: Vec<(String, String)>,
    wait_until: Option<js_sys::Function>,
}

/// What a stream serves.
enum Purpose {
    /// `client.events(input, init)`: what to send (again, on a reconnection).
    Events { input: JsValue, init: JsValue },
    /// `client.chatStream(request)`.
    Chat(ChatProgress),
}

/// A chat stream's call, its target and how its `result` promise is settled.
struct ChatProgress {
    call: ChatCall,
    hold: RefCell<Option<Hold>>,
    target: Cell<usize>,
    attempts: Cell<u32>,
    cached: Cell<bool>,
    resolve: js_sys::Function,
    reject: js_sys::Function,
}

/// A stream opened on a prepared request.
struct Opened {
    response: Response,
    attempts: u32,
    cached: bool,
}

/// Wait before reconnecting when the server sent no `retry:` field.
const DEFAULT_RECONNECT_MS: u64 = 1000;

/// The wasm side of an `EventStream` (the JS wrapper in the package adds async iteration).
#[wasm_bindgen]
pub struct SseStream {
    shared: Rc<Shared>,
    started: Promise,
}

impl SseStream {
    /// Starts the request now; events are pulled with `nextBatch()`.
    pub(crate) fn open(inner: Rc<Inner>, input: JsValue, init: JsValue) -> SseStream {
        let signal = get(&init, "signal").dyn_into::<AbortSignal>().ok();
        SseStream::begin(inner, signal, Purpose::Events { input, init })
    }

    /// A `chatStream()`: text deltas over the fallback chain; `result` settles when it ends.
    pub(crate) fn open_chat(
        inner: Rc<Inner>,
        request: JsValue,
    ) -> Result<(SseStream, Promise), JsValue> {
        let call = parse_chat_request(request)?;
        let hold = inner.reserve_budget(&call)?;
        let signal = call.signal.dyn_ref::<AbortSignal>().cloned();
        let mut settle = None;
        let result = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let Some((resolve, reject)) = settle else {
            return Err(js_sys::Error::new("Promise executor did not run").into());
        };
        let progress = ChatProgress {
            call,
            hold: RefCell::new(hold),
            target: Cell::new(0),
            attempts: Cell::new(0),
            cached: Cell::new(false),
            resolve,
            reject,
        };
        Ok((
            SseStream::begin(inner, signal, Purpose::Chat(progress)),
            result,
        ))
    }

    fn begin(inner: Rc<Inner>, signal: Option<AbortSignal>, purpose: Purpose) -> SseStream {
        let shared = Rc::new(Shared {
            phase: RefCell::new(Phase::Starting),
            signal,
            // A stream always has a bound on its gaps: idleMs, else attemptMs (600 s by default).
            idle: {
                let timeouts = inner.engine.config().timeout;
                match (timeouts.idle_ms, timeouts.attempt_ms) {
                    (Some(ms), _) => Some((ms, TimeoutPhase::Idle)),
                    (None, Some(ms)) => Some((ms, TimeoutPhase::Attempt)),
                    (None, None) => None,
                }
            },
            inner,
            purpose,
            reconnects: Cell::new(0),
            recording: RefCell::new(None),
        });
        // The request starts now; `started` settles with its response (or its failure).
        let starter = Rc::clone(&shared);
        let started = promise(async move {
            let started = starter.start().await;
            if let Err(error) = &started {
                starter.fail_chat(error);
            }
            started
        });
        SseStream { shared, started }
    }
}

#[wasm_bindgen]
impl SseStream {
    /// The response (after retries), once its first event arrived or it failed.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<Response>")]
    pub fn response(&self) -> Promise {
        self.started.clone()
    }

    /// The next events (packed as by `SseParserRaw`), `null` at the end; rejects with the stream's
    /// error.
    #[wasm_bindgen(js_name = nextBatch, unchecked_return_type = "Promise<string | null>")]
    pub fn next_batch(&self) -> Promise {
        let (shared, started) = (self.shared.clone(), self.started.clone());
        promise(async move { shared.next_batch(started).await })
    }

    /// Stops the stream and cancels its body on the wire.
    pub fn cancel(&self) {
        if let Phase::Live(body) = self.shared.phase.replace(Phase::Closed) {
            body.cancel();
        }
    }
}

impl Shared {
    /// Sends the request (or answers it from the cache) and reads up to the first event.
    async fn start(&self) -> Result<JsValue, JsValue> {
        let (input, init) = match &self.purpose {
            Purpose::Chat(progress) => return self.start_chat(progress).await,
            Purpose::Events { input, init } => (input.clone(), init.clone()),
        };
        let prepared = self.inner.prepare(input, init).await?;
        if let Some(max) = prepared.policy.reconnect {
            if prepared.method != "GET" {
                return Err(js_sys::TypeError::new(
                    "resilience.reconnect is for GET streams: a POST is never replayed after its first event",
                )
                .into());
            }
            self.reconnects.set(max);
        }
        let opened = self.open_prepared(prepared, false).await?;
        set(&opened.response, "attempts", &opened.attempts.into());
        Ok(opened.response.into())
    }

    /// Tries the chain's targets in order until one streams its first delta.
    async fn start_chat(&self, progress: &ChatProgress) -> Result<JsValue, JsValue> {
        let inner = &self.inner;
        let mut errors = Vec::new();
        for (hop, target) in inner.chain()?.iter().enumerate() {
            if hop > 0 {
                inner.announce_fallback(hop, &errors);
            }
            let failure = match inner.chat_request(target, &progress.call, true).await {
                Err(failure) => failure,
                Ok(prepared) => match self.open_prepared(prepared, true).await {
                    Err(error) => target_error(target, error),
                    Ok(opened) if opened.response.ok() => {
                        progress.target.set(hop);
                        progress.attempts.set(opened.attempts);
                        progress.cached.set(opened.cached);
                        return Ok(opened.response.into());
                    }
                    Ok(opened) => upstream_failure(target, &opened.response, opened.attempts).await,
                },
            };
            match failure {
                TargetFailure::Stop(error) => return Err(error),
                TargetFailure::Next(error) => errors.push((target.name.clone(), error)),
            }
        }
        Err(all_targets_failed(errors))
    }

    /// Answers from the cache (replaying a recorded stream) or opens the stream upstream, recording
    /// it when cacheable. A live body becomes the stream's phase; a response without one (an error
    /// status) is returned as is.
    async fn open_prepared(&self, mut prepared: Prepared, deltas: bool) -> Result<Opened, JsValue> {
        let inner = &self.inner;
        let mode = prepared.policy.cache;
        let key = prepared.key.clone().filter(|_| mode != CacheMode::Bypass);
        if let (Some(cache), Some(key)) = (&inner.cache, &key) {
            let url = prepared.url.as_str();
            let now = inner.platform.wall_ms();
            match cache.lookup(key, now).await {
                Ok(Some(Hit {
                    entry,
                    freshness: Freshness::Fresh,
                })) => {
                    inner.platform.emit(Event::Cache { url, result: "hit" });
                    let response = response_from(&entry, "HIT", now)?;
                    let start = StreamStart {
                        deltas,
                        ..StreamStart::default()
                    };
                    if let Ok(Answer {
                        stream: Some(body), ..
                    }) = prime(Clone::clone(&response), start).await
                    {
                        *self.phase.borrow_mut() = Phase::Live(body);
                    }
                    return Ok(Opened {
                        response,
                        attempts: 0,
                        cached: true,
                    });
                }
                Ok(_) => {}
                Err(error) => inner.store_error(url, &error),
            }
            inner.platform.emit(Event::Cache {
                url,
                result: "miss",
            });
            if mode == CacheMode::OnlyIfCached {
                return Ok(Opened {
                    response: gateway_timeout()?,
                    attempts: 0,
                    cached: false,
                });
            }
        }
        let url = prepared.url.clone();
        let wait_until = prepared.policy.wait_until.clone();
        prepared.request.stream = Some(StreamStart {
            record: key.is_some() && inner.cache.is_some(),
            deltas,
            ..StreamStart::default()
        });
        let delivered = inner.call(prepared, None).await?;
        let Answer {
            response, stream, ..
        } = delivered.response;
        if let Some(body) = stream {
            if let (Some(key), true) = (key, body.recording.is_some()) {
                *self.recording.borrow_mut() = Some(Recording {
                    url,
                    key,
                    status: response.status(),
                    headers: response_headers(&response),
                    wait_until,
                });
            }
            *self.phase.borrow_mut() = Phase::Live(body);
        }
        Ok(Opened {
            response,
            attempts: delivered.attempts,
            cached: false,
        })
    }

    /// A chat stream that ended cleanly: settle its budget and resolve `result`.
    fn finish_chat(&self, body: &Body) {
        let Purpose::Chat(progress) = &self.purpose else {
            return;
        };
        let inner = &self.inner;
        let Some(target) = inner.options.targets.get(progress.target.get()) else {
            return;
        };
        let monitor = &body.watch.monitor;
        let usage = reported_or_estimated(monitor, &progress.call);
        let micros = inner.settle(progress.hold.take(), &progress.call, target, &usage);
        let answered = Answered {
            completion: Completion {
                text: monitor.text().to_string(),
                finish_reason: monitor.finish_reason().unwrap_or("stop").to_string(),
                usage,
            },
            attempts: progress.attempts.get(),
            cached: progress.cached.get(),
        };
        let _ = progress
            .resolve
            .call1(&JsValue::NULL, &chat_result(target, &answered, micros));
    }

    /// A chat stream that failed: give the budget hold back (or charge what was generated) and
    /// reject `result`.
    fn fail_chat(&self, error: &JsValue) {
        let Purpose::Chat(progress) = &self.purpose else {
            return;
        };
        self.inner.release(progress.hold.take());
        let _ = progress.reject.call1(&JsValue::NULL, error);
    }

    /// Stores a stream that completed cleanly, if it was being recorded.
    fn store_recording(&self, body: &mut Body) {
        let (Some(recording), Some(bytes)) = (self.recording.take(), body.recording.take()) else {
            return;
        };
        let Recording {
            url,
            key,
            status,
            headers,
            wait_until,
        } = recording;
        self.inner.store_later(
            &url,
            &key,
            (status, headers),
            async move { Some(bytes) },
            wait_until.as_ref(),
        );
    }

    async fn next_batch(&self, started: Promise) -> Result<JsValue, JsValue> {
        let response: Response = JsFuture::from(started).await?.unchecked_into();
        loop {
            let step = {
                let mut phase = self.phase.borrow_mut();
                let body = match &mut *phase {
                    Phase::Starting => return Err(not_a_stream(&response)),
                    Phase::Closed => return Ok(JsValue::NULL),
                    Phase::Live(body) => body,
                };
                if let Some(batch) = body.watch.output.take() {
                    return Ok(batch.into());
                }
                if body.ended {
                    body.cancel();
                    let failed = body.failed.take();
                    if failed.is_none() {
                        self.store_recording(body);
                        self.finish_chat(body);
                    }
                    let Phase::Live(body) = std::mem::replace(&mut *phase, Phase::Closed) else {
                        return Ok(JsValue::NULL);
                    };
                    match failed {
                        None => return Ok(JsValue::NULL),
                        Some(error) if self.reconnects.get() == 0 => {
                            self.fail_chat(&error);
                            return Err(error);
                        }
                        Some(_) => Step::Reconnect(body),
                    }
                } else {
                    Step::Read(body.reader.clone())
                }
            };
            match step {
                Step::Reconnect(body) => {
                    self.reconnects.set(self.reconnects.get() - 1);
                    let resumed = self.reconnect(body).await?;
                    *self.phase.borrow_mut() = Phase::Live(resumed);
                }
                Step::Read(reader) => {
                    let chunk = self.read_guarded(&reader).await;
                    let mut phase = self.phase.borrow_mut();
                    let Phase::Live(body) = &mut *phase else {
                        return Ok(JsValue::NULL); // cancelled while reading
                    };
                    match chunk {
                        Ok(chunk) => body.take(chunk),
                        Err(error) => {
                            let error = error(body);
                            body.fail(error);
                        }
                    }
                }
            }
        }
    }

    /// Connects again after a cut, with `Last-Event-ID` and after the server's `retry:` delay; the
    /// new connection is retried like any call until its first event.
    async fn reconnect(&self, old: Body) -> Result<Body, JsValue> {
        let Purpose::Events { input, init } = &self.purpose else {
            return Err(js_sys::Error::new("only event streams reconnect").into());
        };
        let mut parser = old.parser;
        parser.end(&mut Packed::default());
        let delay = parser.retry().unwrap_or(DEFAULT_RECONNECT_MS);
        let wait = self.inner.platform.sleep(delay);
        match &self.signal {
            None => wait.await,
            Some(signal) => {
                let (aborted, unsubscribe) = abort_future(signal);
                let outcome = race(wait, aborted).await;
                unsubscribe();
                if let Either::Right(_) = outcome {
                    return Err(abort_error(&signal.reason()));
                }
            }
        }
        let headers = Headers::new_with_headers(get(init, "headers").unchecked_ref())
            .or_else(|_| Headers::new())?;
        if !parser.last_event_id().is_empty() {
            headers.set("last-event-id", parser.last_event_id())?;
        }
        let init = Object::try_assign(&Object::new(), &Object::from(init.clone()))?;
        set(&init, "headers", &headers);
        let mut prepared = self.inner.prepare(input.clone(), init.into()).await?;
        prepared.request.stream = Some(StreamStart {
            parser,
            monitor: old.watch.monitor,
            record: false,
            deltas: false,
        });
        let answer = self.inner.call(prepared, None).await?.response;
        answer.stream.ok_or_else(|| not_a_stream(&answer.response))
    }

    /// One read, bounded by the idle timeout and the caller's signal. The error is built once the
    /// body's partial text is at hand.
    async fn read_guarded(
        &self,
        reader: &ReadableStreamDefaultReader,
    ) -> Result<Chunk, Box<dyn FnOnce(&Body) -> JsValue>> {
        let read = async {
            match self.idle {
                None => read_chunk(reader).await.map_err(Some),
                Some((ms, _)) => {
                    match race(read_chunk(reader), self.inner.platform.sleep(ms)).await {
                        Either::Left(chunk) => chunk.map_err(Some),
                        Either::Right(()) => Err(None),
                    }
                }
            }
        };
        let outcome = match &self.signal {
            None => read.await,
            Some(signal) => {
                let (aborted, unsubscribe) = abort_future(signal);
                let outcome = race(read, aborted).await;
                unsubscribe();
                match outcome {
                    Either::Left(outcome) => outcome,
                    Either::Right(_) => {
                        let reason = signal.reason();
                        return Err(Box::new(move |_| abort_error(&reason)));
                    }
                }
            }
        };
        // The caller's signal also errors the body itself: a read failing because of it is an abort.
        if let (Err(_), Some(signal)) = (&outcome, &self.signal) {
            if signal.aborted() {
                let reason = signal.reason();
                return Err(Box::new(move |_| abort_error(&reason)));
            }
        }
        let idle = self.idle.unwrap_or((0, TimeoutPhase::Idle));
        outcome.map_err(|failure| -> Box<dyn FnOnce(&Body) -> JsValue> {
            match failure {
                Some(message) => Box::new(move |body: &Body| {
                    incomplete(
                        body.watch.monitor.text(),
                        &format!("the connection failed ({message})"),
                    )
                }),
                None => Box::new(move |body: &Body| idle_timeout(idle, body.watch.monitor.text())),
            }
        })
    }
}

fn idle_timeout((idle_ms, phase): (u64, TimeoutPhase), partial: &str) -> JsValue {
    let error = named_error(
        "TimeoutError",
        "TIMEOUT",
        &format!(
            "The stream went quiet for {idle_ms} ms ({}).",
            phase.option_name()
        ),
    );
    set(&error, "timeoutMs", &(idle_ms as f64).into());
    set(&error, "option", &phase.option_name().into());
    set(&error, "partialText", &partial.into());
    error.into()
}

/// The stream's reported usage; where it reported none, the pre-flight estimate of the input and a
/// chars/4 estimate of the text generated.
fn reported_or_estimated(monitor: &StreamMonitor, call: &ChatCall) -> Usage {
    let usage = monitor.usage();
    if usage.input_tokens + usage.output_tokens > 0 {
        return usage;
    }
    Usage {
        input_tokens: estimate_tokens(&call.messages),
        output_tokens: (monitor.text().chars().count() as u64).div_ceil(4),
    }
}

/// A non-2xx answer (after retries) or a body that is not an event stream: nothing to iterate.
fn not_a_stream(response: &Response) -> JsValue {
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
