//! Reading an upstream body into wasm memory, within a byte bound.
//!
//! The client reads some bodies itself, besides handing them to the caller: an error answer (for its
//! class and message), an answer to cache, a JSON answer's `usage`, a `chat()` answer. Each is read
//! chunk by chunk, its chunks kept in JS and counted, and copied into wasm memory once, at its exact
//! size, when it is complete (or parsed as JSON in JS, never copied): a body past the bound is
//! cancelled unread and costs no wasm memory at all (wasm memory never shrinks, so a buffer grown by
//! doubling would keep its high-water mark).

use crate::core::limits::add_within;
use crate::wasm::js::{get, ignore_rejection};
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader, Response};

/// What to do with a body longer than the bound.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Past {
    /// Give nothing: the body is no use cut (a cache entry, JSON).
    Nothing,
    /// Keep its start (an error message).
    Start,
}

/// `response`'s body, at most `max` bytes (the rest is cancelled); `Ok(None)` when it is longer and
/// `past` is [`Past::Nothing`].
pub async fn read_within(
    response: &Response,
    max: usize,
    past: Past,
) -> Result<Option<Chunks>, JsValue> {
    let Some(body) = response.body() else {
        return Ok(Some(Chunks::default()));
    };
    let reader = reader_of(&body)?;
    let mut chunks = Chunks::default();
    loop {
        let result = JsFuture::from(reader.read()).await?;
        if get(&result, "done").as_bool() == Some(true) {
            return Ok(Some(chunks));
        }
        let chunk = chunk_of(&result)?;
        if chunks.add(&chunk, max) {
            continue;
        }
        ignore_rejection(&reader.cancel());
        return Ok(match past {
            Past::Nothing => None,
            Past::Start => {
                chunks.add(&chunk.subarray(0, (max - chunks.len) as u32), max);
                Some(chunks)
            }
        });
    }
}

/// A body's chunks so far, kept in JS.
#[derive(Default)]
pub struct Chunks {
    list: Array,
    len: usize,
}

impl Chunks {
    /// Adds `chunk` unless the total would pass `max` (then returns false and adds nothing).
    pub fn add(&mut self, chunk: &Uint8Array, max: usize) -> bool {
        let Some(len) = add_within(self.len, chunk.length() as usize, max) else {
            return false;
        };
        self.list.push(chunk);
        self.len = len;
        true
    }

    /// All the bytes, copied into wasm memory at once.
    pub fn copy(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.len];
        let mut at = 0;
        for chunk in self.list.iter() {
            let chunk: Uint8Array = chunk.unchecked_into();
            let end = at + chunk.length() as usize;
            if let Some(into) = bytes.get_mut(at..end) {
                chunk.copy_to(into);
            }
            at = end;
        }
        bytes
    }

    /// The bytes parsed as JSON, in JS.
    pub fn json(&self) -> Result<Promise, JsValue> {
        json_of(&self.list)
    }
}

#[wasm_bindgen(
    inline_js = "export function json_of(chunks) { return new Response(new Blob(chunks)).json(); }"
)]
extern "C" {
    /// A promise of the JSON value of `chunks` (an array of `Uint8Array`s).
    #[wasm_bindgen(catch)]
    fn json_of(chunks: &Array) -> Result<Promise, JsValue>;
}

/// The chunk of a read's result: a `Uint8Array`, else an error (a hostile stream's other values must
/// not reach a copy into wasm memory, where a getter could throw through the wasm).
pub fn chunk_of(result: &JsValue) -> Result<Uint8Array, JsValue> {
    get(result, "value").dyn_into().map_err(|_| {
        js_sys::TypeError::new("the body gave a chunk that is not a Uint8Array").into()
    })
}

/// `body.getReader()`, whose throw (a locked body) becomes an error instead of unwinding the wasm.
pub fn reader_of(body: &ReadableStream) -> Result<ReadableStreamDefaultReader, JsValue> {
    let get_reader: js_sys::Function = get(body, "getReader").dyn_into()?;
    Ok(get_reader.call0(body)?.unchecked_into())
}

/// Bytes decoded as `Response.text()` does: UTF-8, a leading BOM dropped, invalid bytes replaced
/// (valid UTF-8 without a BOM, the usual case, is not copied).
pub fn decode_text(bytes: Vec<u8>) -> String {
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Most bytes of an error answer read for its class and message.
pub const ERROR_BODY_BYTES: usize = 64 * 1024;

/// The start of an error answer's body (at most [`ERROR_BODY_BYTES`]), as text.
pub async fn error_text(response: &Response) -> Result<String, JsValue> {
    let chunks = read_within(response, ERROR_BODY_BYTES, Past::Start).await?;
    Ok(decode_text(chunks.unwrap_or_default().copy()))
}
