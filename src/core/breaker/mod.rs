//! The circuit breaker: stop calling an upstream that is down, and find out cheaply when it is back.
//!
//! Why a breaker when there are already retries? Retries help with blips; in an outage they only
//! add load and make every caller wait through timeouts. A breaker notices the outage (too many
//! failures in a row, or too high a failure rate over a rolling window) and *fails fast*: calls are
//! rejected at once, with a `retry_after`, instead of each one discovering the outage on its own.
//! After `reset_timeout_ms` a few probes are let through; their results decide whether to close
//! again or stay open for another period.
//!
//! What counts as a failure ([`verdict_for_status`])? 5xx (including Anthropic's 529 "overloaded"),
//! timeouts and network errors: the upstream is unhealthy. A 429 or another 4xx is
//! [`Verdict::Ignored`]: the upstream is healthy and is telling *this client* something (slow down,
//! bad request, wrong key). Opening the circuit on 429s would turn a rate limit into an outage, and
//! counting them as successes would hide real failures among them.
//!
//! Why two trip rules? Consecutive failures (`failure_threshold`) react fast at low traffic, where
//! percentages are noise. The failure percentage over the window (`error_threshold_percentage`, once
//! `volume_threshold` calls are in it) catches an upstream that fails half its calls with the odd
//! success in between, which would reset a consecutive counter forever.
//!
//! Why lazy? There is no timer in the core. `Open` turns into `HalfOpen` the first time the breaker
//! is looked at after `reset_timeout_ms`; the window rotates from `now_ms` likewise.
//!
//! Permits and late results. Every admitted call holds a [`Permit`] and hands it back to
//! [`Breaker::record`]. A permit remembers the *epoch* of the state that issued it, and every state
//! transition starts a new epoch. A result whose permit belongs to an earlier epoch is ignored: a
//! slow call admitted while `Closed` that fails after the breaker opened says nothing new, and must
//! neither count as a probe nor re-open a half-open breaker; a probe that returns after its
//! half-open period ended must not free a slot in the next one. Only probes (`permit.probe`) of the
//! current half-open period move the half-open state.
//!
//! Lost probes. A probe whose result never comes back (its future was dropped without calling
//! `record`) would hold its half-open slot forever and wedge the breaker. So probe slots are a
//! lease: if no probe has been admitted for `reset_timeout_ms` while slots are still taken, the
//! slots are reclaimed (and the outstanding probes' results will be ignored). The pipeline should
//! still record an aborted call as [`Verdict::Ignored`], which frees its slot at once.
//!
//! Half-open rejections carry `retry_after = 0`: the breaker cannot know when the in-flight probe
//! will finish, and the state may change at any moment. It means "not now", not "retry in a loop".
//!
//! Configuration edge cases (the values are validated elsewhere; these keep the breaker total):
//! `failure_threshold = 0` and `error_threshold_percentage = 0` disable their rule (a percentage
//! above 100 can never trip either), `volume_threshold`, `half_open_max_calls` and
//! `success_threshold` count as at least 1.

pub mod registry;
mod window;

use window::RollingWindow;

/// Circuit breaker configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit (0: rule disabled).
    pub failure_threshold: u32,
    /// Failure percentage over the window that opens the circuit (0: rule disabled).
    pub error_threshold_percentage: u32,
    /// Calls (successes + failures) needed in the window before the percentage rule applies.
    pub volume_threshold: u32,
    /// Length of the rolling window.
    pub window_ms: u64,
    /// How long the circuit stays open before letting probes through.
    pub reset_timeout_ms: u64,
    /// Concurrent probes allowed while half-open.
    pub half_open_max_calls: u32,
    /// Probe successes needed to close the circuit.
    pub success_threshold: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            error_threshold_percentage: 50,
            volume_threshold: 5,
            window_ms: 10_000,
            reset_timeout_ms: 30_000,
            half_open_max_calls: 1,
            success_threshold: 1,
        }
    }
}

/// The breaker's state, as stored (see [`Breaker::snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls flow; failures are being counted.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
    },
    /// Calls are rejected until `opened_at + reset_timeout_ms`.
    Open {
        /// When the circuit opened (monotonic ms).
        opened_at: u64,
    },
    /// A limited number of probe calls decide whether to close.
    HalfOpen {
        /// Probes admitted and not yet recorded.
        in_flight: u32,
        /// Probe successes so far.
        successes: u32,
    },
}

/// The kind of a [`State`], for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// See [`State::Closed`].
    Closed,
    /// See [`State::Open`].
    Open,
    /// See [`State::HalfOpen`].
    HalfOpen,
}

impl StateKind {
    /// `"closed"`, `"open"` or `"half-open"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Closed => "closed",
            StateKind::Open => "open",
            StateKind::HalfOpen => "half-open",
        }
    }
}

/// Permission to make one call. Hand it back to [`Breaker::record`] with the call's verdict.
#[derive(Debug)]
#[must_use = "a permit must be passed back to Breaker::record"]
pub struct Permit {
    /// Whether this call is a half-open probe.
    pub probe: bool,
    epoch: u64,
}

/// How a call's result counts for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The upstream is healthy.
    Success,
    /// The upstream is unhealthy (5xx, timeout, network error).
    Failure,
    /// Says nothing about the upstream's health (4xx, 429, aborted by the caller).
    Ignored,
}

impl Verdict {
    /// `"success"`, `"failure"` or `"ignored"`: the name a shared-state store is told.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Failure => "failure",
            Verdict::Ignored => "ignored",
        }
    }

    /// The verdict [`Verdict::as_str`] names; any other name is `Ignored`, which says nothing
    /// about the upstream's health (a store must not open a breaker on a word it cannot read).
    pub fn from_name(name: &str) -> Verdict {
        match name {
            "success" => Verdict::Success,
            "failure" => Verdict::Failure,
            _ => Verdict::Ignored,
        }
    }
}

/// 2xx/3xx: success; 5xx (including 529): failure; anything else (429, other 4xx, 1xx, nonsense):
/// ignored.
pub fn verdict_for_status(status: u16) -> Verdict {
    match status {
        200..=399 => Verdict::Success,
        500..=599 => Verdict::Failure,
        _ => Verdict::Ignored,
    }
}

/// A circuit breaker for one upstream (see the module doc).
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: State,
    window: RollingWindow,
    /// Bumped on every state transition; permits of older epochs are stale.
    epoch: u64,
    /// While half-open: when the last probe was admitted (or half-open began).
    lease_start: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        Breaker {
            window: RollingWindow::new(cfg.window_ms),
            cfg,
            state: State::Closed {
                consecutive_failures: 0,
            },
            epoch: 0,
            lease_start: 0,
        }
    }

    /// Ask to make a call at `now_ms`: a permit, or `Err(retry_after_ms)` while the circuit is open
    /// (time left until probes are admitted) or half-open with all probe slots taken (0).
    pub fn try_acquire(&mut self, now_ms: u64) -> Result<Permit, u64> {
        self.advance(now_ms);
        match &mut self.state {
            State::Closed { .. } => Ok(Permit {
                probe: false,
                epoch: self.epoch,
            }),
            State::Open { opened_at } => Err(opened_at
                .saturating_add(self.cfg.reset_timeout_ms)
                .saturating_sub(now_ms)
                .min(self.cfg.reset_timeout_ms)),
            State::HalfOpen { in_flight, .. } => {
                if *in_flight < self.cfg.half_open_max_calls.max(1) {
                    *in_flight += 1;
                    self.lease_start = now_ms;
                    Ok(Permit {
                        probe: true,
                        epoch: self.epoch,
                    })
                } else {
                    Err(0)
                }
            }
        }
    }

    /// Report the result of the call that `permit` admitted. Stale permits (issued before the
    /// latest state transition) are ignored.
    pub fn record(&mut self, now_ms: u64, permit: Permit, verdict: Verdict) {
        self.advance(now_ms);
        if permit.epoch != self.epoch {
            return;
        }
        match &mut self.state {
            State::Closed {
                consecutive_failures,
            } => match verdict {
                Verdict::Ignored => {}
                Verdict::Success => {
                    *consecutive_failures = 0;
                    self.window.record(now_ms, true);
                }
                Verdict::Failure => {
                    *consecutive_failures = consecutive_failures.saturating_add(1);
                    let consecutive = *consecutive_failures;
                    self.window.record(now_ms, false);
                    if self.should_trip(now_ms, consecutive) {
                        self.transition(State::Open { opened_at: now_ms });
                    }
                }
            },
            // Unreachable with a current-epoch permit (no permit is issued while open), but a
            // forged permit must not do anything.
            State::Open { .. } => {}
            State::HalfOpen {
                in_flight,
                successes,
            } => {
                if !permit.probe {
                    return;
                }
                *in_flight = in_flight.saturating_sub(1);
                match verdict {
                    Verdict::Ignored => {}
                    Verdict::Success => {
                        *successes = successes.saturating_add(1);
                        if *successes >= self.cfg.success_threshold.max(1) {
                            self.window.reset();
                            self.transition(State::Closed {
                                consecutive_failures: 0,
                            });
                        }
                    }
                    Verdict::Failure => self.transition(State::Open { opened_at: now_ms }),
                }
            }
        }
    }

    /// The state kind at `now_ms` (an `Open` circuit past its reset timeout reads as half-open).
    pub fn state(&mut self, now_ms: u64) -> StateKind {
        self.advance(now_ms);
        match self.state {
            State::Closed { .. } => StateKind::Closed,
            State::Open { .. } => StateKind::Open,
            State::HalfOpen { .. } => StateKind::HalfOpen,
        }
    }

    /// While open at `now_ms`: how long until a probe is allowed.
    pub fn opens_in(&mut self, now_ms: u64) -> Option<u64> {
        self.advance(now_ms);
        match self.state {
            State::Open { opened_at } => Some(
                opened_at
                    .saturating_add(self.cfg.reset_timeout_ms)
                    .saturating_sub(now_ms)
                    .min(self.cfg.reset_timeout_ms),
            ),
            _ => None,
        }
    }

    /// Failures since the last success while closed; 0 when open or half-open.
    pub fn consecutive_failures(&self) -> u32 {
        match self.state {
            State::Closed {
                consecutive_failures,
            } => consecutive_failures,
            _ => 0,
        }
    }

    /// The stored state, without lazy transitions (an `Open` state may already be due to turn
    /// half-open). The rolling window is not part of it.
    pub fn snapshot(&self) -> State {
        self.state
    }

    /// Adopt `state` (e.g. from [`snapshot`](Self::snapshot) of another instance) at `now_ms`.
    /// Outstanding permits become stale. An `opened_at` in the future of `now_ms` (another clock's
    /// origin) is clamped to `now_ms`; half-open `in_flight` is reset to 0, since those probes'
    /// results will never reach this instance; the rolling window is cleared.
    pub fn restore(&mut self, state: State, now_ms: u64) {
        let state = match state {
            State::Open { opened_at } => State::Open {
                opened_at: opened_at.min(now_ms),
            },
            State::HalfOpen { successes, .. } => State::HalfOpen {
                in_flight: 0,
                successes,
            },
            closed @ State::Closed { .. } => closed,
        };
        self.window.reset();
        self.lease_start = now_ms;
        self.transition(state);
    }

    fn should_trip(&mut self, now_ms: u64, consecutive: u32) -> bool {
        let threshold = self.cfg.failure_threshold;
        if threshold > 0 && consecutive >= threshold {
            return true;
        }
        let pct = u64::from(self.cfg.error_threshold_percentage);
        if pct == 0 {
            return false;
        }
        let (successes, failures) = self.window.totals(now_ms);
        let total = successes + failures;
        total >= u64::from(self.cfg.volume_threshold.max(1))
            && failures.saturating_mul(100) >= pct.saturating_mul(total)
    }

    fn transition(&mut self, state: State) {
        self.state = state;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The lazy transitions: open -> half-open after the reset timeout, and reclaiming the slots of
    /// lost probes.
    fn advance(&mut self, now_ms: u64) {
        let reset = self.cfg.reset_timeout_ms;
        match self.state {
            State::Open { opened_at } if now_ms >= opened_at.saturating_add(reset) => {
                self.lease_start = now_ms;
                self.transition(State::HalfOpen {
                    in_flight: 0,
                    successes: 0,
                });
            }
            State::HalfOpen {
                in_flight,
                successes,
            } if in_flight > 0 && now_ms >= self.lease_start.saturating_add(reset) => {
                self.lease_start = now_ms;
                self.transition(State::HalfOpen {
                    in_flight: 0,
                    successes,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &mut Breaker, now: u64) {
        if let Ok(p) = b.try_acquire(now) {
            b.record(now, p, Verdict::Failure);
        }
    }

    #[test]
    fn verdict_names_read_back_and_unknown_names_are_ignored() {
        for verdict in [Verdict::Success, Verdict::Failure, Verdict::Ignored] {
            assert_eq!(Verdict::from_name(verdict.as_str()), verdict);
        }
        assert_eq!(Verdict::from_name("Failure"), Verdict::Ignored);
        assert_eq!(Verdict::from_name(""), Verdict::Ignored);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict_for_status(200), Verdict::Success);
        assert_eq!(verdict_for_status(304), Verdict::Success);
        assert_eq!(verdict_for_status(429), Verdict::Ignored);
        assert_eq!(verdict_for_status(404), Verdict::Ignored);
        assert_eq!(verdict_for_status(100), Verdict::Ignored);
        assert_eq!(verdict_for_status(0), Verdict::Ignored);
        assert_eq!(verdict_for_status(500), Verdict::Failure);
        assert_eq!(verdict_for_status(529), Verdict::Failure);
        assert_eq!(StateKind::HalfOpen.as_str(), "half-open");
        assert_eq!(StateKind::Open.as_str(), "open");
        assert_eq!(StateKind::Closed.as_str(), "closed");
    }

    #[test]
    fn consecutive_failures_reset_on_success_not_on_ignored() {
        let mut b = Breaker::new(BreakerConfig {
            error_threshold_percentage: 0,
            ..BreakerConfig::default()
        });
        for _ in 0..4 {
            fail(&mut b, 0);
        }
        let p = b.try_acquire(0).map_err(|_| ()).unwrap();
        b.record(0, p, Verdict::Ignored);
        assert_eq!(b.consecutive_failures(), 4);
        let p = b.try_acquire(0).map_err(|_| ()).unwrap();
        b.record(0, p, Verdict::Success);
        assert_eq!(b.consecutive_failures(), 0);
        for _ in 0..4 {
            fail(&mut b, 0);
        }
        assert_eq!(b.state(0), StateKind::Closed);
        fail(&mut b, 0);
        assert_eq!(b.state(0), StateKind::Open);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn stale_closed_permit_is_ignored() {
        let mut b = Breaker::new(BreakerConfig::default());
        let slow = b.try_acquire(0).map_err(|_| ()).unwrap();
        for _ in 0..5 {
            fail(&mut b, 0);
        }
        assert_eq!(b.state(30_000), StateKind::HalfOpen);
        let probe = b.try_acquire(30_000).map_err(|_| ()).unwrap();
        assert!(probe.probe);
        // The slow closed-era call fails now: no effect on the half-open state.
        b.record(30_001, slow, Verdict::Failure);
        assert_eq!(
            b.snapshot(),
            State::HalfOpen {
                in_flight: 1,
                successes: 0
            }
        );
        b.record(30_002, probe, Verdict::Success);
        assert_eq!(b.state(30_002), StateKind::Closed);
    }

    #[test]
    fn stale_probe_does_not_free_a_later_slot() {
        let mut b = Breaker::new(BreakerConfig {
            half_open_max_calls: 2,
            ..BreakerConfig::default()
        });
        for _ in 0..5 {
            fail(&mut b, 0);
        }
        let p1 = b.try_acquire(30_000).map_err(|_| ()).unwrap();
        let p2 = b.try_acquire(30_000).map_err(|_| ()).unwrap();
        assert_eq!(b.try_acquire(30_000).err(), Some(0));
        b.record(30_100, p1, Verdict::Failure);
        assert_eq!(b.state(30_100), StateKind::Open);
        let p3 = b.try_acquire(60_100).map_err(|_| ()).unwrap();
        b.record(60_200, p2, Verdict::Success);
        assert_eq!(
            b.snapshot(),
            State::HalfOpen {
                in_flight: 1,
                successes: 0
            }
        );
        b.record(60_300, p3, Verdict::Ignored);
        assert_eq!(
            b.snapshot(),
            State::HalfOpen {
                in_flight: 0,
                successes: 0
            }
        );
    }

    #[test]
    fn lost_probe_slot_is_reclaimed() {
        let mut b = Breaker::new(BreakerConfig::default());
        for _ in 0..5 {
            fail(&mut b, 0);
        }
        let lost = b.try_acquire(30_000).map_err(|_| ()).unwrap();
        assert_eq!(b.try_acquire(59_999).err(), Some(0));
        let p = b.try_acquire(60_000).map_err(|_| ()).unwrap();
        b.record(60_001, lost, Verdict::Failure);
        assert_eq!(b.state(60_001), StateKind::HalfOpen);
        b.record(60_002, p, Verdict::Success);
        assert_eq!(b.state(60_002), StateKind::Closed);
    }

    #[test]
    fn success_threshold_needs_several_probes() {
        let mut b = Breaker::new(BreakerConfig {
            success_threshold: 3,
            ..BreakerConfig::default()
        });
        for _ in 0..5 {
            fail(&mut b, 0);
        }
        for i in 0..3u64 {
            assert_eq!(b.state(30_000 + i), StateKind::HalfOpen);
            let p = b.try_acquire(30_000 + i).map_err(|_| ()).unwrap();
            b.record(30_000 + i, p, Verdict::Success);
        }
        assert_eq!(b.state(30_003), StateKind::Closed);
    }

    #[test]
    fn restore_clamps() {
        let mut b = Breaker::new(BreakerConfig::default());
        b.restore(
            State::Open {
                opened_at: u64::MAX,
            },
            1000,
        );
        assert_eq!(b.try_acquire(1000).err(), Some(30_000));
        b.restore(
            State::HalfOpen {
                in_flight: 7,
                successes: 0,
            },
            1000,
        );
        assert!(b.try_acquire(1000).is_ok_and(|p| p.probe));
        b.restore(
            State::Closed {
                consecutive_failures: 4,
            },
            1000,
        );
        fail(&mut b, 1000);
        assert_eq!(b.state(1000), StateKind::Open);
    }

    #[test]
    fn degenerate_config_is_total() {
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 0,
            error_threshold_percentage: 0,
            volume_threshold: 0,
            window_ms: 0,
            reset_timeout_ms: 0,
            half_open_max_calls: 0,
            success_threshold: 0,
        });
        for t in 0..100 {
            fail(&mut b, t);
        }
        assert_eq!(b.state(100), StateKind::Closed);
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            reset_timeout_ms: u64::MAX,
            ..BreakerConfig::default()
        });
        fail(&mut b, 10);
        assert_eq!(b.try_acquire(15).err(), Some(u64::MAX - 15));
        // A clock that went backwards: never more than the reset timeout.
        assert_eq!(b.try_acquire(0).err(), Some(u64::MAX));
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::default()
        });
        fail(&mut b, u64::MAX - 1);
        assert_eq!(b.try_acquire(u64::MAX - 1).err(), Some(1));
        assert!(b.try_acquire(u64::MAX).is_ok());
    }
}
