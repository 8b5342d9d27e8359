//! Turning `fetch(input, init)` arguments into a request that can be sent again on every retry.
//!
//! fetch accepts a URL string, a `URL` or a `Request`, and a `RequestInit` whose body may be a one-shot
//! `ReadableStream`. Retries need a body that can be sent twice, so a stream (or a `Request`'s body) is
//! read into an `ArrayBuffer` once, up front; strings, buffers, `Blob`s and `FormData` are reusable as
//! they are and pass through untouched.

use crate::core::cache::{cache_key, request_cacheable, KeyParts};
use crate::core::config::CacheMode;
use crate::core::retry::RetryConfig;
use crate::core::text;
use crate::wasm::js::{get, set};
use crate::wasm::options::{parse_request_policy, RequestPolicy};
use crate::wasm::platform::JsRequest;
use crate::wasm::reader::type_error;
use js_sys::{Object, Reflect};
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
    /// Rough token estimate of the body (bytes / 4), for tokens-per-minute limits.
    pub tokens: u64,
    /// The cache key of a cacheable request (a hash of method, URL, credentials, canonical body and
    /// namespace): its cache entry, and the identity under which identical calls in flight share
    /// one upstream call. `None` for requests that must not be shared or cached.
    pub key: Option<String>,
}

/// Client-wide request settings.
pub struct RequestDefaults<'a> {
    /// Prefix for relative URLs.
    pub base_url: Option<&'a str>,
    /// Headers added when the request does not set them.
    pub headers: &'a [(String, String)],
    /// The client's retry config, base for per-request overrides.
    pub retry: Option<&'a RetryConfig>,
    /// Whether cacheable requests need their key (for dedupe or the cache).
    pub keyed: bool,
    /// The cache namespace, part of every key.
    pub namespace: &'a str,
    /// Whether a tokens-per-minute limit needs the body's token estimate.
    pub count_tokens: bool,
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
) -> Result<Prepared, JsValue> {
    if !(init.is_undefined() || init.is_null() || init.is_object()) {
        return Err(type_error("init", "an object", &init));
    }
    let init = if init.is_object() {
        init
    } else {
        Object::new().into()
    };
    let field = |key: &str| Reflect::get(&init, &JsValue::from_str(key));
    let policy = parse_request_policy(field("resilience")?, defaults.retry)?;
    let source = input.dyn_ref::<Request>();

    let href = match source {
        Some(request) => request.url(),
        None => input_href(&input)?,
    };
    let url = resolve_url(&href, defaults.base_url)?;
    let out = Object::try_assign(&Object::new(), init.unchecked_ref())?;

    let method = match (field("method")?.as_string(), source) {
        (Some(method), _) => method.to_ascii_uppercase(),
        (None, Some(request)) => {
            let method = request.method();
            set(&out, "method", &method.as_str().into());
            method
        }
        (None, None) => "GET".to_string(),
    };

    let init_headers = field("headers")?;
    let merged =
        if source.is_some() || !defaults.headers.is_empty() || policy.idempotency_key.is_some() {
            let headers = build_headers(source, &init_headers, defaults.headers)?;
            if let Some(key) = &policy.idempotency_key {
                headers.set("idempotency-key", key)?;
            }
            set(&out, "headers", &headers);
            Some(headers)
        } else {
            None
        };

    let init_body = field("body")?;
    let body = reusable_body(source, &init_body, &method).await?;
    if let Some(body) = body.as_ref().filter(|b| !JsValue::eq(b, &init_body)) {
        set(&out, "body", body);
    }
    let tokens = match (defaults.count_tokens, &body) {
        (true, Some(body)) => body_len(body) / 4,
        _ => 0,
    };

    let signal = field("signal")?
        .dyn_into::<AbortSignal>()
        .ok()
        .or_else(|| source.map(Request::signal));

    let href = url.href();
    let key = match defaults.keyed {
        true => {
            let headers = match merged {
                Some(headers) => Some(headers),
                None if init_headers.is_undefined() || init_headers.is_null() => None,
                None => Headers::new_with_headers(init_headers.unchecked_ref()).ok(),
            };
            request_key(
                &method,
                &href,
                headers.as_ref(),
                body.as_ref(),
                policy.cache,
                defaults.namespace,
            )
        }
        false => None,
    };

    Ok(Prepared {
        key,
        request: JsRequest {
            url: JsValue::from_str(&href),
            init: out,
            stream: None,
            classify_errors: false,
            signal: signal.clone(),
        },
        origin: origin_of(&href).map_or_else(|| url.origin(), str::to_string),
        method,
        url: href,
        signal,
        policy,
        tokens,
    })
}

/// Credential headers: part of a request's identity, so two API keys never share an answer.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

/// The cache key (SHA-256 hex) of a cacheable request, also the identity under which identical calls
/// in flight share one upstream call; `None` for a request that must not be shared or cached.
fn request_key(
    method: &str,
    url: &str,
    headers: Option<&Headers>,
    body: Option<&JsValue>,
    mode: CacheMode,
    namespace: &str,
) -> Option<String> {
    let header = |name: &str| headers.and_then(|h| h.get(name).ok().flatten());
    let text = match body {
        None => None,
        Some(body) => Some(body.as_string()?),
    };
    let cache_control = header("cache-control");
    if !request_cacheable(method, text.as_deref(), mode, cache_control.as_deref()) {
        return None;
    }
    let values: Vec<(&str, String)> = CREDENTIAL_HEADERS
        .iter()
        .filter_map(|name| Some((*name, header(name)?)))
        .collect();
    let credentials: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
    Some(cache_key(&KeyParts {
        method,
        url,
        body: text.as_deref(),
        credentials: &credentials,
        namespace,
    }))
}

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

fn input_href(input: &JsValue) -> Result<String, JsValue> {
    if let Some(s) = input.as_string() {
        return Ok(s);
    }
    if let Some(url) = input.dyn_ref::<Url>() {
        return Ok(url.href());
    }
    Err(type_error("input", "a URL string, URL or Request", input))
}

fn resolve_url(href: &str, base: Option<&str>) -> Result<Url, JsValue> {
    let resolved = match base {
        Some(base) => Url::new_with_base(href, base),
        None => Url::new(href).or_else(|e| {
            let location = get(&js_sys::global(), "location");
            match get(&location, "href").as_string() {
                Some(page) => Url::new_with_base(href, &page),
                None => Err(e),
            }
        }),
    };
    resolved.map_err(|_| {
        js_sys::TypeError::new(&format!(
            "Invalid URL \"{href}\": pass an absolute URL or set the baseUrl option"
        ))
        .into()
    })
}

fn build_headers(
    source: Option<&Request>,
    init_headers: &JsValue,
    defaults: &[(String, String)],
) -> Result<Headers, JsValue> {
    let headers = match source {
        Some(request) => Headers::new_with_headers(&request.headers())?,
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
    source: Option<&Request>,
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
        Some(request) if method != "GET" && method != "HEAD" && request.body().is_some() => {
            let copy = Request::clone(request)?;
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
