//! Differential: chunking must not change what the SSE parser yields.
//!
//! Input: one byte of chunking seed, then the stream. The stream is parsed twice, whole and in
//! chunks whose lengths (empty chunks included) come from the seed; the events, the last event ID,
//! the reconnection time and whether the stream passed the parser's bound (a small one, so that
//! inputs reach it) must be the same. Seed 0 feeds one byte at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sturdy_llm::core::sse::{SseEvent, SseParser};

/// The bound on a line and an event's data: small enough for fuzz inputs to pass it.
const MAX_EVENT_BYTES: usize = 64;

/// What parsing a stream gave: events, last event ID, reconnection time, and whether it failed.
type Parsed = (Vec<SseEvent>, String, Option<u64>, bool);

/// Parses `stream` fed in chunks of the lengths `sizes` yields (up to its failure), then ends it.
fn parse(stream: &[u8], mut sizes: impl FnMut() -> usize) -> Parsed {
    let mut parser = SseParser::with_max_event_bytes(MAX_EVENT_BYTES);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut failed = false;
    while !rest.is_empty() && !failed {
        let (chunk, tail) = rest.split_at(sizes().min(rest.len()));
        failed = parser.feed(chunk, &mut out).is_err();
        rest = tail;
    }
    parser.end(&mut out);
    (out, parser.last_event_id().to_owned(), parser.retry(), failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = parse(stream, || usize::MAX);

    // Chunk lengths in 0..=max, from a splitmix64 generator seeded with the first byte.
    let max = 1 + u64::from(seed & 0x3f);
    let mut state = u64::from(seed);
    let chunked = parse(stream, || {
        if seed == 0 {
            return 1;
        }
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % (max + 1)) as usize
    });

    assert_eq!(
        chunked.0, whole.0,
        "events differ with chunking seed {seed}"
    );
    assert_eq!(
        chunked.1, whole.1,
        "last_event_id differs with chunking seed {seed}"
    );
    assert_eq!(
        chunked.2, whole.2,
        "retry differs with chunking seed {seed}"
    );
    assert_eq!(
        chunked.3, whole.3,
        "the bound is passed or not depending on chunking seed {seed}"
    );
});
