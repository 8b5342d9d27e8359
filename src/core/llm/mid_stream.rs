//! Mid-stream fallback: a `chatStream()` cut past resuming, continued by the next target.
//!
//! A stream cut after its first delta is first resumed on its own target ([`crate::core::resume`]):
//! the same request again, its answer matched against the text already delivered. That needs the
//! target back and a deterministic answer. When it cannot be done (the target is down, the answer
//! differs, resuming is off) and the client opted in (`fallback.midStream`), another target
//! continues the answer instead: it gets the same request plus a final assistant message holding
//! the text already delivered (a *prefill*: [`crate::core::llm::request::with_prefill`]), and all
//! it writes is new text, handed out as it comes. Nothing is matched and nothing is injected: no
//! "please continue" prompt (which LiteLLM hard-codes, in English, and which a model may answer
//! rather than obey). Only a dialect that continues a final assistant message can do it: Anthropic
//! always does; an OpenAI-compatible server does if its target says so (`prefill: true`: llama.cpp,
//! OpenRouter, vLLM with `continue_final_message`; not OpenAI itself, nor DeepSeek and Mistral,
//! which want `prefix: true` on that message). An Anthropic answer to a
//! `responseFormat` is a forced tool's input ([`crate::core::llm::anthropic`]), which a text prefill
//! cannot continue, so it is not a candidate for one.
//!
//! Which target ([`Handover`]): the next one in chain order after the target that was cut that can
//! prefill; if it cannot be reached (its breaker open, its rate limit, an error status: the
//! pipeline's own admission, as for any call), the one after it, and so on; a continuation cut in
//! turn moves on the same way. The chain's [`MAX_TARGETS`] bound them all. Never after a tool-call
//! delta was delivered: a half-written call cannot be continued as text, and a whole one would be
//! written again with another id. An abort, the client-wide rate limit or an invalid request ends
//! the stream, as they end a chain.
//!
//! Whitespace ([`Continuation`]): Anthropic refuses a final assistant message that ends in
//! whitespace, so the prefill is sent without it ([`crate::core::llm::anthropic::sent_prefill`])
//! and the model often writes it again: the continuation's start is matched against what was cut
//! off, and that much is dropped, so the caller never sees it twice.
//!
//! Cost: each target's part is charged to it ([`written_usage`] for the part that was cut, the
//! stream's usage for the last); the budget settles the sum
//! ([`crate::core::llm::charge::settle_parts`]) after holding the continuation's worst case at the
//! move ([`crate::core::llm::charge::hold_more`]): a budget that cannot take it ends the stream.

use crate::core::llm::anthropic::sent_prefill;
use crate::core::llm::charge::reported_or_estimated;
use crate::core::llm::{Outcome, Provider, ToolCall, Usage, MAX_TARGETS};
use crate::core::resume::Delivered;

/// Whether a target of `provider` can continue a prefilled answer: its `prefill` option
/// (`configured`), else its dialect's default (Anthropic yes, OpenAI-compatible no); never an
/// Anthropic answer to a `responseFormat` (see the module doc).
pub fn can_prefill(provider: Provider, configured: Option<bool>, response_format: bool) -> bool {
    match provider {
        Provider::Anthropic => configured.unwrap_or(true) && !response_format,
        Provider::OpenAi => configured.unwrap_or(false),
    }
}

/// Which target continues a cut stream (see the module doc).
#[derive(Debug, Clone)]
pub struct Handover {
    /// Whether each target of the chain (the first [`MAX_TARGETS`]) can prefill.
    capable: Vec<bool>,
}

impl Handover {
    /// Over the chain's targets, each saying whether it can prefill ([`can_prefill`]).
    pub fn new(capable: impl IntoIterator<Item = bool>) -> Handover {
        Handover {
            capable: capable.into_iter().take(MAX_TARGETS).collect(),
        }
    }

    /// The stream written by the target at `writer` was cut past resuming after `delivered` (all
    /// the caller has, every part): the target to continue on, if any.
    pub fn cut(&self, writer: usize, delivered: &Delivered) -> Option<usize> {
        if !delivered.tool_calls.is_empty() || delivered.text.is_empty() {
            return None;
        }
        self.after(writer)
    }

    /// The continuation could not be opened on the target at `index`, failing as `outcome`: the next
    /// target to try, if any (none after a failure that ends a chain).
    pub fn failed(&self, index: usize, outcome: Outcome) -> Option<usize> {
        if !outcome.falls_back() {
            return None;
        }
        self.after(index)
    }

    fn after(&self, index: usize) -> Option<usize> {
        let from = index.saturating_add(1);
        (from..self.capable.len()).find(|&i| self.capable.get(i) == Some(&true))
    }
}

/// What a continuation's stream reader needs: the text earlier targets wrote (all handed out), and
/// the whitespace its prefill was sent without, dropped from the continuation's start if the model
/// writes it again (see the module doc). The default continues nothing: a stream of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Continuation {
    before: String,
    /// The whitespace cut off the prefill.
    cut: String,
    /// Bytes of `cut` matched so far; `None` once the continuation went past it.
    matched: Option<usize>,
    /// Bytes dropped from the continuation's start.
    dropped: usize,
}

impl Continuation {
    /// Continuing `before` on a target of `provider`.
    pub fn after(before: String, provider: Provider) -> Continuation {
        let sent = match provider {
            Provider::Anthropic => sent_prefill(&before).len(),
            Provider::OpenAi => before.len(),
        };
        let cut = before.get(sent..).unwrap_or_default().to_string();
        Continuation {
            matched: (!cut.is_empty()).then_some(0),
            before,
            cut,
            dropped: 0,
        }
    }

    /// The text earlier targets wrote.
    pub fn before(&self) -> &str {
        &self.before
    }

    /// The part of the continuation's next `text` to hand out: all of it, but for the start of the
    /// continuation that repeats the whitespace cut off the prefill.
    pub fn fresh<'t>(&mut self, text: &'t str) -> &'t str {
        let Some(at) = self.matched else {
            return text;
        };
        let expected = self.cut.get(at..).unwrap_or_default();
        let common: usize = text
            .chars()
            .zip(expected.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a.len_utf8())
            .sum();
        self.dropped += common;
        let whole = common == text.len() && at + common < self.cut.len();
        self.matched = whole.then_some(at + common);
        text.get(common..).unwrap_or_default()
    }

    /// The whole answer so far, given the continuation's own text (`own`, as its stream wrote it).
    pub fn whole(&self, own: &str) -> String {
        let mut text = self.before.clone();
        text.push_str(own.get(self.dropped..).unwrap_or_default());
        text
    }
}

/// What a cut stream used: as a stream that ended ([`reported_or_estimated`]), but never fewer
/// output tokens than the estimate of what it `generated` (a cut stream reports its input, and
/// Anthropic's a first output token, but not what it wrote after).
pub fn written_usage(reported: Usage, input: u64, generated: (&str, &[ToolCall])) -> Usage {
    let estimated = reported_or_estimated(Usage::default(), input, generated);
    let usage = reported_or_estimated(reported, input, generated);
    Usage {
        output_tokens: usage.output_tokens.max(estimated.output_tokens),
        ..usage
    }
}

/// What an answer's parts used together.
pub fn total(usages: impl IntoIterator<Item = Usage>) -> Usage {
    usages.into_iter().fold(Usage::default(), |sum, u| Usage {
        input_tokens: sum.input_tokens.saturating_add(u.input_tokens),
        output_tokens: sum.output_tokens.saturating_add(u.output_tokens),
        cached_input_tokens: sum
            .cached_input_tokens
            .saturating_add(u.cached_input_tokens),
        cache_write_tokens: sum.cache_write_tokens.saturating_add(u.cache_write_tokens),
    })
}

/// What each part of an answer cost, given every upstream answer's cost in order and whether its
/// text was kept in the answer: an answer not kept (a cut one resumed on its target) is paid with the
/// kept part that follows it, the one that replaced it. One entry per kept answer, in order.
pub fn part_costs(answers: impl IntoIterator<Item = (bool, u64)>) -> Vec<u64> {
    let mut pending = 0u64;
    let mut costs = Vec::new();
    for (kept, cost) in answers {
        pending = pending.saturating_add(cost);
        if kept {
            costs.push(std::mem::take(&mut pending));
        }
    }
    costs
}

/// Each part's range of `text` in UTF-16 code units (what JavaScript's `text.slice` counts), from
/// the byte offsets where each part ends (in order; the last is `text`'s end).
pub fn utf16_ranges(text: &str, ends: &[usize]) -> Vec<(usize, usize)> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let prefix = text.get(..end).unwrap_or(text);
            let end = prefix.encode_utf16().count();
            let range = (start.min(end), end);
            start = end;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::ErrorClass;

    fn delivered(text: &str) -> Delivered {
        Delivered {
            text: text.into(),
            tool_calls: Vec::new(),
        }
    }

    #[test]
    fn who_can_prefill() {
        use Provider::*;
        let table = [
            (Anthropic, None, false, true),
            (Anthropic, Some(false), false, false),
            (Anthropic, None, true, false),
            (OpenAi, None, false, false),
            (OpenAi, Some(true), false, true),
            (OpenAi, Some(true), true, true),
        ];
        for (provider, configured, format, can) in table {
            assert_eq!(
                can_prefill(provider, configured, format),
                can,
                "{provider:?} {configured:?} {format}"
            );
        }
    }

    #[test]
    fn the_next_target_that_can_prefill_continues_in_chain_order() {
        // openai (no prefill), openai (no prefill), anthropic, openai with prefill.
        let handover = Handover::new([false, false, true, true]);
        assert_eq!(handover.cut(0, &delivered("Hel")), Some(2));
        assert_eq!(handover.cut(1, &delivered("Hel")), Some(2));
        // A continuation cut in turn moves on; the last has none after it.
        assert_eq!(handover.cut(2, &delivered("Hello")), Some(3));
        assert_eq!(handover.cut(3, &delivered("Hello")), None);
        // Out (an open breaker, an outage, a quota): the next one.
        assert_eq!(handover.failed(2, Outcome::Unavailable), Some(3));
        let quota = Outcome::ErrorStatus(ErrorClass::QuotaExhausted);
        assert_eq!(handover.failed(2, quota), Some(3));
        // An abort, the client-wide limit, a request no target would take: no continuation.
        for stop in [
            Outcome::Aborted,
            Outcome::ClientLimited,
            Outcome::Unprepared,
            Outcome::ErrorStatus(ErrorClass::Auth),
        ] {
            assert_eq!(handover.failed(2, stop), None, "{stop:?}");
        }
    }

    #[test]
    fn never_after_a_tool_call_delta_nor_past_the_chain_bound() {
        let handover = Handover::new([true; 8]);
        let mut with_call = delivered("Looking it up.");
        with_call.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: "{\"ci".into(),
        });
        assert_eq!(handover.cut(0, &with_call), None);
        assert_eq!(handover.cut(0, &delivered("")), None);
        // Only the chain's first MAX_TARGETS targets are ever asked.
        let mut writer = 0;
        let mut moves = 0;
        while let Some(next) = handover.cut(writer, &delivered("x")) {
            writer = next;
            moves += 1;
        }
        assert_eq!((writer, moves), (MAX_TARGETS - 1, MAX_TARGETS - 1));
        assert_eq!(handover.failed(usize::MAX, Outcome::Unavailable), None);
    }

    #[test]
    fn whitespace_cut_off_an_anthropic_prefill_is_not_handed_out_twice() {
        // Sent "Hello," (the API refuses trailing whitespace); the model writes " world" again.
        let mut c = Continuation::after("Hello, ".into(), Provider::Anthropic);
        assert_eq!(c.before(), "Hello, ");
        assert_eq!(c.fresh(" world"), "world");
        assert_eq!(c.fresh(" again"), " again");
        assert_eq!(c.whole(" world again"), "Hello, world again");
        // Split anywhere: a newline pair written one at a time, then the text.
        let mut c = Continuation::after("Line\n\n".into(), Provider::Anthropic);
        assert_eq!(c.fresh("\n"), "");
        assert_eq!(c.fresh("\nNext"), "Next");
        assert_eq!(c.whole("\n\nNext"), "Line\n\nNext");
        // A continuation that does not repeat it, or repeats only part of it.
        let mut c = Continuation::after("Line\n\n".into(), Provider::Anthropic);
        assert_eq!(c.fresh("Next"), "Next");
        assert_eq!(c.whole("Next"), "Line\n\nNext");
        let mut c = Continuation::after("A \u{3000}".into(), Provider::Anthropic);
        assert_eq!(c.fresh(" x"), "x");
        assert_eq!(c.whole(" x"), "A \u{3000}x");
        // An OpenAI-compatible prefill is sent whole: nothing is dropped.
        let mut c = Continuation::after("Hello, ".into(), Provider::OpenAi);
        assert_eq!(c.fresh(" world"), " world");
        // The default continues nothing.
        let mut own = Continuation::default();
        assert_eq!(own.fresh(" a"), " a");
        assert_eq!(own.whole(" a"), " a");
    }

    #[test]
    fn a_cut_part_is_charged_at_least_what_it_wrote() {
        let text = "a".repeat(40);
        // Anthropic's message_start: the input and one output token.
        let started = Usage {
            input_tokens: 30,
            output_tokens: 1,
            ..Usage::default()
        };
        let usage = written_usage(started, 99, (&text, &[]));
        assert_eq!((usage.input_tokens, usage.output_tokens), (30, 10));
        // Nothing reported (an OpenAI stream reports usage at its end): the estimate.
        let usage = written_usage(Usage::default(), 99, (&text, &[]));
        assert_eq!((usage.input_tokens, usage.output_tokens), (99, 10));
    }

    #[test]
    fn parts_are_ranges_in_utf16_code_units() {
        let text = "h\u{e9}\u{1f600}|rest";
        let first = "h\u{e9}\u{1f600}|".len();
        assert_eq!(
            utf16_ranges(text, &[first, text.len()]),
            vec![(0, 5), (5, 9)]
        );
        // Hostile offsets do not panic.
        assert_eq!(utf16_ranges(text, &[2, usize::MAX]), vec![(0, 9), (9, 9)]);
    }
}
