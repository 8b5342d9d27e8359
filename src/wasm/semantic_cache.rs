//! A client's semantic cache as it is held (`Inner.semantic`): its settings, its index of stored
//! answers, the stores under way, and a call's question being embedded. How calls use it is
//! [`crate::wasm::semantic`].

use crate::core::llm::Completion;
use crate::core::semantic::{SemanticConfig, SemanticIndex};
use js_sys::Promise;
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// A client's semantic cache: its settings, its index, and the stores under way.
pub(crate) struct SemanticCache {
    pub(crate) config: SemanticConfig,
    pub(crate) index: RefCell<SemanticIndex<Stored>>,
    /// Settles once every store started so far is done (it never rejects).
    pub(crate) stores: RefCell<Promise>,
}

/// A stored answer: the target that gave it (its index in `targets`) and what it said.
pub(crate) struct Stored {
    pub(crate) target: usize,
    pub(crate) completion: Completion,
}

/// A question's vector and the digest it is filed under.
pub(crate) struct Keyed {
    pub(crate) vector: Vec<f32>,
    pub(crate) digest: [u8; 32],
}

/// A call's question being embedded: `done` settles once `keyed` is set, or the embedding failed.
pub(crate) struct Probe {
    pub(crate) keyed: Rc<OnceCell<Keyed>>,
    pub(crate) done: Promise,
}

impl Probe {
    /// The question's vector and digest, once embedded; `None` if that failed.
    pub(crate) async fn keyed(&self) -> Option<&Keyed> {
        let _ = JsFuture::from(self.done.clone()).await;
        self.keyed.get()
    }
}

impl SemanticCache {
    /// An empty cache with these settings.
    pub(crate) fn new(config: SemanticConfig) -> SemanticCache {
        SemanticCache {
            index: RefCell::new(SemanticIndex::new(config.max_entries, config.max_bytes)),
            config,
            stores: RefCell::new(Promise::resolve(&JsValue::UNDEFINED)),
        }
    }

    /// Drops every entry (`clearCache()`).
    pub(crate) fn clear(&self) {
        self.index.borrow_mut().clear();
    }

    pub(crate) fn insert(&self, keyed: &Keyed, stored: Stored) {
        let completion = &stored.completion;
        let bytes = completion.text.len() + completion.finish_reason.len() + 64;
        self.index
            .borrow_mut()
            .insert(keyed.digest, &keyed.vector, stored, bytes);
    }
}
