//! Reading what a provider says about its rate limits: how many requests and tokens are left, and
//! when they refill.
//!
//! Why read them at all? A 429 is the provider saying "you should have known": it costs a round
//! trip, and every call sent meanwhile earns one too. The provider tells us on every answer what is
//! left; a client that listens can wait for the refill, or go to another target, before it is told
//! off (see [`learned_limit`](crate::core::learned_limit)).
//!
//! Three dialects, parsed by hand like [`hints`](super::hints) (whose number and date helpers this reuses), and
//! totally: a value this does not understand is skipped, never an error.
//! - OpenAI (and most OpenAI-compatible servers): `x-ratelimit-remaining-requests` /
//!   `x-ratelimit-remaining-tokens`, each with `x-ratelimit-reset-requests` /
//!   `x-ratelimit-reset-tokens`, a Go duration such as `6m0s`, `1.5s`, `20ms` or `1h2m3.5s` (a bare
//!   number is read as seconds).
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`, each
//!   with its `-reset`, an RFC 3339 time (`2026-01-01T00:00:30Z`, `...30.5+01:00`).
//! - Azure: `x-ms-retry-after-ms` on any answer; and on a 429, the `retry-after-ms` or `Retry-After`
//!   the retry policy reads too (`server_delay`).
//!
//! A remaining count without its reset is skipped: "0 left" without "until when" cannot be acted
//! on. Of several token windows (Anthropic's input and output ones), the tightest one is kept.

use super::hints::{days_from_civil, days_in_month, digits, parse_decimal};
use super::server_delay;
use crate::core::wide;

/// What is left of one limit, and when it is whole again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// Requests or tokens left.
    pub left: u64,
    /// The limit itself, when reported.
    pub limit: Option<u64>,
    /// Milliseconds until the limit is replenished (0: already).
    pub reset_in_ms: u64,
}

/// What one answer's headers say about the provider's limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitReport {
    /// Requests left.
    pub requests: Option<Remaining>,
    /// Tokens left (the tightest of the token windows reported).
    pub tokens: Option<Remaining>,
    /// Send nothing for this long (Azure's `x-ms-retry-after-ms`, or a 429's retry hint).
    pub retry_after_ms: Option<u64>,
}

/// OpenAI's (remaining, limit, reset) headers: requests, then tokens.
const OPENAI: [[&str; 3]; 2] = [
    [
        "x-ratelimit-remaining-requests",
        "x-ratelimit-limit-requests",
        "x-ratelimit-reset-requests",
    ],
    [
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-reset-tokens",
    ],
];

/// Anthropic's (remaining, limit, reset) headers: requests, then three token windows.
const ANTHROPIC: [[&str; 3]; 4] = [
    [
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-reset",
    ],
    [
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-reset",
    ],
    [
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-reset",
    ],
    [
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-reset",
    ],
];

/// The limits reported by an answer of `status` with `headers`; `None` when it reports none.
/// `wall_now_ms` (Unix-epoch milliseconds) turns Anthropic's reset times into delays.
pub fn read_limits(
    headers: &dyn Fn(&str) -> Option<String>,
    status: u16,
    wall_now_ms: u64,
) -> Option<LimitReport> {
    let mut report = LimitReport::default();
    let count = |name: &str| parse_decimal(headers(name)?.trim(), 0);
    let window = |[remaining, limit, reset]: [&str; 3], reset_ms: &dyn Fn(&str) -> Option<u64>| {
        Some(Remaining {
            left: count(remaining)?,
            limit: count(limit),
            reset_in_ms: reset_ms(&headers(reset)?)?,
        })
    };
    let [requests, tokens] = OPENAI.map(|names| window(names, &parse_duration));
    report.requests = requests;
    report.tokens = tokens;
    let until = |v: &str| parse_rfc3339(v).map(|at| at.saturating_sub(wall_now_ms));
    for (i, names) in ANTHROPIC.into_iter().enumerate() {
        let Some(found) = window(names, &until) else {
            continue;
        };
        let slot = if i == 0 {
            &mut report.requests
        } else {
            &mut report.tokens
        };
        *slot = Some(tighter(*slot, found));
    }
    let azure = headers("x-ms-retry-after-ms").and_then(|v| parse_decimal(v.trim(), 0));
    let hinted = (status == 429)
        .then(|| server_delay(headers, wall_now_ms))
        .flatten();
    report.retry_after_ms = azure.max(hinted);
    (report != LimitReport::default()).then_some(report)
}

/// The tighter of two windows: fewer left, or as few but longer to wait.
fn tighter(a: Option<Remaining>, b: Remaining) -> Remaining {
    match a {
        Some(a) if (a.left, u64::MAX - a.reset_in_ms) <= (b.left, u64::MAX - b.reset_in_ms) => a,
        _ => b,
    }
}

/// Milliseconds, rounded up, of a Go duration (`1h2m3.5s`, `20ms`, `0s`; units h, m, s, ms, us, µs,
/// ns, each number may have a fraction) or of a bare number of seconds. Saturates.
pub fn parse_duration(value: &str) -> Option<u64> {
    let v = value.trim();
    if let Some(thousandths) = parse_decimal(v, 3) {
        return Some(thousandths);
    }
    let mut nanos: u128 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u64 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        let thousandths = u128::from(parse_decimal(number, 3)?);
        let (part, _) = wide::div_rem(thousandths * u128::from(unit_nanos), 1000);
        nanos = nanos.saturating_add(part);
        rest = after;
    }
    if v.is_empty() {
        return None;
    }
    Some(u64::try_from(wide::div_ceil(nanos, 1_000_000)).unwrap_or(u64::MAX))
}

/// Unix-epoch milliseconds of an RFC 3339 date-time (`2026-01-01T00:00:30Z`, with an optional
/// fraction and a `Z` or `±HH:MM` offset; `t`, `z` and a space separator tolerated). Times before
/// the epoch are 0.
pub fn parse_rfc3339(value: &str) -> Option<u64> {
    let b = value.trim().as_bytes();
    let at = |i: usize| b.get(i).copied();
    if b.len() < 20 || at(4) != Some(b'-') || at(7) != Some(b'-') || at(13) != Some(b':') {
        return None;
    }
    if !matches!(at(10), Some(b'T' | b't' | b' ')) || at(16) != Some(b':') {
        return None;
    }
    let field = |from: usize, len: usize| digits(b.get(from..from + len)?, len);
    let (year, month, day) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (hour, minute, second) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i) == Some(b'.') {
        let start = i + 1;
        i = start;
        while at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let fraction = b.get(start..i)?;
        if fraction.is_empty() {
            return None;
        }
        millis = (0..3).fold(0, |acc, k| {
            acc * 10 + fraction.get(k).map_or(0, |d| i64::from(d - b'0'))
        });
    }
    let offset_secs = match (at(i), b.len() - i) {
        (Some(b'Z' | b'z'), 1) => 0,
        (Some(sign @ (b'+' | b'-')), 6) if at(i + 3) == Some(b':') => {
            let (h, m) = (field(i + 1, 2)?, field(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let ms = secs.saturating_mul(1000).saturating_add(millis);
    Some(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const NOW_2026: u64 = 1_767_225_600_000;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn go_durations() {
        for (text, ms) in [
            ("6m0s", 360_000),
            ("1.5s", 1500),
            ("20ms", 20),
            ("1h2m3.5s", 3_723_500),
            ("0s", 0),
            ("2m59.56s", 179_560),
            ("1.5", 1500),
            ("7", 7000),
            ("150us", 1),
            ("999ns", 1),
            ("  3s ", 3000),
        ] {
            assert_eq!(parse_duration(text), Some(ms), "{text}");
        }
        for bad in ["", "s", "1x", "1.2.3s", "-1s", "1s2", "ms", "1 s", "1d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("99999999999999999999h"), Some(u64::MAX));
    }

    #[test]
    fn rfc3339_times() {
        for (text, ms) in [
            ("2026-01-01T00:00:30Z", NOW_2026 + 30_000),
            ("2026-01-01t00:00:30z", NOW_2026 + 30_000),
            ("2026-01-01 00:00:30Z", NOW_2026 + 30_000),
            ("2026-01-01T00:00:30.25Z", NOW_2026 + 30_250),
            ("2026-01-01T00:00:30.123456789Z", NOW_2026 + 30_123),
            ("2026-01-01T01:00:30+01:00", NOW_2026 + 30_000),
            ("2025-12-31T23:00:30-01:00", NOW_2026 + 30_000),
            ("1969-12-31T23:59:59Z", 0),
        ] {
            assert_eq!(parse_rfc3339(text), Some(ms), "{text}");
        }
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:30",
            "2026-13-01T00:00:30Z",
            "2026-02-30T00:00:30Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:30.Z",
            "2026-01-01T00:00:30+0100",
            "2026-01-01T00:00:30Zjunk",
            "2026-01-01T00:00:3éZ",
            "Thu, 01 Jan 2026 00:00:30 GMT",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn openai_headers() {
        let headers = [
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ];
        let report = read_limits(&lookup(&headers), 200, NOW_2026);
        assert_eq!(
            report,
            Some(LimitReport {
                requests: Some(Remaining {
                    left: 59,
                    limit: Some(60),
                    reset_in_ms: 1000
                }),
                tokens: Some(Remaining {
                    left: 149_984,
                    limit: None,
                    reset_in_ms: 360_000
                }),
                retry_after_ms: None,
            })
        );
    }

    #[test]
    fn anthropic_headers_keep_the_tightest_token_window() {
        let headers = [
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:02Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "500"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-01-01T00:00:05Z",
            ),
            ("anthropic-ratelimit-output-tokens-remaining", "100"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-01-01T00:00:09Z",
            ),
            // A reset already past is "replenished now".
            ("anthropic-ratelimit-tokens-remaining", "100"),
            ("anthropic-ratelimit-tokens-reset", "2025-12-31T23:00:00Z"),
        ];
        let report = read_limits(&lookup(&headers), 200, NOW_2026).unwrap_or_default();
        assert_eq!(
            report.requests,
            Some(Remaining {
                left: 0,
                limit: None,
                reset_in_ms: 2000
            })
        );
        assert_eq!(
            report.tokens,
            Some(Remaining {
                left: 100,
                limit: Some(8000),
                reset_in_ms: 9000
            })
        );
    }

    #[test]
    fn retry_after_headers() {
        let azure = [("x-ms-retry-after-ms", "1200")];
        let report = read_limits(&lookup(&azure), 200, NOW_2026);
        assert_eq!(report.and_then(|r| r.retry_after_ms), Some(1200));
        // A plain retry hint counts on a 429 only (a 503's is about an outage, not a limit).
        let hint = [("retry-after", "3")];
        let on_429 = read_limits(&lookup(&hint), 429, NOW_2026);
        assert_eq!(on_429.and_then(|r| r.retry_after_ms), Some(3000));
        assert_eq!(read_limits(&lookup(&hint), 503, NOW_2026), None);
    }

    #[test]
    fn unusable_values_are_skipped() {
        let headers = [
            ("x-ratelimit-remaining-requests", "many"),
            ("x-ratelimit-reset-requests", "1s"),
            // Remaining without a reset cannot be acted on.
            ("x-ratelimit-remaining-tokens", "0"),
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "soon"),
            ("x-ms-retry-after-ms", "-5"),
        ];
        assert_eq!(read_limits(&lookup(&headers), 200, NOW_2026), None);
        assert_eq!(read_limits(&lookup(&[]), 429, NOW_2026), None);
    }
}
