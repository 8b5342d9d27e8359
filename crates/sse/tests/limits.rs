//! The parser's bound: a hostile server's endless line or endless event fails the stream at the
//! bound, whatever the chunking, and no size makes the parser panic or hold more.

use resilient_llm_sse::{Packed, SseEvent, SseParser, TooLarge, DEFAULT_MAX_EVENT_BYTES, SAME_ID};

fn feed_all(parser: &mut SseParser, chunks: &[&[u8]]) -> (Vec<SseEvent>, Result<(), TooLarge>) {
    let mut out = Vec::new();
    for chunk in chunks {
        if let Err(error) = parser.feed(chunk, &mut out) {
            return (out, Err(error));
        }
    }
    (out, Ok(()))
}

#[test]
fn a_line_longer_than_the_bound_fails_the_stream_after_the_events_before_it() {
    let mut stream = b"data: ok\n\ndata: ".to_vec();
    stream.extend(std::iter::repeat_n(b'x', 20));
    stream.extend(b"\n\ndata: never\n\n");
    // Whole, split at every byte, and one byte at a time: the same events, then the same failure.
    for split in 0..stream.len() {
        let (head, tail) = stream.split_at(split);
        let mut parser = SseParser::with_max_event_bytes(16);
        let (events, outcome) = feed_all(&mut parser, &[head, tail]);
        assert_eq!(outcome, Err(TooLarge { limit: 16 }), "split at {split}");
        assert_eq!(events.len(), 1, "split at {split}");
        assert_eq!(events[0].data, "ok");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let (events, outcome) = feed_all(&mut SseParser::with_max_event_bytes(16), &bytes);
    assert_eq!((events.len(), outcome), (1, Err(TooLarge { limit: 16 })));
}

#[test]
fn a_line_at_the_bound_passes() {
    let mut parser = SseParser::with_max_event_bytes(16);
    let (events, outcome) = feed_all(&mut parser, &[b"data:0123456789a\n", b"\n"]);
    assert_eq!(outcome, Ok(()));
    assert_eq!(events[0].data, "0123456789a");
}

#[test]
fn an_event_whose_data_lines_add_up_past_the_bound_fails() {
    let mut parser = SseParser::with_max_event_bytes(16);
    let (events, outcome) = feed_all(&mut parser, &[&b"data: 12345678\n"[..]; 3]);
    assert_eq!((events.len(), outcome), (0, Err(TooLarge { limit: 16 })));
}

#[test]
fn a_failed_stream_stays_failed_until_it_ends_and_the_next_one_parses() {
    let mut parser = SseParser::with_max_event_bytes(8);
    let mut out = Vec::new();
    assert!(parser.feed(b"data: 0123456789", &mut out).is_err());
    assert!(parser.feed(b"\n\ndata: a\n\n", &mut out).is_err());
    parser.end(&mut out);
    assert_eq!(parser.feed(b"data: b\n\n", &mut out), Ok(()));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, "b");
}

#[test]
fn an_unterminated_line_of_a_gigabyte_fails_at_the_default_bound_and_no_size_panics() {
    let chunk = vec![b'x'; 64 * 1024];
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut accepted = 0usize;
    let mut failures = 0;
    // 1.25 GiB offered: the failure comes once the line passes 1 MiB, and nothing more is kept.
    for _ in 0..20_480 {
        match parser.feed(&chunk, &mut out) {
            Ok(()) => accepted += chunk.len(),
            Err(error) => {
                assert_eq!(error.limit, DEFAULT_MAX_EVENT_BYTES);
                failures += 1;
            }
        }
    }
    assert_eq!(accepted, DEFAULT_MAX_EVENT_BYTES);
    assert_eq!(failures, 20_480 - 16);
    // The largest bound there is: lengths are added without overflow.
    let mut unbounded = SseParser::with_max_event_bytes(usize::MAX);
    assert_eq!(unbounded.feed(b"data: a\n\n", &mut out), Ok(()));
}

#[test]
fn a_long_id_over_many_small_events_is_packed_once() {
    let mut stream = format!("id: {}\n\n", "i".repeat(10_000)).into_bytes();
    stream.extend(b"data\n\n".repeat(1000));
    let mut parser = SseParser::new();
    let mut packed = Packed::default();
    parser.feed(&stream, &mut packed).unwrap();
    let text = packed.take().unwrap();
    assert!(text.len() < 10_000 + 1000 * 12, "{} bytes", text.len());
    let records: Vec<&str> = text.split('\r').collect();
    assert_eq!(records[2].len(), 10_000);
    assert_eq!(records[5], SAME_ID);
}
