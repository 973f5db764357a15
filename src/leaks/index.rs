//! All pairs of 64-bit hashes within a Hamming distance, without comparing all pairs.
//!
//! Multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012): cut the 64 bits into
//! `t + 1` blocks; by pigeonhole, two hashes at most `t` bits apart agree exactly on at
//! least one block. So each block gets a table from its value to the hashes holding it,
//! the pairs sharing a bucket are the only candidates, and a candidate is checked (and
//! counted) only at the first block where it agrees, so no pair is reported twice. For
//! hashes of distinct images buckets are small and the work is close to linear; the
//! result is exactly what a brute-force scan finds (a property test checks it). No crate
//! offers this for plain `u64` keys with an arbitrary radius, hence it is written here.

use std::collections::HashMap;

/// `(i, j, distance)` with `i < j` for every pair of `hashes` at most `radius` bits apart
/// for which `keep(i, j)` holds, sorted.
pub fn pairs_within(
    hashes: &[u64],
    radius: u32,
    keep: impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize, u32)> {
    let blocks = block_masks(radius);
    let tables: Vec<HashMap<u64, Vec<u32>>> = blocks
        .iter()
        .map(|&mask| {
            let mut t: HashMap<u64, Vec<u32>> = HashMap::new();
            for (i, &h) in hashes.iter().enumerate() {
                t.entry(h & mask).or_default().push(i as u32);
            }
            t
        })
        .collect();
    let mut out = Vec::new();
    for (b, table) in tables.iter().enumerate() {
        for bucket in table.values() {
            for (x, &i) in bucket.iter().enumerate() {
                for &j in &bucket[x + 1..] {
                    let (i, j) = (i as usize, j as usize);
                    let (hi, hj) = (hashes[i], hashes[j]);
                    // Counted at the first block where the two agree.
                    if blocks[..b].iter().any(|&m| hi & m == hj & m) {
                        continue;
                    }
                    let d = (hi ^ hj).count_ones();
                    if d <= radius && keep(i.min(j), i.max(j)) {
                        out.push((i.min(j), i.max(j), d));
                    }
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// `radius + 1` masks of contiguous bits covering all 64 (sizes differ by at most one).
fn block_masks(radius: u32) -> Vec<u64> {
    let n = (radius + 1).min(64) as usize;
    let mut start = 0usize;
    (0..n)
        .map(|b| {
            let width = 64 / n + usize::from(b < 64 % n);
            let mask = if width == 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << start
            };
            start += width;
            mask
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(hashes: &[u64], radius: u32) -> Vec<(usize, usize, u32)> {
        let mut out = Vec::new();
        for i in 0..hashes.len() {
            for j in i + 1..hashes.len() {
                let d = (hashes[i] ^ hashes[j]).count_ones();
                if d <= radius {
                    out.push((i, j, d));
                }
            }
        }
        out
    }

    #[test]
    fn blocks_cover_every_bit_once() {
        for r in [0, 1, 3, 7, 10, 63, 80] {
            let m = block_masks(r);
            assert_eq!(m.iter().fold(0, |a, b| a | b), u64::MAX, "{r}");
            assert_eq!(m.iter().map(|b| b.count_ones()).sum::<u32>(), 64, "{r}");
        }
    }

    proptest! {
        /// Random hashes and near copies of them (a few bits flipped): the index finds
        /// exactly the brute-force pairs, at every radius.
        #[test]
        fn the_index_finds_exactly_the_brute_force_pairs(
            base in prop::collection::vec(any::<u64>(), 1..60),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u64>(), 0u32..12), 0..80),
            radius in 0u32..20,
        ) {
            let mut hashes = base.clone();
            for (at, bits, n) in flips {
                let mut h = base[at.index(base.len())];
                let mut b = bits;
                for _ in 0..n {
                    h ^= 1 << (b % 64);
                    b = b.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                }
                hashes.push(h);
            }
            prop_assert_eq!(pairs_within(&hashes, radius, |_, _| true), brute(&hashes, radius));
        }
    }
}
