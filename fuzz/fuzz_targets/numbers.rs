//! Numbers from fuzz input, biased towards the interesting: small, 16-bit, any `u64`, or an edge
//! value (0, 1, the caller's favourite, `u32::MAX`, `u64::MAX - 1`, `u64::MAX`). Shared by the
//! operation-sequence targets.

use libfuzzer_sys::arbitrary::Unstructured;

/// A biased number; `edge` is one more interesting value for this target (a default setting).
pub fn num(u: &mut Unstructured, edge: u64) -> u64 {
    let tag = u.arbitrary::<u8>().unwrap_or(0);
    match tag % 4 {
        0 => u64::from(tag >> 2),
        1 => u64::from(u.arbitrary::<u16>().unwrap_or(0)),
        2 => u.arbitrary::<u64>().unwrap_or(0),
        _ => [0, 1, edge, u64::from(u32::MAX), u64::MAX - 1, u64::MAX][usize::from(tag >> 2) % 6],
    }
}

/// A biased number that fits a `u32`.
pub fn num32(u: &mut Unstructured, edge: u64) -> u32 {
    u32::try_from(num(u, edge)).unwrap_or(u32::MAX)
}
