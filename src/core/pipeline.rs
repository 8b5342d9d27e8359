//! The request pipeline: rate limit -> circuit breaker -> retry loop -> attempt with timeouts.
//!
//! One async function composes the policies, generic over the [`Platform`], so the same code runs on
//! `fetch` in a browser or Worker and on a simulated clock in native tests. Policy state lives in one
//! `RefCell` that is borrowed only between awaits. Cancellation is `Drop`: when the caller aborts, the
//! future is dropped, and guards give back what the call held (a rate-limit reservation, a half-open
//! probe slot) so an abort never leaks capacity.
//!
//! Admission (the bucket, then the breaker) has one path, whether the [`StateStore`] that answers is
//! this client's own ([`LocalState`]) or one shared across isolates (`sharedState`): either way a
//! refusal is counted and emitted, a wait is bounded by `timeout.totalMs`, and the client's own
//! settings apply.

use crate::core::breaker::{verdict_for_status, Permit, Verdict};
use crate::core::config::{ClientConfig, Scope, Timeouts};
use crate::core::dedupe::{Flights, Share, Work};
use crate::core::error::{Failure, TimeoutPhase};
use crate::core::event::{Event, RetryReason};
use crate::core::learned_limit::LearnedView;
use crate::core::local_state::{BreakerView, LocalState};
use crate::core::platform::{Platform, ResponseMeta, SendError};
use crate::core::race::{race, Either};
use crate::core::rate_limit::{RateLimitConfig, Reservation};
use crate::core::retry::budget::{DEFAULT_MIN_PER_SEC, DEFAULT_TTL_MS};
use crate::core::retry::limit_headers::read_limits;
use crate::core::retry::{Decision, Outcome, RetryBudget, RetryConfig, RetryState};
use crate::core::rng::Rng;
use crate::core::state_store::{OwnOrShared, StateStore};
use crate::core::stats::Stats;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// One call as the pipeline sees it.
#[derive(Debug)]
pub struct CallSpec<R> {
    /// The request, sent as is on every attempt.
    pub request: R,
    /// The absolute URL, for events and messages.
    pub url: String,
    /// `scheme://host:port`, the default breaker and bucket key.
    pub origin: String,
    /// Optional per-caller rate-limit key (e.g. a user id).
    pub rate_key: Option<String>,
    /// Deadlines for this call.
    pub timeout: Timeouts,
    /// Time the call spent before the pipeline (looking up the cache), already counted against
    /// `timeout.total_ms`.
    pub spent_ms: u64,
    /// Retry policy for this call; `None` sends once.
    pub retry: Option<RetryConfig>,
    /// Estimated tokens, charged to a tokens-per-minute bucket.
    pub tokens: u64,
    /// Learn the provider's rate limits from its answers' headers, keyed by `origin`, and admit
    /// the call on what was learned (a chat target's; see [`learned_limit`](crate::core::learned_limit)).
    pub learn_limits: bool,
}

/// The upstream's final response, with what it took to get it (attempts, a too-long Retry-After,
/// the token charge).
#[derive(Debug)]
pub struct UpstreamResponse<R> {
    /// The final response (possibly an error status after exhausted retries).
    pub response: R,
    /// Attempts made, 1 when the first one answered.
    pub attempts: u32,
    /// Set when the server asked for a longer wait than `maxRetryAfterMs`: the call returned at once.
    pub retry_after_ms: Option<u64>,
    /// The estimated token charge, to settle with [`Engine::settle_tokens`] once usage is known.
    pub tokens: Option<TokenTicket>,
}

/// A tokens-per-minute charge made on an estimate. Settle it with the real usage; dropped, the
/// estimate stands.
#[derive(Debug)]
pub struct TokenTicket {
    key: String,
    reservation: Reservation,
}

impl TokenTicket {
    fn new(key: String, reservation: Reservation) -> Option<TokenTicket> {
        (reservation.charged_tokens() > 0).then_some(TokenTicket { key, reservation })
    }
}

/// The client's policy state and configuration; shared by all calls of one client.
pub struct Engine {
    config: ClientConfig,
    local: LocalState,
    state: RefCell<State>,
    /// Set while a hedged race drops its loser, or a cancelled stream its start: a call dropped
    /// then was cancelled, not failed.
    superseding: Cell<bool>,
}

struct State {
    budget: Option<RetryBudget>,
    rng: Rng,
    stats: Stats,
}

enum AttemptFailure {
    Timeout(TimeoutPhase, u64),
    Send(SendError),
}

impl Engine {
    /// A new engine; `seed` drives backoff jitter.
    pub fn new(config: ClientConfig, seed: u64) -> Self {
        let local = LocalState::new(config.rate_limit.as_ref().map(|(cfg, _)| cfg));
        let budget = config
            .retry
            .as_ref()
            .map(|r| RetryBudget::new(r.budget_ratio, DEFAULT_TTL_MS, DEFAULT_MIN_PER_SEC));
        Engine {
            config,
            local,
            state: RefCell::new(State {
                budget,
                rng: Rng::new(seed),
                stats: Stats::default(),
            }),
            superseding: Cell::new(false),
        }
    }

    /// The flag a hedged race ([`crate::core::hedge::hedged`]) sets while it drops its loser (and
    /// [`crate::core::race::unless_cancelled`] while it drops cancelled work): a call dropped
    /// meanwhile counts as neither a success nor a failure (its breaker permit is given back
    /// unjudged, as for any dropped call).
    pub fn superseding(&self) -> &Cell<bool> {
        &self.superseding
    }

    /// Counts a call refused by a token or cost budget (checked before the pipeline).
    pub fn count_budget_rejection(&self) {
        self.state.borrow_mut().stats.rejected_budget += 1;
    }

    /// Re-seeds the jitter RNG (the wasm layer seeds lazily, on first use).
    pub fn reseed(&self, seed: u64) {
        self.state.borrow_mut().rng = Rng::new(seed);
    }

    /// Corrects a call's token charge with its real usage (from the response's `usage`).
    /// Only the client's own buckets charge an estimate: a ticket is never one of a shared store's.
    pub fn settle_tokens(&self, ticket: TokenTicket, actual_tokens: u64, now_ms: u64) {
        self.local
            .settle(&ticket.key, ticket.reservation, actual_tokens, now_ms);
    }

    /// The configuration this engine runs on.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        self.state.borrow().stats.clone()
    }

    /// Every breaker of the client's own state at `now_ms`, by key.
    pub fn breakers(&self, now_ms: u64) -> Vec<BreakerView> {
        self.local.breakers(now_ms)
    }

    /// While the client's own breaker for `key` is open at `now_ms`: how long until it allows a
    /// probe (a failure that said nothing of when it ends may still have opened it).
    pub fn opens_in(&self, key: &str, now_ms: u64) -> Option<u64> {
        self.local.opens_in(key, now_ms)
    }

    /// The longest a call may wait for rate-limit capacity: `rateLimit.maxWaitMs`, else its
    /// default (it also bounds the waits for a learned limit, configured or not).
    pub fn max_wait_ms(&self) -> u64 {
        let configured = self
            .config
            .rate_limit
            .as_ref()
            .map(|(cfg, _)| cfg.max_wait_ms);
        configured.unwrap_or(RateLimitConfig::default().max_wait_ms)
    }

    /// The limits learned from the providers' headers at `now_ms`, by key.
    pub fn learned_limits(&self, now_ms: u64) -> Vec<LearnedView> {
        self.local.learned(now_ms)
    }

    /// The client-wide request bucket's (tokens, capacity), when a client-scoped requests limit is set.
    pub fn rate_level(&self, now_ms: u64) -> Option<(f64, f64)> {
        let key = match self.config.rate_limit.as_ref()?.1 {
            Scope::Client => "client",
            Scope::Origin => return None,
        };
        let (tokens, capacity) = self.local.level(key, now_ms);
        // Without a requests-per-minute limit the request bucket is unbounded: nothing to show.
        capacity.is_finite().then_some((tokens, capacity))
    }

    /// Runs one call through the whole pipeline.
    ///
    /// # Errors
    /// A [`Failure`] when no response can be handed back: a deadline ran out, the network failed on
    /// the last attempt, the breaker is open or the rate limiter would wait too long. HTTP error
    /// statuses are not errors: after the retries they are returned as the response.
    pub async fn execute<P: Platform>(
        &self,
        platform: &P,
        call: &CallSpec<P::Request>,
    ) -> Result<UpstreamResponse<P::Response>, Failure> {
        let attempts = Cell::new(0);
        let mut tally = CallTally::start(self, platform);
        let result = match call.timeout.total_ms {
            None => self.run(platform, call, &attempts).await,
            Some(ms) => {
                let left = ms.saturating_sub(call.spent_ms);
                match race(self.run(platform, call, &attempts), platform.sleep(left)).await {
                    Either::Left(result) => result,
                    Either::Right(()) => Err(Failure::Timeout {
                        phase: TimeoutPhase::Total,
                        after_ms: ms,
                        attempts: attempts.get(),
                    }),
                }
            }
        };
        match &result {
            Ok(delivered) => tally.finish(delivered.response.status() < 400),
            // Counted as a call that its caller's abort dropped (no error event): whether the
            // abort or the transport's failure is seen first is the platform's choice.
            Err(Failure::Aborted { .. }) => tally.finish(false),
            Err(failure) => {
                tally.finish(false);
                platform.emit(Event::Error {
                    url: &call.url,
                    failure,
                });
            }
        }
        result
    }

    /// [`Engine::execute`], or joins an identical call in flight (same `key`): one upstream call
    /// answers them all ([`crate::core::dedupe`]). The call belongs to its flight: it goes on while
    /// any caller still waits for it, whoever started it.
    ///
    /// # Errors
    /// As [`Engine::execute`]; the callers who joined receive the call's failure.
    pub async fn execute_or_join<P>(
        self: &Rc<Self>,
        platform: &P,
        flights: &JoinableCalls<P::Response>,
        call: &Rc<CallSpec<P::Request>>,
        key: &str,
    ) -> Result<UpstreamResponse<P::Response>, Failure>
    where
        P: Platform + Clone + 'static,
    {
        loop {
            let mut seat = flights.join(key, || {
                let (engine, on, call) = (self.clone(), platform.clone(), call.clone());
                let work = async move { engine.execute(&on, &call).await };
                let on = platform.clone();
                let share = move |outcome: &_, copies| share_outcome(&on, outcome, copies);
                (Box::pin(work) as Work<_>, Box::new(share) as Share<_>)
            });
            if let Some(outcome) = seat.outcome().await {
                if !seat.owns() {
                    self.count_deduplicated();
                }
                return outcome;
            }
        }
    }

    /// Counts a call answered by an identical call's upstream request (shared outside the pipeline).
    pub fn count_deduplicated(&self) {
        self.state.borrow_mut().stats.deduplicated += 1;
    }

    async fn run<P: Platform>(
        &self,
        platform: &P,
        call: &CallSpec<P::Request>,
        attempts: &Cell<u32>,
    ) -> Result<UpstreamResponse<P::Response>, Failure> {
        let mut tokens = self.wait_for_rate_limit(platform, call).await?;
        let _in_flight = self.wait_for_learned_limit(platform, call, false).await?;
        let mut breaker = self.admit(platform, call).await?;
        let mut retry = call.retry.as_ref().map(RetryState::new);
        loop {
            let attempt = attempts.get() + 1;
            attempts.set(attempt);
            platform.emit(Event::Request {
                url: &call.url,
                attempt,
            });
            let outcome = self.attempt(platform, call).await;
            if let Ok(response) = &outcome {
                platform.emit(Event::Response {
                    url: &call.url,
                    status: response.status(),
                    attempt,
                    elapsed_ms: platform.now_ms().saturating_sub(breaker.started_ms),
                });
                self.learn_limits(platform, call, response);
            }
            let decision = match (&call.retry, &mut retry) {
                (Some(cfg), Some(state)) => self.decide(platform, cfg, state, &outcome),
                _ => Decision::Done,
            };
            let retry_after_ms = match decision {
                Decision::Retry {
                    delay_ms,
                    from_server,
                } if self.withdraw_retry(platform.now_ms()) => {
                    platform.emit(Event::Retry {
                        url: &call.url,
                        attempt: attempt + 1,
                        delay_ms,
                        reason: retry_reason(&outcome),
                        from_server,
                    });
                    if let Ok(response) = outcome {
                        platform.discard(response);
                    }
                    platform.sleep(delay_ms).await;
                    // The retry is one more request on what the provider said is left.
                    self.wait_for_learned_limit(platform, call, true).await?;
                    // Counted once the retry is really sent: an abort during the wait is no retry.
                    self.state.borrow_mut().stats.retries += 1;
                    continue;
                }
                Decision::HintTooLong { delay_ms } => Some(delay_ms),
                _ => None,
            };
            breaker.finish(match &outcome {
                Ok(response) => verdict_for_status(response.status()),
                // Neither says anything of the upstream's health.
                Err(AttemptFailure::Send(SendError::Invalid(_) | SendError::Aborted)) => {
                    Verdict::Ignored
                }
                Err(_) => Verdict::Failure,
            });
            return match outcome {
                Ok(response) => Ok(UpstreamResponse {
                    response,
                    attempts: attempt,
                    retry_after_ms,
                    tokens: tokens.take(),
                }),
                Err(AttemptFailure::Timeout(phase, after_ms)) => Err(Failure::Timeout {
                    phase,
                    after_ms,
                    attempts: attempt,
                }),
                Err(AttemptFailure::Send(SendError::Network(message))) => Err(Failure::Network {
                    message,
                    attempts: attempt,
                }),
                Err(AttemptFailure::Send(SendError::Invalid(message))) => {
                    Err(Failure::InvalidRequest { message })
                }
                Err(AttemptFailure::Send(SendError::Aborted)) => {
                    Err(Failure::Aborted { attempts: attempt })
                }
            };
        }
    }

    /// One attempt, bounded by the tighter of the attempt and first-byte deadlines.
    async fn attempt<P: Platform>(
        &self,
        platform: &P,
        call: &CallSpec<P::Request>,
    ) -> Result<P::Response, AttemptFailure> {
        let Some((phase, ms)) = call.timeout.first_byte_bound() else {
            return platform
                .send(&call.request)
                .await
                .map_err(AttemptFailure::Send);
        };
        match race(platform.send(&call.request), platform.sleep(ms)).await {
            Either::Left(result) => result.map_err(AttemptFailure::Send),
            Either::Right(()) => Err(AttemptFailure::Timeout(phase, ms)),
        }
    }

    fn decide<P: Platform>(
        &self,
        platform: &P,
        cfg: &RetryConfig,
        retry: &mut RetryState,
        outcome: &Result<P::Response, AttemptFailure>,
    ) -> Decision {
        let wall = platform.wall_ms();
        let mut state = self.state.borrow_mut();
        match outcome {
            Ok(response) => {
                let headers = |name: &str| response.header(name);
                let view = Outcome::Response {
                    status: response.status(),
                    headers: &headers,
                    error_class: response.error_class(),
                };
                retry.decide(cfg, &view, wall, &mut state.rng)
            }
            Err(AttemptFailure::Timeout(..)) => {
                retry.decide(cfg, &Outcome::Timeout, wall, &mut state.rng)
            }
            Err(AttemptFailure::Send(SendError::Network(_))) => {
                retry.decide(cfg, &Outcome::Network, wall, &mut state.rng)
            }
            Err(AttemptFailure::Send(SendError::Invalid(_) | SendError::Aborted)) => Decision::Done,
        }
    }

    /// Takes a retry from the retry budget; counts a refusal.
    fn withdraw_retry(&self, now_ms: u64) -> bool {
        let mut state = self.state.borrow_mut();
        let allowed = state
            .budget
            .as_mut()
            .is_none_or(|budget| budget.try_withdraw(now_ms));
        if !allowed {
            state.stats.retry_budget_exhausted += 1;
        }
        allowed
    }

    /// Waits for rate-limit capacity. Returns the token charge to correct later, if tokens were charged.
    async fn wait_for_rate_limit<P: Platform>(
        &self,
        platform: &P,
        call: &CallSpec<P::Request>,
    ) -> Result<Option<TokenTicket>, Failure> {
        let Some((cfg, scope)) = &self.config.rate_limit else {
            return Ok(None);
        };
        let key = scoped_key(*scope, &call.origin, call.rate_key.as_deref());
        let store = self.store(platform);
        let reservation = match store.take(&key, call.tokens, cfg, platform.now_ms()).await {
            Err(Failure::RateLimited { retry_after_ms, .. }) => {
                return Err(self.refuse_rate(platform, key, retry_after_ms))
            }
            Err(failure) => return Err(failure),
            Ok(reservation) if reservation.wait_ms == 0 => {
                return Ok(TokenTicket::new(key, reservation))
            }
            Ok(reservation) => reservation,
        };
        let wait_ms = reservation.wait_ms;
        self.announce_wait(platform, &key, wait_ms);
        let guard = ReservationGuard {
            store: &store,
            platform,
            key: &key,
            reservation: Some(reservation),
        };
        platform.sleep(wait_ms).await;
        let reservation = guard.keep();
        Ok(reservation.and_then(|r| TokenTicket::new(key, r)))
    }

    /// Waits for the refill of what the provider said is left of the call's learned limit (within
    /// the rate limiter's `maxWaitMs`), or refuses the call at once. The first request of a call
    /// puts it in flight on the learned limit until the guard returned is dropped; a retry
    /// (`again`) is booked as one more request of the same call.
    async fn wait_for_learned_limit<'a, P: Platform>(
        &'a self,
        platform: &P,
        call: &'a CallSpec<P::Request>,
        again: bool,
    ) -> Result<Option<InFlight<'a>>, Failure> {
        if !call.learn_limits {
            return Ok(None);
        }
        let max_wait_ms = self.max_wait_ms();
        let now = platform.now_ms();
        let taken = self
            .local
            .take_learned(&call.origin, call.tokens, now, (max_wait_ms, again));
        let wait_ms = match taken {
            Ok(wait_ms) => wait_ms,
            Err(retry_after_ms) => {
                return Err(self.refuse_rate(platform, call.origin.clone(), retry_after_ms))
            }
        };
        let in_flight = (!again).then_some(InFlight {
            local: &self.local,
            call_key: &call.origin,
            tokens: call.tokens,
        });
        if wait_ms > 0 {
            self.announce_wait(platform, &call.origin, wait_ms);
            platform.sleep(wait_ms).await;
        }
        Ok(in_flight)
    }

    /// Adopts the rate limits `response` reports, when the call learns them.
    fn learn_limits<P: Platform>(
        &self,
        platform: &P,
        call: &CallSpec<P::Request>,
        response: &P::Response,
    ) {
        if !call.learn_limits {
            return;
        }
        let headers = |name: &str| response.header(name);
        if let Some(report) = read_limits(&headers, response.status(), platform.wall_ms()) {
            let now = platform.now_ms();
            self.local.learn(&call.origin, &report, call.tokens, now);
        }
    }

    /// Counts and emits a rate-limit refusal: the failure to end the call with.
    fn refuse_rate<P: Platform>(&self, platform: &P, key: String, retry_after_ms: u64) -> Failure {
        self.state.borrow_mut().stats.rejected_rate_limit += 1;
        platform.emit(Event::RateLimited {
            key: &key,
            wait_ms: retry_after_ms,
            rejected: true,
        });
        Failure::RateLimited {
            key,
            retry_after_ms,
        }
    }

    /// Emits a wait for rate-limit capacity.
    fn announce_wait<P: Platform>(&self, platform: &P, key: &str, wait_ms: u64) {
        platform.emit(Event::RateLimited {
            key,
            wait_ms,
            rejected: false,
        });
    }

    /// Where the call's breaker and bucket live: the platform's shared store when set, else ours.
    fn store<'a, P: Platform>(&'a self, platform: &'a P) -> States<'a, P> {
        match platform.store() {
            Some(shared) => OwnOrShared::Shared(shared),
            None => OwnOrShared::Own(&self.local),
        }
    }

    async fn admit<'a, P: Platform>(
        &'a self,
        platform: &'a P,
        call: &CallSpec<P::Request>,
    ) -> Result<BreakerGuard<'a, P>, Failure> {
        let started_ms = platform.now_ms();
        let mut guard = BreakerGuard {
            engine: self,
            platform,
            key: String::new(),
            ticket: None,
            started_ms,
        };
        let Some((cfg, scope)) = &self.config.breaker else {
            return Ok(guard);
        };
        let key = scoped_key(*scope, &call.origin, None);
        let store = self.store(platform);
        let before = store.observe(&key, started_ms);
        let admitted = store.admit(&key, cfg, started_ms).await;
        let after = store.observe(&key, platform.now_ms());
        if matches!(admitted, Err(Failure::CircuitOpen { .. })) {
            self.state.borrow_mut().stats.rejected_breaker += 1;
        }
        for (from, to) in [before, after].into_iter().flatten() {
            platform.emit(Event::Breaker {
                key: &key,
                from,
                to,
            });
        }
        guard.ticket = Some(admitted?);
        guard.key = key;
        Ok(guard)
    }
}

/// The store a call of platform `P` is admitted on.
type States<'a, P> = OwnOrShared<&'a LocalState, &'a <P as Platform>::Store>;

/// What an admission on [`States`] holds.
type Ticket<P> = OwnOrShared<Permit, <<P as Platform>::Store as StateStore>::Ticket>;

/// Calls in flight that identical calls may join.
pub type JoinableCalls<R> = Flights<Result<UpstreamResponse<R>, Failure>>;

/// `copies` of a call's outcome, for the calls that joined it.
fn share_outcome<P: Platform>(
    platform: &P,
    outcome: &Result<UpstreamResponse<P::Response>, Failure>,
    copies: usize,
) -> Vec<Result<UpstreamResponse<P::Response>, Failure>> {
    let mut outcomes = Vec::with_capacity(copies);
    match outcome {
        Ok(delivered) => platform.share(&delivered.response, copies, &mut |response| {
            outcomes.push(Ok(UpstreamResponse {
                response,
                attempts: delivered.attempts,
                retry_after_ms: delivered.retry_after_ms,
                tokens: None,
            }))
        }),
        Err(failure) => {
            for _ in 0..copies {
                outcomes.push(Err(failure.clone()));
            }
        }
    }
    outcomes
}

/// The breaker or bucket key: the origin, or "client", plus a caller key when given.
pub fn scoped_key(scope: Scope, origin: &str, caller: Option<&str>) -> String {
    let base = match scope {
        Scope::Origin => origin,
        Scope::Client => "client",
    };
    match caller {
        Some(caller) => format!("{base}|{caller}"),
        None => base.to_string(),
    }
}

fn retry_reason<R: ResponseMeta>(outcome: &Result<R, AttemptFailure>) -> RetryReason {
    match outcome {
        Ok(response) => RetryReason::Status(response.status()),
        Err(AttemptFailure::Timeout(..)) => RetryReason::Timeout,
        Err(AttemptFailure::Send(_)) => RetryReason::Network,
    }
}

/// Counts a call as it ends; a call dropped mid-way (aborted) counts as a failure, unless it was
/// cancelled (a hedge superseded it, or a stream's `cancel()` came before its first event: neither).
struct CallTally<'a, P: Platform> {
    engine: &'a Engine,
    platform: &'a P,
    started_ms: u64,
    done: bool,
}

impl<'a, P: Platform> CallTally<'a, P> {
    fn start(engine: &'a Engine, platform: &'a P) -> Self {
        engine.state.borrow_mut().stats.requests += 1;
        let started_ms = platform.now_ms();
        if let Some(budget) = engine.state.borrow_mut().budget.as_mut() {
            budget.deposit(started_ms);
        }
        CallTally {
            engine,
            platform,
            started_ms,
            done: false,
        }
    }

    fn finish(&mut self, success: bool) {
        self.done = true;
        let elapsed = self.platform.now_ms().saturating_sub(self.started_ms);
        let mut state = self.engine.state.borrow_mut();
        if success {
            state.stats.successes += 1;
        } else {
            state.stats.failures += 1;
        }
        state.stats.record_latency(elapsed);
    }
}

impl<P: Platform> Drop for CallTally<'_, P> {
    fn drop(&mut self) {
        if !self.done && !self.engine.superseding.get() {
            self.finish(false);
        }
    }
}

/// A call in flight on its learned limit, until it finishes (or is dropped).
struct InFlight<'a> {
    local: &'a LocalState,
    call_key: &'a str,
    tokens: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.local.learned_done(self.call_key, self.tokens);
    }
}

/// Gives a rate-limit reservation back if the call is dropped while waiting for it.
struct ReservationGuard<'a, S: StateStore, P: Platform> {
    store: &'a S,
    platform: &'a P,
    key: &'a str,
    reservation: Option<Reservation>,
}

impl<S: StateStore, P: Platform> ReservationGuard<'_, S, P> {
    fn keep(mut self) -> Option<Reservation> {
        self.reservation.take()
    }
}

impl<S: StateStore, P: Platform> Drop for ReservationGuard<'_, S, P> {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            self.store
                .give_back(self.key, reservation, self.platform.now_ms());
        }
    }
}

/// Holds a breaker admission; reports the call's verdict, or releases the admission unjudged if
/// dropped.
struct BreakerGuard<'a, P: Platform> {
    engine: &'a Engine,
    platform: &'a P,
    key: String,
    ticket: Option<Ticket<P>>,
    started_ms: u64,
}

impl<P: Platform> BreakerGuard<'_, P> {
    fn finish(&mut self, verdict: Verdict) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let now = self.platform.now_ms();
        let store = self.engine.store(self.platform);
        store.record(&self.key, ticket, verdict, now);
        if let Some((from, to)) = store.observe(&self.key, now) {
            self.platform.emit(Event::Breaker {
                key: &self.key,
                from,
                to,
            });
        }
    }
}

impl<P: Platform> Drop for BreakerGuard<'_, P> {
    fn drop(&mut self) {
        self.finish(Verdict::Ignored);
    }
}
