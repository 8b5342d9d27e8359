//! `client.events()`: Server-Sent Events over the resilient pipeline, with stream safeguards.
//!
//! A stream attempt succeeds only when its first event arrives: the transport used for streams reads
//! the body until then, so a 503, a reset or silence before the first event is an ordinary failed
//! attempt that the pipeline retries (and `timeout.firstByteMs` means "time to first event"). After the
//! first event the caller has seen data and events are never replayed: a cut becomes an
//! `IncompleteStreamError` carrying the text received so far, a gap longer than `timeout.idleMs` a
//! `TimeoutError`, an in-band error event an `UpstreamError`. Two recoveries hand out nothing twice: a
//! GET stream may reconnect with `Last-Event-ID`, and a cut `chatStream()` is sent again and resumed
//! past the text already delivered when the new answer starts with exactly that text; with
//! `fallback.midStream`, one that cannot be resumed continues on another target (see `mid_stream`,
//! which drives [`crate::core::llm::mid_stream`]). Events cross to
//! JS one batch per network chunk. A line or event past `limits.maxEventBytes`, or generated text
//! past `limits.maxResponseBytes`, fails the stream with `RESPONSE_TOO_LARGE` (final: not retried,
//! reconnected or resumed). Cancelling (`break`, `cancel()`, the caller's signal) cancels the
//! body on the wire (once no identical stream shares it; see [`crate::wasm::tap`]).

use crate::core::error::TimeoutPhase;
use crate::core::llm::Hold;
use crate::core::platform::Platform;
use crate::core::race::{race, Cancel, Either};
use crate::core::resume::Recoveries;
use crate::wasm::abort::until_aborted;
use crate::wasm::answer::{not_a_stream, LiveStream, ReadFailure, StreamStart};
use crate::wasm::chat_request::{parse_chat_request, ChatCall};
use crate::wasm::errors::abort_error;
use crate::wasm::inner::Inner;
use crate::wasm::js::{abort_reason, get, ignore_rejection, promise, set};
use crate::wasm::tap::{Chunk, Cursor};
use js_sys::Promise;
use mid_stream::{Cut, Written};
use open::cancelled;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Response};

/// What `next_batch` does next, decided under the borrow and done after it.
enum Step {
    Read(Cursor),
    /// The body ended (cleanly, or with its failure).
    End(Box<LiveStream>),
}

/// Where a stream is.
enum Phase {
    /// The request is in flight.
    Starting,
    /// Events flow.
    Live(Box<LiveStream>),
    /// Nothing more to read (ended, failed, or cancelled).
    Closed,
}

/// A stream's state, held by its JS face ([`SseStream`]) and by the work in flight.
struct Stream {
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
    /// `cancel()` was called: the opening in flight (the start, a resumption, a continuation) is
    /// dropped at once (see [`SseStream::cancel`]).
    cancelled: Cancel,
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
    Chat(Box<ChatProgress>),
}

/// A chat stream's call, its target and how its `result` promise is settled.
struct ChatProgress {
    call: ChatCall,
    hold: RefCell<Option<Hold>>,
    target: Cell<usize>,
    attempts: Cell<u32>,
    cached: Cell<bool>,
    /// Joined an identical request's stream.
    joined: Cell<bool>,
    /// `result` was resolved or rejected (a listener run while settling may cancel the stream).
    settled: Cell<bool>,
    /// What each upstream answer that ended before the last used, in order: the parts of the
    /// answer earlier targets wrote (a mid-stream fallback) and cut answers resumed or not
    /// continued; all are charged.
    written: RefCell<Vec<Written>>,
    resolve: js_sys::Function,
    reject: js_sys::Function,
}

impl Phase {
    /// The body, when events flow.
    fn live(&self) -> Option<&LiveStream> {
        let Phase::Live(body) = self else { return None };
        Some(body)
    }
}

/// The response a stream opened on (live, replayed from the cache or joined), and how.
struct StreamResponse {
    response: Response,
    attempts: u32,
    /// Answered from the cache.
    cached: bool,
    /// Joined an identical request's stream (no upstream call of its own).
    joined: bool,
}

/// The wasm side of an `EventStream` (the JS wrapper in the package adds async iteration).
#[wasm_bindgen]
pub struct SseStream {
    stream: Rc<Stream>,
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
        let call = parse_chat_request(request, inner.engine.config().retry.as_ref())?;
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
            joined: Cell::new(false),
            settled: Cell::new(false),
            written: RefCell::default(),
            resolve,
            reject,
        };
        Ok((
            SseStream::begin(inner, signal, Purpose::Chat(Box::new(progress))),
            result,
        ))
    }

    fn begin(inner: Rc<Inner>, signal: Option<AbortSignal>, purpose: Purpose) -> SseStream {
        let stream = Rc::new(Stream {
            phase: RefCell::new(Phase::Starting),
            signal,
            idle: Cell::new(None),
            inner,
            purpose,
            recoveries: Cell::default(),
            recording: RefCell::new(None),
            cancelled: Cancel::default(),
        });
        // The request starts now; `started` settles with its response (or its failure).
        let starter = Rc::clone(&stream);
        let started = promise(async move {
            let started = starter.start_or_cancelled().await;
            if let Err(error) = &started {
                starter.fail_chat(error, None);
            }
            started
        });
        // Its failure reaches the caller through iteration (or `result`): a stream never iterated
        // must not leave an unhandled rejection, which ends a Node process.
        ignore_rejection(&started);
        SseStream { stream, started }
    }
}

#[wasm_bindgen]
impl SseStream {
    /// The response (after retries), once its first event arrived or it failed.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<Response>")]
    pub fn response(&self) -> Promise {
        self.started.clone()
    }

    /// The next events (packed as by `SseParserRaw`) or, for a chat stream, the next `ChatDelta`;
    /// `null` at the end; rejects with the stream's error.
    #[wasm_bindgen(js_name = nextBatch, unchecked_return_type = "Promise<string | ChatDelta | null>")]
    pub fn next_batch(&self) -> Promise {
        let (stream, started) = (self.stream.clone(), self.started.clone());
        promise(async move { stream.next_batch(started).await })
    }

    /// Stops the stream and cancels it on the wire: its start in flight (both sides of a hedge), or
    /// its body (unless identical streams still read it).
    /// A chat stream's `result`, if still pending, rejects with an AbortError, the call charged what
    /// its answers generated (see `fail_chat`).
    pub fn cancel(&self) {
        self.stream.cancelled.cancel();
        let phase = self.stream.phase.replace(Phase::Closed);
        // The error only when something is left to reject: the package cancels every stream it
        // iterated to the end, and an Error (its stack) costs ~3% of a whole chatStream() call.
        if self.stream.result_pending() {
            self.stream.fail_chat(&cancelled(), phase.live());
        }
    }
}

mod chat;
mod mid_stream;
mod open;
mod reconnect;

impl Stream {
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

    async fn next_batch(&self, started: Promise) -> Result<JsValue, JsValue> {
        let response: Response = match JsFuture::from(started).await {
            Ok(response) => response.unchecked_into(),
            Err(_) if self.cancelled.is_set() => return Ok(JsValue::NULL),
            Err(error) => return Err(error),
        };
        loop {
            // The caller's signal ends the stream between reads too (a shared body does not error
            // with it, and stored chunks are read without waiting).
            if let Some(error) = self.aborted() {
                if self.is_live() {
                    let phase = self.phase.replace(Phase::Closed);
                    self.fail_chat(&error, phase.live());
                    return Err(error);
                }
            }
            let step = {
                let mut phase = self.phase.borrow_mut();
                let body = match &mut *phase {
                    Phase::Starting => {
                        let error = not_a_stream(&response);
                        drop(phase);
                        self.fail_chat(&error, None);
                        return Err(error);
                    }
                    Phase::Closed => return Ok(JsValue::NULL),
                    Phase::Live(body) => body,
                };
                if let Some(batch) = body.watch.output.take() {
                    return Ok(batch);
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
                    let cut = self.cut_of(&body);
                    self.spent(&body);
                    if !self.recovering(|r| r.after(body.failure())) {
                        drop(body);
                        self.hand_over(cut, error).await?;
                        continue;
                    }
                    self.recover(body, error, cut).await?;
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
    /// resumption too; with none left, the stream is continued on another target if it may
    /// (`cut`), else fails.
    async fn recover(
        &self,
        body: Box<LiveStream>,
        error: JsValue,
        cut: Option<Cut>,
    ) -> Result<(), JsValue> {
        let progress = match &self.purpose {
            Purpose::Events { input, init } => {
                let resumed = self.reconnect(input, init, *body).await?;
                self.go_live(resumed);
                return Ok(());
            }
            Purpose::Chat(progress) => progress,
        };
        let delivered = body.delivered();
        drop(body);
        loop {
            if self.cancelled.is_set() {
                return Ok(());
            }
            if let Some(aborted) = self.aborted() {
                self.fail_chat(&aborted, None);
                return Err(aborted);
            }
            match self.resume(progress, &delivered).await {
                Err(stop) => {
                    self.fail_chat(&stop, None);
                    return Err(stop);
                }
                Ok(true) => return Ok(()),
                Ok(false) => {}
            }
            if !self.recovering(Recoveries::again) {
                return self.hand_over(cut, error).await;
            }
        }
    }

    /// Makes `body` the stream's phase, unless the stream was cancelled meanwhile (then the body is
    /// released at once).
    fn go_live(&self, body: LiveStream) {
        if !self.cancelled.is_set() {
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

    /// Whether a chat stream's `result` is still to be settled.
    fn result_pending(&self) -> bool {
        matches!(&self.purpose, Purpose::Chat(progress) if !progress.settled.get())
    }

    /// Whether events flow.
    fn is_live(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Live(_))
    }

    /// The caller's abort, once its signal fired.
    fn aborted(&self) -> Option<JsValue> {
        Some(abort_error(&abort_reason(self.signal.as_ref()?)?))
    }

    /// Asks the stream's recoveries whether to recover (see [`Recoveries`]).
    fn recovering(&self, decide: impl FnOnce(&mut Recoveries) -> bool) -> bool {
        let mut recoveries = self.recoveries.get();
        let recover = decide(&mut recoveries);
        self.recoveries.set(recoveries);
        recover
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
