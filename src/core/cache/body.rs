//! A request body, parsed once for everything the cache asks of it: the policy reads its
//! `temperature`, the key hashes its canonical form. Parsing is most of what both cost, and a
//! memory-cache hit pays for both on every call.

use crate::core::json::Json;

/// A request body as sent, and its JSON reading when it is JSON.
#[derive(Debug)]
pub struct Body<'a> {
    /// The body as sent.
    pub text: &'a str,
    /// The parsed document; `None` when the body is not JSON.
    pub json: Option<Json<'a>>,
}

impl<'a> Body<'a> {
    /// Parses `text`.
    pub fn new(text: &'a str) -> Self {
        Body {
            text,
            json: Json::parse(text),
        }
    }
}
