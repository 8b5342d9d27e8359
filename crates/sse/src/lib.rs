//! An exact, incremental Server-Sent Events parser.
//!
//! LLM APIs stream their answers as `text/event-stream`, and the bytes arrive in network chunks that
//! may split a line, a CRLF pair, a UTF-8 character or even the leading byte order mark anywhere. The
//! parser follows the WHATWG HTML "Parsing an event stream" and "Interpreting an event stream"
//! sections to the letter, so the events it yields do not depend on how the stream was chunked: the
//! integration tests run every case whole, split at every byte and one byte at a time, and compare the
//! parser with a naive whole-input reference on random streams.
//!
//! It is also linear in the size of its input, whatever the line lengths or the chunking: every byte
//! is scanned for a line terminator exactly once (with `memchr`), lines that lie inside one chunk are
//! interpreted straight from that chunk, and only a line that crosses a chunk boundary is copied, once,
//! into a carry-over buffer. A server that sends one multi-megabyte line in tiny chunks therefore costs
//! no more than one that sends it whole.
//!
//! It is bounded in memory: a line, or the data of one event, longer than the parser's limit
//! ([`DEFAULT_MAX_EVENT_BYTES`] unless set with [`SseParser::with_max_event_bytes`]) fails the stream
//! with [`TooLarge`] before its bytes are copied, so a hostile server cannot make one unterminated
//! line take the memory. No input can make it panic.
//!
//! It lives in a crate of its own for one reason: the package is built for size (`opt-level = "z"`),
//! and this crate alone is built for speed (`opt-level = 3`), which the parser benchmark showed to be
//! worth about 25% of its throughput.
#![deny(missing_docs)]

use std::mem;

/// The UTF-8 byte order mark, stripped once at the very start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// A carry-over buffer bigger than this is freed once its line is done, so that one huge line does
/// not pin its memory for the rest of the stream.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

/// The bound on one line and on one event's data when none is set: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// A line or an event's data went past the parser's bound. The stream is failed: every later
/// [`SseParser::feed`] returns this again until [`SseParser::end`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The bound, in bytes.
    pub limit: usize,
}

/// One dispatched event, as an `EventSource` would deliver it to a `message` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the last `event` field of the block, or `"message"` when there was none (or
    /// it was empty).
    pub event: String,
    /// The `data` fields of the block joined with LF (the spec's data buffer minus its final LF).
    pub data: String,
    /// The last event ID at dispatch time. It persists across events: a block without an `id` field
    /// carries the ID set by an earlier block.
    pub id: String,
}

/// Where dispatched events go. The parser lends each event's fields; a sink that copies them straight
/// into its own representation (a packed buffer for JS, say) saves an allocation per event. (A trait
/// object, not a generic: one copy of the parser in the wasm, and a call per event costs nothing
/// next to the event's bytes.)
pub trait EventSink {
    /// One dispatched event: its type (`"message"` by default), data and the last event ID.
    /// `id_changed` is false when `id` is the one given with the parser's previous event, so that a
    /// sink need not copy (or compare) a long ID that persists across many small events.
    fn event(&mut self, event_type: &str, data: &str, id: &str, id_changed: bool);
}

impl EventSink for Vec<SseEvent> {
    fn event(&mut self, event_type: &str, data: &str, id: &str, _: bool) {
        self.push(SseEvent {
            event: event_type.to_string(),
            data: data.to_string(),
            id: id.to_string(),
        });
    }
}

/// Events packed into one string as `event CR data CR id CR` records, written straight from the
/// parser's buffers: the cheapest shape to hand to JavaScript (one string per chunk, split there),
/// since no field can contain a CR (lines end at CR and LF; data lines are joined with LF). An ID
/// that is the previous record's is written as a single NUL (which no ID can contain): many small
/// events under one long ID must not multiply it.
#[derive(Debug, Default)]
pub struct Packed(String);

/// The ID field of a record whose ID is the previous record's.
pub const SAME_ID: &str = "\0";

impl EventSink for Packed {
    fn event(&mut self, event_type: &str, data: &str, id: &str, id_changed: bool) {
        let id = if id_changed || self.0.is_empty() {
            id
        } else {
            SAME_ID
        };
        for field in [event_type, data, id] {
            self.0.push_str(field);
            self.0.push('\r');
        }
    }
}

impl Packed {
    /// True when no event was packed since the last `take`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The packed events, `None` when there are none.
    pub fn take(&mut self) -> Option<String> {
        (!self.0.is_empty()).then(|| std::mem::take(&mut self.0))
    }
}

/// An incremental `text/event-stream` parser: feed it bytes as they arrive, collect complete events.
///
/// One parser follows one stream; after [`SseParser::end`] it may be fed the next stream of the same
/// source (a reconnection), keeping its last event ID and reconnection time.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// The bound on a line and on an event's data, in bytes.
    max: usize,
    /// A bound was passed: the stream is failed until [`SseParser::end`].
    failed: bool,
    /// Bytes of a line that began in an earlier chunk and has not been terminated yet.
    line: Vec<u8>,
    /// The previous line ended with CR at the end of a chunk: an LF starting the next chunk is the
    /// second half of a CRLF, not an empty line.
    skip_lf: bool,
    /// The start of the stream has been handled (a BOM stripped, or known to be absent).
    bom_done: bool,
    /// How many bytes of a BOM have been seen at the start of the stream so far (0 to 2).
    bom_matched: u8,
    /// The spec's data buffer.
    data: String,
    /// The spec's event type buffer.
    event_type: String,
    /// The spec's last event ID buffer: set by `id` fields, copied out on dispatch.
    id_buffer: String,
    /// The source's last event ID string: what `id_buffer` held at the last dispatch.
    last_event_id: String,
    /// An `id` field was seen since the last dispatch (`id_buffer` may differ from `last_event_id`).
    id_seen: bool,
    /// `last_event_id` changed since it was last given with an event.
    id_changed: bool,
    /// The last valid `retry` value, in milliseconds.
    retry: Option<u64>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser at the start of a stream, with an empty last event ID and no reconnection time,
    /// bounded by [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser whose lines and events' data may not be longer than `max` bytes.
    pub fn with_max_event_bytes(max: usize) -> Self {
        SseParser {
            max,
            failed: false,
            line: Vec::new(),
            skip_lf: false,
            bom_done: false,
            bom_matched: 0,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            id_seen: false,
            id_changed: true,
            retry: None,
        }
    }

    /// The bound on a line and on an event's data, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.max
    }

    /// Feeds the next bytes of the stream; every event completed by them is pushed to `out`.
    ///
    /// Chunk boundaries may fall anywhere: inside a line, between the CR and LF of a CRLF, inside a
    /// UTF-8 character or inside the leading byte order mark. The events do not depend on them, and
    /// neither does the failure: a line or an event's data longer than the bound fails the stream
    /// with [`TooLarge`] once that many bytes of it arrived (whole or unterminated), after the
    /// events before it.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn EventSink) -> Result<(), TooLarge> {
        if self.failed {
            return Err(self.too_large());
        }
        self.feed_bounded(chunk, out).inspect_err(|_| {
            self.failed = true;
            self.line = Vec::new();
            self.data = String::new();
        })
    }

    fn too_large(&self) -> TooLarge {
        TooLarge { limit: self.max }
    }

    fn feed_bounded(&mut self, chunk: &[u8], out: &mut dyn EventSink) -> Result<(), TooLarge> {
        let mut chunk = chunk;
        if !self.bom_done {
            // The UTF-8 decoder strips one BOM, and only if the stream's first three bytes are one.
            while usize::from(self.bom_matched) < BOM.len() {
                let Some((&byte, rest)) = chunk.split_first() else {
                    return Ok(()); // Still undecided: wait for more bytes.
                };
                let seen = usize::from(self.bom_matched);
                if BOM.get(seen) == Some(&byte) {
                    self.bom_matched += 1;
                    chunk = rest;
                } else {
                    // Not a BOM after all: the bytes held back start the first line. None of them is
                    // CR or LF, so they belong in the carry-over buffer as they are.
                    self.line.extend_from_slice(BOM.get(..seen).unwrap_or(&[]));
                    break;
                }
            }
            self.bom_done = true;
        }
        if self.skip_lf {
            if let Some((&first, rest)) = chunk.split_first() {
                if first == b'\n' {
                    chunk = rest;
                }
                self.skip_lf = false;
            }
        }

        let mut start = 0;
        while let Some(found) = chunk
            .get(start..)
            .and_then(|rest| memchr::memchr2(b'\r', b'\n', rest))
        {
            let end = start + found;
            let terminator = chunk.get(end).copied();
            let body = chunk.get(start..end).unwrap_or(&[]);
            if self.line.is_empty() {
                self.check(body.len())?;
                self.process_line(body, out)?;
            } else {
                self.check(self.line.len().saturating_add(body.len()))?;
                let mut line = mem::take(&mut self.line);
                line.reserve_exact(growth(line.capacity(), line.len(), body.len(), self.max));
                line.extend_from_slice(body);
                self.process_line(&line, out)?;
                if line.capacity() <= KEEP_LINE_CAPACITY {
                    line.clear();
                    self.line = line;
                }
            }
            start = end + 1;
            if terminator == Some(b'\r') {
                // CRLF is one terminator. The line was processed eagerly on the CR; its LF may be
                // the next byte or, if the chunk ends here, the first byte of the next chunk.
                match chunk.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        if let Some(rest) = chunk.get(start..) {
            self.check(self.line.len().saturating_add(rest.len()))?;
            let line = &mut self.line;
            line.reserve_exact(growth(line.capacity(), line.len(), rest.len(), self.max));
            line.extend_from_slice(rest);
        }
        Ok(())
    }

    /// A line (or an event's data) of `len` bytes is within the bound.
    fn check(&self, len: usize) -> Result<(), TooLarge> {
        match len > self.max {
            true => Err(self.too_large()),
            false => Ok(()),
        }
    }

    /// Ends the stream.
    ///
    /// As the spec says, a stream that ends in the middle of an event discards it: the unfinished
    /// line (it has no terminator, so it is not a line), the data and event type buffers and an `id`
    /// seen since the last dispatch are all dropped, and no event is pushed to `out`. The last event
    /// ID and the reconnection time are kept, and the parser is ready for the next stream of the same
    /// source (whose leading BOM will be stripped again). A stream failed with [`TooLarge`] ends
    /// here too: the next one is read afresh.
    pub fn end(&mut self, out: &mut dyn EventSink) {
        let _ = out; // A stream never completes an event at its end.
        if self.line.capacity() > KEEP_LINE_CAPACITY {
            self.line = Vec::new();
        } else {
            self.line.clear();
        }
        self.failed = false;
        self.skip_lf = false;
        self.bom_done = false;
        self.bom_matched = 0;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
        self.id_seen = false;
    }

    /// The last event ID string: the value of the last event ID buffer at the most recent dispatch
    /// (an `id` field takes effect when its block ends with an empty line, even if the block had no
    /// data). This is what a client sends as `Last-Event-ID` when it reconnects.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds from the last valid `retry` field, if any. It takes
    /// effect as soon as the field's line is complete, without waiting for the block to end.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Interprets one complete line (without its terminator).
    fn process_line(&mut self, line: &[u8], out: &mut dyn EventSink) -> Result<(), TooLarge> {
        let (field, value) = match memchr::memchr(b':', line) {
            None if line.is_empty() => {
                self.dispatch(out);
                return Ok(());
            }
            // A comment.
            Some(0) => return Ok(()),
            Some(colon) => {
                let field = line.get(..colon).unwrap_or(&[]);
                let value = line.get(colon + 1..).unwrap_or(&[]);
                (field, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        // Field names are compared byte for byte. As the names are ASCII and every non-UTF-8 byte
        // decodes to U+FFFD, this is the same as comparing the decoded strings.
        match field {
            b"data" => {
                // The data buffer holds an LF after each line; the event's data drops the last.
                self.check(self.data.len().saturating_add(value.len()))?;
                let data = &mut self.data;
                data.reserve_exact(growth(
                    data.capacity(),
                    data.len(),
                    value.len() + 1,
                    self.max,
                ));
                push_lossy(data, value);
                self.data.push('\n');
            }
            b"event" => {
                self.event_type.clear();
                push_lossy(&mut self.event_type, value);
            }
            // U+0000 only ever decodes from the byte 0x00; an id containing it is ignored.
            b"id" if memchr::memchr(0, value).is_none() => {
                self.id_buffer.clear();
                push_lossy(&mut self.id_buffer, value);
                self.id_seen = true;
            }
            // An invalid value leaves the reconnection time as it was.
            b"retry" => self.retry = parse_retry(value).or(self.retry),
            _ => {}
        }
        Ok(())
    }

    /// The spec's "dispatch the event", on an empty line.
    fn dispatch(&mut self, out: &mut dyn EventSink) {
        // Compared only after an `id` field: an ID that persists is never compared again, however
        // many events follow it.
        if mem::take(&mut self.id_seen) && self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
            self.id_changed = true;
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            "message"
        } else {
            &self.event_type
        };
        out.event(
            event_type,
            &self.data,
            &self.last_event_id,
            mem::take(&mut self.id_changed),
        );
        self.event_type.clear();
        if self.data.capacity() > KEEP_LINE_CAPACITY {
            self.data = String::new();
        } else {
            self.data.clear();
        }
    }
}

/// What to reserve for `more` bytes on a buffer of `len` bytes in `capacity`: doubling, for amortised
/// linear time, but not past `max` (a buffer near the bound does not take twice the bound).
fn growth(capacity: usize, len: usize, more: usize, max: usize) -> usize {
    let needed = len.saturating_add(more);
    if needed <= capacity {
        return 0;
    }
    let doubled = capacity.saturating_mul(2).min(max);
    needed.max(doubled) - len
}

/// Appends `bytes` decoded as UTF-8, each maximal invalid subpart replaced by U+FFFD (the WHATWG
/// "UTF-8 decode" on a line; line terminators are ASCII, so decoding line by line equals decoding the
/// whole stream).
fn push_lossy(dst: &mut String, bytes: &[u8]) {
    match core::str::from_utf8(bytes) {
        Ok(text) => dst.push_str(text),
        Err(error) => {
            let (valid, rest) = bytes.split_at(error.valid_up_to());
            dst.push_str(core::str::from_utf8(valid).unwrap_or_default());
            for chunk in rest.utf8_chunks() {
                dst.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    dst.push(char::REPLACEMENT_CHARACTER);
                }
            }
        }
    }
}

/// A `retry` value: one or more ASCII digits, read in base ten. A value that does not fit in `u64`
/// is treated as invalid.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |ms, &byte| {
        if byte.is_ascii_digit() {
            ms.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
        } else {
            None
        }
    })
}
