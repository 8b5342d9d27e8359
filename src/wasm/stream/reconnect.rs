//! Reconnecting a cut GET event stream (`resilience.reconnect`): after the server's `retry:` delay,
//! with `Last-Event-ID`, the parser and monitor carried over so that no event is handed out twice.

use super::Stream;
use crate::core::platform::Platform;
use crate::core::sse::Packed;
use crate::wasm::abort::until_aborted;
use crate::wasm::answer::{not_a_stream, LiveStream, StreamStart};
use crate::wasm::js::{get, set};
use js_sys::Object;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Headers;

/// Wait before reconnecting when the server sent no `retry:` field.
const DEFAULT_RECONNECT_MS: u64 = 1000;

impl Stream {
    /// Connects again after a cut, with `Last-Event-ID` and after the server's `retry:` delay; the
    /// new connection is retried like any call until its first event.
    pub(super) async fn reconnect(
        &self,
        input: &JsValue,
        init: &JsValue,
        mut old: LiveStream,
    ) -> Result<LiveStream, JsValue> {
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
}
