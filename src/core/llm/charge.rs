//! What a chat call holds before it runs and what it pays after, decided once for `chat()` and
//! `chatStream()` alike.
//!
//! A call holds its worst case in the [`Ledger`] before the first attempt (see [`crate::core::llm::budget`]
//! for why): its estimated input plus its `maxTokens` of output ([`DEFAULT_MAX_OUTPUT`] when it sets
//! none), priced at the dearest target it may reach, since the chain may end on any of them; the
//! input of a request marked for the prompt cache at the dearer of the input and cache-write
//! prices (it may write all of it). Prompt-cache tokens count as the providers bill them: every one is a token in the
//! token caps (a cache read is still read), and the cost caps see the discounted cost. When
//! it ends, the hold is replaced by what the answering target really used and cost, which is also
//! tallied per model and user; an answer that made no upstream call of its own (a cache hit, a
//! stream shared with an identical request) is free and only gives its hold back. A call that
//! failed before any answer started gives its hold back; a stream that failed or was cancelled
//! after its answer started is charged what its answers used, as providers bill what they
//! generated whether or not it was delivered (an estimate: see below). A settlement that takes the user's tightest cap across 80% or 100% is
//! reported once, for the `budget` event. A stream that reported no usage is charged an estimate:
//! the input estimate, and a token per 4 characters generated.

use crate::core::llm::{
    cost_micros, saved_micros, Cap, CostTally, Exceeded, Hold, Ledger, Pricing, Spend, ToolCall,
    Usage,
};

/// Output tokens assumed for a budget's worst case when the request sets no `maxTokens`.
pub const DEFAULT_MAX_OUTPUT: u64 = 1024;

/// How full a cap is, in per mille, when the `budget` event reports crossing it.
const MARKS: [u64; 2] = [800, 1000];

/// Holds the worst case of a call of `input` tokens (the request's
/// [`estimate_tokens`](crate::core::llm::estimate_tokens)) with `max_tokens`, `marked` for the
/// prompt cache or not ([`has_cache_marks`](crate::core::llm::request::has_cache_marks)), for
/// `user` at wall time `now_ms`, priced at the dearest of `prices`; what cap it would pass
/// otherwise.
pub fn hold<'p>(
    ledger: &mut Ledger,
    user: &str,
    call: (u64, Option<u32>, bool),
    prices: impl IntoIterator<Item = &'p Pricing>,
    now_ms: u64,
) -> Result<Hold, Exceeded> {
    let (tokens, cost) = worst_case(call, &mut prices.into_iter());
    ledger.reserve(user, tokens, cost, now_ms)
}

/// Adds to `hold` the worst case of one more upstream call of the same call (a mid-stream
/// fallback's continuation: its input, prefill included, and its output), as [`hold`] reckons it;
/// what cap it would pass otherwise (the hold is then unchanged).
pub fn hold_more<'p>(
    ledger: &mut Ledger,
    hold: &mut Hold,
    call: (u64, Option<u32>, bool),
    prices: impl IntoIterator<Item = &'p Pricing>,
    now_ms: u64,
) -> Result<(), Exceeded> {
    let (tokens, cost) = worst_case(call, &mut prices.into_iter());
    ledger.extend(hold, tokens, cost, now_ms)
}

/// The tokens and the cost (micro-dollars) a call of `input` tokens with `max_tokens`, `marked` for
/// the prompt cache or not, may use at most, at the dearest of `prices` (not generic: one copy in
/// the wasm for every caller).
fn worst_case(
    (input, max_tokens, marked): (u64, Option<u32>, bool),
    prices: &mut dyn Iterator<Item = &Pricing>,
) -> (u64, u64) {
    let worst = Usage {
        input_tokens: input,
        output_tokens: max_tokens.map_or(DEFAULT_MAX_OUTPUT, u64::from),
        ..Usage::default()
    };
    let written = Usage {
        cache_write_tokens: if marked { input } else { 0 },
        ..worst
    };
    let cost = prices
        .flat_map(|pricing| [cost_micros(pricing, &worst), cost_micros(pricing, &written)])
        .max()
        .unwrap_or(0);
    (worst.input_tokens.saturating_add(worst.output_tokens), cost)
}

/// What an answered call is charged for.
pub struct Charge<'a> {
    /// Whose budget.
    pub user: &'a str,
    /// The answering target's model (for the tally).
    pub model: &'a str,
    /// The answering target's prices.
    pub pricing: &'a Pricing,
    /// What the answer used.
    pub usage: Usage,
    /// No upstream call of its own (a cache hit, a shared stream): costs nothing.
    pub free: bool,
}

/// A settled call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The call's cost, in micro-dollars.
    pub cost_micros: u64,
    /// The cap this settlement took across 80% or 100%, and how full it now is (per mille).
    pub crossed: Option<(Cap, u64)>,
}

/// Replaces `hold` with what the call used (see the module doc) and tallies its cost.
pub fn settle(
    ledger: Option<&mut Ledger>,
    tally: &mut CostTally,
    hold: Option<Hold>,
    charge: Charge,
    now_ms: u64,
) -> Settled {
    settle_parts(ledger, tally, hold, &[charge], now_ms).0
}

/// [`settle`] for an answer written in parts by several targets (a mid-stream fallback): each part
/// tallied to its own model, the hold replaced once by their sum. Returns the settlement (the sum's
/// cost) and each part's cost, in micro-dollars.
pub fn settle_parts(
    ledger: Option<&mut Ledger>,
    tally: &mut CostTally,
    hold: Option<Hold>,
    charges: &[Charge],
    now_ms: u64,
) -> (Settled, Vec<u64>) {
    let mut costs = Vec::with_capacity(charges.len());
    let (mut tokens, mut micros) = (0u64, 0u64);
    for charge in charges {
        if charge.free {
            costs.push(0);
            continue;
        }
        let usage = &charge.usage;
        let cost = cost_micros(charge.pricing, usage);
        let spend = Spend {
            usage: *usage,
            micros: cost,
            saved_micros: saved_micros(charge.pricing, usage),
        };
        tally.add(charge.model, charge.user, &spend);
        costs.push(cost);
        tokens = tokens.saturating_add(usage.input_tokens.saturating_add(usage.output_tokens));
        micros = micros.saturating_add(cost);
    }
    let settled = Settled {
        cost_micros: micros,
        crossed: None,
    };
    if charges.iter().all(|charge| charge.free) {
        release(ledger, hold);
        return (settled, costs);
    }
    let (Some(ledger), Some(hold), Some(first)) = (ledger, hold, charges.first()) else {
        return (settled, costs);
    };
    let before = ledger.usage_per_mille_without(&hold, now_ms);
    ledger.settle(hold, tokens, micros);
    let crossed = ledger
        .usage_per_mille(first.user, now_ms)
        .filter(|&(_, used)| {
            let was = before.map_or(0, |(_, used)| used);
            MARKS.iter().any(|&mark| was < mark && used >= mark)
        });
    (Settled { crossed, ..settled }, costs)
}

/// Gives a failed call's hold back.
pub fn release(ledger: Option<&mut Ledger>, hold: Option<Hold>) {
    if let (Some(ledger), Some(hold)) = (ledger, hold) {
        ledger.release(hold);
    }
}

/// A streamed answer's usage: what the stream `reported`, or where it reported none, the `input`
/// estimate and a token per 4 characters generated (the `text` and the tool calls' names and
/// arguments).
pub fn reported_or_estimated(
    reported: Usage,
    input: u64,
    (text, tool_calls): (&str, &[ToolCall]),
) -> Usage {
    if reported.input_tokens.saturating_add(reported.output_tokens) > 0 {
        return reported;
    }
    let chars = |s: &str| s.chars().count() as u64;
    let generated = tool_calls.iter().fold(chars(text), |sum, call| {
        sum.saturating_add(chars(&call.name) + chars(&call.arguments))
    });
    Usage {
        input_tokens: input,
        output_tokens: generated.div_ceil(4),
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::BudgetConfig;

    /// Parts written by two targets: each tallied to its model at its price, the budget settled once
    /// with the sum (the hold extended at the move covers both).
    #[test]
    fn an_answer_in_parts_is_charged_per_target_and_settled_as_one() {
        let mut ledger = Ledger::new(BudgetConfig {
            per_user_daily_tokens: Some(10_000),
            ..BudgetConfig::default()
        });
        let cheap = Pricing {
            input_micros_per_mtok: 1_000_000,
            output_micros_per_mtok: 2_000_000,
            ..Pricing::default()
        };
        let dear = Pricing {
            input_micros_per_mtok: 3_000_000,
            output_micros_per_mtok: 15_000_000,
            ..Pricing::default()
        };
        let mut held = hold(
            &mut ledger,
            "u",
            (100, Some(200), false),
            [&cheap, &dear],
            0,
        )
        .expect("room");
        assert_eq!(held.tokens(), 300);
        hold_more(&mut ledger, &mut held, (120, Some(200), false), [&dear], 0).expect("room");
        assert_eq!(held.tokens(), 620);
        let usage = |input, output| Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        };
        let charges = [
            Charge {
                user: "u",
                model: "first",
                pricing: &cheap,
                usage: usage(100, 10),
                free: false,
            },
            Charge {
                user: "u",
                model: "second",
                pricing: &dear,
                usage: usage(120, 40),
                free: false,
            },
        ];
        let mut tally = CostTally::default();
        let (settled, costs) = settle_parts(Some(&mut ledger), &mut tally, Some(held), &charges, 0);
        assert_eq!(costs, vec![120, 960]);
        assert_eq!(settled.cost_micros, 1080);
        assert_eq!(ledger.spent("u", 0).0, 270);
    }

    /// An upstream's counts are hostile: `u64::MAX` input tokens and one output token overflowed
    /// the sum (a panic with overflow checks, else a wrap to 0 that dropped the reported usage).
    #[test]
    fn a_hostile_reported_usage_is_kept_without_overflow() {
        let reported = Usage {
            input_tokens: u64::MAX,
            output_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(reported_or_estimated(reported, 5, ("abcd", &[])), reported);
        let estimated = reported_or_estimated(Usage::default(), 5, ("abcde", &[]));
        assert_eq!((estimated.input_tokens, estimated.output_tokens), (5, 2));
    }
}
