//! Reading JS option objects field by field, with errors that name the field path
//! (`TypeError: retry.maxRetries must be a number, got "3"`).
//!
//! Only own properties are read (a value set on `Object.prototype` elsewhere is no option), through
//! accessors that catch: a getter or Proxy trap that throws becomes a `TypeError` naming the field
//! (the thrown value is its `cause`). Strings and arrays are measured before they are copied into
//! wasm memory, which never shrinks.

use crate::core::text;
use crate::wasm::js::{get, is_array, own, own_item};
use js_sys::{JsString, RangeError, Reflect, TypeError};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A JS object being read, and where it sits in the options.
pub struct Reader {
    value: JsValue,
    path: String,
}

/// A field that may be `false` (turned off), absent, or an object.
pub enum Toggle {
    /// `undefined`: use the defaults.
    Default,
    /// `false`: turned off.
    Off,
    /// An object of settings.
    On(Reader),
}

/// A TypeError naming `path`.
pub fn type_error(path: &str, expected: &str, got: &JsValue) -> JsValue {
    TypeError::new(&format!("{path} must be {expected}, got {}", describe(got))).into()
}

/// A RangeError naming `path`.
pub fn range_error(path: &str, expected: &str, got: &JsValue) -> JsValue {
    RangeError::new(&format!("{path} must be {expected}, got {}", describe(got))).into()
}

/// The TypeError for a value at `path` whose getter or Proxy trap threw `thrown` (its `cause`).
pub fn unreadable(path: &str, thrown: &JsValue) -> JsValue {
    let message = short_string(&get(thrown, "message"), 200).unwrap_or_default();
    let error = TypeError::new(&format!("{path} could not be read ({message})"));
    crate::wasm::js::set(&error, "cause", thrown);
    error.into()
}

/// Longest string an option may hold, in UTF-16 code units (a header value, a key, a name).
pub const MAX_STRING: u32 = 1 << 16;

/// `value` copied into wasm if it is a string of at most `max` UTF-16 code units (measured first).
pub fn short_string(value: &JsValue, max: u32) -> Option<String> {
    let text = value.dyn_ref::<JsString>()?;
    (text.length() <= max).then(|| text.into())
}

/// What was given, in a few words: a primitive as written, anything else by its kind (never by
/// walking it: a hostile or self-referencing object must not make the error message expensive).
fn describe(value: &JsValue) -> String {
    if let Some(s) = value.dyn_ref::<JsString>() {
        let shown = String::from(s.slice(0, 40));
        let more = if s.length() > 40 { "..." } else { "" };
        return format!("the string \"{shown}{more}\"");
    }
    if let Some(number) = value.as_f64() {
        // As JS writes it: NaN, Infinity, 1e+300.
        let text = js_sys::Number::from(number).to_string_with_radix(10);
        return text.map(String::from).unwrap_or_default();
    }
    let kind = if let Some(flag) = value.as_bool() {
        if flag {
            "true"
        } else {
            "false"
        }
    } else if value.is_null() {
        "null"
    } else if value.is_undefined() {
        "undefined"
    } else if is_array(value).unwrap_or(false) {
        "an array"
    } else if value.is_function() {
        "a function"
    } else if value.is_symbol() {
        "a symbol"
    } else if value.is_bigint() {
        "a bigint"
    } else {
        "an object"
    };
    kind.to_string()
}

/// `value` at `path` as an array of at most `max` items, copied item by item (own elements only:
/// a hole is `undefined`). Its length is checked before anything is allocated.
pub fn array(value: &JsValue, path: &str, max: u32) -> Result<Vec<JsValue>, JsValue> {
    if !is_array(value).map_err(|thrown| unreadable(path, &thrown))? {
        return Err(type_error(path, "an array", value));
    }
    let length = own(value, "length").map_err(|thrown| unreadable(path, &thrown))?;
    let Some(n) = length.as_f64().filter(|n| *n <= f64::from(max)) else {
        return Err(range_error(
            path,
            &format!("an array of at most {max} items"),
            &length,
        ));
    };
    (0..n as u32)
        .map(|i| own_item(value, i).map_err(|thrown| unreadable(&format!("{path}[{i}]"), &thrown)))
        .collect()
}

impl Reader {
    /// Reads `value` (which may be `undefined`) as the object at `path`.
    pub fn root(value: JsValue, path: &str) -> Result<Option<Reader>, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let array = is_array(&value).map_err(|thrown| unreadable(path, &thrown))?;
        if !value.is_object() || value.is_function() || array {
            return Err(type_error(path, "an object", &value));
        }
        Ok(Some(Reader {
            value,
            path: path.to_string(),
        }))
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value of the own property `key`, `None` when undefined or inherited.
    pub fn raw(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        let value =
            own(&self.value, key).map_err(|thrown| unreadable(&self.field_path(key), &thrown))?;
        Ok((!value.is_undefined()).then_some(value))
    }

    /// The array at `key`, of at most `max` items (see [`array`]).
    pub fn list(&self, key: &str, max: u32) -> Result<Option<Vec<JsValue>>, JsValue> {
        let Some(value) = self.raw(key)? else {
            return Ok(None);
        };
        array(&value, &self.field_path(key), max).map(Some)
    }

    /// The object itself.
    pub fn value(&self) -> &JsValue {
        &self.value
    }

    /// Rejects keys not in `known`, so a typo (`retries` for `retry`) is an error, not a silent default.
    pub fn only(&self, known: &[&str]) -> Result<(), JsValue> {
        for key in self.own_keys()? {
            if key.is_symbol() {
                continue;
            }
            let name = short_string(&key, 64).unwrap_or_else(|| "(a long key)".to_string());
            if !known.contains(&name.as_str()) {
                return Err(TypeError::new(&format!(
                    "unknown option {}; expected one of: {}",
                    self.field_path(&name),
                    text::join(known, ", ")
                ))
                .into());
            }
        }
        Ok(())
    }

    /// The object's own keys (strings and symbols), read through a catching accessor.
    fn own_keys(&self) -> Result<Vec<JsValue>, JsValue> {
        let keys =
            Reflect::own_keys(&self.value).map_err(|thrown| unreadable(&self.path, &thrown))?;
        // `Reflect.ownKeys` returns a genuine array of strings and symbols, safe to index.
        Ok(keys.iter().collect())
    }

    /// A nested object.
    pub fn object(&self, key: &str) -> Result<Option<Reader>, JsValue> {
        let value = self.raw(key)?.unwrap_or(JsValue::UNDEFINED);
        Reader::root(value, &self.field_path(key))
    }

    /// `false`, absent, or a nested object.
    pub fn toggle(&self, key: &str) -> Result<Toggle, JsValue> {
        let value = self.raw(key)?.unwrap_or(JsValue::UNDEFINED);
        if value.as_bool() == Some(false) {
            return Ok(Toggle::Off);
        }
        if value.as_bool() == Some(true) {
            return Ok(Toggle::Default);
        }
        let path = self.field_path(key);
        match Reader::root(value.clone(), &path) {
            Ok(Some(reader)) => Ok(Toggle::On(reader)),
            Ok(None) => Ok(Toggle::Default),
            Err(_) => Err(type_error(&path, "false or an object", &value)),
        }
    }

    /// A number in `[min, max]`.
    pub fn number(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, JsValue> {
        let Some(value) = self.raw(key)? else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Some(n) = value.as_f64() else {
            return Err(type_error(&path, "a number", &value));
        };
        if n.is_nan() || n < min || n > max {
            // Bounds are whole numbers: formatting them as integers keeps float printing out of the wasm.
            let expected = if max.is_infinite() || max >= MAX_MILLIS {
                format!("a number >= {}", min as i64)
            } else {
                format!("a number from {} to {}", min as i64, max as i64)
            };
            return Err(range_error(&path, &expected, &value));
        }
        Ok(Some(n))
    }

    /// A whole number in `[min, max]`.
    pub fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, JsValue> {
        let Some(n) = self.number(key, min as f64, max as f64)? else {
            return Ok(None);
        };
        if n.fract() != 0.0 {
            return Err(range_error(
                &self.field_path(key),
                "a whole number",
                &JsValue::from_f64(n),
            ));
        }
        Ok(Some(n as u64))
    }

    /// A non-negative, finite duration in milliseconds (fractions are truncated).
    pub fn millis(&self, key: &str) -> Result<Option<u64>, JsValue> {
        Ok(self.number(key, 0.0, MAX_MILLIS)?.map(|n| n as u64))
    }

    /// A boolean.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, JsValue> {
        let Some(value) = self.raw(key)? else {
            return Ok(None);
        };
        value
            .as_bool()
            .map(Some)
            .ok_or_else(|| type_error(&self.field_path(key), "a boolean", &value))
    }

    /// A string of at most [`MAX_STRING`] UTF-16 code units.
    pub fn string(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.string_within(key, MAX_STRING)
    }

    /// A string of at most `max` UTF-16 code units (measured before it is copied).
    pub fn string_within(&self, key: &str, max: u32) -> Result<Option<String>, JsValue> {
        let Some(value) = self.raw(key)? else {
            return Ok(None);
        };
        let path = self.field_path(key);
        match value.dyn_ref::<JsString>() {
            None => Err(type_error(&path, "a string", &value)),
            Some(text) if text.length() > max => Err(range_error(
                &path,
                &format!("a string of at most {max} characters"),
                &value,
            )),
            Some(text) => Ok(Some(text.into())),
        }
    }

    /// A string sent as an HTTP header value: visible ASCII, spaces and tabs only.
    pub fn header_value(&self, key: &str) -> Result<Option<String>, JsValue> {
        let safe = |text: &str| {
            text.bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        };
        match self.string(key)? {
            Some(text) if !safe(&text) => Err(type_error(
                &self.field_path(key),
                "a string of visible ASCII characters (it is sent as a header)",
                &text.into(),
            )),
            value => Ok(value),
        }
    }

    /// One of the listed strings.
    pub fn choice<'a>(&self, key: &str, choices: &[&'a str]) -> Result<Option<&'a str>, JsValue> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        match choices.iter().find(|c| **c == value) {
            Some(choice) => Ok(Some(choice)),
            None => Err(range_error(
                &self.field_path(key),
                &format!("one of \"{}\"", text::join(choices, "\", \"")),
                &JsValue::from_str(&value),
            )),
        }
    }

    /// An array of whole numbers in `[min, max]`.
    pub fn integers(&self, key: &str, min: u64, max: u64) -> Result<Option<Vec<u64>>, JsValue> {
        let Some(items) = self.list(key, 1000)? else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let Some(n) = item.as_f64() else {
                return Err(type_error(&item_path, "a number", &item));
            };
            if n.fract() != 0.0 || n < min as f64 || n > max as f64 {
                return Err(range_error(
                    &item_path,
                    &format!("a whole number from {min} to {max}"),
                    &item,
                ));
            }
            out.push(n as u64);
        }
        Ok(Some(out))
    }

    /// A plain object of string values (headers).
    pub fn string_map(&self, key: &str) -> Result<Option<Vec<(String, String)>>, JsValue> {
        let Some(reader) = self.object(key)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut size = 0;
        for name in reader.own_keys()? {
            let Some(name) = short_string(&name, MAX_STRING) else {
                continue;
            };
            if let Some(text) = reader.string(&name)? {
                size += name.len() + text.len();
                if size > MAX_STRING as usize {
                    return Err(range_error(
                        reader.path(),
                        &format!("at most {MAX_STRING} bytes of names and values in all"),
                        &JsValue::from_f64(size as f64),
                    ));
                }
                out.push((name, text));
            }
        }
        Ok(Some(out))
    }

    /// The path of this object, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Largest duration accepted: 2^53 ms, beyond which a JS number loses whole milliseconds.
pub const MAX_MILLIS: f64 = 9_007_199_254_740_991.0;
