//! What calls cost, in integer micro-dollars, and running totals per model and per user.
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
}

/// The cost of `usage` in micro-dollars: `(input × input price + output × output price) / 10⁶`,
/// rounded up, saturating at `u64::MAX`.
pub fn cost_micros(pricing: &Pricing, usage: &Usage) -> u64 {
    let input = u128::from(usage.input_tokens) * u128::from(pricing.input_micros_per_mtok);
    let output = u128::from(usage.output_tokens) * u128::from(pricing.output_micros_per_mtok);
    let total = input.saturating_add(output);
    u64::try_from(wide::div_ceil(total, 1_000_000)).unwrap_or(u64::MAX)
}

/// Usage and cost of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    usage: Usage,
    micros: u64,
    /// When last charged, in [`CostTally`] ticks.
    tick: u64,
}

impl Entry {
    fn add(&mut self, usage: &Usage, micros: u64) {
        self.usage.input_tokens = self.usage.input_tokens.saturating_add(usage.input_tokens);
        self.usage.output_tokens = self.usage.output_tokens.saturating_add(usage.output_tokens);
        self.micros = self.micros.saturating_add(micros);
    }
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

    fn add(&mut self, key: &str, usage: &Usage, micros: u64, tick: u64) {
        let key = &*bounded_key(key);
        match self.entries.get_mut(key) {
            Some(entry) => {
                self.by_tick.remove(&entry.tick);
                entry.add(usage, micros);
                entry.tick = tick;
            }
            None => {
                let mut entry = Entry {
                    tick,
                    ..Entry::default()
                };
                entry.add(usage, micros);
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

    fn sorted(&self) -> Vec<(String, Usage, u64)> {
        self.entries
            .iter()
            .map(|(key, e)| (key.clone(), e.usage, e.micros))
            .collect()
    }
}

/// Running totals: overall, per model and per user (see the module doc for the bounds).
#[derive(Debug, Clone)]
pub struct CostTally {
    total: Entry,
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
            total: Entry::default(),
            models: Bounded::new(MAX_MODELS),
            users: Bounded::new(max_users),
            tick: 0,
        }
    }

    /// Counts one call's usage and cost (saturating).
    pub fn add(&mut self, model: &str, user: &str, usage: &Usage, micros: u64) {
        self.tick += 1;
        self.total.add(usage, micros);
        self.models.add(model, usage, micros, self.tick);
        self.users.add(user, usage, micros, self.tick);
    }

    /// All calls ever counted: tokens and micro-dollars.
    pub fn total(&self) -> (Usage, u64) {
        (self.total.usage, self.total.micros)
    }

    /// `(model, usage, micro-dollars)` sorted by model.
    pub fn by_model(&self) -> Vec<(String, Usage, u64)> {
        self.models.sorted()
    }

    /// `(user, usage, micro-dollars)` sorted by user, for the users still kept.
    pub fn by_user(&self) -> Vec<(String, Usage, u64)> {
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
        }
    }

    #[test]
    fn costs_round_up_and_saturate() {
        // gpt-4o: $2.50 in, $10 out per Mtok.
        let gpt4o = Pricing {
            input_micros_per_mtok: 2_500_000,
            output_micros_per_mtok: 10_000_000,
        };
        assert_eq!(cost_micros(&gpt4o, &usage(1_000_000, 0)), 2_500_000);
        assert_eq!(cost_micros(&gpt4o, &usage(1000, 500)), 2_500 + 5_000);
        assert_eq!(cost_micros(&gpt4o, &usage(1, 0)), 3); // 2.5 µ$ → 3
        assert_eq!(cost_micros(&gpt4o, &usage(0, 0)), 0);
        let cheap = Pricing {
            input_micros_per_mtok: 150_000,
            output_micros_per_mtok: 600_000,
        };
        // 0.15 + 0.6 = 0.75 µ$: one rounding over the sum, not one per term.
        assert_eq!(cost_micros(&cheap, &usage(1, 1)), 1);
        assert_eq!(
            cost_micros(&Pricing::default(), &usage(u64::MAX, u64::MAX)),
            0
        );
        let max = Pricing {
            input_micros_per_mtok: u64::MAX,
            output_micros_per_mtok: u64::MAX,
        };
        assert_eq!(cost_micros(&max, &usage(u64::MAX, u64::MAX)), u64::MAX);
    }

    #[test]
    fn totals_by_model_and_user() {
        let mut t = CostTally::new();
        t.add("gpt", "bob", &usage(10, 5), 100);
        t.add("claude", "bob", &usage(1, 1), 7);
        t.add("gpt", "amy", &usage(2, 3), 20);
        assert_eq!(t.total(), (usage(13, 9), 127));
        assert_eq!(
            t.by_model(),
            [
                ("claude".to_string(), usage(1, 1), 7),
                ("gpt".to_string(), usage(12, 8), 120)
            ]
        );
        assert_eq!(
            t.by_user(),
            [
                ("amy".to_string(), usage(2, 3), 20),
                ("bob".to_string(), usage(11, 6), 107)
            ]
        );
    }

    #[test]
    fn least_recently_charged_users_are_dropped_never_the_total() {
        let mut t = CostTally::with_max_users(3);
        for user in ["a", "b", "c"] {
            t.add("m", user, &usage(1, 0), 1);
        }
        t.add("m", "a", &usage(1, 0), 1); // a is now the most recent
        t.add("m", "d", &usage(1, 0), 1); // b goes
        let users: Vec<String> = t.by_user().into_iter().map(|r| r.0).collect();
        assert_eq!(users, ["a", "c", "d"]);
        assert_eq!(t.total(), (usage(5, 0), 5));
        assert_eq!(t.by_model(), [("m".to_string(), usage(5, 0), 5)]);
        for i in 0..100 {
            t.add("m", &i.to_string(), &usage(1, 0), 1);
        }
        assert_eq!(t.by_user().len(), 3);
        assert_eq!(t.users.by_tick.len(), 3);
        assert_eq!(t.total().1, 105);
        let mut none = CostTally::with_max_users(0);
        none.add("m", "u", &usage(1, 1), 1);
        assert!(none.by_user().is_empty());
        assert_eq!(none.total().1, 1);
    }

    #[test]
    fn totals_saturate() {
        let mut t = CostTally::new();
        t.add("m", "u", &usage(u64::MAX, 1), u64::MAX);
        t.add("m", "u", &usage(1, 1), 1);
        assert_eq!(t.total(), (usage(u64::MAX, 2), u64::MAX));
    }
}
