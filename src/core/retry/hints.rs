//! Reading the server's own retry advice: `x-should-retry`, `retry-after-ms` and `Retry-After`.
//!
//! Why trust the server over our backoff? It knows its rate-limit window and its recovery time;
//! our exponential guess does not. OpenAI and Anthropic send `retry-after-ms` (and the
//! non-standard `x-should-retry`) precisely so that clients stop guessing. A server delay is
//! therefore used as is and never jittered: it is already the right answer for this client.
//!
//! Why parse by hand? A date library (or `str::parse::<f64>`) would drag calendar tables or float
//! parsing into the wasm binary for three header formats that fit in a page of integer code. Every
//! parser here is total: anything it does not understand yields `None`, and the caller falls back to
//! its own backoff. Numbers too large for a `u64` saturate instead of failing, so an absurd hint is
//! reported as too long rather than silently ignored.
//!
//! Accepted forms:
//! - `x-should-retry`: `true` or `false` (ASCII case-insensitive, surrounding whitespace ignored).
//! - `retry-after-ms`: a non-negative decimal number of milliseconds, `1500` or `1500.5`; the
//!   fraction is truncated.
//! - `Retry-After`: delay-seconds (`120`; a fraction such as `1.5` is tolerated and kept to the
//!   millisecond), or an HTTP-date in IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
//!   (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime (`Sun Nov  6 08:49:37 1994`) form. A date
//!   becomes the delay from `wall_now_ms`, and a date in the past becomes 0. The weekday is not
//!   checked against the date. RFC 850's two-digit year follows RFC 9110: a year more than 50
//!   years in the future means the most recent past year with those last two digits.

/// `Some(true)` / `Some(false)` for an `x-should-retry` value, `None` if it is neither.
pub fn parse_should_retry(value: &str) -> Option<bool> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Milliseconds from a `retry-after-ms` value (`"1500"`, `"1500.5"` -> 1500).
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
    parse_decimal(value.trim(), 0)
}

/// Milliseconds from a `Retry-After` value: delay-seconds or an HTTP-date relative to
/// `wall_now_ms` (Unix-epoch milliseconds).
pub fn parse_retry_after(value: &str, wall_now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if let Some(ms) = parse_decimal(v, 3) {
        return Some(ms);
    }
    parse_http_date(v, wall_now_ms).map(|date_ms| date_ms.saturating_sub(wall_now_ms))
}

/// A non-negative decimal number scaled by `10^frac_digits`, extra fraction digits truncated,
/// saturating at `u64::MAX`. At least one digit is required; no sign, no exponent.
pub(super) fn parse_decimal(s: &str, frac_digits: u32) -> Option<u64> {
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !frac_part.is_none_or(all_digits) {
        return None;
    }
    if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
        return None;
    }
    let mut value: u64 = 0;
    for b in int_part.bytes() {
        value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    let frac = frac_part.unwrap_or("").as_bytes();
    for i in 0..frac_digits as usize {
        let digit = frac.get(i).map_or(0, |b| u64::from(b - b'0'));
        value = value.saturating_mul(10).saturating_add(digit);
    }
    Some(value)
}

/// Unix-epoch milliseconds of an HTTP-date in any of the three forms of RFC 9110 §5.6.7.
pub fn parse_http_date(value: &str, wall_now_ms: u64) -> Option<u64> {
    let mut tokens = [""; 6];
    let mut n = 0;
    for t in value.split([' ', '\t', ',', '-']).filter(|t| !t.is_empty()) {
        *tokens.get_mut(n)? = t;
        n += 1;
    }
    if !tokens[0].bytes().all(|b| b.is_ascii_alphabetic()) || tokens[0].is_empty() {
        return None;
    }
    let (day, month, year, time) = match n {
        // IMF-fixdate and RFC 850: weekday, day, month, year, time, "GMT".
        6 => {
            if !tokens[5].eq_ignore_ascii_case("GMT") && !tokens[5].eq_ignore_ascii_case("UTC") {
                return None;
            }
            let year = match tokens[3].len() {
                4 => number(tokens[3], 4)?,
                2 => two_digit_year(number(tokens[3], 2)?, wall_now_ms),
                _ => return None,
            };
            (tokens[1], tokens[2], year, tokens[4])
        }
        // asctime: weekday, month, day, time, year.
        5 if tokens[4].len() == 4 => (tokens[2], tokens[1], number(tokens[4], 4)?, tokens[3]),
        _ => return None,
    };
    if day.is_empty() || day.len() > 2 {
        return None;
    }
    let day = number(day, 2)?;
    let month = month_number(month)?;
    let (hour, minute, second) = parse_time(time)?;
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(u64::try_from(secs).unwrap_or(0).saturating_mul(1000))
}

/// The value of an all-digit string of at most `max_len` digits.
fn number(s: &str, max_len: usize) -> Option<u32> {
    digits(s.as_bytes(), max_len)
}

pub(super) fn digits(s: &[u8], max_len: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_len || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

/// `HH:MM:SS`.
fn parse_time(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((
        digits(&b[0..2], 2)?,
        digits(&b[3..5], 2)?,
        digits(&b[6..8], 2)?,
    ))
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(super) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Gregorian year containing `days` days since 1970-01-01 (inverse of the above, year only).
fn year_from_days(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let year = yoe + era * 400;
    if mp >= 10 {
        year + 1
    } else {
        year
    }
}

/// RFC 9110: a two-digit year that would be more than 50 years in the future is in the past.
fn two_digit_year(yy: u32, wall_now_ms: u64) -> u32 {
    let days = i64::try_from(wall_now_ms / 86_400_000).unwrap_or(i64::MAX / 2);
    let now = year_from_days(days).clamp(100, 9_999) as u32;
    let mut year = now - now % 100 + yy;
    if year > now + 50 {
        year -= 100;
    } else if year + 50 < now {
        year += 100;
    }
    year
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:37Z in Unix-epoch milliseconds.
    const RFC_EXAMPLE_MS: u64 = 784_111_777_000;
    /// 2026-01-01T00:00:00Z.
    const NOW_2026: u64 = 1_767_225_600_000;

    #[test]
    fn should_retry() {
        assert_eq!(parse_should_retry("true"), Some(true));
        assert_eq!(parse_should_retry(" TRUE "), Some(true));
        assert_eq!(parse_should_retry("false"), Some(false));
        assert_eq!(parse_should_retry("1"), None);
        assert_eq!(parse_should_retry(""), None);
    }

    #[test]
    fn retry_after_ms() {
        assert_eq!(parse_retry_after_ms("1500"), Some(1500));
        assert_eq!(parse_retry_after_ms(" 1500.5 "), Some(1500));
        assert_eq!(parse_retry_after_ms("1500."), Some(1500));
        assert_eq!(parse_retry_after_ms(".9"), Some(0));
        assert_eq!(parse_retry_after_ms("0"), Some(0));
        assert_eq!(
            parse_retry_after_ms("99999999999999999999999"),
            Some(u64::MAX)
        );
        for bad in [
            "", ".", "-5", "+5", "1e3", "1.2.3", "abc", "1 2", "NaN", "inf",
        ] {
            assert_eq!(parse_retry_after_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120", NOW_2026), Some(120_000));
        assert_eq!(parse_retry_after("0", NOW_2026), Some(0));
        assert_eq!(parse_retry_after("1.5", NOW_2026), Some(1500));
        assert_eq!(parse_retry_after("1.23456", NOW_2026), Some(1234));
        assert_eq!(parse_retry_after("-1", NOW_2026), None);
        assert_eq!(parse_retry_after("soon", NOW_2026), None);
    }

    #[test]
    fn http_dates() {
        let now = NOW_2026;
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "sun, 06 nov 1994 08:49:37 gmt",
        ] {
            assert_eq!(parse_http_date(s, now), Some(RFC_EXAMPLE_MS), "{s}");
        }
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(
            parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT", now),
            Some(0)
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(NOW_2026 + 30_000)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT", now),
            Some(1_709_208_000_000)
        );
        // Two-digit years within 50 years ahead stay in this century.
        assert_eq!(
            parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT", now),
            Some(NOW_2026)
        );
    }

    #[test]
    fn bad_http_dates() {
        for s in [
            "",
            "GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 29 Feb 2023 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 006 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 19945 08:49:37 GMT",
            "1, 06 Nov 1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "日曜, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:4é:37 GMT",
        ] {
            assert_eq!(parse_http_date(s, NOW_2026), None, "{s}");
        }
    }

    #[test]
    fn retry_after_date_is_relative_and_never_negative() {
        let date = "Thu, 01 Jan 2026 00:01:00 GMT";
        assert_eq!(parse_retry_after(date, NOW_2026), Some(60_000));
        assert_eq!(parse_retry_after(date, NOW_2026 + 90_000), Some(0));
        assert_eq!(parse_retry_after(date, u64::MAX), Some(0));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 0),
            Some(RFC_EXAMPLE_MS)
        );
    }

    #[test]
    fn civil_roundtrip() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 20_454, 2_932_896] {
            let y = year_from_days(days);
            assert!(days_from_civil(y, 1, 1) <= days && days < days_from_civil(y + 1, 1, 1));
        }
    }

    #[test]
    fn two_digit_year_window() {
        assert_eq!(two_digit_year(94, NOW_2026), 1994);
        assert_eq!(two_digit_year(76, NOW_2026), 2076);
        assert_eq!(two_digit_year(77, NOW_2026), 1977);
        assert_eq!(two_digit_year(0, NOW_2026), 2000);
        assert_eq!(two_digit_year(0, 0), 2000);
        assert_eq!(two_digit_year(19, 0), 2019);
        assert_eq!(two_digit_year(21, 0), 1921);
        let _ = two_digit_year(50, u64::MAX);
    }
}
