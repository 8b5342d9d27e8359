//! The JavaScript binding layer (wasm32 only): option parsing, type conversion, JS errors, the JS
//! [`Platform`](crate::core::platform::Platform), and the exported classes. No policy lives here.

mod abort;
mod answer;
mod body;
mod cache;
mod chain_walk;
mod chat;
mod chat_options;
mod chat_request;
mod chat_request_bounds;
mod chat_result;
mod client;
mod embed;
mod embed_request;
mod errors;
mod fan_out;
mod fetch;
mod inner;
mod js;
mod listeners;
mod options;
mod platform;
mod policy_board;
mod reader;
mod request;
mod request_policy;
mod semantic;
mod semantic_cache;
mod shared_state;
mod sse;
mod stats;
mod stream;
mod tap;

pub use client::ResilientClient;
pub use options::isolate_requests;
pub use policy_board::PolicyBoard;
pub use sse::SseParserRaw;

/// Reports a panic on the console before the instance traps, so a bug is visible rather than a bare
/// "unreachable" (nothing is expected to panic: input is validated at the boundary).
pub fn install_panic_hook() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            web_sys::console::error_1(&format!("resilient-llm panicked: {info}").into());
        }));
    });
}
