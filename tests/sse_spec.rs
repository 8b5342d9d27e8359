//! Conformance tests for the SSE parser, as data.
//!
//! The table below is derived from the WHATWG HTML "Parsing an event stream" and "Interpreting an
//! event stream" sections and from the web-platform-tests `eventsource/format-*` tests (a case
//! named `wpt-…` reproduces that test's stream byte for byte, with the `\n\n` the WPT server appends
//! unless the test asks for `newline=none`). Every case is run whole, split at every byte position
//! into two chunks, and one byte at a time (with empty chunks in between): all must give the same
//! events, last event ID and reconnection time. A naive whole-input reference parser then checks the
//! real one on random streams and random chunkings, and two large inputs check that the work stays
//! linear in the input size.

use sturdy_llm::core::sse::{SseEvent, SseParser};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One table case: a stream and what a conforming parser makes of it.
struct Case {
    name: &'static str,
    input: Vec<u8>,
    /// `(event type, data, id)` of each dispatched event, in order.
    events: Vec<(&'static str, &'static str, &'static str)>,
    last_event_id: &'static str,
    retry: Option<u64>,
}

fn case(
    name: &'static str,
    input: &[u8],
    events: &[(&'static str, &'static str, &'static str)],
    last_event_id: &'static str,
    retry: Option<u64>,
) -> Case {
    Case {
        name,
        input: input.to_vec(),
        events: events.to_vec(),
        last_event_id,
        retry,
    }
}

/// A `message` event with no ID.
fn msg(data: &'static str) -> (&'static str, &'static str, &'static str) {
    ("message", data, "")
}

fn cases() -> Vec<Case> {
    let long_comment = "x".repeat(2 * 1024);
    let comments = format!(
        "data:1\r:\0\n:\r\ndata:2\n:{long_comment}\rdata:3\n:data:fail\r:{long_comment}\ndata:4\n\n"
    );
    let mut cases = vec![
        // --- Basics.
        case("empty-input", b"", &[], "", None),
        case("only-blank-lines", b"\n\r\n\r\r\n\n", &[], "", None),
        case("one-event", b"data: hello\n\n", &[msg("hello")], "", None),
        case(
            "two-events",
            b"data:1\n\ndata:2\n\n",
            &[msg("1"), msg("2")],
            "",
            None,
        ),
        // --- Byte order mark: one, at the very start of the stream only.
        case("bom-once", b"\xEF\xBB\xBFdata:1\n\n", &[msg("1")], "", None),
        case(
            // wpt format-bom-2: the second BOM is part of the first field name ("\u{FEFF}data").
            "wpt-format-bom-2",
            b"\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\ndata:2\n\ndata:3\n\n",
            &[msg("2"), msg("3")],
            "",
            None,
        ),
        case(
            // wpt format-bom: a BOM after the start is data, so "\u{FEFF}data" is an unknown field.
            "wpt-format-bom",
            b"\xEF\xBB\xBFdata:1\n\n\xEF\xBB\xBFdata:2\n\ndata:3\n\n",
            &[msg("1"), msg("3")],
            "",
            None,
        ),
        case("bom-only", b"\xEF\xBB\xBF", &[], "", None),
        case("bom-then-blank", b"\xEF\xBB\xBF\n\n", &[], "", None),
        case(
            "bom-then-bare-data",
            b"\xEF\xBB\xBFdata\n\n",
            &[msg("")],
            "",
            None,
        ),
        case(
            // Two bytes of a BOM: not a BOM, and a truncated sequence that decodes to one U+FFFD.
            "bom-prefix-2-is-data",
            b"\xEF\xBBdata:1\n\ndata:2\n\n",
            &[msg("2")],
            "",
            None,
        ),
        case(
            "bom-prefix-1-is-data",
            b"\xEFdata:1\n\ndata:2\n\n",
            &[msg("2")],
            "",
            None,
        ),
        case(
            "bom-prefix-then-lf",
            b"\xEF\xBB\ndata:2\n\n",
            &[msg("2")],
            "",
            None,
        ),
        case(
            "bom-prefix-in-data-value",
            b"\xEF\xBB\xBEx\n\ndata:\xEF\xBB\n\n",
            &[msg("\u{FFFD}")],
            "",
            None,
        ),
        // --- Line terminators.
        case(
            // wpt format-newlines (newline=none).
            "wpt-format-newlines",
            b"data:test\r\ndata\ndata:test\r\n\r",
            &[msg("test\n\ntest")],
            "",
            None,
        ),
        case("cr-only", b"data:a\rdata:b\r\r", &[msg("a\nb")], "", None),
        case("lf-only", b"data:a\ndata:b\n\n", &[msg("a\nb")], "", None),
        case("crlf-only", b"data:a\r\ndata:b\r\n\r\n", &[msg("a\nb")], "", None),
        case(
            "crlf-is-one-terminator",
            b"data:a\r\n\r\n",
            &[msg("a")],
            "",
            None,
        ),
        case(
            "lf-cr-is-two-terminators",
            b"data:a\n\rdata:b\n\n",
            &[msg("a"), msg("b")],
            "",
            None,
        ),
        case(
            "cr-cr-lf",
            b"data:a\r\r\ndata:b\r\r\n",
            &[msg("a"), msg("b")],
            "",
            None,
        ),
        case(
            "mixed-terminators",
            b"data:1\r\ndata:2\rdata:3\n\r\ndata:4\n\r\r\n\n",
            &[msg("1\n2\n3"), msg("4")],
            "",
            None,
        ),
        case(
            // A CR followed by an LF far later is still two terminators.
            "cr-then-text-then-lf",
            b"data:a\rdata:b\n\n",
            &[msg("a\nb")],
            "",
            None,
        ),
        // --- Comments.
        case("wpt-format-comments", comments.as_bytes(), &[msg("1\n2\n3\n4")], "", None),
        case(
            "comment-only-block",
            b":heartbeat\n\n:\n\ndata:x\n\n",
            &[msg("x")],
            "",
            None,
        ),
        case(
            "comment-with-data-inside",
            b":data:x\n\n",
            &[],
            "",
            None,
        ),
        // --- Colon and space handling.
        case("colon-no-space", b"data:x\n\n", &[msg("x")], "", None),
        case("colon-one-space", b"data: x\n\n", &[msg("x")], "", None),
        case("colon-two-spaces", b"data:  x\n\n", &[msg(" x")], "", None),
        case("colon-tab-kept", b"data:\tx\n\n", &[msg("\tx")], "", None),
        case("trailing-space-kept", b"data: x \n\n", &[msg("x ")], "", None),
        case("bare-field-name", b"data\n\n", &[msg("")], "", None),
        case("colon-empty-value", b"data:\n\n", &[msg("")], "", None),
        case("colon-space-empty-value", b"data: \n\n", &[msg("")], "", None),
        case(
            "first-colon-splits",
            b"data: a:b: c\n\n",
            &[msg("a:b: c")],
            "",
            None,
        ),
        case("space-before-colon", b"data : x\n\n", &[], "", None),
        case("leading-space-field", b" data:x\n\n", &[], "", None),
        case(
            // wpt format-leading-space.
            "wpt-format-leading-space",
            b"data:\ttest\rdata: \ndata:test\n\n",
            &[msg("\ttest\n\ntest")],
            "",
            None,
        ),
        case(
            // wpt format-field-parsing.
            "wpt-format-field-parsing",
            b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
            &[msg("\0\n 2\n1\n3\n\n4")],
            "",
            None,
        ),
        // --- Field names are case-sensitive.
        case(
            "field-case",
            b"Data:x\n\nDATA:y\n\nEvent:e\nID:1\nRetry:5\ndata:z\n\n",
            &[msg("z")],
            "",
            None,
        ),
        // --- The data field.
        case(
            "multiple-data-lines",
            b"data:a\ndata:b\ndata:c\n\n",
            &[msg("a\nb\nc")],
            "",
            None,
        ),
        case(
            // wpt format-field-data: "data:" alone dispatches "", two bare "data" lines dispatch "\n".
            "wpt-format-field-data",
            b"data:\n\ndata\ndata\n\ndata:test\n\n",
            &[msg(""), msg("\n"), msg("test")],
            "",
            None,
        ),
        case(
            "trailing-empty-data-line",
            b"data:a\ndata\n\n",
            &[msg("a\n")],
            "",
            None,
        ),
        case(
            "leading-empty-data-line",
            b"data\ndata:a\n\n",
            &[msg("\na")],
            "",
            None,
        ),
        case("nul-in-data-kept", b"data:\0\n\n", &[msg("\0")], "", None),
        case(
            "data-value-lf-like-text",
            b"data:a\\nb\n\n",
            &[msg("a\\nb")],
            "",
            None,
        ),
        // --- The event field.
        case(
            // wpt format-field-event: the type is reset after each dispatch.
            "wpt-format-field-event",
            b"event:test\ndata:x\n\ndata:x\n\n",
            &[("test", "x", ""), msg("x")],
            "",
            None,
        ),
        case(
            // wpt format-field-event-empty.
            "wpt-format-field-event-empty",
            b"event: \ndata:data\n\n",
            &[msg("data")],
            "",
            None,
        ),
        case(
            "event-last-wins",
            b"event:a\nevent:b\ndata:x\n\n",
            &[("b", "x", "")],
            "",
            None,
        ),
        case(
            "event-after-data",
            b"data:x\nevent:late\n\n",
            &[("late", "x", "")],
            "",
            None,
        ),
        case(
            // An empty-data dispatch still resets the event type buffer.
            "event-reset-by-empty-block",
            b"event:foo\n\ndata:x\n\n",
            &[msg("x")],
            "",
            None,
        ),
        case(
            "event-named-message",
            b"event:message\ndata:x\n\n",
            &[msg("x")],
            "",
            None,
        ),
        case("event-only-no-event", b"event:foo\n\n", &[], "", None),
        // --- The id field.
        case(
            "id-persists",
            b"id:1\ndata:a\n\ndata:b\n\n",
            &[("message", "a", "1"), ("message", "b", "1")],
            "1",
            None,
        ),
        case(
            // An id-only block dispatches no event but does set the last event ID.
            "id-only-block",
            b"data:a\n\nid:2\n\ndata:b\n\n",
            &[("message", "a", ""), ("message", "b", "2")],
            "2",
            None,
        ),
        case("id-only-stream", b"id:7\n\n", &[], "7", None),
        case(
            "id-after-data-in-block",
            b"data:x\nid:3\n\n",
            &[("message", "x", "3")],
            "3",
            None,
        ),
        case(
            // wpt format-field-id-3 (reset with a colon).
            "wpt-format-field-id-3-reset-colon",
            b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
            &[("message", "1", "1"), msg("2"), msg("3")],
            "",
            None,
        ),
        case(
            // wpt format-field-id-3 (reset without a colon).
            "wpt-format-field-id-3-reset-bare",
            b"id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n",
            &[("message", "1", "1"), msg("2"), msg("3")],
            "",
            None,
        ),
        case(
            // wpt format-field-id-null: an id containing U+0000 is ignored.
            "wpt-format-field-id-null",
            b"id: \0\0\nretry: 200\ndata: hello\n\n",
            &[msg("hello")],
            "",
            Some(200),
        ),
        case(
            "id-with-nul-keeps-previous",
            b"id:1\ndata:a\n\nid:a\0b\ndata:b\n\nid:\0\ndata:c\n\n",
            &[
                ("message", "a", "1"),
                ("message", "b", "1"),
                ("message", "c", "1"),
            ],
            "1",
            None,
        ),
        case(
            "id-space-kept-after-first",
            b"id:  x \ndata:a\n\n",
            &[("message", "a", " x ")],
            " x ",
            None,
        ),
        case(
            // The id of an unterminated block never reaches the last event ID.
            "id-undispatched-at-end",
            b"id:5\ndata:x\n\nid:6\n",
            &[("message", "x", "5")],
            "5",
            None,
        ),
        case(
            "id-invalid-utf8",
            b"id:\xFF1\ndata:x\n\n",
            &[("message", "x", "\u{FFFD}1")],
            "\u{FFFD}1",
            None,
        ),
        // --- The retry field.
        case(
            // wpt format-field-retry: leading zeros are fine.
            "wpt-format-field-retry",
            b"retry:03000\ndata:x\n\n",
            &[msg("x")],
            "",
            Some(3000),
        ),
        case(
            // wpt format-field-retry-bogus.
            "wpt-format-field-retry-bogus",
            b"retry:3000\nretry:1000x\ndata:x\n\n",
            &[msg("x")],
            "",
            Some(3000),
        ),
        case(
            // wpt format-field-retry-empty.
            "wpt-format-field-retry-empty",
            b"retry:2000\n\nretry\n\nretry:\n\ndata:x\n\n",
            &[msg("x")],
            "",
            Some(2000),
        ),
        case(
            "retry-not-digits",
            b"retry:7\nretry:1a\nretry:-1\nretry:+1\nretry:1.5\nretry:1e3\nretry: 1 \nretry:  1\nretry:\xEF\xBC\x91\n",
            &[],
            "",
            Some(7),
        ),
        case("retry-zero", b"retry:0\n", &[], "", Some(0)),
        case("retry-last-wins", b"retry:1\nretry:2\n", &[], "", Some(2)),
        case(
            "retry-u64-max",
            b"retry:18446744073709551615\n",
            &[],
            "",
            Some(u64::MAX),
        ),
        case(
            "retry-overflow-ignored",
            b"retry:7\nretry:18446744073709551616\nretry:99999999999999999999999999999999\n",
            &[],
            "",
            Some(7),
        ),
        case(
            "retry-many-leading-zeros",
            b"retry:0000000000000000000000000000000042\n",
            &[],
            "",
            Some(42),
        ),
        case(
            // retry takes effect when its line ends, even if the block is never dispatched...
            "retry-without-dispatch",
            b"retry:100\ndata:x\n",
            &[],
            "",
            Some(100),
        ),
        // ...but an unterminated line is not a line.
        case("retry-unterminated-line", b"retry:100", &[], "", None),
        // --- Unknown fields.
        case(
            // wpt format-field-unknown.
            "wpt-format-field-unknown",
            b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
            &[msg("test\n\ntest")],
            "",
            None,
        ),
        case("unknown-only", b"foo:bar\nbaz\n\n", &[], "", None),
        // --- End of stream.
        case(
            "unterminated-event-discarded",
            b"data:a\n\ndata:b\n",
            &[msg("a")],
            "",
            None,
        ),
        case(
            "unterminated-line-discarded",
            b"data:a\n\ndata:b",
            &[msg("a")],
            "",
            None,
        ),
        case(
            "unterminated-cr-line-discarded",
            b"data:a\n\ndata:b\r",
            &[msg("a")],
            "",
            None,
        ),
        case(
            // wpt format-data-before-final-empty-line (newline=none): the id of the unfinished block
            // is not the last event ID either.
            "wpt-format-data-before-final-empty-line",
            b"retry:1000\ndata:test1\n\nid:test\ndata:test2",
            &[msg("test1")],
            "",
            Some(1000),
        ),
        // --- UTF-8.
        case(
            // wpt format-utf-8.
            "wpt-format-utf-8",
            b"data:ok\xE2\x80\xA6\n\n",
            &[msg("ok\u{2026}")],
            "",
            None,
        ),
        case(
            "multibyte",
            b"data:\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\n\n",
            &[msg("\u{E9}\u{20AC}\u{1F600}")],
            "",
            None,
        ),
        case(
            "invalid-bytes",
            b"data:\xFF\xFEx\n\n",
            &[msg("\u{FFFD}\u{FFFD}x")],
            "",
            None,
        ),
        case(
            "truncated-2-byte",
            b"data:\xC3\n\n",
            &[msg("\u{FFFD}")],
            "",
            None,
        ),
        case(
            // A truncated sequence is one U+FFFD (its maximal subpart), and the LF still ends the line.
            "truncated-3-byte-before-lf",
            b"data:\xE2\x82\ndata:ok\n\n",
            &[msg("\u{FFFD}\nok")],
            "",
            None,
        ),
        case(
            "truncated-4-byte",
            b"data:\xF0\x9F\x98x\n\n",
            &[msg("\u{FFFD}x")],
            "",
            None,
        ),
        case(
            "overlong",
            b"data:\xC0\xAF\n\n",
            &[msg("\u{FFFD}\u{FFFD}")],
            "",
            None,
        ),
        case(
            "surrogate",
            b"data:\xED\xA0\x80\n\n",
            &[msg("\u{FFFD}\u{FFFD}\u{FFFD}")],
            "",
            None,
        ),
        case(
            "truncated-before-cr",
            b"data:\xF0\x9F\rdata:\xF0\x9F\x98\x80\r\r",
            &[msg("\u{FFFD}\n\u{1F600}")],
            "",
            None,
        ),
        case(
            "invalid-in-field-name",
            b"dat\xE1:x\n\nd\xFFata:y\n\n",
            &[],
            "",
            None,
        ),
        case(
            "invalid-in-event-type",
            b"event:\xFF\ndata:x\n\n",
            &[("\u{FFFD}", "x", "")],
            "",
            None,
        ),
        case(
            "invalid-colon-continuation",
            b"data:\xE2:x\n\n",
            &[msg("\u{FFFD}:x")],
            "",
            None,
        ),
        // --- A realistic LLM stream.
        case(
            "llm-stream",
            b"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n: ping\r\n\r\nevent: content_block_delta\r\nid: 42\r\ndata: {\"text\":\"Hel\"}\r\n\r\ndata: [DONE]\r\n\r\n",
            &[
                ("message_start", "{\"type\":\"message_start\"}", ""),
                ("content_block_delta", "{\"text\":\"Hel\"}", "42"),
                ("message", "[DONE]", "42"),
            ],
            "42",
            None,
        ),
    ];
    // A BOM before any case changes nothing; without one, the cases' own BOMs are tested as they are.
    let with_bom: Vec<Case> = cases
        .iter()
        .filter(|c| !c.input.starts_with(BOM) && !c.input.starts_with(b"\xEF"))
        .map(|c| Case {
            name: c.name,
            input: [BOM, &c.input[..]].concat(),
            events: c.events.clone(),
            last_event_id: c.last_event_id,
            retry: c.retry,
        })
        .collect();
    cases.extend(with_bom);
    cases
}

/// What a parser produced for a stream: events, last event ID, reconnection time.
type Outcome = (Vec<SseEvent>, String, Option<u64>);

fn run_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut out).unwrap();
    }
    let before_end = out.len();
    parser.end(&mut out);
    assert_eq!(out.len(), before_end, "end() must never dispatch an event");
    (out, parser.last_event_id().to_owned(), parser.retry())
}

fn expected(case: &Case) -> Outcome {
    let events = case
        .events
        .iter()
        .map(|&(event, data, id)| SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.to_owned(),
        })
        .collect();
    (events, case.last_event_id.to_owned(), case.retry)
}

#[test]
fn table_whole_split_and_bytewise() {
    let cases = cases();
    assert!(cases.len() > 100, "the table lost its cases");
    for case in &cases {
        let want = expected(case);
        let input = &case.input[..];
        let name = case.name;
        let bom = if input.starts_with(BOM) { " (BOM)" } else { "" };

        assert_eq!(run_chunks([input]), want, "{name}{bom}: whole");
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(run_chunks([a, b]), want, "{name}{bom}: split at {split}");
        }
        let bytewise: Vec<&[u8]> = input.chunks(1).flat_map(|byte| [byte, &[][..]]).collect();
        assert_eq!(
            run_chunks(bytewise),
            want,
            "{name}{bom}: one byte at a time"
        );
        // The reference parser agrees with the table too.
        assert_eq!(reference(&[input]), want, "{name}{bom}: reference parser");
    }
}

#[test]
fn new_parser_is_empty() {
    let parser = SseParser::new();
    assert_eq!(parser.last_event_id(), "");
    assert_eq!(parser.retry(), None);
}

#[test]
fn events_are_pushed_as_soon_as_complete() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.feed(b"data:a\n", &mut out).unwrap();
    assert!(out.is_empty());
    // The blank line's CR dispatches at once; the LF that may follow is not waited for.
    parser.feed(b"\r", &mut out).unwrap();
    assert_eq!(out.len(), 1);
    parser.feed(b"\ndata:b\n\n", &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].data, "b");
}

#[test]
fn end_discards_and_next_stream_continues() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser
        .feed(
            b"retry:500\nid:1\ndata:a\n\nid:2\nevent:x\ndata:b",
            &mut out,
        )
        .unwrap();
    parser.end(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(parser.last_event_id(), "1");
    assert_eq!(parser.retry(), Some(500));
    // The next stream (a reconnection) has its own BOM and none of the unfinished block.
    parser.feed(b"\xEF\xBB\xBFdata:c\n\n", &mut out).unwrap();
    parser.end(&mut out);
    assert_eq!(
        out[1],
        SseEvent {
            event: "message".into(),
            data: "c".into(),
            id: "1".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// The reference parser: decode the whole input, split it into lines, interpret. Nothing clever.

/// Runs the reference on consecutive streams of one source (each ended), as `SseParser` does with
/// `feed`/`end`: the last event ID and reconnection time carry over, each stream's buffers do not.
fn reference(streams: &[&[u8]]) -> Outcome {
    let mut events = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = None;
    for stream in streams {
        let bytes = stream.strip_prefix(BOM).unwrap_or(stream);
        let text = String::from_utf8_lossy(bytes);
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    lines.push(std::mem::take(&mut line));
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                }
                '\n' => lines.push(std::mem::take(&mut line)),
                c => line.push(c),
            }
        }
        // `line` is left over without a terminator: not a line, discarded.

        let mut data = String::new();
        let mut event_type = String::new();
        let mut id_buffer = last_event_id.clone();
        for line in lines {
            if line.is_empty() {
                last_event_id = id_buffer.clone();
                if data.is_empty() {
                    event_type.clear();
                    continue;
                }
                if data.ends_with('\n') {
                    data.pop();
                }
                events.push(SseEvent {
                    event: if event_type.is_empty() {
                        "message".to_owned()
                    } else {
                        event_type.clone()
                    },
                    data: data.clone(),
                    id: last_event_id.clone(),
                });
                data.clear();
                event_type.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (&line[..], ""),
            };
            match field {
                "event" => event_type = value.to_owned(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => id_buffer = value.to_owned(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    // Too big for u64: ignored, like any other invalid value.
                    retry = value.parse::<u64>().ok().or(retry);
                }
                _ => {}
            }
        }
    }
    (events, last_event_id, retry)
}

#[cfg(not(target_arch = "wasm32"))]
mod property {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Pieces of streams, rich in the bytes that matter. Terminators appear several times so that
    /// blocks end often enough to dispatch.
    const TOKENS: &[&[u8]] = &[
        b"\r",
        b"\r",
        b"\n",
        b"\n",
        b"\r\n",
        b"\n\n",
        b"\r\r",
        b":",
        b":",
        b" ",
        b"data",
        b"data",
        b"data:",
        b"data: ",
        b"id",
        b"id:",
        b"event",
        b"event:",
        b"retry",
        b"retry:",
        b"Data",
        b"0",
        b"7",
        b"42",
        b"18446744073709551615",
        b"99999999999999999999",
        b"x",
        b"a",
        b"\0",
        b"\t",
        b"\xEF\xBB\xBF",
        b"\xEF",
        b"\xBB",
        b"\xBF",
        b"\xFF",
        b"\xC3",
        b"\xC3\xA9",
        b"\xE2\x82\xAC",
        b"\xE2\x82",
        b"\xF0\x9F\x98\x80",
        b"\xF0\x9F",
        b"\xED\xA0\x80",
        b"\xC0\xAF",
    ];

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        (any::<bool>(), vec(0..TOKENS.len(), 0..60)).prop_map(|(bom, picks)| {
            let mut bytes = if bom { BOM.to_vec() } else { Vec::new() };
            for pick in picks {
                bytes.extend_from_slice(TOKENS[pick]);
            }
            bytes
        })
    }

    /// A stream and some cut points into it.
    fn chunked_stream() -> impl Strategy<Value = (Vec<u8>, Vec<Index>)> {
        (stream(), vec(any::<Index>(), 0..12))
    }

    fn cut<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(&bytes[start..point]);
            start = point;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn matches_reference_on_one_stream((bytes, cuts) in chunked_stream()) {
            let want = reference(&[&bytes]);
            prop_assert_eq!(&run_chunks(cut(&bytes, &cuts)), &want, "random chunks");
            prop_assert_eq!(&run_chunks(bytes.chunks(1)), &want, "one byte at a time");
        }

        #[test]
        fn matches_reference_across_streams(streams in vec(chunked_stream(), 1..4)) {
            let inputs: Vec<&[u8]> = streams.iter().map(|(bytes, _)| &bytes[..]).collect();
            let want = reference(&inputs);
            let mut parser = SseParser::new();
            let mut out = Vec::new();
            for (bytes, cuts) in &streams {
                for chunk in cut(bytes, cuts) {
                    parser.feed(chunk, &mut out).unwrap();
                }
                parser.end(&mut out);
            }
            prop_assert_eq!(
                (out, parser.last_event_id().to_owned(), parser.retry()),
                want
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Linear time. A parser that re-scanned its carry-over buffer on every chunk would need about
// 8 MiB × 131,072 chunks / 2 ≈ 5·10^11 byte visits for the 64-byte case below and would not finish;
// a linear one does it in well under a second even unoptimised. No wall-clock assertions.

/// "data:" + `len` bytes of mixed one- to four-byte UTF-8 + "\n\n", and the expected data.
fn big_line(len: usize) -> (Vec<u8>, String) {
    let pattern = "abc\u{E9}\u{20AC}\u{1F600}:x ";
    let mut data = String::with_capacity(len + pattern.len());
    while data.len() < len {
        data.push_str(pattern);
    }
    let mut input = Vec::with_capacity(data.len() + 7);
    input.extend_from_slice(b"data:");
    input.extend_from_slice(data.as_bytes());
    input.extend_from_slice(b"\n\n");
    (input, data)
}

/// A parser without the default 1 MiB bound: these lines are longer, on purpose.
fn unbounded() -> SseParser {
    SseParser::with_max_event_bytes(usize::MAX)
}

fn assert_one_event(chunks: std::slice::Chunks<'_, u8>, data: &str) {
    let mut parser = unbounded();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut out).unwrap();
    }
    parser.end(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data.len(), data.len());
    assert!(out[0].data == data, "the big line came out changed");
}

#[test]
fn linear_8mib_line_in_16kib_chunks() {
    let (input, data) = big_line(8 << 20);
    assert_one_event(input.chunks(16 << 10), &data);
}

#[test]
fn linear_8mib_line_in_64_byte_chunks() {
    let (input, data) = big_line(8 << 20);
    assert_one_event(input.chunks(64), &data);
}

#[test]
fn linear_1mib_line_one_byte_at_a_time() {
    let (input, data) = big_line(1 << 20);
    assert_one_event(input.chunks(1), &data);
}

#[test]
fn linear_many_crlf_lines_in_odd_chunks() {
    // 1 Mi data lines in one event, CRLF-terminated, in 3-byte chunks so that CR and LF are often
    // split; then the same lines as 1 Mi separate events.
    let lines = 1 << 20;
    let one_event: Vec<u8> = [&b"data:x\r\n".repeat(lines)[..], b"\r\n"].concat();
    let mut parser = unbounded();
    let mut out = Vec::new();
    for chunk in one_event.chunks(3) {
        parser.feed(chunk, &mut out).unwrap();
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data.len(), 2 * lines - 1);

    let many_events = b"data:x\r\n\r\n".repeat(lines);
    let mut out = Vec::new();
    for chunk in many_events.chunks(7) {
        parser.feed(chunk, &mut out).unwrap();
    }
    assert_eq!(out.len(), lines);
    assert!(out.iter().all(|e| e.data == "x" && e.event == "message"));
}
