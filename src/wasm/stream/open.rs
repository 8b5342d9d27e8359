//! Opening a stream: from the cache (a recorded stream replayed, or a stale one standing in for a
//! failed upstream), by joining an identical stream in flight, or upstream through the pipeline.

use super::{Recording, Stream, StreamResponse};
use crate::core::cache::{cache_first, CacheFirst};
use crate::core::config::CacheMode;
use crate::core::dedupe::{Share, Work};
use crate::core::platform::Platform;
use crate::core::race::unless_cancelled;
use crate::wasm::abort::{is_aborted, until_aborted};
use crate::wasm::answer::{prime, JsResponse, LiveStream, StreamStart};
use crate::wasm::cache::response_from;
use crate::wasm::errors::named_error;
use crate::wasm::fan_out;
use crate::wasm::fetch::{gateway_timeout, response_headers, upstream_failed};
use crate::wasm::inner::Inner;
use crate::wasm::request::Prepared;
use crate::wasm::tap::{Cursor, Opening};
use js_sys::Function;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{Response, ResponseInit};

impl Stream {
    /// [`Stream::start`], unless `cancel()` comes first: then the attempts in flight (both sides
    /// of a hedge) are dropped, which cancels them on the wire and gives their holds back, and
    /// counts them neither failed nor succeeded, as a hedge's loser.
    pub(super) async fn start_or_cancelled(&self) -> Result<JsValue, JsValue> {
        let superseding = self.inner.engine.superseding();
        let started = unless_cancelled(self.start(), &self.cancelled, superseding).await;
        started.unwrap_or_else(|| Err(cancelled()))
    }

    /// Answers from the cache (replaying a recorded stream) or opens the stream upstream, recording
    /// it when cacheable. A live body becomes the stream's phase; a response without one (an error
    /// status) is returned as is.
    pub(super) async fn open_prepared(
        &self,
        prepared: Prepared,
        mut start: StreamStart,
    ) -> Result<StreamResponse, JsValue> {
        let inner = &self.inner;
        self.idle.set(prepared.timeout.idle_bound());
        start = start.bounded(inner.options.limits.overridden_by(&prepared.policy.limits));
        let mode = prepared.policy.cache;
        let key = prepared.key.clone().filter(|_| mode != CacheMode::Bypass);
        let (Some(cache), Some(cache_key)) = (&inner.cache, &key) else {
            return self.open_live(prepared, start, key).await;
        };
        let now = inner.platform.wall_ms();
        let found = inner.look_up(cache, &prepared, cache_key, now).await?;
        let found = found.map(|hit| (hit.entry, hit.freshness));
        let url = prepared.url.clone();
        let upstream = match cache_first(&inner.platform, &url, mode, found) {
            CacheFirst::Hit(entry) => {
                return self.replay(response_from(&entry, "HIT", now)?, start).await
            }
            CacheFirst::Unsatisfiable => {
                return Ok(StreamResponse {
                    response: gateway_timeout()?,
                    attempts: 0,
                    cached: false,
                    joined: false,
                })
            }
            CacheFirst::Upstream(upstream) => upstream,
        };
        // A stream that failed before its first event has handed nothing out: a stale recording
        // stands in for the whole of it, as for `fetch()`.
        let replay_from = upstream.has_stale().then(|| start.clone());
        let opened = self.open_live(prepared, start, key).await;
        let outcome = opened.as_ref().map(|opened| &opened.response);
        let failed = upstream_failed(outcome, is_aborted(self.signal.as_ref()));
        match (
            upstream.stale_if_error(&inner.platform, &url, failed),
            replay_from,
        ) {
            (Some(entry), Some(start)) => {
                let stale = response_from(&entry, "STALE", inner.platform.wall_ms())?;
                self.replay(stale, start).await
            }
            _ => opened,
        }
    }

    /// Opens the stream live: joins an identical one in flight, or opens it upstream.
    async fn open_live(
        &self,
        mut prepared: Prepared,
        mut start: StreamStart,
        key: Option<String>,
    ) -> Result<StreamResponse, JsValue> {
        let inner = &self.inner;
        // Identical deterministic requests with a body (an LLM prompt) share one stream (unless
        // `dedupe` is off), replayed from its start for those who join late. Not GETs: a late
        // subscriber to a live feed wants what comes next, not what came before.
        let joinable = key
            .as_ref()
            .filter(|_| prepared.method != "GET" && inner.options.dedupe);
        start.retain = joinable.is_some() || (key.is_some() && inner.cache.is_some());
        match joinable {
            None => self.open_upstream(prepared, start, key.as_deref()).await,
            Some(key) => {
                // The stream's reads watch the caller's signal themselves: the body must outlive
                // one caller's abort.
                prepared.request.signal = None;
                self.join_or_open(prepared, start, key).await
            }
        }
    }

    /// Replays a stored stream `response` (a cache hit, or a stale copy) from `start`.
    pub(super) async fn replay(
        &self,
        response: Response,
        start: StreamStart,
    ) -> Result<StreamResponse, JsValue> {
        if let Ok(JsResponse {
            stream: Some(body), ..
        }) = prime(Clone::clone(&response), start).await
        {
            self.go_live(body);
        }
        Ok(StreamResponse {
            response,
            attempts: 0,
            cached: true,
            joined: false,
        })
    }

    /// A request identical streams may share: joins the one live or opening, else opens it for
    /// all. The opening belongs to its flight ([`crate::core::dedupe`]): it goes on while any
    /// request waiting for it still wants it, so the one that started it may leave (its caller's
    /// abort, a hedge that streamed first) without cutting the others' stream.
    pub(super) async fn join_or_open(
        &self,
        prepared: Prepared,
        start: StreamStart,
        key: &str,
    ) -> Result<StreamResponse, JsValue> {
        let inner = &self.inner;
        let record = (prepared.url.clone(), prepared.policy.wait_until.clone());
        let mut prepared = Some(prepared);
        loop {
            if let Some((cursor, response)) = inner.streams.join(key) {
                return self.join(cursor, &response, start);
            }
            let mut seat = inner.streams.opening.join(key, || {
                let work = open_shared(inner, prepared.take(), start.clone(), key);
                let share = |opening: &Opening<LiveStream>, n| copies(opening, n);
                (Box::pin(work) as Work<_>, Box::new(share) as Share<_>)
            });
            // Its caller's abort takes this request out of the flight; the opening goes on for
            // the others.
            let outcome = until_aborted(self.signal.as_ref(), seat.outcome()).await?;
            let joined = !seat.owns();
            match outcome {
                None => {}
                Some(Opening::Failed(error)) => return Err(error),
                Some(Opening::NoStream(response, attempts)) => {
                    if joined {
                        inner.engine.count_deduplicated();
                    }
                    return Ok(StreamResponse {
                        response,
                        attempts,
                        cached: false,
                        joined,
                    });
                }
                Some(Opening::Joined(cursor, response)) => {
                    return self.join(cursor, &response, start)
                }
                Some(Opening::Opened(body, response, attempts)) => {
                    // This request owns the stream (it pays for it): it started it, or saw it
                    // open after the one that started it left; then it reads it from its first
                    // chunk with its own start.
                    let tap = body.cursor.tap().clone();
                    let body = match seat.joined().then(|| tap.join()).flatten() {
                        Some(cursor) => LiveStream::new(cursor, start),
                        None => *body,
                    };
                    let record = (key, record);
                    return Ok(self.adopt(response, Some(body), attempts, Some(record)));
                }
            }
        }
    }

    /// Reads an identical request's live stream with `cursor` (its response's head `response`).
    fn join(
        &self,
        cursor: Cursor,
        response: &Response,
        start: StreamStart,
    ) -> Result<StreamResponse, JsValue> {
        self.inner.engine.count_deduplicated();
        let head = ResponseInit::new();
        head.set_status(response.status());
        head.set_headers(&response.headers());
        self.go_live(LiveStream::new(cursor, start));
        Ok(StreamResponse {
            response: Response::new_with_opt_str_and_init(None, &head)?,
            attempts: 0,
            cached: false,
            joined: true,
        })
    }

    /// Sends the request through the pipeline; a live body becomes the stream's phase (recorded for
    /// the cache, and offered to identical requests, under `key`).
    pub(super) async fn open_upstream(
        &self,
        mut prepared: Prepared,
        start: StreamStart,
        key: Option<&str>,
    ) -> Result<StreamResponse, JsValue> {
        let inner = &self.inner;
        let record = (prepared.url.clone(), prepared.policy.wait_until.clone());
        let shareable = prepared.method != "GET";
        prepared.request.stream = Some(start);
        let delivered = inner.call(prepared, None).await?;
        let JsResponse {
            response, stream, ..
        } = delivered.response;
        if let (Some(body), Some(key)) = (&stream, key.filter(|_| shareable)) {
            inner.streams.offer(key, body.cursor.tap(), &response);
        }
        let record = key.map(|key| (key, record));
        Ok(self.adopt(response, stream, delivered.attempts, record))
    }

    /// Takes an opened stream `response` on: its live `body` becomes the stream's phase (recorded
    /// for the cache when the client has one, under `record`'s key, with the request's URL and
    /// `waitUntil`).
    fn adopt(
        &self,
        response: Response,
        body: Option<LiveStream>,
        attempts: u32,
        record: Option<Record>,
    ) -> StreamResponse {
        if let Some(body) = body {
            if let (Some((key, (url, wait_until))), true) = (record, self.inner.cache.is_some()) {
                *self.recording.borrow_mut() = Some(Recording {
                    url,
                    key: key.to_string(),
                    status: response.status(),
                    headers: response_headers(&response),
                    wait_until,
                });
            }
            self.go_live(body);
        }
        StreamResponse {
            response,
            attempts,
            cached: false,
            joined: false,
        }
    }

    /// Stores a stream that completed cleanly, if it was being recorded.
    pub(super) fn store_recording(&self, body: &mut LiveStream) {
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
}

/// What a stream's `result` (and `response`) rejects with once it was cancelled.
pub(super) fn cancelled() -> JsValue {
    named_error(
        "AbortError",
        "CANCELLED",
        "The stream was cancelled before it ended.",
    )
    .into()
}

/// What a stream's recording is stored under: its key, and the request's URL and `waitUntil`.
type Record<'k> = (&'k str, (String, Option<Function>));

/// Opens a stream request upstream for every identical request that joins it ([`Opening`]): on
/// its own (no caller's signal: each request's abort takes only itself out), offered to identical
/// requests under `key` once live. `None`: the request was already sent (its flight gave no copy
/// to the request that started it), which is a failure.
fn open_shared(
    inner: &Rc<Inner>,
    prepared: Option<Prepared>,
    start: StreamStart,
    key: &str,
) -> impl Future<Output = Opening<LiveStream>> + 'static {
    let (inner, key) = (inner.clone(), key.to_string());
    async move {
        let Some(mut prepared) = prepared else {
            return Opening::Failed(not_shared());
        };
        prepared.signal = None;
        prepared.request.stream = Some(start);
        match inner.call(prepared, None).await {
            Err(error) => Opening::Failed(error),
            Ok(delivered) => match delivered.response {
                JsResponse {
                    response,
                    stream: Some(body),
                    ..
                } => {
                    inner.streams.offer(&key, body.cursor.tap(), &response);
                    Opening::Opened(Box::new(body), response, delivered.attempts)
                }
                JsResponse { response, .. } => Opening::NoStream(response, delivered.attempts),
            },
        }
    }
}

/// `n` copies of `opening` for the requests that joined it: readers on its live body from its
/// first chunk, or copies of its response; fewer when they cannot be made.
fn copies(opening: &Opening<LiveStream>, n: usize) -> Vec<Opening<LiveStream>> {
    let mut copies = Vec::with_capacity(n);
    match opening {
        Opening::Opened(body, response, _) => copies.extend((0..n).map_while(|_| {
            let reader = body.cursor.tap().join()?;
            Some(Opening::Joined(reader, Clone::clone(response)))
        })),
        // Never an opening's own outcome: only a copy of one.
        Opening::Joined(..) => {}
        Opening::NoStream(response, _) => fan_out::copies(response, n, &mut |response| {
            copies.push(Opening::NoStream(response, 0))
        }),
        Opening::Failed(error) => copies.extend((0..n).map(|_| Opening::Failed(error.clone()))),
    }
    copies
}

/// The failure of a request asked to open a stream again after its own opening was shared (its
/// request is spent): a flight hands its own outcome to the request that started it, so this
/// does not happen; it fails rather than panics.
fn not_shared() -> JsValue {
    named_error(
        "UpstreamError",
        "NOT_SHARED",
        "The identical stream this request joined could not be shared.",
    )
    .into()
}
