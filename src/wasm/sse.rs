//! `SseParser` for JS: bytes in, events out, over the core parser.
//!
//! Crossing the boundary is the expensive part, not parsing: building each `{event, data, id}` object
//! from Rust costs several calls into JS and a text decode per field. So the events a chunk completes
//! cross as one packed string, `event CR data CR id CR` per event (no field can contain a CR: the
//! parser splits lines at CR and LF, and joins data lines with LF only), which the package's JS wrapper
//! splits into plain objects: one crossing and one decode per chunk.

use crate::core::sse::{Packed, SseParser};
use wasm_bindgen::prelude::*;

/// The wasm half of the package's `SseParser` (the JS wrapper unpacks the events).
#[wasm_bindgen(js_name = SseParserRaw)]
pub struct SseParserRaw {
    inner: SseParser,
    out: Packed,
}

#[wasm_bindgen(js_class = SseParserRaw)]
impl SseParserRaw {
    /// A parser at the start of a stream.
    #[wasm_bindgen(constructor)]
    pub fn new() -> SseParserRaw {
        SseParserRaw {
            inner: SseParser::new(),
            out: Packed::default(),
        }
    }

    /// Feeds a chunk of bytes; returns the events it completed, packed.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<String> {
        self.inner.feed(chunk, &mut self.out);
        self.out.take()
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

impl Default for SseParserRaw {
    fn default() -> Self {
        SseParserRaw::new()
    }
}
