//! `SseParser` for JS: bytes in, events out, over the core parser.
//!
//! Crossing the boundary is the expensive part, not parsing: building each `{event, data, id}` object
//! from Rust costs several calls into JS and a text decode per field. So the events a chunk completes
//! cross as one packed string, `event CR data CR id CR` per event (no field can contain a CR: the
//! parser splits lines at CR and LF, and joins data lines with LF only), which the package's JS wrapper
//! splits into plain objects: one crossing and one decode per chunk. The wrapper also feeds a big chunk
//! in slices, so that no more than a slice is copied into wasm memory before the parser's bound is
//! checked.

use crate::core::limits::{DEFAULT_MAX_EVENT_BYTES, MAX_LIMIT_BYTES};
use crate::core::sse::{Packed, SseParser};
use crate::wasm::errors::too_large;
use crate::wasm::reader::Reader;
use wasm_bindgen::prelude::*;

/// The wasm half of the package's `SseParser` (the JS wrapper unpacks the events).
#[wasm_bindgen(js_name = SseParserRaw)]
pub struct SseParserRaw {
    inner: SseParser,
    out: Packed,
}

#[wasm_bindgen(js_class = SseParserRaw)]
impl SseParserRaw {
    /// A parser at the start of a stream; `options.maxEventBytes` bounds a line and an event's data.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<SseParserRaw, JsValue> {
        let mut max = DEFAULT_MAX_EVENT_BYTES;
        if let Some(o) = Reader::root(options, "options")? {
            o.only(&["maxEventBytes"])?;
            if let Some(n) = o.integer("maxEventBytes", 1, MAX_LIMIT_BYTES as u64)? {
                max = n as usize;
            }
        }
        Ok(SseParserRaw {
            inner: SseParser::with_max_event_bytes(max),
            out: Packed::default(),
        })
    }

    /// Feeds a chunk of bytes; returns the events it completed, packed. A line or event's data past
    /// the bound throws `RESPONSE_TOO_LARGE` (the events before it are lost with the throw: the
    /// stream is broken), and so does every feed until `end()`.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<String>, JsValue> {
        let fed = self.inner.feed(chunk, &mut self.out);
        let events = self.out.take();
        fed.map_err(|error| {
            too_large(
                "A line or event of the stream is larger than",
                error.limit,
                "new SseParser({ maxEventBytes })",
            )
        })?;
        Ok(events)
    }

    /// End of stream: an unterminated event is discarded, as the spec says.
    pub fn end(&mut self) -> Option<String> {
        self.inner.end(&mut self.out);
        self.out.take()
    }

    /// The last event ID seen (persists across events).
    #[wasm_bindgen(getter, js_name = lastEventId)]
    pub fn last_event_id(&self) -> String {
        self.inner.last_event_id().to_string()
    }

    /// The last valid `retry:` value in milliseconds.
    #[wasm_bindgen(getter)]
    pub fn retry(&self) -> Option<f64> {
        self.inner.retry().map(|ms| ms as f64)
    }
}
