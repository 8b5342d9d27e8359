//! The semantic cache's vectors: exact cosine search within an exact-match digest, bounded in
//! entries and bytes, least recently used evicted first.
//!
//! Vectors are normalised once, when they come in ([`normalized`]), so a similarity is one dot
//! product. Entries live in one `Vec`, scanned in full on every lookup: at a few thousand entries a
//! scan of contiguous `f32`s costs less than keeping any other structure up to date (see the README
//! for the cost at 1k and 10k entries), and it always finds the best entry.
//!
//! Every vector comes from an upstream, so none is trusted: one that is empty, longer than
//! [`MAX_DIMENSIONS`], holds a NaN or an infinity, or has no direction (all zeros) is neither stored
//! nor looked up, and a vector of another length than an entry's never matches it. Nothing here
//! panics on any input.

/// Most dimensions of a vector (the largest embedding models give 4,096; this leaves room).
pub const MAX_DIMENSIONS: usize = 16_384;

/// Bytes counted for an entry besides its vector and value: its digest, bookkeeping and the
/// allocations' headers.
pub const ENTRY_OVERHEAD: usize = 96;

/// Rounding allowance on the threshold: a vector's dot product with itself may come out a few ulps
/// under 1, and a threshold of 1 must still match it.
const ROUNDING: f32 = 1e-6;

/// `vector` scaled to unit length, or `None` when it is no direction: empty, longer than
/// [`MAX_DIMENSIONS`], not finite, or zero. The length is computed in `f64`, so components up to
/// `f32::MAX` do not overflow it.
pub fn normalized(vector: &[f32]) -> Option<Vec<f32>> {
    if vector.is_empty() || vector.len() > MAX_DIMENSIONS {
        return None;
    }
    let mut squares = 0.0f64;
    for &x in vector {
        if !x.is_finite() {
            return None;
        }
        squares += f64::from(x) * f64::from(x);
    }
    let length = squares.sqrt();
    if !length.is_normal() {
        return None;
    }
    let unit: Vec<f32> = vector
        .iter()
        .map(|&x| (f64::from(x) / length) as f32)
        .collect();
    // Components that all underflowed (a vector of subnormals) leave no direction either.
    unit.iter().any(|&x| x != 0.0).then_some(unit)
}

/// The dot product of two vectors of the same length, in eight independent sums written out (so
/// that even the size-optimised wasm build keeps them in registers and pipelines the multiplies).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let mut a_blocks = a.chunks_exact(8);
    let mut b_blocks = b.chunks_exact(8);
    for (x, y) in (&mut a_blocks).zip(&mut b_blocks) {
        let (Ok(x), Ok(y)) = (<&[f32; 8]>::try_from(x), <&[f32; 8]>::try_from(y)) else {
            continue;
        };
        s[0] += x[0] * y[0];
        s[1] += x[1] * y[1];
        s[2] += x[2] * y[2];
        s[3] += x[3] * y[3];
        s[4] += x[4] * y[4];
        s[5] += x[5] * y[5];
        s[6] += x[6] * y[6];
        s[7] += x[7] * y[7];
    }
    let rest: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + rest
}

/// A lookup's answer: the most similar entry's value and its similarity, in `-1..=1`.
#[derive(Debug, PartialEq)]
pub struct Hit<'a, T> {
    /// The stored value.
    pub value: &'a T,
    /// The cosine similarity of the question to the entry's.
    pub similarity: f32,
}

/// One stored question.
#[derive(Debug)]
struct Slot<T> {
    digest: [u8; 32],
    vector: Box<[f32]>,
    value: T,
    bytes: usize,
    used: u64,
}

/// Vectors with values, searched by cosine within a digest (see the module doc).
#[derive(Debug)]
pub struct SemanticIndex<T> {
    slots: Vec<Slot<T>>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    tick: u64,
}

impl<T> SemanticIndex<T> {
    /// An empty index holding at most `max_entries` entries and `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        SemanticIndex {
            slots: Vec::new(),
            max_entries,
            max_bytes,
            bytes: 0,
            tick: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held (vectors, values as their sizes were given, and [`ENTRY_OVERHEAD`] each).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.bytes = 0;
    }

    /// Stores `value` (of about `value_bytes` bytes) for the question `vector` under `digest`,
    /// evicting the least recently used entries past the bounds. An entry with the same digest and
    /// the same vector (the same question, embedded by the same model) is replaced: comparing
    /// vectors for equality stops at the first differing component, so this costs far less than a
    /// lookup. Returns whether it was stored:
    /// not when `vector` is no direction ([`normalized`]) or the entry alone is past `max_bytes`.
    pub fn insert(
        &mut self,
        digest: [u8; 32],
        vector: &[f32],
        value: T,
        value_bytes: usize,
    ) -> bool {
        let Some(unit) = normalized(vector) else {
            return false;
        };
        let bytes = unit
            .len()
            .saturating_mul(4)
            .saturating_add(value_bytes)
            .saturating_add(ENTRY_OVERHEAD);
        if bytes > self.max_bytes || self.max_entries == 0 {
            return false;
        }
        let same = |slot: &Slot<T>| slot.digest == digest && *slot.vector == *unit;
        if let Some(at) = self.slots.iter().position(same) {
            let old = self.slots.swap_remove(at);
            self.bytes -= old.bytes;
        }
        self.tick += 1;
        self.slots.push(Slot {
            digest,
            vector: unit.into_boxed_slice(),
            value,
            bytes,
            used: self.tick,
        });
        self.bytes += bytes;
        while self.slots.len() > self.max_entries || self.bytes > self.max_bytes {
            self.evict_oldest();
        }
        true
    }

    /// The entry under `digest` most similar to `vector`, if its similarity is at least
    /// `threshold`; it becomes the most recently used. `None` when `vector` is no direction.
    pub fn lookup(
        &mut self,
        digest: &[u8; 32],
        vector: &[f32],
        threshold: f32,
    ) -> Option<Hit<'_, T>> {
        let unit = normalized(vector)?;
        let (at, similarity) = self.best(digest, &unit, threshold)?;
        self.tick += 1;
        let slot = self.slots.get_mut(at)?;
        slot.used = self.tick;
        Some(Hit {
            value: &slot.value,
            similarity,
        })
    }

    /// The index and similarity of the most similar entry under `digest` at or above `threshold`
    /// (the first of equals), for a unit vector.
    fn best(&self, digest: &[u8; 32], unit: &[f32], threshold: f32) -> Option<(usize, f32)> {
        let mut best: Option<(usize, f32)> = None;
        for (at, slot) in self.slots.iter().enumerate() {
            if slot.digest != *digest || slot.vector.len() != unit.len() {
                continue;
            }
            let similarity = dot(&slot.vector, unit).clamp(-1.0, 1.0);
            if similarity + ROUNDING >= threshold && best.is_none_or(|(_, b)| similarity > b) {
                best = Some((at, similarity));
            }
        }
        best
    }

    /// Drops the least recently used entry.
    fn evict_oldest(&mut self) {
        let oldest = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, slot)| slot.used)
            .map(|(at, _)| at);
        if let Some(at) = oldest {
            let slot = self.slots.swap_remove(at);
            self.bytes -= slot.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    fn index() -> SemanticIndex<&'static str> {
        SemanticIndex::new(100, 1 << 20)
    }

    /// Cosine computed the slow, obvious way in f64.
    fn reference_cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    }

    #[test]
    fn finds_the_most_similar_entry_at_or_above_the_threshold() {
        let mut index = index();
        assert!(index.insert(A, &[1.0, 0.0, 0.0], "x", 8));
        assert!(index.insert(A, &[0.0, 1.0, 0.0], "y", 8));
        assert!(index.insert(A, &[0.7, 0.7, 0.1], "xy", 8));
        let hit = index.lookup(&A, &[0.9, 0.1, 0.0], 0.5).unwrap();
        assert_eq!(*hit.value, "x");
        let expected = reference_cosine(&[1.0, 0.0, 0.0], &[0.9, 0.1, 0.0]);
        assert!((f64::from(hit.similarity) - expected).abs() < 1e-6);
        assert_eq!(
            *index.lookup(&A, &[1.0, 1.0, 0.1], 0.5).unwrap().value,
            "xy"
        );
        // Below the threshold: no hit, however close the best is.
        assert_eq!(index.lookup(&A, &[0.0, 0.0, 1.0], 0.5), None);
        assert_eq!(index.lookup(&A, &[-1.0, 0.0, 0.0], 0.1), None);
    }

    #[test]
    fn a_scaled_vector_is_the_same_direction_and_a_threshold_of_one_matches_it() {
        let mut index = index();
        let v: Vec<f32> = (0..1536)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        assert!(index.insert(A, &v, "v", 8));
        let scaled: Vec<f32> = v.iter().map(|x| x * 1000.0).collect();
        let hit = index.lookup(&A, &scaled, 1.0).unwrap();
        assert!(hit.similarity > 0.99999 && hit.similarity <= 1.0);
    }

    #[test]
    fn another_digest_never_matches() {
        let mut index = index();
        index.insert(A, &[1.0, 2.0], "a", 8);
        assert_eq!(index.lookup(&B, &[1.0, 2.0], 0.0), None);
        assert_eq!(*index.lookup(&A, &[1.0, 2.0], 0.0).unwrap().value, "a");
    }

    #[test]
    fn the_same_question_replaces_its_entry() {
        let mut index = index();
        index.insert(A, &[1.0, 2.0, 3.0], "old", 8);
        index.insert(A, &[1.0, 2.0, 3.0], "new", 8);
        index.insert(B, &[1.0, 2.0, 3.0], "other digest", 8);
        assert_eq!(index.len(), 2);
        assert_eq!(
            *index.lookup(&A, &[1.0, 2.0, 3.0], 0.99).unwrap().value,
            "new"
        );
    }

    #[test]
    fn hostile_vectors_are_neither_stored_nor_matched() {
        let mut index = index();
        index.insert(A, &[1.0, 0.0], "two", 8);
        let long = vec![1.0f32; MAX_DIMENSIONS + 1];
        let tiny = [f32::from_bits(1); 4];
        let huge = [f32::MAX; 4];
        let hostile: [&[f32]; 9] = [
            &[],
            &[0.0, 0.0],
            &[f32::NAN, 1.0],
            &[1.0, f32::INFINITY],
            &[f32::NEG_INFINITY, 0.0],
            &[-0.0, 0.0],
            &long,
            &[1.0],
            &[1.0, 0.0, 0.0],
        ];
        for (i, v) in hostile.iter().enumerate() {
            assert_eq!(index.lookup(&A, v, -1.0), None, "lookup {i}");
            // The last two are valid vectors of another length: stored, but matching no other.
            assert_eq!(index.insert(B, v, "bad", 8), i >= 7, "insert {i}");
        }
        assert_eq!(index.lookup(&A, &[1.0, 0.0, 0.0], -1.0), None);
        // Extreme but finite components still have a direction.
        assert!(index.insert(A, &huge, "huge", 8));
        assert!(index.lookup(&A, &[1.0; 4], 0.999).is_some());
        assert!(normalized(&tiny).is_some());
        assert_eq!(
            normalized(&[f32::MIN_POSITIVE / 2.0; 1]).map(|v| v.len()),
            Some(1)
        );
    }

    #[test]
    fn least_recently_used_entries_go_first() {
        let mut index = SemanticIndex::new(3, 1 << 20);
        index.insert(A, &[1.0, 0.0, 0.0, 0.0], "1", 8);
        index.insert(A, &[0.0, 1.0, 0.0, 0.0], "2", 8);
        index.insert(A, &[0.0, 0.0, 1.0, 0.0], "3", 8);
        // Using "1" makes "2" the oldest.
        assert!(index.lookup(&A, &[1.0, 0.0, 0.0, 0.0], 0.9).is_some());
        index.insert(A, &[0.0, 0.0, 0.0, 1.0], "4", 8);
        assert_eq!(index.len(), 3);
        assert_eq!(index.lookup(&A, &[0.0, 1.0, 0.0, 0.0], 0.9), None);
        for v in [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ] {
            assert!(index.lookup(&A, &v, 0.9).is_some());
        }
    }

    #[test]
    fn bytes_are_bounded() {
        let per_entry = 4 * 4 + 100 + ENTRY_OVERHEAD;
        let mut index = SemanticIndex::new(1000, per_entry * 2);
        for i in 0..10 {
            let v = [i as f32, 1.0, 0.0, 0.0];
            assert!(index.insert(A, &v, "x", 100));
            assert!(index.bytes() <= per_entry * 2);
        }
        assert_eq!(index.len(), 2);
        // An entry alone past the bound is refused, leaving the others.
        assert!(!index.insert(A, &[1.0, 0.0, 0.0, 0.0], "big", per_entry * 2));
        assert_eq!(index.len(), 2);
        index.clear();
        assert_eq!((index.len(), index.bytes()), (0, 0));
        assert!(!SemanticIndex::new(0, 1 << 20).insert(A, &[1.0], "x", 1));
    }

    #[test]
    fn dot_matches_the_reference_at_every_length() {
        for len in 1..40 {
            let a: Vec<f32> = (0..len).map(|i| (i as f32).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.7).cos()).collect();
            let expected: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!(
                (f64::from(dot(&a, &b)) - expected).abs() < 1e-4,
                "len {len}"
            );
        }
    }
}
