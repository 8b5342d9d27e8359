//! Rate limits learned from the provider's own headers, per chat target.
//!
//! Why learn them, when `rateLimit` can be configured? The configured figures are a guess made once;
//! the provider's are the truth, shared with every other client on the same key, and they change
//! with the tier, the model and the traffic of the caller's colleagues. Each answer says what is left
//! and when it refills ([`limit_headers`](crate::core::retry::limit_headers)); a target's learned
//! bucket adopts that, so that the next call waits for the refill (within `maxWaitMs`) or is refused
//! at once, as a `RateLimitError` the fallback chain moves past, instead of earning a 429.
//!
//! The model is the providers' own: OpenAI and Anthropic both document a bucket that refills
//! continuously and is whole again at the reported reset. So a report of `left` of `limit`, whole
//! in `reset` ms, is a bucket that holds `left` now and refills at `(limit - left - 1) / reset` (the
//! count reported is rounded down, so one unit less than the deficit is what surely comes back;
//! without a reported limit, one unit per `reset`, what is certain). Each call admitted takes one
//! request (and its estimated tokens) from it, in call order, booked in virtual time like
//! [`rate_limit`](crate::core::rate_limit): the `n`-th call past what is left goes when the refill
//! has brought its unit, so a crowd waiting for the refill leaves one by one, not all at the reset.
//! A retry of a call is a request like any other and is admitted the same way. A call that gives up
//! while waiting keeps its booking: a slot wasted, never an overshoot.
//!
//! A new report replaces the bucket, with the other calls in flight counted as taken: those still
//! waiting have not reached the provider, and those sent may not have when it answered (so a count
//! is kept until each call finishes). Once whole again, our calls counted, the bucket is forgotten:
//! the next answer says what it holds. A retry hint (Azure's `x-ms-retry-after-ms`, a 429's
//! `Retry-After`) holds every call until it has passed; a hint only ever lengthens the hold.
//!
//! Why per target and not per origin? Providers limit per model (OpenAI) or per key and model
//! class (Anthropic): one origin serves many limits, so learning per origin would let one model's
//! exhausted limit hold back calls to another. A chat target is one model on one key. Plain
//! `client.fetch` calls therefore learn nothing. The targets are few (a client has at most 16), but
//! the store is bounded anyway, at [`MAX_LEARNED`] keys, the least recently used evicted.
//!
//! Times are the platform's monotonic milliseconds. OpenAI's resets are delays; Anthropic's are
//! times, turned into delays on the wall clock when read (a skewed clock shifts them by its skew).

use crate::core::retry::limit_headers::{LimitReport, Remaining};
use crate::core::wide;

/// Most keys whose limits are kept.
pub const MAX_LEARNED: usize = 64;

/// A reported limit as a refilling bucket: `left` at `at`, `refill` units every `period` ms, and
/// `taken` units taken by calls admitted since the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    at: u64,
    left: u64,
    refill: u64,
    period: u64,
    taken: u64,
}

impl Bucket {
    /// The bucket a report describes; `None` when it is whole already (nothing to wait for).
    fn from_report(remaining: Remaining, now_ms: u64) -> Option<Bucket> {
        // What is left is rounded down: the true deficit may be a unit short of `limit - left`,
        // so the refill is counted one unit short, never over (at least one unit per reset).
        let limit = remaining.limit.unwrap_or(remaining.left);
        (remaining.reset_in_ms > 0).then_some(Bucket {
            at: now_ms,
            left: remaining.left,
            refill: limit
                .saturating_sub(remaining.left.saturating_add(1))
                .max(1),
            period: remaining.reset_in_ms,
            taken: 0,
        })
    }

    /// When `units` in all (those taken so far included) will have been available.
    fn when(&self, units: u64) -> u64 {
        let short = u128::from(units.saturating_sub(self.left));
        let ms = wide::div_ceil(short * u128::from(self.period), self.refill);
        self.at
            .saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// When the bucket is whole again, our calls counted: after that it tells nothing.
    fn whole_at(&self) -> u64 {
        let limit = self.left.saturating_add(self.refill);
        self.when(self.taken.saturating_add(limit))
    }

    /// Units the bucket has held in all by `now_ms`, its capacity not counted.
    fn supplied(&self, now_ms: u64) -> u64 {
        let elapsed = u128::from(now_ms.saturating_sub(self.at));
        let (refilled, _) = wide::div_rem(elapsed * u128::from(self.refill), self.period);
        self.left
            .saturating_add(u64::try_from(refilled).unwrap_or(u64::MAX))
    }

    /// Units available at `now_ms` (0 while calls are booked ahead).
    fn available(&self, now_ms: u64) -> u64 {
        let whole = self.left.saturating_add(self.refill);
        self.supplied(now_ms).min(whole).saturating_sub(self.taken)
    }

    /// The bucket a new report describes, the calls in flight besides the reporting one counted
    /// as taken.
    fn reported(remaining: Remaining, others: u64, now_ms: u64) -> Option<Bucket> {
        Bucket::from_report(remaining, now_ms).map(|b| Bucket { taken: others, ..b })
    }

    /// The bucket while it says something at `now_ms`.
    fn live(bucket: Option<Bucket>, now_ms: u64) -> Option<Bucket> {
        bucket.filter(|b| b.whole_at() > now_ms)
    }
}

#[derive(Debug, Clone)]
struct Learned {
    key: String,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    held_until: u64,
    stamp: u64,
    /// Requests and estimated tokens of the calls admitted and not finished yet.
    in_flight: (u64, u64),
    /// Whether the provider has reported anything yet (else there is nothing to show).
    reported: bool,
}

/// A snapshot of one key's learned limit, for `stats()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedView {
    /// The bucket key (`target:<name>`).
    pub key: String,
    /// Requests available now, while the provider's report holds.
    pub remaining_requests: Option<u64>,
    /// Tokens available now, while the provider's report holds.
    pub remaining_tokens: Option<u64>,
    /// Milliseconds until the learned limit holds nothing back any more (0: it does not).
    pub reset_in_ms: u64,
}

/// The learned limits of a client's targets, at most [`MAX_LEARNED`] keys.
#[derive(Debug, Default)]
pub struct LearnedLimits {
    entries: Vec<Learned>,
    tick: u64,
}

impl LearnedLimits {
    /// `key`'s entry, made (evicting the least recently used one at the bound) if absent.
    fn entry(&mut self, key: &str) -> &mut Learned {
        self.tick = self.tick.wrapping_add(1);
        let stamp = self.tick;
        // Kept in key order: found by binary search, and shown in order.
        let index = match self.entries.binary_search_by(|e| e.key.as_str().cmp(key)) {
            Ok(index) => index,
            Err(mut index) => {
                if self.entries.len() >= MAX_LEARNED {
                    let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].stamp);
                    if let Some(oldest) = oldest {
                        self.entries.remove(oldest);
                        index -= usize::from(oldest < index);
                    }
                }
                let learned = Learned {
                    key: key.to_string(),
                    requests: None,
                    tokens: None,
                    held_until: 0,
                    stamp,
                    in_flight: (0, 0),
                    reported: false,
                };
                self.entries.insert(index, learned);
                index
            }
        };
        let entry = &mut self.entries[index];
        entry.stamp = stamp;
        entry
    }

    /// Adopts what an answer for `key` reported at `now_ms`, to a call (in flight, admitted with
    /// `tokens`) that [`take`](Self::take) admitted.
    pub fn adopt(&mut self, key: &str, report: &LimitReport, tokens: u64, now_ms: u64) {
        let entry = self.entry(key);
        entry.reported = true;
        let (requests_out, tokens_out) = entry.in_flight;
        if let Some(requests) = report.requests {
            let others = requests_out.saturating_sub(1);
            entry.requests = Bucket::reported(requests, others, now_ms);
        }
        if let Some(reported) = report.tokens {
            let others = tokens_out.saturating_sub(tokens);
            entry.tokens = Bucket::reported(reported, others, now_ms);
        }
        if let Some(ms) = report.retry_after_ms {
            entry.held_until = entry.held_until.max(now_ms.saturating_add(ms));
        }
    }

    /// Admits a request on `key` estimated at `tokens`: `Ok(wait)` it goes after `wait` ms (booked
    /// now, in call order), `Err(retry_after)` the wait would pass `max_wait_ms` (nothing is
    /// booked). A call's first request puts it in flight (`again`: a retry of a call in flight)
    /// until [`done`](Self::done).
    pub fn take(
        &mut self,
        key: &str,
        tokens: u64,
        now_ms: u64,
        max_wait_ms: u64,
        again: bool,
    ) -> Result<u64, u64> {
        let entry = self.entry(key);
        let requests = Bucket::live(entry.requests, now_ms);
        let token_bucket = Bucket::live(entry.tokens, now_ms);
        let mut at = entry.held_until.max(now_ms);
        if let Some(b) = requests {
            at = at.max(b.when(b.taken.saturating_add(1)));
        }
        // Without an estimate, a call waits only for the first token to come back.
        if let Some(b) = token_bucket {
            at = at.max(b.when(b.taken.saturating_add(tokens.max(1))));
        }
        let wait = at - now_ms;
        if wait > max_wait_ms {
            return Err(wait);
        }
        entry.requests = requests.map(|b| Bucket {
            taken: b.taken.saturating_add(1),
            ..b
        });
        entry.tokens = token_bucket.map(|b| Bucket {
            taken: b.taken.saturating_add(tokens),
            ..b
        });
        if !again {
            let (requests_out, tokens_out) = entry.in_flight;
            entry.in_flight = (
                requests_out.saturating_add(1),
                tokens_out.saturating_add(tokens),
            );
        }
        Ok(wait)
    }

    /// A call [`take`](Self::take) admitted on `key` with `tokens` has finished.
    pub fn done(&mut self, key: &str, tokens: u64) {
        if let Ok(index) = self.entries.binary_search_by(|e| e.key.as_str().cmp(key)) {
            let entry = &mut self.entries[index];
            let (requests_out, tokens_out) = entry.in_flight;
            entry.in_flight = (
                requests_out.saturating_sub(1),
                tokens_out.saturating_sub(tokens),
            );
        }
    }

    /// Every reported key's learned limit at `now_ms`, by key.
    pub fn views(&self, now_ms: u64) -> Vec<LearnedView> {
        self.entries
            .iter()
            .filter(|e| e.reported)
            .map(|e| {
                let buckets = [e.requests, e.tokens].map(|b| Bucket::live(b, now_ms));
                let until = buckets
                    .iter()
                    .flatten()
                    .map(Bucket::whole_at)
                    .chain([e.held_until])
                    .max()
                    .unwrap_or(0);
                LearnedView {
                    key: e.key.clone(),
                    remaining_requests: buckets[0].map(|b| b.available(now_ms)),
                    remaining_tokens: buckets[1].map(|b| b.available(now_ms)),
                    reset_in_ms: until.saturating_sub(now_ms),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(left: u64, limit: Option<u64>, reset_in_ms: u64) -> Remaining {
        Remaining {
            left,
            limit,
            reset_in_ms,
        }
    }

    fn requests(left: u64, limit: Option<u64>, reset_in_ms: u64) -> LimitReport {
        LimitReport {
            requests: Some(window(left, limit, reset_in_ms)),
            ..LimitReport::default()
        }
    }

    fn tokens(left: u64, limit: Option<u64>, reset_in_ms: u64) -> LimitReport {
        LimitReport {
            tokens: Some(window(left, limit, reset_in_ms)),
            ..LimitReport::default()
        }
    }

    #[test]
    fn an_unknown_key_goes_at_once() {
        let mut learned = LearnedLimits::default();
        assert_eq!(learned.take("target:a", 1000, 0, 0, false), Ok(0));
        assert_eq!(learned.views(0), [], "nothing reported, nothing to show");
    }

    #[test]
    fn what_is_left_goes_at_once_then_calls_leave_one_by_one_with_the_refill() {
        let mut learned = LearnedLimits::default();
        // 2 of 7 left, whole in 4 s: at least 4 more in 4 s, one a second.
        learned.adopt("target:a", &requests(2, Some(7), 4000), 0, 1000);
        let waits: Vec<_> = (0..5)
            .map(|_| learned.take("target:a", 0, 1000, 5000, false))
            .collect();
        assert_eq!(waits, [Ok(0), Ok(0), Ok(1000), Ok(2000), Ok(3000)]);
        // Past max_wait: refused, nothing booked.
        assert_eq!(learned.take("target:a", 0, 1000, 3500, false), Err(4000));
        assert_eq!(learned.take("target:a", 0, 1500, 5000, false), Ok(3500));
        // Whole again once the refill has covered our calls: forgotten.
        assert_eq!(learned.take("target:a", 0, 20_000, 0, false), Ok(0));
        assert_eq!(learned.views(20_000)[0].remaining_requests, None);
    }

    #[test]
    fn without_a_reported_limit_one_unit_comes_back_per_reset() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:a", &requests(0, None, 2000), 0, 0);
        assert_eq!(learned.take("target:a", 0, 0, 10_000, false), Ok(2000));
        assert_eq!(learned.take("target:a", 0, 0, 10_000, false), Ok(4000));
    }

    #[test]
    fn tokens_wait_for_the_estimate_to_fit() {
        let mut learned = LearnedLimits::default();
        // 1000 of 60001 left, whole in 59 s: 59000 surely back by then, 1000 a second.
        learned.adopt("target:a", &tokens(1000, Some(60_001), 59_000), 0, 0);
        assert_eq!(learned.take("target:a", 800, 0, 0, false), Ok(0));
        // 200 left: a 300-token call waits 100 ms, a 1200-token one 1 s after it.
        assert_eq!(learned.take("target:a", 300, 0, 0, false), Err(100));
        assert_eq!(learned.take("target:a", 300, 0, 100, false), Ok(100));
        assert_eq!(learned.take("target:a", 1000, 0, 5000, false), Ok(1100));
        // Without an estimate, a call waits only for one token.
        learned.adopt("target:b", &tokens(0, None, 1000), 0, 10);
        assert_eq!(learned.take("target:b", 0, 10, 0, false), Err(1000));
    }

    #[test]
    fn a_new_report_replaces_the_bucket_and_a_hint_only_lengthens_the_hold() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:a", &requests(0, Some(10), 10_000), 0, 0);
        learned.adopt("target:a", &requests(5, Some(10), 10_000), 0, 100);
        assert_eq!(learned.take("target:a", 0, 100, 0, false), Ok(0));
        let hold = |ms| LimitReport {
            retry_after_ms: Some(ms),
            ..LimitReport::default()
        };
        learned.adopt("target:a", &hold(2000), 0, 100);
        learned.adopt("target:a", &hold(500), 0, 200);
        assert_eq!(learned.take("target:a", 0, 200, 0, false), Err(1900));
        assert_eq!(learned.take("target:a", 0, 2100, 0, false), Ok(0));
        // A report of a bucket already whole holds nothing back.
        learned.adopt("target:a", &requests(0, Some(10), 0), 0, 2100);
        assert_eq!(learned.take("target:a", 0, 2100, 0, false), Ok(0));
        // Other keys are untouched.
        assert_eq!(learned.take("target:b", 0, 200, 0, false), Ok(0));
    }

    #[test]
    fn calls_still_waiting_are_carried_into_the_next_report() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:a", &requests(0, Some(1), 1000), 0, 0);
        assert_eq!(learned.take("target:a", 0, 0, 5000, false), Ok(1000));
        assert_eq!(learned.take("target:a", 0, 0, 5000, false), Ok(2000));
        // At 1500 the call booked at 2000 has not been sent: the provider's report cannot count it.
        learned.adopt("target:a", &requests(0, Some(1), 500), 0, 1500);
        assert_eq!(learned.take("target:a", 0, 1500, 5000, false), Ok(1000));
    }

    #[test]
    fn views_show_what_is_available_while_the_report_holds() {
        let mut learned = LearnedLimits::default();
        let both = LimitReport {
            requests: Some(window(3, Some(4), 1000)),
            tokens: Some(window(900, Some(1000), 5000)),
            retry_after_ms: None,
        };
        learned.adopt("target:b", &both, 0, 0);
        learned.adopt("target:a", &requests(0, Some(2), 2000), 0, 0);
        assert_eq!(
            learned.views(500),
            [
                LearnedView {
                    key: "target:a".into(),
                    remaining_requests: Some(0),
                    remaining_tokens: None,
                    reset_in_ms: 1500,
                },
                LearnedView {
                    key: "target:b".into(),
                    remaining_requests: Some(3),
                    remaining_tokens: Some(909),
                    reset_in_ms: 4500,
                },
            ]
        );
        let later = learned.views(6000);
        assert_eq!(later[1].remaining_requests, None);
        assert_eq!(later[1].reset_in_ms, 0);
    }

    #[test]
    fn at_most_max_learned_keys_are_kept_the_least_recently_reported_evicted() {
        let mut learned = LearnedLimits::default();
        let none_left = requests(0, None, 60_000);
        for i in 0..MAX_LEARNED {
            learned.adopt(&format!("target:{i}"), &none_left, 0, 0);
        }
        learned.adopt("target:0", &none_left, 0, 1);
        learned.adopt("target:new", &none_left, 0, 2);
        assert_eq!(learned.views(2).len(), MAX_LEARNED);
        // target:1 was the least recently reported: forgotten, its calls go.
        assert_eq!(learned.take("target:1", 0, 2, 0, false), Ok(0));
        assert!(learned.take("target:0", 0, 2, 0, false).is_err());
        assert!(learned.take("target:new", 0, 2, 0, false).is_err());
    }
}
