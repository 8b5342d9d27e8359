//! SHA-256 (FIPS 180-4), small and dependency-free.
//!
//! Why write one? resilient-llm's cache keys must be hashes (see its `core::cache::key`), and the core cannot reach
//! for the browser's `crypto.subtle.digest`: it is asynchronous, absent from native builds, and
//! would put JavaScript in the core. A hashing crate would do, but the compression function is
//! forty lines and a well-known set of test vectors pins it down, which is less than a dependency
//! costs in the wasm and in review. It is a crate of its own so that it alone is built for speed
//! (`opt-level = 3`, the rest of the wasm for size): a cache hit hashes its request twice (the headers,
//! then the key), and at `opt-level = "z"` that was the largest item of a hit's CPU time.
//!
//! The hasher is streaming ([`Sha256::update`] any number of times, then [`Sha256::finish`]), so key
//! derivation can feed length-prefixed fields one after another without building one big buffer.
//! Its `Debug` output shows nothing of the buffered input, which may hold a credential.

use std::fmt;

/// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The first 32 bits of the fractional parts of the square roots of the first 8 primes.
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A streaming SHA-256 hasher.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    /// Input not yet compressed: always fewer than 64 bytes between calls.
    buffer: [u8; 64],
    buffered: usize,
    /// Total input length in bytes (the padding needs it in bits, modulo 2^64).
    length: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Sha256 {
    /// A hasher with no input yet.
    pub fn new() -> Self {
        Sha256 {
            state: H0,
            buffer: [0; 64],
            buffered: 0,
            length: 0,
        }
    }

    /// Feeds `data`; the digest is the same however the input is split across calls.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            let block = self.buffer;
            compress(&mut self.state, &block);
            self.buffered = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Pads the input and returns the 32-byte digest.
    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.length.wrapping_mul(8);
        // A 0x80 byte, zeros up to 56 mod 64, then the bit length, big-endian.
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let zeros = (119 - self.buffered) % 64;
        pad[1 + zeros..9 + zeros].copy_from_slice(&bits.to_be_bytes());
        let length = self.length;
        self.update(&pad[..9 + zeros]);
        debug_assert_eq!(self.buffered, 0);
        self.length = length;
        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }
}

/// One round of the compression function over a 64-byte block.
#[allow(clippy::needless_range_loop)] // Index loops on purpose, see below.
fn compress(state: &mut [u32; 8], block: &[u8]) {
    // Plain index loops: at the size-first optimisation level of the wasm build, iterator adapters
    // (`zip`, an array's `into_iter`) stay out-of-line calls, which cost more than the arithmetic.
    let mut w = [0u32; 64];
    for t in 0..16 {
        let at = 4 * t;
        w[t] = u32::from_be_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
    }
    for t in 16..64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    let worked = [a, b, c, d, e, f, g, h];
    for i in 0..8 {
        state[i] = state[i].wrapping_add(worked[i]);
    }
}

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(data);
    hasher.finish()
}

/// `bytes` as lowercase hexadecimal, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex256(data: &[u8]) -> String {
        hex(&sha256(data))
    }

    #[test]
    fn nist_vectors() {
        assert_eq!(
            hex256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex256(
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno\
                  ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
            ),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        );
    }

    #[test]
    fn one_million_a() {
        let want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
        assert_eq!(hex256(&vec![b'a'; 1_000_000]), want);
        // The same, fed in uneven pieces that straddle block boundaries.
        let mut hasher = Sha256::new();
        let piece = [b'a'; 997];
        let mut left = 1_000_000;
        while left > 0 {
            let n = left.min(piece.len());
            hasher.update(&piece[..n]);
            left -= n;
        }
        assert_eq!(hex(&hasher.finish()), want);
    }

    #[test]
    fn every_split_point_of_200_bytes() {
        let data: Vec<u8> = (0..200u8).collect();
        let want = "1901da1c9f699b48f6b2636e65cbf73abf99d0441ef67f5c540a42f7051dec6f";
        assert_eq!(hex256(&data), want);
        for split in 0..=data.len() {
            let mut hasher = Sha256::new();
            hasher.update(&data[..split]);
            hasher.update(&data[split..]);
            assert_eq!(hex(&hasher.finish()), want, "split at {split}");
        }
        for split in (0..=data.len()).step_by(7) {
            let mut hasher = Sha256::new();
            hasher.update(&data[..split]);
            hasher.update(&[]);
            for chunk in data[split..].chunks(13) {
                hasher.update(chunk);
            }
            assert_eq!(hex(&hasher.finish()), want, "split at {split}, then 13s");
        }
    }

    #[test]
    fn every_length_around_the_padding_boundaries() {
        // The digest of the 32-byte digests of the messages `i % 251` for i < n, n in 0..300,
        // computed with Python's hashlib: covers lengths 55, 56, 63, 64, 119, 120 and the rest.
        let mut all = Sha256::new();
        for n in 0..300usize {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            all.update(&sha256(&data));
        }
        assert_eq!(
            hex(&all.finish()),
            "fa70b867db0a30acb7218d62945db0df52eb393808b30675ea9aac6b058a9a9d"
        );
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn debug_shows_no_input() {
        let mut hasher = Sha256::default();
        hasher.update(b"sk-secret");
        assert_eq!(format!("{hasher:?}"), "Sha256 { length: 9, .. }");
    }
}
