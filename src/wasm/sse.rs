//! `SseParser` for JS: bytes in, events out, over the core parser.

use crate::core::sse::{SseEvent, SseParser as CoreParser};
use crate::wasm::js::ObjectBuilder;
use js_sys::Array;
use wasm_bindgen::prelude::*;

/// An exact, incremental WHATWG event-stream parser.
#[wasm_bindgen]
pub struct SseParser {
    inner: CoreParser,
    out: Vec<SseEvent>,
}

#[wasm_bindgen]
impl SseParser {
    /// A parser at the start of a stream.
    #[wasm_bindgen(constructor)]
    pub fn new() -> SseParser {
        SseParser {
            inner: CoreParser::new(),
            out: Vec::new(),
        }
    }

    /// Feeds a chunk of bytes; returns the events it completed. Chunk boundaries may fall anywhere.
    #[wasm_bindgen(unchecked_return_type = "SseEvent[]")]
    pub fn feed(&mut self, chunk: &[u8]) -> Array {
        self.inner.feed(chunk, &mut self.out);
        self.drain()
    }

    /// End of stream: an unterminated event is discarded, as the spec says.
    #[wasm_bindgen(unchecked_return_type = "SseEvent[]")]
    pub fn end(&mut self) -> Array {
        self.inner.end(&mut self.out);
        self.drain()
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

    fn drain(&mut self) -> Array {
        events_to_js(&mut self.out)
    }
}

/// Moves parsed events into one JS array of `{ event, data, id }` objects.
pub fn events_to_js(events: &mut Vec<SseEvent>) -> Array {
    let array = Array::new_with_length(events.len() as u32);
    for (i, event) in events.drain(..).enumerate() {
        let object = ObjectBuilder::new()
            .str("event", &event.event)
            .str("data", &event.data)
            .str("id", &event.id)
            .build();
        array.set(i as u32, object);
    }
    array
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

#[wasm_bindgen(typescript_custom_section)]
const SSE_TYPES: &'static str = r#"
export interface SseEvent { event: string; data: string; id: string }
"#;
