//! The resilience policies driven in simulated time: the clock is a `u64` the test advances.

use proptest::prelude::*;
use sturdy_llm::core::bounded_key::bounded_key;
use sturdy_llm::core::breaker::{
    verdict_for_status, Breaker, BreakerConfig, State, StateKind, Verdict,
};
use sturdy_llm::core::rate_limit::{KeyedRateLimiter, RateLimitConfig, RateLimiter};
use sturdy_llm::core::retry::backoff::exponential;
use sturdy_llm::core::retry::{
    Backoff, Decision, Jitter, Outcome, RetryBudget, RetryConfig, RetryState, MAX_RETRIES_CAP,
};
use sturdy_llm::core::rng::Rng;

/// 2026-01-01T00:00:00Z, Unix-epoch ms.
const WALL_NOW: u64 = 1_767_225_600_000;

/// Decide on a response with the given headers (looked up case-insensitively, like `Headers.get`).
fn respond(
    state: &mut RetryState,
    cfg: &RetryConfig,
    status: u16,
    headers: &[(&str, &str)],
) -> Decision {
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| (*v).to_owned())
    };
    let outcome = Outcome::Response {
        status,
        headers: &lookup,
        error_class: None,
    };
    state.decide(cfg, &outcome, WALL_NOW, &mut Rng::new(7))
}

fn server(delay_ms: u64) -> Decision {
    Decision::Retry {
        delay_ms,
        from_server: true,
    }
}

// ---------------------------------------------------------------- retry

#[test]
fn retry_after_ms_is_used_as_is() {
    let cfg = RetryConfig::default();
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(&mut s, &cfg, 429, &[("retry-after-ms", "1500")]),
        server(1500)
    );
    assert_eq!(s.retries(), 1);
}

#[test]
fn retry_after_seconds_and_http_date() {
    let cfg = RetryConfig::default();
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(&mut s, &cfg, 503, &[("Retry-After", "3")]),
        server(3000)
    );
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(
            &mut s,
            &cfg,
            503,
            &[("Retry-After", "Thu, 01 Jan 2026 00:00:42 GMT")]
        ),
        server(42_000)
    );
    // A date in the past means "now".
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(
            &mut s,
            &cfg,
            503,
            &[("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")]
        ),
        server(0)
    );
    // retry-after-ms wins over Retry-After.
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(
            &mut s,
            &cfg,
            429,
            &[("Retry-After", "30"), ("retry-after-ms", "20.7")]
        ),
        server(20)
    );
}

#[test]
fn hint_above_max_is_too_long() {
    let cfg = RetryConfig::default();
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(&mut s, &cfg, 429, &[("retry-after", "61")]),
        Decision::HintTooLong { delay_ms: 61_000 }
    );
    assert_eq!(
        respond(&mut s, &cfg, 429, &[("retry-after", "60")]),
        server(60_000)
    );
}

#[test]
fn unparseable_hint_falls_back_to_backoff() {
    let cfg = RetryConfig {
        jitter: Jitter::None,
        ..RetryConfig::default()
    };
    let mut s = RetryState::new(&cfg);
    assert_eq!(
        respond(
            &mut s,
            &cfg,
            429,
            &[("retry-after", "whenever"), ("retry-after-ms", "1e3")]
        ),
        Decision::Retry {
            delay_ms: 500,
            from_server: false
        }
    );
}

#[test]
fn x_should_retry() {
    let cfg = RetryConfig::default();
    let mut s = RetryState::new(&cfg);
    // 400 is not in retry_on, but the server says retry.
    assert!(matches!(
        respond(&mut s, &cfg, 400, &[("x-should-retry", "true")]),
        Decision::Retry {
            from_server: false,
            ..
        }
    ));
    // 503 is in retry_on, but the server says don't.
    assert_eq!(
        respond(
            &mut s,
            &cfg,
            503,
            &[("x-should-retry", "false"), ("retry-after-ms", "10")]
        ),
        Decision::Done
    );
    // Hints still apply to a forced retry.
    assert_eq!(
        respond(
            &mut s,
            &cfg,
            400,
            &[("x-should-retry", "true"), ("retry-after-ms", "10")]
        ),
        server(10)
    );
}

#[test]
fn three_503_then_200() {
    let cfg = RetryConfig {
        max_retries: 3,
        ..RetryConfig::default()
    };
    let mut s = RetryState::new(&cfg);
    let mut rng = Rng::new(1);
    let mut clock = 0u64;
    let no_headers = |_: &str| None;
    for (i, status) in [503, 503, 503, 200].into_iter().enumerate() {
        let outcome = Outcome::Response {
            status,
            headers: &no_headers,
            error_class: None,
        };
        match s.decide(&cfg, &outcome, WALL_NOW, &mut rng) {
            Decision::Retry {
                delay_ms,
                from_server: false,
            } => {
                assert!(i < 3);
                assert!(delay_ms <= exponential(500, 8000, i as u32));
                clock += delay_ms;
            }
            Decision::Done => assert_eq!(i, 3),
            other => panic!("attempt {i}: {other:?}"),
        }
    }
    assert_eq!(s.retries(), 3);
    assert!(clock <= 500 + 1000 + 2000);
}

#[test]
fn exhausted() {
    let cfg = RetryConfig::default();
    let mut s = RetryState::new(&cfg);
    let mut rng = Rng::new(1);
    assert!(matches!(
        s.decide(&cfg, &Outcome::Timeout, 0, &mut rng),
        Decision::Retry { .. }
    ));
    assert!(matches!(
        s.decide(&cfg, &Outcome::Network, 0, &mut rng),
        Decision::Retry { .. }
    ));
    assert_eq!(
        s.decide(&cfg, &Outcome::Timeout, 0, &mut rng),
        Decision::Exhausted
    );
    // Exhaustion beats a too-long hint; a non-retryable outcome is still Done.
    assert_eq!(
        respond(&mut s, &cfg, 429, &[("retry-after", "3600")]),
        Decision::Exhausted
    );
    assert_eq!(respond(&mut s, &cfg, 404, &[]), Decision::Done);
    assert_eq!(s.retries(), 2);
    let capped = RetryConfig {
        max_retries: 1000,
        ..RetryConfig::default()
    };
    let mut s = RetryState::new(&capped);
    while let Decision::Retry { .. } = s.decide(&capped, &Outcome::Network, 0, &mut rng) {}
    assert_eq!(s.retries(), MAX_RETRIES_CAP);
}

/// Many clients retrying through one budget: an outage costs `ratio` extra load, not `max_retries`.
#[test]
fn budget_stops_retries_in_an_outage_and_allows_them_when_healthy() {
    fn run(failure_every: u64) -> (u64, u64, u64) {
        let cfg = RetryConfig {
            max_retries: 3,
            ..RetryConfig::default()
        };
        let mut budget = RetryBudget::new(cfg.budget_ratio, 10_000, 10);
        let mut rng = Rng::new(3);
        let (mut requests, mut retries, mut refused) = (0u64, 0u64, 0u64);
        // 100 calls per second for 5 minutes.
        for call in 0..30_000u64 {
            let now = call * 10;
            budget.deposit(now);
            requests += 1;
            let mut state = RetryState::new(&cfg);
            let mut attempt = 0u64;
            loop {
                let fails = failure_every == 1 || (call + attempt) % failure_every == 0;
                let outcome = if fails { Outcome::Network } else { break };
                match state.decide(&cfg, &outcome, 0, &mut rng) {
                    Decision::Retry { .. } if budget.try_withdraw(now) => {
                        retries += 1;
                        attempt += 1;
                    }
                    Decision::Retry { .. } => {
                        refused += 1;
                        break;
                    }
                    _ => break,
                }
            }
        }
        (requests, retries, refused)
    }

    // 100% failures: without a budget, 3 retries per call (300% extra load).
    let (requests, retries, refused) = run(1);
    assert!(refused > 0);
    // ratio 20% plus the 10/s reserve (10% of 100 calls/s), and one window of slack.
    assert!(
        retries * 100 <= requests * 30 + 100 * 20,
        "{retries} retries for {requests} calls"
    );
    assert!(
        retries * 100 >= requests * 25,
        "{retries} retries for {requests} calls"
    );

    // 10% of attempts fail: every retry is allowed.
    let (requests, retries, refused) = run(10);
    assert_eq!(refused, 0);
    assert!(retries * 100 >= requests * 9);
}

// ---------------------------------------------------------------- breaker

fn call(b: &mut Breaker, now: u64, status: u16) -> Result<(), u64> {
    let permit = b.try_acquire(now)?;
    b.record(now, permit, verdict_for_status(status));
    Ok(())
}

#[test]
fn full_outage_opens_then_probes() {
    let mut b = Breaker::new(BreakerConfig::default());
    let mut now = 0;
    for _ in 0..5 {
        assert_eq!(b.state(now), StateKind::Closed);
        assert_eq!(call(&mut b, now, 503), Ok(()));
        now += 100;
    }
    // Opened at t = 400 by the fifth failure.
    assert_eq!(b.state(now), StateKind::Open);
    assert_eq!(b.snapshot(), State::Open { opened_at: 400 });
    assert_eq!(call(&mut b, 500, 200), Err(29_900));
    assert_eq!(call(&mut b, 30_399, 200), Err(1));

    // 30 s after opening: exactly one probe.
    now = 30_400;
    assert_eq!(b.state(now), StateKind::HalfOpen);
    let probe = b.try_acquire(now).map_err(|_| "no probe").unwrap();
    assert!(probe.probe);
    assert_eq!(b.try_acquire(now + 1).err(), Some(0));
    assert_eq!(b.try_acquire(now + 2).err(), Some(0));

    // The probe fails: open again for 30 s from now.
    b.record(now + 500, probe, Verdict::Failure);
    assert_eq!(b.state(now + 500), StateKind::Open);
    assert_eq!(b.try_acquire(now + 500).err(), Some(30_000));

    // The next probe succeeds: closed, counters reset.
    now += 30_500;
    let probe = b.try_acquire(now).map_err(|_| "no probe").unwrap();
    b.record(now + 200, probe, Verdict::Success);
    assert_eq!(b.state(now + 200), StateKind::Closed);
    assert_eq!(b.consecutive_failures(), 0);
    for i in 0..4 {
        assert_eq!(call(&mut b, now + 300 + i, 500), Ok(()));
    }
    assert_eq!(b.state(now + 400), StateKind::Closed);
}

#[test]
fn percentage_mode() {
    let mut b = Breaker::new(BreakerConfig {
        failure_threshold: 100,
        error_threshold_percentage: 50,
        volume_threshold: 10,
        ..BreakerConfig::default()
    });
    // Alternating success/failure never makes 5 in a row, but it is a 50% failure rate.
    for i in 0..9u64 {
        let status = if i % 2 == 1 { 500 } else { 200 };
        assert_eq!(call(&mut b, i * 100, status), Ok(()));
        assert_eq!(b.state(i * 100), StateKind::Closed, "call {i}");
    }
    // 10th call: 5 failures out of 10.
    assert_eq!(call(&mut b, 900, 500), Ok(()));
    assert_eq!(b.state(900), StateKind::Open);

    // Failures spread beyond the window never reach the volume (consecutive rule disabled).
    let mut b = Breaker::new(BreakerConfig {
        failure_threshold: 0,
        volume_threshold: 10,
        ..BreakerConfig::default()
    });
    for i in 0..100u64 {
        assert_eq!(call(&mut b, i * 2_000, 500), Ok(()));
    }
    assert_eq!(b.state(200_000), StateKind::Closed);

    // A healthy majority keeps it closed.
    let mut b = Breaker::new(BreakerConfig {
        failure_threshold: 100,
        volume_threshold: 10,
        ..BreakerConfig::default()
    });
    for i in 0..1000u64 {
        let status = if i % 3 == 0 { 502 } else { 200 };
        assert_eq!(call(&mut b, i * 10, status), Ok(()));
    }
    assert_eq!(b.state(10_000), StateKind::Closed);
}

#[test]
fn rate_limits_never_open_the_breaker() {
    let mut b = Breaker::new(BreakerConfig::default());
    for i in 0..1000 {
        assert_eq!(call(&mut b, i, 429), Ok(()));
    }
    assert_eq!(b.state(1000), StateKind::Closed);
    // ...nor do they interrupt a run of failures.
    for i in 0..4 {
        call(&mut b, 2000 + i, 500).ok();
        call(&mut b, 2000 + i, 429).ok();
    }
    assert_eq!(b.consecutive_failures(), 4);
    // An ignored probe frees its slot without deciding anything.
    call(&mut b, 3000, 500).ok();
    let probe = b.try_acquire(33_000).map_err(|_| "no probe").unwrap();
    b.record(33_100, probe, verdict_for_status(429));
    assert_eq!(b.state(33_100), StateKind::HalfOpen);
    assert!(b.try_acquire(33_200).is_ok_and(|p| p.probe));
}

#[test]
fn late_closed_results_do_not_touch_half_open() {
    let mut b = Breaker::new(BreakerConfig::default());
    let slow: Vec<_> = (0..3).filter_map(|_| b.try_acquire(0).ok()).collect();
    for i in 0..5 {
        call(&mut b, i, 500).ok();
    }
    let probe = b.try_acquire(30_004).map_err(|_| "no probe").unwrap();
    for p in slow {
        b.record(30_005, p, Verdict::Failure);
    }
    assert_eq!(b.state(30_005), StateKind::HalfOpen);
    b.record(30_006, probe, Verdict::Success);
    assert_eq!(b.state(30_006), StateKind::Closed);
}

// ---------------------------------------------------------------- rate limiter

fn limited(rpm: u32, burst: u32, max_wait_ms: u64) -> RateLimitConfig {
    RateLimitConfig {
        requests_per_minute: Some(rpm),
        burst: Some(burst),
        tokens_per_minute: None,
        max_wait_ms,
    }
}

#[test]
fn thousand_reservations_are_fifo() {
    let mut l = RateLimiter::new(&limited(60, 10, u64::MAX), 0);
    for k in 1..=1000u64 {
        let r = l.reserve(0, 0).map_err(|_| "refused").unwrap();
        let expected = k.saturating_sub(10) * 1000;
        assert_eq!(r.wait_ms, expected, "reservation {k}");
    }
    // Later arrivals queue behind: at t = 500 s, the next one is due at 991 s.
    assert_eq!(l.reserve(500_000, 0).map(|r| r.wait_ms), Ok(491_000));
}

#[test]
fn max_wait_rejection_charges_nothing() {
    let mut l = RateLimiter::new(&limited(60, 10, 5000), 0);
    for _ in 0..15 {
        assert!(l.reserve(0, 0).is_ok());
    }
    assert_eq!(l.level(0), (-5.0, 10.0));
    for _ in 0..100 {
        assert_eq!(l.reserve(0, 0).map(|r| r.wait_ms), Err(6000));
    }
    assert_eq!(l.level(0), (-5.0, 10.0));
    assert_eq!(l.reserve(1000, 0).map(|r| r.wait_ms), Ok(5000));
}

#[test]
fn cancel_returns_capacity() {
    let mut l = RateLimiter::new(&limited(60, 10, u64::MAX), 0);
    for _ in 0..10 {
        assert!(l.reserve(0, 0).is_ok());
    }
    let r = l.reserve(0, 0).map_err(|_| "refused").unwrap();
    assert_eq!(r.wait_ms, 1000);
    assert_eq!(l.level(0), (-1.0, 10.0));
    l.cancel(200, r);
    assert_eq!(l.level(200), (0.2, 10.0));
    assert_eq!(l.reserve(200, 0).map(|r| r.wait_ms), Ok(800));
}

#[test]
fn settle_corrects_tokens_both_ways() {
    let cfg = RateLimitConfig {
        tokens_per_minute: Some(60_000),
        max_wait_ms: u64::MAX,
        ..RateLimitConfig::default()
    };
    // 1000 tokens per second.
    let mut l = RateLimiter::new(&cfg, 0);
    let r = l.reserve(0, 10_000).map_err(|_| "refused").unwrap();
    l.settle(0, r, 40_000); // used 30k more than estimated
    assert_eq!(l.reserve(0, 30_000).map(|r| r.wait_ms), Ok(10_000));

    let mut l = RateLimiter::new(&cfg, 0);
    let r = l.reserve(0, 50_000).map_err(|_| "refused").unwrap();
    l.settle(0, r, 5_000); // used 45k less
    assert_eq!(l.reserve(0, 55_000).map(|r| r.wait_ms), Ok(0));
    assert_eq!(l.reserve(0, 1_000).map(|r| r.wait_ms), Ok(1_000));
    // The request bucket is unlimited here.
    assert_eq!(l.level(0), (f64::INFINITY, f64::INFINITY));
}

#[test]
fn both_buckets_wait_for_the_slower() {
    let cfg = RateLimitConfig {
        requests_per_minute: Some(600),
        burst: Some(1),
        tokens_per_minute: Some(6_000),
        max_wait_ms: u64::MAX,
    };
    let mut l = RateLimiter::new(&cfg, 0);
    assert_eq!(l.reserve(0, 6_000).map(|r| r.wait_ms), Ok(0));
    // Requests: 100 ms; tokens: 100 tokens at 100/s = 1 s.
    assert_eq!(l.reserve(0, 100).map(|r| r.wait_ms), Ok(1000));
    // Over capacity: charged at capacity, waits for a full bucket after the debt.
    let r = l.reserve(0, 1_000_000).map_err(|_| "refused").unwrap();
    assert_eq!((r.wait_ms, r.charged_tokens()), (61_000, 6_000));
}

#[test]
fn lru_bound_holds() {
    let mut k = KeyedRateLimiter::new(limited(60, 1, u64::MAX), 100);
    for i in 0..10_000u64 {
        let key = format!("key-{}", i % 250);
        let _ = k.get(&key, i).reserve(i, 0);
        assert!(k.len() <= 100);
    }
    assert_eq!(k.len(), 100);
    // A hot key survives a stream of cold ones.
    let mut k = KeyedRateLimiter::new(limited(60, 1, u64::MAX), 3);
    assert!(k.get("hot", 0).reserve(0, 0).is_ok());
    for i in 0..100 {
        let _ = k.get(&format!("cold-{i}"), 0).reserve(0, 0);
        let _ = k.get("hot", 0);
    }
    assert_eq!(k.get("hot", 0).reserve(0, 0).map(|r| r.wait_ms), Ok(1000));
}

#[test]
fn long_rate_limit_keys_keep_their_own_buckets() {
    // Regression: keys were held whole (20k keys of 16 KB: +332 MB); now a long key is kept as a
    // prefix and its hash, which must still tell apart keys that differ only at the end.
    let mut k = KeyedRateLimiter::new(limited(60, 1, u64::MAX), 100);
    let long = |end: char| format!("{}{end}", "k".repeat(16 * 1024));
    assert_eq!(k.get(&long('a'), 0).reserve(0, 0).map(|r| r.wait_ms), Ok(0));
    assert_eq!(
        k.get(&long('a'), 0).reserve(0, 0).map(|r| r.wait_ms),
        Ok(1000)
    );
    assert_eq!(k.get(&long('b'), 0).reserve(0, 0).map(|r| r.wait_ms), Ok(0));
    assert_eq!(k.len(), 2);
    // A short key spelled like a long key's replacement is a key of its own.
    let replacement = bounded_key(&long('a')).into_owned();
    assert!(replacement.len() <= 138);
    assert_eq!(
        k.get(&replacement, 0).reserve(0, 0).map(|r| r.wait_ms),
        Ok(0)
    );
}

// ---------------------------------------------------------------- properties

fn jitter_strategy() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        Just(Jitter::None)
    ]
}

proptest! {
    #[test]
    fn backoff_within_bounds(
        base in prop_oneof![0u64..10_000, any::<u64>()],
        max in prop_oneof![0u64..100_000, any::<u64>()],
        jitter in jitter_strategy(),
        seed in any::<u64>(),
        skip in prop_oneof![0u32..70, any::<u32>()],
    ) {
        let mut b = Backoff::new(base, max, jitter, Rng::new(seed));
        let mut prev = base;
        for n in 0..80u32 {
            let d = exponential(base, max, n);
            let delay = b.next().unwrap_or(u64::MAX);
            prop_assert!(delay <= max);
            match jitter {
                Jitter::None => prop_assert_eq!(delay, d),
                Jitter::Full => prop_assert!(delay <= d),
                Jitter::Equal => prop_assert!(delay >= d / 2 && delay <= d),
                Jitter::Decorrelated => {
                    prop_assert!(delay >= base.min(max));
                    prop_assert!(delay <= prev.saturating_mul(3).max(base).min(max));
                    prev = delay;
                }
            }
        }
        // Any attempt number: the exponential saturates at max.
        let expected = if base == 0 {
            0
        } else if skip >= 64 {
            max
        } else {
            u64::try_from(u128::from(base) << skip).unwrap_or(u64::MAX).min(max)
        };
        prop_assert_eq!(exponential(base, max, skip), expected);
    }

    #[test]
    fn retry_delays_respect_config(
        max_retries in 0u32..20,
        base in 0u64..5_000,
        max in 0u64..60_000,
        jitter in jitter_strategy(),
        seed in any::<u64>(),
    ) {
        let cfg = RetryConfig { max_retries, base_delay_ms: base, max_delay_ms: max, jitter, ..RetryConfig::default() };
        let mut s = RetryState::new(&cfg);
        let mut rng = Rng::new(seed);
        let mut n = 0;
        while let Decision::Retry { delay_ms, from_server } = s.decide(&cfg, &Outcome::Timeout, 0, &mut rng) {
            prop_assert!(!from_server);
            prop_assert!(delay_ms <= max);
            n += 1;
        }
        prop_assert_eq!(n, max_retries.min(MAX_RETRIES_CAP));
    }

    #[test]
    fn buckets_never_exceed_their_bound(
        rpm in 1u32..1_000,
        burst in 1u32..50,
        tpm in prop::option::of(1u64..200_000),
        ops in prop::collection::vec((0u64..3_000, 0u8..4, 0u64..50_000, any::<prop::sample::Index>()), 1..150),
    ) {
        let cfg = RateLimitConfig {
            tokens_per_minute: tpm,
            ..limited(rpm, burst, u64::MAX)
        };
        let mut l = RateLimiter::new(&cfg, 0);
        let mut now = 0u64;
        // (admission instant, charged tokens)
        let mut admitted: Vec<(u64, u64)> = Vec::new();
        let mut pending = Vec::new();
        for (dt, op, tokens, index) in ops {
            now += dt;
            if op < 2 && !pending.is_empty() {
                // A caller gives up: the latest (op 0) or any (op 1) of those booked.
                let pick = if op == 0 { pending.len() - 1 } else { index.index(pending.len()) };
                let (at, r): (u64, _) = pending.remove(pick);
                if at > now {
                    l.cancel(now, r);
                } else {
                    admitted.push((at, r.charged_tokens()));
                }
            } else if let Ok(r) = l.reserve(now, tokens) {
                // FIFO: nobody is booked before an earlier caller still booked.
                let latest = pending.iter().map(|(at, _)| *at).max().unwrap_or(0);
                prop_assert!(now + r.wait_ms >= latest);
                if let Some(tpm) = tpm {
                    prop_assert_eq!(r.charged_tokens(), tokens.min(tpm));
                }
                pending.push((now + r.wait_ms, r));
            }
            let (level, capacity) = l.level(now);
            prop_assert!(level <= capacity);
            prop_assert!((capacity - f64::from(burst)).abs() < 1e-9);
        }
        admitted.extend(pending.into_iter().map(|(at, r)| (at, r.charged_tokens())));
        admitted.sort_unstable();
        // Over any interval [a, b]: admissions <= burst + rpm/60000 * (b - a), and likewise tokens.
        for i in 0..admitted.len() {
            let mut tokens = 0u64;
            for j in i..admitted.len() {
                let count = (j - i + 1) as u64;
                tokens += admitted[j].1;
                let span = admitted[j].0 - admitted[i].0;
                prop_assert!(
                    count * 60_000 <= u64::from(burst) * 60_000 + u64::from(rpm) * span,
                    "{} admissions in {} ms (rpm {}, burst {})", count, span, rpm, burst
                );
                if let Some(tpm) = tpm {
                    prop_assert!(
                        u128::from(tokens) * 60_000 <= u128::from(tpm) * 60_000 + u128::from(tpm) * u128::from(span),
                        "{} tokens in {} ms (tpm {})", tokens, span, tpm
                    );
                }
            }
        }
    }
}
