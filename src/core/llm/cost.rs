//! What calls cost, in integer micro-dollars, and running totals per model and per user.
//!
//! Prompt-cache tokens are priced apart: a cache read at [`Pricing::cached_input_micros_per_mtok`]
//! and a cache write at [`Pricing::cache_write_micros_per_mtok`], the rest of the prompt at the
//! input price. A target that names no cache prices gets [`cache_prices`]: Anthropic's, which are
//! one rule for every Claude model (a read at a tenth of the input price, a five-minute write at
//! 1.25 times it), and for OpenAI-compatible servers the plain input price, since their discount
//! differs by model and by server (50% to 90% off): the cost is then never understated, only the
//! saving left out until the target names its price. What caching saved is reported beside the
//! cost: the call priced as if nothing had been cached, minus what it cost (a write costs more than
//! it saves on its first call, so a saving may be negative).
//!
//! Why integers? Prices are quoted in dollars per million tokens with at most a few decimals
//! ($0.15, $2.50, $15), so micro-dollars per million tokens represent them exactly, and a cost is
//! one multiplication and one division, rounded up so that many small calls never add up to less
//! than they cost. No float error accumulates in a total, and no float formatting reaches the wasm.
//!
//! Why bounded? The tally lives as long as the client, and user ids come from the caller: a
//! per-user map must not grow without limit. The least recently charged users are dropped from it
//! beyond [`MAX_USERS`] (the grand total keeps their spend); models are bounded the same way by
//! [`MAX_MODELS`]. A long user id or model name is kept as its [`bounded_key`] (at most 138 bytes),
//! so the bound holds in bytes as well.

use crate::core::bounded_key::bounded_key;
use crate::core::llm::Provider;
use crate::core::ordered_keys::OrderedKeys;
use crate::core::sorted_map::SortedMap;
use crate::core::stream::Usage;
use crate::core::wide;

/// Users kept in [`CostTally::by_user`] by default.
pub const MAX_USERS: usize = 10_000;
/// Models kept in [`CostTally::by_model`].
pub const MAX_MODELS: usize = 1_000;

/// A model's price: dollars per million tokens × 1 000 000 (so $2.50 / Mtok is `2_500_000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pricing {
    /// Per million input (prompt) tokens, in micro-dollars.
    pub input_micros_per_mtok: u64,
    /// Per million output (generated) tokens, in micro-dollars.
    pub output_micros_per_mtok: u64,
    /// Per million prompt tokens read from the provider's prompt cache, in micro-dollars.
    pub cached_input_micros_per_mtok: u64,
    /// Per million prompt tokens written to the provider's prompt cache, in micro-dollars.
    pub cache_write_micros_per_mtok: u64,
}

impl Pricing {
    /// These prices with cache reads and writes at the plain input price: what a call would have
    /// cost without the prompt cache.
    pub fn uncached(&self) -> Pricing {
        Pricing {
            cached_input_micros_per_mtok: self.input_micros_per_mtok,
            cache_write_micros_per_mtok: self.input_micros_per_mtok,
            ..*self
        }
    }
}

/// The cache-read and cache-write prices a target of `provider` with input price `input` gets
/// when it names none (see the module doc): Anthropic's × 0.1 and × 1.25 (rounded up), else
/// `input` for both.
pub fn cache_prices(provider: Provider, input: u64) -> (u64, u64) {
    match provider {
        Provider::Anthropic => (input.div_ceil(10), input.saturating_add(input.div_ceil(4))),
        Provider::OpenAi => (input, input),
    }
}

/// The cost of `usage` in micro-dollars: every token count times its price, over 10⁶, rounded
/// up once, saturating at `u64::MAX`. The prompt tokens neither read from nor written to the cache
/// are at the input price (a count of cache tokens above the prompt's, which only a broken server
/// sends, leaves none there).
pub fn cost_micros(pricing: &Pricing, usage: &Usage) -> u64 {
    let plain = usage
        .input_tokens
        .saturating_sub(usage.cached_input_tokens)
        .saturating_sub(usage.cache_write_tokens);
    let total = [
        (plain, pricing.input_micros_per_mtok),
        (usage.output_tokens, pricing.output_micros_per_mtok),
        (
            usage.cached_input_tokens,
            pricing.cached_input_micros_per_mtok,
        ),
        (
            usage.cache_write_tokens,
            pricing.cache_write_micros_per_mtok,
        ),
    ]
    .into_iter()
    .fold(0u128, |sum, (tokens, price)| {
        sum.saturating_add(u128::from(tokens) * u128::from(price))
    });
    u64::try_from(wide::div_ceil(total, 1_000_000)).unwrap_or(u64::MAX)
}

/// What caching saved on a call of `usage` at `pricing`, in micro-dollars: its cost at
/// [`Pricing::uncached`] minus its cost (negative when writes cost more than reads saved).
pub fn saved_micros(pricing: &Pricing, usage: &Usage) -> i64 {
    let without = i128::from(cost_micros(&pricing.uncached(), usage));
    let with = i128::from(cost_micros(pricing, usage));
    let saved = without - with;
    i64::try_from(saved).unwrap_or(if saved < 0 { i64::MIN } else { i64::MAX })
}

/// What a key used and paid, and what the prompt cache saved it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    /// Tokens.
    pub usage: Usage,
    /// Cost, in micro-dollars.
    pub micros: u64,
    /// Saved by the prompt cache, in micro-dollars ([`saved_micros`]).
    pub saved_micros: i64,
}

impl Spend {
    fn add(&mut self, other: &Spend) {
        let (mine, theirs) = (&mut self.usage, &other.usage);
        mine.input_tokens = mine.input_tokens.saturating_add(theirs.input_tokens);
        mine.output_tokens = mine.output_tokens.saturating_add(theirs.output_tokens);
        mine.cached_input_tokens = mine
            .cached_input_tokens
            .saturating_add(theirs.cached_input_tokens);
        mine.cache_write_tokens = mine
            .cache_write_tokens
            .saturating_add(theirs.cache_write_tokens);
        self.micros = self.micros.saturating_add(other.micros);
        self.saved_micros = self.saved_micros.saturating_add(other.saved_micros);
    }
}

/// Usage and cost of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    spend: Spend,
    /// When last charged, in [`CostTally`] ticks.
    tick: u64,
}

/// Entries by key, at most `limit`, the least recently charged dropped first.
#[derive(Debug, Clone, Default)]
struct Bounded {
    limit: usize,
    /// By key: kept sorted for the reports (no sort code in the wasm).
    entries: SortedMap<String, Entry>,
    /// Key of each entry by its last tick: the first is the least recently charged.
    by_tick: OrderedKeys<u64>,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Bounded {
            limit,
            ..Bounded::default()
        }
    }

    fn add(&mut self, key: &str, spend: &Spend, tick: u64) {
        let key = &*bounded_key(key);
        match self.entries.get_mut(key) {
            Some(entry) => {
                self.by_tick.remove(&entry.tick);
                entry.spend.add(spend);
                entry.tick = tick;
            }
            None => {
                let entry = Entry {
                    spend: *spend,
                    tick,
                };
                self.entries.insert(key.to_string(), entry);
            }
        }
        self.by_tick.insert(tick, key.to_string());
        while self.entries.len() > self.limit {
            let Some(oldest) = self.by_tick.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    fn sorted(&self) -> Vec<(String, Spend)> {
        self.entries
            .iter()
            .map(|(key, e)| (key.clone(), e.spend))
            .collect()
    }
}

/// Running totals: overall, per model and per user (see the module doc for the bounds).
#[derive(Debug, Clone)]
pub struct CostTally {
    total: Spend,
    models: Bounded,
    users: Bounded,
    tick: u64,
}

impl Default for CostTally {
    fn default() -> Self {
        CostTally::with_max_users(MAX_USERS)
    }
}

impl CostTally {
    /// An empty tally keeping at most [`MAX_USERS`] users.
    pub fn new() -> Self {
        CostTally::default()
    }

    /// An empty tally keeping at most `max_users` users (0: no per-user figures at all).
    pub fn with_max_users(max_users: usize) -> Self {
        CostTally {
            total: Spend::default(),
            models: Bounded::new(MAX_MODELS),
            users: Bounded::new(max_users),
            tick: 0,
        }
    }

    /// Counts one call's usage, cost and saving (saturating).
    pub fn add(&mut self, model: &str, user: &str, spend: &Spend) {
        self.tick += 1;
        self.total.add(spend);
        self.models.add(model, spend, self.tick);
        self.users.add(user, spend, self.tick);
    }

    /// All calls ever counted.
    pub fn total(&self) -> Spend {
        self.total
    }

    /// `(model, spend)` sorted by model.
    pub fn by_model(&self) -> Vec<(String, Spend)> {
        self.models.sorted()
    }

    /// `(user, spend)` sorted by user, for the users still kept.
    pub fn by_user(&self) -> Vec<(String, Spend)> {
        self.users.sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    fn spend(input_tokens: u64, output_tokens: u64, micros: u64) -> Spend {
        Spend {
            usage: usage(input_tokens, output_tokens),
            micros,
            saved_micros: 0,
        }
    }

    fn price(input: u64, output: u64) -> Pricing {
        Pricing {
            input_micros_per_mtok: input,
            output_micros_per_mtok: output,
            ..Pricing::default()
        }
    }

    #[test]
    fn costs_round_up_and_saturate() {
        // gpt-4o: $2.50 in, $10 out per Mtok.
        let gpt4o = price(2_500_000, 10_000_000);
        assert_eq!(cost_micros(&gpt4o, &usage(1_000_000, 0)), 2_500_000);
        assert_eq!(cost_micros(&gpt4o, &usage(1000, 500)), 2_500 + 5_000);
        assert_eq!(cost_micros(&gpt4o, &usage(1, 0)), 3); // 2.5 µ$ → 3
        assert_eq!(cost_micros(&gpt4o, &usage(0, 0)), 0);
        let cheap = price(150_000, 600_000);
        // 0.15 + 0.6 = 0.75 µ$: one rounding over the sum, not one per term.
        assert_eq!(cost_micros(&cheap, &usage(1, 1)), 1);
        assert_eq!(
            cost_micros(&Pricing::default(), &usage(u64::MAX, u64::MAX)),
            0
        );
        let max = price(u64::MAX, u64::MAX);
        assert_eq!(cost_micros(&max, &usage(u64::MAX, u64::MAX)), u64::MAX);
    }

    #[test]
    fn totals_by_model_and_user() {
        let mut t = CostTally::new();
        t.add("gpt", "bob", &spend(10, 5, 100));
        t.add("claude", "bob", &spend(1, 1, 7));
        t.add("gpt", "amy", &spend(2, 3, 20));
        assert_eq!(t.total(), spend(13, 9, 127));
        assert_eq!(
            t.by_model(),
            [
                ("claude".to_string(), spend(1, 1, 7)),
                ("gpt".to_string(), spend(12, 8, 120))
            ]
        );
        assert_eq!(
            t.by_user(),
            [
                ("amy".to_string(), spend(2, 3, 20)),
                ("bob".to_string(), spend(11, 6, 107))
            ]
        );
    }

    #[test]
    fn least_recently_charged_users_are_dropped_never_the_total() {
        let mut t = CostTally::with_max_users(3);
        for user in ["a", "b", "c"] {
            t.add("m", user, &spend(1, 0, 1));
        }
        t.add("m", "a", &spend(1, 0, 1)); // a is now the most recent
        t.add("m", "d", &spend(1, 0, 1)); // b goes
        let users: Vec<String> = t.by_user().into_iter().map(|r| r.0).collect();
        assert_eq!(users, ["a", "c", "d"]);
        assert_eq!(t.total(), spend(5, 0, 5));
        assert_eq!(t.by_model(), [("m".to_string(), spend(5, 0, 5))]);
        for i in 0..100 {
            t.add("m", &i.to_string(), &spend(1, 0, 1));
        }
        assert_eq!(t.by_user().len(), 3);
        assert_eq!(t.users.by_tick.len(), 3);
        assert_eq!(t.total().micros, 105);
        let mut none = CostTally::with_max_users(0);
        none.add("m", "u", &spend(1, 1, 1));
        assert!(none.by_user().is_empty());
        assert_eq!(none.total().micros, 1);
    }

    #[test]
    fn totals_saturate() {
        let mut t = CostTally::new();
        t.add("m", "u", &spend(u64::MAX, 1, u64::MAX));
        t.add("m", "u", &spend(1, 1, 1));
        assert_eq!(t.total(), spend(u64::MAX, 2, u64::MAX));
    }

    fn cached(input: u64, output: u64, read: u64, write: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: read,
            cache_write_tokens: write,
        }
    }

    #[test]
    fn anthropic_cache_reads_and_writes_by_hand() {
        // Claude Sonnet: $3 in, $15 out per Mtok; defaults: reads $0.30, writes $3.75.
        let (read, write) = cache_prices(Provider::Anthropic, 3_000_000);
        assert_eq!((read, write), (300_000, 3_750_000));
        let sonnet = Pricing {
            cached_input_micros_per_mtok: read,
            cache_write_micros_per_mtok: write,
            ..price(3_000_000, 15_000_000)
        };
        // First call writes a 10 000-token prefix: 100 × 3 + 10 000 × 3.75 + 200 × 15 = 40 800 µ$.
        let first = cached(10_100, 200, 0, 10_000);
        assert_eq!(cost_micros(&sonnet, &first), 300 + 37_500 + 3_000);
        // Without the cache: 10 100 × 3 + 3 000 = 33 300 µ$; the write cost 7 500 µ$ more.
        assert_eq!(saved_micros(&sonnet, &first), -7_500);
        // Second call reads it: 100 × 3 + 10 000 × 0.30 + 200 × 15 = 6 300 µ$, 27 000 µ$ saved.
        let second = cached(10_100, 200, 10_000, 0);
        assert_eq!(cost_micros(&sonnet, &second), 300 + 3_000 + 3_000);
        assert_eq!(saved_micros(&sonnet, &second), 27_000);
        let mut t = CostTally::new();
        for usage in [first, second] {
            let spend = Spend {
                usage,
                micros: cost_micros(&sonnet, &usage),
                saved_micros: saved_micros(&sonnet, &usage),
            };
            t.add("claude", "amy", &spend);
        }
        assert_eq!(
            t.by_user(),
            [(
                "amy".to_string(),
                Spend {
                    usage: cached(20_200, 400, 10_000, 10_000),
                    micros: 40_800 + 6_300,
                    saved_micros: 19_500,
                }
            )]
        );
    }

    #[test]
    fn openai_cached_tokens_by_hand() {
        // gpt-4o: $2.50 in, $1.25 cached, $10 out per Mtok.
        let gpt4o = Pricing {
            cached_input_micros_per_mtok: 1_250_000,
            ..price(2_500_000, 10_000_000)
        };
        // 2 000 prompt tokens of which 1 536 cached, 100 out:
        // 464 × 2.5 + 1 536 × 1.25 + 100 × 10 = 1 160 + 1 920 + 1 000 = 4 080 µ$.
        let usage = cached(2_000, 100, 1_536, 0);
        assert_eq!(cost_micros(&gpt4o, &usage), 4_080);
        assert_eq!(saved_micros(&gpt4o, &usage), 1_920);
        // Unnamed cache prices on an OpenAI-compatible target: the input price, nothing saved.
        let (read, write) = cache_prices(Provider::OpenAi, 2_500_000);
        let plain = Pricing {
            cached_input_micros_per_mtok: read,
            cache_write_micros_per_mtok: write,
            ..gpt4o
        };
        assert_eq!(cost_micros(&plain, &usage), 6_000);
        assert_eq!(saved_micros(&plain, &usage), 0);
        // Cache counts above the prompt's (a broken server) never underflow.
        assert_eq!(
            cost_micros(&gpt4o, &cached(10, 0, u64::MAX, u64::MAX)),
            u64::MAX
        );
        let huge = Pricing {
            cached_input_micros_per_mtok: u64::MAX,
            ..price(0, 0)
        };
        assert_eq!(saved_micros(&huge, &cached(0, 0, u64::MAX, 0)), i64::MIN);
    }
}
