//! Hedged first tokens in simulated time: the race of two pipeline calls, who wins, and what the
//! loser costs (nothing: no failure, no leaked probe slot).

mod sim;

use sim::{Reply, Sim, SimPlatform};
use std::cell::Cell;
use std::rc::Rc;
use sturdy_llm::core::breaker::{BreakerConfig, StateKind};
use sturdy_llm::core::config::{ClientConfig, Scope, Timeouts};
use sturdy_llm::core::error::Failure;
use sturdy_llm::core::hedge::{hedged, Raced, Side};
use sturdy_llm::core::pipeline::{CallSpec, Engine};

/// An upstream where "slow" answers after `slow_ms`, "fast" after 100 ms and "down" fails after
/// 50 ms.
fn world(slow_ms: u64) -> Rc<Sim> {
    Sim::new(move |_, request| match request {
        "slow" => Reply::status(200).after(slow_ms),
        "down" => Reply::status(503).after(50),
        "broken" => Reply::network().after(50),
        _ => Reply::status(200).after(100),
    })
}

fn engine() -> Rc<Engine> {
    let cfg = ClientConfig {
        timeout: Timeouts::default(),
        retry: None,
        breaker: Some((
            BreakerConfig {
                failure_threshold: 1,
                reset_timeout_ms: 2_000,
                ..BreakerConfig::default()
            },
            Scope::Origin,
        )),
        rate_limit: None,
    };
    Rc::new(Engine::new(cfg, 7))
}

fn spec(engine: &Engine, label: &str) -> CallSpec<String> {
    CallSpec {
        request: label.to_string(),
        url: format!("https://{label}.example/v1"),
        origin: label.to_string(),
        rate_key: None,
        timeout: engine.config().timeout,
        spent_ms: 0,
        retry: None,
        tokens: 0,
        learn_limits: false,
    }
}

/// The status of the request labelled `label`, sent through `engine`, or how it failed.
fn status_of(
    engine: &Rc<Engine>,
    platform: &SimPlatform,
    label: &str,
) -> impl std::future::Future<Output = Result<u16, Failure>> {
    let (spec, engine, platform) = (spec(engine, label), engine.clone(), platform.clone());
    async move {
        let answer = engine.execute(&platform, &spec).await;
        answer.map(|r| r.response.status)
    }
}

/// Opens "slow"'s breaker with one failure ("down" sent on its origin), then moves past its reset
/// timeout: it is half-open, and the next call to it is its one probe.
fn half_open_slow(sim: &Rc<Sim>, engine: &Rc<Engine>) {
    let platform = SimPlatform(sim.clone());
    let mut down = spec(engine, "down");
    down.origin = "slow".into();
    let e = engine.clone();
    let _ = sim.block_on(async move { e.execute(&platform, &down).await });
    sim.advance_to(2_100);
}

/// Races `primary` against `hedge` (started `after_ms` later); what happened, and when it ended.
fn race(
    sim: &Rc<Sim>,
    engine: &Rc<Engine>,
    (primary, hedge): (&str, Option<&str>),
    after_ms: Option<u64>,
) -> (Raced<u16, String>, u64) {
    let (platform, engine) = (SimPlatform(sim.clone()), engine.clone());
    let (a, b) = (spec(&engine, primary), hedge.map(|h| spec(&engine, h)));
    let asked = Rc::new(Cell::new(false));
    let seen = asked.clone();
    let sim2 = sim.clone();
    let raced = sim.block_on(async move {
        let send = |spec: CallSpec<String>| {
            let (engine, platform) = (engine.clone(), platform.clone());
            async move {
                let answer = engine.execute(&platform, &spec).await;
                match answer {
                    Ok(r) if r.response.status < 400 => Ok(r.response.status),
                    Ok(r) => Err(format!("status {}", r.response.status)),
                    Err(failure) => Err(format!("{failure:?}")),
                }
            }
        };
        let start = || {
            seen.set(true);
            b.map(send)
        };
        hedged(&platform, send(a), after_ms, start, engine.superseding()).await
    });
    if hedge.is_some() {
        // Asked for a hedge exactly when one was started.
        assert_eq!(asked.get(), raced.hedged);
    }
    (raced, sim2.now())
}

#[test]
fn a_late_primary_loses_to_the_hedge_and_its_cancellation_is_no_failure() {
    let sim = world(1500);
    let engine = engine();
    let (raced, ended) = race(&sim, &engine, ("slow", Some("fast")), Some(300));
    assert!(raced.hedged);
    assert!(matches!(raced.won, Some((Side::Hedge, 200))));
    assert!(raced.primary.is_none() && raced.hedge.is_none());
    // The hedge started at 300 and answered 100 ms later; the primary was dropped then.
    assert_eq!(ended, 400);
    assert_eq!(sim.send_times(), vec![0, 300]);
    let stats = engine.stats();
    assert_eq!((stats.requests, stats.successes, stats.failures), (2, 1, 0));
    let slow = engine.breakers(ended);
    let slow = slow.iter().find(|b| b.key == "slow").expect("breaker");
    assert_eq!((slow.state, slow.failures), (StateKind::Closed, 0));
}

#[test]
fn a_superseded_half_open_probe_gives_its_slot_back() {
    let sim = world(1500);
    let engine = engine();
    half_open_slow(&sim, &engine);
    // Half-open: the primary is its one probe, superseded by the hedge.
    let (raced, ended) = race(&sim, &engine, ("slow", Some("fast")), Some(300));
    assert!(matches!(raced.won, Some((Side::Hedge, 200))));
    let views = engine.breakers(ended);
    let slow = views.iter().find(|b| b.key == "slow").expect("breaker");
    assert_eq!(slow.state, StateKind::HalfOpen);
    // The slot is free again: the next call is admitted as a probe at once, and closes it.
    let (raced, _) = race(&sim, &engine, ("slow", None), None);
    assert!(matches!(raced.won, Some((Side::Primary, 200))));
    let views = engine.breakers(sim.now());
    let slow = views.iter().find(|b| b.key == "slow").expect("breaker");
    assert_eq!(slow.state, StateKind::Closed);
}

#[test]
fn a_primary_in_time_is_not_hedged() {
    let sim = world(200);
    let engine = engine();
    let (raced, ended) = race(&sim, &engine, ("slow", Some("fast")), Some(300));
    assert!(!raced.hedged);
    assert!(matches!(raced.won, Some((Side::Primary, 200))));
    assert_eq!((ended, sim.send_times()), (200, vec![0]));
}

#[test]
fn a_primary_failing_before_the_delay_ends_the_race_unhedged() {
    let sim = world(200);
    let engine = engine();
    let (raced, _) = race(&sim, &engine, ("down", Some("fast")), Some(300));
    assert!(!raced.hedged && raced.won.is_none());
    assert_eq!(raced.primary.as_deref(), Some("status 503"));
    assert_eq!(sim.send_times(), vec![0]);
}

#[test]
fn a_failing_hedge_waits_for_the_primary_and_the_other_way_round() {
    let sim = world(1000);
    let engine = engine();
    let (raced, ended) = race(&sim, &engine, ("slow", Some("down")), Some(300));
    assert!(raced.hedged);
    assert!(matches!(raced.won, Some((Side::Primary, 200))));
    assert_eq!(raced.hedge.as_deref(), Some("status 503"));
    assert_eq!(ended, 1000);
    // A primary failing while its hedge runs is not the call's failure either.
    let sim = Sim::new(|_, request| match request {
        "late-down" => Reply::network().after(500),
        _ => Reply::status(200).after(400),
    });
    let (raced, ended) = race(&sim, &engine, ("late-down", Some("fast")), Some(300));
    assert!(matches!(raced.won, Some((Side::Hedge, 200))));
    assert!(raced.primary.is_some());
    assert_eq!(ended, 700);
    // Both failing: both reported, nobody won.
    let sim = Sim::new(|_, _| Reply::network().after(400));
    let (raced, _) = race(&sim, &engine, ("a", Some("b")), Some(100));
    assert!(raced.won.is_none() && raced.primary.is_some() && raced.hedge.is_some());
}

#[test]
fn a_declined_hedge_and_no_delay_leave_the_primary_alone() {
    let sim = world(1000);
    let engine = engine();
    let (raced, ended) = race(&sim, &engine, ("slow", None), Some(300));
    assert!(!raced.hedged && matches!(raced.won, Some((Side::Primary, 200))));
    assert_eq!(ended, 1000);
    let (raced, _) = race(&sim, &engine, ("slow", Some("fast")), None);
    assert!(!raced.hedged && matches!(raced.won, Some((Side::Primary, 200))));
}

#[test]
fn a_zero_delay_starts_both_at_once() {
    let sim = world(1000);
    let engine = engine();
    let (raced, ended) = race(&sim, &engine, ("slow", Some("fast")), Some(0));
    assert!(matches!(raced.won, Some((Side::Hedge, 200))));
    assert_eq!((ended, sim.send_times()), (100, vec![0, 0]));
}

#[test]
fn thousands_of_hedged_races_at_once_cancel_every_loser() {
    let sim = world(1500);
    let engine = engine();
    let platform = SimPlatform(sim.clone());
    let won = Rc::new(Cell::new(0u32));
    let tasks = (0..2000)
        .map(|_| {
            let (engine, platform, won) = (engine.clone(), platform.clone(), won.clone());
            Box::pin(async move {
                let send = |label| status_of(&engine, &platform, label);
                let raced = hedged(
                    &platform,
                    send("slow"),
                    Some(300),
                    || Some(send("fast")),
                    engine.superseding(),
                )
                .await;
                if matches!(raced.won, Some((Side::Hedge, 200))) {
                    won.set(won.get() + 1);
                }
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        })
        .collect();
    sim.run(tasks);
    assert_eq!(won.get(), 2000);
    assert_eq!(sim.now(), 400);
    let stats = engine.stats();
    assert_eq!(
        (stats.requests, stats.successes, stats.failures),
        (4000, 2000, 0)
    );
}

#[test]
fn a_race_cancelled_by_its_caller_drops_both_at_once_as_no_failure_and_frees_the_probe() {
    use sturdy_llm::core::platform::Platform;
    use sturdy_llm::core::race::{race as either, unless_cancelled, Cancel};
    let sim = world(1500);
    let engine = engine();
    half_open_slow(&sim, &engine);
    let platform = SimPlatform(sim.clone());
    let before = engine.stats();
    let e = engine.clone();
    let cancelled = sim.block_on(async move {
        let cancel = Cancel::default();
        let send = |label| status_of(&e, &platform, label);
        let hedging = hedged(
            &platform,
            send("slow"),
            Some(450),
            || Some(send("fast")),
            e.superseding(),
        );
        // The caller cancels 500 ms in, with both sides running (the hedge would answer at 550).
        let caller = async {
            platform.sleep(500).await;
            cancel.cancel();
            std::future::pending::<()>().await
        };
        either(caller, unless_cancelled(hedging, &cancel, e.superseding())).await
    });
    assert!(
        matches!(cancelled, sturdy_llm::core::race::Either::Right(None)),
        "{cancelled:?}"
    );
    assert_eq!(sim.now(), 2_600, "ended at the cancel");
    let stats = engine.stats();
    assert_eq!(stats.requests - before.requests, 2, "both sides were sent");
    assert_eq!(sim.send_times().len(), 3);
    assert_eq!(
        (stats.successes, stats.failures),
        (before.successes, before.failures),
        "a cancel is neither success nor failure"
    );
    // The probe's slot is free again: the next call is admitted as a probe at once.
    let views = engine.breakers(sim.now());
    let slow = views.iter().find(|b| b.key == "slow").expect("breaker");
    assert_eq!(slow.state, StateKind::HalfOpen);
    let (raced, _) = race(&sim, &engine, ("fast", None), None);
    assert!(matches!(raced.won, Some((Side::Primary, 200))));
}

/// Identical callers of "slow" (started at `at` ms, hedging to "fast" at 300 ms when `hedges`),
/// every call shared through one engine's flights: how each ended (who won, and when), and the
/// flights left open.
fn shared_callers(
    sim: &Rc<Sim>,
    engine: &Rc<Engine>,
    callers: &[(u64, bool)],
) -> (Vec<(Option<Side>, u64)>, usize) {
    use sturdy_llm::core::pipeline::JoinableCalls;
    let platform = SimPlatform(sim.clone());
    let flights = Rc::new(JoinableCalls::default());
    let ended = Rc::new(std::cell::RefCell::new(vec![(None, 0); callers.len()]));
    let (on, joinable) = (engine.clone(), flights.clone());
    let shared = move |label: &'static str| {
        let (engine, platform, flights) = (on.clone(), platform.clone(), joinable.clone());
        async move {
            let spec = Rc::new(spec(&engine, label));
            let answer = engine.execute_or_join(&platform, &flights, &spec, label);
            let answer = answer.await;
            answer
                .map(|r| r.response.status)
                .map_err(|f| format!("{f:?}"))
        }
    };
    let tasks = callers
        .iter()
        .enumerate()
        .map(|(i, &(at, hedges))| {
            let (sim, engine, ended, shared) =
                (sim.clone(), engine.clone(), ended.clone(), shared.clone());
            Box::pin(async move {
                sim.timer(at).await;
                let platform = SimPlatform(sim.clone());
                let after = hedges.then_some(300);
                let hedge = || Some(shared("fast"));
                let raced = hedged(
                    &platform,
                    shared("slow"),
                    after,
                    hedge,
                    engine.superseding(),
                );
                let won = raced.await.won.map(|(side, status)| {
                    assert_eq!(status, 200);
                    side
                });
                ended.borrow_mut()[i] = (won, sim.now());
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        })
        .collect();
    sim.run(tasks);
    let ended = ended.borrow().clone();
    (ended, flights.len())
}

/// When `label` was sent.
/// The engine's requests, successes, failures and deduplicated calls.
fn outcomes(engine: &Engine) -> (u64, u64, u64, u64) {
    let stats = engine.stats();
    (
        stats.requests,
        stats.successes,
        stats.failures,
        stats.deduplicated,
    )
}

fn sent(sim: &Sim, label: &str) -> Vec<u64> {
    let sent = sim.sent.borrow();
    sent.iter()
        .filter(|(_, r)| r == label)
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn a_hedge_that_supersedes_a_shared_call_leaves_it_to_the_calls_that_joined_it() {
    let sim = world(1500);
    let engine = engine();
    // The first call hedges at 300 ms and wins with "fast"; the second, identical, joined the
    // first's call to "slow" and does not hedge: it gets that call's answer, at 1500 (before, the
    // call was cancelled with the hedge's loser, and sent again for the second at 400).
    let (ended, open) = shared_callers(&sim, &engine, &[(0, true), (10, false)]);
    assert_eq!(
        ended,
        [(Some(Side::Hedge), 400), (Some(Side::Primary), 1500)]
    );
    assert_eq!(open, 0);
    assert_eq!(
        sent(&sim, "slow"),
        [0],
        "one call to the slow target, shared"
    );
    // The call to "slow" answered one caller, who owns it now: nothing was deduplicated.
    assert_eq!(outcomes(&engine), (2, 2, 0, 0));
}

#[test]
fn a_shared_call_every_caller_hedged_past_is_cancelled_with_the_last_as_no_failure() {
    let sim = world(1500);
    let engine = engine();
    // Both hedge; the second joins the first's hedge too, and both win with it at 400: the call to
    // "slow" is dropped when its last caller leaves, superseded, not failed.
    let (ended, open) = shared_callers(&sim, &engine, &[(0, true), (10, true)]);
    assert_eq!(ended, [(Some(Side::Hedge), 400), (Some(Side::Hedge), 400)]);
    assert_eq!(open, 0);
    assert_eq!(
        (sent(&sim, "slow"), sent(&sim, "fast")),
        (vec![0], vec![300])
    );
    assert_eq!(outcomes(&engine), (2, 1, 0, 1));
    let views = engine.breakers(sim.now());
    let slow = views.iter().find(|b| b.key == "slow").expect("breaker");
    assert_eq!((slow.state, slow.failures), (StateKind::Closed, 0));
}

#[test]
fn a_callers_abort_seen_as_the_sends_failure_counts_no_breaker_failure_in_a_race_or_outside() {
    use sturdy_llm::core::platform::SendError;
    use sturdy_llm::core::retry::{Jitter, RetryConfig};
    // The caller's signal also fails each send in flight; a runtime may show that failure before
    // the abort itself. Here both sends fail so at 500 ms, during the race.
    let aborted = || Reply {
        after_ms: Some(500),
        result: Err(SendError::Aborted),
    };
    let sim = Sim::new(move |_, _| aborted());
    let engine = engine();
    let (raced, ended) = race(&sim, &engine, ("a", Some("b")), Some(300));
    assert!(raced.hedged && raced.won.is_none());
    assert_eq!(raced.primary.as_deref(), Some("Aborted { attempts: 1 }"));
    assert_eq!(ended, 800, "the hedge's send failed last");
    let no_failures = |engine: &Engine| {
        let views = engine.breakers(sim.now());
        views
            .iter()
            .all(|b| b.state == StateKind::Closed && b.failures == 0)
    };
    assert!(no_failures(&engine), "{:?}", engine.breakers(sim.now()));
    assert!(
        sim.events_of("error").is_empty(),
        "an abort is no error event"
    );
    // Outside a race, and with retries: not retried, not counted by the breaker.
    let sim = Sim::new(move |_, _| aborted());
    let cfg = ClientConfig {
        retry: Some(RetryConfig {
            max_retries: 3,
            jitter: Jitter::None,
            ..RetryConfig::default()
        }),
        ..engine.config().clone()
    };
    let engine = Rc::new(Engine::new(cfg, 7));
    let (platform, e) = (SimPlatform(sim.clone()), engine.clone());
    let mut call = spec(&engine, "a");
    call.retry = engine.config().retry.clone();
    let failure = sim.block_on(async move { e.execute(&platform, &call).await.err() });
    assert_eq!(failure, Some(Failure::Aborted { attempts: 1 }));
    assert_eq!(sim.sent.borrow().len(), 1, "not retried");
    assert!(no_failures(&engine), "{:?}", engine.breakers(sim.now()));
    // Counted as any call its caller's abort dropped: a failed call, not the upstream's failure.
    let stats = engine.stats();
    assert_eq!((stats.requests, stats.failures, stats.retries), (1, 1, 0));
}
