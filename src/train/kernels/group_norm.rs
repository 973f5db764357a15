//! Group normalisation with a per-channel affine, forward and backward, one pass over each
//! sample's groups on rayon's threads. burn's CPU backend runs it as a dozen element-wise
//! operations and reductions on one thread (and as many again backward), which took 1.1 to
//! 5.6 times PyTorch's time (docs/performance.md).
//!
//! Statistics are accumulated in f64, in element order, and the parameters' gradients are
//! summed over samples in sample order: the same bytes whatever the number of threads.

use rayon::prelude::*;

/// `x [batch, channels, size]` in `groups` groups of consecutive channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub channels: usize,
    pub size: usize,
    pub groups: usize,
}

impl Dims {
    fn sample(&self) -> usize {
        self.channels * self.size
    }

    fn group(&self) -> usize {
        self.sample() / self.groups
    }

    pub fn len(&self) -> usize {
        self.batch * self.sample()
    }
}

/// Mean and `1 / sqrt(var + eps)` of one group's elements (the biased variance, as
/// burn's and PyTorch's group norm).
fn moments(x: &[f32], eps: f64) -> (f32, f32) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
}

fn check(d: &Dims, x: &[f32], gamma: &[f32]) {
    assert!(d.groups > 0 && d.channels % d.groups == 0, "{d:?}");
    assert_eq!(x.len(), d.len(), "group norm input");
    assert_eq!(gamma.len(), d.channels, "group norm weight");
}

pub fn forward(d: &Dims, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    check(d, x, gamma);
    let (size, group) = (d.size, d.group());
    let mut out = vec![0f32; d.len()];
    out.par_chunks_mut(group)
        .zip(x.par_chunks(group))
        .enumerate()
        .for_each(|(i, (out, x))| {
            let (mean, rstd) = moments(x, eps);
            let first = (i % d.groups) * (d.channels / d.groups);
            for (k, (out, x)) in out.chunks_mut(size).zip(x.chunks(size)).enumerate() {
                let (g, b) = (gamma[first + k] * rstd, beta[first + k]);
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = (v - mean) * g + b;
                }
            }
        });
    out
}

/// The gradients for `x`, `gamma` and `beta`.
pub struct Grads {
    pub x: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// With `xhat = (x - mean) rstd` and `a = dy gamma`, per group:
/// `dx = rstd (a - mean(a) - xhat mean(a xhat))`; per channel `dgamma = sum(dy xhat)`,
/// `dbeta = sum(dy)`.
pub fn backward(d: &Dims, x: &[f32], gamma: &[f32], grad: &[f32], eps: f64) -> Grads {
    check(d, x, gamma);
    assert_eq!(grad.len(), d.len(), "group norm output gradient");
    let (size, group, per) = (d.size, d.group(), d.channels / d.groups);
    let mut dx = vec![0f32; d.len()];
    // Per sample: its dx, and its [dgamma | dbeta] partial.
    let partials: Vec<Vec<f64>> = dx
        .par_chunks_mut(d.sample())
        .zip(x.par_chunks(d.sample()).zip(grad.par_chunks(d.sample())))
        .map(|(dx, (x, dy))| {
            let mut partial = vec![0f64; 2 * d.channels];
            for (g, ((dx, x), dy)) in dx
                .chunks_mut(group)
                .zip(x.chunks(group))
                .zip(dy.chunks(group))
                .enumerate()
            {
                let (mean, rstd) = moments(x, eps);
                let (mut sum_a, mut sum_axhat) = (0f64, 0f64);
                for (k, (x, dy)) in x.chunks(size).zip(dy.chunks(size)).enumerate() {
                    let c = g * per + k;
                    let (mut dgamma, mut dbeta) = (0f64, 0f64);
                    for (&v, &dy) in x.iter().zip(dy) {
                        let xhat = ((v - mean) * rstd) as f64;
                        dgamma += dy as f64 * xhat;
                        dbeta += dy as f64;
                    }
                    partial[c] = dgamma;
                    partial[d.channels + c] = dbeta;
                    sum_a += dbeta * gamma[c] as f64;
                    sum_axhat += dgamma * gamma[c] as f64;
                }
                let n = group as f64;
                let (mean_a, mean_axhat) = ((sum_a / n) as f32, (sum_axhat / n) as f32);
                for (k, ((dx, x), dy)) in dx
                    .chunks_mut(size)
                    .zip(x.chunks(size))
                    .zip(dy.chunks(size))
                    .enumerate()
                {
                    let gm = gamma[g * per + k];
                    for ((o, &v), &dy) in dx.iter_mut().zip(x).zip(dy) {
                        let xhat = (v - mean) * rstd;
                        *o = rstd * (dy * gm - mean_a - xhat * mean_axhat);
                    }
                }
            }
            partial
        })
        .collect();
    let mut sums = vec![0f64; 2 * d.channels];
    for partial in &partials {
        for (s, p) in sums.iter_mut().zip(partial) {
            *s += p;
        }
    }
    Grads {
        x: dx,
        gamma: sums[..d.channels].iter().map(|&v| v as f32).collect(),
        beta: sums[d.channels..].iter().map(|&v| v as f32).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The loss `sum(forward(x) * r)` in f64, for central differences.
    fn loss(d: &Dims, x: &[f64], gamma: &[f64], beta: &[f64], r: &[f32], eps: f64) -> f64 {
        let (size, group, per) = (d.size, d.group(), d.channels / d.groups);
        let mut total = 0.0;
        for (i, x) in x.chunks(group).enumerate() {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            for (j, &v) in x.iter().enumerate() {
                let c = (i % d.groups) * per + j / size;
                let y = (v - mean) / (var + eps).sqrt() * gamma[c] + beta[c];
                total += y * r[i * group + j] as f64;
            }
        }
        total
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The output is the definition and each gradient the loss's derivative by central
        /// differences in f64.
        #[test]
        fn the_values_and_the_gradients_are_the_definitions(
            batch in 1usize..3, groups in 1usize..4, per in 1usize..4, size in 1usize..7,
            seed in any::<u32>(),
        ) {
            let d = Dims { batch, channels: groups * per, size, groups };
            let eps = 1e-5;
            let x = values(d.len(), seed);
            let gamma = values(d.channels, seed ^ 7);
            let beta = values(d.channels, seed ^ 9);
            let r = values(d.len(), seed ^ 11);
            let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
            let (xw, gw, bw) = (wide(&x), wide(&gamma), wide(&beta));
            let y = forward(&d, &x, &gamma, &beta, eps);
            let one_hot = |i: usize| { let mut e = vec![0f32; d.len()]; e[i] = 1.0; e };
            for (i, &got) in y.iter().enumerate() {
                let want = loss(&d, &xw, &gw, &bw, &one_hot(i), eps);
                prop_assert!((got as f64 - want).abs() <= 1e-4 * want.abs().max(1.0), "y[{i}] {got} vs {want}");
            }
            let g = backward(&d, &x, &gamma, &r, eps);
            let h = 1e-6;
            let nudge = |v: &[f64], i: usize, by: f64| { let mut v = v.to_vec(); v[i] += by; v };
            for i in 0..d.len() {
                let want = (loss(&d, &nudge(&xw, i, h), &gw, &bw, &r, eps)
                    - loss(&d, &nudge(&xw, i, -h), &gw, &bw, &r, eps)) / (2.0 * h);
                prop_assert!((g.x[i] as f64 - want).abs() <= 1e-3 * want.abs().max(1.0), "dx[{i}] {} vs {want}", g.x[i]);
            }
            for c in 0..d.channels {
                let want = (loss(&d, &xw, &nudge(&gw, c, h), &bw, &r, eps)
                    - loss(&d, &xw, &nudge(&gw, c, -h), &bw, &r, eps)) / (2.0 * h);
                prop_assert!((g.gamma[c] as f64 - want).abs() <= 1e-4 * want.abs().max(1.0), "dgamma[{c}] {} vs {want}", g.gamma[c]);
                let want = (loss(&d, &xw, &gw, &nudge(&bw, c, h), &r, eps)
                    - loss(&d, &xw, &gw, &nudge(&bw, c, -h), &r, eps)) / (2.0 * h);
                prop_assert!((g.beta[c] as f64 - want).abs() <= 1e-4 * want.abs().max(1.0), "dbeta[{c}] {} vs {want}", g.beta[c]);
            }
        }
    }
}
