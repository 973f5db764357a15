//! The 3x3 convolution (stride 1, padding 1) of the UNet's residual blocks and its two
//! gradients, on contiguous `f32` NCHW slices: im2col (or col2im) and one GEMM per sample.
//!
//! burn's CPU backend computes the weight gradient through its generic path, a
//! convolution whose kernel is the whole output gradient (an `N = 9` product per input
//! channel), which took 2.2-2.8 times the forward (docs/performance.md). Here the weight
//! gradient is `grad_b [O, HW] @ col_b^T [HW, 9C]` per sample, the input gradient
//! `W^T [9C, O] @ grad_b [O, HW]` folded back by col2im, and the forward
//! `W [O, 9C] @ col_b [9C, HW]`: products of the shapes GEMM is fast at.
//!
//! Every result is independent of the number of threads: samples are spread over rayon's
//! threads, each sample's product runs on one, and the weight gradient's partials (each
//! over a fixed number of samples) are summed in sample order, so a resumed run
//! reproduces its bytes on any machine.

use rayon::prelude::*;

use super::gemm::{matmul, View};

/// The sizes of one convolution: `x [batch, cin, h, w]`, `weight [cout, cin, 3, 3]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    fn hw(&self) -> usize {
        self.h * self.w
    }

    /// Rows of a sample's column matrix: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.cin * 9
    }

    pub fn x_len(&self) -> usize {
        self.batch * self.cin * self.hw()
    }

    pub fn out_len(&self) -> usize {
        self.batch * self.cout * self.hw()
    }

    pub fn weight_len(&self) -> usize {
        self.cout * self.taps()
    }
}

/// `col [9C, HW]` of one sample `x [C, H, W]`: row `c * 9 + ky * 3 + kx` holds the input
/// shifted by `(ky - 1, kx - 1)`, zero where that falls outside the image.
fn im2col(d: &Dims, x: &[f32], col: &mut [f32]) {
    let (h, w, hw) = (d.h, d.w, d.hw());
    for c in 0..d.cin {
        let plane = &x[c * hw..(c + 1) * hw];
        for k in 0..9 {
            let (dy, dx) = (k / 3, k % 3);
            let row = &mut col[(c * 9 + k) * hw..(c * 9 + k + 1) * hw];
            for y in 0..h {
                let out = &mut row[y * w..(y + 1) * w];
                // Source row y + dy - 1, columns x + dx - 1.
                let Some(sy) = (y + dy).checked_sub(1).filter(|&sy| sy < h) else {
                    out.fill(0.0);
                    continue;
                };
                let src = &plane[sy * w..(sy + 1) * w];
                match dx {
                    0 => {
                        out[0] = 0.0;
                        out[1..].copy_from_slice(&src[..w - 1]);
                    }
                    1 => out.copy_from_slice(src),
                    _ => {
                        out[..w - 1].copy_from_slice(&src[1..]);
                        out[w - 1] = 0.0;
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each row of `col [9C, HW]`, shifted back, into
/// `dx [C, H, W]`.
fn col2im(d: &Dims, col: &[f32], dx: &mut [f32]) {
    let (h, w, hw) = (d.h, d.w, d.hw());
    for c in 0..d.cin {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for k in 0..9 {
            let (dy, kx) = (k / 3, k % 3);
            let row = &col[(c * 9 + k) * hw..(c * 9 + k + 1) * hw];
            for y in 0..h {
                let Some(sy) = (y + dy).checked_sub(1).filter(|&sy| sy < h) else {
                    continue;
                };
                let from = &row[y * w..(y + 1) * w];
                let to = &mut plane[sy * w..(sy + 1) * w];
                let (to, from) = match kx {
                    0 => (&mut to[..w - 1], &from[1..]),
                    1 => (&mut to[..], from),
                    _ => (&mut to[1..], &from[..w - 1]),
                };
                for (t, f) in to.iter_mut().zip(from) {
                    *t += f;
                }
            }
        }
    }
}

/// `out [B, O, H, W] = conv3x3(x, weight) + bias`.
pub fn forward(d: &Dims, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    check(d, x, weight);
    let (hw, taps) = (d.hw(), d.taps());
    let mut out = vec![0f32; d.out_len()];
    out.par_chunks_mut(d.cout * hw)
        .zip(x.par_chunks(d.cin * hw))
        .for_each_init(
            || vec![0f32; taps * hw],
            |col, (out, x)| {
                im2col(d, x, col);
                if let Some(bias) = bias {
                    for (row, b) in out.chunks_mut(hw).zip(bias) {
                        row.fill(*b);
                    }
                }
                matmul(
                    out,
                    View::rows(weight, d.cout, taps),
                    View::rows(col, taps, hw),
                    bias.is_some(),
                );
            },
        );
    out
}

/// Samples per partial weight gradient: a fixed count (never the thread count), so the
/// summation order, and the bytes, are the same on every machine, while the partials held
/// at once stay few (one per 4 samples, the largest layer's weight being 2.4 MB).
const SAMPLES_PER_PARTIAL: usize = 4;

/// `dweight [O, C, 3, 3]`: the sum over samples of `grad_b [O, HW] @ col_b^T [HW, 9C]`,
/// accumulated in sample order within each group of samples and the groups' partials
/// summed in order.
pub fn weight_grad(d: &Dims, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (hw, taps) = (d.hw(), d.taps());
    assert_eq!(grad.len(), d.out_len(), "conv3x3 output gradient");
    assert_eq!(x.len(), d.x_len(), "conv3x3 input");
    let partials: Vec<Vec<f32>> = x
        .par_chunks(SAMPLES_PER_PARTIAL * d.cin * hw)
        .zip(grad.par_chunks(SAMPLES_PER_PARTIAL * d.cout * hw))
        .map_init(
            || vec![0f32; taps * hw],
            |col, (xs, grads)| {
                let mut partial = vec![0f32; d.weight_len()];
                for (k, (x, grad)) in xs
                    .chunks(d.cin * hw)
                    .zip(grads.chunks(d.cout * hw))
                    .enumerate()
                {
                    im2col(d, x, col);
                    matmul(
                        &mut partial,
                        View::rows(grad, d.cout, hw),
                        View::rows(col, taps, hw).transposed(),
                        k > 0,
                    );
                }
                partial
            },
        )
        .collect();
    let mut sum = vec![0f32; d.weight_len()];
    for partial in &partials {
        for (s, p) in sum.iter_mut().zip(partial) {
            *s += p;
        }
    }
    sum
}

/// `dx [B, C, H, W]`: col2im of `weight^T [9C, O] @ grad_b [O, HW]` per sample.
pub fn input_grad(d: &Dims, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    let (hw, taps) = (d.hw(), d.taps());
    assert_eq!(grad.len(), d.out_len(), "conv3x3 output gradient");
    assert_eq!(weight.len(), d.weight_len(), "conv3x3 weight");
    let mut dx = vec![0f32; d.x_len()];
    dx.par_chunks_mut(d.cin * hw)
        .zip(grad.par_chunks(d.cout * hw))
        .for_each_init(
            || vec![0f32; taps * hw],
            |col, (dx, grad)| {
                matmul(
                    col,
                    View::rows(weight, d.cout, taps).transposed(),
                    View::rows(grad, d.cout, hw),
                    false,
                );
                col2im(d, col, dx);
            },
        );
    dx
}

/// `dbias [O]`: the output gradient summed over samples and pixels, in order.
pub fn bias_grad(d: &Dims, grad: &[f32]) -> Vec<f32> {
    let hw = d.hw();
    let mut sum = vec![0f32; d.cout];
    for sample in grad.chunks(d.cout * hw) {
        for (s, plane) in sum.iter_mut().zip(sample.chunks(hw)) {
            *s += plane.iter().sum::<f32>();
        }
    }
    sum
}

fn check(d: &Dims, x: &[f32], weight: &[f32]) {
    assert!(d.h > 0 && d.w > 0, "conv3x3 on an empty image");
    assert_eq!(x.len(), d.x_len(), "conv3x3 input");
    assert_eq!(weight.len(), d.weight_len(), "conv3x3 weight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, one multiply-add at a time, in f64.
    fn direct(d: &Dims, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f64> {
        let (h, w) = (d.h as isize, d.w as isize);
        let mut out = vec![0f64; d.out_len()];
        for b in 0..d.batch {
            for o in 0..d.cout {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = bias[o] as f64;
                        for c in 0..d.cin {
                            for k in 0..9isize {
                                let (sy, sx) = (y + k / 3 - 1, xx + k % 3 - 1);
                                if sy < 0 || sy >= h || sx < 0 || sx >= w {
                                    continue;
                                }
                                let xi = ((b * d.cin + c) as isize * h + sy) * w + sx;
                                let wi = (o * d.cin + c) * 9 + k as usize;
                                acc += x[xi as usize] as f64 * weight[wi] as f64;
                            }
                        }
                        out[((b * d.cout + o) as isize * h + y) as usize * d.w + xx as usize] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn dims() -> impl Strategy<Value = Dims> {
        (1usize..3, 1usize..5, 1usize..5, 1usize..6, 1usize..6).prop_map(
            |(batch, cin, cout, h, w)| Dims {
                batch,
                cin,
                cout,
                h,
                w,
            },
        )
    }

    fn close(a: f32, b: f64) -> bool {
        (a as f64 - b).abs() <= 1e-4 * b.abs().max(1.0)
    }

    proptest! {
        // Each case checks every element against the definition (quadratic in the size).
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The forward is the definition, and each gradient is the adjoint the chain rule
        /// asks for: `<grad, conv(x, W)>` differentiated by `x`, `W` and the bias, checked
        /// as `<dx, e> == <grad, conv(e, W) - bias>` for every unit input `e` (and the
        /// same for `W`), which is the definition of the gradients without a second
        /// implementation of them.
        #[test]
        fn the_forward_and_both_gradients_are_the_definitions(d in dims(), seed in any::<u32>()) {
            let x = values(d.x_len(), seed);
            let weight = values(d.weight_len(), seed ^ 0x55);
            let bias = values(d.cout, seed ^ 0xaa);
            let grad = values(d.out_len(), seed ^ 0x33);
            let ours = forward(&d, &x, &weight, Some(&bias));
            let want = direct(&d, &x, &weight, &bias);
            for (a, b) in ours.iter().zip(&want) {
                prop_assert!(close(*a, *b), "forward {a} vs {b}");
            }
            let zero = vec![0f32; d.cout];
            let dot = |out: &[f64]| out.iter().zip(&grad).map(|(o, g)| o * *g as f64).sum::<f64>();
            let dx = input_grad(&d, &weight, &grad);
            for i in 0..d.x_len() {
                let mut e = vec![0f32; d.x_len()];
                e[i] = 1.0;
                let want = dot(&direct(&d, &e, &weight, &zero));
                prop_assert!(close(dx[i], want), "dx[{i}] {} vs {want}", dx[i]);
            }
            let dw = weight_grad(&d, &x, &grad);
            for i in 0..d.weight_len() {
                let mut e = vec![0f32; d.weight_len()];
                e[i] = 1.0;
                let want = dot(&direct(&d, &x, &e, &zero));
                prop_assert!(close(dw[i], want), "dweight[{i}] {} vs {want}", dw[i]);
            }
            let db = bias_grad(&d, &grad);
            for (o, &got) in db.iter().enumerate() {
                let want: f64 = grad.chunks(d.h * d.w).skip(o).step_by(d.cout).flatten().map(|g| *g as f64).sum();
                prop_assert!(close(got, want), "dbias[{o}] {got} vs {want}");
            }
        }
    }

    #[test]
    fn the_weight_gradient_is_the_same_bytes_on_one_thread_and_on_many() {
        let d = Dims {
            batch: 7,
            cin: 5,
            cout: 6,
            h: 9,
            w: 8,
        };
        let (x, grad) = (values(d.x_len(), 1), values(d.out_len(), 2));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(5)
            .build()
            .unwrap();
        let a = one.install(|| weight_grad(&d, &x, &grad));
        let b = many.install(|| weight_grad(&d, &x, &grad));
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
