//! What a semantic-cache entry is filed under: the question (the last user turn, compared by
//! meaning) and a digest of everything else (compared exactly).
//!
//! The digest follows the response cache's key conventions ([`crate::core::cache::key`]): a
//! domain-separation label, every variable-length field preceded by its length, and the headers of
//! each target (its credential among them) hashed on their own first, through the same function, so
//! that no header, however named, can be left out and two credentials never share an entry. What
//! goes in:
//!
//! - the request without its question ([`rest_of_request`]): the system prompt, the other messages
//!   (the question's place kept, so where it stands in the conversation counts), tools, tool choice,
//!   response format, sampling options, stop sequences, seed and `user` (one user's answer never
//!   reaches another through a similar question), written as one canonical JSON text;
//! - both providers' `providerOptions`;
//! - every target of the chain, in order: provider, URL, model, API key and headers;
//! - the embedding model that made the vector (two models' vectors cannot be compared);
//! - the response cache's namespace.

use crate::core::cache::key::{field, headers_digest};
use crate::core::cache::Sha256;
use crate::core::llm::{build_request, ChatParams, Message, Part, Provider, Role};

/// Label opening every digest's hashed input (bump it if the derivation changes).
const LABEL: &[u8] = b"resilient-llm semantic key v1\0";

/// The header name the API key is hashed under, with a target's headers: not a valid header name,
/// so no real header can stand for it.
const API_KEY: &str = ":api-key";

/// Longest question embedded, in bytes (about 8,000 tokens, the embedding models' input limit): a
/// longer last turn is a document, not a question to match.
pub const MAX_QUESTION_BYTES: usize = 32 << 10;

/// The question of a conversation: its last user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Its place in the messages.
    pub index: usize,
    /// Its text parts, joined by newlines.
    pub text: String,
}

/// The last user message of `messages`, if the semantic cache may use it: text only (an image's
/// meaning is not in the text's embedding), not blank, within [`MAX_QUESTION_BYTES`].
pub fn question(messages: &[Message]) -> Option<Question> {
    let index = messages.iter().rposition(|m| m.role == Role::User)?;
    let mut text = String::new();
    for part in &messages.get(index)?.content {
        match part {
            Part::Text(piece) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(piece);
            }
            Part::Image(_) => return None,
        }
        if text.len() > MAX_QUESTION_BYTES {
            return None;
        }
    }
    (!text.trim().is_empty()).then_some(Question { index, text })
}

/// The request of `params` with the content of message `question` left empty, as one JSON text
/// (OpenAI's dialect, without model, provider options or streaming: those are keyed apart, or do
/// not change the answer).
pub fn rest_of_request(params: &ChatParams, question: usize) -> String {
    let mut messages: Vec<Message> = params.messages.to_vec();
    if let Some(asked) = messages.get_mut(question) {
        asked.content.clear();
    }
    let rest = ChatParams {
        model: "",
        messages: &messages,
        provider_options: None,
        stream: false,
        ..*params
    };
    build_request(Provider::OpenAi, &rest, None).body
}

/// Who answers: one target of the chain.
#[derive(Clone, Copy)]
pub struct TargetIdentity<'a> {
    /// `"openai"` or `"anthropic"`.
    pub provider: &'a str,
    /// The chat endpoint.
    pub url: &'a str,
    /// The model.
    pub model: &'a str,
    /// The API key, if any.
    pub api_key: Option<&'a str>,
    /// Every other header sent (the client's and the target's), as for a cache key.
    pub headers: &'a [(&'a str, &'a str)],
}

/// What a digest is derived from (see the module doc).
#[derive(Clone, Copy)]
pub struct SemanticKeyParts<'a> {
    /// [`rest_of_request`].
    pub request: &'a str,
    /// `providerOptions.openai` and `.anthropic`, as JSON text.
    pub provider_options: [Option<&'a str>; 2],
    /// The chain, in order.
    pub targets: &'a [TargetIdentity<'a>],
    /// The embedding target's name and the model that made the vector.
    pub embedding: (&'a str, &'a str),
    /// The response cache's namespace.
    pub namespace: &'a str,
}

/// The digest an entry must match exactly.
pub fn semantic_key(parts: &SemanticKeyParts) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(LABEL);
    field(&mut hasher, parts.request.as_bytes());
    for options in parts.provider_options {
        match options {
            None => hasher.update(&[0]),
            Some(text) => {
                hasher.update(&[1]);
                field(&mut hasher, text.as_bytes());
            }
        }
    }
    hasher.update(&(parts.targets.len() as u64).to_be_bytes());
    for target in parts.targets {
        field(&mut hasher, target.provider.as_bytes());
        field(&mut hasher, target.url.as_bytes());
        field(&mut hasher, target.model.as_bytes());
        let mut headers = target.headers.to_vec();
        headers.extend(target.api_key.map(|key| (API_KEY, key)));
        hasher.update(&headers_digest(&headers));
    }
    field(&mut hasher, parts.embedding.0.as_bytes());
    field(&mut hasher, parts.embedding.1.as_bytes());
    field(&mut hasher, parts.namespace.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::Tool;

    fn user(text: &str) -> Message {
        Message::text(Role::User, text)
    }

    #[test]
    fn the_question_is_the_last_user_turn_in_text() {
        let system = Message::text(Role::System, "Be brief.");
        let answer = Message::text(Role::Assistant, "Paris.");
        let asked = [system.clone(), user("Capital of France?"), answer.clone()];
        assert_eq!(
            question(&asked),
            Some(Question {
                index: 1,
                text: "Capital of France?".into()
            })
        );
        let mut parts = user("first");
        parts.content.push(Part::Text("second".into()));
        assert_eq!(question(&[parts]).unwrap().text, "first\nsecond");
        let mut image = user("what is this?");
        image
            .content
            .push(Part::Image("https://example.com/a.png".into()));
        assert_eq!(question(&[user("earlier"), image]), None);
        assert_eq!(question(&[system, answer]), None);
        assert_eq!(question(&[user(" \n\t")]), None);
        assert_eq!(
            question(&[user(&"x".repeat(MAX_QUESTION_BYTES))]).map(|q| q.index),
            Some(0)
        );
        assert_eq!(question(&[user(&"x".repeat(MAX_QUESTION_BYTES + 1))]), None);
        assert_eq!(question(&[]), None);
    }

    struct Case {
        messages: Vec<Message>,
        tools: Vec<Tool>,
        user: Option<&'static str>,
        max_tokens: Option<u32>,
        api_key: Option<&'static str>,
        headers: Vec<(&'static str, &'static str)>,
        model: &'static str,
        embedding_model: &'static str,
        openai_options: Option<&'static str>,
        namespace: &'static str,
    }

    impl Case {
        fn new(question: &str) -> Case {
            Case {
                messages: vec![Message::text(Role::System, "Be brief."), user(question)],
                tools: Vec::new(),
                user: None,
                max_tokens: None,
                api_key: Some("sk-1"),
                headers: vec![("X-Org", "acme")],
                model: "gpt-4o-mini",
                embedding_model: "text-embedding-3-small",
                openai_options: None,
                namespace: "",
            }
        }

        fn key(&self) -> [u8; 32] {
            let params = ChatParams {
                model: self.model,
                messages: &self.messages,
                tools: &self.tools,
                max_tokens: self.max_tokens,
                user: self.user,
                ..ChatParams::default()
            };
            let asked = question(&self.messages).unwrap();
            let request = rest_of_request(&params, asked.index);
            let targets = [TargetIdentity {
                provider: "openai",
                url: "https://api.openai.com/v1/chat/completions",
                model: self.model,
                api_key: self.api_key,
                headers: &self.headers,
            }];
            semantic_key(&SemanticKeyParts {
                request: &request,
                provider_options: [self.openai_options, None],
                targets: &targets,
                embedding: ("openai", self.embedding_model),
                namespace: self.namespace,
            })
        }
    }

    /// One way to change a request.
    type Change = fn(&mut Case);

    #[test]
    fn only_the_question_may_differ() {
        let base = Case::new("Capital of France?").key();
        assert_eq!(Case::new("what's France's capital").key(), base);
        // Header names in any case, values with stray whitespace: the cache key's conventions.
        let mut case = Case::new("q");
        case.headers = vec![("x-org", " acme ")];
        assert_eq!(case.key(), base);

        let changes: [(&str, Change); 14] = [
            ("system prompt", |c| {
                c.messages[0] = Message::text(Role::System, "Be verbose.")
            }),
            ("an earlier turn", |c| c.messages.insert(1, user("Hi"))),
            ("a later turn", |c| {
                c.messages.push(Message::text(Role::Assistant, "Sure:"))
            }),
            ("tools", |c| {
                c.tools.push(Tool {
                    name: "f".into(),
                    description: None,
                    parameters: "{}".into(),
                    cache: false,
                })
            }),
            ("user", |c| c.user = Some("alice")),
            ("maxTokens", |c| c.max_tokens = Some(10)),
            ("credential", |c| c.api_key = Some("sk-2")),
            ("no credential", |c| c.api_key = None),
            ("a header", |c| c.headers = vec![("x-org", "other")]),
            ("a credential header", |c| {
                c.headers.push(("authorization", "Bearer sk-3"))
            }),
            ("model", |c| c.model = "gpt-4o"),
            ("embedding model", |c| {
                c.embedding_model = "text-embedding-3-large"
            }),
            ("provider options", |c| {
                c.openai_options = Some("{\"reasoning_effort\":\"low\"}")
            }),
            ("namespace", |c| c.namespace = "v2"),
        ];
        for (what, change) in changes {
            let mut case = Case::new("Capital of France?");
            change(&mut case);
            assert_ne!(case.key(), base, "{what} must partition");
        }
    }

    #[test]
    fn the_api_key_is_hashed_under_a_name_no_header_can_have() {
        let mut with_key = Case::new("q");
        with_key.headers.clear();
        let mut with_header = Case::new("q");
        with_header.api_key = None;
        with_header.headers = vec![(API_KEY, "sk-1")];
        // Same pairs, same digest: which is why API_KEY is no valid header name (a real header can
        // never be called that).
        assert_eq!(with_key.key(), with_header.key());
        with_header.headers = vec![("api-key", "sk-1")];
        assert_ne!(with_key.key(), with_header.key());
    }
}
