//! Dropout's mask, `1 / (1 - p)` where an element is kept and 0 where it is dropped, and
//! its application, spread over rayon's threads. burn's CPU backend draws a Bernoulli
//! tensor element by element on one thread, multiplies, then scales: three passes.
//!
//! The mask is a function of the seed alone: element `i` keeps when the `i`-th word of
//! ChaCha8's stream for that seed is at least `p 2^32`, so chunks seek to their first
//! word and the same mask comes out on any number of threads. The backward draws it again
//! from the seed rather than keep a tensor of it.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Elements per task, a multiple of ChaCha's 16-word block.
const CHUNK: usize = 1 << 14;

/// `x * mask` for the mask of `p` and `seed`; also the backward, with `x` the output's
/// gradient.
pub fn apply(x: &[f32], p: f64, seed: u64) -> Vec<f32> {
    // A drop probability `p` keeps words >= p 2^32; rounded to the nearest word.
    let threshold = (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
    let scale = (1.0 / (1.0 - p)) as f32;
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(k, (out, x))| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_word_pos((k * CHUNK) as u128);
            for (o, &v) in out.iter_mut().zip(x) {
                let keep = f32::from(u8::from(rng.next_u32() >= threshold));
                *o = v * keep * scale;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_the_seeds_words_against_the_threshold_on_any_thread_count() {
        let n = 3 * CHUNK + 77;
        let x: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let five = rayon::ThreadPoolBuilder::new()
            .num_threads(5)
            .build()
            .unwrap();
        let a = one.install(|| apply(&x, 0.1, 42));
        let b = five.install(|| apply(&x, 0.1, 42));
        assert_eq!(a, b);
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let threshold = (0.1f64 * 4_294_967_296.0).round() as u32;
        for (i, (&v, &y)) in x.iter().zip(&a).enumerate() {
            let want = if rng.next_u32() >= threshold {
                v / 0.9
            } else {
                0.0
            };
            assert_eq!(y, want, "element {i}");
        }
        let kept = a.iter().filter(|v| **v != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.9).abs() < 0.01, "{kept}");
        assert_ne!(apply(&x, 0.1, 43), a, "another seed, another mask");
    }

    #[test]
    fn no_drop_probability_keeps_everything() {
        let x = [1.0f32, -2.0, 3.5];
        assert_eq!(apply(&x, 0.0, 7), x);
    }
}
