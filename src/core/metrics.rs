//! `client.metrics()`: the stats in Prometheus text exposition format (version 0.0.4).
//!
//! Hand-written and integer-only: a metrics library or float formatting would cost more wasm than the
//! rest of the pipeline. Latency quantiles are whole milliseconds; bucket levels are floored.

use crate::core::hedge::FirstTokens;
use crate::core::learned_limit::LearnedView;
use crate::core::llm::CostTally;
use crate::core::local_state::BreakerView;
use crate::core::stats::{CacheStats, Stats};
use std::fmt::Write;

/// Renders the exposition text.
pub fn prometheus(
    stats: &Stats,
    breakers: &[BreakerView],
    rate_level: Option<(f64, f64)>,
    cache: Option<CacheStats>,
    costs: &CostTally,
) -> String {
    let mut out = String::with_capacity(1024);
    let counters = [
        ("requests_total", "Calls started.", stats.requests),
        (
            "successes_total",
            "Calls that ended with a 2xx or 3xx response.",
            stats.successes,
        ),
        (
            "failures_total",
            "Calls that ended with an error status or an error.",
            stats.failures,
        ),
        ("retries_total", "Retries made.", stats.retries),
        (
            "deduplicated_total",
            "Calls answered by an identical call in flight.",
            stats.deduplicated,
        ),
        (
            "retry_budget_exhausted_total",
            "Retries refused by the retry budget.",
            stats.retry_budget_exhausted,
        ),
    ];
    for (name, help, value) in counters {
        header(&mut out, name, help, "counter");
        let _ = writeln!(out, "sturdy_llm_{name} {value}");
    }
    header(
        &mut out,
        "rejected_total",
        "Calls rejected before reaching the upstream.",
        "counter",
    );
    for (reason, value) in [
        ("breaker", stats.rejected_breaker),
        ("rate_limit", stats.rejected_rate_limit),
        ("budget", stats.rejected_budget),
    ] {
        let _ = writeln!(
            out,
            "sturdy_llm_rejected_total{{reason=\"{reason}\"}} {value}"
        );
    }
    header(
        &mut out,
        "latency_ms",
        "Call latency over the recent window, milliseconds.",
        "summary",
    );
    let p = stats.percentiles();
    for (quantile, value) in [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)] {
        let _ = writeln!(
            out,
            "sturdy_llm_latency_ms{{quantile=\"{quantile}\"}} {value}"
        );
    }
    header(
        &mut out,
        "breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        "gauge",
    );
    for view in breakers {
        let state = match view.state.as_str() {
            "closed" => 0,
            "half-open" => 1,
            _ => 2,
        };
        let _ = writeln!(
            out,
            "sturdy_llm_breaker_state{{key=\"{}\"}} {state}",
            escape_label(&view.key)
        );
    }
    if let Some(cache) = cache {
        header(
            &mut out,
            "cache_lookups_total",
            "Response cache lookups by result.",
            "counter",
        );
        for (result, value) in [("hit", cache.hits), ("miss", cache.misses)] {
            let _ = writeln!(
                out,
                "sturdy_llm_cache_lookups_total{{result=\"{result}\"}} {value}"
            );
        }
        header(
            &mut out,
            "cache_entries",
            "Entries in the memory cache.",
            "gauge",
        );
        let _ = writeln!(out, "sturdy_llm_cache_entries {}", cache.entries);
    }
    let models = costs.by_model();
    if !models.is_empty() {
        header(
            &mut out,
            "tokens_total",
            "Tokens used by chat calls, by model and direction (cached_input and cache_write are parts of input).",
            "counter",
        );
        for (model, spend) in &models {
            let model = escape_label(model);
            let usage = &spend.usage;
            for (direction, value) in [
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached_input", usage.cached_input_tokens),
                ("cache_write", usage.cache_write_tokens),
            ] {
                let _ = writeln!(
                    out,
                    "sturdy_llm_tokens_total{{model=\"{model}\",direction=\"{direction}\"}} {value}"
                );
            }
        }
        header(
            &mut out,
            "cost_microdollars_total",
            "Cost of chat calls in millionths of a US dollar, by model.",
            "counter",
        );
        for (model, spend) in &models {
            let _ = writeln!(
                out,
                "sturdy_llm_cost_microdollars_total{{model=\"{}\"}} {}",
                escape_label(model),
                spend.micros
            );
        }
        header(
            &mut out,
            "cache_saved_microdollars",
            "Saved by the provider's prompt cache, in millionths of a US dollar, by model (cache writes cost more than they save at first, so it may fall).",
            "gauge",
        );
        for (model, spend) in &models {
            let _ = writeln!(
                out,
                "sturdy_llm_cache_saved_microdollars{{model=\"{}\"}} {}",
                escape_label(model),
                spend.saved_micros
            );
        }
    }
    if let Some((tokens, capacity)) = rate_level {
        header(
            &mut out,
            "rate_limit_tokens",
            "Request tokens left in the client bucket.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "sturdy_llm_rate_limit_tokens {}",
            tokens.floor() as i64
        );
        header(
            &mut out,
            "rate_limit_capacity",
            "Capacity of the client bucket.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "sturdy_llm_rate_limit_capacity {}",
            capacity.floor() as i64
        );
    }
    out
}

/// The hedges started and won ([`FirstTokens`]), as counters.
pub fn hedges(first_tokens: &FirstTokens) -> String {
    let mut out = String::new();
    for (name, help, value) in [
        (
            "hedges_started_total",
            "Chat calls whose first token was late, so the next target was asked too.",
            first_tokens.started,
        ),
        (
            "hedges_won_total",
            "Hedges whose target produced its first token first.",
            first_tokens.won,
        ),
    ] {
        header(&mut out, name, help, "counter");
        let _ = writeln!(out, "sturdy_llm_{name} {value}");
    }
    out
}

/// The limits learned from the providers' headers (appended to [`prometheus`]'s text): requests
/// and tokens available, and milliseconds until the learned limit holds nothing back, per key.
pub fn learned_limits(views: &[LearnedView]) -> String {
    let mut out = String::new();
    if views.is_empty() {
        return out;
    }
    type Gauge = (&'static str, &'static str, fn(&LearnedView) -> Option<u64>);
    let gauges: [Gauge; 3] = [
        (
            "learned_remaining_requests",
            "Requests the provider said are left, refilled since.",
            |v| v.remaining_requests,
        ),
        (
            "learned_remaining_tokens",
            "Tokens the provider said are left, refilled since.",
            |v| v.remaining_tokens,
        ),
        (
            "learned_reset_ms",
            "Milliseconds until the learned limit holds no call back.",
            |v| Some(v.reset_in_ms),
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut out, name, help, "gauge");
        for view in views {
            if let Some(value) = value(view) {
                let key = escape_label(&view.key);
                let _ = writeln!(out, "sturdy_llm_{name}{{key=\"{key}\"}} {value}");
            }
        }
    }
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP sturdy_llm_{name} {help}");
    let _ = writeln!(out, "# TYPE sturdy_llm_{name} {kind}");
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::StateKind;

    #[test]
    fn renders_the_hedges_as_counters() {
        let mut first_tokens = FirstTokens::default();
        first_tokens.started = 3;
        first_tokens.won = 2;
        let text = hedges(&first_tokens);
        assert!(text.contains(
            "# TYPE sturdy_llm_hedges_started_total counter\nsturdy_llm_hedges_started_total 3\n"
        ));
        assert!(text.contains("sturdy_llm_hedges_won_total 2\n"));
    }

    #[test]
    fn renders_learned_limits_per_key() {
        assert_eq!(learned_limits(&[]), "");
        let text = learned_limits(&[LearnedView {
            key: "target:a\"".into(),
            remaining_requests: Some(3),
            remaining_tokens: None,
            reset_in_ms: 1200,
        }]);
        assert!(text.contains("sturdy_llm_learned_remaining_requests{key=\"target:a\\\"\"} 3\n"));
        assert!(text.contains("sturdy_llm_learned_reset_ms{key=\"target:a\\\"\"} 1200\n"));
        assert!(!text.contains("sturdy_llm_learned_remaining_tokens{"));
    }

    #[test]
    fn renders_counters_and_escaped_breaker_keys() {
        let mut stats = Stats::default();
        stats.requests = 3;
        stats.retries = 2;
        stats.record_latency(40);
        let breakers = [BreakerView {
            key: "http://a\"b".to_string(),
            state: StateKind::Open,
            failures: 5,
        }];
        let cache = CacheStats {
            hits: 3,
            misses: 1,
            entries: 2,
        };
        let mut costs = CostTally::default();
        let usage = crate::core::llm::Usage {
            input_tokens: 10,
            output_tokens: 5,
            cached_input_tokens: 4,
            cache_write_tokens: 0,
        };
        let spend = crate::core::llm::Spend {
            usage,
            micros: 42,
            saved_micros: 7,
        };
        costs.add("gpt-x", "u1", &spend);
        let text = prometheus(&stats, &breakers, Some((7.9, 10.0)), Some(cache), &costs);
        assert!(text.contains("sturdy_llm_tokens_total{model=\"gpt-x\",direction=\"output\"} 5\n"));
        assert!(text.contains("sturdy_llm_cost_microdollars_total{model=\"gpt-x\"} 42\n"));
        assert!(text
            .contains("sturdy_llm_tokens_total{model=\"gpt-x\",direction=\"cached_input\"} 4\n"));
        assert!(text.contains("sturdy_llm_cache_saved_microdollars{model=\"gpt-x\"} 7\n"));
        assert!(text.contains("sturdy_llm_cache_lookups_total{result=\"hit\"} 3\n"));
        assert_eq!(cache.hit_rate_per_mille(), 750);
        assert!(text.contains("sturdy_llm_requests_total 3\n"));
        assert!(text.contains("sturdy_llm_retries_total 2\n"));
        assert!(text.contains("sturdy_llm_latency_ms{quantile=\"0.5\"} 40\n"));
        assert!(text.contains("sturdy_llm_breaker_state{key=\"http://a\\\"b\"} 2\n"));
        assert!(text.contains("sturdy_llm_rate_limit_tokens 7\n"));
        assert!(text.contains("# TYPE sturdy_llm_rejected_total counter\n"));
    }
}
