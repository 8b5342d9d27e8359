//! Opening a stream: from the cache (a recorded stream replayed, or a stale one standing in for a
//! failed upstream), by joining an identical stream in flight, or upstream through the pipeline.

use super::{Recording, Stream, StreamResponse};
use crate::core::cache::{cache_first, CacheFirst};
use crate::core::config::CacheMode;
use crate::core::dedupe::Role;
use crate::core::platform::Platform;
use crate::core::race::unless_cancelled;
use crate::wasm::abort::{is_aborted, until_aborted};
use crate::wasm::answer::{prime, JsResponse, LiveStream, StreamStart};
use crate::wasm::cache::response_from;
use crate::wasm::errors::named_error;
use crate::wasm::fan_out;
use crate::wasm::fetch::{gateway_timeout, response_headers, upstream_failed};
use crate::wasm::request::Prepared;
use crate::wasm::tap::Opening;
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

    /// A request identical streams may share: joins the one live or opening, else opens it for all.
    pub(super) async fn join_or_open(
        &self,
        prepared: Prepared,
        start: StreamStart,
        key: &str,
    ) -> Result<StreamResponse, JsValue> {
        let streams = &self.inner.streams;
        loop {
            if let Some((cursor, response)) = streams.join(key) {
                self.inner.engine.count_deduplicated();
                let head = ResponseInit::new();
                head.set_status(response.status());
                head.set_headers(&response.headers());
                self.go_live(LiveStream::new(cursor, start));
                return Ok(StreamResponse {
                    response: Response::new_with_opt_str_and_init(None, &head)?,
                    attempts: 0,
                    cached: false,
                    joined: true,
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
                        let mut openings = Vec::with_capacity(copies);
                        match &opened {
                            Ok(opened) if !self.is_live() => {
                                fan_out::copies(&opened.response, copies, &mut |response| {
                                    openings.push(Opening::NoStream(response))
                                })
                            }
                            _ => {
                                for _ in 0..copies {
                                    openings.push(match &opened {
                                        Err(error) => Opening::Failed(error.clone()),
                                        Ok(_) => Opening::Live,
                                    });
                                }
                            }
                        }
                        openings
                    });
                    return opened;
                }
                Role::Follower(follower) => {
                    match until_aborted(self.signal.as_ref(), follower.outcome()).await? {
                        None | Some(Opening::Live) => {}
                        Some(Opening::Failed(error)) => return Err(error),
                        Some(Opening::NoStream(response)) => {
                            self.inner.engine.count_deduplicated();
                            return Ok(StreamResponse {
                                response,
                                attempts: 0,
                                cached: false,
                                joined: true,
                            });
                        }
                    }
                }
            }
        }
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
        let url = prepared.url.clone();
        let wait_until = prepared.policy.wait_until.clone();
        let shareable = prepared.method != "GET";
        prepared.request.stream = Some(start);
        let delivered = inner.call(prepared, None).await?;
        let JsResponse {
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
        Ok(StreamResponse {
            response,
            attempts: delivered.attempts,
            cached: false,
            joined: false,
        })
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
