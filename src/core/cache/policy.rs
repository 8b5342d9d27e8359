//! What may be cached: which requests, which responses, which of their headers.
//!
//! The policy is conservative on purpose. An LLM call is not a document fetch: the same request
//! sampled twice legitimately gives two answers, and replaying the first one hides that. So a
//! request is cacheable only when its answer is meant to be reproducible: a `GET` or `HEAD` (model
//! lists, metadata), or a body that asks for greedy decoding (`"temperature": 0`), or when the
//! caller says so ([`CacheMode::Force`]). A caller who says [`CacheMode::Bypass`], or a request
//! carrying `Cache-Control: no-store`, is never cached. [`CacheMode::OnlyIfCached`] never reaches the
//! network, so it may look anything up: an entry stored with `Force` must be findable by it.
//!
//! Responses are stored only if successful (2xx, except 206: a partial body answers a `Range`
//! request, which the key does not cover) and not marked `no-store`. `private` is no obstacle: this
//! is a private, client-side cache. Freshness lifetimes are the caller's business.
//!
//! An expired entry still within `staleIfErrorMs` answers only when the upstream failed
//! ([`serves_stale`]): a 5xx after retries, or no answer at all, but never the caller's own abort.
//! Streams follow the same rule before their first event (nothing was handed out yet, so the stored
//! recording can stand in for the whole stream); after it, events cannot be taken back, and a cut is
//! an `IncompleteStreamError` (or a resumption), never a switch to another copy.
//!
//! Headers are filtered before storing: nothing that authenticates (a stored credential could be
//! replayed to another caller, or leak from a persistent store), no cookies, and nothing that
//! describes one transfer rather than the resource (hop-by-hop headers, the length and content
//! encoding of a body that is stored decoded).

use crate::core::cache::Body;
use crate::core::config::CacheMode;
use crate::core::json::Json;

/// Headers never kept in a stored entry (lowercase).
const DROPPED_HEADERS: &[&str] = &[
    // Credentials and cookies.
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "set-cookie",
    "set-cookie2",
    // Hop-by-hop and transfer framing.
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-encoding",
];

/// Whether a request may be answered from / stored in the cache: GET or HEAD; or a body that is a
/// JSON object with `"temperature": 0` (the number zero in any spelling: `0`, `0.0`, `-0`, `0e0`;
/// every `temperature` member must be zero if the key is repeated); or mode
/// [`Force`](CacheMode::Force), or [`OnlyIfCached`](CacheMode::OnlyIfCached) (a lookup that never
/// reaches the network may look up anything, a forced entry included). Never in mode
/// [`Bypass`](CacheMode::Bypass), and never with `Cache-Control: no-store` on the request.
pub fn request_cacheable(
    method: &str,
    body: Option<&Body>,
    mode: CacheMode,
    request_cache_control: Option<&str>,
) -> bool {
    if mode == CacheMode::Bypass || request_cache_control.is_some_and(has_no_store) {
        return false;
    }
    if matches!(mode, CacheMode::Force | CacheMode::OnlyIfCached)
        || method.eq_ignore_ascii_case("GET")
        || method.eq_ignore_ascii_case("HEAD")
    {
        return true;
    }
    body.is_some_and(is_greedy_body)
}

/// A JSON object whose `temperature` members are all the number zero, and there is at least one.
fn is_greedy_body(body: &Body) -> bool {
    let Some(Json::Object(members)) = &body.json else {
        return false;
    };
    let mut temperatures = members
        .iter()
        .filter(|(key, _)| key == "temperature")
        .peekable();
    temperatures.peek().is_some()
        && temperatures.all(|(_, value)| matches!(value, Json::Number(n) if is_zero(n)))
}

/// Whether a JSON number, as written, is zero: its digits before any exponent are all `0`.
fn is_zero(number: &str) -> bool {
    let mantissa = number.split(['e', 'E']).next().unwrap_or(number);
    mantissa.bytes().all(|b| matches!(b, b'0' | b'.' | b'-')) && mantissa.contains('0')
}

/// Whether a response may be stored: 2xx except 206 (see the module doc), and no `no-store` in its
/// Cache-Control (directive match, case-insensitive, comma-separated, e.g. `"private, no-store"`).
pub fn response_storable(status: u16, cache_control: Option<&str>) -> bool {
    (200..300).contains(&status) && status != 206 && !cache_control.is_some_and(has_no_store)
}

/// Whether a Cache-Control value has the `no-store` directive.
fn has_no_store(value: &str) -> bool {
    directives(value).any(|name| name.eq_ignore_ascii_case("no-store"))
}

/// The directive names of a Cache-Control value: split on commas outside quoted strings, argument
/// (`=...`) and surrounding whitespace removed.
fn directives(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, b) in rest.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let directive = rest.get(..end)?;
        rest = rest.get(end + 1..).unwrap_or("");
        let name = directive.split('=').next().unwrap_or(directive);
        Some(name.trim())
    })
}

/// Whether a stale entry answers in place of the upstream's outcome: its final `status` (`None`:
/// it gave no answer), unless the caller `aborted`.
pub fn serves_stale(status: Option<u16>, aborted: bool) -> bool {
    !aborted && status.is_none_or(|status| status >= 500)
}

/// Which response headers to keep in a stored entry: drops credentials and anything that must not
/// be replayed: `authorization`, `proxy-authorization`, `x-api-key`, `api-key`, `cookie`,
/// `set-cookie`, `set-cookie2`, and hop-by-hop / transfer headers (`connection`, `keep-alive`,
/// `proxy-connection`, `te`, `trailer`, `transfer-encoding`, `upgrade`, `content-length`,
/// `content-encoding`), plus any header named in `Connection:`. Names compared case-insensitively;
/// returned lowercase, values unchanged, order kept.
pub fn storable_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let named_by_connection: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect();
    headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value))
        .filter(|(name, _)| {
            !DROPPED_HEADERS.contains(&name.as_str()) && !named_by_connection.contains(name)
        })
        .map(|(name, value)| (name, value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: &str = "POST";

    fn cacheable(body: &str) -> bool {
        request_cacheable(POST, Some(&Body::new(body)), CacheMode::Default, None)
    }

    #[test]
    fn methods_and_modes() {
        for method in ["GET", "get", "HEAD", "Head"] {
            assert!(request_cacheable(method, None, CacheMode::Default, None));
            assert!(request_cacheable(
                method,
                None,
                CacheMode::OnlyIfCached,
                None
            ));
            assert!(!request_cacheable(method, None, CacheMode::Bypass, None));
        }
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", ""] {
            assert!(!request_cacheable(method, None, CacheMode::Default, None));
            assert!(request_cacheable(
                method,
                Some(&Body::new("{}")),
                CacheMode::OnlyIfCached,
                None
            ));
            assert!(request_cacheable(method, None, CacheMode::Force, None));
        }
    }

    #[test]
    fn zero_temperature_in_any_spelling() {
        for zero in ["0", "0.0", "-0", "0e0", "-0.000E+5", "0E-3"] {
            assert!(
                cacheable(&format!(r#"{{"model":"m","temperature":{zero}}}"#)),
                "{zero}"
            );
        }
        for not in [
            r#"{"temperature":0.1}"#,
            r#"{"temperature":1e0}"#,
            r#"{"temperature":10}"#,
            r#"{"temperature":"0"}"#,
            r#"{"temperature":null}"#,
            r#"{"temperature":false}"#,
            r#"{"model":"m"}"#,
            r#"{"options":{"temperature":0}}"#,
            r#"[{"temperature":0}]"#,
            r#"{"temperature":0,"temperature":0.7}"#,
            r#"{"temperature":0"#,
            "temperature=0",
            "",
        ] {
            assert!(!cacheable(not), "{not}");
        }
        assert!(cacheable(r#"{"temperature":0,"temperature":0.0}"#));
    }

    #[test]
    fn no_store_and_bypass_always_win() {
        let body = Body::new(r#"{"temperature":0}"#);
        let body = Some(&body);
        assert!(request_cacheable(
            POST,
            body,
            CacheMode::Default,
            Some("max-age=0")
        ));
        for cc in [
            "no-store",
            "NO-STORE",
            "max-age=0, no-store",
            " private ,no-store ",
        ] {
            assert!(
                !request_cacheable(POST, body, CacheMode::Default, Some(cc)),
                "{cc}"
            );
            assert!(
                !request_cacheable("GET", None, CacheMode::Force, Some(cc)),
                "{cc}"
            );
        }
        assert!(!request_cacheable("GET", body, CacheMode::Bypass, None));
    }

    #[test]
    fn storable_responses() {
        for status in [200, 201, 203, 204, 299] {
            assert!(response_storable(status, None), "{status}");
            assert!(response_storable(status, Some("private, max-age=60")));
        }
        for status in [0, 100, 199, 206, 300, 304, 400, 429, 500, 503, 999] {
            assert!(!response_storable(status, None), "{status}");
        }
        for cc in [
            "no-store",
            "No-Store",
            "private, no-store",
            "no-store=\"x\"",
            "max-age=5,no-store",
            "no-cache=\"a,b\", no-store",
        ] {
            assert!(!response_storable(200, Some(cc)), "{cc}");
        }
        for cc in [
            "no-cache",
            "no-storex",
            "xno-store",
            "private=\"no-store\"",
            "no-cache=\"set-cookie, no-store\"",
            "",
            ",,",
        ] {
            assert!(response_storable(200, Some(cc)), "{cc}");
        }
    }

    #[test]
    fn header_filtering() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        let kept = storable_headers(&h(&[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer x"),
            ("X-API-Key", "k"),
            ("api-key", "k"),
            ("Proxy-Authorization", "p"),
            ("Set-Cookie", "a=b"),
            ("set-cookie2", "a=b"),
            ("Cookie", "a=b"),
            ("Connection", "close, X-Hop , , Keep-Alive"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "x"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Content-Length", "12"),
            ("Content-Encoding", "gzip"),
            ("x-hop", "1"),
            ("X-Request-Id", "req_1"),
            ("x-ratelimit-remaining-requests", "9"),
        ]));
        assert_eq!(
            kept,
            h(&[
                ("content-type", "application/json"),
                ("x-request-id", "req_1"),
                ("x-ratelimit-remaining-requests", "9"),
            ])
        );
        assert!(storable_headers(&[]).is_empty());
    }
}
