//! The whole pipeline in simulated time: a scripted upstream, a virtual clock, exact expectations.

mod sim;

use sim::{Reply, Sim, SimPlatform, SimResponse};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use sturdy_llm::core::breaker::registry::MAX_BREAKERS;
use sturdy_llm::core::breaker::{BreakerConfig, StateKind};
use sturdy_llm::core::config::{ClientConfig, Scope, TimeoutOverrides, Timeouts};
use sturdy_llm::core::dedupe::MAX_CALLERS;
use sturdy_llm::core::error::{Failure, TimeoutPhase};
use sturdy_llm::core::pipeline::{CallSpec, Engine, JoinableCalls, UpstreamResponse};
use sturdy_llm::core::policy_board::PolicyBoard;
use sturdy_llm::core::race::{race, Either};
use sturdy_llm::core::rate_limit::RateLimitConfig;
use sturdy_llm::core::retry::{Jitter, RetryConfig};

type Outcome = Result<UpstreamResponse<SimResponse>, Failure>;

fn retry(max_retries: u32) -> RetryConfig {
    RetryConfig {
        max_retries,
        jitter: Jitter::None,
        ..RetryConfig::default()
    }
}

fn config(retry: Option<RetryConfig>) -> ClientConfig {
    ClientConfig {
        timeout: Timeouts::default(),
        retry,
        breaker: None,
        rate_limit: None,
    }
}

fn call(engine: &Engine, label: &str) -> CallSpec<String> {
    CallSpec {
        request: label.to_string(),
        url: format!("https://api.example/{label}"),
        origin: "https://api.example".to_string(),
        rate_key: None,
        timeout: engine.config().timeout,
        spent_ms: 0,
        retry: engine.config().retry.clone(),
        tokens: 0,
        learn_limits: false,
    }
}

/// Runs one call to completion.
fn run_one(sim: &Rc<Sim>, engine: &Rc<Engine>, spec: CallSpec<String>) -> Outcome {
    let platform = SimPlatform(sim.clone());
    let engine = engine.clone();
    sim.block_on(async move { engine.execute(&platform, &spec).await })
}

/// Spawns calls at the given virtual times and runs them all; outcomes in spawn order.
fn run_many(
    sim: &Rc<Sim>,
    engine: &Rc<Engine>,
    calls: Vec<(u64, CallSpec<String>)>,
) -> Vec<Outcome> {
    let results: Rc<RefCell<Vec<Option<Outcome>>>> =
        Rc::new(RefCell::new((0..calls.len()).map(|_| None).collect()));
    let tasks: Vec<Pin<Box<dyn Future<Output = ()>>>> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (at, spec))| {
            let (sim, engine, results) = (sim.clone(), engine.clone(), results.clone());
            Box::pin(async move {
                sim.timer(at).await;
                let outcome = engine.execute(&SimPlatform(sim.clone()), &spec).await;
                results.borrow_mut()[i] = Some(outcome);
            }) as Pin<Box<dyn Future<Output = ()>>>
        })
        .collect();
    sim.run(tasks);
    let outcomes = results
        .borrow_mut()
        .drain(..)
        .map(|o| o.expect("done"))
        .collect();
    outcomes
}

fn status(outcome: &Outcome) -> u16 {
    outcome.as_ref().expect("a response").response.status
}

#[test]
fn three_503s_then_200_succeeds_after_three_retries_with_exponential_delays() {
    let mut n = 0;
    let sim = Sim::new(move |_, _| {
        n += 1;
        Reply::status(if n <= 3 { 503 } else { 200 })
    });
    let engine = Rc::new(Engine::new(config(Some(retry(3))), 7));
    let outcome = run_one(&sim, &engine, call(&engine, "a"));
    assert_eq!(status(&outcome), 200);
    assert_eq!(outcome.unwrap().attempts, 4);
    // 10 ms per answer, then 500, 1000, 2000 ms of backoff.
    assert_eq!(sim.send_times(), vec![0, 510, 1520, 3530]);
    assert_eq!(sim.events_of("retry").len(), 3);
    assert_eq!(
        sim.discarded.get(),
        3,
        "every retried response body is released"
    );
    let stats = engine.stats();
    assert_eq!((stats.requests, stats.successes, stats.retries), (1, 1, 3));
}

#[test]
fn a_429_with_retry_after_ms_waits_exactly_that_long() {
    let mut n = 0;
    let sim = Sim::new(move |_, _| {
        n += 1;
        if n == 1 {
            Reply::ok(SimResponse::status(429).with_header("retry-after-ms", "1500"))
        } else {
            Reply::status(200)
        }
    });
    let engine = Rc::new(Engine::new(config(Some(retry(2))), 7));
    assert_eq!(status(&run_one(&sim, &engine, call(&engine, "a"))), 200);
    assert_eq!(sim.send_times(), vec![0, 1510]);
    assert!(sim.events_of("retry")[0].1.contains("from_server: true"));
}

#[test]
fn a_hint_longer_than_max_retry_after_returns_at_once_with_the_delay() {
    let sim =
        Sim::new(|_, _| Reply::ok(SimResponse::status(429).with_header("retry-after", "120")));
    let engine = Rc::new(Engine::new(config(Some(retry(2))), 7));
    let delivered = run_one(&sim, &engine, call(&engine, "a")).unwrap();
    assert_eq!(delivered.response.status, 429);
    assert_eq!(delivered.retry_after_ms, Some(120_000));
    assert_eq!(sim.send_times(), vec![0]);
}

#[test]
fn exhausted_retries_hand_back_the_last_response() {
    let sim = Sim::new(|_, _| Reply::status(503));
    let engine = Rc::new(Engine::new(config(Some(retry(2))), 7));
    let outcome = run_one(&sim, &engine, call(&engine, "a"));
    assert_eq!(status(&outcome), 503);
    assert_eq!(sim.sent.borrow().len(), 3);
    assert_eq!(engine.stats().failures, 1);
}

#[test]
fn a_request_the_platform_refuses_is_neither_retried_nor_held_against_the_upstream() {
    let sim = Sim::new(|_, label| match label {
        "ok" => Reply::status(200),
        _ => Reply::refused(),
    });
    let engine = Rc::new(Engine::new(
        ClientConfig {
            breaker: Some((BreakerConfig::default(), Scope::Origin)),
            ..config(Some(retry(2)))
        },
        7,
    ));
    for _ in 0..10 {
        match run_one(&sim, &engine, call(&engine, "bad")) {
            Err(Failure::InvalidRequest { message }) => assert!(message.contains("GET/HEAD")),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }
    assert_eq!(sim.sent.borrow().len(), 10, "each sent once, never retried");
    assert_eq!(status(&run_one(&sim, &engine, call(&engine, "ok"))), 200);
    assert_eq!(engine.stats().retries, 0);
}

#[test]
fn network_errors_are_retried_then_reported_with_attempts() {
    let sim = Sim::new(|_, _| Reply::network());
    let engine = Rc::new(Engine::new(config(Some(retry(1))), 7));
    match run_one(&sim, &engine, call(&engine, "a")) {
        Err(Failure::Network { attempts, .. }) => assert_eq!(attempts, 2),
        other => panic!("expected a network failure, got {other:?}"),
    }
}

#[test]
fn the_attempt_timeout_fires_on_a_stalled_upstream_and_is_retried() {
    let sim = Sim::new(|_, _| Reply::stall());
    let mut cfg = config(Some(retry(1)));
    cfg.timeout.attempt_ms = Some(1000);
    let engine = Rc::new(Engine::new(cfg, 7));
    let outcome = run_one(&sim, &engine, call(&engine, "a"));
    assert_eq!(
        outcome.unwrap_err(),
        Failure::Timeout {
            phase: TimeoutPhase::Attempt,
            after_ms: 1000,
            attempts: 2
        }
    );
    // First attempt times out at 1000, backoff 500, second attempt times out 1000 later.
    assert_eq!(sim.send_times(), vec![0, 1500]);
    assert_eq!(sim.now(), 2500);
}

#[test]
fn the_first_byte_timeout_wins_when_it_is_tighter() {
    let sim = Sim::new(|_, _| Reply::stall());
    let mut cfg = config(None);
    cfg.timeout.first_byte_ms = Some(300);
    let engine = Rc::new(Engine::new(cfg, 7));
    match run_one(&sim, &engine, call(&engine, "a")) {
        Err(Failure::Timeout {
            phase, after_ms, ..
        }) => {
            assert_eq!((phase, after_ms), (TimeoutPhase::FirstByte, 300))
        }
        other => panic!("expected a first-byte timeout, got {other:?}"),
    }
}

#[test]
fn the_total_deadline_bounds_attempts_and_backoff() {
    let sim = Sim::new(|_, _| Reply::status(503));
    let mut cfg = config(Some(retry(10)));
    cfg.timeout.total_ms = Some(2000);
    let engine = Rc::new(Engine::new(cfg, 7));
    let outcome = run_one(&sim, &engine, call(&engine, "a"));
    assert!(matches!(
        outcome,
        Err(Failure::Timeout {
            phase: TimeoutPhase::Total,
            after_ms: 2000,
            ..
        })
    ));
    assert_eq!(sim.now(), 2000);
}

/// Issue 14: a cache lookup is part of the call, so its time counts against the total deadline
/// (which the timeout still names in full).
#[test]
fn time_spent_before_the_pipeline_counts_against_the_total_deadline() {
    let sim = Sim::new(|_, _| Reply::stall());
    let mut cfg = config(None);
    cfg.timeout.total_ms = Some(1000);
    let engine = Rc::new(Engine::new(cfg, 7));
    let spec = CallSpec {
        spent_ms: 400,
        ..call(&engine, "a")
    };
    let outcome = run_one(&sim, &engine, spec);
    assert!(matches!(
        outcome,
        Err(Failure::Timeout {
            phase: TimeoutPhase::Total,
            after_ms: 1000,
            ..
        })
    ));
    assert_eq!(sim.now(), 600);
}

/// Issue 16: a request's own `resilience.timeout` is merged over the client's once, and the
/// pipeline's deadlines are that merged value's: 300 ms requested, not the client's 8 s.
#[test]
fn a_requests_own_first_byte_and_total_deadlines_override_the_clients() {
    let slow = Timeouts {
        attempt_ms: Some(8_000),
        total_ms: Some(8_000),
        first_byte_ms: Some(8_000),
        idle_ms: Some(8_000),
    };
    for (request, phase) in [
        (
            TimeoutOverrides {
                first_byte_ms: Some(Some(300)),
                ..TimeoutOverrides::default()
            },
            TimeoutPhase::FirstByte,
        ),
        (
            TimeoutOverrides {
                total_ms: Some(Some(300)),
                ..TimeoutOverrides::default()
            },
            TimeoutPhase::Total,
        ),
    ] {
        let sim = Sim::new(|_, _| Reply::stall());
        let mut cfg = config(None);
        cfg.timeout = slow;
        let engine = Rc::new(Engine::new(cfg, 7));
        let spec = CallSpec {
            timeout: engine.config().timeout.overridden_by(&request),
            ..call(&engine, "a")
        };
        match run_one(&sim, &engine, spec) {
            Err(Failure::Timeout {
                phase: p, after_ms, ..
            }) => assert_eq!((p, after_ms), (phase, 300)),
            other => panic!("expected a {phase:?} timeout, got {other:?}"),
        }
        assert_eq!(sim.now(), 300);
    }
}

fn breaker_config() -> ClientConfig {
    ClientConfig {
        breaker: Some((BreakerConfig::default(), Scope::Origin)),
        ..config(None)
    }
}

#[test]
fn a_full_outage_opens_the_breaker_after_five_calls_then_one_probe_closes_it() {
    let healthy = Rc::new(std::cell::Cell::new(false));
    let upstream = healthy.clone();
    let sim = Sim::new(move |_, _| Reply::status(if upstream.get() { 200 } else { 503 }).after(10));
    let engine = Rc::new(Engine::new(breaker_config(), 7));
    for _ in 0..5 {
        assert_eq!(status(&run_one(&sim, &engine, call(&engine, "a"))), 503);
    }
    let opened_at = sim.now();
    match run_one(&sim, &engine, call(&engine, "a")) {
        Err(Failure::CircuitOpen { retry_after_ms, .. }) => assert_eq!(retry_after_ms, 30_000),
        other => panic!("expected the breaker open, got {other:?}"),
    }
    assert_eq!(
        sim.sent.borrow().len(),
        5,
        "rejected calls never reach the upstream"
    );

    // After the reset timeout exactly one probe is admitted; a concurrent second call is rejected.
    sim.advance_to(opened_at + 30_000);
    healthy.set(true);
    let outcomes = run_many(
        &sim,
        &engine,
        vec![(0, call(&engine, "probe")), (1, call(&engine, "second"))],
    );
    assert_eq!(status(&outcomes[0]), 200);
    assert!(matches!(outcomes[1], Err(Failure::CircuitOpen { .. })));
    assert_eq!(sim.sent.borrow().len(), 6);
    assert_eq!(engine.breakers(sim.now())[0].state.as_str(), "closed");
    let transitions: Vec<String> = sim
        .events_of("breaker")
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(transitions.len(), 3, "{transitions:?}");
    assert!(transitions[0].contains("from: Closed, to: Open"));
    assert!(transitions[1].contains("from: Open, to: HalfOpen"));
    assert!(transitions[2].contains("from: HalfOpen, to: Closed"));
}

#[test]
fn rate_limit_429s_never_open_the_breaker() {
    let sim = Sim::new(|_, _| Reply::status(429));
    let engine = Rc::new(Engine::new(breaker_config(), 7));
    for _ in 0..20 {
        assert_eq!(status(&run_one(&sim, &engine, call(&engine, "a"))), 429);
    }
    assert_eq!(engine.breakers(sim.now())[0].state.as_str(), "closed");
}

#[test]
fn an_aborted_probe_frees_the_half_open_slot() {
    let sim = Sim::new(|now, _| {
        if now < 30_000 {
            Reply::status(503)
        } else {
            Reply::stall()
        }
    });
    let engine = Rc::new(Engine::new(breaker_config(), 7));
    for _ in 0..5 {
        run_one(&sim, &engine, call(&engine, "a")).ok();
    }
    sim.advance_to(30_100);
    // The probe hangs; its caller gives up after 100 ms (the future is dropped).
    let (platform, probe_engine, probe) =
        (SimPlatform(sim.clone()), engine.clone(), call(&engine, "p"));
    let gave_up = sim.clone();
    let aborted = sim.block_on(async move {
        matches!(
            race(probe_engine.execute(&platform, &probe), gave_up.timer(100)).await,
            Either::Right(())
        )
    });
    assert!(aborted);
    // The next call may probe at once instead of being rejected for a slot nobody holds.
    let platform = SimPlatform(sim.clone());
    let (next_engine, next) = (engine.clone(), call(&engine, "next"));
    let admitted = sim.clone().block_on(async move {
        let waiter = platform.0.clone();
        matches!(
            race(next_engine.execute(&platform, &next), waiter.timer(10)).await,
            Either::Right(())
        )
    });
    assert!(admitted, "the second probe reached the (stalled) upstream");
    assert_eq!(sim.sent.borrow().len(), 7);
}

fn rate_config(rpm: u32, burst: u32, max_wait_ms: u64) -> ClientConfig {
    ClientConfig {
        rate_limit: Some((
            RateLimitConfig {
                requests_per_minute: Some(rpm),
                burst: Some(burst),
                tokens_per_minute: None,
                max_wait_ms,
            },
            Scope::Client,
        )),
        ..config(None)
    }
}

#[test]
fn a_thousand_requests_against_60_rpm_burst_10_are_spaced_one_second_apart_in_order() {
    let sim = Sim::new(|_, label| {
        assert!(!label.is_empty());
        Reply::status(200).after(1)
    });
    let engine = Rc::new(Engine::new(rate_config(60, 10, u64::MAX), 7));
    let calls = (0..1000)
        .map(|i| (0, call(&engine, &format!("{i:04}"))))
        .collect();
    let outcomes = run_many(&sim, &engine, calls);
    assert!(outcomes.iter().all(|o| status(o) == 200));
    let sent = sim.sent.borrow();
    for (k, (at, label)) in sent.iter().enumerate() {
        let expected = (k as u64).saturating_sub(9) * 1000;
        assert_eq!(*at, expected, "request {k} sent at {at}");
        assert_eq!(label, &format!("{k:04}"), "FIFO order");
    }
}

#[test]
fn the_rate_limiter_rejects_beyond_max_wait_and_an_abandoned_wait_gives_its_slot_back() {
    let sim = Sim::new(|_, _| Reply::status(200).after(1));
    let engine = Rc::new(Engine::new(rate_config(60, 1, 1500), 7));
    assert_eq!(status(&run_one(&sim, &engine, call(&engine, "first"))), 200);
    // The second caller would wait ~1 s; it gives up after 100 ms.
    let (platform, e2, c2) = (
        SimPlatform(sim.clone()),
        engine.clone(),
        call(&engine, "second"),
    );
    let timer = sim.clone();
    sim.block_on(async move {
        assert!(matches!(
            race(e2.execute(&platform, &c2), timer.timer(100)).await,
            Either::Right(())
        ));
    });
    // A third caller now waits only for the first token, not behind the abandoned reservation.
    let third = run_one(&sim, &engine, call(&engine, "third"));
    assert_eq!(status(&third), 200);
    assert_eq!(*sim.send_times().last().unwrap(), 1000);
    // Two more at once: the second would wait 2 s > 1.5 s and is rejected without being charged.
    let outcomes = run_many(
        &sim,
        &engine,
        vec![(0, call(&engine, "x")), (0, call(&engine, "y"))],
    );
    assert_eq!(status(&outcomes[0]), 200);
    assert!(matches!(outcomes[1], Err(Failure::RateLimited { .. })));
    assert_eq!(engine.stats().rejected_rate_limit, 1);
}

#[test]
fn the_retry_budget_stops_a_retry_storm_under_total_failure() {
    let sim = Sim::new(|_, _| Reply::status(503).after(1));
    let mut cfg = config(Some(RetryConfig {
        max_retries: 2,
        base_delay_ms: 1,
        max_delay_ms: 1,
        ..retry(2)
    }));
    cfg.retry.as_mut().unwrap().budget_ratio = 0.2;
    let engine = Rc::new(Engine::new(cfg, 7));
    let calls = (0..1000).map(|i| (i, call(&engine, "x"))).collect();
    run_many(&sim, &engine, calls);
    let stats = engine.stats();
    // Without a budget: 2000 retries. With it: exactly the 10/s reserve over its 10 s window plus
    // 20% of the 1000 calls (simulated time: no noise, so no margin; fewer would mean the budget
    // refuses retries it documents, more that it lets a storm through).
    assert_eq!(stats.retries, 100 + 200, "retries");
    assert!(stats.retry_budget_exhausted > 0);
    assert_eq!(
        stats.requests + stats.retries,
        sim.sent.borrow().len() as u64
    );
}

#[test]
fn stats_agree_with_what_the_upstream_saw() {
    let mut n = 0;
    let sim = Sim::new(move |_, _| {
        n += 1;
        Reply::status(if n % 3 == 0 { 200 } else { 500 })
    });
    let engine = Rc::new(Engine::new(config(Some(retry(2))), 7));
    for _ in 0..10 {
        run_one(&sim, &engine, call(&engine, "a")).ok();
    }
    let stats = engine.stats();
    assert_eq!(stats.requests, 10);
    assert_eq!(
        stats.requests + stats.retries,
        sim.sent.borrow().len() as u64
    );
    assert_eq!(stats.successes + stats.failures, 10);
}

fn run_shared(
    sim: &Rc<Sim>,
    engine: &Rc<Engine>,
    flights: &Rc<JoinableCalls<SimResponse>>,
    calls: Vec<(u64, Option<u64>, CallSpec<String>)>,
) -> Vec<Option<Outcome>> {
    let results: Rc<RefCell<Vec<Option<Outcome>>>> =
        Rc::new(RefCell::new((0..calls.len()).map(|_| None).collect()));
    let tasks: Vec<Pin<Box<dyn Future<Output = ()>>>> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (at, give_up_after, spec))| {
            let (sim, engine, flights, results) = (
                sim.clone(),
                engine.clone(),
                flights.clone(),
                results.clone(),
            );
            Box::pin(async move {
                sim.timer(at).await;
                let platform = SimPlatform(sim.clone());
                let spec = Rc::new(spec);
                let work = engine.execute_or_join(&platform, &flights, &spec, "same");
                let outcome = match give_up_after {
                    None => Some(work.await),
                    Some(ms) => match race(work, sim.timer(ms)).await {
                        Either::Left(outcome) => Some(outcome),
                        Either::Right(()) => None,
                    },
                };
                results.borrow_mut()[i] = outcome;
            }) as Pin<Box<dyn Future<Output = ()>>>
        })
        .collect();
    sim.run(tasks);
    let outcomes = results.borrow_mut().drain(..).collect();
    outcomes
}

#[test]
fn identical_calls_in_flight_share_one_upstream_call() {
    let sim = Sim::new(|_, _| Reply::status(200).after(100));
    let engine = Rc::new(Engine::new(config(None), 7));
    let flights = Rc::new(JoinableCalls::default());
    let calls = (0..3)
        .map(|i| (i * 10, None, call(&engine, "same")))
        .collect();
    let outcomes = run_shared(&sim, &engine, &flights, calls);
    assert!(outcomes.iter().all(|o| status(o.as_ref().unwrap()) == 200));
    assert_eq!(sim.sent.borrow().len(), 1);
    assert_eq!(engine.stats().deduplicated, 2);
    assert!(flights.is_empty());
}

#[test]
fn ten_thousand_identical_calls_share_one_upstream_call_per_thousand_callers() {
    // Regression: every follower's copy was made from the one response in turn (in JS, a chain of
    // tees as long as the number of followers), and a flight took any number of followers.
    let sim = Sim::new(|_, _| Reply::status(200).after(100));
    let engine = Rc::new(Engine::new(config(None), 7));
    let flights = Rc::new(JoinableCalls::default());
    let calls = (0..10_000)
        .map(|i| (i / 1_000, None, call(&engine, "same")))
        .collect();
    let outcomes = run_shared(&sim, &engine, &flights, calls);
    assert!(outcomes.iter().all(|o| status(o.as_ref().unwrap()) == 200));
    assert_eq!(
        sim.sent.borrow().len(),
        10,
        "one call per {MAX_CALLERS} callers"
    );
    // Each flight asked for its followers' copies once, all together.
    assert_eq!(*sim.shared.borrow(), vec![MAX_CALLERS - 1; 10]);
    assert_eq!(engine.stats().deduplicated, 10_000 - 10);
    assert!(flights.is_empty());
}

#[test]
fn a_hundred_thousand_origins_keep_a_thousand_breakers_and_the_open_one_stays_open() {
    // Regression: one breaker per origin, forever (100k origins: 100k breakers, each new origin
    // shifting a sorted list of all of them).
    let sim = Sim::new(|_, request| Reply::status(if request == "down" { 503 } else { 200 }));
    let cfg = ClientConfig {
        breaker: Some((
            BreakerConfig {
                reset_timeout_ms: 10_000_000, // longer than the run
                ..BreakerConfig::default()
            },
            Scope::Origin,
        )),
        ..config(None)
    };
    let engine = Rc::new(Engine::new(cfg, 7));
    let at = |label: &str, origin: String| CallSpec {
        origin,
        ..call(&engine, label)
    };
    let down = || at("down", "https://down.example".to_string());
    for _ in 0..5 {
        run_one(&sim, &engine, down()).ok();
    }
    let flaky = || at("down", "https://flaky.example".to_string());
    run_one(&sim, &engine, flaky()).ok();
    let long_origin = format!("https://{}.example", "a".repeat(16 * 1024));
    run_one(&sim, &engine, at("up", long_origin)).ok();
    let mut most = 0;
    for i in 0..100_000 {
        run_one(&sim, &engine, at("up", format!("https://o{i}.example"))).ok();
        if i % 1000 == 0 {
            most = most.max(engine.breakers(sim.now()).len());
        }
    }
    let breakers = engine.breakers(sim.now());
    assert_eq!((most, breakers.len()), (MAX_BREAKERS, MAX_BREAKERS));
    assert!(
        breakers.iter().all(|b| b.key.len() <= 138),
        "keys bounded in bytes"
    );
    // The idle breakers made room; the open one and the one with a failure counted were kept.
    let kept = |key: &str| {
        breakers
            .iter()
            .find(|b| b.key == key)
            .map(|b| (b.state, b.failures))
    };
    assert_eq!(kept("https://down.example"), Some((StateKind::Open, 0)));
    assert_eq!(kept("https://flaky.example"), Some((StateKind::Closed, 1)));
    assert!(matches!(
        run_one(&sim, &engine, down()),
        Err(Failure::CircuitOpen { .. })
    ));
}

#[test]
fn when_every_breaker_kept_is_open_the_least_recently_used_makes_room() {
    let sim = Sim::new(|_, _| Reply::status(503));
    let cfg = ClientConfig {
        breaker: Some((
            BreakerConfig {
                failure_threshold: 1,
                ..BreakerConfig::default()
            },
            Scope::Origin,
        )),
        ..config(None)
    };
    let engine = Rc::new(Engine::new(cfg, 7));
    let at = |i: usize| CallSpec {
        origin: format!("https://o{i}.example"),
        ..call(&engine, "x")
    };
    for i in 0..=MAX_BREAKERS {
        run_one(&sim, &engine, at(i)).ok();
    }
    let breakers = engine.breakers(sim.now());
    assert_eq!(breakers.len(), MAX_BREAKERS);
    assert!(breakers.iter().all(|b| b.state == StateKind::Open));
    assert!(!breakers.iter().any(|b| b.key == "https://o0.example"));
}

#[test]
fn a_leader_that_aborts_does_not_fail_its_followers() {
    let sim = Sim::new(|_, _| Reply::status(200).after(100));
    let engine = Rc::new(Engine::new(config(None), 7));
    let flights = Rc::new(JoinableCalls::default());
    let calls = vec![
        (0, Some(50), call(&engine, "same")), // the leader gives up at 50 ms
        (10, None, call(&engine, "same")),
    ];
    let outcomes = run_shared(&sim, &engine, &flights, calls);
    assert!(outcomes[0].is_none());
    assert_eq!(status(outcomes[1].as_ref().unwrap()), 200);
    // The call went on for the follower, who still wanted it: no second call (it was made again
    // before, 50 ms later, and the follower waited for it from the start).
    assert_eq!(sim.send_times(), vec![0]);
    // It answered one caller, the one who owns it now: nothing was deduplicated.
    assert_eq!(engine.stats().deduplicated, 0);
}

#[test]
fn a_shared_failure_reaches_every_caller() {
    let sim = Sim::new(|_, _| Reply::network());
    let engine = Rc::new(Engine::new(config(None), 7));
    let flights = Rc::new(JoinableCalls::default());
    let calls = vec![
        (0, None, call(&engine, "same")),
        (1, None, call(&engine, "same")),
    ];
    let outcomes = run_shared(&sim, &engine, &flights, calls);
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, Some(Err(Failure::Network { .. })))));
    assert_eq!(sim.sent.borrow().len(), 1);
}

#[test]
fn a_token_estimate_is_corrected_by_the_real_usage() {
    let sim = Sim::new(|_, _| Reply::status(200));
    let cfg = ClientConfig {
        rate_limit: Some((
            RateLimitConfig {
                requests_per_minute: None,
                burst: None,
                tokens_per_minute: Some(1000),
                max_wait_ms: 0,
            },
            Scope::Client,
        )),
        ..config(None)
    };
    let engine = Rc::new(Engine::new(cfg, 7));
    let big = |label: &str| CallSpec {
        tokens: 750,
        learn_limits: false,
        ..call(&engine, label)
    };
    let first = run_one(&sim, &engine, big("first")).unwrap();
    assert!(matches!(
        run_one(&sim, &engine, big("over")),
        Err(Failure::RateLimited { .. })
    ));
    // The answer reports 50 tokens, not 750: the bucket gets the difference back.
    engine.settle_tokens(first.tokens.expect("a token charge"), 50, sim.now());
    assert_eq!(status(&run_one(&sim, &engine, big("fits"))), 200);
}

/// A listener calls the engine back from inside every event, as a JS listener may call the client:
/// the engine must hold no borrow of its state while it emits (a `RefCell` already borrowed would
/// panic, and a panic kills the wasm instance for every caller).
#[test]
fn a_listener_may_reenter_the_engine_from_every_event() {
    let mut n = 0;
    let sim = Sim::new(move |_, label| {
        n += 1;
        match (label, n % 4) {
            ("stall", _) => Reply::stall(),
            (_, 0) => Reply::network(),
            (_, 1) => Reply::status(503),
            _ => Reply::status(200),
        }
    });
    let cfg = ClientConfig {
        timeout: Timeouts {
            total_ms: Some(5_000),
            ..Timeouts::default()
        },
        breaker: Some((
            BreakerConfig {
                failure_threshold: 2,
                reset_timeout_ms: 1_000,
                ..BreakerConfig::default()
            },
            Scope::Origin,
        )),
        ..rate_config(600, 1, 10_000)
    };
    let cfg = ClientConfig {
        retry: Some(RetryConfig {
            base_delay_ms: 10,
            max_delay_ms: 10,
            ..retry(2)
        }),
        ..cfg
    };
    let engine = Rc::new(Engine::new(cfg, 7));
    // Calls the listener starts, each polled once at once (as a JS fetch is), then run to the end.
    type Task = Pin<Box<dyn Future<Output = ()>>>;
    let started: Rc<RefCell<Vec<Task>>> = Rc::default();
    let reentered = Rc::new(std::cell::Cell::new(0));
    let (listener_sim, listener_engine, tasks, count) = (
        sim.clone(),
        engine.clone(),
        started.clone(),
        reentered.clone(),
    );
    *sim.listener.borrow_mut() = Some(Rc::new(move |_kind| {
        let engine = &listener_engine;
        let now = listener_sim.now();
        let _ = (engine.stats(), engine.breakers(now), engine.rate_level(now));
        engine.count_deduplicated();
        if count.get() >= 40 {
            return;
        }
        count.set(count.get() + 1);
        let label = if count.get() % 7 == 0 {
            "stall"
        } else {
            "again"
        };
        let (platform, engine, spec) = (
            SimPlatform(listener_sim.clone()),
            engine.clone(),
            call(engine, label),
        );
        let mut task: Task = Box::pin(async move {
            let _ = engine.execute(&platform, &spec).await;
        });
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut cx).is_pending() {
            tasks.borrow_mut().push(task);
        }
    }));
    let outcomes = run_many(
        &sim,
        &engine,
        (0..6).map(|i| (i * 700, call(&engine, "first"))).collect(),
    );
    assert_eq!(outcomes.len(), 6);
    *sim.listener.borrow_mut() = None;
    let rest: Vec<Task> = started.borrow_mut().drain(..).collect();
    sim.run(rest);
    for kind in [
        "request",
        "response",
        "retry",
        "breaker",
        "rateLimited",
        "error",
    ] {
        assert!(!sim.events_of(kind).is_empty(), "no {kind} event");
    }
    assert_eq!(reentered.get(), 40);
    let stats = engine.stats();
    assert_eq!(stats.requests, 6 + 40);
    assert_eq!(stats.successes + stats.failures, stats.requests);
}

/// The Durable Object's own settings, unlike the clients' in the tests below: a client must never run
/// on them.
fn object_defaults() -> PolicyBoard {
    PolicyBoard::new(
        Some(BreakerConfig::default()),
        Some(RateLimitConfig {
            requests_per_minute: Some(1_000),
            burst: Some(1_000),
            tokens_per_minute: None,
            max_wait_ms: 5_000,
        }),
    )
}

#[test]
fn a_shared_state_rate_limit_refusal_is_counted_and_emitted_like_a_local_one() {
    let sim = Sim::new(|_, _| Reply::status(200).after(10));
    sim.share_state(object_defaults(), 3);
    let engine = Rc::new(Engine::new(rate_config(60, 1, 0), 7));
    assert_eq!(status(&run_one(&sim, &engine, call(&engine, "first"))), 200);
    match run_one(&sim, &engine, call(&engine, "second")) {
        Err(Failure::RateLimited { key, .. }) => assert_eq!(key, "client"),
        other => panic!("the client's 1 a minute refuses the second call, got {other:?}"),
    }
    let stats = engine.stats();
    assert_eq!(
        (stats.requests, stats.failures, stats.rejected_rate_limit),
        (2, 1, 1)
    );
    assert_eq!(sim.events_of("error").len(), 1);
    assert_eq!(sim.events_of("rateLimited").len(), 1);
    assert_eq!(sim.sent.borrow().len(), 1);
}

#[test]
fn a_shared_bucket_wait_is_bounded_by_total_ms() {
    let sim = Sim::new(|_, _| Reply::status(200).after(10));
    sim.share_state(object_defaults(), 3);
    let mut cfg = rate_config(1, 1, 120_000);
    cfg.timeout.total_ms = Some(1_000);
    let engine = Rc::new(Engine::new(cfg, 7));
    assert_eq!(status(&run_one(&sim, &engine, call(&engine, "first"))), 200);
    let started = sim.now();
    match run_one(&sim, &engine, call(&engine, "second")) {
        Err(Failure::Timeout { phase, .. }) => assert_eq!(phase, TimeoutPhase::Total),
        other => panic!("a minute's wait ends at the 1 s deadline, got {other:?}"),
    }
    assert_eq!(sim.now() - started, 1_000);
    assert_eq!(sim.events_of("error").len(), 1);
    assert_eq!(sim.sent.borrow().len(), 1);
}

#[test]
fn with_shared_state_the_clients_failure_threshold_opens_the_breaker() {
    let sim = Sim::new(|_, _| Reply::status(503).after(10));
    sim.share_state(object_defaults(), 3);
    let breaker = BreakerConfig {
        failure_threshold: 3,
        ..BreakerConfig::default()
    };
    let engine = Rc::new(Engine::new(
        ClientConfig {
            breaker: Some((breaker, Scope::Origin)),
            ..config(None)
        },
        7,
    ));
    for _ in 0..3 {
        assert_eq!(status(&run_one(&sim, &engine, call(&engine, "a"))), 503);
    }
    match run_one(&sim, &engine, call(&engine, "a")) {
        Err(Failure::CircuitOpen { key, .. }) => assert_eq!(key, "https://api.example"),
        other => panic!("the client's threshold of 3 opens the shared breaker, got {other:?}"),
    }
    assert_eq!(sim.sent.borrow().len(), 3);
    assert_eq!(engine.stats().rejected_breaker, 1);
    assert_eq!(sim.events_of("error").len(), 1);
    // Another client with the same settings sees the same breaker open.
    let other = Rc::new(Engine::new(engine.config().clone(), 8));
    assert!(matches!(
        run_one(&sim, &other, call(&other, "b")),
        Err(Failure::CircuitOpen { .. })
    ));
    assert_eq!(sim.sent.borrow().len(), 3);
}

/// A provider allowing `limit` requests per `period_ms`, as a bucket that refills continuously
/// (OpenAI's and Anthropic's model), reporting what is left in OpenAI's headers (`anthropic`:
/// Anthropic's, resets as RFC 3339 times) and answering 429 past it.
fn limited_server(
    limit: u64,
    period_ms: u64,
    anthropic: bool,
) -> impl FnMut(u64, &str) -> Reply + 'static {
    // The level in 1/period_ms requests: `limit` of them come back every millisecond.
    let (capacity, cost) = (limit * period_ms, period_ms);
    let (mut level, mut at) = (capacity, 0);
    move |now, _| {
        level = (level + (now - at) * limit).min(capacity);
        at = now;
        if level < cost {
            let wait = (cost - level).div_ceil(limit);
            let response =
                SimResponse::status(429).with_header("retry-after-ms", &wait.to_string());
            return Reply::ok(response).after(1);
        }
        level -= cost;
        let left = (level / cost).to_string();
        let reset_in = (capacity - level).div_ceil(limit);
        let response = if anthropic {
            // The simulated wall clock starts at 2026-01-01T00:00:00Z.
            let t = now + reset_in;
            let reset = format!(
                "2026-01-01T00:{:02}:{:02}.{:03}Z",
                t / 60_000,
                t / 1000 % 60,
                t % 1000
            );
            SimResponse::status(200)
                .with_header("anthropic-ratelimit-requests-remaining", &left)
                .with_header("anthropic-ratelimit-requests-limit", &limit.to_string())
                .with_header("anthropic-ratelimit-requests-reset", &reset)
        } else {
            SimResponse::status(200)
                .with_header("x-ratelimit-remaining-requests", &left)
                .with_header("x-ratelimit-limit-requests", &limit.to_string())
                .with_header("x-ratelimit-reset-requests", &format!("{reset_in}ms"))
        };
        Reply::ok(response).after(1)
    }
}

/// `n` calls to `target:a`, one every `every_ms`, learning or not: (429s received, send times).
fn against_a_limited_server(
    learn: bool,
    anthropic: bool,
    n: u64,
    every_ms: u64,
) -> (usize, Vec<u64>) {
    let sim = Sim::new(limited_server(3, 1000, anthropic));
    let engine = Rc::new(Engine::new(config(None), 7));
    let calls = (0..n)
        .map(|i| {
            let spec = CallSpec {
                origin: "target:a".to_string(),
                learn_limits: learn,
                ..call(&engine, &format!("{i}"))
            };
            (i * every_ms, spec)
        })
        .collect();
    let outcomes = run_many(&sim, &engine, calls);
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    let too_many = outcomes.iter().filter(|o| status(o) == 429).count();
    (too_many, sim.send_times())
}

#[test]
fn learned_limits_hold_calls_until_the_refill_instead_of_earning_429s() {
    for anthropic in [false, true] {
        // 12 calls 100 ms apart against 3 per second: blind, half of them earn a 429.
        let (blind, _) = against_a_limited_server(false, anthropic, 12, 100);
        assert_eq!(blind, 6, "anthropic: {anthropic}");
        let (learning, sent) = against_a_limited_server(true, anthropic, 12, 100);
        assert_eq!(learning, 0, "anthropic: {anthropic}");
        // The 4th call (t = 300) waits for the refill the report at t = 201 announced: 0 of 3
        // left, whole in 800 ms, so at least 2 back by then (one unit is kept short, as the count
        // left is rounded down), one per 400 ms.
        assert_eq!(&sent[..4], [0, 100, 200, 601], "anthropic: {anthropic}");
        // The server's limit is never passed: no more than 3 in any second, plus the refill.
        for (i, t) in sent.iter().enumerate().skip(3) {
            assert!(t - sent[i - 3] >= 1000 / 3, "{sent:?}");
        }
    }
}

#[test]
fn a_learned_limit_past_max_wait_refuses_at_once_with_the_refill_time() {
    let sim = Sim::new(|_, _| {
        Reply::ok(
            SimResponse::status(200)
                .with_header("x-ratelimit-remaining-requests", "0")
                .with_header("x-ratelimit-reset-requests", "1m0s"),
        )
    });
    let engine = Rc::new(Engine::new(config(None), 7));
    let learning = |label: &str| CallSpec {
        origin: "target:a".to_string(),
        learn_limits: true,
        ..call(&engine, label)
    };
    assert_eq!(status(&run_one(&sim, &engine, learning("first"))), 200);
    sim.advance_to(10_000);
    match run_one(&sim, &engine, learning("second")) {
        Err(Failure::RateLimited {
            key,
            retry_after_ms,
        }) => assert_eq!((key.as_str(), retry_after_ms), ("target:a", 50_010)),
        other => panic!("{other:?}"),
    }
    assert_eq!(engine.stats().rejected_rate_limit, 1);
    let views = engine.learned_limits(10_000);
    assert_eq!(views.len(), 1);
    assert_eq!(
        (views[0].remaining_requests, views[0].reset_in_ms),
        (Some(0), 50_010)
    );
    // A call that does not learn (a target opted out, a plain fetch) is not held.
    let blind = CallSpec {
        origin: "target:a".to_string(),
        ..call(&engine, "blind")
    };
    assert_eq!(status(&run_one(&sim, &engine, blind)), 200);
}

#[test]
fn an_azure_retry_after_ms_holds_the_next_call() {
    let sim = Sim::new(|now, _| match now {
        0 => Reply::ok(SimResponse::status(200).with_header("x-ms-retry-after-ms", "1200")),
        _ => Reply::status(200),
    });
    let engine = Rc::new(Engine::new(config(None), 7));
    let learning = |label: &str| CallSpec {
        origin: "target:azure".to_string(),
        learn_limits: true,
        ..call(&engine, label)
    };
    assert_eq!(status(&run_one(&sim, &engine, learning("first"))), 200);
    assert_eq!(status(&run_one(&sim, &engine, learning("second"))), 200);
    // Read with the answer, at t = 10.
    assert_eq!(sim.send_times(), [0, 1210]);
}

/// A chat call's walk along targets `target:0`, `target:1`, ... through the pipeline, the way the
/// binding drives [`Chain`]: the index of the target that answered, or every failure.
async fn walk_chain(
    engine: &Engine,
    platform: &SimPlatform,
    targets: usize,
    max_wait_ms: u64,
) -> Result<usize, Vec<String>> {
    use sturdy_llm::core::llm::{Chain, Outcome as Fate, Step};
    use sturdy_llm::core::platform::Platform;
    let mut chain = Chain::new(targets)
        .expect("targets")
        .waiting_up_to(max_wait_ms, None);
    let mut step = chain.start();
    loop {
        let index = match step {
            Step::Try { index, .. } => index,
            Step::Wait { index, ms } => {
                platform.sleep(ms).await;
                index
            }
            Step::Stop(failure) => return Err(vec![failure]),
            Step::AllFailed(failures) => return Err(failures),
        };
        let spec = CallSpec {
            origin: format!("target:{index}"),
            ..call(engine, &format!("{index}"))
        };
        let outcome = engine.execute(platform, &spec).await;
        let (failure, back_in) = match outcome {
            Ok(answer) if answer.response.status < 400 => return Ok(index),
            Ok(answer) => (format!("{index}: {}", answer.response.status), None),
            Err(
                Failure::CircuitOpen { retry_after_ms, .. }
                | Failure::RateLimited { retry_after_ms, .. },
            ) => (
                format!("{index}: back in {retry_after_ms}"),
                Some(retry_after_ms),
            ),
            Err(other) => (format!("{index}: {other:?}"), None),
        };
        // A failure that does not say when it ends may have opened the breaker, which does.
        let now = platform.now_ms();
        let back_in = back_in.or_else(|| engine.opens_in(&spec.origin, now));
        step = chain.failed_at(Fate::Unavailable, failure, back_in, now);
    }
}

#[test]
fn a_full_outage_of_every_target_is_waited_out_for_the_first_probe() {
    for max_wait_ms in [5000, 0] {
        // Both targets fail until t = 2500; one failure opens a breaker for 2 s.
        let sim = Sim::new(|now, _| Reply::status(if now < 2500 { 503 } else { 200 }).after(10));
        let engine = Rc::new(Engine::new(
            ClientConfig {
                breaker: Some((
                    BreakerConfig {
                        failure_threshold: 1,
                        reset_timeout_ms: 2000,
                        ..BreakerConfig::default()
                    },
                    Scope::Origin,
                )),
                ..config(None)
            },
            7,
        ));
        let platform = SimPlatform(sim.clone());
        let (e, p) = (engine.clone(), platform.clone());
        let outcome = sim.block_on(async move { walk_chain(&e, &p, 2, max_wait_ms).await });
        if max_wait_ms == 0 {
            let failures = vec!["0: 503".to_string(), "1: 503".to_string()];
            assert_eq!(outcome, Err(failures), "failed at once");
            assert_eq!(sim.now(), 20);
            continue;
        }
        // The 503s opened both breakers (probes at 2010 and 2020): target 0's probe at 2010 fails
        // (reopened until 4020), target 1's at 2020 too (until 4030); target 0's next one answers.
        assert_eq!(outcome, Ok(0));
        assert_eq!(sim.send_times(), [0, 10, 2010, 2020, 4020]);
        assert_eq!(sim.now(), 4030);
    }
}
