//! guided-diffusion's objective and sampling step for a learned-range variance, on the
//! device: the hybrid loss (the epsilon MSE plus the variational bound, whose gradient
//! reaches only the variance), optionally weighted per sample by class, and one ancestral
//! step of a (respaced) process.
//!
//! The class-weighted hybrid loss is ours (their slice refuses loss-level class weights):
//! `mean_i(w[y_i] * (mse_i + vb_i))`, each sample's weight multiplying its whole term, and
//! normalised as the DDPM path's weighted MSE is (the weights' normalisation is
//! `class_weights.normalize`'s, the batch mean is over samples).

use std::f64::consts::LN_2;

use burn::prelude::*;

use crate::train::gaussian::Process;
use crate::train::loss::{mean_flat, per_sample_mse};

/// `table[t_i]` per sample as `[B, 1, 1, 1]` f32, as their `_extract_into_tensor` does.
fn column(table: &[f64], t: &[usize], device: &Device) -> Tensor<4> {
    let v: Vec<f32> = t.iter().map(|&i| table[i] as f32).collect();
    Tensor::<1>::from_floats(v.as_slice(), device).reshape([t.len(), 1, 1, 1])
}

/// The model's epsilon and variance halves.
fn split(out: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let c = out.dims()[1] / 2;
    (out.clone().narrow(1, 0, c), out.narrow(1, c, c))
}

/// The reverse step's mean and log variance (`p_mean_variance` for epsilon prediction and
/// a learned range): `log var = f log(beta) + (1 - f) log(posterior var)`, `f = (v + 1)/2`.
fn mean_log_variance(
    p: &Process,
    x_t: Tensor<4>,
    t: &[usize],
    eps: Tensor<4>,
    v: Tensor<4>,
    clip: bool,
) -> (Tensor<4>, Tensor<4>) {
    let d = x_t.device();
    let frac = v.add_scalar(1.0).div_scalar(2.0);
    let log_var = frac.clone() * column(&p.log_betas, t, &d)
        + frac.neg().add_scalar(1.0) * column(&p.posterior_log_variance_clipped, t, &d);
    let mut x0 = column(&p.sqrt_recip_alphas_cumprod, t, &d) * x_t.clone()
        - column(&p.sqrt_recipm1_alphas_cumprod, t, &d) * eps;
    if clip {
        x0 = x0.clamp(-1.0, 1.0);
    }
    let mean =
        column(&p.posterior_mean_coef1, t, &d) * x0 + column(&p.posterior_mean_coef2, t, &d) * x_t;
    (mean, log_var)
}

/// KL divergence between two diagonal Gaussians, elementwise.
fn normal_kl(m1: Tensor<4>, lv1: Tensor<4>, m2: Tensor<4>, lv2: Tensor<4>) -> Tensor<4> {
    let d = (m1 - m2).powi_scalar(2) * lv2.clone().neg().exp();
    (lv2.clone() - lv1.clone() + (lv1 - lv2).exp() + d)
        .sub_scalar(1.0)
        .mul_scalar(0.5)
}

/// The standard normal CDF by its tanh approximation (theirs).
fn approx_cdf(x: Tensor<4>) -> Tensor<4> {
    let inner = x.clone() + x.powi_scalar(3).mul_scalar(0.044715);
    inner
        .mul_scalar((2.0 / std::f64::consts::PI).sqrt())
        .tanh()
        .add_scalar(1.0)
        .mul_scalar(0.5)
}

/// The log-likelihood of `x0` under the Gaussian discretised to 256 bins of [-1, 1] (the
/// edge bins open-ended), elementwise.
fn discretized_log_likelihood(x0: Tensor<4>, mean: Tensor<4>, log_scale: Tensor<4>) -> Tensor<4> {
    let centered = x0.clone() - mean;
    let inv = log_scale.neg().exp();
    let cdf_plus = approx_cdf(inv.clone() * centered.clone().add_scalar(1.0 / 255.0));
    let cdf_min = approx_cdf(inv * centered.sub_scalar(1.0 / 255.0));
    let log_plus = cdf_plus.clone().clamp_min(1e-12).log();
    let log_one_minus_min = cdf_min.clone().neg().add_scalar(1.0).clamp_min(1e-12).log();
    let log_delta = (cdf_plus - cdf_min).clamp_min(1e-12).log();
    log_delta
        .mask_where(x0.clone().greater_elem(0.999), log_one_minus_min)
        .mask_where(x0.lower_elem(-0.999), log_plus)
}

/// Per-sample terms of the hybrid loss, `[B]` each.
pub struct Terms {
    /// `mean((noise - eps)^2)`.
    pub mse: Tensor<1>,
    /// The variational bound in bits per dimension (the decoder's negative log-likelihood
    /// at t = 0, the KL to the posterior elsewhere), times `T / 1000`.
    pub vb: Tensor<1>,
}

impl Terms {
    /// `mse + vb` per sample.
    pub fn loss(&self) -> Tensor<1> {
        self.mse.clone() + self.vb.clone()
    }
}

/// The hybrid loss's terms for `out` (the model's output at `x_t`, `[B, 2C, H, W]`), the
/// clean images `x0`, the noise that made `x_t` and the timesteps `t` of `p` (the full
/// process, `T` steps). The bound sees the epsilon half detached: its gradient reaches
/// the variance only, as in guided-diffusion.
pub fn terms(
    p: &Process,
    x0: Tensor<4>,
    x_t: Tensor<4>,
    noise: Tensor<4>,
    t: &[usize],
    out: Tensor<4>,
) -> Terms {
    let d = x0.device();
    let (eps, v) = split(out);
    let mse = per_sample_mse(eps.clone(), noise);
    let true_mean = column(&p.posterior_mean_coef1, t, &d) * x0.clone()
        + column(&p.posterior_mean_coef2, t, &d) * x_t.clone();
    let true_log_var = column(&p.posterior_log_variance_clipped, t, &d);
    let (mean, log_var) = mean_log_variance(p, x_t, t, eps.detach(), v, false);
    let kl = mean_flat(normal_kl(
        true_mean,
        true_log_var,
        mean.clone(),
        log_var.clone(),
    ))
    .div_scalar(LN_2);
    let nll = mean_flat(discretized_log_likelihood(
        x0,
        mean,
        log_var.mul_scalar(0.5),
    ))
    .neg()
    .div_scalar(LN_2);
    let at0: Vec<f32> = t.iter().map(|&i| f32::from(u8::from(i == 0))).collect();
    let at0 = Tensor::<1>::from_floats(at0.as_slice(), &d);
    let vb = nll * at0.clone() + kl * at0.neg().add_scalar(1.0);
    Terms {
        mse,
        vb: vb.mul_scalar(p.len() as f64 / 1000.0),
    }
}

/// `x_t` from `x0` and `noise` at timesteps `t` of `p`: `sqrt(ab) x0 + sqrt(1 - ab) noise`.
pub fn q_sample(p: &Process, x0: Tensor<4>, noise: Tensor<4>, t: &[usize]) -> Tensor<4> {
    let d = x0.device();
    column(&p.sqrt_alphas_cumprod, t, &d) * x0
        + column(&p.sqrt_one_minus_alphas_cumprod, t, &d) * noise
}

/// One ancestral step of `p` (a respaced process: `i` is its own index) from `x_t`, given
/// the model's output there (epsilon already guided; the variance the conditional one's):
/// the mean plus `exp(log var / 2) noise`, no noise at `i = 0`. `clip` clamps the predicted
/// `x0` to [-1, 1] (`clip_denoised`).
pub fn p_sample(
    p: &Process,
    x_t: Tensor<4>,
    i: usize,
    out: Tensor<4>,
    noise: Tensor<4>,
    clip: bool,
) -> Tensor<4> {
    let b = x_t.dims()[0];
    let (eps, v) = split(out);
    let (mean, log_var) = mean_log_variance(p, x_t, &vec![i; b], eps, v, clip);
    if i == 0 {
        return mean;
    }
    mean + log_var.mul_scalar(0.5).exp() * noise
}
