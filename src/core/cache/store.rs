//! What the cache asks of a store it does not own (a user's `CacheStore`, IndexedDB): how long to
//! wait for it, and which of its entries to believe.
//!
//! A cache is an optimization, so a store must never cost a call more than it could save, nor
//! decide the call's outcome. Two rules follow.
//!
//! Bounded waits. A store call that never settles (a network store without a timeout, an IndexedDB
//! open blocked by another tab) is abandoned after the store's own timeout, and a lookup also after
//! half of what is left of the call's total deadline: the upstream keeps at least the other half,
//! and the time spent looking up counts against the deadline like any other wait. The caller's
//! abort signal cuts a lookup like any other wait (the binding layer hands it to the store call).
//!
//! Distrusted entries. Whatever a store hands back was written by code this crate does not control,
//! and may be old, foreign or corrupt. An entry is replayed only if it could have been stored: a
//! status a `Response` can carry (200..=599) and times in order. Anything else is a miss, reported
//! as a store error, and never a failed call.

use crate::core::cache::Entry;

/// How long a store call may take when `cache.timeoutMs` is not given. Reads from the stores this
/// is built for take milliseconds (the Cache API, IndexedDB) to a few hundred (Workers KV on a cold
/// key, Redis over HTTP across regions); an answer slower than a second has lost most of its point.
pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 1000;

/// How long a lookup may wait: the store's timeout, and at most half of what is left of the call's
/// total deadline (`None`: the call has none).
pub fn lookup_wait_ms(store_timeout_ms: u64, total_left_ms: Option<u64>) -> u64 {
    total_left_ms.map_or(store_timeout_ms, |left| store_timeout_ms.min(left / 2))
}

/// An entry as a store gave it, numbers as JS numbers (unchecked).
#[derive(Debug)]
pub struct RawEntry {
    /// `status`.
    pub status: f64,
    /// `headers`, already read as string pairs.
    pub headers: Vec<(String, String)>,
    /// `body`, already read as bytes.
    pub body: Vec<u8>,
    /// `storedAt`, `freshUntil`, `staleUntil` (ms since the epoch).
    pub times: [f64; 3],
}

/// `raw` as an entry, if it could have been stored: an integer status in 200..=599, and times that
/// are whole, non-negative milliseconds with `storedAt <= freshUntil <= staleUntil`.
///
/// # Errors
/// A message saying what is wrong with it, naming the field.
pub fn checked_entry(raw: RawEntry) -> Result<Entry, &'static str> {
    let status = raw.status;
    if !(200.0..=599.0).contains(&status) || status != status.trunc() {
        return Err("cache.store.get() gave an invalid entry: status is not in 200..=599");
    }
    let [stored, fresh, stale] = raw.times;
    let ms = |n: f64| (0.0..=9_007_199_254_740_991.0).contains(&n) && n == n.trunc();
    if !(ms(stored) && ms(fresh) && ms(stale)) {
        return Err(
            "cache.store.get() gave an invalid entry: storedAt, freshUntil and staleUntil \
                    must be whole milliseconds >= 0",
        );
    }
    if !(stored <= fresh && fresh <= stale) {
        return Err(
            "cache.store.get() gave an invalid entry: its times are out of order \
                    (storedAt <= freshUntil <= staleUntil)",
        );
    }
    Ok(Entry {
        status: status as u16,
        headers: raw.headers,
        body: raw.body,
        stored_at_ms: stored as u64,
        fresh_until_ms: fresh as u64,
        stale_until_ms: stale as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: f64, times: [f64; 3]) -> RawEntry {
        RawEntry {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"hi".to_vec(),
            times,
        }
    }

    #[test]
    fn a_lookup_leaves_the_upstream_half_of_the_deadline() {
        assert_eq!(lookup_wait_ms(1000, None), 1000);
        assert_eq!(lookup_wait_ms(1000, Some(10_000)), 1000);
        assert_eq!(lookup_wait_ms(1000, Some(600)), 300);
        assert_eq!(lookup_wait_ms(1000, Some(1)), 0);
        assert_eq!(lookup_wait_ms(1000, Some(0)), 0);
    }

    #[test]
    fn only_entries_that_could_have_been_stored_are_believed() {
        let ok = checked_entry(raw(200.0, [1.0, 2.0, 3.0])).expect("valid");
        assert_eq!(
            (
                ok.status,
                ok.stored_at_ms,
                ok.fresh_until_ms,
                ok.stale_until_ms
            ),
            (200, 1, 2, 3)
        );
        assert!(checked_entry(raw(599.0, [5.0, 5.0, 5.0])).is_ok());
        for status in [
            999.0,
            199.0,
            0.0,
            -1.0,
            200.5,
            f64::NAN,
            f64::INFINITY,
            65_736.0,
        ] {
            assert!(
                checked_entry(raw(status, [1.0, 2.0, 3.0])).is_err(),
                "{status}"
            );
        }
        for times in [
            [-1.0, 2.0, 3.0],
            [1.0, f64::NAN, 3.0],
            [1.0, 2.0, f64::INFINITY],
            [1.5, 2.0, 3.0],
            [1.0, 2.0, 1e300],
            [3.0, 2.0, 4.0],
            [1.0, 3.0, 2.0],
        ] {
            assert!(checked_entry(raw(200.0, times)).is_err(), "{times:?}");
        }
    }
}
