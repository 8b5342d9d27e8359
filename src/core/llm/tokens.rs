//! A pre-flight token estimate, good enough to reserve budget and rate-limit capacity before a call.
//!
//! Why not a real tokenizer? Each model family has its own (OpenAI's `o200k_base`, Anthropic's
//! unpublished one); their vocabularies weigh megabytes, far more than this whole crate's wasm, and
//! would still be wrong for the other providers in a fallback chain. The estimate only has to size
//! a reservation: the providers report exact counts in `usage`, and the budget and the
//! tokens-per-minute limiter are settled from those once the call ends, so an estimate error lasts
//! one call, never accumulates.

use super::provider::Message;

/// Tokens added per message for the role and the chat framing around it (OpenAI documents 3-4).
pub const TOKENS_PER_MESSAGE: u64 = 4;

/// The default token estimate: `ceil(chars / 4)` over all message contents (characters, not
/// bytes) plus [`TOKENS_PER_MESSAGE`] per message.
///
/// Four characters per token is OpenAI's rule of thumb for English. On real English prose it is
/// typically within about ±25% of the true count (more words per token in plain prose, fewer in
/// text full of numbers, names or punctuation). It is much further off elsewhere: source code and
/// JSON often run at 2-3 characters per token, and Chinese, Japanese or Korean text at about one
/// token per character or more, i.e. up to 4× *more* tokens than estimated. That is why it is only
/// a pre-flight figure: reserve with it plus the full `max_tokens` of output (which usually
/// dominates), then settle from the usage the provider reports. Callers who know their traffic
/// can pass their own estimate instead.
pub fn estimate_tokens(messages: &[Message]) -> u64 {
    let chars = messages.iter().fold(0u64, |sum, m| {
        sum.saturating_add(m.content.chars().count() as u64)
    });
    let framing = (messages.len() as u64).saturating_mul(TOKENS_PER_MESSAGE);
    chars.div_ceil(4).saturating_add(framing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::provider::Role;

    fn msg(content: &str) -> Message {
        Message {
            role: Role::User,
            content: content.to_string(),
        }
    }

    #[test]
    fn chars_over_four_rounded_up_plus_framing() {
        assert_eq!(estimate_tokens(&[]), 0);
        assert_eq!(estimate_tokens(&[msg("")]), 4);
        assert_eq!(estimate_tokens(&[msg("abcd")]), 5);
        assert_eq!(estimate_tokens(&[msg("abcde")]), 6);
        // Rounded over the total, not per message.
        assert_eq!(estimate_tokens(&[msg("ab"), msg("cd")]), 1 + 8);
        // Characters, not bytes.
        assert_eq!(estimate_tokens(&[msg("ééééé")]), 2 + 4);
        assert_eq!(estimate_tokens(&[msg("你好世界")]), 1 + 4);
    }

    #[test]
    fn close_on_english_prose() {
        // Plain prose: 4-5 characters per token with OpenAI's and Anthropic's tokenizers.
        let text = "The quick brown fox jumps over the lazy dog. Resilient clients retry \
                    failed calls with backoff, stop hammering a provider that is down, and fall \
                    back to another one when the first is out of quota or overloaded for long.";
        let estimate = estimate_tokens(&[msg(text)]) - TOKENS_PER_MESSAGE;
        let chars = text.chars().count() as u64;
        assert_eq!(estimate, chars.div_ceil(4));
        assert!((40..=70).contains(&estimate), "{estimate}");
    }
}
