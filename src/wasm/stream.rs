//! `client.events()`: Server-Sent Events over the resilient pipeline, with stream safeguards.
//!
//! A stream attempt succeeds only when its first event arrives: the transport used for streams reads
//! the body until then, so a 503, a reset or silence before the first event is an ordinary failed
//! attempt that the pipeline retries (and `timeout.firstByteMs` means "time to first event"). After the
//! first event the caller has seen data and events are never replayed: a cut becomes an
//! `IncompleteStreamError` carrying the text received so far, a gap longer than `timeout.idleMs` a
//! `TimeoutError`, an in-band error event an `UpstreamError`. Two recoveries hand out nothing twice: a
//! GET stream may reconnect with `Last-Event-ID`, and a cut `chatStream()` is sent again and resumed
//! past the text already delivered when the new answer starts with exactly that text. Events cross to
//! JS one batch per network chunk. A line or event past `limits.maxEventBytes`, or generated text
//! past `limits.maxResponseBytes`, fails the stream with `RESPONSE_TOO_LARGE` (final: not retried,
//! reconnected or resumed). Cancelling (`break`, `cancel()`, the caller's signal) cancels the
//! body on the wire (once no identical stream shares it; see [`crate::wasm::tap`]).

use crate::core::cache::Freshness;
use crate::core::config::CacheMode;
use crate::core::dedupe::Role;
use crate::core::error::TimeoutPhase;
use crate::core::event::{Event, RetryReason};
use crate::core::llm::charge::reported_or_estimated;
use crate::core::llm::{Completion, Hold};
use crate::core::platform::Platform;
use crate::core::race::{race, Either};
use crate::core::resume::Recoveries;
use crate::core::sse::Packed;
use crate::wasm::abort::until_aborted;
use crate::wasm::answer::{chat_start, prime, Answer, Body, ReadFailure, StreamStart};
use crate::wasm::cache::{response_from, Hit};
use crate::wasm::chat_request::{parse_chat_request, ChatCall};
use crate::wasm::chat_result::{
    chat_result, target_error, upstream_failure, Answered, TargetFailure,
};
use crate::wasm::errors::{abort_error, named_error};
use crate::wasm::fan_out;
use crate::wasm::fetch::{gateway_timeout, response_headers};
use crate::wasm::inner::Inner;
use crate::wasm::js::{abort_reason, get, ignore_rejection, promise, set};
use crate::wasm::request::Prepared;
use crate::wasm::tap::{Chunk, Cursor, Opening};
use js_sys::{Object, Promise};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Response, ResponseInit};

/// What `next_batch` does next, decided under the borrow and done after it.
enum Step {
    Read(Cursor),
    /// The body ended (cleanly, or with its failure).
    End(Box<Body>),
}

/// Where a stream is.
enum Phase {
    /// The request is in flight.
    Starting,
    /// Events flow.
    Live(Box<Body>),
    /// Nothing more to read (ended, failed, or cancelled).
    Closed,
}

struct Shared {
    phase: RefCell<Phase>,
    signal: Option<AbortSignal>,
    /// The longest gap between chunks and the option that set it: the request's merged timeouts'
    /// idle bound, set when it is prepared (the same on a reconnection, a resumption or the next
    /// target: they run on the same `resilience`).
    idle: Cell<Option<(TimeoutPhase, u64)>>,
    inner: Rc<Inner>,
    /// `events()` or `chatStream()`.
    purpose: Purpose,
    /// Recoveries left after a failure: reconnections (GET event streams with
    /// `resilience.reconnect`) or resumptions (chat streams cut after their first delta).
    recoveries: Cell<Recoveries>,
    /// Where a completed stream is stored, when it is cacheable.
    recording: RefCell<Option<Recording>>,
    /// `cancel()` was called (a resumption in flight then stops where it lands).
    cancelled: Cell<bool>,
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
    /// Joined an identical request's stream.
    shared: Cell<bool>,
    /// `result` was resolved or rejected (a listener run while settling may cancel the stream).
    settled: Cell<bool>,
    resolve: js_sys::Function,
    reject: js_sys::Function,
}

/// A stream opened on a prepared request.
struct Opened {
    response: Response,
    attempts: u32,
    /// Answered from the cache.
    cached: bool,
    /// Joined an identical request's stream (no upstream call of its own).
    shared: bool,
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
            shared: Cell::new(false),
            settled: Cell::new(false),
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
            idle: Cell::new(None),
            inner,
            purpose,
            recoveries: Cell::default(),
            recording: RefCell::new(None),
            cancelled: Cell::new(false),
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
        // Its failure reaches the caller through iteration (or `result`): a stream never iterated
        // must not leave an unhandled rejection, which ends a Node process.
        ignore_rejection(&started);
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

    /// Stops the stream and cancels its body on the wire (unless identical streams still read it).
    /// A chat stream's `result`, if still pending, rejects with an AbortError and its budget hold is
    /// given back.
    pub fn cancel(&self) {
        self.shared.cancelled.set(true);
        self.shared.phase.replace(Phase::Closed);
        self.shared.fail_chat(&named_error(
            "AbortError",
            "CANCELLED",
            "The stream was cancelled before it ended.",
        ));
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
            self.recoveries.set(Recoveries::reconnects(max));
        }
        let opened = self.open_prepared(prepared, StreamStart::default()).await?;
        set(&opened.response, "attempts", &opened.attempts.into());
        Ok(opened.response.into())
    }

    /// Tries the chain's targets in order until one streams its first delta.
    async fn start_chat(&self, progress: &ChatProgress) -> Result<JsValue, JsValue> {
        let inner = &self.inner;
        let client_retry = inner.engine.config().retry.as_ref();
        inner
            .along_chain(|index, target| async move {
                let prepared = inner.chat_request(target, &progress.call, true).await?;
                // Resumptions follow the request's own `resilience.retry`, else the client's.
                let resumes = match prepared.retry(client_retry) {
                    Some(retry) if retry.resume_streams => retry.max_retries,
                    _ => 0,
                };
                self.recoveries.set(Recoveries::resumes(resumes));
                let opened = self.open_prepared(prepared, chat_start()).await;
                let failure = match (opened, self.oversized_before_output()) {
                    (Err(error), _) => target_error(target, error),
                    // Past a bound before its first delta: nothing was delivered, so the next
                    // target may answer instead, as for a chat() answer too large.
                    (Ok(_), Some(error)) => TargetFailure::unavailable(error),
                    (Ok(opened), None) if opened.response.ok() && !self.is_live() => {
                        TargetFailure::unavailable(not_a_stream(&opened.response))
                    }
                    (Ok(opened), None) if opened.response.ok() => {
                        progress.target.set(index);
                        progress.attempts.set(opened.attempts);
                        progress.cached.set(opened.cached);
                        progress.shared.set(opened.shared);
                        return Ok(opened.response.into());
                    }
                    (Ok(opened), None) => {
                        upstream_failure(target, &opened.response, opened.attempts).await
                    }
                };
                Err(failure)
            })
            .await
    }

    /// Answers from the cache (replaying a recorded stream) or opens the stream upstream, recording
    /// it when cacheable. A live body becomes the stream's phase; a response without one (an error
    /// status) is returned as is.
    async fn open_prepared(
        &self,
        mut prepared: Prepared,
        mut start: StreamStart,
    ) -> Result<Opened, JsValue> {
        let inner = &self.inner;
        self.idle.set(prepared.timeout.idle_bound());
        start = start.bounded(inner.options.limits.overridden_by(&prepared.policy.limits));
        let mode = prepared.policy.cache;
        let key = prepared.key.clone().filter(|_| mode != CacheMode::Bypass);
        let mut stale = None;
        if let (Some(cache), Some(key)) = (&inner.cache, &key) {
            let url = prepared.url.as_str();
            let now = inner.platform.wall_ms();
            match inner.look_up(cache, &prepared, key, now).await? {
                Some(Hit {
                    entry,
                    freshness: Freshness::Fresh,
                }) => {
                    inner.platform.emit(Event::Cache { url, result: "hit" });
                    return self.replay(response_from(&entry, "HIT", now)?, start).await;
                }
                Some(hit) => stale = Some((hit.entry, url.to_string(), start.clone())),
                None => {}
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
                    shared: false,
                });
            }
        }
        // Identical deterministic requests with a body (an LLM prompt) share one stream (unless
        // `dedupe` is off), replayed from its start for those who join late. Not GETs: a late
        // subscriber to a live feed wants what comes next, not what came before.
        let shared = key
            .as_ref()
            .filter(|_| prepared.method != "GET" && inner.options.dedupe);
        start.retain = shared.is_some() || (key.is_some() && inner.cache.is_some());
        let opened = match shared {
            None => self.open_upstream(prepared, start, key.as_deref()).await,
            Some(key) => {
                // The stream's reads watch the caller's signal themselves: the body must outlive
                // one caller's abort.
                prepared.request.signal = None;
                self.open_shared(prepared, start, key).await
            }
        };
        // Failed before its first event, nothing was handed out: the stale recording, if any,
        // stands in for the whole stream, as for `fetch()`.
        if let Some((entry, url, start)) = stale {
            let upstream = opened.as_ref().map(|opened| &opened.response);
            if let Some(response) = inner.stale_answer(&url, Some(&entry), upstream)? {
                return self.replay(response, start).await;
            }
        }
        opened
    }

    /// Replays a stored stream `response` (a cache hit, or a stale copy) from `start`.
    async fn replay(&self, response: Response, start: StreamStart) -> Result<Opened, JsValue> {
        if let Ok(Answer {
            stream: Some(body), ..
        }) = prime(Clone::clone(&response), start).await
        {
            self.go_live(body);
        }
        Ok(Opened {
            response,
            attempts: 0,
            cached: true,
            shared: false,
        })
    }

    /// A request identical streams may share: joins the one live or opening, else opens it for all.
    async fn open_shared(
        &self,
        prepared: Prepared,
        start: StreamStart,
        key: &str,
    ) -> Result<Opened, JsValue> {
        let streams = &self.inner.streams;
        loop {
            if let Some((cursor, response)) = streams.join(key) {
                self.inner.engine.count_deduplicated();
                let head = ResponseInit::new();
                head.set_status(response.status());
                head.set_headers(&response.headers());
                self.go_live(Body::new(cursor, start));
                return Ok(Opened {
                    response: Response::new_with_opt_str_and_init(None, &head)?,
                    attempts: 0,
                    cached: false,
                    shared: true,
                });
            }
            match streams.opening.join(key) {
                Role::Leader(leader) => {
                    let opened = self.open_upstream(prepared, start, Some(key)).await;
                    if opened.is_err() && self.aborted().is_some() {
                        // Its own caller's abort: the others open the stream without it.
                        drop(leader);
                        return opened;
                    }
                    leader.complete(|copies| {
                        let mut shared = Vec::with_capacity(copies);
                        match &opened {
                            Ok(opened) if !self.is_live() => {
                                fan_out::copies(&opened.response, copies, &mut |response| {
                                    shared.push(Opening::Answered(response))
                                })
                            }
                            _ => {
                                for _ in 0..copies {
                                    shared.push(match &opened {
                                        Err(error) => Opening::Failed(error.clone()),
                                        Ok(_) => Opening::Live,
                                    });
                                }
                            }
                        }
                        shared
                    });
                    return opened;
                }
                Role::Follower(follower) => {
                    match until_aborted(self.signal.as_ref(), follower.outcome()).await? {
                        None | Some(Opening::Live) => {}
                        Some(Opening::Failed(error)) => return Err(error),
                        Some(Opening::Answered(response)) => {
                            self.inner.engine.count_deduplicated();
                            return Ok(Opened {
                                response,
                                attempts: 0,
                                cached: false,
                                shared: true,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Sends the request through the pipeline; a live body becomes the stream's phase (recorded for
    /// the cache, and offered to identical requests, under `key`).
    async fn open_upstream(
        &self,
        mut prepared: Prepared,
        start: StreamStart,
        key: Option<&str>,
    ) -> Result<Opened, JsValue> {
        let inner = &self.inner;
        let url = prepared.url.clone();
        let wait_until = prepared.policy.wait_until.clone();
        let shareable = prepared.method != "GET";
        prepared.request.stream = Some(start);
        let delivered = inner.call(prepared, None).await?;
        let Answer {
            response, stream, ..
        } = delivered.response;
        if let Some(body) = stream {
            if let Some(key) = key {
                if shareable {
                    inner.streams.offer(key, body.cursor.tap(), &response);
                }
                if inner.cache.is_some() {
                    *self.recording.borrow_mut() = Some(Recording {
                        url,
                        key: key.to_string(),
                        status: response.status(),
                        headers: response_headers(&response),
                        wait_until,
                    });
                }
            }
            self.go_live(body);
        }
        Ok(Opened {
            response,
            attempts: delivered.attempts,
            cached: false,
            shared: false,
        })
    }

    /// A chat stream that ended cleanly: settle its budget and resolve `result`.
    fn finish_chat(&self, body: &Body) {
        let Purpose::Chat(progress) = &self.purpose else {
            return;
        };
        if progress.settled.replace(true) {
            return;
        }
        let inner = &self.inner;
        let Some(target) = inner.options.targets.get(progress.target.get()) else {
            return;
        };
        let monitor = &body.watch.monitor;
        let usage = reported_or_estimated(monitor.usage(), &progress.call.messages, monitor.text());
        let micros = inner.settle(
            progress.hold.take(),
            &progress.call,
            target,
            (&usage, progress.cached.get() || progress.shared.get()),
        );
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
        if progress.settled.replace(true) {
            return;
        }
        self.inner.release(progress.hold.take());
        let _ = progress.reject.call1(&JsValue::NULL, error);
    }

    /// Stores a stream that completed cleanly, if it was being recorded.
    fn store_recording(&self, body: &mut Body) {
        let (Some(recording), Some(bytes)) = (self.recording.take(), body.cursor.tap().recorded())
        else {
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
            // The caller's signal ends the stream between reads too (a shared body does not error
            // with it, and stored chunks are read without waiting).
            if let Some(error) = self.aborted() {
                if self.is_live() {
                    self.phase.replace(Phase::Closed);
                    self.fail_chat(&error);
                    return Err(error);
                }
            }
            let step = {
                let mut phase = self.phase.borrow_mut();
                let body = match &mut *phase {
                    Phase::Starting => {
                        let error = not_a_stream(&response);
                        drop(phase);
                        self.fail_chat(&error);
                        return Err(error);
                    }
                    Phase::Closed => return Ok(JsValue::NULL),
                    Phase::Live(body) => body,
                };
                if let Some(batch) = body.watch.output.take() {
                    return Ok(batch.into());
                }
                if body.ended {
                    match std::mem::replace(&mut *phase, Phase::Closed) {
                        Phase::Live(body) => Step::End(body),
                        _ => return Ok(JsValue::NULL),
                    }
                } else {
                    Step::Read(body.cursor.clone())
                }
            };
            // No borrow of the phase is held from here on: settling runs listeners, which may
            // call back into this stream.
            match step {
                Step::End(mut body) => {
                    let error = match body.failed.take() {
                        None => {
                            self.store_recording(&mut body);
                            self.finish_chat(&body);
                            return Ok(JsValue::NULL);
                        }
                        Some(error) => error,
                    };
                    if !self.recovering(|r| r.after(body.failure())) {
                        self.fail_chat(&error);
                        return Err(error);
                    }
                    self.recover(body, error).await?;
                }
                Step::Read(cursor) => {
                    let chunk = self.read_guarded(&cursor).await;
                    let mut phase = self.phase.borrow_mut();
                    let Phase::Live(body) = &mut *phase else {
                        return Ok(JsValue::NULL); // cancelled while reading
                    };
                    match chunk {
                        Ok(chunk) => body.take(chunk),
                        Err(failure) => body.fail_read(failure),
                    }
                }
            }
        }
    }

    /// Reconnects an event stream or resumes a chat stream after `body` failed with `error`; the
    /// new body becomes the stream's phase. A resumption that could not even open uses up a
    /// resumption too.
    async fn recover(&self, body: Box<Body>, error: JsValue) -> Result<(), JsValue> {
        let progress = match &self.purpose {
            Purpose::Events { input, init } => {
                let resumed = self.reconnect(input, init, *body).await?;
                self.go_live(resumed);
                return Ok(());
            }
            Purpose::Chat(progress) => progress,
        };
        let delivered = body.partial_text().to_string();
        drop(body);
        loop {
            if self.cancelled.get() {
                return Ok(());
            }
            if let Some(aborted) = self.aborted() {
                self.fail_chat(&aborted);
                return Err(aborted);
            }
            match self.resume(progress, &delivered).await {
                Err(stop) => {
                    self.fail_chat(&stop);
                    return Err(stop);
                }
                Ok(true) => return Ok(()),
                Ok(false) => {}
            }
            if !self.recovering(Recoveries::again) {
                self.fail_chat(&error);
                return Err(error);
            }
        }
    }

    /// Makes `body` the stream's phase, unless the stream was cancelled meanwhile (then the body is
    /// released at once).
    fn go_live(&self, body: Body) {
        if !self.cancelled.get() {
            *self.phase.borrow_mut() = Phase::Live(Box::new(body));
        }
    }

    /// The error of a live stream that passed a bound before handing anything out; the stream is
    /// back to starting (its body released, with no borrow held).
    fn oversized_before_output(&self) -> Option<JsValue> {
        let mut phase = self.phase.borrow_mut();
        let Phase::Live(body) = &mut *phase else {
            return None;
        };
        if !body.oversized || !body.watch.output.is_empty() {
            return None;
        }
        let error = body.failed.take();
        let body = std::mem::replace(&mut *phase, Phase::Starting);
        drop(phase);
        drop(body);
        error
    }

    /// Whether events flow.
    fn is_live(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Live(_))
    }

    /// The caller's abort, once its signal fired.
    fn aborted(&self) -> Option<JsValue> {
        Some(abort_error(&abort_reason(self.signal.as_ref()?)?))
    }

    /// Connects again after a cut, with `Last-Event-ID` and after the server's `retry:` delay; the
    /// new connection is retried like any call until its first event.
    async fn reconnect(
        &self,
        input: &JsValue,
        init: &JsValue,
        mut old: Body,
    ) -> Result<Body, JsValue> {
        let mut parser = std::mem::take(&mut old.parser);
        parser.end(&mut Packed::default());
        let delay = parser.retry().unwrap_or(DEFAULT_RECONNECT_MS);
        until_aborted(self.signal.as_ref(), self.inner.platform.sleep(delay)).await?;
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
            monitor: std::mem::take(&mut old.watch.monitor),
            limits: old.limits,
            ..StreamStart::default()
        });
        let answer = self.inner.call(prepared, None).await?.response;
        answer.stream.ok_or_else(|| not_a_stream(&answer.response))
    }

    /// Asks the stream's recoveries whether to recover (see [`Recoveries`]).
    fn recovering(&self, decide: impl FnOnce(&mut Recoveries) -> bool) -> bool {
        let mut recoveries = self.recoveries.get();
        let recover = decide(&mut recoveries);
        self.recoveries.set(recoveries);
        recover
    }

    /// Sends a cut chat stream's request to the same target again. The new stream hands out only
    /// what follows the text already `delivered`, and fails if the new answer does not start with
    /// exactly that text. `Ok(false)` when no new stream could be opened; an error that ends the
    /// call (an abort, a budget) is passed on.
    async fn resume(&self, progress: &ChatProgress, delivered: &str) -> Result<bool, JsValue> {
        let inner = &self.inner;
        let Some(target) = inner.options.targets.get(progress.target.get()) else {
            return Ok(false);
        };
        if self.cancelled.get() {
            return Ok(false);
        }
        let prepared = match inner.chat_request(target, &progress.call, true).await {
            Ok(prepared) => prepared,
            Err(failure) if failure.outcome.falls_back() => return Ok(false),
            Err(failure) => return Err(failure.error),
        };
        inner.platform.emit(Event::Retry {
            url: &prepared.url,
            attempt: progress.attempts.get() + 1,
            delay_ms: 0,
            reason: RetryReason::StreamCut,
            from_server: false,
        });
        let start = StreamStart {
            delivered: delivered.to_string(),
            ..chat_start()
        };
        match self.open_prepared(prepared, start).await {
            Ok(opened) if self.is_live() => {
                progress
                    .attempts
                    .set(progress.attempts.get() + opened.attempts);
                // Free only if no part of the answer made an upstream call of its own.
                progress.cached.set(progress.cached.get() && opened.cached);
                progress.shared.set(progress.shared.get() && opened.shared);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(error) => match target_error(target, error) {
                failure if failure.outcome.falls_back() => Ok(false),
                failure => Err(failure.error),
            },
        }
    }

    /// One read, bounded by the idle timeout and the caller's signal.
    async fn read_guarded(&self, cursor: &Cursor) -> Result<Chunk, ReadFailure> {
        let read = async {
            match self.idle.get() {
                None => cursor.next().await.map_err(ReadFailure::Broken),
                Some(idle) => match race(cursor.next(), self.inner.platform.sleep(idle.1)).await {
                    Either::Left(chunk) => chunk.map_err(ReadFailure::Broken),
                    Either::Right(()) => Err(ReadFailure::Quiet(idle)),
                },
            }
        };
        let outcome = until_aborted(self.signal.as_ref(), read)
            .await
            .map_err(ReadFailure::Aborted)?;
        // The caller's signal may also error the body itself: a read failing because of it is an
        // abort.
        match (outcome, self.aborted()) {
            (Err(_), Some(abort)) => Err(ReadFailure::Aborted(abort)),
            (outcome, _) => outcome,
        }
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
