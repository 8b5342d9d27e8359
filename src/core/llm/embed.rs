//! What an embeddings call decides before and after its upstream calls, for `client.embed()`.
//!
//! Embeddings are deterministic, so each text is cached on its own (its key: [`embedding_key`](crate::core::cache::key::embedding_key)) and
//! only the texts not cached go upstream. A call's texts are first deduplicated ([`Plan::new`]:
//! the same text twice is embedded once), the unique texts looked up, and the misses split into
//! batches the provider accepts ([`batches`]: at most [`MAX_BATCH_INPUTS`] texts and
//! [`MAX_BATCH_BYTES`] of text per request). The vectors, cached or fresh, are then put back in the
//! order of the input ([`Plan::assemble`]). They are stored as little-endian float32 bytes
//! ([`to_bytes`], [`from_bytes`]): a quarter of the size of JSON numbers, and read without parsing.

use crate::core::string_map::StringMap;
use std::ops::Range;

/// Most texts in one upstream request (OpenAI's limit for `/embeddings`).
pub const MAX_BATCH_INPUTS: usize = 2048;
/// Most bytes of text in one upstream request: OpenAI takes at most 300k tokens per request, about
/// 1.2 MB of English; 1 MiB leaves room for text that tokenizes densely.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Most dimensions of one vector (the largest models have 3,072 or 4,096).
pub const MAX_DIMENSIONS: usize = 16_384;

/// A call's texts, deduplicated.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// For each unique text, the index of its first occurrence in the input.
    pub unique: Vec<usize>,
    /// For each input, the index of its text in `unique`.
    pub slot_of: Vec<usize>,
}

impl Plan {
    /// The plan for `texts`.
    pub fn new<S: AsRef<str>>(texts: &[S]) -> Plan {
        // A `StringMap` (its table already compiled in) rather than a map of borrowed keys.
        let mut seen: StringMap<usize> = StringMap::new();
        let mut unique = Vec::new();
        let slot_of = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                *seen.get_or_insert_with(text.as_ref(), || {
                    unique.push(i);
                    unique.len() - 1
                })
            })
            .collect();
        Plan { unique, slot_of }
    }

    /// The vector of each input, in input order, from the vector of each unique text (`None` if
    /// one is missing). How many inputs were answered by a slot marked `cached` is counted too.
    pub fn assemble(
        &self,
        vectors: &[Option<Vec<f32>>],
        cached: &[bool],
    ) -> Option<(Vec<Vec<f32>>, usize)> {
        let mut from_cache = 0;
        let mut out = Vec::with_capacity(self.slot_of.len());
        for &slot in &self.slot_of {
            out.push(vectors.get(slot)?.as_ref()?.clone());
            from_cache += usize::from(cached.get(slot).copied().unwrap_or(false));
        }
        Some((out, from_cache))
    }
}

/// `misses` (indices into the call's unique texts, in order) split into consecutive runs of at most
/// `max_inputs` texts and `max_bytes` bytes (`len` gives a text's length in bytes). A text longer
/// than `max_bytes` goes alone (the provider judges it).
pub fn batches(
    misses: &[usize],
    len: impl Fn(usize) -> usize,
    max_inputs: usize,
    max_bytes: usize,
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (at, &miss) in misses.iter().enumerate() {
        let size = len(miss);
        let full = at - start >= max_inputs.max(1) || bytes.saturating_add(size) > max_bytes;
        if at > start && full {
            out.push(start..at);
            start = at;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < misses.len() {
        out.push(start..misses.len());
    }
    out
}

/// Tokens held in a budget for embedding `texts` before the answer says: a token per 4 characters
/// (at least one per text).
pub fn estimate_tokens<S: AsRef<str>>(texts: &[S]) -> u64 {
    texts
        .iter()
        .map(|t| (t.as_ref().chars().count() as u64).div_ceil(4).max(1))
        .sum()
}

/// A vector as little-endian float32 bytes.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A cached vector from its stored `bytes`, if usable: readable ([`from_bytes`]) and as long as
/// `width`, the length the call's vectors must share (the `dimensions` asked for, else set by the
/// first vector taken). A stored vector of another length is a miss, not a failure: the store is
/// not to be trusted.
pub fn cached_vector(bytes: &[u8], width: &mut Option<usize>) -> Option<Vec<f32>> {
    from_bytes(bytes).filter(|v| *width.get_or_insert(v.len()) == v.len())
}

/// A vector from little-endian float32 bytes; `None` unless it has 1..=[`MAX_DIMENSIONS`] whole
/// values, all finite.
pub fn from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || bytes.len() % 4 != 0 || bytes.len() / 4 > MAX_DIMENSIONS {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|b| {
            let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            x.is_finite().then_some(x)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_share_a_slot() {
        let plan = Plan::new(&["a", "b", "a", "c", "b", "a"]);
        assert_eq!(plan.unique, vec![0, 1, 3]);
        assert_eq!(plan.slot_of, vec![0, 1, 0, 2, 1, 0]);
        assert_eq!(Plan::new::<&str>(&[]).unique, Vec::<usize>::new());
        // Case and whitespace are the text: different texts.
        assert_eq!(Plan::new(&["a", "A", "a "]).unique, vec![0, 1, 2]);
    }

    #[test]
    fn assembly_keeps_input_order_and_counts_cached_inputs() {
        let plan = Plan::new(&["x", "y", "x", "z"]);
        let vectors = [Some(vec![1.0]), Some(vec![2.0]), Some(vec![3.0])];
        let (out, cached) = plan
            .assemble(&vectors, &[true, false, false])
            .unwrap_or_default();
        assert_eq!(out, vec![vec![1.0], vec![2.0], vec![1.0], vec![3.0]]);
        assert_eq!(cached, 2, "both inputs of the cached text count");
        assert_eq!(plan.assemble(&vectors[..2], &[]), None);
        assert_eq!(
            plan.assemble(&[Some(vec![1.0]), None, Some(vec![3.0])], &[]),
            None
        );
    }

    #[test]
    fn batches_respect_both_bounds() {
        let misses: Vec<usize> = (0..5000).collect();
        let runs = batches(&misses, |_| 10, MAX_BATCH_INPUTS, MAX_BATCH_BYTES);
        assert_eq!(runs, vec![0..2048, 2048..4096, 4096..5000]);
        let runs = batches(&[7, 8, 9, 10], |i| if i == 8 { 50 } else { 30 }, 100, 80);
        assert_eq!(runs, vec![0..2, 2..4]);
        // A text past the byte bound goes alone, and nothing is lost.
        let runs = batches(&[1, 2, 3], |i| if i == 2 { 500 } else { 1 }, 100, 80);
        assert_eq!(runs, vec![0..1, 1..2, 2..3]);
        assert!(batches(&[], |_| 1, 10, 10).is_empty());
        assert_eq!(batches(&[1, 2], |_| 1, 0, 10), vec![0..1, 1..2]);
    }

    #[test]
    fn estimate_is_a_token_per_four_characters() {
        assert_eq!(
            estimate_tokens(&["abcd", "abcde", "", "héllo"]),
            1 + 2 + 1 + 2
        );
    }

    #[test]
    fn cached_vectors_must_share_one_length() {
        let mut width = None;
        assert_eq!(
            cached_vector(&to_bytes(&[1.0, 2.0]), &mut width),
            Some(vec![1.0, 2.0])
        );
        assert_eq!(width, Some(2));
        assert_eq!(cached_vector(&to_bytes(&[1.0]), &mut width), None);
        assert_eq!(cached_vector(&[1, 2, 3], &mut width), None);
        let mut asked = Some(3);
        assert_eq!(cached_vector(&to_bytes(&[1.0, 2.0]), &mut asked), None);
        assert_eq!(asked, Some(3));
    }

    #[test]
    fn vectors_round_trip_as_float32_bytes() {
        let v = vec![0.5, -1.25, 3.0e-8, f32::MAX];
        let bytes = to_bytes(&v);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &0.5f32.to_le_bytes());
        assert_eq!(from_bytes(&bytes), Some(v));
        assert_eq!(from_bytes(&[]), None);
        assert_eq!(from_bytes(&[0, 0, 0]), None);
        assert_eq!(from_bytes(&f32::NAN.to_le_bytes()), None);
        assert_eq!(from_bytes(&vec![0; (MAX_DIMENSIONS + 1) * 4]), None);
    }
}
