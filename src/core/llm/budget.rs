//! Token and cost budgets that cannot be overshot by concurrent calls.
//!
//! Why reserve first? The usual implementation (LiteLLM's, for one) checks the spend *before* the
//! call and adds the usage *after* it. Between the two, every concurrent call sees the same old
//! spend, so N calls in flight all pass a check that only one of them should have: a cap of $10 can
//! be blown by N × the cost of a call. Here a call must [`Ledger::reserve`] its worst case (its
//! estimated input plus its `max_tokens` of output, and what that would cost) before it starts; the
//! hold counts as spent at once, so the next caller sees it. When the call ends, the hold is
//! replaced by the real usage ([`Ledger::settle`]) or given back ([`Ledger::release`]), and the
//! unused part of the worst case is free again. Admission is `spent + held + needed <= limit`, so
//! the caps hold under any interleaving: only usage beyond what was reserved (an estimate too low)
//! can pass them, and that then blocks later calls.
//!
//! Periods. Daily and monthly caps count by UTC calendar date, computed from the epoch by hand
//! (Hinnant's civil-from-days; no date library in the wasm). A hold remembers the day and month it
//! was taken in and settles against *those* counters: a call started at 23:59 and finished after
//! midnight is charged to the old day (already over, so that is a no-op) and to the month it
//! started in. Memory stays bounded by the users active in the current day and month: counters of
//! past periods are dropped when the clock passes into a new one, and a user whose counters are
//! all back to zero is forgotten. Time never runs backwards here: a `now_ms` earlier than the
//! current day (a wall clock set back) counts as the current day.
//!
//! Bounded without reopening a cap. User ids come from callers, so the ledger keeps at most
//! [`MAX_USERS`] of them, each id at most 138 bytes (a longer one is kept as its [`bounded_key`]).
//! Forgetting a user's spend would reopen their cap, so when the ledger is full it forgets the
//! users who spent at most the average this month, and raises a *floor* to the most any of them
//! had spent (today, and this month): a user without a row of their own counts as having spent
//! the floor. An evicted user is charged at least what they spent, and a new user at worst what a
//! light user of the period did: the caps only get stricter. The floors end with their periods.
//!
//! A [`Hold`] that is dropped instead of settled or released stays counted until its period ends:
//! a lost hold can only make the budget stricter, never looser.

use crate::core::bounded_key::bounded_key;
use crate::core::string_map::StringMap;
use crate::core::wide;

const MS_PER_DAY: u64 = 86_400_000;

/// Most users the ledger keeps a row for (see the module doc).
pub const MAX_USERS: usize = 10_000;

/// The caps; `None` = no cap.
#[derive(Debug, Clone, Default)]
pub struct BudgetConfig {
    /// Most tokens (estimated input + max output) one request may reserve.
    pub per_request_tokens: Option<u64>,
    /// Most tokens one user may spend per UTC day.
    pub per_user_daily_tokens: Option<u64>,
    /// Most tokens one user may spend per UTC calendar month.
    pub per_user_monthly_tokens: Option<u64>,
    /// Most cost, in micro-dollars, all users together may spend per UTC day.
    pub daily_cost_micros: Option<u64>,
}

/// Which cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// [`BudgetConfig::per_request_tokens`].
    PerRequestTokens,
    /// [`BudgetConfig::per_user_daily_tokens`].
    UserDailyTokens,
    /// [`BudgetConfig::per_user_monthly_tokens`].
    UserMonthlyTokens,
    /// [`BudgetConfig::daily_cost_micros`].
    DailyCost,
}

impl Cap {
    /// The JS option name: `"perRequestTokens"`, `"perUserDailyTokens"`,
    /// `"perUserMonthlyTokens"`, `"dailyCostUsd"` (the JS option names; the cost cap is counted in micro-dollars).
    pub fn as_str(self) -> &'static str {
        match self {
            Cap::PerRequestTokens => "perRequestTokens",
            Cap::UserDailyTokens => "perUserDailyTokens",
            Cap::UserMonthlyTokens => "perUserMonthlyTokens",
            Cap::DailyCost => "dailyCostUsd",
        }
    }
}

/// A refused reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The first cap (in [`Cap`] order) that would be exceeded.
    pub cap: Cap,
    /// Its limit (tokens, or micro-dollars for [`Cap::DailyCost`]).
    pub limit: u64,
    /// What is left under it now (for [`Cap::PerRequestTokens`]: the limit itself).
    pub remaining: u64,
    /// What the request asked for.
    pub needed: u64,
}

/// A reservation: counted as spent until settled or released. Not `Clone`, so it is given back
/// at most once.
#[derive(Debug)]
pub struct Hold {
    user: String,
    day: u64,
    month: u64,
    tokens: u64,
    cost_micros: u64,
}

impl Hold {
    /// The tokens held.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The cost held, in micro-dollars.
    pub fn cost_micros(&self) -> u64 {
        self.cost_micros
    }
}

/// One user's spend (held included) in the ledger's current day and month.
#[derive(Debug, Clone, Copy, Default)]
struct UserSpend {
    day_tokens: u64,
    month_tokens: u64,
}

/// Spend and holds against a [`BudgetConfig`] (see the module doc).
#[derive(Debug)]
pub struct Ledger {
    cfg: BudgetConfig,
    /// Current UTC day, in days since 1970-01-01.
    day: u64,
    /// Current UTC month, as `year * 12 + month - 1`.
    month: u64,
    users: StringMap<UserSpend>,
    /// What a user without a row counts as having spent (see the module doc).
    floor: UserSpend,
    max_users: usize,
    cost_today: u64,
}

impl Ledger {
    /// An empty ledger keeping at most [`MAX_USERS`] users.
    pub fn new(cfg: BudgetConfig) -> Self {
        Ledger::with_max_users(cfg, MAX_USERS)
    }

    /// An empty ledger keeping at most `max_users` users (at least 1).
    pub fn with_max_users(cfg: BudgetConfig, max_users: usize) -> Self {
        Ledger {
            cfg,
            day: 0,
            month: month_of_day(0),
            users: StringMap::new(),
            floor: UserSpend::default(),
            max_users: max_users.max(1),
            cost_today: 0,
        }
    }

    /// How many users have a row.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// `user`'s spend: their row, or the floor.
    fn spend_of(&self, user: &str) -> UserSpend {
        self.users.get(user).copied().unwrap_or(self.floor)
    }

    /// `user`'s row, made (from the floor, room made first) if absent.
    fn row(&mut self, user: &str) -> &mut UserSpend {
        self.make_room(user);
        let floor = self.floor;
        self.users.get_or_insert_with(user, || floor)
    }

    /// Makes room for `user`'s row if it has none and the ledger is full (which may raise the floor
    /// that the new row starts from).
    fn make_room(&mut self, user: &str) {
        if self.users.get(user).is_none() && self.users.len() >= self.max_users {
            self.evict();
        }
    }

    /// Makes room for one more row: forgets the users who spent at most the average this month,
    /// raising the floor to the most that any of them had spent.
    fn evict(&mut self) {
        let rows = self.users.len().max(1) as u64;
        let total =
            (self.users.values()).fold(0u64, |sum, spend| sum.saturating_add(spend.month_tokens));
        let average = total / rows;
        let floor = &mut self.floor;
        self.users.retain(|spend| {
            let keep = spend.month_tokens > average;
            if !keep {
                floor.day_tokens = floor.day_tokens.max(spend.day_tokens);
                floor.month_tokens = floor.month_tokens.max(spend.month_tokens);
            }
            keep
        });
    }

    /// The configuration.
    pub fn config(&self) -> &BudgetConfig {
        &self.cfg
    }

    /// Reserves the worst case of a call — `tokens` = estimated input + max output, `cost_micros`
    /// its worst-case cost — for `user` at wall time `now_ms` (Unix-epoch milliseconds). Checks
    /// the caps in [`Cap`] order and refuses with the first one that `spent + held + needed` would
    /// exceed, reserving nothing; a request exactly filling a cap is admitted.
    pub fn reserve(
        &mut self,
        user: &str,
        tokens: u64,
        cost_micros: u64,
        now_ms: u64,
    ) -> Result<Hold, Exceeded> {
        let user = &*bounded_key(user);
        self.roll(now_ms);
        if let Some(limit) = self.cfg.per_request_tokens {
            if tokens > limit {
                return Err(Exceeded {
                    cap: Cap::PerRequestTokens,
                    limit,
                    remaining: limit,
                    needed: tokens,
                });
            }
        }
        // Room first: an eviction raises the floor that a new row starts from, and the caps are
        // checked against that.
        self.make_room(user);
        let spend = self.spend_of(user);
        let checks = [
            (
                Cap::UserDailyTokens,
                self.cfg.per_user_daily_tokens,
                spend.day_tokens,
                tokens,
            ),
            (
                Cap::UserMonthlyTokens,
                self.cfg.per_user_monthly_tokens,
                spend.month_tokens,
                tokens,
            ),
            (
                Cap::DailyCost,
                self.cfg.daily_cost_micros,
                self.cost_today,
                cost_micros,
            ),
        ];
        for (cap, limit, used, needed) in checks {
            let Some(limit) = limit else { continue };
            let remaining = limit.saturating_sub(used);
            if needed > remaining {
                return Err(Exceeded {
                    cap,
                    limit,
                    remaining,
                    needed,
                });
            }
        }
        let spend = self.row(user);
        spend.day_tokens = spend.day_tokens.saturating_add(tokens);
        spend.month_tokens = spend.month_tokens.saturating_add(tokens);
        self.cost_today = self.cost_today.saturating_add(cost_micros);
        Ok(Hold {
            user: user.to_string(),
            day: self.day,
            month: self.month,
            tokens,
            cost_micros,
        })
    }

    /// Adds `tokens` and `cost_micros` to a call's `hold` (one more upstream call of the same call:
    /// a mid-stream fallback's continuation), admitted as [`Ledger::reserve`] admits a call, the
    /// per-request cap counting what the hold has already; refused, the hold is unchanged. Taken in
    /// another day or month than the hold (the clock passed midnight meanwhile), the addition stays
    /// counted in its own period until that ends: a hold of two periods would settle in one.
    pub fn extend(
        &mut self,
        hold: &mut Hold,
        tokens: u64,
        cost_micros: u64,
        now_ms: u64,
    ) -> Result<(), Exceeded> {
        if let Some(limit) = self.cfg.per_request_tokens {
            if hold.tokens.saturating_add(tokens) > limit {
                return Err(Exceeded {
                    cap: Cap::PerRequestTokens,
                    limit,
                    remaining: limit.saturating_sub(hold.tokens),
                    needed: tokens,
                });
            }
        }
        let more = self.reserve(&hold.user, tokens, cost_micros, now_ms)?;
        if (more.day, more.month) == (hold.day, hold.month) {
            hold.tokens = hold.tokens.saturating_add(more.tokens);
            hold.cost_micros = hold.cost_micros.saturating_add(more.cost_micros);
        }
        Ok(())
    }

    /// The call finished: replaces the hold by the real usage, which may be more or less than was
    /// held, in the hold's own day and month (a period already over is not charged). Spend never
    /// goes below zero.
    pub fn settle(&mut self, hold: Hold, tokens: u64, cost_micros: u64) {
        self.adjust(&hold, tokens, cost_micros);
    }

    /// The call failed before using anything: gives the hold back.
    pub fn release(&mut self, hold: Hold) {
        self.adjust(&hold, 0, 0);
    }

    /// [`Ledger::usage_per_mille`] for the hold's user as if `hold` were not there: where the
    /// call's own settlement starts from, so that a threshold it crosses is seen as crossed.
    pub fn usage_per_mille_without(&mut self, hold: &Hold, now_ms: u64) -> Option<(Cap, u64)> {
        self.roll(now_ms);
        let (spend, cost_today) = (self.users.get(&hold.user).copied(), self.cost_today);
        self.adjust(hold, 0, 0);
        let usage = self.usage_of(&hold.user);
        if let Some(spend) = spend {
            *self
                .users
                .get_or_insert_with(&hold.user, UserSpend::default) = spend;
        }
        self.cost_today = cost_today;
        usage
    }

    /// How full the tightest of the per-user daily, per-user monthly and daily cost caps is for
    /// `user` now, in per mille of its limit (over 1000 once real usage overshot a hold; a zero
    /// limit counts as full), with the cap; ties go to the first in [`Cap`] order. `None` when
    /// none of these caps is set.
    pub fn usage_per_mille(&mut self, user: &str, now_ms: u64) -> Option<(Cap, u64)> {
        self.roll(now_ms);
        self.usage_of(&bounded_key(user))
    }

    /// [`Ledger::usage_per_mille`] for a key already bounded, in the current periods.
    fn usage_of(&self, user: &str) -> Option<(Cap, u64)> {
        let spend = self.spend_of(user);
        let caps = [
            (
                Cap::UserDailyTokens,
                self.cfg.per_user_daily_tokens,
                spend.day_tokens,
            ),
            (
                Cap::UserMonthlyTokens,
                self.cfg.per_user_monthly_tokens,
                spend.month_tokens,
            ),
            (Cap::DailyCost, self.cfg.daily_cost_micros, self.cost_today),
        ];
        let mut tightest: Option<(Cap, u64)> = None;
        for (cap, limit, used) in caps {
            let Some(limit) = limit else { continue };
            let per_mille = match limit {
                0 => 1000,
                _ => u64::try_from(wide::div_rem(u128::from(used) * 1000, limit).0)
                    .unwrap_or(u64::MAX),
            };
            if tightest.is_none_or(|(_, best)| per_mille > best) {
                tightest = Some((cap, per_mille));
            }
        }
        tightest
    }

    /// Spent + held now: `user`'s tokens today, `user`'s tokens this month, and everyone's cost
    /// today in micro-dollars.
    pub fn spent(&mut self, user: &str, now_ms: u64) -> (u64, u64, u64) {
        let user = &*bounded_key(user);
        self.roll(now_ms);
        let spend = self.spend_of(user);
        (spend.day_tokens, spend.month_tokens, self.cost_today)
    }

    /// Replaces `hold`'s amounts by `tokens` / `cost_micros` in the counters of its periods that
    /// are still current.
    fn adjust(&mut self, hold: &Hold, tokens: u64, cost_micros: u64) {
        let replace = |counter: &mut u64, held: u64, real: u64| {
            *counter = counter.saturating_sub(held).saturating_add(real);
        };
        let same_day = hold.day == self.day;
        let same_month = hold.month == self.month;
        if same_day {
            replace(&mut self.cost_today, hold.cost_micros, cost_micros);
        }
        if tokens > hold.tokens && (same_day || same_month) {
            // An evicted user's floor covers what was held, not what the call used beyond it.
            self.row(&hold.user);
        }
        if let Some(spend) = self.users.get_mut(&hold.user) {
            if same_day {
                replace(&mut spend.day_tokens, hold.tokens, tokens);
            }
            if same_month {
                replace(&mut spend.month_tokens, hold.tokens, tokens);
            }
            if spend.day_tokens == 0 && spend.month_tokens == 0 {
                self.users.remove(&hold.user);
            }
        }
    }

    /// Moves the ledger into the day and month of `now_ms`, dropping the counters of periods that
    /// ended. Never moves back.
    fn roll(&mut self, now_ms: u64) {
        let day = now_ms / MS_PER_DAY;
        if day <= self.day {
            return;
        }
        self.day = day;
        self.cost_today = 0;
        let month = month_of_day(day);
        let new_month = month != self.month;
        self.month = month;
        self.floor.day_tokens = 0;
        if new_month {
            self.floor.month_tokens = 0;
        }
        self.users.retain(|spend| {
            spend.day_tokens = 0;
            if new_month {
                spend.month_tokens = 0;
            }
            spend.month_tokens > 0
        });
    }
}

/// The proleptic Gregorian `(year, month 1..=12, day 1..=31)` of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, on unsigned integers since the epoch is the earliest input).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `year * 12 + month - 1` of `days` since the epoch: consecutive months differ by one.
fn month_of_day(days: u64) -> u64 {
    let (year, month, _) = civil_from_days(days);
    year * 12 + month - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-31T23:59:59Z.
    const JAN_31_LAST_SECOND: u64 = 1_769_903_999_000;

    fn ledger(daily: Option<u64>, monthly: Option<u64>, cost: Option<u64>) -> Ledger {
        Ledger::new(BudgetConfig {
            per_request_tokens: None,
            per_user_daily_tokens: daily,
            per_user_monthly_tokens: monthly,
            daily_cost_micros: cost,
        })
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(31), (1970, 2, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(
            civil_from_days(JAN_31_LAST_SECOND / MS_PER_DAY),
            (2026, 1, 31)
        );
        assert_eq!(
            civil_from_days(JAN_31_LAST_SECOND / MS_PER_DAY + 1),
            (2026, 2, 1)
        );
        // Walk 1970..2400 day by day against month lengths.
        let mut date = (1970, 1, 1);
        for days in 0..157_000u64 {
            assert_eq!(civil_from_days(days), date, "{days}");
            let (y, m, d) = date;
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let length = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            date = match (d == length, m == 12) {
                (false, _) => (y, m, d + 1),
                (true, false) => (y, m + 1, 1),
                (true, true) => (y + 1, 1, 1),
            };
        }
        // Total for any input.
        let _ = civil_from_days(u64::MAX / MS_PER_DAY);
        let _ = month_of_day(u64::MAX / MS_PER_DAY);
    }

    #[test]
    fn per_request_cap_is_checked_first() {
        let mut l = Ledger::new(BudgetConfig {
            per_request_tokens: Some(500),
            per_user_daily_tokens: Some(100),
            ..BudgetConfig::default()
        });
        assert_eq!(
            l.reserve("u", 501, 0, 0).unwrap_err(),
            Exceeded {
                cap: Cap::PerRequestTokens,
                limit: 500,
                remaining: 500,
                needed: 501
            }
        );
        assert_eq!(
            l.reserve("u", 200, 0, 0).unwrap_err().cap,
            Cap::UserDailyTokens
        );
        assert_eq!(l.spent("u", 0), (0, 0, 0));
    }

    #[test]
    fn exact_fill_admitted_then_refused() {
        let mut l = ledger(Some(1000), None, None);
        let hold = l.reserve("u", 1000, 0, 0).unwrap();
        assert_eq!(
            l.reserve("u", 1, 0, 0).unwrap_err(),
            Exceeded {
                cap: Cap::UserDailyTokens,
                limit: 1000,
                remaining: 0,
                needed: 1
            }
        );
        // Other users have their own counters.
        assert!(l.reserve("v", 1000, 0, 0).is_ok());
        l.settle(hold, 400, 0);
        assert_eq!(l.spent("u", 0), (400, 400, 0));
        assert_eq!(l.reserve("u", 601, 0, 0).unwrap_err().remaining, 600);
    }

    #[test]
    fn cost_cap_is_global() {
        let mut l = ledger(None, None, Some(1_000));
        let a = l.reserve("a", 10, 600, 0).unwrap();
        let err = l.reserve("b", 10, 500, 0).unwrap_err();
        assert_eq!(
            (err.cap, err.remaining, err.needed),
            (Cap::DailyCost, 400, 500)
        );
        l.release(a);
        assert!(l.reserve("b", 10, 500, 0).is_ok());
    }

    #[test]
    fn usage_without_a_hold_leaves_the_ledger_as_it_was() {
        let mut l = ledger(Some(100), None, Some(1000));
        let first = l.reserve("u", 30, 100, 0).unwrap();
        l.settle(first, 30, 100);
        let hold = l.reserve("u", 60, 600, 0).unwrap();
        assert_eq!(l.usage_per_mille("u", 0), Some((Cap::UserDailyTokens, 900)));
        assert_eq!(
            l.usage_per_mille_without(&hold, 0),
            Some((Cap::UserDailyTokens, 300))
        );
        assert_eq!(l.usage_per_mille("u", 0), Some((Cap::UserDailyTokens, 900)));
        let mut fresh = ledger(Some(100), None, None);
        let held = fresh.reserve("v", 50, 0, 0).unwrap();
        let without = fresh.usage_per_mille_without(&held, 0);
        assert_eq!(without, Some((Cap::UserDailyTokens, 0)));
        let with = fresh.usage_per_mille("v", 0);
        assert_eq!(with, Some((Cap::UserDailyTokens, 500)), "the hold is back");
        fresh.settle(held, 85, 0);
        assert_eq!(
            fresh.usage_per_mille("v", 0),
            Some((Cap::UserDailyTokens, 850))
        );
    }

    #[test]
    fn an_extended_hold_counts_both_calls_and_settles_once() {
        let mut ledger = Ledger::new(BudgetConfig {
            per_request_tokens: Some(1000),
            per_user_daily_tokens: Some(1500),
            ..BudgetConfig::default()
        });
        let mut hold = ledger.reserve("u", 600, 0, 0).expect("room");
        // Past the per-request cap with what the hold has already: refused, the hold unchanged.
        let refused = ledger
            .extend(&mut hold, 500, 0, 0)
            .expect_err("per request");
        assert_eq!(refused.cap, Cap::PerRequestTokens);
        assert_eq!((refused.remaining, refused.needed), (400, 500));
        assert_eq!(hold.tokens(), 600);
        ledger.extend(&mut hold, 400, 0, 0).expect("room");
        assert_eq!(hold.tokens(), 1000);
        // Another call sees both held.
        let other = ledger.reserve("u", 600, 0, 0).expect_err("daily");
        assert_eq!((other.cap, other.remaining), (Cap::UserDailyTokens, 500));
        ledger.settle(hold, 700, 0);
        assert_eq!(ledger.spent("u", 0).0, 700);
    }

    #[test]
    fn settle_more_than_held_overshoots_and_blocks() {
        let mut l = ledger(Some(100), None, None);
        let hold = l.reserve("u", 50, 0, 0).unwrap();
        l.settle(hold, 150, 0);
        assert_eq!(l.spent("u", 0).0, 150);
        assert_eq!(
            l.usage_per_mille("u", 0),
            Some((Cap::UserDailyTokens, 1500))
        );
        assert_eq!(l.reserve("u", 0, 0, 0).map(|h| h.tokens()), Ok(0));
        assert_eq!(l.reserve("u", 1, 0, 0).unwrap_err().remaining, 0);
    }

    #[test]
    fn per_mille_of_the_tightest_cap() {
        let mut l = ledger(Some(1000), Some(10_000), Some(100));
        assert_eq!(l.usage_per_mille("u", 0), Some((Cap::UserDailyTokens, 0)));
        let _h = l.reserve("u", 500, 20, 0).unwrap();
        assert_eq!(l.usage_per_mille("u", 0), Some((Cap::UserDailyTokens, 500)));
        let _g = l.reserve("other", 0, 60, 0).unwrap();
        assert_eq!(l.usage_per_mille("u", 0), Some((Cap::DailyCost, 800)));
        assert_eq!(ledger(None, None, None).usage_per_mille("u", 0), None);
        assert_eq!(
            ledger(Some(0), None, None).usage_per_mille("u", 0),
            Some((Cap::UserDailyTokens, 1000))
        );
        let mut huge = ledger(Some(1), None, None);
        let h = huge.reserve("u", 1, 0, 0).unwrap();
        huge.settle(h, u64::MAX, 0);
        assert_eq!(
            huge.usage_per_mille("u", 0),
            Some((Cap::UserDailyTokens, u64::MAX))
        );
    }

    #[test]
    fn hold_settles_against_its_own_day() {
        let mut l = ledger(Some(1000), Some(5000), Some(1000));
        let hold = l
            .reserve("u", 800, 800, JAN_31_LAST_SECOND - 60_000)
            .unwrap();
        let same_month_hold = l.reserve("u", 100, 100, JAN_31_LAST_SECOND).unwrap();
        assert_eq!(l.spent("u", JAN_31_LAST_SECOND), (900, 900, 900));
        let feb_1 = JAN_31_LAST_SECOND + 1_000;
        // New day and new month: everything starts over.
        assert_eq!(l.spent("u", feb_1), (0, 0, 0));
        let feb = l.reserve("u", 1000, 1000, feb_1).unwrap();
        // Settling January's holds must not touch February's counters.
        l.settle(hold, 10, 10);
        l.release(same_month_hold);
        assert_eq!(l.spent("u", feb_1), (1000, 1000, 1000));
        l.release(feb);
        assert_eq!(l.spent("u", feb_1), (0, 0, 0));
        assert!(l.users.is_empty());
    }

    #[test]
    fn day_rolls_within_a_month() {
        let mut l = ledger(Some(1000), Some(1500), None);
        let jan_30 = JAN_31_LAST_SECOND - MS_PER_DAY;
        let hold = l.reserve("u", 1000, 0, jan_30).unwrap();
        assert!(l.reserve("u", 1, 0, jan_30).is_err());
        // Next day: the daily cap is free again, the monthly one still counts yesterday.
        let err = l.reserve("u", 600, 0, JAN_31_LAST_SECOND).unwrap_err();
        assert_eq!((err.cap, err.remaining), (Cap::UserMonthlyTokens, 500));
        // A hold from yesterday settling with less frees room in the month only.
        l.settle(hold, 400, 0);
        assert_eq!(l.spent("u", JAN_31_LAST_SECOND), (0, 400, 0));
        assert!(l.reserve("u", 1000, 0, JAN_31_LAST_SECOND).is_ok());
        // A clock set back stays in the current day.
        assert_eq!(l.spent("u", jan_30), (1000, 1400, 0));
    }

    #[test]
    fn past_periods_are_forgotten() {
        let mut l = ledger(Some(10), None, None);
        for i in 0..1000 {
            let _ = l.reserve(&format!("user-{i}"), 1, 0, 0);
        }
        assert_eq!(l.users.len(), 1000);
        // 40 days later, in another month: nothing left.
        l.spent("x", 40 * MS_PER_DAY);
        assert!(l.users.is_empty());
    }
}
