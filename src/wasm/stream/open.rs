//! Opening a stream: from the cache (a recorded stream replayed, or a stale one standing in for a
//! failed upstream), by joining an identical stream in flight, or upstream through the pipeline.

use super::{Opened, Recording, Stream};
use crate::core::cache::Freshness;
use crate::core::config::CacheMode;
use crate::core::dedupe::Role;
use crate::core::event::Event;
use crate::core::platform::Platform;
use crate::wasm::abort::{is_aborted, until_aborted};
use crate::wasm::answer::{prime, Answer, LiveStream, StreamStart};
use crate::wasm::cache::{response_from, Hit};
use crate::wasm::fan_out;
use crate::wasm::fetch::{gateway_timeout, response_headers};
use crate::wasm::request::Prepared;
use crate::wasm::tap::Opening;
use wasm_bindgen::prelude::*;
use web_sys::{Response, ResponseInit};

impl Stream {
    /// Answers from the cache (replaying a recorded stream) or opens the stream upstream, recording
    /// it when cacheable. A live body becomes the stream's phase; a response without one (an error
    /// status) is returned as is.
    pub(super) async fn open_prepared(
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
                    joined: false,
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
                self.join_or_open(prepared, start, key).await
            }
        };
        // Failed before its first event, nothing was handed out: the stale recording, if any,
        // stands in for the whole stream, as for `fetch()`.
        if let Some((entry, url, start)) = stale {
            let upstream = opened.as_ref().map(|opened| &opened.response);
            let aborted = is_aborted(self.signal.as_ref());
            if let Some(response) = inner.stale_answer(&url, Some(&entry), upstream, aborted)? {
                return self.replay(response, start).await;
            }
        }
        opened
    }

    /// Replays a stored stream `response` (a cache hit, or a stale copy) from `start`.
    pub(super) async fn replay(
        &self,
        response: Response,
        start: StreamStart,
    ) -> Result<Opened, JsValue> {
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
            joined: false,
        })
    }

    /// A request identical streams may share: joins the one live or opening, else opens it for all.
    pub(super) async fn join_or_open(
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
                self.go_live(LiveStream::new(cursor, start));
                return Ok(Opened {
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
