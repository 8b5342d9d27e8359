//! Turning `fetch(input, init)` arguments into a request that can be sent again on every retry.
//!
//! fetch accepts a URL string, a `URL` or a `Request`, and a `RequestInit` whose body may be a one-shot
//! `ReadableStream`. Retries need a body that can be sent twice, so a stream (or a `Request`'s body) is
//! read into an `ArrayBuffer` once, up front; strings, buffers, `Blob`s and `FormData` are reusable as
//! they are and pass through untouched.

use crate::core::cache::{cache_key, request_cacheable, Body, KeyParts};
use crate::core::config::{CacheMode, Timeouts};
use crate::core::retry::RetryConfig;
use crate::core::text;
use crate::wasm::cache::key_headers;
use crate::wasm::js::{get, own, set};
use crate::wasm::platform::JsRequest;
use crate::wasm::reader::{range_error, short_string, type_error, unreadable};
use crate::wasm::request_policy::{parse_request_policy, RequestPolicy};
use js_sys::{JsString, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Request, Response, Url};

/// A call's request and everything the pipeline needs to know about it.
pub struct Prepared {
    /// What each attempt sends.
    pub request: JsRequest,
    /// The absolute URL.
    pub url: String,
    /// `scheme://host:port`.
    pub origin: String,
    /// The upper-cased method.
    pub method: String,
    /// The caller's abort signal.
    pub signal: Option<AbortSignal>,
    /// `init.resilience`.
    pub policy: RequestPolicy,
    /// The call's deadlines: the client's with `resilience.timeout` over them, merged here once.
    /// Every bound on the call (attempt, total, first byte, idle gap) is read from this.
    pub timeout: Timeouts,
    /// Rough token estimate of the body (bytes / 4), for tokens-per-minute limits.
    pub tokens: u64,
    /// When the call was made (platform ms): its total deadline counts from here, so a cache lookup
    /// is part of it.
    pub started_ms: u64,
    /// The cache key of a cacheable request (a hash of method, URL, headers, canonical body and
    /// namespace): its cache entry, and the identity under which identical calls in flight share
    /// one upstream call. `None` for requests that must not be shared or cached.
    pub key: Option<String>,
    /// Learn the provider's rate limits from the answers (a chat target's, unless it opted out;
    /// plain `fetch` calls learn nothing, see [`learned_limit`](crate::core::learned_limit)).
    pub learn_limits: bool,
}

impl Prepared {
    /// The retry settings this request runs with: its own `resilience.retry`, else the client's.
    pub fn retry<'a>(&'a self, client: Option<&'a RetryConfig>) -> Option<&'a RetryConfig> {
        match &self.policy.retry {
            Some(own) => own.as_ref(),
            None => client,
        }
    }
}

#[wasm_bindgen]
extern "C" {
    /// The members of a fetch `init` (or of a caller's `Request`) read here. Getters name the member
    /// in the JS glue, where `Reflect.get` would pass its name across the boundary on every call;
    /// they catch, as a caller's getter or Proxy trap may throw.
    type InitFields;
    #[wasm_bindgen(method, getter, catch)]
    fn url(this: &InitFields) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn method(this: &InitFields) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn headers(this: &InitFields) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn body(this: &InitFields) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn signal(this: &InitFields) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen(module = "/src/wasm/request.js")]
extern "C" {
    /// `new URL(input, base ?? location.href).href` (see request.js).
    #[wasm_bindgen(js_name = resolveUrl, catch)]
    fn resolve_url_js(input: &JsValue, base: Option<&str>) -> Result<JsValue, JsValue>;
}

/// Client-wide request settings.
pub struct RequestDefaults<'a> {
    /// Prefix for relative URLs.
    pub base_url: Option<&'a str>,
    /// Headers added when the request does not set them.
    pub headers: &'a [(String, String)],
    /// The client's retry config, base for per-request overrides.
    pub retry: Option<&'a RetryConfig>,
    /// The client's deadlines, base for per-request overrides.
    pub timeout: Timeouts,
    /// Whether cacheable requests need their key (for dedupe or the cache).
    pub keyed: bool,
    /// The cache namespace, part of every key.
    pub namespace: &'a str,
    /// Whether a tokens-per-minute limit needs the body's token estimate.
    pub count_tokens: bool,
    /// Now (platform ms).
    pub now_ms: u64,
}

/// Normalises `input` and `init`.
///
/// The hot path is lean on purpose: the caller's `init` is copied once and passed on as it is (fetch
/// ignores the extra `resilience` member); headers are rebuilt only when something must be merged into
/// them, and a body is only read into wasm memory when a shared-call key needs it.
///
/// # Errors
/// A `TypeError` for an input that is not a string, URL or Request, an invalid URL, a non-object init,
/// or a bad `resilience` field.
pub async fn prepare(
    input: JsValue,
    init: JsValue,
    defaults: &RequestDefaults<'_>,
    parsed: Option<RequestPolicy>,
) -> Result<Prepared, JsValue> {
    if !(init.is_undefined() || init.is_null() || init.is_object()) {
        return Err(type_error("init", "an object", &init));
    }
    let init = if init.is_object() {
        init
    } else {
        Object::new().into()
    };
    let fields: &InitFields = init.unchecked_ref();
    let read = |field: &str, value: Result<JsValue, JsValue>| {
        value.map_err(|thrown| unreadable(&format!("init.{field}"), &thrown))
    };
    let policy = match parsed {
        Some(policy) => policy,
        None => {
            // Only the caller's own `resilience`: one set on `Object.prototype` is not a policy.
            let resilience = read("resilience", own(&init, "resilience"))?;
            parse_request_policy(resilience, defaults.retry)?
        }
    };
    let source = match input.dyn_ref::<Request>() {
        Some(request) => Some(Source::read(request)?),
        None => None,
    };

    let url = match &source {
        Some(source) => resolve_url(&source.url, defaults.base_url)?,
        None if input.is_string() || input.is_instance_of::<Url>() => {
            resolve_url(&input, defaults.base_url)?
        }
        None => return Err(type_error("input", "a URL string, URL or Request", &input)),
    };
    let href = url.as_string().unwrap_or_default();
    let out = Object::try_assign(&Object::new(), init.unchecked_ref())
        .map_err(|thrown| unreadable("init", &thrown))?;

    let method = read("method", fields.method())?;
    if method.is_string() && short_string(&method, MAX_METHOD).is_none() {
        return Err(range_error("init.method", "an HTTP method", &method));
    }
    let method = match (short_string(&method, MAX_METHOD), &source) {
        (Some(method), _) => method.to_ascii_uppercase(),
        (None, Some(source)) => {
            let method = short_string(&source.method, MAX_METHOD).unwrap_or_else(|| "GET".into());
            set(&out, "method", &method.as_str().into());
            method
        }
        (None, None) => "GET".to_string(),
    };

    let init_headers = read("headers", fields.headers())?;
    let merged =
        if source.is_some() || !defaults.headers.is_empty() || policy.idempotency_key.is_some() {
            let source_headers = source.as_ref().map(|source| &source.headers);
            let headers = build_headers(source_headers, &init_headers, defaults.headers)?;
            if let Some(key) = &policy.idempotency_key {
                headers.set("idempotency-key", key)?;
            }
            set(&out, "headers", &headers);
            Some(headers)
        } else {
            None
        };

    let init_body = read("body", fields.body())?;
    let body = reusable_body(source.as_ref(), &init_body, &method).await?;
    if let Some(body) = body.as_ref().filter(|b| !JsValue::eq(b, &init_body)) {
        set(&out, "body", body);
    }
    let tokens = match (defaults.count_tokens, &body) {
        (true, Some(body)) => body_len(body) / 4,
        _ => 0,
    };

    let signal = read("signal", fields.signal())?
        .dyn_into::<AbortSignal>()
        .ok()
        .or_else(|| source.as_ref()?.signal.dyn_ref::<AbortSignal>().cloned());

    let key = match defaults.keyed {
        true => request_key(
            &method,
            &href,
            merged.as_ref().map_or(&init_headers, |headers| headers),
            body.as_ref(),
            policy.cache,
            defaults.namespace,
        ),
        false => None,
    };

    Ok(Prepared {
        key,
        learn_limits: false,
        request: JsRequest {
            url,
            init: out,
            stream: None,
            classify_errors: false,
            signal: signal.clone(),
        },
        origin: origin_of(&href).map_or_else(
            || Url::new(&href).map(|url| url.origin()).unwrap_or_default(),
            str::to_string,
        ),
        method,
        url: href,
        signal,
        timeout: defaults.timeout.overridden_by(&policy.timeout),
        policy,
        tokens,
        started_ms: defaults.now_ms,
    })
}

/// Longest HTTP method accepted, in characters.
const MAX_METHOD: u32 = 64;

/// What is read of a caller's `Request`, each part once and through accessors that catch (it may be
/// a Proxy of one, whose every read runs the caller's code).
struct Source<'a> {
    request: &'a Request,
    url: JsValue,
    method: JsValue,
    headers: JsValue,
    body: JsValue,
    signal: JsValue,
}

impl<'a> Source<'a> {
    fn read(request: &'a Request) -> Result<Source<'a>, JsValue> {
        let fields: &InitFields = request.unchecked_ref();
        let read = |field: &str, value: Result<JsValue, JsValue>| {
            value.map_err(|thrown| unreadable(&format!("input.{field}"), &thrown))
        };
        Ok(Source {
            request,
            url: read("url", fields.url())?,
            method: read("method", fields.method())?,
            headers: read("headers", fields.headers())?,
            body: read("body", fields.body())?,
            signal: read("signal", fields.signal())?,
        })
    }
}

/// The cache key (SHA-256 hex) of a cacheable request, also the identity under which identical calls
/// in flight share one upstream call; `None` for a request that must not be shared or cached (or
/// whose headers are invalid). Its headers are part of it (all but a few the core ignores), so two
/// API keys, cookies or organizations never share an answer.
fn request_key(
    method: &str,
    url: &str,
    headers: &JsValue,
    body: Option<&JsValue>,
    mode: CacheMode,
    namespace: &str,
) -> Option<String> {
    let text = match body {
        None => None,
        Some(body) => Some(short_string(body, MAX_KEYED_BODY)?),
    };
    let body = text.as_deref().map(Body::new);
    // Headers that cannot be read (a caller's Proxy) make fetch fail anyway: such a call is not shared.
    let packed = key_headers(headers).ok().flatten()?;
    let mut fields = packed.split_terminator('\r');
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        pairs.push((name, value));
    }
    // All of them: a plain object may spell it twice (`Cache-Control`, `cache-control`), fetch sends both.
    let cache_control: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cache-control"))
        .map(|(_, value)| *value)
        .collect();
    let cache_control = (!cache_control.is_empty()).then(|| cache_control.join(","));
    if !request_cacheable(method, body.as_ref(), mode, cache_control.as_deref()) {
        return None;
    }
    Some(cache_key(&KeyParts {
        method,
        url,
        body: body.as_ref(),
        headers: &pairs,
        namespace,
    }))
}

/// Longest body a key is derived from, in UTF-16 code units (measured before it is copied into wasm
/// memory, which never shrinks): a longer one is neither cached nor shared.
const MAX_KEYED_BODY: u32 = 4 << 20;

/// `scheme://host:port` of a serialized URL (a `URL.href`): everything before the path. Cheaper than
/// asking `URL.origin` across the boundary on every call; `None` for URLs with credentials or without
/// an authority, which `URL.origin` handles.
fn origin_of(href: &str) -> Option<&str> {
    let scheme_end = text::find(href, "://")? + 3;
    let rest = href.get(scheme_end..)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest.get(..authority_end)?.contains('@') {
        return None;
    }
    href.get(..scheme_end + authority_end)
}

/// The `href` of `input` (a string or `URL`) resolved against the base URL, or else the page's
/// address; at most [`MAX_URL`] characters (measured before it is copied into wasm memory).
fn resolve_url(input: &JsValue, base: Option<&str>) -> Result<JsValue, JsValue> {
    let href = resolve_url_js(input, base).map_err(|_| {
        type_error(
            "input",
            "an absolute URL (or a path, with the baseUrl option set)",
            input,
        )
    })?;
    match href.dyn_ref::<JsString>() {
        Some(text) if text.length() <= MAX_URL => Ok(href),
        _ => Err(range_error(
            "input",
            &format!("a URL of at most {MAX_URL} characters"),
            &href,
        )),
    }
}

/// Longest URL accepted, in characters (servers refuse far shorter ones).
const MAX_URL: u32 = 1 << 16;

fn build_headers(
    source: Option<&JsValue>,
    init_headers: &JsValue,
    defaults: &[(String, String)],
) -> Result<Headers, JsValue> {
    let headers = match source {
        Some(given) => Headers::new_with_headers(given.unchecked_ref())
            .map_err(|_| type_error("input.headers", "a valid HeadersInit", given))?,
        None => Headers::new()?,
    };
    if !init_headers.is_undefined() && !init_headers.is_null() {
        let given = Headers::new_with_headers(init_headers.unchecked_ref())
            .map_err(|_| type_error("init.headers", "a valid HeadersInit", init_headers))?;
        if let Ok(Some(entries)) = js_sys::try_iter(&given) {
            for entry in entries.flatten() {
                let pair: js_sys::Array = entry.unchecked_into();
                if let (Some(name), Some(value)) =
                    (pair.get(0).as_string(), pair.get(1).as_string())
                {
                    headers.set(&name, &value)?;
                }
            }
        }
    }
    for (name, value) in defaults {
        if !headers.has(name).unwrap_or(true) {
            headers.set(name, value).map_err(|_| {
                type_error(&format!("headers.{name}"), "a valid header", &value.into())
            })?;
        }
    }
    Ok(headers)
}

/// The body as something fetch can send more than once.
async fn reusable_body(
    source: Option<&Source<'_>>,
    init_body: &JsValue,
    method: &str,
) -> Result<Option<JsValue>, JsValue> {
    if !init_body.is_undefined() && !init_body.is_null() {
        if init_body.is_instance_of::<web_sys::ReadableStream>() {
            let response = Response::new_with_opt_readable_stream(Some(init_body.unchecked_ref()))?;
            return Ok(Some(JsFuture::from(response.array_buffer()?).await?));
        }
        return Ok(Some(init_body.clone()));
    }
    match source {
        Some(source)
            if method != "GET"
                && method != "HEAD"
                && !source.body.is_null()
                && !source.body.is_undefined() =>
        {
            let copy =
                Request::clone(source.request).map_err(|thrown| unreadable("input", &thrown))?;
            Ok(Some(JsFuture::from(copy.array_buffer()?).await?))
        }
        _ => Ok(None),
    }
}

fn body_len(body: &JsValue) -> u64 {
    if let Some(text) = body.dyn_ref::<js_sys::JsString>() {
        return u64::from(text.length());
    }
    ["byteLength", "size"]
        .iter()
        .find_map(|key| get(body, key).as_f64())
        .map_or(0, |n| n as u64)
}
