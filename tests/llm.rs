//! Scenarios for the LLM layer as a caller uses it: build a request for either provider, read the
//! answer or classify the failure, and keep budgets and costs straight across concurrent calls,
//! midnight and month ends. Property tests check the two guarantees that examples cannot: request
//! bodies carry any text exactly, and no sequence of reservations gets past a cap.

use sturdy_llm::core::json::Json;
use sturdy_llm::core::llm::budget::MAX_USERS as MAX_LEDGER_USERS;
use sturdy_llm::core::llm::charge::{
    self, reported_or_estimated, Charge, Settled, DEFAULT_MAX_OUTPUT,
};
use sturdy_llm::core::llm::{
    build_request, classify, cost_micros, error_message, estimate_tokens, parse_completion,
    BudgetConfig, Cap, Chain, ChatParams, CostTally, ErrorClass, Exceeded, Ledger, Message,
    Outcome, Part, Pricing, Provider, Role, Spend, Step, Tool, ToolCall, Usage, MAX_TARGETS,
};
use sturdy_llm::core::resume::{Delivered, Failure, Recoveries, Resume};
use sturdy_llm::core::stream::{Delta, StreamMonitor};

const DAY_MS: u64 = 86_400_000;
/// 2026-01-31T23:59:59Z.
const JAN_31_LAST_SECOND: u64 = 1_769_903_999_000;

fn msg(role: Role, content: &str) -> Message {
    Message::text(role, content)
}

/// A message's text (the messages here have one text part).
fn content(message: &Message) -> &str {
    match message.content.as_slice() {
        [Part::Text(text)] => text,
        _ => "",
    }
}

/// A text-only stream delta.
fn text_delta(text: &str) -> Delta {
    Delta {
        text: text.to_string(),
        tool_calls: Vec::new(),
    }
}

fn daily(cap: u64) -> Ledger {
    Ledger::new(BudgetConfig {
        per_user_daily_tokens: Some(cap),
        ..BudgetConfig::default()
    })
}

#[test]
fn hundred_concurrent_reservations_admit_exactly_ten() {
    let mut ledger = daily(1000);
    let now = JAN_31_LAST_SECOND - 3_600_000;
    // All reserved before any settles: the calls are in flight together.
    let results: Vec<_> = (0..100)
        .map(|_| ledger.reserve("alice", 100, 0, now))
        .collect();
    let admitted: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(admitted.len(), 10);
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            refused,
            &Exceeded {
                cap: Cap::UserDailyTokens,
                limit: 1000,
                remaining: 0,
                needed: 100
            }
        );
    }
    assert_eq!(ledger.spent("alice", now), (1000, 1000, 0));
    assert_eq!(
        ledger.usage_per_mille("alice", now),
        Some((Cap::UserDailyTokens, 1000))
    );

    let mut holds = results.into_iter().filter_map(Result::ok);
    // Settling with less than held frees the difference...
    let first = holds.next().expect("ten holds");
    ledger.settle(first, 40, 0);
    assert_eq!(ledger.spent("alice", now).0, 940);
    assert!(ledger.reserve("alice", 61, 0, now).is_err());
    let small = ledger.reserve("alice", 60, 0, now).expect("60 fit");
    // ...and releasing frees the whole hold.
    let second = holds.next().expect("ten holds");
    ledger.release(second);
    assert_eq!(ledger.spent("alice", now).0, 900);
    let refill = ledger.reserve("alice", 100, 0, now).expect("100 fit again");
    assert!(ledger.reserve("alice", 1, 0, now).is_err());
    ledger.release(small);
    ledger.release(refill);
    for hold in holds {
        ledger.settle(hold, 100, 0);
    }
    assert_eq!(ledger.spent("alice", now), (840, 840, 0));
}

#[test]
fn day_and_month_roll_over_by_utc_date() {
    let mut ledger = Ledger::new(BudgetConfig {
        per_user_daily_tokens: Some(1000),
        per_user_monthly_tokens: Some(3000),
        daily_cost_micros: Some(5_000),
        ..BudgetConfig::default()
    });
    // January 29-31: a full day each, the month fills up.
    for day in (0..3).rev() {
        let now = JAN_31_LAST_SECOND - day * DAY_MS;
        let hold = ledger.reserve("bob", 1000, 5_000, now).expect("fits");
        ledger.settle(hold, 1000, 5_000);
    }
    let err = ledger
        .reserve("bob", 1, 0, JAN_31_LAST_SECOND)
        .expect_err("January is full");
    assert_eq!((err.cap, err.remaining), (Cap::UserDailyTokens, 0));
    assert_eq!(ledger.spent("bob", JAN_31_LAST_SECOND), (1000, 3000, 5_000));

    // One second later it is 2026-02-01: a new day and a new month.
    let feb_1 = JAN_31_LAST_SECOND + 1_000;
    assert_eq!(ledger.spent("bob", feb_1), (0, 0, 0));
    let hold = ledger.reserve("bob", 1000, 5_000, feb_1).expect("new day");
    assert_eq!(
        ledger.usage_per_mille("bob", feb_1),
        Some((Cap::UserDailyTokens, 1000))
    );
    ledger.settle(hold, 700, 1_000);
    assert_eq!(ledger.spent("bob", feb_1), (700, 700, 1_000));
    // 2026-02-02: the day resets, the month keeps February's spend.
    assert_eq!(ledger.spent("bob", feb_1 + DAY_MS), (0, 700, 0));
}

#[test]
fn a_full_ledger_forgets_light_users_without_reopening_anyones_cap() {
    // Regression: within a day the ledger kept a row for every user id it saw, without bound.
    let mut ledger = daily(1000);
    let now = JAN_31_LAST_SECOND - DAY_MS;
    let spend = |ledger: &mut Ledger, user: &str, tokens: u64| {
        let hold = ledger
            .reserve(user, tokens, 0, now)
            .expect("within the cap");
        ledger.settle(hold, tokens, 0);
    };
    spend(&mut ledger, "heavy", 900);
    let pending = ledger
        .reserve("pending", 5, 0, now)
        .expect("within the cap");
    let mut most = 0;
    for i in 0..100_000 {
        spend(&mut ledger, &format!("light-{i}"), 10);
        most = most.max(ledger.users());
    }
    assert_eq!(most, MAX_LEDGER_USERS);
    // Evicted light users count as having spent the floor, at least what they spent; the heavy
    // user was kept as is.
    let floor = ledger.spent("light-0", now).0;
    assert!((10..900).contains(&floor), "floor {floor}");
    assert!(ledger.reserve("light-0", 1001 - floor, 0, now).is_err());
    assert_eq!(ledger.spent("heavy", now).0, 900);
    assert!(ledger.reserve("heavy", 101, 0, now).is_err());
    // A hold outlives its row: used beyond what was held, it is charged on a row from the floor.
    assert_eq!(ledger.spent("pending", now).0, floor);
    ledger.settle(pending, 300, 0);
    assert_eq!(ledger.spent("pending", now).0, floor + 295);
    // A new user starts at the floor, and the floor ends with the day.
    assert_eq!(ledger.spent("newcomer", now).0, floor);
    assert_eq!(ledger.spent("newcomer", now + DAY_MS).0, 0);
}

#[test]
fn long_user_ids_are_kept_in_bounded_bytes_by_the_ledger_and_the_tally() {
    // Regression: 6k user ids of 16 KB took 174 MB and a 94 MB stats() report.
    let mut ledger = daily(1000);
    let mut tally = CostTally::new();
    let id = |i: usize| format!("{}{i}", "u".repeat(16 * 1024));
    for i in 0..1_000 {
        let hold = ledger.reserve(&id(i), 600, 0, JAN_31_LAST_SECOND).unwrap();
        ledger.settle(hold, 600, 0);
        let usage = Usage {
            input_tokens: 1,
            output_tokens: 1,
            ..Usage::default()
        };
        tally.add(
            "m",
            &id(i),
            &Spend {
                usage,
                micros: 1,
                saved_micros: 0,
            },
        );
    }
    // Still one row per user: ids that differ only at the end are not merged.
    assert_eq!(ledger.users(), 1_000);
    assert!(ledger.reserve(&id(7), 600, 0, JAN_31_LAST_SECOND).is_err());
    let users = tally.by_user();
    assert_eq!(users.len(), 1_000);
    assert!(users
        .iter()
        .all(|(user, ..)| user.len() <= 138 && user.starts_with("uuuu")));
}

#[test]
fn a_hold_from_before_midnight_settles_against_its_own_day() {
    let mut ledger = Ledger::new(BudgetConfig {
        per_user_daily_tokens: Some(1000),
        per_user_monthly_tokens: Some(10_000),
        ..BudgetConfig::default()
    });
    let jan_30_late = JAN_31_LAST_SECOND - DAY_MS;
    let hold = ledger.reserve("dan", 900, 0, jan_30_late).expect("fits");
    // Past midnight (Jan 31), a new reservation sees an empty day.
    let today = ledger
        .reserve("dan", 1000, 0, jan_30_late + 2_000)
        .expect("new day");
    // The old call reports more than it held: only the month (shared) is charged the extra.
    ledger.settle(hold, 1200, 0);
    assert_eq!(ledger.spent("dan", jan_30_late + 2_000), (1000, 2200, 0));
    ledger.release(today);
    assert_eq!(ledger.spent("dan", jan_30_late + 2_000), (0, 1200, 0));
}

#[test]
fn one_chat_two_providers_then_settle_and_tally() {
    let messages = [
        msg(Role::System, "You are terse."),
        msg(Role::User, "Name a colour."),
    ];
    let params = ChatParams {
        model: "claude-sonnet-4-5",
        messages: &messages,
        max_tokens: Some(256),
        temperature_milli: Some(200),
        user: Some("erin"),
        stream: false,
        ..ChatParams::default()
    };
    let pricing = Pricing {
        input_micros_per_mtok: 3_000_000,
        output_micros_per_mtok: 15_000_000,
        ..Pricing::default()
    };
    let mut ledger = Ledger::new(BudgetConfig {
        per_request_tokens: Some(4096),
        per_user_daily_tokens: Some(100_000),
        daily_cost_micros: Some(1_000_000),
        ..BudgetConfig::default()
    });
    let mut tally = CostTally::new();
    let now = JAN_31_LAST_SECOND;

    // Reserve the worst case: estimated input + all of max_tokens.
    let estimate = estimate_tokens(&messages, &[]);
    assert_eq!(estimate, 28 / 4 + 2 * 4);
    let worst = Usage {
        input_tokens: estimate,
        output_tokens: 256,
        ..Usage::default()
    };
    let worst_cost = cost_micros(&pricing, &worst);
    assert_eq!(worst_cost, 3_885); // 15 × $3 + 256 × $15 per Mtok
    let hold = ledger
        .reserve("erin", estimate + 256, worst_cost, now)
        .expect("within budget");

    // The primary (Anthropic) is overloaded: retryable, and another target may serve it.
    let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
    let class = classify(529, overloaded);
    assert_eq!(class, ErrorClass::Overloaded);
    assert!(class.retryable() && class.falls_back());
    assert_eq!(error_message(overloaded).as_deref(), Some("Overloaded"));
    let request = build_request(Provider::Anthropic, &params, Some("sk-ant-x"));
    let body = Json::parse(&request.body).expect("valid JSON");
    assert_eq!(
        body.get("system").and_then(Json::as_str),
        Some("You are terse.")
    );

    // The fallback (OpenAI) answers.
    let params = ChatParams {
        model: "gpt-4o-mini",
        ..params
    };
    let request = build_request(Provider::OpenAi, &params, Some("sk-x"));
    assert_eq!(request.path, "/v1/chat/completions");
    let body = Json::parse(&request.body).expect("valid JSON");
    assert_eq!(body.get("temperature"), Some(&Json::Number("0.2")));
    assert_eq!(body.get("user").and_then(Json::as_str), Some("erin"));
    let answer = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1769903990,"model":"gpt-4o-mini-2024-07-18",
        "choices":[{"index":0,"message":{"role":"assistant","content":"Teal.","refusal":null},"logprobs":null,"finish_reason":"stop"}],
        "usage":{"prompt_tokens":22,"completion_tokens":3,"total_tokens":25}}"#;
    let completion = parse_completion(Provider::OpenAi, answer).expect("a completion");
    assert_eq!(
        (completion.text.as_str(), completion.finish_reason.as_str()),
        ("Teal.", "stop")
    );
    let mini = Pricing {
        input_micros_per_mtok: 150_000,
        output_micros_per_mtok: 600_000,
        ..Pricing::default()
    };
    let real_cost = cost_micros(&mini, &completion.usage);
    assert_eq!(real_cost, 6); // 3.3 + 1.8 = 5.1 µ$, rounded up
    ledger.settle(hold, 25, real_cost);
    assert_eq!(ledger.spent("erin", now), (25, 25, 6));
    let spend = Spend {
        usage: completion.usage,
        micros: real_cost,
        saved_micros: 0,
    };
    tally.add("gpt-4o-mini", "erin", &spend);
    assert_eq!(tally.total(), spend);
    assert_eq!(tally.total().micros, 6);
    assert_eq!(tally.by_user()[0].0, "erin");

    // A request over the per-request cap is refused before anything is sent.
    let err = ledger
        .reserve("erin", 5000, 0, now)
        .expect_err("per request");
    assert_eq!((err.cap, err.limit), (Cap::PerRequestTokens, 4096));
}

#[test]
fn streamed_answers_settle_from_the_monitor_usage() {
    let messages = [msg(Role::User, "Hi")];
    let params = ChatParams {
        model: "claude-haiku-4-5",
        messages: &messages,
        max_tokens: None,
        temperature_milli: None,
        user: None,
        stream: true,
        ..ChatParams::default()
    };
    let request = build_request(Provider::Anthropic, &params, None);
    let body = Json::parse(&request.body).expect("valid JSON");
    assert_eq!(body.get("stream"), Some(&Json::Bool(true)));
    assert_eq!(body.get("max_tokens").and_then(Json::as_u64), Some(1024));

    let mut ledger = daily(2000);
    let hold = ledger
        .reserve("frank", estimate_tokens(&messages, &[]) + 1024, 0, 0)
        .expect("fits");
    let mut monitor = StreamMonitor::new();
    for (event, data) in [
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"usage":{"input_tokens":8,"output_tokens":1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello!"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ] {
        monitor.observe(event, data);
    }
    assert!(monitor.complete());
    let usage = monitor.usage();
    ledger.settle(hold, usage.input_tokens + usage.output_tokens, 0);
    assert_eq!(ledger.spent("frank", 0).0, 13);
}

#[test]
fn errors_decide_retry_and_fallback() {
    let openai = |kind: &str, code: &str, message: &str| {
        format!(
            r#"{{"error":{{"message":"{message}","type":"{kind}","param":null,"code":"{code}"}}}}"#
        )
    };
    let cases = [
        (
            429,
            openai("insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."),
            ErrorClass::QuotaExhausted,
            false,
            true,
        ),
        (
            429,
            openai("requests", "rate_limit_exceeded", "Rate limit reached for requests"),
            ErrorClass::RateLimited,
            true,
            true,
        ),
        (
            400,
            openai("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 128000 tokens."),
            ErrorClass::ContextLength,
            false,
            true,
        ),
        (
            401,
            openai("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
            ErrorClass::Auth,
            false,
            false,
        ),
        (
            404,
            openai("invalid_request_error", "model_not_found", "The model `x` does not exist."),
            ErrorClass::NotFound,
            false,
            true,
        ),
        (
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate between \"user\" and \"assistant\""}}"#.to_string(),
            ErrorClass::BadRequest,
            false,
            false,
        ),
        (
            500,
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#.to_string(),
            ErrorClass::Server,
            true,
            true,
        ),
        (502, "<html><body>502 Bad Gateway</body></html>".to_string(), ErrorClass::Server, true, true),
    ];
    for (status, body, class, retry, fallback) in cases {
        let got = classify(status, &body);
        assert_eq!(got, class, "{status} {body}");
        assert_eq!(
            (got.retryable(), got.falls_back()),
            (retry, fallback),
            "{body}"
        );
    }
    assert_eq!(
        error_message(r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate between \"user\" and \"assistant\""}}"#).as_deref(),
        Some(r#"messages: roles must alternate between "user" and "assistant""#)
    );
}

/// Walks a chain whose attempts fail with `outcomes` in turn (each failure named after its target):
/// the targets tried, the fallbacks announced as `(from, to)`, and how the call ended.
fn walk(targets: usize, outcomes: &[Outcome]) -> (Vec<usize>, Vec<(usize, usize)>, Step<String>) {
    let mut chain = Chain::new(targets).expect("targets");
    let (mut tried, mut fallbacks) = (Vec::new(), Vec::new());
    let mut step = chain.start();
    while let Step::Try { index, from } = step {
        tried.push(index);
        if let Some(from) = from {
            assert_eq!(
                chain.failures().len(),
                index,
                "the reason is the last failure"
            );
            fallbacks.push((from, index));
        }
        step = chain.failed(outcomes[index], format!("t{index}"));
    }
    (tried, fallbacks, step)
}

fn answered(status: u16, body: &str) -> Outcome {
    Outcome::ErrorStatus(classify(status, body))
}

#[test]
fn the_chain_tries_targets_in_order_and_lists_every_failure() {
    let outage = answered(503, "");
    let (tried, fallbacks, end) = walk(3, &[outage, Outcome::Unavailable, outage]);
    assert_eq!(tried, [0, 1, 2]);
    assert_eq!(fallbacks, [(0, 1), (1, 2)]);
    assert_eq!(
        end,
        Step::AllFailed(vec!["t0".into(), "t1".into(), "t2".into()])
    );
    // An answer ends the walk where it lands: the caller simply stops asking.
    let chain = Chain::<String>::new(3).expect("targets");
    assert_eq!(
        chain.start(),
        Step::Try {
            index: 0,
            from: None
        }
    );
    assert!(chain.failures().is_empty());
    assert!(Chain::<String>::new(0).is_none(), "no targets, no chain");
}

#[test]
fn a_chain_of_one_target_ends_with_that_targets_own_error() {
    // A 429 from the only target is that 429, not a list of one wrapping it.
    let (tried, fallbacks, end) = walk(1, &[answered(429, "")]);
    assert_eq!((tried, fallbacks), (vec![0], vec![]));
    assert_eq!(end, Step::Stop("t0".into()));
    let (_, _, end) = walk(1, &[Outcome::Unavailable]);
    assert_eq!(end, Step::Stop("t0".into()));
    let (_, _, end) = walk(1, &[answered(401, "")]);
    assert_eq!(end, Step::Stop("t0".into()), "a stop is its error as it is");
}

#[test]
fn the_chain_moves_on_after_outages_open_breakers_quota_context_and_refusals() {
    let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    let context = r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
    let refused = r#"{"error":{"message":"Your request was rejected by the safety system.","type":"invalid_request_error","code":"content_policy_violation"}}"#;
    let moving_on = [
        ("an outage", answered(503, "")),
        ("an overload", answered(529, "")),
        ("a rate limit of its own", answered(429, "")),
        ("a missing model", answered(404, "")),
        ("an exhausted quota", answered(429, quota)),
        ("a context too long", answered(400, context)),
        ("a refused prompt", answered(400, refused)),
        (
            "an open breaker, a network failure, a timeout, an unreadable or oversized answer",
            Outcome::Unavailable,
        ),
    ];
    for (what, outcome) in moving_on {
        assert!(outcome.falls_back(), "{what}");
        let (tried, fallbacks, end) = walk(2, &[outcome, Outcome::Unavailable]);
        assert_eq!((tried, fallbacks), (vec![0, 1], vec![(0, 1)]), "{what}");
        assert_eq!(
            end,
            Step::AllFailed(vec!["t0".into(), "t1".into()]),
            "{what}"
        );
    }
}

#[test]
fn the_chain_stops_on_auth_malformed_requests_aborts_and_the_client_limit() {
    let malformed = r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#;
    let stopping = [
        ("a 401", answered(401, "")),
        ("a 403", answered(403, "")),
        ("a malformed request", answered(400, malformed)),
        ("the caller's abort", Outcome::Aborted),
        ("the client-wide rate limit", Outcome::ClientLimited),
        ("a request that cannot be prepared", Outcome::Unprepared),
    ];
    for (what, outcome) in stopping {
        assert!(!outcome.falls_back(), "{what}");
        // First target: the call ends with that target's own error, nothing else is asked.
        let (tried, fallbacks, end) =
            walk(3, &[outcome, Outcome::Unavailable, Outcome::Unavailable]);
        assert_eq!((tried, fallbacks), (vec![0], vec![]), "{what}");
        assert_eq!(end, Step::Stop("t0".into()), "{what}");
        // After a fallback: still that target's own error, not a list.
        let (tried, _, end) = walk(3, &[Outcome::Unavailable, outcome, Outcome::Unavailable]);
        assert_eq!(tried, [0, 1], "{what}");
        assert_eq!(end, Step::Stop("t1".into()), "{what}");
    }
}

#[test]
fn the_chain_tries_at_most_five_targets() {
    let outages = [Outcome::Unavailable; 7];
    let (tried, fallbacks, end) = walk(7, &outages);
    assert_eq!(MAX_TARGETS, 5);
    assert_eq!(tried, [0, 1, 2, 3, 4], "the first five, in order");
    assert_eq!(fallbacks.len(), 4);
    let Step::AllFailed(failures) = end else {
        panic!("every target tried failed: {end:?}");
    };
    assert_eq!(
        failures,
        ["t0", "t1", "t2", "t3", "t4"],
        "one failure per target tried"
    );
    let (tried, _, _) = walk(usize::MAX, &outages);
    assert_eq!(tried.len(), MAX_TARGETS, "however many are configured");
}

#[test]
fn a_chat_holds_its_worst_case_at_the_dearest_target_it_may_reach() {
    let messages = [msg(Role::User, "Name a colour.")];
    let input = estimate_tokens(&messages, &[]);
    let cheap = Pricing {
        input_micros_per_mtok: 1_000_000,
        output_micros_per_mtok: 1_000_000,
        ..Pricing::default()
    };
    let dear = Pricing {
        input_micros_per_mtok: 1_000_000,
        output_micros_per_mtok: 10_000_000,
        ..Pricing::default()
    };
    let mut ledger = Ledger::new(BudgetConfig {
        per_user_daily_tokens: Some(10_000),
        daily_cost_micros: Some(1_000_000),
        ..BudgetConfig::default()
    });
    let hold = charge::hold(
        &mut ledger,
        "ann",
        (estimate_tokens(&messages, &[]), Some(100), false),
        [&cheap, &dear],
        0,
    )
    .expect("fits");
    assert_eq!(hold.tokens(), input + 100);
    let worst = Usage {
        input_tokens: input,
        output_tokens: 100,
        ..Usage::default()
    };
    assert_eq!(
        hold.cost_micros(),
        cost_micros(&dear, &worst),
        "the dearer price"
    );
    // No maxTokens: the default output is held.
    let default = charge::hold(
        &mut ledger,
        "ann",
        (estimate_tokens(&messages, &[]), None, false),
        [&cheap],
        0,
    )
    .expect("fits");
    assert_eq!(default.tokens(), input + DEFAULT_MAX_OUTPUT);
    assert_eq!(
        ledger.spent("ann", 0).0,
        2 * input + 100 + DEFAULT_MAX_OUTPUT
    );
    // Past a cap: refused with that cap, nothing held.
    let err = charge::hold(
        &mut ledger,
        "ann",
        (estimate_tokens(&messages, &[]), Some(1 << 24), false),
        [&cheap],
        0,
    )
    .expect_err("past the daily cap");
    assert_eq!(err.cap, Cap::UserDailyTokens);
    assert_eq!(
        ledger.spent("ann", 0).0,
        2 * input + 100 + DEFAULT_MAX_OUTPUT
    );
    // A failed call gives its hold back.
    charge::release(Some(&mut ledger), Some(default));
    charge::release(Some(&mut ledger), Some(hold));
    assert_eq!(ledger.spent("ann", 0), (0, 0, 0));
    charge::release(None, None);
}

#[test]
fn a_settled_chat_pays_what_it_used_and_reports_each_threshold_once() {
    let messages = [msg(Role::User, "x")];
    let pricing = Pricing {
        input_micros_per_mtok: 0,
        output_micros_per_mtok: 1_000_000,
        ..Pricing::default()
    };
    let mut ledger = daily(2000);
    let mut tally = CostTally::new();
    let answer = |output_tokens| Charge {
        user: "bo",
        model: "m",
        pricing: &pricing,
        usage: Usage {
            input_tokens: 0,
            output_tokens,
            ..Usage::default()
        },
        free: false,
    };
    let call = |ledger: &mut Ledger, tally: &mut CostTally, used| {
        let hold = charge::hold(
            ledger,
            "bo",
            (estimate_tokens(&messages, &[]), Some(100), false),
            [&pricing],
            0,
        );
        charge::settle(
            Some(ledger),
            tally,
            Some(hold.expect("fits")),
            answer(used),
            0,
        )
    };
    // 1400 of 2000 (more than the 105 held: usage may overshoot a hold): under both marks.
    let settled = call(&mut ledger, &mut tally, 1400);
    assert_eq!(
        settled,
        Settled {
            cost_micros: 1400,
            crossed: None
        }
    );
    assert_eq!(
        ledger.spent("bo", 0).0,
        1400,
        "the hold replaced by the real usage"
    );
    // 70% -> 85% crosses 80%, once; 85% -> 90% crosses nothing; 90% -> 100% crosses 100%.
    assert_eq!(
        call(&mut ledger, &mut tally, 300).crossed,
        Some((Cap::UserDailyTokens, 850))
    );
    assert_eq!(call(&mut ledger, &mut tally, 100).crossed, None);
    assert_eq!(
        call(&mut ledger, &mut tally, 200).crossed,
        Some((Cap::UserDailyTokens, 1000))
    );
    assert_eq!(tally.total().micros, 2000, "every paid answer tallied");
    // Without a budget the cost is still tallied.
    assert_eq!(
        charge::settle(None, &mut tally, None, answer(5), 0).cost_micros,
        5
    );
    assert_eq!(tally.by_model()[0].1.micros, 2005);
}
#[test]
fn a_free_answer_costs_nothing_and_gives_its_hold_back() {
    let messages = [msg(Role::User, "x")];
    let pricing = Pricing {
        input_micros_per_mtok: 1_000_000,
        output_micros_per_mtok: 1_000_000,
        ..Pricing::default()
    };
    let mut ledger = daily(1000);
    let mut tally = CostTally::new();
    let hold = charge::hold(
        &mut ledger,
        "cy",
        (estimate_tokens(&messages, &[]), Some(500), false),
        [&pricing],
        0,
    )
    .ok();
    assert!(ledger.spent("cy", 0).0 > 500);
    let cached = Charge {
        user: "cy",
        model: "m",
        pricing: &pricing,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 400,
            ..Usage::default()
        },
        free: true,
    };
    let settled = charge::settle(Some(&mut ledger), &mut tally, hold, cached, 0);
    assert_eq!(
        settled,
        Settled {
            cost_micros: 0,
            crossed: None
        }
    );
    assert_eq!(ledger.spent("cy", 0), (0, 0, 0));
    assert_eq!(tally.total().micros, 0);
    assert!(tally.by_user().is_empty(), "nothing tallied");
}

#[test]
fn a_stream_without_usage_is_charged_an_estimate() {
    let messages = [msg(Role::User, "Name a colour.")];
    let reported = Usage {
        input_tokens: 8,
        output_tokens: 5,
        ..Usage::default()
    };
    assert_eq!(
        reported_or_estimated(reported, estimate_tokens(&messages, &[]), ("Teal.", &[])),
        reported
    );
    assert_eq!(
        reported_or_estimated(
            Usage::default(),
            estimate_tokens(&messages, &[]),
            ("Teal, é.", &[]),
        ),
        Usage {
            input_tokens: estimate_tokens(&messages, &[]),
            output_tokens: 2, // 7 characters, a token per 4, rounded up,
            ..Usage::default()
        }
    );
}

/// Feeds a resumed stream `deltas`: the text handed out, or `None` once it diverged.
fn resumed(delivered: &str, deltas: &[&str]) -> (Resume, Option<String>) {
    let mut resume = Resume::after(Delivered {
        text: delivered.to_string(),
        tool_calls: Vec::new(),
    });
    let mut out = Some(String::new());
    for delta in deltas {
        match (resume.fresh(&text_delta(delta)), &mut out) {
            (Some(fresh), Some(out)) => out.push_str(&fresh.text),
            _ => out = None,
        }
    }
    (resume, out)
}

#[test]
fn a_resumed_stream_hands_out_only_what_follows_the_text_delivered() {
    // Deltas split anywhere across the end of the text already delivered (here inside "é").
    let (resume, out) = resumed("Hello, wor", &["Hel", "lo, w", "orld", "! Bye"]);
    assert_eq!(out.as_deref(), Some("ld! Bye"));
    assert!(!resume.catching_up() && !resume.diverged());
    assert_eq!(
        resume.partial("Hello, world! Bye", &[]).0,
        "Hello, world! Bye"
    );
    let (_, out) = resumed("café", &["caf", "é au lait"]);
    assert_eq!(out.as_deref(), Some(" au lait"));
    // While catching up, nothing is handed out and the caller has the text delivered before.
    let (resume, out) = resumed("Hello, wor", &["Hello"]);
    assert_eq!(out.as_deref(), Some(""));
    assert!(resume.started() && resume.catching_up());
    assert_eq!(resume.partial("Hello", &[]).0, "Hello, wor");
    // A fresh stream (nothing delivered) hands out every delta.
    let (resume, out) = resumed("", &["a", "b"]);
    assert_eq!(out.as_deref(), Some("ab"));
    assert!(!resume.started() && !resume.catching_up());
}

#[test]
fn a_resumed_stream_that_diverges_or_ends_early_gives_up_with_the_text_delivered() {
    let (resume, out) = resumed("Hello, wor", &["Hello", ", WOR"]);
    assert_eq!(out, None, "a delta disagreeing with the text delivered");
    assert!(resume.diverged());
    assert_eq!(resume.partial("Hello, WOR", &[]).0, "Hello, wor");
    let (mut resume, _) = resumed("Hello, wor", &["Hello, w", "ORLD"]);
    assert_eq!(
        resume.fresh(&text_delta("x")),
        None,
        "after diverging, nothing more"
    );
    let (resume, out) = resumed("Hi", &["Hi", "!", "?"]);
    assert_eq!(
        out.as_deref(),
        Some("!?"),
        "past the text delivered, everything is new"
    );
    assert!(!resume.diverged());
    // An answer that completes before catching up diverged; one that caught up did not.
    let (mut short, _) = resumed("Hello, wor", &["Hello"]);
    short.completed();
    assert!(short.diverged());
    assert_eq!(short.partial("Hello", &[]).0, "Hello, wor");
    let (mut exact, out) = resumed("Hello", &["Hel", "lo"]);
    exact.completed();
    assert_eq!(out.as_deref(), Some(""));
    assert!(!exact.diverged());
}

#[test]
fn a_chat_stream_resumes_only_after_a_cut_and_an_event_stream_reconnects_after_any_failure() {
    // Two resumptions: each cut uses one; an in-band error or a diverged answer, or a bound
    // passed, is final whatever is left.
    let mut chat = Recoveries::resumes(2);
    assert!(!chat.after(Failure::Other));
    assert!(!chat.after(Failure::TooLarge));
    assert!(chat.after(Failure::Cut));
    assert!(chat.after(Failure::Cut));
    assert!(!chat.after(Failure::Cut), "none left");
    // A resumption that could not open uses one up too.
    let mut chat = Recoveries::resumes(2);
    assert!(chat.after(Failure::Cut));
    assert!(chat.again(), "the second");
    assert!(!chat.again() && !chat.after(Failure::Cut), "none left");
    // An event stream reconnects after any failure but a bound passed.
    let mut events = Recoveries::reconnects(2);
    assert!(!events.after(Failure::TooLarge));
    assert!(events.after(Failure::Other));
    assert!(events.after(Failure::Cut));
    assert!(!events.after(Failure::Cut));
    // Without `resilience.reconnect` or with `resumeStreams: false`: never.
    assert!(!Recoveries::default().after(Failure::Cut));
    assert!(!Recoveries::resumes(0).again());
}

/// A tool round trip that falls back mid-conversation: OpenAI streams a tool call, the caller
/// answers it, and the next turn goes to Anthropic with the call and its result in Anthropic's
/// shape (same id, the arguments as the `input` object), the tools as `input_schema`.
#[test]
fn a_streamed_tool_call_survives_a_fallback_to_anthropic() {
    let mut monitor = StreamMonitor::new();
    for data in [
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_7","type":"function","function":{"name":"city_time","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ] {
        monitor.observe("message", data);
    }
    assert!(monitor.complete());
    assert_eq!(monitor.finish_reason(), Some("tool_calls"));
    let mut assistant = msg(Role::Assistant, "");
    assistant.tool_calls = monitor.tool_calls().to_vec();
    let mut result = msg(Role::Tool, "09:30");
    result.tool_call_id = Some("call_7".into());
    let messages = [msg(Role::User, "Time in Oslo?"), assistant, result];
    let tools = [Tool {
        name: "city_time".into(),
        description: None,
        parameters: r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.into(),
        cache: false,
    }];
    let params = ChatParams {
        model: "claude-haiku-4-5",
        messages: &messages,
        tools: &tools,
        ..ChatParams::default()
    };
    let request = build_request(Provider::Anthropic, &params, None);
    let body = Json::parse(&request.body).expect("valid JSON");
    let turns = body.get("messages").expect("messages");
    let tool_use = turns
        .at(1)
        .and_then(|t| t.get("content"))
        .and_then(|c| c.at(0));
    assert_eq!(
        tool_use.and_then(|b| b.get("id")).and_then(Json::as_str),
        Some("call_7")
    );
    let input = tool_use.and_then(|b| b.get("input"));
    assert_eq!(
        input.and_then(|i| i.get("city")).and_then(Json::as_str),
        Some("Oslo")
    );
    let tool_result = turns
        .at(2)
        .and_then(|t| t.get("content"))
        .and_then(|c| c.at(0));
    assert_eq!(
        tool_result
            .and_then(|b| b.get("tool_use_id"))
            .and_then(Json::as_str),
        Some("call_7")
    );
    assert_eq!(
        turns
            .at(2)
            .and_then(|t| t.get("role"))
            .and_then(Json::as_str),
        Some("user")
    );
    let schema = body
        .get("tools")
        .and_then(|t| t.at(0))
        .and_then(|t| t.get("input_schema"));
    assert!(schema.and_then(|s| s.get("properties")).is_some());
    // The answer, streamed by Anthropic, reads back in OpenAI's words.
    let mut monitor = StreamMonitor::new();
    for (event, data) in [
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"It is 09:30."}}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":6}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ] {
        monitor.observe(event, data);
    }
    assert_eq!(
        (monitor.text(), monitor.finish_reason()),
        ("It is 09:30.", Some("stop"))
    );
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Text with every kind of character a JSON escaper can get wrong.
    fn text() -> impl Strategy<Value = String> {
        let tricky = prop_oneof![
            Just('"'),
            Just('\\'),
            Just('/'),
            Just('\n'),
            Just('\r'),
            Just('\t'),
            Just('\u{8}'),
            Just('\u{c}'),
            Just('\u{7f}'),
            Just('\u{2028}'),
            Just('\u{FFFD}'),
            Just('é'),
            Just('😀'),
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('\0')),
        ];
        let chars =
            prop_oneof![3 => tricky, 2 => any::<char>(), 2 => proptest::char::range('a', 'z')];
        proptest::collection::vec(chars, 0..24).prop_map(|v| v.into_iter().collect())
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::System), Just(Role::User), Just(Role::Assistant)]
    }

    fn message() -> impl Strategy<Value = Message> {
        (role(), text()).prop_map(|(role, content)| Message::text(role, &content))
    }

    /// Anthropic's view of a conversation: the system texts joined, the rest with consecutive
    /// same-role messages merged.
    fn anthropic_view(messages: &[Message]) -> (Option<String>, Vec<(Role, String)>) {
        let system: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(content)
            .collect();
        let mut turns: Vec<(Role, String)> = Vec::new();
        for m in messages.iter().filter(|m| m.role != Role::System) {
            match turns.last_mut() {
                Some((role, text)) if *role == m.role => {
                    text.push_str("\n\n");
                    text.push_str(content(m));
                }
                _ => turns.push((m.role, content(m).to_string())),
            }
        }
        ((!system.is_empty()).then(|| system.join("\n\n")), turns)
    }

    fn turns_of(body: &Json) -> Vec<(Option<Role>, String)> {
        let Some(Json::Array(items)) = body.get("messages") else {
            return Vec::new();
        };
        items
            .iter()
            .map(|m| {
                (
                    m.get("role").and_then(Json::as_str).and_then(Role::parse),
                    m.get("content")
                        .and_then(Json::as_str)
                        .unwrap_or("<missing>")
                        .to_string(),
                )
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn request_bodies_carry_any_text_exactly(
            messages in proptest::collection::vec(message(), 0..8),
            model in text(),
            user in proptest::option::of(text()),
            max_tokens in proptest::option::of(any::<u32>()),
            temperature in proptest::option::of(any::<u32>()),
            stream in any::<bool>(),
        ) {
            let params = ChatParams {
                model: &model,
                messages: &messages,
                max_tokens,
                temperature_milli: temperature,
                user: user.as_deref(),
                stream,
                ..ChatParams::default()
            };

            let openai = build_request(Provider::OpenAi, &params, Some("k"));
            let body = Json::parse(&openai.body).expect("OpenAI body is JSON");
            prop_assert_eq!(body.get("model").and_then(Json::as_str), Some(model.as_str()));
            let expected: Vec<(Option<Role>, String)> =
                messages.iter().map(|m| (Some(m.role), content(m).to_string())).collect();
            prop_assert_eq!(turns_of(&body), expected);
            prop_assert_eq!(body.get("user").and_then(Json::as_str), user.as_deref());
            prop_assert_eq!(body.get("max_tokens").and_then(Json::as_u64), max_tokens.map(u64::from));
            prop_assert_eq!(body.get("stream").is_some(), stream);
            if let Some(t) = temperature {
                let Some(Json::Number(n)) = body.get("temperature") else {
                    return Err(TestCaseError::fail("no temperature"));
                };
                // The decimal reads back as the same thousandths.
                let (whole, fraction) = n.split_once('.').unwrap_or((n, ""));
                prop_assert!(fraction.len() <= 3 && !fraction.ends_with('0'));
                let scaled = format!("{whole}{fraction:0<3}");
                prop_assert_eq!(scaled.parse::<u64>().ok(), Some(u64::from(t)));
            }

            let anthropic = build_request(Provider::Anthropic, &params, Some("k"));
            let body = Json::parse(&anthropic.body).expect("Anthropic body is JSON");
            let (system, turns) = anthropic_view(&messages);
            prop_assert_eq!(body.get("model").and_then(Json::as_str), Some(model.as_str()));
            prop_assert_eq!(body.get("system").and_then(Json::as_str), system.as_deref());
            let expected: Vec<(Option<Role>, String)> =
                turns.into_iter().map(|(r, t)| (Some(r), t)).collect();
            let got = turns_of(&body);
            prop_assert!(got.windows(2).all(|w| w[0].0 != w[1].0), "roles alternate");
            prop_assert_eq!(got, expected);
            prop_assert_eq!(
                body.get("metadata").and_then(|m| m.get("user_id")).and_then(Json::as_str),
                user.as_deref()
            );
            prop_assert_eq!(
                body.get("max_tokens").and_then(Json::as_u64),
                Some(u64::from(max_tokens.unwrap_or(1024)))
            );
        }

        #[test]
        fn classification_and_completion_parsing_are_total(status in any::<u16>(), body in text()) {
            let _ = classify(status, &body);
            let _ = error_message(&body);
            let _ = parse_completion(Provider::OpenAi, &body);
            let _ = parse_completion(Provider::Anthropic, &body);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve {
            user: usize,
            tokens: u64,
            cost: u64,
        },
        /// Settle hold `index % outstanding` with `per_mille` ‰ of what it held.
        Settle {
            index: usize,
            per_mille: u64,
        },
        Release {
            index: usize,
        },
        /// Move the clock forward (or a little back).
        Advance {
            ms: u64,
            back: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..3usize, 0..400u64, 0..300u64)
                .prop_map(|(user, tokens, cost)| Op::Reserve { user, tokens, cost }),
            2 => (any::<usize>(), 0..=1000u64)
                .prop_map(|(index, per_mille)| Op::Settle { index, per_mille }),
            1 => any::<usize>().prop_map(|index| Op::Release { index }),
            1 => (prop_oneof![0..3_600_000u64, 0..40 * DAY_MS], any::<bool>())
                .prop_map(|(ms, back)| Op::Advance { ms, back: back && ms < 3_600_000 }),
        ]
    }

    /// What one reservation counts for, in a reference model of the ledger.
    struct Record {
        user: usize,
        day: u64,
        month: u64,
        tokens: u64,
        cost: u64,
    }

    fn month_of(ms: u64) -> u64 {
        // Independent of the ledger's arithmetic: count whole months from 1970-01.
        let mut days = ms / DAY_MS;
        let mut year = 1970u64;
        let mut month = 0usize;
        loop {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let length = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][month % 12];
            if days < length {
                return year * 12 + (month % 12) as u64;
            }
            days -= length;
            month += 1;
            if month % 12 == 0 {
                year += 1;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn spent_plus_held_never_exceeds_a_cap(
            ops in proptest::collection::vec(op(), 0..120),
            bounded in any::<bool>(),
        ) {
            const USERS: [&str; 3] = ["a", "b", ""];
            let cfg = BudgetConfig {
                per_request_tokens: Some(350),
                per_user_daily_tokens: Some(1000),
                per_user_monthly_tokens: Some(2500),
                daily_cost_micros: Some(900),
            };
            // Bounded to one row, the ledger forgets users all the time: it may then refuse what
            // fits (a user counts as having spent the floor), never admit what does not.
            let mut ledger = match bounded {
                true => Ledger::with_max_users(cfg.clone(), 1),
                false => Ledger::new(cfg.clone()),
            };
            // Start two days before a month end.
            let mut now = JAN_31_LAST_SECOND - 2 * DAY_MS;
            let mut clock = now; // the latest time seen: the ledger never goes back
            let mut records: Vec<Record> = Vec::new();
            let mut holds: Vec<(sturdy_llm::core::llm::Hold, usize)> = Vec::new();
            for op in ops {
                match op {
                    Op::Reserve { user, tokens, cost } => {
                        let (day, month) = (clock / DAY_MS, month_of(clock));
                        let used = |f: &dyn Fn(&Record) -> bool, cost: bool| -> u64 {
                            records.iter().filter(|r| f(r)).map(|r| if cost { r.cost } else { r.tokens }).sum()
                        };
                        let day_used = used(&|r| r.user == user && r.day == day, false);
                        let month_used = used(&|r| r.user == user && r.month == month, false);
                        let cost_used = used(&|r| r.day == day, true);
                        let fits = tokens <= 350
                            && day_used + tokens <= 1000
                            && month_used + tokens <= 2500
                            && cost_used + cost <= 900;
                        match ledger.reserve(USERS[user], tokens, cost, now) {
                            Ok(hold) => {
                                prop_assert!(fits, "admitted over a cap");
                                prop_assert_eq!((hold.tokens(), hold.cost_micros()), (tokens, cost));
                                records.push(Record { user, day, month, tokens, cost });
                                holds.push((hold, records.len() - 1));
                            }
                            Err(e) => {
                                prop_assert!(bounded || !fits, "refused though it fits: {:?}", e);
                                prop_assert!(e.needed > e.remaining);
                            }
                        }
                    }
                    Op::Settle { index, per_mille } if !holds.is_empty() => {
                        let (hold, record) = holds.swap_remove(index % holds.len());
                        let r = &mut records[record];
                        r.tokens = r.tokens * per_mille / 1000;
                        r.cost = r.cost * per_mille / 1000;
                        ledger.settle(hold, r.tokens, r.cost);
                    }
                    Op::Release { index } if !holds.is_empty() => {
                        let (hold, record) = holds.swap_remove(index % holds.len());
                        records[record].tokens = 0;
                        records[record].cost = 0;
                        ledger.release(hold);
                    }
                    Op::Advance { ms, back } => {
                        now = if back { now.saturating_sub(ms) } else { now + ms };
                        clock = clock.max(now);
                    }
                    _ => {}
                }
                // The ledger agrees with the model, and no cap is exceeded.
                let (day, month) = (clock / DAY_MS, month_of(clock));
                let cost_today: u64 = records.iter().filter(|r| r.day == day).map(|r| r.cost).sum();
                for (i, name) in USERS.iter().enumerate() {
                    let day_tokens: u64 = records.iter().filter(|r| r.user == i && r.day == day).map(|r| r.tokens).sum();
                    let month_tokens: u64 = records.iter().filter(|r| r.user == i && r.month == month).map(|r| r.tokens).sum();
                    let spent = ledger.spent(name, now);
                    if bounded {
                        prop_assert!(spent.0 >= day_tokens && spent.1 >= month_tokens);
                        prop_assert_eq!(spent.2, cost_today);
                    } else {
                        prop_assert_eq!(spent, (day_tokens, month_tokens, cost_today));
                    }
                    prop_assert!(day_tokens <= 1000 && month_tokens <= 2500 && cost_today <= 900);
                    let (_, per_mille) = ledger.usage_per_mille(name, now).unwrap_or((Cap::DailyCost, 0));
                    prop_assert!(per_mille <= 1000);
                }
            }
            // Giving everything back leaves nothing spent but what was settled.
            for (hold, record) in holds {
                ledger.release(hold);
                records[record].tokens = 0;
                records[record].cost = 0;
            }
            let day = clock / DAY_MS;
            let cost_today: u64 = records.iter().filter(|r| r.day == day).map(|r| r.cost).sum();
            prop_assert_eq!(ledger.spent("a", now).2, cost_today);
        }
    }
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any text in a tool call, a tool result, a tool, a stop sequence or an image URL keeps
        /// both bodies valid JSON, and the tool call's id reads back exactly.
        #[test]
        fn tool_and_image_fields_carry_any_text(
            id in text(),
            name in text(),
            arguments in text(),
            result in text(),
            url in text(),
            stop in text(),
        ) {
            let mut assistant = Message::text(Role::Assistant, "");
            assistant.tool_calls.push(ToolCall { id: id.clone(), name: name.clone(), arguments });
            let mut tool = Message::text(Role::Tool, &result);
            tool.tool_call_id = Some(id.clone());
            let mut user = Message::text(Role::User, &result);
            user.content.push(Part::Image(url.clone()));
            user.content.push(Part::Image(format!("data:image/png;base64,{url}")));
            let messages = [user, assistant, tool];
            let tools = [Tool { name: name.clone(), description: Some(name), parameters: result, cache: false }];
            let stop = [stop];
            let params = ChatParams {
                model: "m",
                messages: &messages,
                tools: &tools,
                stop: &stop,
                ..ChatParams::default()
            };
            for provider in [Provider::OpenAi, Provider::Anthropic] {
                let body = build_request(provider, &params, None).body;
                let json = Json::parse(&body);
                prop_assert!(json.is_some(), "{:?}: {}", provider, body);
                let turn = json.as_ref().and_then(|j| j.get("messages")).and_then(|m| m.at(1));
                let call_id = match provider {
                    Provider::OpenAi => turn.and_then(|t| t.get("tool_calls")).and_then(|c| c.at(0)),
                    Provider::Anthropic => turn.and_then(|t| t.get("content")).and_then(|c| c.at(0)),
                }
                .and_then(|c| c.get("id"))
                .and_then(Json::as_str);
                prop_assert_eq!(call_id, Some(id.as_str()));
            }
        }
    }
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// However the new answer is split into deltas, a resumption after any prefix of it hands
        /// out exactly the rest, and one after any other text diverges or hands out nothing twice.
        #[test]
        fn a_resumption_hands_out_exactly_the_rest(
            answer in text(),
            cut in 0usize..32,
            splits in proptest::collection::vec(0usize..32, 0..8),
            other in text(),
        ) {
            let bounds: Vec<usize> = answer.char_indices().map(|(i, _)| i).chain([answer.len()]).collect();
            let cut = bounds[cut % bounds.len()];
            let mut points: Vec<usize> = splits.iter().map(|s| bounds[s % bounds.len()]).collect();
            points.extend([0, answer.len()]);
            points.sort_unstable();
            points.dedup();
            let deltas: Vec<&str> = points.windows(2).map(|w| &answer[w[0]..w[1]]).collect();
            let (mut resume, out) = resumed(&answer[..cut], &deltas);
            prop_assert_eq!(out.as_deref(), Some(&answer[cut..]));
            resume.completed();
            prop_assert!(!resume.diverged());
            let (mut resume, out) = resumed(&other, &deltas);
            resume.completed();
            if answer.starts_with(&other) {
                prop_assert_eq!(out.as_deref(), Some(&answer[other.len()..]));
            } else {
                prop_assert!(resume.diverged());
                prop_assert_eq!(resume.partial(&answer, &[]).0, other.as_str());
            }
        }
    }
}

#[test]
fn a_cached_prompt_is_held_at_the_write_price_and_pays_as_billed() {
    // Claude Sonnet: $3 in, $15 out, reads $0.30, writes $3.75 per Mtok.
    let sonnet = Pricing {
        input_micros_per_mtok: 3_000_000,
        output_micros_per_mtok: 15_000_000,
        cached_input_micros_per_mtok: 300_000,
        cache_write_micros_per_mtok: 3_750_000,
    };
    let mut ledger = Ledger::new(BudgetConfig {
        per_user_daily_tokens: Some(1_000_000),
        daily_cost_micros: Some(1_000_000),
        ..BudgetConfig::default()
    });
    let mut tally = CostTally::new();
    // The worst case writes the whole prompt: 10 000 × 3.75 + 200 × 15 = 40 500 µ$.
    let hold = charge::hold(&mut ledger, "amy", (10_000, Some(200), true), [&sonnet], 0).ok();
    assert_eq!(hold.as_ref().map(|h| h.cost_micros()), Some(40_500));
    // Unmarked, it cannot write: 10 000 × 3 + 200 × 15 = 33 000 µ$.
    let plain = charge::hold(&mut ledger, "bo", (10_000, Some(200), false), [&sonnet], 0).ok();
    assert_eq!(plain.as_ref().map(|h| h.cost_micros()), Some(33_000));
    charge::release(Some(&mut ledger), plain);
    // The answer read 9 000 of them from the cache: every token counts in the token cap, the
    // cost cap sees 1 000 × 3 + 9 000 × 0.30 + 150 × 15 = 7 950 µ$.
    let usage = Usage {
        input_tokens: 10_000,
        output_tokens: 150,
        cached_input_tokens: 9_000,
        cache_write_tokens: 0,
    };
    let charge = Charge {
        user: "amy",
        model: "claude-sonnet",
        pricing: &sonnet,
        usage,
        free: false,
    };
    let settled = charge::settle(Some(&mut ledger), &mut tally, hold, charge, 0);
    assert_eq!(settled.cost_micros, 7_950);
    assert_eq!(ledger.spent("amy", 0), (10_150, 10_150, 7_950));
    // Saved: 9 000 × (3 − 0.30) = 24 300 µ$.
    assert_eq!(
        tally.by_user(),
        [(
            "amy".to_string(),
            Spend {
                usage,
                micros: 7_950,
                saved_micros: 24_300
            }
        )]
    );
}

/// An OpenAI stream event carrying `text`.
fn openai_chunk(text: &str) -> String {
    let mut data = String::from(r#"{"choices":[{"index":0,"delta":{"content":"#);
    sturdy_llm::core::json::write_string(text, &mut data);
    data.push_str(r#"},"finish_reason":null}]}"#);
    data
}

/// An Anthropic text delta event carrying `text`.
fn anthropic_delta(text: &str) -> String {
    let mut data = String::from(
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#,
    );
    sturdy_llm::core::json::write_string(text, &mut data);
    data.push_str("}}");
    data
}

/// Mid-stream fallback end to end in the core: an OpenAI stream cut after "Once upon a " with no
/// resumption left; the chain's next target cannot prefill, the one after (Anthropic) can; it is
/// sent the text delivered without its trailing space, writes " time there was" (repeating the
/// space), and the caller is handed "time there was"; each part is charged to its own model and
/// the budget, extended at the move, settles their sum.
#[test]
fn a_stream_cut_past_resuming_is_continued_by_the_next_target_that_can_prefill() {
    use sturdy_llm::core::llm::mid_stream::{
        can_prefill, total, utf16_ranges, written_usage, Continuation, Handover,
    };
    let messages = [msg(Role::User, "Tell me a story.")];
    let input = estimate_tokens(&messages, &[]);
    let targets = [
        (Provider::OpenAi, None),
        (Provider::OpenAi, None),
        (Provider::Anthropic, None),
    ];
    let cheap = Pricing {
        input_micros_per_mtok: 1_000_000,
        output_micros_per_mtok: 2_000_000,
        ..Pricing::default()
    };
    let dear = Pricing {
        input_micros_per_mtok: 3_000_000,
        output_micros_per_mtok: 15_000_000,
        ..Pricing::default()
    };
    let mut ledger = daily(10_000);
    let mut hold = charge::hold(
        &mut ledger,
        "ada",
        (input, Some(100), false),
        [&cheap, &dear],
        0,
    )
    .expect("room");

    // The first target streams two deltas, then the connection is cut; no resumption is left.
    let mut first = StreamMonitor::new();
    for piece in ["Once ", "upon a "] {
        first.observe("", &openai_chunk(piece));
    }
    assert!(!first.complete());
    let mut recoveries = Recoveries::resumes(0);
    assert!(!recoveries.after(Failure::Cut));
    let delivered = Delivered {
        text: first.text().to_string(),
        tool_calls: Vec::new(),
    };
    let handover = Handover::new(targets.iter().map(|&(p, c)| can_prefill(p, c, false)));
    let next = handover.cut(0, &delivered).expect("a target can continue");
    assert_eq!(next, 2, "the OpenAI target without prefill is skipped");
    let part1 = written_usage(first.usage(), input, (first.text(), first.tool_calls()));

    // The continuation's request: the same conversation, the delivered text as a prefill.
    let params = ChatParams {
        model: "claude-x",
        messages: &messages,
        stream: true,
        prefill: Some(&delivered.text),
        ..ChatParams::default()
    };
    let request = build_request(Provider::Anthropic, &params, None);
    let body = Json::parse(&request.body).expect("json");
    let sent = body
        .get("messages")
        .and_then(|m| m.at(1))
        .expect("a prefill");
    assert_eq!(sent.get("role").and_then(Json::as_str), Some("assistant"));
    assert_eq!(
        sent.get("content").and_then(Json::as_str),
        Some("Once upon a")
    );
    let prefilled = sturdy_llm::core::llm::with_prefill(&messages, Some(&delivered.text));
    let continuation_input = estimate_tokens(&prefilled, &[]);
    charge::hold_more(
        &mut ledger,
        &mut hold,
        (continuation_input, Some(100), false),
        [&dear],
        0,
    )
    .expect("the budget takes the continuation");

    // The continuation streams; what is handed out follows the delivered text, the repeated space
    // dropped.
    let mut continues = Continuation::after(delivered.text.clone(), Provider::Anthropic);
    let mut second = StreamMonitor::new();
    let mut handed = delivered.text.clone();
    for (event, data) in [
        (
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#.to_string(),
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_string(),
        ),
        ("content_block_delta", anthropic_delta(" time")),
        ("content_block_delta", anthropic_delta(" there was.")),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#.to_string(),
        ),
        ("message_stop", r#"{"type":"message_stop"}"#.to_string()),
    ] {
        if let (Some(delta), _) = second.observe(event, &data) {
            handed.push_str(continues.fresh(&delta.text));
        }
    }
    assert!(second.complete());
    let whole = continues.whole(second.text());
    assert_eq!(handed, "Once upon a time there was.");
    assert_eq!(whole, handed, "the result's text is what was handed out");

    // Each part charged to its target; the ledger settles the sum once.
    let part2 = second.usage();
    let charges = [
        Charge {
            user: "ada",
            model: "gpt-x",
            pricing: &cheap,
            usage: part1,
            free: false,
        },
        Charge {
            user: "ada",
            model: "claude-x",
            pricing: &dear,
            usage: part2,
            free: false,
        },
    ];
    let mut tally = CostTally::default();
    let (settled, costs) =
        charge::settle_parts(Some(&mut ledger), &mut tally, Some(hold), &charges, 0);
    assert_eq!(
        costs,
        vec![cost_micros(&cheap, &part1), cost_micros(&dear, &part2)]
    );
    assert_eq!(settled.cost_micros, costs.iter().sum::<u64>());
    let used = total([part1, part2]);
    assert_eq!(
        ledger.spent("ada", 0).0,
        used.input_tokens + used.output_tokens
    );
    let models: Vec<String> = tally.by_model().into_iter().map(|(m, _)| m).collect();
    assert!(models.contains(&"gpt-x".to_string()) && models.contains(&"claude-x".to_string()));
    assert_eq!(
        utf16_ranges(&whole, &[delivered.text.len(), whole.len()]),
        vec![(0, 12), (12, 27)]
    );
}

/// Every upstream answer of a stream is paid for; a cut one resumed on its own target (not kept in
/// the answer) is paid with the part that replaced it, so the parts still add up to the call's cost.
#[test]
fn a_resumed_cut_answer_is_paid_with_the_part_that_replaced_it() {
    use sturdy_llm::core::llm::mid_stream::part_costs;
    // Cut, resumed and cut again (kept: continued elsewhere), then the continuation.
    assert_eq!(part_costs([(false, 5), (true, 7), (true, 11)]), [12, 11]);
    // Two resumptions before the answer that completed.
    assert_eq!(part_costs([(false, 1), (false, 2), (true, 3)]), [6]);
    assert_eq!(part_costs([(true, 4)]), [4]);
    // Nothing kept (the stream failed): no parts; never an overflow.
    assert!(part_costs([(false, 9)]).is_empty());
    assert_eq!(part_costs([(false, u64::MAX), (true, 1)]), [u64::MAX]);
}
