//! Cache-first, written once for `client.fetch` and streams: a fresh entry answers without the
//! upstream; a missing or stale one sends the call upstream, and a stale one answers in its place
//! if the upstream failed ([`serves_stale`](super::serves_stale): stale-if-error).
//!
//! Why do streams get stale-if-error too? A stream that failed before its first event has handed
//! nothing out, so a recorded stream can stand in for the whole of it, as an entry does for a
//! response. Once an event has been handed out, the call is no longer cache-first's: the stream
//! resumes or fails on its own.
//!
//! Two steps around the caller's upstream call, so that no future is wrapped in another (each
//! nesting costs wasm bytes): [`cache_first`] before it, [`Upstream::stale_if_error`] after it. The
//! lookup (how long to wait for the store: [`lookup_wait_ms`](super::lookup_wait_ms)) and what an
//! entry becomes (a `Response`, a replayed stream) are the caller's; the decisions and the `cache`
//! events they emit are here, so both callers emit the same ones.

use crate::core::cache::memory::Freshness;
use crate::core::config::CacheMode;
use crate::core::event::Event;
use crate::core::platform::Platform;

/// How a cache-first call goes on after the lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum CacheFirst<E> {
    /// A fresh entry answers; the upstream is not asked.
    Hit(E),
    /// `only-if-cached` and no fresh entry: a 504, the upstream not asked.
    Unsatisfiable,
    /// The upstream answers, unless it fails and a stale entry stands in.
    Upstream(Upstream<E>),
}

/// A call sent upstream by [`cache_first`], with the stale entry (if any) that may stand in for it.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a stale entry answers only through stale_if_error"]
pub struct Upstream<E> {
    stale: Option<E>,
}

/// What a call to `url` does with what the store `found`, under `mode`. Emits `hit` or `miss`.
pub fn cache_first<P: Platform, E>(
    platform: &P,
    url: &str,
    mode: CacheMode,
    found: Option<(E, Freshness)>,
) -> CacheFirst<E> {
    let stale = match found {
        Some((entry, Freshness::Fresh)) => {
            platform.emit(Event::Cache { url, result: "hit" });
            return CacheFirst::Hit(entry);
        }
        Some((entry, Freshness::Stale)) => Some(entry),
        None => None,
    };
    platform.emit(Event::Cache {
        url,
        result: "miss",
    });
    if mode == CacheMode::OnlyIfCached {
        return CacheFirst::Unsatisfiable;
    }
    CacheFirst::Upstream(Upstream { stale })
}

impl<E> Upstream<E> {
    /// Whether a stale entry may stand in (so the caller keeps what replaying it needs).
    pub fn has_stale(&self) -> bool {
        self.stale.is_some()
    }

    /// The stale entry that answers in place of the upstream's outcome, when the outcome `failed`
    /// (a 5xx or no answer, not the caller's abort: [`serves_stale`](super::serves_stale)) and there
    /// is one. Emits `stale` when it does.
    pub fn stale_if_error<P: Platform>(self, platform: &P, url: &str, failed: bool) -> Option<E> {
        let entry = self.stale.filter(|_| failed)?;
        platform.emit(Event::Cache {
            url,
            result: "stale",
        });
        Some(entry)
    }
}
