//! Response caching: what may be cached, under which key, and a bounded in-memory store.
//!
//! Why are keys hashes? A key is derived from the URL, the body (the whole prompt) and the request's
//! headers, credentials included; written in clear, it would put a credential and a conversation
//! into every store that holds it: a `Map` in a long-lived tab, a KV namespace, a log line that
//! prints a miss. A SHA-256 over those parts ([`key`]) reveals nothing of them, and has a fixed size
//! (64 hex characters), which KV stores with key-length limits need. The headers are hashed apart
//! first, so even the key derivation never holds a secret next to the prompt, and keys of different
//! credentials, in whatever header, never collide: one caller's cached answer never reaches another.
//!
//! Why is the policy conservative? Serving a cached answer to a request that wanted a fresh sample
//! is a silent correctness bug, while not caching is only a cost. So only requests whose answer is
//! meant to be reproducible are cached by default ([`policy`]): `GET`/`HEAD`, bodies asking for
//! `temperature: 0`, or whatever the caller explicitly forces; `no-store` on either side and the
//! bypass mode always win, and neither credentials nor per-transfer headers are ever stored.
//!
//! The pieces are separate so that the pipeline composes them and other stores can reuse the first
//! three: [`sha256`](mod@sha256) (the hash, written for this crate to keep the wasm small; its own crate so that it alone is built for speed), [`key`], [`policy`]
//! (both reading a request [`body`] parsed once),
//! [`memory`] (an LRU bounded in entries and bytes, with fresh and stale-if-error lifetimes),
//! [`store`] (how long to wait for a store the cache does not own, and which of its entries to
//! believe), and [`first`] (cache-first: hit, miss or stale-if-error, for calls and streams
//! alike). Like the rest of the core, nothing here reads a clock: times are arguments.

pub mod body;
pub mod first;
pub mod key;
pub mod memory;
pub mod policy;
pub mod store;

pub use body::Body;
pub use first::{cache_first, CacheFirst, Upstream};
pub use key::{cache_key, canonical_json, KeyParts};
pub use memory::{Entry, Freshness, MemoryStore, ENTRY_OVERHEAD};
pub use policy::{request_cacheable, response_storable, serves_stale, storable_headers};
pub use resilient_llm_sha256 as sha256;
pub use sha256::{hex, sha256, Sha256};
pub use store::{checked_entry, lookup_wait_ms, RawEntry, DEFAULT_STORE_TIMEOUT_MS};
