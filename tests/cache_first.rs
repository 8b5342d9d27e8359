//! Cache-first in simulated time, as `client.fetch` and streams run it: a fresh entry answers without
//! the upstream, a miss goes upstream, and a stale entry stands in for an upstream that failed
//! (after its retries, or at its deadline) but never for a success, a 4xx or the caller's own abort.

mod sim;

use sim::{Reply, Sim, SimPlatform, SimResponse};
use std::rc::Rc;
use sturdy_llm::core::cache::{cache_first, serves_stale, CacheFirst, Freshness};
use sturdy_llm::core::config::{CacheMode, ClientConfig, Timeouts};
use sturdy_llm::core::error::{Failure, TimeoutPhase};
use sturdy_llm::core::pipeline::{CallSpec, Engine, UpstreamResponse};
use sturdy_llm::core::platform::Platform;
use sturdy_llm::core::retry::{Jitter, RetryConfig};

type Outcome = Result<UpstreamResponse<SimResponse>, Failure>;

/// How a cache-first call was answered.
#[derive(Debug)]
enum Served<T> {
    Hit(&'static str),
    Unsatisfiable,
    Upstream(T),
    Stale(&'static str),
}

const URL: &str = "https://api.example/v1/chat/completions";

fn engine(max_retries: u32, total_ms: Option<u64>) -> Rc<Engine> {
    let config = ClientConfig {
        timeout: Timeouts {
            total_ms,
            ..Timeouts::default()
        },
        retry: Some(RetryConfig {
            max_retries,
            jitter: Jitter::None,
            ..RetryConfig::default()
        }),
        breaker: None,
        rate_limit: None,
    };
    Rc::new(Engine::new(config, 7))
}

/// What both callers count as a failed upstream (an error is never the caller's abort here).
fn failed(outcome: &Outcome) -> bool {
    match outcome {
        Ok(delivered) => serves_stale(Some(delivered.response.status), false),
        Err(_) => serves_stale(None, false),
    }
}

/// Both steps of cache-first around `upstream`, as `client.fetch` and streams take them.
async fn answer<P: Platform, T>(
    platform: &P,
    mode: CacheMode,
    found: Option<(&'static str, Freshness)>,
    upstream: impl std::future::Future<Output = T>,
    failed: impl FnOnce(&T) -> bool,
) -> Served<T> {
    let pending = match cache_first(platform, URL, mode, found) {
        CacheFirst::Hit(entry) => return Served::Hit(entry),
        CacheFirst::Unsatisfiable => return Served::Unsatisfiable,
        CacheFirst::Upstream(pending) => pending,
    };
    let outcome = upstream.await;
    let failed = failed(&outcome);
    match pending.stale_if_error(platform, URL, failed) {
        Some(entry) => Served::Stale(entry),
        None => Served::Upstream(outcome),
    }
}

/// One cache-first call: `found` in the store, the engine's call upstream.
fn run(
    sim: &Rc<Sim>,
    engine: &Rc<Engine>,
    mode: CacheMode,
    found: Option<(&'static str, Freshness)>,
) -> Served<Outcome> {
    let platform = SimPlatform(sim.clone());
    let engine = engine.clone();
    sim.block_on(async move {
        let call = CallSpec {
            request: "prompt".to_string(),
            url: URL.to_string(),
            origin: "https://api.example".to_string(),
            rate_key: None,
            timeout: engine.config().timeout,
            spent_ms: 0,
            retry: engine.config().retry.clone(),
            tokens: 0,
            learn_limits: false,
        };
        let upstream = engine.execute(&platform, &call);
        answer(&platform, mode, found, upstream, failed).await
    })
}

/// The `cache` events, as (time, result).
fn cache_events(sim: &Sim) -> Vec<(u64, &'static str)> {
    sim.events_of("cache")
        .into_iter()
        .map(|(at, text)| {
            let result = ["hit", "miss", "stale"]
                .into_iter()
                .find(|result| text.contains(&format!("result: \"{result}\"")))
                .expect("a cache-first result");
            (at, result)
        })
        .collect()
}

fn status(answer: &Served<Outcome>) -> Option<u16> {
    match answer {
        Served::Upstream(Ok(delivered)) => Some(delivered.response.status),
        _ => None,
    }
}

#[test]
fn a_fresh_entry_answers_without_asking_the_upstream() {
    let sim = Sim::new(|_, _| Reply::status(200));
    let answer = run(
        &sim,
        &engine(2, None),
        CacheMode::Default,
        Some(("fresh", Freshness::Fresh)),
    );
    assert!(matches!(answer, Served::Hit("fresh")), "{answer:?}");
    assert!(sim.sent.borrow().is_empty());
    assert_eq!(cache_events(&sim), [(0, "hit")]);
}

#[test]
fn a_miss_goes_upstream_and_hands_back_its_answer() {
    let sim = Sim::new(|_, _| Reply::status(200).after(40));
    let answer = run(&sim, &engine(2, None), CacheMode::Default, None);
    assert_eq!(status(&answer), Some(200));
    assert_eq!(sim.send_times(), [0]);
    assert_eq!(cache_events(&sim), [(0, "miss")]);
}

#[test]
fn a_stale_entry_answers_once_the_retries_of_a_5xx_are_spent() {
    let sim = Sim::new(|_, _| Reply::status(503).after(10));
    let answer = run(
        &sim,
        &engine(2, None),
        CacheMode::Default,
        Some(("stale", Freshness::Stale)),
    );
    assert!(matches!(answer, Served::Stale("stale")), "{answer:?}");
    // Three attempts, then the stale entry, at the moment the last 503 arrived.
    let sent = sim.send_times();
    assert_eq!(sent.len(), 3);
    assert_eq!(cache_events(&sim), [(0, "miss"), (sim.now(), "stale")]);
    assert_eq!(sim.now(), sent[2] + 10);
}

#[test]
fn a_stale_entry_answers_at_the_total_deadline_of_an_upstream_that_never_answers() {
    let sim = Sim::new(|_, _| Reply::stall());
    let answer = run(
        &sim,
        &engine(0, Some(2_500)),
        CacheMode::Default,
        Some(("stale", Freshness::Stale)),
    );
    assert!(matches!(answer, Served::Stale("stale")), "{answer:?}");
    assert_eq!(cache_events(&sim), [(0, "miss"), (2_500, "stale")]);
    let errors = sim.events_of("error");
    assert_eq!(errors.len(), 1, "the upstream's failure is still reported");
    assert!(errors[0].1.contains(&format!("{:?}", TimeoutPhase::Total)));
}

#[test]
fn a_stale_entry_stands_in_for_a_network_failure_but_not_for_a_success_or_a_4xx() {
    for (reply, stale_answers) in [
        (Reply::network as fn() -> Reply, true),
        (|| Reply::status(500), true),
        (|| Reply::status(200), false),
        (|| Reply::status(404), false),
        (|| Reply::status(429), false),
    ] {
        let sim = Sim::new(move |_, _| reply());
        let answer = run(
            &sim,
            &engine(0, None),
            CacheMode::Default,
            Some(("stale", Freshness::Stale)),
        );
        let events = cache_events(&sim);
        if stale_answers {
            assert!(matches!(answer, Served::Stale("stale")), "{answer:?}");
            assert_eq!(events, [(0, "miss"), (10, "stale")]);
        } else {
            assert!(matches!(answer, Served::Upstream(Ok(_))), "{answer:?}");
            assert_eq!(events, [(0, "miss")]);
        }
    }
}

#[test]
fn only_if_cached_without_a_fresh_entry_never_asks_the_upstream() {
    for found in [None, Some(("stale", Freshness::Stale))] {
        let sim = Sim::new(|_, _| Reply::status(200));
        let answer = run(&sim, &engine(2, None), CacheMode::OnlyIfCached, found);
        assert!(matches!(answer, Served::Unsatisfiable), "{answer:?}");
        assert!(sim.sent.borrow().is_empty());
        assert_eq!(cache_events(&sim), [(0, "miss")]);
    }
    let sim = Sim::new(|_, _| Reply::status(200));
    let fresh = Some(("fresh", Freshness::Fresh));
    let answer = run(&sim, &engine(2, None), CacheMode::OnlyIfCached, fresh);
    assert!(matches!(answer, Served::Hit("fresh")), "{answer:?}");
}

#[test]
fn a_stale_entry_never_answers_for_the_callers_own_abort() {
    let sim = Sim::new(|_, _| Reply::status(200));
    let platform = SimPlatform(sim.clone());
    let clock = sim.clone();
    let outcome = sim.block_on(async move {
        // The caller aborts 30 ms in: the upstream's outcome is its AbortError.
        let upstream = async move {
            clock.timer(30).await;
            Err::<u16, &str>("AbortError")
        };
        let failed =
            |outcome: &Result<u16, &str>| serves_stale(outcome.ok(), *outcome == Err("AbortError"));
        let stale = Some(("stale", Freshness::Stale));
        answer(&platform, CacheMode::Default, stale, upstream, failed).await
    });
    assert!(
        matches!(outcome, Served::Upstream(Err("AbortError"))),
        "{outcome:?}"
    );
    assert_eq!(cache_events(&sim), [(0, "miss")]);
}
