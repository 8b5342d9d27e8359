//! Random operation sequences on one `RateLimiter`: no panic, and the promises of the module doc.
//!
//! Input: a config (`requests_per_minute`, `burst`, `tokens_per_minute`, `max_wait_ms`), a start
//! time, then operations until the bytes run out: reserve, cancel the latest reservation held,
//! settle it, advance the monotonic clock, read the level. Checked after each step: the level is
//! never above capacity; an admitted wait is at most `max_wait_ms` and a refused one longer (or
//! "never"); admission is FIFO (never earlier than a booking still standing); and the request
//! bucket admits at most `capacity + rate * d` requests in any `d` ms.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sturdy_llm::core::rate_limit::{RateLimitConfig, RateLimiter, Reservation};

#[path = "numbers.rs"]
mod numbers;

/// This target's edge value: its default timeout or rate.
const EDGE: u64 = 60_000;

fn num(u: &mut Unstructured) -> u64 {
    numbers::num(u, EDGE)
}

fn num32(u: &mut Unstructured) -> u32 {
    numbers::num32(u, EDGE)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let flags = u.arbitrary::<u8>().unwrap_or(0);
    let cfg = RateLimitConfig {
        requests_per_minute: (flags & 1 != 0).then(|| num32(&mut u)),
        burst: (flags & 2 != 0).then(|| num32(&mut u)),
        tokens_per_minute: (flags & 4 != 0).then(|| num(&mut u)),
        max_wait_ms: num(&mut u),
    };
    let mut now = num(&mut u);
    let mut limiter = RateLimiter::new(&cfg, now);

    // The request bucket as the module doc defines it: `(capacity, per minute)`.
    let bucket = cfg.requests_per_minute.map(|rpm| {
        let capacity = cfg.burst.unwrap_or(rpm);
        let capacity = if rpm > 0 { capacity.max(1) } else { capacity };
        (u128::from(capacity), u128::from(rpm))
    });
    // Reservations held (with their id), and every booking still standing as (id, admit instant),
    // in booking order: a cancel undoes a booking only when it is the latest standing one.
    let mut held: Vec<(u64, Reservation)> = Vec::new();
    let mut standing: Vec<(u64, u64)> = Vec::new();
    let mut next_id = 0u64;

    while !u.is_empty() {
        match u.arbitrary::<u8>().unwrap_or(0) % 5 {
            0 => match limiter.reserve(now, num(&mut u)) {
                Ok(reservation) => {
                    assert!(reservation.wait_ms <= cfg.max_wait_ms);
                    let admit = now + reservation.wait_ms;
                    if let Some(&(_, latest)) = standing.last() {
                        assert!(admit >= latest, "booked at {admit}, before {latest} (FIFO)");
                    }
                    if let Some((capacity, rpm)) = bucket {
                        // Bookings `i..` all fall in [admit_i, admit]: at most capacity + rate * d.
                        let n = standing.len() as u128 + 1;
                        for (i, &(_, earlier)) in standing.iter().enumerate() {
                            let count = n - i as u128;
                            let allowed = capacity * 60_000 + rpm * u128::from(admit - earlier);
                            assert!(
                                count * 60_000 <= allowed,
                                "{count} requests in [{earlier}, {admit}]"
                            );
                        }
                    }
                    standing.push((next_id, admit));
                    held.push((next_id, reservation));
                    next_id += 1;
                }
                Err(retry_after) => assert!(
                    retry_after > cfg.max_wait_ms || retry_after == u64::MAX,
                    "refused with retry_after {retry_after} <= max_wait_ms"
                ),
            },
            1 => {
                if let Some((id, reservation)) = held.pop() {
                    limiter.cancel(now, reservation);
                    if standing.last().is_some_and(|&(latest, _)| latest == id) {
                        standing.pop();
                    }
                }
            }
            2 => {
                if let Some((_, reservation)) = held.pop() {
                    limiter.settle(now, reservation, num(&mut u));
                }
            }
            3 => now = now.saturating_add(num(&mut u)),
            _ => {}
        }
        let (level, capacity) = limiter.level(now);
        assert!(level <= capacity, "level {level} above capacity {capacity}");
        if let Some((cap, _)) = bucket {
            assert_eq!(capacity, cap as f64);
        }
    }
});
