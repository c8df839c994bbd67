//! Top-k selection shared by `CounterTable::top` and `WindowedCounter::top`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Rank order: a larger total first, then the smaller key. Larger values of this tuple rank higher.
type Rank = (i64, Reverse<i64>);

/// At most `k` of `entries` (key, total) with the largest non-zero totals, largest first, ties by the
/// smaller key. A heap of the best `k` seen so far keeps it `O(n log k)` for a large table.
pub(crate) fn top_k(entries: impl Iterator<Item = (i64, i64)>, k: usize) -> (Vec<i64>, Vec<i64>) {
    if k == 0 {
        return (Vec::new(), Vec::new());
    }
    // The weakest of the kept entries sits on top of this min-heap.
    let mut kept: BinaryHeap<Reverse<Rank>> = BinaryHeap::new();
    for (key, total) in entries {
        if total == 0 {
            continue;
        }
        let rank = (total, Reverse(key));
        if kept.len() < k {
            kept.push(Reverse(rank));
        } else if kept.peek().is_some_and(|weakest| rank > weakest.0) {
            kept.pop();
            kept.push(Reverse(rank));
        }
    }
    let mut ranked: Vec<Rank> = kept.into_iter().map(|r| r.0).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked
        .into_iter()
        .map(|(total, Reverse(key))| (key, total))
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_first_ties_by_smaller_key_zeros_left_out() {
        let entries = [(5, 2), (3, 7), (9, 2), (1, 0), (-4, 2), (8, -1)];
        assert_eq!(
            top_k(entries.into_iter(), 4),
            (vec![3, -4, 5, 9], vec![7, 2, 2, 2])
        );
        assert_eq!(top_k(entries.into_iter(), 0), (vec![], vec![]));
        assert_eq!(
            top_k(entries.into_iter(), usize::MAX),
            (vec![3, -4, 5, 9, 8], vec![7, 2, 2, 2, -1])
        );
    }
}
