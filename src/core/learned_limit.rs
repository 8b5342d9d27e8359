//! Rate limits learned from the provider's own headers, per chat target.
//!
//! Why learn them, when `rateLimit` can be configured? The configured figures are a guess made once;
//! the provider's are the truth, shared with every other client on the same key, and they change
//! with the tier, the model and the traffic of the caller's colleagues. Each answer says what is left
//! and when it refills ([`limit_headers`](crate::core::retry::limit_headers)); a target's learned
//! bucket adopts that, so that the next call waits for the refill (within `maxWaitMs`) or is refused
//! at once, as a `RateLimitError` the fallback chain moves past, instead of earning a 429.
//!
//! The model is the provider's, taken at its word and nothing more: while a window reports requests
//! (or tokens) left, a call goes and counts one (and its estimated tokens) down; at 0 (or fewer
//! tokens than the call's estimate), calls wait for that window's reset. A reset past, the window is
//! forgotten: the next answer says what the new one holds. A retry hint (Azure's
//! `x-ms-retry-after-ms`, a 429's `Retry-After`) holds every call until it has passed. The next
//! answer's report replaces the windows (it counts every call the provider has seen, ours among
//! them); a hint only ever lengthens the hold.
//!
//! Why per target and not per origin? Providers limit per model (OpenAI) or per key and model
//! class (Anthropic): one origin serves many limits, so learning per origin would let one model's
//! exhausted limit hold back calls to another. A chat target is one model on one key. Plain
//! `client.fetch` calls therefore learn nothing. The targets are few (a client has at most 16), but
//! the store is bounded anyway, at [`MAX_LEARNED`] keys, the least recently reported evicted.
//!
//! Times are the platform's monotonic milliseconds; reports are relative delays, so the clock of the
//! machine that read them does not matter.

use crate::core::retry::limit_headers::{LimitReport, Remaining};

/// Most keys whose limits are kept.
pub const MAX_LEARNED: usize = 64;

/// One window of a learned limit: `left` until `reset_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    left: u64,
    reset_at: u64,
}

impl Window {
    fn from_report(remaining: Remaining, now_ms: u64) -> Window {
        Window {
            left: remaining.left,
            reset_at: now_ms.saturating_add(remaining.reset_in_ms),
        }
    }

    /// The window while it lasts; `None` once reset.
    fn active(window: Option<Window>, now_ms: u64) -> Option<Window> {
        window.filter(|w| w.reset_at > now_ms)
    }
}

#[derive(Debug, Clone)]
struct Learned {
    key: String,
    requests: Option<Window>,
    tokens: Option<Window>,
    held_until: u64,
    stamp: u64,
}

impl Learned {
    /// The earliest instant a call estimated at `tokens` may go.
    fn ready_at(&self, tokens: u64, now_ms: u64) -> u64 {
        let mut at = self.held_until.max(now_ms);
        if let Some(w) = Window::active(self.requests, now_ms).filter(|w| w.left == 0) {
            at = at.max(w.reset_at);
        }
        if let Some(w) = Window::active(self.tokens, now_ms).filter(|w| w.left < tokens.max(1)) {
            at = at.max(w.reset_at);
        }
        at
    }
}

/// A snapshot of one key's learned limit, for `stats()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedView {
    /// The bucket key (`target:<name>`).
    pub key: String,
    /// Requests left, while the provider's window lasts.
    pub remaining_requests: Option<u64>,
    /// Tokens left, while the provider's window lasts.
    pub remaining_tokens: Option<u64>,
    /// Milliseconds until the call that would wait longest could go (0: calls go now).
    pub reset_in_ms: u64,
}

/// The learned limits of a client's targets, at most [`MAX_LEARNED`] keys.
#[derive(Debug, Default)]
pub struct LearnedLimits {
    entries: Vec<Learned>,
    tick: u64,
}

impl LearnedLimits {
    /// Adopts what an answer for `key` reported at `now_ms`.
    pub fn adopt(&mut self, key: &str, report: &LimitReport, now_ms: u64) {
        self.tick = self.tick.wrapping_add(1);
        let stamp = self.tick;
        let index = match self.entries.iter().position(|e| e.key == key) {
            Some(index) => index,
            None => {
                if self.entries.len() >= MAX_LEARNED {
                    let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].stamp);
                    if let Some(oldest) = oldest {
                        self.entries.swap_remove(oldest);
                    }
                }
                self.entries.push(Learned {
                    key: key.to_string(),
                    requests: None,
                    tokens: None,
                    held_until: 0,
                    stamp,
                });
                self.entries.len() - 1
            }
        };
        let Some(entry) = self.entries.get_mut(index) else {
            return;
        };
        entry.stamp = stamp;
        if let Some(requests) = report.requests {
            entry.requests = Some(Window::from_report(requests, now_ms));
        }
        if let Some(tokens) = report.tokens {
            entry.tokens = Some(Window::from_report(tokens, now_ms));
        }
        if let Some(ms) = report.retry_after_ms {
            entry.held_until = entry.held_until.max(now_ms.saturating_add(ms));
        }
    }

    /// Admits a call on `key` estimated at `tokens`: `Ok(0)` it goes now (and is counted down),
    /// `Ok(wait)` it may go after `wait` ms (the refill it waits for), `Err(retry_after)` the wait
    /// would pass `max_wait_ms`.
    pub fn take(
        &mut self,
        key: &str,
        tokens: u64,
        now_ms: u64,
        max_wait_ms: u64,
    ) -> Result<u64, u64> {
        let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) else {
            return Ok(0);
        };
        let wait = entry.ready_at(tokens, now_ms) - now_ms;
        if wait > max_wait_ms {
            return Err(wait);
        }
        if wait == 0 {
            for (window, cost) in [(&mut entry.requests, 1), (&mut entry.tokens, tokens)] {
                if let Some(w) = window.as_mut().filter(|w| w.reset_at > now_ms) {
                    w.left = w.left.saturating_sub(cost);
                }
            }
        }
        Ok(wait)
    }

    /// Every key's learned limit at `now_ms`, by key.
    pub fn views(&self, now_ms: u64) -> Vec<LearnedView> {
        let mut entries: Vec<&Learned> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
            .into_iter()
            .map(|e| {
                let windows = [e.requests, e.tokens].map(|w| Window::active(w, now_ms));
                let until = windows
                    .iter()
                    .flatten()
                    .map(|w| w.reset_at)
                    .chain([e.held_until])
                    .max()
                    .unwrap_or(0);
                LearnedView {
                    key: e.key.clone(),
                    remaining_requests: windows[0].map(|w| w.left),
                    remaining_tokens: windows[1].map(|w| w.left),
                    reset_in_ms: until.saturating_sub(now_ms),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(requests: Option<(u64, u64)>, tokens: Option<(u64, u64)>) -> LimitReport {
        let window = |(left, reset_in_ms)| Remaining { left, reset_in_ms };
        LimitReport {
            requests: requests.map(window),
            tokens: tokens.map(window),
            retry_after_ms: None,
        }
    }

    #[test]
    fn an_unknown_key_goes_at_once() {
        let mut learned = LearnedLimits::default();
        assert_eq!(learned.take("target:a", 1000, 0, 0), Ok(0));
    }

    #[test]
    fn the_last_request_left_goes_then_calls_wait_for_the_reset() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:a", &report(Some((2, 3000)), None), 1000);
        assert_eq!(learned.take("target:a", 0, 1000, 5000), Ok(0));
        assert_eq!(learned.take("target:a", 0, 1100, 5000), Ok(0));
        // None left until t = 4000.
        assert_eq!(learned.take("target:a", 0, 1500, 5000), Ok(2500));
        assert_eq!(learned.take("target:a", 0, 1500, 2000), Err(2500));
        // The window reset: forgotten until the next report.
        assert_eq!(learned.take("target:a", 0, 4000, 0), Ok(0));
        assert_eq!(learned.take("target:a", 0, 4000, 0), Ok(0));
    }

    #[test]
    fn tokens_wait_when_fewer_are_left_than_the_estimate() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:a", &report(None, Some((1000, 60_000))), 0);
        assert_eq!(learned.take("target:a", 800, 0, 0), Ok(0));
        // 200 left: a 300-token call waits, a 100-token call goes.
        assert_eq!(learned.take("target:a", 300, 0, 0), Err(60_000));
        assert_eq!(learned.take("target:a", 100, 0, 0), Ok(0));
        // Without an estimate, a call waits only when none is left.
        assert_eq!(learned.take("target:a", 0, 0, 0), Ok(0));
        learned.adopt("target:a", &report(None, Some((0, 1000))), 10);
        assert_eq!(learned.take("target:a", 0, 10, 0), Err(1000));
    }

    #[test]
    fn a_new_report_replaces_the_windows_and_a_hint_only_lengthens_the_hold() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:a", &report(Some((0, 10_000)), None), 0);
        learned.adopt("target:a", &report(Some((5, 10_000)), None), 100);
        assert_eq!(learned.take("target:a", 0, 100, 0), Ok(0));
        let hold = |ms| LimitReport {
            retry_after_ms: Some(ms),
            ..LimitReport::default()
        };
        learned.adopt("target:a", &hold(2000), 100);
        learned.adopt("target:a", &hold(500), 200);
        assert_eq!(learned.take("target:a", 0, 200, 0), Err(1900));
        assert_eq!(learned.take("target:a", 0, 2100, 0), Ok(0));
        // Other keys are untouched.
        assert_eq!(learned.take("target:b", 0, 200, 0), Ok(0));
    }

    #[test]
    fn views_show_what_is_left_while_it_lasts() {
        let mut learned = LearnedLimits::default();
        learned.adopt("target:b", &report(Some((3, 1000)), Some((900, 5000))), 0);
        learned.adopt("target:a", &report(Some((0, 2000)), None), 0);
        let views = learned.views(500);
        assert_eq!(
            views,
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
                    remaining_tokens: Some(900),
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
        let none_left = report(Some((0, 60_000)), None);
        for i in 0..MAX_LEARNED {
            learned.adopt(&format!("target:{i}"), &none_left, 0);
        }
        learned.adopt("target:0", &none_left, 1);
        learned.adopt("target:new", &none_left, 2);
        assert_eq!(learned.views(2).len(), MAX_LEARNED);
        // target:1 was the least recently reported: forgotten, its calls go.
        assert_eq!(learned.take("target:1", 0, 2, 0), Ok(0));
        assert!(learned.take("target:0", 0, 2, 0).is_err());
        assert!(learned.take("target:new", 0, 2, 0).is_err());
    }
}
