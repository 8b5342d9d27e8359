//! Reading an upstream body into wasm memory, within a byte bound.
//!
//! The client reads some bodies itself, besides handing them to the caller: an error answer (for its
//! class and message), an answer to cache, a JSON answer's `usage`. Each is read chunk by chunk, and
//! each chunk's length is checked before the chunk is copied, so an endless body costs no more wasm
//! memory than the bound; the rest is cancelled unread.

use crate::wasm::js::{get, ignore_rejection};
use js_sys::Uint8Array;
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
) -> Result<Option<Vec<u8>>, JsValue> {
    let Some(body) = response.body() else {
        return Ok(Some(Vec::new()));
    };
    let reader = reader_of(&body)?;
    let mut bytes = Vec::new();
    loop {
        let result = JsFuture::from(reader.read()).await?;
        if get(&result, "done").as_bool() == Some(true) {
            return Ok(Some(bytes));
        }
        let chunk: Uint8Array = get(&result, "value").unchecked_into();
        let room = max - bytes.len();
        let len = chunk.length() as usize;
        if len > room {
            ignore_rejection(&reader.cancel());
            if past == Past::Nothing {
                return Ok(None);
            }
        }
        let at = bytes.len();
        bytes.resize(at + len.min(room), 0);
        chunk
            .subarray(0, len.min(room) as u32)
            .copy_to(&mut bytes[at..]);
        if len >= room {
            return Ok(Some(bytes));
        }
    }
}

/// `body.getReader()`, whose throw (a locked body) becomes an error instead of unwinding the wasm.
pub fn reader_of(body: &ReadableStream) -> Result<ReadableStreamDefaultReader, JsValue> {
    let get_reader: js_sys::Function = get(body, "getReader").dyn_into()?;
    Ok(get_reader.call0(body)?.unchecked_into())
}

/// Bytes decoded as `Response.text()` does: UTF-8, a leading BOM dropped, invalid bytes replaced.
pub fn decode_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_prefix('\u{feff}').unwrap_or(&text).to_string()
}

/// Most bytes of an error answer read for its class and message.
pub const ERROR_BODY_BYTES: usize = 64 * 1024;

/// The start of an error answer's body (at most [`ERROR_BODY_BYTES`]), as text.
pub async fn error_text(response: &Response) -> Result<String, JsValue> {
    let bytes = read_within(response, ERROR_BODY_BYTES, Past::Start).await?;
    Ok(decode_text(&bytes.unwrap_or_default()))
}
