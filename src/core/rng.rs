//! A tiny, seedable pseudo-random generator for jitter.
//!
//! Why not `rand` or `getrandom` here? The core has no platform: it cannot ask the OS or
//! `crypto.getRandomValues` for entropy, and it should not have to. The wasm layer seeds an [`Rng`]
//! once from real entropy; native tests seed it with a constant and get the same delays on every
//! run. Jitter needs *decorrelation between clients*, not unpredictability against an attacker, so a
//! cryptographic generator would be dead weight in the wasm binary.
//!
//! Why SplitMix64? One `u64` of state, a handful of multiply-xor-shift instructions, every seed
//! (including 0) is valid, and its output passes BigCrush. [`Rng::below`] uses Lemire's
//! multiply-and-reject method, so bounded draws are exactly uniform (no modulo bias) and almost
//! never loop.

/// A SplitMix64 generator. Cheap to clone; cloning forks the stream (both copies produce the same
/// sequence from then on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`. Every seed is valid.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw from `[0, n)`; `0` when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire, "Fast Random Integer Generation in an Interval" (2019): the high word of
        // `x * n` is uniform in [0, n) once the low word avoids the `2^64 mod n` biased values.
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::new(43);
        assert_ne!(Rng::new(42).next_u64(), c.next_u64());
    }

    #[test]
    fn known_splitmix64_vector() {
        // Reference output of SplitMix64 seeded with 0.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_edge_cases() {
        let mut r = Rng::new(7);
        assert_eq!(r.below(0), 0);
        for _ in 0..100 {
            assert_eq!(r.below(1), 0);
            assert!(r.below(u64::MAX) < u64::MAX);
            assert!(r.below(3) < 3);
        }
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut r = Rng::new(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[r.below(10) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
