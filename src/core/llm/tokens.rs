//! A pre-flight token estimate, good enough to reserve budget and rate-limit capacity before a call.
//!
//! Why not a real tokenizer? Each model family has its own (OpenAI's `o200k_base`, Anthropic's
//! unpublished one); their vocabularies weigh megabytes, far more than this whole crate's wasm, and
//! would still be wrong for the other providers in a fallback chain. The estimate only has to size
//! a reservation: the providers report exact counts in `usage`, and the budget and the
//! tokens-per-minute limiter are settled from those once the call ends, so an estimate error lasts
//! one call, never accumulates.

use super::request::{Message, Part, Tool};

/// Tokens added per message for the role and the chat framing around it (OpenAI documents 3-4).
pub const TOKENS_PER_MESSAGE: u64 = 4;

/// Tokens counted per image, whatever its size (the estimate cannot see pixels: an image is a URL
/// or base64 data here). 1,600 is Anthropic's figure for a large image (about `width × height /
/// 750`, images past ~1.15 megapixels scaled down to it) and above OpenAI's high-detail cost for
/// usual sizes (85 + 170 per 512-pixel tile: 765 for 1024×1024, 1,105 for 768×1536): a
/// reservation should hold the worst case, and the usage reported settles it to the real count.
pub const TOKENS_PER_IMAGE: u64 = 1_600;

/// The default token estimate: `ceil(chars / 4)` over all the text the request sends (characters,
/// not bytes) plus [`TOKENS_PER_MESSAGE`] per message and [`TOKENS_PER_IMAGE`] per image. The text
/// is the messages' text parts (tool results included), the tool calls' names and arguments, and
/// the tools' names, descriptions and parameter schemas as JSON text (the providers count the
/// schemas as prompt: a few tools with rich schemas can outweigh a short conversation).
///
/// Four characters per token is OpenAI's rule of thumb for English. On real English prose it is
/// typically within about ±25% of the true count (more words per token in plain prose, fewer in
/// text full of numbers, names or punctuation). It is much further off elsewhere: source code and
/// JSON often run at 2-3 characters per token, and Chinese, Japanese or Korean text at about one
/// token per character or more, i.e. up to 4× *more* tokens than estimated. That is why it is only
/// a pre-flight figure: reserve with it plus the full `max_tokens` of output (which usually
/// dominates), then settle from the usage the provider reports. Callers who know their traffic
/// can pass their own estimate instead.
pub fn estimate_tokens(messages: &[Message], tools: &[Tool]) -> u64 {
    let chars = |text: &str| text.chars().count() as u64;
    let mut text = 0u64;
    let mut images = 0u64;
    for message in messages {
        for part in &message.content {
            match part {
                Part::Text(t) => text = text.saturating_add(chars(t)),
                Part::Image(_) => images += 1,
            }
        }
        for call in &message.tool_calls {
            text = text.saturating_add(chars(&call.name) + chars(&call.arguments));
        }
    }
    for tool in tools {
        let description = tool.description.as_deref().unwrap_or_default();
        text =
            text.saturating_add(chars(&tool.name) + chars(description) + chars(&tool.parameters));
    }
    let framing = (messages.len() as u64).saturating_mul(TOKENS_PER_MESSAGE);
    text.div_ceil(4)
        .saturating_add(framing)
        .saturating_add(images.saturating_mul(TOKENS_PER_IMAGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::request::{Role, ToolCall};

    fn msg(content: &str) -> Message {
        Message::text(Role::User, content)
    }

    fn estimate(messages: &[Message]) -> u64 {
        estimate_tokens(messages, &[])
    }

    #[test]
    fn chars_over_four_rounded_up_plus_framing() {
        assert_eq!(estimate(&[]), 0);
        assert_eq!(estimate(&[msg("")]), 4);
        assert_eq!(estimate(&[msg("abcd")]), 5);
        assert_eq!(estimate(&[msg("abcde")]), 6);
        // Rounded over the total, not per message.
        assert_eq!(estimate(&[msg("ab"), msg("cd")]), 1 + 8);
        // Characters, not bytes.
        assert_eq!(estimate(&[msg("ééééé")]), 2 + 4);
        assert_eq!(estimate(&[msg("你好世界")]), 1 + 4);
    }

    #[test]
    fn close_on_english_prose() {
        // Plain prose: 4-5 characters per token with OpenAI's and Anthropic's tokenizers.
        let text = "The quick brown fox jumps over the lazy dog. Resilient clients retry \
                    failed calls with backoff, stop hammering a provider that is down, and fall \
                    back to another one when the first is out of quota or overloaded for long.";
        let estimate = estimate(&[msg(text)]) - TOKENS_PER_MESSAGE;
        let chars = text.chars().count() as u64;
        assert_eq!(estimate, chars.div_ceil(4));
        assert!((40..=70).contains(&estimate), "{estimate}");
    }

    #[test]
    fn tools_tool_calls_results_and_images_count() {
        let tool = Tool {
            name: "time".into(),
            description: Some("now".into()),
            parameters: r#"{"type":"object"}"#.into(),
            cache: false,
        };
        // 4 + 3 + 17 characters.
        assert_eq!(estimate_tokens(&[], &[tool]), 6);
        let mut call = Message::text(Role::Assistant, "");
        call.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "time".into(),
            arguments: r#"{"city":"Oslo"}"#.into(),
        });
        // The id is not prompt text; 4 + 15 characters.
        assert_eq!(estimate(&[call]), 5 + 4);
        let mut result = Message::text(Role::Tool, "12:00");
        result.tool_call_id = Some("call_1".into());
        assert_eq!(estimate(&[result]), 2 + 4);
        let mut image = msg("abcd");
        image.content.push(Part::Image("https://x/y.png".into()));
        image
            .content
            .push(Part::Image("data:image/png;base64,AAAA".into()));
        assert_eq!(estimate(&[image]), 1 + 4 + 2 * TOKENS_PER_IMAGE);
    }
}
