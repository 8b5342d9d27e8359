//! What an upstream error *means*, so the caller can decide: retry the same target, fall back to
//! another, or give up and tell the user.
//!
//! The status alone is not enough. A 429 is either "slow down" (retry later) or "out of credit"
//! (retrying is pointless for days; another provider may still work); a 400 is either a malformed
//! request (no target will accept it) or a prompt too long for this model (a larger one might).
//! Both OpenAI and Anthropic say which in the error body, so [`classify`] reads the status and
//! the body together.

use crate::core::json::Json;
use crate::core::text;

/// The kind of an upstream failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Too many requests or tokens for now (429).
    RateLimited,
    /// Out of credit or over a hard billing limit: waiting will not help.
    QuotaExhausted,
    /// The provider is overloaded (Anthropic 529 `overloaded_error`).
    Overloaded,
    /// The prompt (plus the requested output) does not fit the model's context window.
    ContextLength,
    /// Refused by the provider's content filter.
    ContentPolicy,
    /// Missing, invalid or unauthorised credentials (401/403).
    Auth,
    /// A request no retry will fix (other 4xx).
    BadRequest,
    /// The provider failed (5xx), or timed out (408) or hit a conflict (409), which the official
    /// SDKs also retry.
    Server,
    /// No such model or endpoint here (404).
    NotFound,
}

impl ErrorClass {
    /// Snake-case name: `"rate_limited"`, `"quota_exhausted"`, `"overloaded"`,
    /// `"context_length"`, `"content_policy"`, `"auth"`, `"bad_request"`, `"server"`,
    /// `"not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::ContextLength => "context_length",
            ErrorClass::ContentPolicy => "content_policy",
            ErrorClass::Auth => "auth",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::Server => "server",
            ErrorClass::NotFound => "not_found",
        }
    }

    /// Whether the same call may succeed later on the same target: rate limits, overload and
    /// server errors.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited | ErrorClass::Overloaded | ErrorClass::Server
        )
    }

    /// Whether another target (provider, key or model) may succeed where this one failed: all but
    /// [`Auth`](ErrorClass::Auth) and [`BadRequest`](ErrorClass::BadRequest), which are
    /// configuration or request errors to surface, not to hide behind a fallback.
    /// [`NotFound`](ErrorClass::NotFound) does fall back: another target may have the model.
    pub fn falls_back(self) -> bool {
        !matches!(self, ErrorClass::Auth | ErrorClass::BadRequest)
    }
}

/// The `(type, code, message)` of an error body, whatever the shape.
struct Fields<'a> {
    kind: Option<&'a str>,
    code: Option<&'a str>,
    message: Option<&'a str>,
}

/// Reads OpenAI `{"error":{"type","code","message"}}`, Anthropic
/// `{"type":"error","error":{"type","message"}}`, and the looser shapes of compatible servers:
/// `{"error":"message"}`, a top-level `message`, or the object wrapped in a one-element array.
fn fields<'a>(json: &'a Json<'a>) -> Fields<'a> {
    let json = match json {
        Json::Array(_) => json.at(0).unwrap_or(json),
        _ => json,
    };
    let str_of = |v: Option<&'a Json<'a>>| v.and_then(Json::as_str).filter(|s| !s.is_empty());
    match json.get("error") {
        Some(error @ Json::Object(_)) => Fields {
            kind: str_of(error.get("type")),
            code: str_of(error.get("code")),
            message: str_of(error.get("message")),
        },
        Some(Json::String(message)) => Fields {
            kind: None,
            code: str_of(json.get("code")),
            message: Some(message).filter(|m| !m.is_empty()).map(|m| &**m),
        },
        _ => Fields {
            kind: str_of(json.get("type")).filter(|t| *t != "error"),
            code: str_of(json.get("code")),
            message: str_of(json.get("message")),
        },
    }
}

/// Classifies a failed response from its status and error body (either provider's shape; a body
/// that is not JSON is judged by the status alone). The first rule that matches wins; `type` and
/// `code` are compared exactly, messages case-insensitively:
///
/// 1. code/type `insufficient_quota`, `billing_hard_limit_reached` or `billing_not_active`, or
///    Anthropic's "credit balance is too low" message → `QuotaExhausted` (OpenAI sends these with
///    a 429, Anthropic with a 400);
/// 2. 429 or type `rate_limit_error` → `RateLimited`;
/// 3. 529 or type `overloaded_error` → `Overloaded`;
/// 4. code/type `context_length_exceeded`, or a message mentioning "context length", "maximum
///    context", "context window" or "prompt is too long" → `ContextLength`;
/// 5. code/type `content_policy_violation` or `content_filter` → `ContentPolicy`;
/// 6. 401, 403, or type `authentication_error` / `permission_error` → `Auth`;
/// 7. 404 or type `not_found_error` → `NotFound`;
/// 8. 5xx, 408, 409 → `Server`;
/// 9. anything else (other 4xx, and statuses that are no error at all) → `BadRequest`.
pub fn classify(status: u16, body: &str) -> ErrorClass {
    let json = Json::parse(body);
    let f = json.as_ref().map(fields).unwrap_or(Fields {
        kind: None,
        code: None,
        message: None,
    });
    let is = |names: &[&str]| {
        f.kind.is_some_and(|k| names.contains(&k)) || f.code.is_some_and(|c| names.contains(&c))
    };
    let message = f.message.map(str::to_ascii_lowercase).unwrap_or_default();
    let says = |phrases: &[&str]| phrases.iter().any(|p| text::contains(&message, p));

    if is(&[
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
    ]) || says(&["credit balance is too low"])
    {
        ErrorClass::QuotaExhausted
    } else if status == 429 || is(&["rate_limit_error"]) {
        ErrorClass::RateLimited
    } else if status == 529 || is(&["overloaded_error"]) {
        ErrorClass::Overloaded
    } else if is(&["context_length_exceeded"])
        || says(&[
            "context length",
            "maximum context",
            "context window",
            "prompt is too long",
        ])
    {
        ErrorClass::ContextLength
    } else if is(&["content_policy_violation", "content_filter"]) {
        ErrorClass::ContentPolicy
    } else if matches!(status, 401 | 403) || is(&["authentication_error", "permission_error"]) {
        ErrorClass::Auth
    } else if status == 404 || is(&["not_found_error"]) {
        ErrorClass::NotFound
    } else if (500..=599).contains(&status) || matches!(status, 408 | 409) {
        ErrorClass::Server
    } else {
        ErrorClass::BadRequest
    }
}

/// The upstream's human-readable message from an error body (either provider's shape, or
/// `{"error":"…"}` / a top-level `message`), if any and not empty.
pub fn error_message(body: &str) -> Option<String> {
    let json = Json::parse(body)?;
    fields(&json).message.map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorClass; 9] = [
        ErrorClass::RateLimited,
        ErrorClass::QuotaExhausted,
        ErrorClass::Overloaded,
        ErrorClass::ContextLength,
        ErrorClass::ContentPolicy,
        ErrorClass::Auth,
        ErrorClass::BadRequest,
        ErrorClass::Server,
        ErrorClass::NotFound,
    ];

    fn anthropic(kind: &str, message: &str) -> String {
        format!(
            r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}}"#
        )
    }

    fn openai(kind: &str, code: &str, message: &str) -> String {
        let code = if code.is_empty() {
            "null".to_string()
        } else {
            format!("\"{code}\"")
        };
        format!(
            r#"{{
    "error": {{
        "message": "{message}",
        "type": "{kind}",
        "param": null,
        "code": {code}
    }}
}}"#
        )
    }

    #[test]
    fn names_and_policies() {
        let names: Vec<&str> = ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "rate_limited",
                "quota_exhausted",
                "overloaded",
                "context_length",
                "content_policy",
                "auth",
                "bad_request",
                "server",
                "not_found"
            ]
        );
        let retryable: Vec<ErrorClass> = ALL.into_iter().filter(|c| c.retryable()).collect();
        assert_eq!(
            retryable,
            [
                ErrorClass::RateLimited,
                ErrorClass::Overloaded,
                ErrorClass::Server
            ]
        );
        let stays: Vec<ErrorClass> = ALL.into_iter().filter(|c| !c.falls_back()).collect();
        assert_eq!(stays, [ErrorClass::Auth, ErrorClass::BadRequest]);
    }

    #[test]
    fn openai_bodies() {
        let cases = [
            (429, openai("requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms."), ErrorClass::RateLimited),
            (429, openai("tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000."), ErrorClass::RateLimited),
            (429, openai("insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."), ErrorClass::QuotaExhausted),
            (429, openai("invalid_request_error", "billing_hard_limit_reached", "Billing hard limit has been reached"), ErrorClass::QuotaExhausted),
            (400, openai("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages."), ErrorClass::ContextLength),
            (400, openai("invalid_request_error", "", "This model's maximum context length is 8192 tokens."), ErrorClass::ContextLength),
            (400, openai("invalid_request_error", "content_policy_violation", "Your request was rejected as a result of our safety system."), ErrorClass::ContentPolicy),
            (400, openai("invalid_request_error", "content_filter", "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."), ErrorClass::ContentPolicy),
            (401, openai("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys."), ErrorClass::Auth),
            (403, openai("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"), ErrorClass::Auth),
            (404, openai("invalid_request_error", "model_not_found", "The model `gpt-5-nope` does not exist or you do not have access to it."), ErrorClass::NotFound),
            (400, openai("invalid_request_error", "", "Invalid value for 'temperature': must be between 0 and 2."), ErrorClass::BadRequest),
            (500, openai("server_error", "", "The server had an error while processing your request. Sorry about that!"), ErrorClass::Server),
            (503, openai("server_error", "", "The engine is currently overloaded, please try again later."), ErrorClass::Server),
        ];
        for (status, body, class) in cases {
            assert_eq!(classify(status, &body), class, "{status} {body}");
        }
    }

    #[test]
    fn anthropic_bodies() {
        let cases = [
            (400, anthropic("invalid_request_error", "max_tokens: Field required"), ErrorClass::BadRequest),
            (400, anthropic("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"), ErrorClass::ContextLength),
            (400, anthropic("invalid_request_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."), ErrorClass::QuotaExhausted),
            (401, anthropic("authentication_error", "invalid x-api-key"), ErrorClass::Auth),
            (403, anthropic("permission_error", "Your API key does not have permission to use the specified resource."), ErrorClass::Auth),
            (404, anthropic("not_found_error", "model: claude-nope"), ErrorClass::NotFound),
            (413, anthropic("request_too_large", "Request exceeds the maximum allowed number of bytes."), ErrorClass::BadRequest),
            (429, anthropic("rate_limit_error", "This request would exceed the rate limit for your organization of 50,000 input tokens per minute."), ErrorClass::RateLimited),
            (500, anthropic("api_error", "Internal server error"), ErrorClass::Server),
            (529, anthropic("overloaded_error", "Overloaded"), ErrorClass::Overloaded),
            (503, anthropic("overloaded_error", "Overloaded"), ErrorClass::Overloaded),
        ];
        for (status, body, class) in cases {
            assert_eq!(classify(status, &body), class, "{status} {body}");
        }
    }

    #[test]
    fn status_alone_when_the_body_says_nothing() {
        for (status, class) in [
            (429, ErrorClass::RateLimited),
            (529, ErrorClass::Overloaded),
            (401, ErrorClass::Auth),
            (403, ErrorClass::Auth),
            (404, ErrorClass::NotFound),
            (500, ErrorClass::Server),
            (502, ErrorClass::Server),
            (599, ErrorClass::Server),
            (408, ErrorClass::Server),
            (409, ErrorClass::Server),
            (400, ErrorClass::BadRequest),
            (422, ErrorClass::BadRequest),
            (200, ErrorClass::BadRequest),
            (0, ErrorClass::BadRequest),
            (600, ErrorClass::BadRequest),
        ] {
            for body in [
                "",
                "<html>Bad Gateway</html>",
                "{}",
                "[]",
                "null",
                "{\"error\":null}",
            ] {
                assert_eq!(classify(status, body), class, "{status} {body}");
            }
        }
    }

    #[test]
    fn compatible_shapes() {
        assert_eq!(
            classify(
                400,
                r#"{"error":"This model's maximum context length is 4096 tokens"}"#
            ),
            ErrorClass::ContextLength
        );
        assert_eq!(
            classify(
                400,
                r#"[{"error":{"code":400,"message":"The input token count exceeds the maximum number of tokens allowed (context window).","status":"INVALID_ARGUMENT"}}]"#
            ),
            ErrorClass::ContextLength
        );
        assert_eq!(
            classify(
                400,
                r#"{"object":"error","message":"Prompt is too long","type":"BadRequestError","code":400}"#
            ),
            ErrorClass::ContextLength
        );
    }

    #[test]
    fn messages_of_every_shape() {
        assert_eq!(
            error_message(&anthropic("overloaded_error", "Overloaded")).as_deref(),
            Some("Overloaded")
        );
        assert_eq!(
            error_message(&openai("server_error", "", "Sorry")).as_deref(),
            Some("Sorry")
        );
        assert_eq!(
            error_message(r#"{"error":"plain \"quoted\""}"#).as_deref(),
            Some("plain \"quoted\"")
        );
        assert_eq!(
            error_message(r#"{"message":"top"}"#).as_deref(),
            Some("top")
        );
        assert_eq!(
            error_message(r#"[{"error":{"message":"wrapped"}}]"#).as_deref(),
            Some("wrapped")
        );
        for none in [
            "",
            "oops",
            "{}",
            r#"{"error":{"type":"x"}}"#,
            r#"{"error":""}"#,
            r#"{"error":{"message":""}}"#,
            r#"{"error":{"message":5}}"#,
        ] {
            assert_eq!(error_message(none), None, "{none}");
        }
    }
}
