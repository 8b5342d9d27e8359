//! The semantic cache: a completed chat answer reused for a *similar* question, when every target
//! is down (`as: "fallback"`) or before asking one (`as: "first"`).
//!
//! Why similar and not identical? The response cache ([`crate::core::cache`]) answers a request only
//! when its bytes match, so "What is the capital of France?" and "what's France's capital" are two
//! misses. The graceful-degradation chain of an LLM app ends, before giving up, with "a cached
//! answer to a similar question": a slightly off answer, marked as such, beats an error page when
//! every provider is failing. Portkey and LiteLLM do this on a server with a vector store; here it
//! runs inside the client, so it works on the device and at the edge, with no service to run.
//!
//! What is similar, and what must be identical? Only the conversation's last user turn (the
//! question) is compared by meaning: its embedding, by cosine similarity against the threshold.
//! Everything else that shapes an answer must match exactly, as a digest ([`key`]): the system
//! prompt, every other message, the tools, the response format, the sampling options, the user, the
//! targets with their models and credentials, and the embedding model (vectors of two models live in
//! different spaces). A false hit answers one question with another's answer, so each doubtful case
//! errs towards a miss: a question with an image is never cached, and neither is an answer that is
//! not a complete text (a tool call, a truncated or filtered answer, see [`storable`]).
//!
//! Which failures may be answered from it ([`answers_failure`])? Those of the whole chain being
//! unable to answer: outages, open breakers, timeouts, the providers' own rate limits and quotas.
//! Not a failure the caller must see: an abort, a budget refusal (no target was asked), a malformed
//! request or bad credentials (the chain stops on those), the client's own rate limit (the app's
//! policy, which a cache must not route around), nor a prompt the provider refused or could not fit
//! (answering a similar prompt would hide that refusal).
//!
//! Search ([`index`]) is exact: the cosine of the question's vector against every stored vector with
//! the same digest, bounded by `maxEntries` and bytes with LRU eviction. At the sizes a client holds
//! (thousands of entries), a scan is fast enough (see the README's figures) and needs no
//! approximate index, which would add code to the wasm and a chance of missing the best entry.

pub mod index;
pub mod key;

pub use index::{normalized, Hit, SemanticIndex, MAX_DIMENSIONS};
pub use key::{
    question, rest_of_request, semantic_key, Question, SemanticKeyParts, TargetIdentity,
};

use crate::core::llm::{Completion, ErrorClass, Outcome};

/// When the semantic cache is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only when the whole chain failed ([`answers_failure`]): the default.
    Fallback,
    /// Before the upstream: a hit is the answer, a miss goes to the chain.
    First,
}

/// `cache.semantic`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticConfig {
    /// Least cosine similarity for a hit, in `0..=1`.
    pub threshold: f32,
    /// The target (by name) that embeds questions; `None`: the first with an embeddings API.
    pub embedding_target: Option<String>,
    /// When to consult it.
    pub mode: Mode,
    /// Most entries kept (least recently used evicted first).
    pub max_entries: usize,
    /// Most bytes kept (vectors, answers and per-entry overhead).
    pub max_bytes: usize,
}

/// Default `maxEntries`.
pub const DEFAULT_MAX_ENTRIES: usize = 1000;
/// Default `maxBytes`: 1,000 answers of a few KB with 1,536-dimension vectors fit with room.
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

impl SemanticConfig {
    /// The defaults around a threshold.
    pub fn new(threshold: f32) -> Self {
        SemanticConfig {
            threshold,
            embedding_target: None,
            mode: Mode::Fallback,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Whether a call that failed this way may be answered from the cache: in `Fallback` mode,
    /// see [`answers_failure`]. (In `First` mode the cache was consulted before the chain, and
    /// missed.)
    pub fn answers_failure(&self, outcomes: &[Outcome]) -> bool {
        self.mode == Mode::Fallback && answers_failure(outcomes)
    }
}

/// Whether a chat call whose targets failed with `outcomes` (one per target tried, in order) may be
/// answered from the semantic cache: the chain ran out of targets, every one of them unable to
/// answer rather than refusing this request (see the module doc). An empty list (no target was
/// asked: a budget refusal, no targets) never qualifies.
pub fn answers_failure(outcomes: &[Outcome]) -> bool {
    !outcomes.is_empty() && outcomes.iter().all(|outcome| is_outage(*outcome))
}

/// A target unable to answer anything for now, as opposed to refusing this request or the caller
/// ending the call.
fn is_outage(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Unavailable => true,
        Outcome::ErrorStatus(class) => matches!(
            class,
            ErrorClass::RateLimited
                | ErrorClass::QuotaExhausted
                | ErrorClass::Overloaded
                | ErrorClass::Server
                | ErrorClass::NotFound
        ),
        Outcome::Aborted | Outcome::ClientLimited | Outcome::Unprepared => false,
    }
}

/// Whether an answer may be stored: a complete text answer (`finish_reason` "stop", no tool calls,
/// some text). A tool call replayed for a similar question would act on the other question's
/// arguments; a truncated or filtered answer is not one to repeat.
pub fn storable(completion: &Completion) -> bool {
    completion.finish_reason == "stop"
        && completion.tool_calls.is_empty()
        && !completion.text.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::{ToolCall, Usage};

    #[test]
    fn which_failures_are_answered() {
        use ErrorClass::*;
        let outage = Outcome::Unavailable;
        let table: &[(&[Outcome], bool)] = &[
            (&[], false),
            (&[outage], true),
            (&[outage, Outcome::ErrorStatus(Server)], true),
            (&[Outcome::ErrorStatus(RateLimited)], true),
            (&[Outcome::ErrorStatus(QuotaExhausted)], true),
            (&[Outcome::ErrorStatus(Overloaded)], true),
            (&[Outcome::ErrorStatus(NotFound), outage], true),
            (&[Outcome::Aborted], false),
            (&[outage, Outcome::Aborted], false),
            (&[Outcome::ClientLimited], false),
            (&[Outcome::Unprepared], false),
            (&[Outcome::ErrorStatus(Auth)], false),
            (&[Outcome::ErrorStatus(BadRequest)], false),
            (&[outage, Outcome::ErrorStatus(ContentPolicy)], false),
            (&[Outcome::ErrorStatus(ContextLength), outage], false),
        ];
        for (outcomes, expected) in table {
            assert_eq!(answers_failure(outcomes), *expected, "{outcomes:?}");
        }
    }

    #[test]
    fn a_chain_run_out_by_outages_qualifies_and_a_stopped_one_does_not() {
        use crate::core::llm::{Chain, Step};
        let mut chain = Chain::new(2).unwrap();
        chain.failed(Outcome::Unavailable, "a");
        let step = chain.failed(Outcome::ErrorStatus(ErrorClass::Server), "b");
        assert_eq!(step, Step::AllFailed(vec!["a", "b"]));
        assert!(answers_failure(chain.outcomes()));
        let mut chain = Chain::new(3).unwrap();
        chain.failed(Outcome::Unavailable, "a");
        let step = chain.failed(Outcome::ErrorStatus(ErrorClass::Auth), "b");
        assert_eq!(step, Step::Stop("b"));
        assert!(!answers_failure(chain.outcomes()));
        // A chain of one ends with that target's own error: it qualifies all the same.
        let mut chain = Chain::new(1).unwrap();
        assert_eq!(chain.failed(Outcome::Unavailable, "a"), Step::Stop("a"));
        assert!(answers_failure(chain.outcomes()));
    }

    #[test]
    fn first_mode_does_not_answer_failures_again() {
        let mut config = SemanticConfig::new(0.9);
        assert!(config.answers_failure(&[Outcome::Unavailable]));
        config.mode = Mode::First;
        assert!(!config.answers_failure(&[Outcome::Unavailable]));
    }

    #[test]
    fn only_complete_text_answers_are_stored() {
        let answer = |text: &str, finish: &str, calls: usize| Completion {
            text: text.to_string(),
            tool_calls: (0..calls)
                .map(|i| ToolCall {
                    id: format!("c{i}"),
                    name: "f".into(),
                    arguments: "{}".into(),
                })
                .collect(),
            finish_reason: finish.to_string(),
            usage: Usage::default(),
        };
        assert!(storable(&answer("Paris.", "stop", 0)));
        assert!(!storable(&answer("Paris.", "length", 0)));
        assert!(!storable(&answer("Paris.", "content_filter", 0)));
        assert!(!storable(&answer("", "stop", 0)));
        assert!(!storable(&answer(" \n", "stop", 0)));
        assert!(!storable(&answer("Let me look.", "stop", 1)));
        assert!(!storable(&answer("", "tool_calls", 1)));
    }
}
