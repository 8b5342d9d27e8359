//! A stable sort by key, as an order of indices.
//!
//! Why not `slice::sort_by`? The standard library's sorts add some 15 KB of code to the wasm. Why not
//! an insertion sort, which is tiny? Its time is quadratic, and what is sorted here comes from callers:
//! a request body of a few MiB can be one JSON object with hundreds of thousands of members, and its
//! canonical form (the cache key) sorts them. A merge sort of indices is small, `O(n log n)` whatever
//! the input, and sorts items that are not `Copy` without moving them.

/// The indices `0..len` ordered by `key`, ties in index order.
pub fn stable_order<'a, K: Ord + ?Sized + 'a>(
    len: usize,
    key: impl Fn(usize) -> &'a K,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut scratch = Vec::with_capacity(len / 2 + 1);
    merge_sort(&mut order, &mut scratch, &key);
    order
}

fn merge_sort<'a, K: Ord + ?Sized + 'a>(
    items: &mut [usize],
    scratch: &mut Vec<usize>,
    key: &impl Fn(usize) -> &'a K,
) {
    let len = items.len();
    if len <= 12 {
        for i in 1..len {
            let mut j = i;
            while j > 0 && key(items[j - 1]) > key(items[j]) {
                items.swap(j - 1, j);
                j -= 1;
            }
        }
        return;
    }
    let mid = len / 2;
    let (left, right) = items.split_at_mut(mid);
    merge_sort(left, scratch, key);
    merge_sort(right, scratch, key);
    if key(items[mid - 1]) <= key(items[mid]) {
        return;
    }
    scratch.clear();
    scratch.extend_from_slice(&items[..mid]);
    let (mut from_left, mut from_right) = (0, mid);
    for slot in 0..len {
        let take_right = from_right < len
            && (from_left == scratch.len() || key(items[from_right]) < key(scratch[from_left]));
        if take_right {
            items[slot] = items[from_right];
            from_right += 1;
        } else {
            items[slot] = scratch[from_left];
            from_left += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_key_and_keeps_ties_in_order() {
        let keys = ["b", "a", "c", "a", "b", "a"];
        assert_eq!(stable_order(keys.len(), |i| keys[i]), [1, 3, 5, 0, 4, 2]);
        assert_eq!(stable_order(0, |i| keys[i]), Vec::<usize>::new());
        // Long enough to merge, with many ties.
        let many: Vec<String> = (0..1000).map(|i| format!("k{}", (i * 7919) % 97)).collect();
        let order = stable_order(many.len(), |i| many[i].as_str());
        for pair in order.windows(2) {
            let (a, b) = (&many[pair[0]], &many[pair[1]]);
            assert!(
                a < b || (a == b && pair[0] < pair[1]),
                "{a}@{} {b}@{}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn a_million_keys_in_reverse_order_sort_in_n_log_n() {
        // Quadratic work here would be 5 * 10^11 comparisons: the test would not finish.
        let keys: Vec<u32> = (0..1_000_000).rev().collect();
        let order = stable_order(keys.len(), |i| &keys[i]);
        assert_eq!(order.first(), Some(&999_999));
        assert_eq!(order.last(), Some(&0));
    }
}
