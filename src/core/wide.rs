//! Division of 128-bit integers by 64-bit ones, for the few exact cost and rate computations.
//!
//! Why not `u128 / u128`? It links compiler-builtins' general 128-bit division (some 1.2 KB of
//! wasm). Every divisor here fits in 64 bits, and nearly every dividend too: the common case is one
//! native 64-bit division, the rest a 64-step long division.

/// `(n / d, n % d)`. Panics if `d` is 0.
pub fn div_rem(n: u128, d: u64) -> (u128, u64) {
    let (hi, lo) = ((n >> 64) as u64, n as u64);
    if hi == 0 {
        return (u128::from(lo / d), lo % d);
    }
    // The high half divides natively; its remainder (below `d`) then takes in `lo` bit by bit.
    let (q_hi, mut r) = (hi / d, hi % d);
    let mut q_lo = 0u64;
    for bit in (0..64).rev() {
        // 2r + bit < 2d may not fit in 64 bits: `carry` is its 65th bit, and then it exceeds `d`.
        let carry = r >> 63 == 1;
        r = (r << 1) | ((lo >> bit) & 1);
        q_lo <<= 1;
        if carry || r >= d {
            r = r.wrapping_sub(d);
            q_lo |= 1;
        }
    }
    ((u128::from(q_hi) << 64) | u128::from(q_lo), r)
}

/// `n / d` rounded up. Panics if `d` is 0.
pub fn div_ceil(n: u128, d: u64) -> u128 {
    let (q, r) = div_rem(n, d);
    q + u128::from(r != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        for (n, d) in [
            (0, 1),
            (u128::MAX, 1),
            (u128::MAX, u64::MAX),
            (u128::MAX, 3),
            (u128::from(u64::MAX) + 1, u64::MAX),
            ((u128::from(u64::MAX) << 64) - 1, u64::MAX),
            (7, 60_000),
        ] {
            let d128 = u128::from(d);
            assert_eq!(div_rem(n, d), (n / d128, (n % d128) as u64), "{n} / {d}");
            assert_eq!(div_ceil(n, d), n.div_ceil(d128), "{n} / {d}");
        }
    }

    proptest! {
        #[test]
        fn matches_native_division(hi in any::<u64>(), lo in any::<u64>(), d in 1..=u64::MAX) {
            let n = (u128::from(hi) << 64) | u128::from(lo);
            let d128 = u128::from(d);
            prop_assert_eq!(div_rem(n, d), (n / d128, (n % d128) as u64));
            prop_assert_eq!(div_ceil(n, d), n.div_ceil(d128));
        }
    }
}
