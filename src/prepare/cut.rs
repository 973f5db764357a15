//! The user's count rules, pure: where a shuffled class list is cut.
//!
//! Ratio mode: `t = int(n * train_ratio)`, `v = t + int(n * val_ratio)` in IEEE f64 with
//! truncation; for `n > 1`, `t` is raised to 1 and `v` to `min(t + 1, n)` so train and val
//! are never empty (test may be). K-fold mode: `n_folds` contiguous chunks whose sizes differ
//! by at most one (the first `n % n_folds` one larger, as scikit-learn's `KFold`), and a
//! validation count of `round(n * val_fraction)` (half to even, as Python's `round`) taken
//! from the front of the training pool, clamped to `[1, pool - 1]` when the pool has two or
//! more entries, else 0.

use std::ops::Range;

/// `(t, v)`: train is `[..t]`, val `[t..v]`, test `[v..]`.
pub fn ratio_cuts(n: usize, train_ratio: f64, val_ratio: f64) -> (usize, usize) {
    let mut t = (n as f64 * train_ratio) as usize;
    let mut v = t + (n as f64 * val_ratio) as usize;
    if n > 1 {
        if t == 0 {
            t = 1;
        }
        if v <= t {
            v = (t + 1).min(n);
        }
    }
    // Ratios below 1 keep both inside the list; the clamp only guards the arithmetic.
    (t.min(n), v.min(n))
}

/// The index ranges of the `k` chunks of a list of `n`.
pub fn chunks(n: usize, k: usize) -> Vec<Range<usize>> {
    let mut start = 0;
    (0..k)
        .map(|f| {
            let size = n / k + usize::from(f < n % k);
            start += size;
            start - size..start
        })
        .collect()
}

/// How many of a class of `n` with a training pool of `pool` go to val.
pub fn val_count(n: usize, pool: usize, val_fraction: f64) -> usize {
    let want = (n as f64 * val_fraction).round_ties_even() as usize;
    if pool > 1 {
        want.clamp(1, pool - 1)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small classes and odd ratios, the counts worked out by the user's rules.
    #[test]
    fn ratio_counts_for_small_classes() {
        let cases = [
            // (n, train, val) -> (t, v)
            ((1, 0.7, 0.15), (0, 0)),
            ((2, 0.7, 0.15), (1, 2)),
            ((3, 0.7, 0.15), (2, 3)),
            ((7, 0.7, 0.15), (4, 5)),
            ((7, 0.34, 0.33), (2, 4)),
            ((10, 0.7, 0.2), (7, 9)),
            ((3, 0.1, 0.1), (1, 2)),
            ((100, 0.7, 0.15), (70, 85)),
            ((85, 0.7, 0.15), (59, 71)),
            ((2, 0.5, 0.5), (1, 2)),
        ];
        for ((n, tr, va), want) in cases {
            assert_eq!(ratio_cuts(n, tr, va), want, "n={n} train={tr} val={va}");
        }
    }

    #[test]
    fn chunks_partition_with_the_larger_first() {
        assert_eq!(chunks(7, 3), [0..3, 3..5, 5..7]);
        assert_eq!(chunks(2, 5), [0..1, 1..2, 2..2, 2..2, 2..2]);
        assert_eq!(chunks(10, 5), [0..2, 2..4, 4..6, 6..8, 8..10]);
    }

    #[test]
    fn val_counts_round_half_to_even_and_clamp() {
        assert_eq!(val_count(10, 8, 0.25), 2); // 2.5 -> 2
        assert_eq!(val_count(14, 11, 0.25), 4); // 3.5 -> 4
        assert_eq!(val_count(100, 80, 0.15), 15);
        assert_eq!(val_count(3, 2, 0.15), 1); // 0 raised to 1
        assert_eq!(val_count(5, 4, 0.99), 3); // 5 lowered to pool - 1
        assert_eq!(val_count(2, 1, 0.5), 0);
    }
}
