//! Draws per second of the epoch sampler, for `bench/sampler.py`.
//!
//! ```text
//! cargo run --release --example sampler_bench -- 1000000 10000000 16777217
//! ```
//!
//! For each size N: a train list of two classes 90:10, inverse-frequency class weights, and
//! one epoch of N draws with and without replacement. Prints one JSON line per run (best of
//! three, after a warm-up run).

use std::time::Instant;

use balance_split::sampler::{global, Source, Weighted};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a size"))
        .collect();
    for n in sizes {
        // 90:10 interleaved so classes mix as in a real split.
        let labels: Vec<u32> = (0..n).map(|i| u32::from(i % 10 == 9)).collect();
        let minority = labels.iter().filter(|&&l| l == 1).count();
        let majority = n - minority;
        let class_weights = vec![n as f64 / majority as f64, n as f64 / minority as f64];
        for replacement in [true, false] {
            let w = Weighted {
                class_weights: class_weights.clone(),
                replacement,
                num_samples: n as u64,
            };
            let src = Source {
                labels: &labels,
                num_classes: 2,
                weighted: Some(&w),
                shuffle: true,
            };
            let mut best = f64::INFINITY;
            let mut checksum = 0usize;
            for run in 0..4 {
                let t = Instant::now();
                let e = global(&src, 42, run).expect("epoch");
                let secs = t.elapsed().as_secs_f64();
                checksum = checksum.wrapping_add(e[e.len() / 2]);
                if run > 0 {
                    best = best.min(secs);
                }
            }
            println!(
                "{{\"impl\": \"balance-split\", \"n\": {n}, \"replacement\": {replacement}, \"seconds\": {best:.6}, \"draws_per_s\": {:.0}, \"checksum\": {checksum}}}",
                n as f64 / best
            );
        }
    }
}
