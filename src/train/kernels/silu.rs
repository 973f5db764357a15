//! SiLU, `x * sigmoid(x)`, and its gradient in one pass each over the elements, spread
//! over rayon's threads. burn's CPU backend runs it as separate element-wise operations
//! (the sigmoid, the product, and as many again for the backward) on one thread, which
//! took 3.4-6.6 times PyTorch's time (docs/performance.md).

use rayon::prelude::*;

/// Elements per task: large enough that scheduling is negligible against the exponentials.
const CHUNK: usize = 1 << 14;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub fn forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v * sigmoid(v);
            }
        });
    out
}

/// `d silu / dx = s + x s (1 - s)` with `s = sigmoid(x)`, times the output gradient.
pub fn backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), grad.len(), "SiLU input and gradient");
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
        .for_each(|(out, (x, grad))| {
            for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
                let s = sigmoid(v);
                *o = g * s * (1.0 + v * (1.0 - s));
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The forward is the definition in f64, the backward its derivative by central
        /// differences (in f64, where the step's error is far below the tolerance).
        #[test]
        fn the_values_and_the_derivative_are_the_definitions(
            x in prop::collection::vec(-30f32..30f32, 0..3000),
        ) {
            let f = |v: f64| v / (1.0 + (-v).exp());
            let grad: Vec<f32> = x.iter().map(|v| 0.5 + v.sin()).collect();
            let (y, dx) = (forward(&x), backward(&x, &grad));
            for ((&v, (&a, &d)), &g) in x.iter().zip(y.iter().zip(&dx)).zip(&grad) {
                let v = v as f64;
                prop_assert!((a as f64 - f(v)).abs() <= 1e-5 * f(v).abs().max(1.0), "silu({v}) = {a}");
                let h = 1e-6;
                let want = g as f64 * (f(v + h) - f(v - h)) / (2.0 * h);
                prop_assert!((d as f64 - want).abs() <= 1e-4 * want.abs().max(1.0), "silu'({v}) = {d}, want {want}");
            }
        }
    }

    #[test]
    fn the_extremes_are_finite() {
        let x = [-1e30f32, -100.0, 0.0, 100.0, 1e30];
        assert_eq!(forward(&x), [-0.0, -0.0, 0.0, 100.0, 1e30]);
        assert!(backward(&x, &[1.0; 5]).iter().all(|v| v.is_finite()));
    }
}
