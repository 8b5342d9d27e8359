//! One upstream event-stream body, read once, for every stream that reads it.
//!
//! Two identical deterministic stream requests made at the same time (a re-render, a fan-out) should
//! cost one upstream generation, like identical `fetch` calls do. So a stream's body is not read by
//! the stream itself but through a [`Tap`]: each reader holds a [`Cursor`] and parses the bytes on its
//! own, at its own pace, with its own timeouts and its own caller's signal. A tap that can be joined
//! keeps its chunks from the first one on, so a reader that joins late still sees every event, and a
//! complete stream can be stored in the cache from the same bytes; past [`RETAIN_LIMIT_BYTES`] it
//! stops keeping them (a long-lived event stream must not grow without bound) and keeps only what
//! its slowest reader has not read yet.
//!
//! Reads are shared, not raced: the read in progress is one JS promise that every waiting reader
//! awaits, so a reader that gives up (its idle timeout, its caller's abort) never loses a chunk for
//! the others. The body is cancelled on the wire when the last reader is released before the end.
//!
//! Why not the single flight of calls (`pipeline::JoinableCalls`)? Both stand on the core's
//! [`Flights`], but a call's flight ends with a finished answer copied once per caller, while a
//! stream's answer is still arriving: a request that comes while it is live must join its tap and
//! see every event from the first, which a copy of the `Response` made then cannot give (it starts
//! where the body is). So streams share a [`Flights`] only while opening ([`Opening`]) and join the
//! live tap after.
//!
//! A network chunk is copied into wasm memory [`SLICE_BYTES`] at a time, the rest left in JS until a
//! reader needs it: a body handed over in one huge chunk (a caller's own `fetch`, a proxy that
//! buffers) reaches each reader's byte bounds a slice at a time, and is cancelled there, instead of
//! being copied whole first.

use crate::core::dedupe::Flights;
use crate::wasm::body::chunk_of;
use crate::wasm::js::{get, ignore_rejection};
use js_sys::{Object, Promise, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

/// A tap stops keeping its whole body (and so can no longer be joined or stored) past this size.
pub const RETAIN_LIMIT_BYTES: usize = 4 << 20;

/// Most bytes of a chunk copied into wasm memory at once.
pub const SLICE_BYTES: u32 = 64 * 1024;

/// What the next read produced.
pub enum Chunk {
    Bytes(Rc<Vec<u8>>),
    End,
}

/// An upstream body and the chunks its readers still need.
pub struct Tap {
    reader: ReadableStreamDefaultReader,
    state: RefCell<State>,
}

struct State {
    /// Chunks from number `first` on.
    chunks: Vec<Rc<Vec<u8>>>,
    first: usize,
    /// Bytes kept from the very first chunk while the whole body is kept; `None` once it is not.
    retained: Option<usize>,
    /// The part of the last chunk not copied yet (past its first slice).
    rest: Option<Uint8Array>,
    /// Where each reader is: the chunk it reads next.
    cursors: Vec<Rc<Cell<usize>>>,
    /// The read in progress, awaited by every reader that needs its chunk.
    pending: Option<Promise>,
    /// How the body ended, after its last chunk.
    end: Option<Result<(), String>>,
    /// A reader saw the stream cut (stalled, or ended without its end marker): nobody may join it,
    /// least of all a resumption of it.
    spoiled: bool,
}

impl Tap {
    /// A tap on `reader`; with `retain`, the whole body is kept (up to the limit).
    pub fn new(reader: ReadableStreamDefaultReader, retain: bool) -> Rc<Tap> {
        Rc::new(Tap {
            reader,
            state: RefCell::new(State {
                chunks: Vec::new(),
                first: 0,
                retained: retain.then_some(0),
                rest: None,
                cursors: Vec::new(),
                pending: None,
                end: None,
                spoiled: false,
            }),
        })
    }

    /// A new reader from the first chunk, if the tap still has it and did not fail.
    pub fn join(self: &Rc<Self>) -> Option<Cursor> {
        let joinable = {
            let state = self.state.borrow();
            state.first == 0 && !state.spoiled && !matches!(state.end, Some(Err(_)))
        };
        joinable.then(|| self.cursor())
    }

    /// The first reader (the one that opened the body).
    pub fn cursor(self: &Rc<Self>) -> Cursor {
        let at = Rc::new(Cell::new(0));
        self.state.borrow_mut().cursors.push(at.clone());
        Cursor {
            tap: self.clone(),
            at,
        }
    }

    /// Stops anyone from joining: a reader saw the stream cut.
    pub fn spoil(&self) {
        self.state.borrow_mut().spoiled = true;
    }

    /// The whole body, once it ended cleanly and was kept from its first byte.
    pub fn recorded(&self) -> Option<Vec<u8>> {
        let state = self.state.borrow();
        if state.first != 0 || state.retained.is_none() || state.end != Some(Ok(())) {
            return None;
        }
        Some(
            state
                .chunks
                .iter()
                .flat_map(|c| c.iter().copied())
                .collect(),
        )
    }

    /// Records the outcome of `read` (a `reader.read()` promise), unless another reader did.
    fn settle(&self, read: &Promise, outcome: Result<JsValue, JsValue>) {
        {
            let mut state = self.state.borrow_mut();
            if !state.pending.as_ref().is_some_and(|p| Object::is(p, read)) || state.end.is_some() {
                return;
            }
            state.pending = None;
        }
        // Read out of the JS values with no borrow held (a getter is JS code).
        let outcome = match outcome {
            Err(error) => Err(get(&error, "message")
                .as_string()
                .unwrap_or_else(|| "stream read failed".into())),
            Ok(result) if get(&result, "done").as_bool() == Some(true) => Ok(None),
            Ok(result) => match chunk_of(&result) {
                Ok(chunk) => Ok(Some(first_slice(chunk))),
                Err(error) => Err(get(&error, "message").as_string().unwrap_or_default()),
            },
        };
        let mut state = self.state.borrow_mut();
        if state.end.is_some() {
            return; // cancelled meanwhile
        }
        match outcome {
            Err(message) => state.end = Some(Err(message)),
            Ok(None) => state.end = Some(Ok(())),
            Ok(Some(slice)) => state.push(slice),
        }
    }
}

/// A chunk's first slice, copied into wasm memory, and the rest of it, left in JS.
fn first_slice(chunk: Uint8Array) -> (Vec<u8>, Option<Uint8Array>) {
    let len = chunk.length();
    if len <= SLICE_BYTES {
        return (chunk.to_vec(), None);
    }
    (
        chunk.subarray(0, SLICE_BYTES).to_vec(),
        Some(chunk.subarray(SLICE_BYTES, len)),
    )
}

impl State {
    /// Adds a slice read from the body (and the rest of its chunk, still to copy).
    fn push(&mut self, (bytes, rest): (Vec<u8>, Option<Uint8Array>)) {
        self.retained = self
            .retained
            .map(|kept| kept + bytes.len())
            .filter(|kept| *kept <= RETAIN_LIMIT_BYTES);
        self.chunks.push(Rc::new(bytes));
        self.rest = rest;
    }

    /// Drops the chunks every reader has read, unless the whole body is kept.
    fn trim(&mut self) {
        if self.retained.is_some() {
            return;
        }
        let slowest = self.cursors.iter().map(|at| at.get()).min();
        let upto = slowest.unwrap_or(self.first + self.chunks.len());
        if upto > self.first {
            self.chunks.drain(..upto - self.first);
            self.first = upto;
        }
    }
}

/// One reader's place in a tap (a clone is the same reader).
#[derive(Clone)]
pub struct Cursor {
    tap: Rc<Tap>,
    at: Rc<Cell<usize>>,
}

impl Cursor {
    /// The next chunk, or how the body ended. Dropping the future loses nothing.
    pub async fn next(&self) -> Result<Chunk, String> {
        loop {
            let read = {
                let mut state = self.tap.state.borrow_mut();
                let at = self.at.get();
                // A released reader may have been trimmed past: it reads nothing more.
                let Some(index) = at.checked_sub(state.first) else {
                    return Err("the stream was cancelled".into());
                };
                if let Some(chunk) = state.chunks.get(index).cloned() {
                    self.at.set(at + 1);
                    state.trim();
                    return Ok(Chunk::Bytes(chunk));
                }
                if let Some(end) = &state.end {
                    return end.clone().map(|()| Chunk::End);
                }
                if let Some(rest) = state.rest.take() {
                    drop(state);
                    // Copied with no borrow held, like every JS call.
                    let slice = first_slice(rest);
                    self.tap.state.borrow_mut().push(slice);
                    continue;
                }
                state.pending.clone()
            };
            // A new read is started with no borrow held: the stream's source is JS code.
            let read = match read {
                Some(read) => read,
                None => {
                    let read = self.tap.reader.read();
                    self.tap.state.borrow_mut().pending = Some(read.clone());
                    read
                }
            };
            let outcome = JsFuture::from(read.clone()).await;
            self.tap.settle(&read, outcome);
        }
    }

    /// The tap this cursor reads.
    pub fn tap(&self) -> &Rc<Tap> {
        &self.tap
    }

    /// This reader is done: the body is cancelled on the wire if it was the last one before the end.
    pub fn release(&self) {
        let last = {
            let mut state = self.tap.state.borrow_mut();
            state.cursors.retain(|at| !Rc::ptr_eq(at, &self.at));
            let last = state.cursors.is_empty() && state.end.is_none();
            if last {
                state.end = Some(Err("the stream was cancelled".into()));
            } else {
                state.trim();
            }
            last
        };
        if last {
            ignore_rejection(&self.tap.reader.cancel());
        }
    }
}

/// How a stream request's opening went, for the identical requests that waited on it; `B` is a
/// live body.
pub enum Opening<B> {
    /// Its stream is live: the body (read by the request that saw it open), its response and
    /// the attempts it took.
    Opened(Box<B>, Response, u32),
    /// The stream is live: a reader on it from its first chunk, and its response's head.
    Joined(Cursor, Response),
    /// It ended in a response without a stream (an error status), or a copy of one, and the
    /// attempts it took (none for a copy).
    NoStream(Response, u32),
    /// It failed.
    Failed(JsValue),
}

/// Identical stream requests: single flight while one is opening, then the live streams to join;
/// `B` is a live body.
pub struct JoinableStreams<B> {
    /// Requests still opening, by key.
    pub opening: Flights<Opening<B>>,
    live: RefCell<Vec<(String, Weak<Tap>, Response)>>,
}

impl<B> Default for JoinableStreams<B> {
    fn default() -> Self {
        JoinableStreams {
            opening: Flights::default(),
            live: RefCell::default(),
        }
    }
}

impl<B> JoinableStreams<B> {
    /// Makes `tap` joinable under `key`; `response` is the head its readers are given.
    pub fn offer(&self, key: &str, tap: &Rc<Tap>, response: &Response) {
        let mut live = self.live.borrow_mut();
        live.retain(|(_, tap, _)| tap.strong_count() > 0);
        live.push((key.to_string(), Rc::downgrade(tap), Clone::clone(response)));
    }

    /// A reader on the live stream for `key` and that stream's response, if one can be joined.
    pub fn join(&self, key: &str) -> Option<(Cursor, Response)> {
        let live = self.live.borrow();
        live.iter()
            .filter(|(k, _, _)| k == key)
            .find_map(|(_, tap, response)| Some((tap.upgrade()?.join()?, Clone::clone(response))))
    }
}
