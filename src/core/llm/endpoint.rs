//! Where a target's requests go, from its `baseUrl` as the provider's own SDK takes it.
//!
//! Users paste the base URL from the provider's docs, and every provider documents it the way its
//! SDK wants it. The OpenAI SDK appends `/chat/completions` to a base URL that carries the version
//! path (`https://api.openai.com/v1`, `http://127.0.0.1:8080/v1`, `https://openrouter.ai/api/v1`,
//! Gemini's `.../v1beta/openai`), so an `"openai"` target does the same; a base URL with no path at
//! all (`https://api.openai.com`) gets `/v1`, the one version every compatible server serves. The
//! Anthropic SDK appends `/v1/messages` to a bare origin (`https://api.anthropic.com`) or a proxy's
//! prefix; an `"anthropic"` base URL that already ends in `/v1` gets `/messages` only, since
//! doubling the version can only be a 404.

use crate::core::llm::Provider;

/// The URL `provider`'s chat requests go to under `base_url` (an absolute `http(s)` URL; a query
/// or fragment is refused by the options reader before this is asked). Trailing slashes are
/// ignored.
pub fn chat_endpoint(provider: Provider, base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    let has_path = after_scheme.contains('/');
    let suffix = match provider {
        Provider::OpenAi if has_path => "/chat/completions",
        Provider::OpenAi => "/v1/chat/completions",
        Provider::Anthropic if base.ends_with("/v1") => "/messages",
        Provider::Anthropic => "/v1/messages",
    };
    let mut url = String::with_capacity(base.len() + suffix.len());
    url.push_str(base);
    url.push_str(suffix);
    url
}

/// Where an OpenAI-compatible target's embeddings requests go under `base_url`: its chat
/// endpoint's sibling (`.../v1/embeddings`). Anthropic has no embeddings API: `None`.
pub fn embeddings_endpoint(provider: Provider, base_url: &str) -> Option<String> {
    let chat = chat_endpoint(provider, base_url);
    match provider {
        Provider::OpenAi => chat
            .strip_suffix("/chat/completions")
            .map(|base| format!("{base}/embeddings")),
        Provider::Anthropic => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_base_urls_as_the_sdk_takes_them() {
        let cases = [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:8080/v1",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "https://api.groq.com/openai/v1",
                "https://api.groq.com/openai/v1/chat/completions",
            ),
            (
                "https://generativelanguage.googleapis.com/v1beta/openai",
                "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
            ),
            (
                "https://res.openai.azure.com/openai/v1",
                "https://res.openai.azure.com/openai/v1/chat/completions",
            ),
            // No path at all: the version every compatible server serves.
            (
                "https://api.openai.com",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:8080/",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
        ];
        for (base, url) in cases {
            assert_eq!(chat_endpoint(Provider::OpenAi, base), url, "{base}");
        }
    }

    #[test]
    fn embeddings_beside_chat() {
        let openai = |base| embeddings_endpoint(Provider::OpenAi, base);
        assert_eq!(
            openai("https://api.openai.com/v1/").as_deref(),
            Some("https://api.openai.com/v1/embeddings")
        );
        assert_eq!(
            openai("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/v1/embeddings")
        );
        assert_eq!(
            embeddings_endpoint(Provider::Anthropic, "https://api.anthropic.com"),
            None
        );
    }

    #[test]
    fn anthropic_base_urls_as_the_sdk_takes_them() {
        let cases = [
            (
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://api.anthropic.com/",
                "https://api.anthropic.com/v1/messages",
            ),
            // A proxy's prefix, as the SDK takes it.
            (
                "https://gateway.example/acct/anthropic",
                "https://gateway.example/acct/anthropic/v1/messages",
            ),
            // The version already there is not doubled.
            (
                "https://api.anthropic.com/v1",
                "https://api.anthropic.com/v1/messages",
            ),
        ];
        for (base, url) in cases {
            assert_eq!(chat_endpoint(Provider::Anthropic, base), url, "{base}");
        }
    }
}
