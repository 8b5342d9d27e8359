//! Upstream bytes the core reads as JSON (stream events, usage, completions, embeddings, error bodies,
//! cache keys) never panic it, an embeddings answer taken is one finite vector per input, all of one length, and the canonical form used in cache keys is a fixed point: canonicalizing it again
//! changes nothing, and it parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sturdy_llm::core::cache::canonical_json;
use sturdy_llm::core::json::Json;
use sturdy_llm::core::llm::embed_answer::parse_embeddings;
use sturdy_llm::core::llm::{classify, error_message, parse_completion, Provider};
use sturdy_llm::core::stream::StreamMonitor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = Json::parse(&text);
    if let Some(canonical) = canonical_json(&text) {
        assert!(
            parsed.is_some(),
            "canonical form of something that does not parse"
        );
        assert_eq!(
            canonical_json(&canonical).as_deref(),
            Some(canonical.as_str())
        );
        assert!(Json::parse(&canonical).is_some());
    }
    // The stream monitor reads the same bytes as an event's data, under both dialects' event names.
    let mut monitor = StreamMonitor::new();
    for event_type in ["message", "content_block_delta", "message_start", "error"] {
        monitor.observe(event_type, &text);
    }
    let _ = monitor.complete();
    // The provider adapters read the same bytes as a completion or an error body.
    for provider in [Provider::OpenAi, Provider::Anthropic] {
        let _ = parse_completion(provider, &text);
    }
    for status in [400, 401, 404, 429, 500, 529] {
        let _ = classify(status, &text);
    }
    let _ = error_message(&text);
    for (count, dims) in [(1, None), (2, None), (3, Some(2))] {
        if let Ok(answer) = parse_embeddings(&text, count, dims) {
            assert_eq!(answer.vectors.len(), count);
            let width = dims.unwrap_or(answer.vectors[0].len());
            assert!(answer
                .vectors
                .iter()
                .all(|v| v.len() == width && width > 0 && v.iter().all(|x| x.is_finite())));
        }
    }
});
