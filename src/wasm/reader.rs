//! Reading JS option objects field by field, with errors that name the field path
//! (`TypeError: retry.maxRetries must be a number, got "3"`).

use crate::core::text;
use js_sys::{RangeError, Reflect, TypeError};
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

/// What was given, in a few words: a primitive as written, anything else by its kind (never by
/// walking it: a hostile or self-referencing object must not make the error message expensive).
fn describe(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        let shown: String = s.chars().take(40).collect();
        let more = if shown.len() < s.len() { "..." } else { "" };
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
    } else if js_sys::Array::is_array(value) {
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

impl Reader {
    /// Reads `value` (which may be `undefined`) as the object at `path`.
    pub fn root(value: JsValue, path: &str) -> Result<Option<Reader>, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        if !value.is_object() || value.is_function() || js_sys::Array::is_array(&value) {
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

    /// The raw value of `key`, `None` when undefined. A throwing getter's error is passed on.
    pub fn raw(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        let value = Reflect::get(&self.value, &JsValue::from_str(key))?;
        Ok((!value.is_undefined()).then_some(value))
    }

    /// The object itself.
    pub fn value(&self) -> &JsValue {
        &self.value
    }

    /// Rejects keys not in `known`, so a typo (`retries` for `retry`) is an error, not a silent default.
    pub fn only(&self, known: &[&str]) -> Result<(), JsValue> {
        for key in Reflect::own_keys(&self.value)?.iter() {
            let Some(name) = key.as_string() else {
                continue;
            };
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

    /// A string.
    pub fn string(&self, key: &str) -> Result<Option<String>, JsValue> {
        let Some(value) = self.raw(key)? else {
            return Ok(None);
        };
        value
            .as_string()
            .map(Some)
            .ok_or_else(|| type_error(&self.field_path(key), "a string", &value))
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
        let Some(value) = self.raw(key)? else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Some(array) = value.dyn_ref::<js_sys::Array>() else {
            return Err(type_error(&path, "an array of numbers", &value));
        };
        let mut out = Vec::with_capacity(array.length() as usize);
        for (i, item) in array.iter().enumerate() {
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
        for name in Reflect::own_keys(&reader.value)?.iter() {
            let Some(name) = name.as_string() else {
                continue;
            };
            if let Some(text) = reader.string(&name)? {
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
