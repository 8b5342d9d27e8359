//! The JS boundary, tested inside wasm (run by tests/run under Node with wasm-bindgen-test-runner):
//! whatever a caller passes — wrong types, hostile objects, random bytes — the result is a JS error or
//! a value, never a panic (which would kill the instance for every caller).
#![cfg(target_arch = "wasm32")]

use js_sys::{Reflect, Uint8Array};
use sturdy_llm::core::rng::Rng;
use sturdy_llm::wasm::{ResilientClient, SseParserRaw};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

fn eval(source: &str) -> JsValue {
    js_sys::eval(source).expect("test fixture evaluates")
}

fn error_name(error: &JsValue) -> String {
    Reflect::get(error, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default()
}

#[wasm_bindgen_test]
fn hostile_option_values_are_rejected_with_type_or_range_errors() {
    let cases = [
        "42",
        "'fast'",
        "[]",
        "() => 1",
        "Symbol('x')",
        "10n",
        "({ timeout: 5 })",
        "({ timeout: { attemptMs: NaN } })",
        "({ timeout: { attemptMs: Infinity } })",
        "({ timeout: { attemptMs: 1e300 } })",
        "({ timeout: { attemptMs: 0 } })",
        "({ retry: { maxRetries: 2.5 } })",
        "({ retry: { retryOn: [99] } })",
        "({ retry: { retryOn: 'all' } })",
        "({ retry: { baseDelayMs: 100, maxDelayMs: 10 } })",
        "({ breaker: { errorThresholdPercentage: 101 } })",
        "({ breaker: { windowMs: 0 } })",
        "({ rateLimit: { requestsPerMinute: -5 } })",
        "({ headers: { a: 1 } })",
        "({ headers: 'x' })",
        "({ get retry() { throw new Error('boom') } })",
        "new Proxy({}, { ownKeys() { throw new Error('boom') } })",
        "({ targets: [{ provider: 'openai', baseUrl: 'https://x/v1', model: 'm', embeddingModel: 5 }] })",
        "({ targets: [{ provider: 'openai', baseUrl: 'https://x/v1', model: 'm', pricing: { embeddingPerMTok: -1 } }] })",
    ];
    for source in cases {
        let value = eval(&format!("({source})"));
        let error = match ResilientClient::new(value) {
            Ok(_) => panic!("{source} was accepted"),
            Err(error) => error,
        };
        let name = error_name(&error);
        assert!(
            name == "TypeError" || name == "RangeError" || name == "Error",
            "{source}: {name}"
        );
    }
}

#[wasm_bindgen_test]
fn valid_options_are_accepted() {
    for source in [
        "undefined",
        "null",
        "({})",
        "({ retry: false, breaker: false, rateLimit: false })",
        "({ timeout: { attemptMs: 1000, totalMs: 5000 }, retry: { jitter: 'decorrelated', retryOn: [500] } })",
        "({ breaker: { scope: 'client' }, rateLimit: { tokensPerMinute: 10000, scope: 'origin' } })",
    ] {
        assert!(ResilientClient::new(eval(&format!("({source})"))).is_ok(), "{source}");
    }
}

#[wasm_bindgen_test]
fn the_sse_parser_survives_random_bytes_and_chunkings() {
    let mut rng = Rng::new(42);
    for _ in 0..200 {
        let mut parser = SseParserRaw::new(JsValue::UNDEFINED).unwrap();
        let len = rng.below(512) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        let mut at = 0;
        let mut events = 0;
        while at < bytes.len() {
            let step = 1 + rng.below(64) as usize;
            let end = (at + step).min(bytes.len());
            let chunk = Uint8Array::from(&bytes[at..end]);
            events += records(parser.feed(&chunk.to_vec()).unwrap());
            at = end;
        }
        events += records(parser.end());
        assert!(events <= len);
    }
}

/// Events in a packed batch (three CR-terminated fields each).
fn records(packed: Option<String>) -> usize {
    packed.map_or(0, |p| p.matches('\r').count() / 3)
}

#[wasm_bindgen_test]
fn sse_events_cross_the_boundary_packed_one_string_per_chunk() {
    let mut parser = SseParserRaw::new(JsValue::UNDEFINED).unwrap();
    let packed = parser
        .feed(b"event: delta\nid: 3\ndata: hi\ndata: there\n\ndata: x\n\n")
        .unwrap();
    // The second event's ID is the first's: packed as a NUL, not copied again.
    assert_eq!(
        packed.as_deref(),
        Some("delta\rhi\nthere\r3\rmessage\rx\r\0\r")
    );
    assert_eq!(parser.feed(b"data: incomplete").unwrap(), None);
    assert_eq!(parser.last_event_id(), "3");
}
