//! What a `ChatRequest` may still take as it is read: characters, counted against one bound for
//! the whole request ([`MAX_CHAT_CHARS`]) before each copy into wasm memory, and prompt-cache marks,
//! refused past [`MAX_CACHE_BREAKPOINTS`] naming the one too many. JSON values are taken as
//! `JSON.stringify` writes them and must be objects the core's reader accepts.

use crate::core::json::Json;
use crate::core::llm::request::{CacheMarks as Marks, MAX_CACHE_BREAKPOINTS};
use crate::wasm::reader::{range_error, type_error, unreadable, Reader};
use js_sys::JsString;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Most text in one chat request — messages, tool schemas, images as data URLs, options — in
/// UTF-16 code units (8 Mi, about 2M tokens: past the largest context windows).
pub const MAX_CHAT_CHARS: u32 = 1 << 23;

/// Characters each message, content part and tool call counts on top of its text: the bound on
/// characters is then a bound on how many there are, at most 131,072 (an empty text part is still
/// some 32 bytes of wasm memory, and reading one from JS takes microseconds: one shared array of
/// 10,000 empty parts in each of 10,000 messages took gigabytes, and at 16 a part the refusal still
/// held the event loop for 3 s).
pub const ITEM_CHARS: u32 = 64;

/// What is left of a request's [`MAX_CHAT_CHARS`].
pub(crate) struct Chars(pub(crate) u32);

impl Chars {
    /// One more message, content part or tool call, at `path`: [`ITEM_CHARS`] of what is left.
    pub(crate) fn item(&mut self, path: &str) -> Result<(), JsValue> {
        self.0 = self.0.checked_sub(ITEM_CHARS).ok_or_else(|| {
            let message = format!(
                "{path} is past {MAX_CHAT_CHARS} characters for the whole request (each message, \
                 content part and tool call counts {ITEM_CHARS} on top of its text)"
            );
            JsValue::from(js_sys::RangeError::new(&message))
        })?;
        Ok(())
    }

    /// `value` at `path` copied in if it is a string that fits in what is left.
    pub(crate) fn string(&mut self, value: &JsValue, path: &str) -> Result<String, JsValue> {
        let Some(text) = value.dyn_ref::<JsString>() else {
            return Err(type_error(path, "a string", value));
        };
        self.0 = self.0.checked_sub(text.length()).ok_or_else(|| {
            range_error(
                path,
                &format!("within {MAX_CHAT_CHARS} characters for the whole request"),
                value,
            )
        })?;
        Ok(text.into())
    }

    /// The string field `key` of `r`, required.
    pub(crate) fn field(&mut self, r: &Reader, key: &str) -> Result<String, JsValue> {
        let value = r.raw(key)?.unwrap_or(JsValue::UNDEFINED);
        self.string(&value, &format!("{}.{key}", r.path()))
    }

    /// The object field `key` of `r` as JSON text, when present.
    pub(crate) fn json(&mut self, r: &Reader, key: &str) -> Result<Option<String>, JsValue> {
        let Some(value) = r.raw(key)? else {
            return Ok(None);
        };
        let path = format!("{}.{key}", r.path());
        Reader::root(value.clone(), &path)?
            .ok_or_else(|| type_error(&path, "an object", &value))?;
        let written =
            js_sys::JSON::stringify(&value).map_err(|thrown| unreadable(&path, &thrown))?;
        // A `toJSON` may give back what JSON.stringify writes as nothing (`undefined`).
        if !written.is_string() {
            return Err(type_error(
                &path,
                "an object JSON.stringify can write",
                &value,
            ));
        }
        let text = self.string(&written.into(), &path)?;
        match Json::parse(&text) {
            Some(Json::Object(_)) => Ok(Some(text)),
            _ => Err(range_error(
                &path,
                "a JSON object nested at most 64 deep",
                &value,
            )),
        }
    }
}

/// `r.cache`: `true` is one more of the request's `marks`, refused past
/// [`MAX_CACHE_BREAKPOINTS`].
pub(crate) fn cache_mark(r: &Reader, marks: &mut Marks) -> Result<bool, JsValue> {
    if r.boolean("cache")? != Some(true) {
        return Ok(false);
    }
    marks.add().map_err(|count| -> JsValue {
        let path = r.path();
        let message = format!(
            "{path}.cache is cache mark {count} of the request: at most \
             {MAX_CACHE_BREAKPOINTS} are allowed (Anthropic's limit of cache breakpoints)"
        );
        js_sys::RangeError::new(&message).into()
    })?;
    Ok(true)
}
