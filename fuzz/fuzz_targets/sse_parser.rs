//! Differential: chunking must not change what the SSE parser yields.
//!
//! Input: one byte of chunking seed, then the stream. The stream is parsed twice, whole and in
//! chunks whose lengths (empty chunks included) come from the seed; the events, the last event ID
//! and the reconnection time must be the same. Seed 0 feeds one byte at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resilient_llm::core::sse::{SseEvent, SseParser};

/// Parses `stream` fed in chunks of the lengths `sizes` yields, then ends it.
fn parse(stream: &[u8], mut sizes: impl FnMut() -> usize) -> (Vec<SseEvent>, String, Option<u64>) {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sizes().min(rest.len()));
        parser.feed(chunk, &mut out);
        rest = tail;
    }
    parser.end(&mut out);
    (out, parser.last_event_id().to_owned(), parser.retry())
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
});
