//! The LLM layer: what a chat call means above plain HTTP, written once for every provider.
//!
//! The resilience core below ([`crate::core::pipeline`]) moves bytes; it does not know what a
//! message, a token or a provider is. Retrying, falling back and budgeting LLM calls need exactly
//! that: one portable request ([`request`]) written in each provider's format ([`provider`],
//! [`openai`], [`anthropic`]), what an error body means
//! for retry and fallback ([`errors`]), which target a call tries next and when it stops
//! ([`chain`]), a token estimate to reserve with before the call ([`tokens`]), budgets that hold
//! under concurrency ([`budget`]), what a call holds and pays in them ([`charge`]) and the cost
//! of what was used ([`cost`]). Everything here is pure and synchronous, takes the wall time as an
//! argument, and compiles to wasm32 without float formatting or serde.

pub mod anthropic;
pub mod budget;
pub mod chain;
pub mod charge;
pub mod cost;
pub mod embed;
pub mod embed_answer;
pub mod endpoint;
pub mod errors;
pub mod mid_stream;
pub mod openai;
pub mod provider;
pub mod request;
pub mod tokens;

pub use crate::core::stream::Usage;
pub use budget::{BudgetConfig, Cap, Exceeded, Hold, Ledger};
pub use chain::{Chain, Outcome, Step, MAX_TARGETS, MAX_WAITS, MIN_WAIT_MS};
pub use cost::{cache_prices, cost_micros, saved_micros, CostTally, Pricing, Spend};
pub use errors::{classify, error_message, ErrorClass};
pub use provider::{build_request, parse_completion, Completion, HttpRequest, Provider};
pub use request::{
    parse_data_url, with_prefill, CacheMarks, ChatParams, Message, Part, ResponseFormat, Role,
    Tool, ToolCall, ToolCallDelta, ToolChoice,
};
pub use tokens::estimate_tokens;
