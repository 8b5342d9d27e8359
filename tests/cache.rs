//! The cache core from the outside: the key derivation pinned to values computed independently
//! (Python's hashlib and json), the policy, key and store composed the way the pipeline uses them,
//! and the store checked against a naive reference model on random operation sequences.

use sturdy_llm::core::cache::key::IGNORED_HEADERS;
use sturdy_llm::core::cache::{
    cache_key, canonical_json, request_cacheable, response_storable, serves_stale, sha256,
    storable_headers, Body, Entry, Freshness, KeyParts, MemoryStore, ENTRY_OVERHEAD,
};
use sturdy_llm::core::config::CacheMode;

const CHAT_URL: &str = "https://api.openai.com/v1/chat/completions";

fn entry(size: usize, fresh_until_ms: u64, stale_until_ms: u64) -> Entry {
    Entry {
        status: 200,
        headers: Vec::new(),
        body: vec![b'x'; size.saturating_sub(ENTRY_OVERHEAD)],
        stored_at_ms: 0,
        fresh_until_ms,
        stale_until_ms,
    }
}

#[test]
fn key_derivation_matches_an_independent_implementation() {
    // Python: the framing of the key module's doc, with json.dumps(sort_keys=True,
    // separators=(',', ':'), ensure_ascii=False) as the canonical body, and the headers lowercased,
    // stripped of " \t\r\n", the ignored ones dropped, sorted by name.
    let body = r#"{ "model": "gpt-4o-mini", "temperature": 0,
                    "messages": [ { "role": "user", "content": "H\u00e9llo \"you\"\n" } ] }"#;
    assert_eq!(
        canonical_json(body).as_deref(),
        Some(
            r#"{"messages":[{"content":"Héllo \"you\"\n","role":"user"}],"model":"gpt-4o-mini","temperature":0}"#
        )
    );
    let key = cache_key(&KeyParts {
        method: "POST",
        url: CHAT_URL,
        body: Some(&Body::new(body)),
        headers: &[
            ("OpenAI-Organization", "org-1"),
            ("Authorization", "Bearer sk-test"),
            ("User-Agent", "OpenAI/JS 4.0"),
            ("X-Stainless-Os", "Linux"),
            ("x-goog-api-key", " g "),
        ],
        namespace: "ns",
    });
    assert_eq!(
        key,
        "5c1006ab57a8791f6c853515b2435e5b25de7e5fb6b3475deaf919479002e1fd"
    );
    let key = cache_key(&KeyParts {
        method: "get",
        url: "https://api.openai.com/v1/models",
        body: None,
        headers: &[],
        namespace: "",
    });
    assert_eq!(
        key,
        "18b45e9cd1578865c2e40ba2024fbb49453b2cc1cdb88186f5d921f410d9aa79"
    );
}

#[test]
fn keys_hold_no_secret_or_prompt() {
    let key = cache_key(&KeyParts {
        method: "POST",
        url: CHAT_URL,
        body: Some(&Body::new(
            r#"{"temperature":0,"messages":"secret prompt"}"#,
        )),
        headers: &[("authorization", "Bearer sk-live-123")],
        namespace: "tenant-a",
    });
    assert_eq!(key.len(), 64);
    for clear in ["sk-live", "secret", "prompt", "tenant", "openai"] {
        assert!(!key.contains(clear));
    }
    assert_eq!(sha256::hex(&[0xab]), "ab");
}

/// Issue 14: only `authorization`, `x-api-key` and `api-key` entered the key, so requests differing
/// only in `x-goog-api-key`, `cookie`... shared a cached answer (and one upstream call).
#[test]
fn answers_are_never_shared_across_credentials_in_any_header() {
    let base = ("content-type", "application/json");
    let key = |headers: &[(&str, &str)]| {
        cache_key(&KeyParts {
            method: "POST",
            url: CHAT_URL,
            body: Some(&Body::new(r#"{"temperature":0}"#)),
            headers,
            namespace: "",
        })
    };
    let plain = key(&[base]);
    let with = |name: &str, value: &str| key(&[base, (name, value)]);
    // Credentials in the spellings providers and gateways use, and headers nobody listed.
    for name in [
        "authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "Cookie",
        "proxy-authorization",
        "cf-aig-authorization",
        "ocp-apim-subscription-key",
        "openai-organization",
        "anthropic-beta",
        "accept",
        "baggage",
        "x-made-up",
        "x-stainless", // not the telemetry prefix
    ] {
        assert_ne!(with(name, "a"), plain, "{name} absent");
        assert_ne!(with(name, "a"), with(name, "b"), "{name} values");
    }
    for name in
        IGNORED_HEADERS
            .iter()
            .chain(&["X-Stainless-Retry-Count", "x-stainless-os", "User-Agent"])
    {
        assert_eq!(with(name, "a"), plain, "{name}");
    }
    // Values are compared as `Headers` normalizes them; the order of headers does not matter.
    assert_eq!(with("x-api-key", " \tk\n"), with("x-api-key", "k"));
    assert_ne!(with("x-api-key", "k k"), with("x-api-key", "kk"));
    assert_eq!(
        key(&[("b", "2"), base, ("A", "1")]),
        key(&[("a", "1"), ("b", "2"), base])
    );
}

#[test]
fn json_layout_does_not_matter_but_values_do() {
    let key = |body: &str, api_key: &str| {
        cache_key(&KeyParts {
            method: "POST",
            url: CHAT_URL,
            body: Some(&Body::new(body)),
            headers: &[("x-api-key", api_key)],
            namespace: "",
        })
    };
    assert_eq!(
        key(r#"{"a":1,"b":2}"#, "k1"),
        key("{ \"b\": 2, \"a\": 1 }", "k1")
    );
    assert_eq!(key(r#"{"s":"\u00e9"}"#, "k1"), key(r#"{"s":"é"}"#, "k1"));
    assert_ne!(key(r#"{"a":1,"b":2}"#, "k1"), key(r#"{"a":1,"b":2}"#, "k2"));
    assert_ne!(key(r#"{"a":1,"b":2}"#, "k1"), key(r#"{"a":1,"b":3}"#, "k1"));
    // Numbers are kept as written.
    assert_ne!(key(r#"{"a":1}"#, "k1"), key(r#"{"a":1.0}"#, "k1"));
}

#[test]
fn the_pipeline_flow() {
    // The body is parsed once, for the policy and the key.
    let body = Body::new(r#"{"model":"m","temperature":0.0,"messages":[]}"#);
    assert!(request_cacheable(
        "POST",
        Some(&body),
        CacheMode::Default,
        None
    ));
    assert!(!request_cacheable(
        "POST",
        Some(&body),
        CacheMode::Default,
        Some("no-store")
    ));
    let key = cache_key(&KeyParts {
        method: "POST",
        url: CHAT_URL,
        body: Some(&body),
        headers: &[("authorization", "Bearer sk")],
        namespace: "",
    });
    assert!(response_storable(200, Some("private, max-age=60")));
    assert!(!response_storable(200, Some("private, no-store")));
    let headers = storable_headers(&[
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Set-Cookie".to_owned(), "session=1".to_owned()),
        ("Content-Length".to_owned(), "2".to_owned()),
    ]);
    let stored = Entry {
        status: 200,
        headers,
        body: b"{}".to_vec(),
        stored_at_ms: 1_000,
        fresh_until_ms: 61_000,
        stale_until_ms: 3_601_000,
    };
    let mut store = MemoryStore::new(100, 1 << 20);
    assert!(store.put(key.clone(), stored.clone(), 1_000));
    assert_eq!(store.bytes(), 2 + 12 + 16 + ENTRY_OVERHEAD);
    let (found, freshness) = store.get(&key, 60_999).map(|(e, f)| (e.clone(), f)).unzip();
    assert_eq!(
        (found, freshness),
        (Some(stored.clone()), Some(Freshness::Fresh))
    );
    assert_eq!(
        store.get(&key, 61_000).map(|(_, f)| f),
        Some(Freshness::Stale)
    );
    assert_eq!(
        store.get(&key, 3_600_999).map(|(e, f)| (e.status, f)),
        Some((200, Freshness::Stale))
    );
    assert!(store.get(&key, 3_601_000).is_none());
    assert!(store.is_empty());
}

#[test]
fn a_get_refreshes_recency() {
    let mut store = MemoryStore::new(2, usize::MAX);
    assert!(store.put("a".into(), entry(100, 100, 100), 0));
    assert!(store.put("b".into(), entry(100, 100, 100), 0));
    assert!(store.get("a", 1).is_some());
    assert!(store.put("c".into(), entry(100, 100, 100), 2));
    assert!(store.contains("a") && !store.contains("b") && store.contains("c"));
    // Without the get, insertion order decides.
    assert!(store.put("d".into(), entry(100, 100, 100), 3));
    assert!(!store.contains("a") && store.contains("c") && store.contains("d"));
}

#[test]
fn an_oversized_entry_evicts_nothing() {
    let mut store = MemoryStore::new(10, 500);
    for k in ["a", "b", "c", "d", "e"] {
        assert!(store.put(k.into(), entry(100, 100, 100), 0));
    }
    assert!(!store.put("big".into(), entry(501, 100, 100), 0));
    assert_eq!((store.len(), store.bytes()), (5, 500));
    // Replacing "a" by a larger entry evicts the least recently used others until within.
    assert!(store.put("a".into(), entry(300, 100, 100), 0));
    assert_eq!((store.len(), store.bytes()), (3, 500));
    assert!(store.contains("a") && store.contains("d") && store.contains("e"));
}

#[cfg(not(target_arch = "wasm32"))]
mod property {
    use super::*;
    use proptest::prelude::*;

    const KEYS: u8 = 8;

    #[derive(Debug, Clone)]
    enum Op {
        Put {
            key: u8,
            body: usize,
            headers: usize,
            fresh_in: u64,
            stale_in: u64,
        },
        Get(u8),
        Delete(u8),
        Clear,
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..KEYS, 0..400usize, 0..4usize, 0..60u64, 0..120u64).prop_map(
                |(key, body, headers, fresh_in, stale_in)| Op::Put {
                    key,
                    body,
                    headers,
                    fresh_in,
                    stale_in,
                }
            ),
            4 => (0..KEYS).prop_map(Op::Get),
            1 => (0..KEYS).prop_map(Op::Delete),
            1 => Just(Op::Clear),
            3 => (0..40u64).prop_map(Op::Advance),
        ]
    }

    /// A naive LRU: a vector, least recently used first, scanned on every call.
    struct Model {
        max_entries: usize,
        max_bytes: usize,
        items: Vec<(String, Entry)>,
    }

    impl Model {
        fn bytes(&self) -> usize {
            self.items.iter().map(|(_, e)| e.size()).sum()
        }

        fn get(&mut self, key: &str, now: u64) -> Option<(Entry, Freshness)> {
            let at = self.items.iter().position(|(k, _)| k == key)?;
            let item = self.items.remove(at);
            if now >= item.1.stale_until_ms {
                return None;
            }
            let freshness = if now < item.1.fresh_until_ms {
                Freshness::Fresh
            } else {
                Freshness::Stale
            };
            self.items.push(item.clone());
            Some((item.1, freshness))
        }

        fn put(&mut self, key: String, mut entry: Entry, now: u64) -> bool {
            entry.stale_until_ms = entry.stale_until_ms.max(entry.fresh_until_ms);
            let size = entry.size();
            if self.max_entries == 0 || size > self.max_bytes || now >= entry.stale_until_ms {
                return false;
            }
            self.items
                .retain(|(k, e)| *k != key && e.stale_until_ms > now);
            while self.items.len() >= self.max_entries || self.bytes() + size > self.max_bytes {
                self.items.remove(0);
            }
            self.items.push((key, entry));
            true
        }
    }

    fn key_name(key: u8) -> String {
        format!("key-{key}")
    }

    /// A JSON value with unique object keys (so that member order cannot matter).
    #[derive(Debug, Clone)]
    enum Value {
        Null,
        Bool(bool),
        Number(&'static str),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    /// Characters worth escaping one way or another.
    const CHARS: &[char] = &[
        'a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\u{1}', '\u{1f}', '\u{7f}', 'é', '\u{2028}',
        '\u{fffd}', '😀',
    ];

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(CHARS), 0..5)
            .prop_map(|chars| chars.into_iter().collect())
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            proptest::sample::select(
                &["0", "-0", "1", "1.0", "-2.50", "1e3", "6E-2", "0.0e+0"][..]
            )
            .prop_map(Value::Number),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(text(), inner, 0..5)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// A tiny deterministic generator for layout choices.
    struct Choices(u64);

    impl Choices {
        fn pick(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// `value` as JSON, with whitespace, member order and escapes chosen by `choices`; or, when
    /// `choices` is `None`, in the canonical form described by `canonical_json`'s doc.
    fn render(value: &Value, choices: &mut Option<Choices>, out: &mut String) {
        let space = |choices: &mut Option<Choices>, out: &mut String| {
            if let Some(c) = choices {
                out.push_str([" ", "", "\n\t ", "\r\n", ""][c.pick(5) as usize]);
            }
        };
        space(choices, out);
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => render_string(s, choices, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render(item, choices, out);
                }
                space(choices, out);
                out.push(']');
            }
            Value::Object(members) => {
                let mut members: Vec<&(String, Value)> = members.iter().collect();
                match choices {
                    Some(c) => {
                        for i in (1..members.len()).rev() {
                            members.swap(i, c.pick(i as u64 + 1) as usize);
                        }
                    }
                    None => members.sort_by(|a, b| a.0.cmp(&b.0)),
                }
                out.push('{');
                for (i, (key, item)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    space(choices, out);
                    render_string(key, choices, out);
                    space(choices, out);
                    out.push(':');
                    render(item, choices, out);
                }
                space(choices, out);
                out.push('}');
            }
        }
        space(choices, out);
    }

    fn render_string(s: &str, choices: &mut Option<Choices>, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let must = matches!(c, '"' | '\\' | '\0'..='\u{1f}');
            let style = match choices {
                Some(ch) => ch.pick(3),
                None if must => 1,
                None => 0,
            };
            match (style, c) {
                (0, _) if !must => out.push(c),
                (1, '"') => out.push_str("\\\""),
                (1, '\\') => out.push_str("\\\\"),
                (1, '\u{8}') => out.push_str("\\b"),
                (1, '\u{c}') => out.push_str("\\f"),
                (1, '\n') => out.push_str("\\n"),
                (1, '\r') => out.push_str("\\r"),
                (1, '\t') => out.push_str("\\t"),
                (1, '/') if choices.is_some() => out.push_str("\\/"),
                (1, _) if choices.is_none() => {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)));
                }
                _ => {
                    // \uXXXX, surrogate pairs for astral characters, random hex case.
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let escape = format!("\\u{:04x}", unit);
                        let upper = choices.as_mut().is_some_and(|ch| ch.pick(2) == 0);
                        out.push_str(&if upper {
                            escape.to_uppercase().replace("\\U", "\\u")
                        } else {
                            escape
                        });
                    }
                }
            }
        }
        out.push('"');
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn canonical_json_ignores_layout_order_and_escapes(
            value in value(),
            seeds in (1..u64::MAX, 1..u64::MAX),
        ) {
            let mut canonical = String::new();
            render(&value, &mut None, &mut canonical);
            let mut a = String::new();
            render(&value, &mut Some(Choices(seeds.0)), &mut a);
            let mut b = String::new();
            render(&value, &mut Some(Choices(seeds.1)), &mut b);
            prop_assert_eq!(canonical_json(&a), Some(canonical.clone()), "{}", a);
            prop_assert_eq!(canonical_json(&b), Some(canonical.clone()), "{}", b);
            prop_assert_eq!(canonical_json(&canonical), Some(canonical.clone()));
            let key = |body: &str| cache_key(&KeyParts {
                method: "POST",
                url: CHAT_URL,
                body: Some(&Body::new(body)),
                headers: &[],
                namespace: "",
            });
            prop_assert_eq!(key(&a), key(&b));
        }

        #[test]
        fn canonical_json_is_total(bytes in proptest::collection::vec(
            proptest::sample::select(&b"{}[]\",:\\u0d8e 1.-eE\ntrfalsn"[..]), 0..40)
        ) {
            let text = String::from_utf8_lossy(&bytes);
            if let Some(canonical) = canonical_json(&text) {
                prop_assert_eq!(canonical_json(&canonical), Some(canonical.clone()));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn store_agrees_with_a_naive_lru(
            max_entries in 0..6usize,
            max_bytes in prop_oneof![Just(0usize), Just(usize::MAX), 64..900usize],
            start in 0..1000u64,
            ops in proptest::collection::vec(op(), 0..80),
        ) {
            let mut store = MemoryStore::new(max_entries, max_bytes);
            let bound = if max_bytes == 0 { usize::MAX } else { max_bytes };
            let mut model = Model { max_entries, max_bytes: bound, items: Vec::new() };
            let mut now = start;
            for op in ops {
                match op {
                    Op::Put { key, body, headers, fresh_in, stale_in } => {
                        let entry = Entry {
                            status: 200,
                            headers: (0..headers)
                                .map(|i| (format!("x-h{i}"), "v".repeat(i)))
                                .collect(),
                            body: vec![key; body],
                            stored_at_ms: now,
                            fresh_until_ms: now + fresh_in,
                            stale_until_ms: now + stale_in,
                        };
                        let want = model.put(key_name(key), entry.clone(), now);
                        prop_assert_eq!(store.put(key_name(key), entry, now), want);
                    }
                    Op::Get(key) => {
                        let want = model.get(&key_name(key), now);
                        let got = store.get(&key_name(key), now).map(|(e, f)| (e.clone(), f));
                        prop_assert_eq!(got, want);
                    }
                    Op::Delete(key) => {
                        model.items.retain(|(k, _)| *k != key_name(key));
                        store.delete(&key_name(key));
                    }
                    Op::Clear => {
                        model.items.clear();
                        store.clear();
                    }
                    Op::Advance(ms) => now += ms,
                }
                prop_assert!(store.len() <= max_entries);
                prop_assert!(store.bytes() <= bound);
                prop_assert_eq!(store.len(), model.items.len());
                prop_assert_eq!(store.bytes(), model.bytes());
                prop_assert_eq!(store.is_empty(), model.items.is_empty());
                for key in 0..KEYS {
                    let name = key_name(key);
                    let held = model.items.iter().find(|(k, _)| *k == name);
                    prop_assert_eq!(store.contains(&name), held.is_some(), "{}", name);
                    // peek sees what the model holds, without disturbing either.
                    let alive = held
                        .filter(|(_, e)| now < e.stale_until_ms)
                        .map(|(_, e)| e.clone());
                    prop_assert_eq!(store.peek(&name, now).map(|(e, _)| e.clone()), alive);
                }
            }
        }
    }
}

#[test]
fn a_stale_entry_answers_only_when_the_upstream_failed_and_the_caller_did_not_abort() {
    for (status, aborted, serves) in [
        (Some(503), false, true),
        (Some(500), false, true),
        (None, false, true), // no answer: a network failure, an open breaker, a timeout
        (Some(200), false, false),
        (Some(404), false, false),
        (Some(429), false, false),
        (None, true, false), // the caller's abort is not the upstream failing
    ] {
        assert_eq!(
            serves_stale(status, aborted),
            serves,
            "{status:?} aborted={aborted}"
        );
    }
}
