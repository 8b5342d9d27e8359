//! Random operation sequences on one circuit `Breaker`: no panic, and the promises of the module doc.
//!
//! Input: a config, a start time, then operations until the bytes run out: try_acquire, record a
//! held permit (any of them, so results come back out of order) with any verdict, advance the
//! monotonic clock, read the state, and snapshot/restore (a round trip or an arbitrary state).
//! Checked: a closed breaker admits every call; an open one rejects with a `retry_after` in
//! `1..=reset_timeout_ms` and a half-open one with 0 once all probe slots are taken; probes are
//! exactly the half-open permits and never exceed the slots; a counted failure either trips or
//! stays below `failure_threshold`; `state()` agrees with the snapshot; `restore` stores the
//! clamped state, and permits issued before it are stale (recording them changes nothing).
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sturdy_llm::core::breaker::{Breaker, BreakerConfig, Permit, State, StateKind, Verdict};

#[path = "numbers.rs"]
mod numbers;

/// This target's edge value: its default timeout or rate.
const EDGE: u64 = 30_000;

fn num(u: &mut Unstructured) -> u64 {
    numbers::num(u, EDGE)
}

fn num32(u: &mut Unstructured) -> u32 {
    numbers::num32(u, EDGE)
}

fn kind(state: State) -> StateKind {
    match state {
        State::Closed { .. } => StateKind::Closed,
        State::Open { .. } => StateKind::Open,
        State::HalfOpen { .. } => StateKind::HalfOpen,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let cfg = BreakerConfig {
        failure_threshold: num32(&mut u),
        error_threshold_percentage: num32(&mut u),
        volume_threshold: num32(&mut u),
        window_ms: num(&mut u),
        reset_timeout_ms: num(&mut u),
        half_open_max_calls: num32(&mut u),
        success_threshold: num32(&mut u),
    };
    let slots = cfg.half_open_max_calls.max(1);
    let mut now = num(&mut u);
    let mut breaker = Breaker::new(cfg.clone());
    // Permits held, each with the number of restores before it was issued.
    let mut permits: Vec<(Permit, u32)> = Vec::new();
    let mut restores = 0u32;

    while !u.is_empty() {
        match u.arbitrary::<u8>().unwrap_or(0) % 6 {
            0 => {
                let result = breaker.try_acquire(now);
                match (result, breaker.snapshot()) {
                    (Ok(permit), State::Closed { .. }) => {
                        assert!(!permit.probe);
                        permits.push((permit, restores));
                    }
                    (Ok(permit), State::HalfOpen { in_flight, .. }) => {
                        assert!(permit.probe && in_flight >= 1);
                        permits.push((permit, restores));
                    }
                    (Err(retry_after), State::Open { .. }) => assert!(
                        (1..=cfg.reset_timeout_ms).contains(&retry_after),
                        "open: retry_after {retry_after}, reset_timeout_ms {}",
                        cfg.reset_timeout_ms
                    ),
                    (Err(retry_after), State::HalfOpen { in_flight, .. }) => {
                        assert_eq!(retry_after, 0);
                        assert_eq!(in_flight, slots);
                    }
                    (result, state) => panic!("try_acquire gave {result:?} in {state:?}"),
                }
            }
            1 => {
                if permits.is_empty() {
                    continue;
                }
                let index = usize::from(u.arbitrary::<u16>().unwrap_or(0)) % permits.len();
                let (permit, issued_after) = permits.swap_remove(index);
                let verdict = [Verdict::Success, Verdict::Failure, Verdict::Ignored]
                    [usize::from(u.arbitrary::<u8>().unwrap_or(0)) % 3];
                breaker.state(now); // Apply lazy transitions first, so `before` is current.
                let before = breaker.snapshot();
                breaker.record(now, permit, verdict);
                let after = breaker.snapshot();
                if issued_after < restores {
                    assert_eq!(after, before, "a permit from before restore() counted");
                }
                if let (
                    Verdict::Failure,
                    State::Closed {
                        consecutive_failures: old,
                    },
                    State::Closed {
                        consecutive_failures: new,
                    },
                ) = (verdict, before, after)
                {
                    if new != old {
                        assert!(
                            cfg.failure_threshold == 0 || new < cfg.failure_threshold,
                            "{new} consecutive failures did not trip {}",
                            cfg.failure_threshold
                        );
                    }
                }
            }
            2 => now = now.saturating_add(num(&mut u)),
            3 => {
                let kind_now = breaker.state(now);
                assert_eq!(kind_now, kind(breaker.snapshot()));
            }
            4 => {
                let state = breaker.snapshot();
                breaker.restore(state, now);
                restores += 1;
                let expected = match state {
                    State::HalfOpen { successes, .. } => State::HalfOpen {
                        in_flight: 0,
                        successes,
                    },
                    other => other,
                };
                assert_eq!(breaker.snapshot(), expected);
            }
            _ => {
                let state = match u.arbitrary::<u8>().unwrap_or(0) % 3 {
                    0 => State::Closed {
                        consecutive_failures: num32(&mut u),
                    },
                    1 => State::Open {
                        opened_at: num(&mut u),
                    },
                    _ => State::HalfOpen {
                        in_flight: num32(&mut u),
                        successes: num32(&mut u),
                    },
                };
                breaker.restore(state, now);
                restores += 1;
                let expected = match state {
                    State::Open { opened_at } => State::Open {
                        opened_at: opened_at.min(now),
                    },
                    State::HalfOpen { successes, .. } => State::HalfOpen {
                        in_flight: 0,
                        successes,
                    },
                    closed => closed,
                };
                assert_eq!(breaker.snapshot(), expected);
            }
        }
        if let State::HalfOpen { in_flight, .. } = breaker.snapshot() {
            assert!(
                in_flight <= slots,
                "{in_flight} probes in flight, {slots} slots"
            );
        }
        if let State::Open { opened_at } = breaker.snapshot() {
            assert!(opened_at <= now, "opened in the future");
        }
    }
});
