//! The retry-hint parsers are total: no header value (and no wall clock) makes them panic.
//!
//! Input: `<clock>\n<header value>`. The first line is the wall clock in Unix-epoch milliseconds:
//! decimal if it parses as a `u64`, else its first 8 bytes read little-endian. Without a newline
//! the whole input is the value and the clock is 2026-01-01T00:00:00Z. The bytes are decoded as
//! UTF-8 lossily. Besides not panicking, the results must agree with the module doc.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sturdy_llm::core::retry::hints::{
    parse_http_date, parse_retry_after, parse_retry_after_ms, parse_should_retry,
};

/// 2026-01-01T00:00:00Z.
const NOW_2026: u64 = 1_767_225_600_000;
/// 10050-01-01T00:00:00Z: years have four digits, but an RFC 850 two-digit year may land up to 50
/// years after a clock that is itself clamped to 9999.
const MAX_DATE_MS: u64 = 254_980_224_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (now, value) = match text.split_once('\n') {
        None => (NOW_2026, &*text),
        Some((clock, value)) => {
            let clock = clock.parse::<u64>().unwrap_or_else(|_| {
                let mut le = [0u8; 8];
                for (dst, src) in le.iter_mut().zip(clock.bytes()) {
                    *dst = src;
                }
                u64::from_le_bytes(le)
            });
            (clock, value)
        }
    };

    if let Some(flag) = parse_should_retry(value) {
        assert_eq!(value.trim().to_ascii_lowercase(), flag.to_string());
    }

    let date = parse_http_date(value, now);
    if let Some(ms) = date {
        assert_eq!(ms % 1000, 0, "an HTTP-date has whole seconds");
        assert!(ms < MAX_DATE_MS, "date beyond year 10049: {ms}");
    }

    // `Retry-After` is delay-seconds when the value is a decimal number (exactly when
    // `retry-after-ms` accepts it), else an HTTP-date made relative to the clock.
    let after = parse_retry_after(value, now);
    match parse_retry_after_ms(value) {
        Some(ms) => assert!(after.is_some_and(|a| a >= ms), "{after:?} < {ms} ms"),
        None => assert_eq!(
            after,
            parse_http_date(value.trim(), now).map(|d| d.saturating_sub(now))
        ),
    }
});
