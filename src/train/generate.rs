//! Ancestral sampling with classifier-free guidance: the DDPM's, and the ADM's over its
//! respaced process (the variance from the conditional pass).
//!
//! Each step predicts the noise twice, with the class label and with the unconditional
//! row, in one batched forward pass, and mixes them:
//! `eps = eps_uncond + s * (eps_cond - eps_uncond)`. As in the user's sampler, a scale of 0
//! means no guidance: the conditional prediction alone, one forward pass (as does s = 1,
//! which the formula reduces to). From it the clean image is estimated and, by default,
//! dynamically thresholded as the user's sampler does ([`Threshold`]), and the posterior
//! step of [`NoiseSchedule::posterior`] is taken. The starting noise and every
//! step's noise come from the host stream `(seed, "generation", batch)`, so generation is
//! deterministic for a seed on any backend.

use burn::prelude::*;

use crate::rng::{Purpose, Stream};

use super::adm::{hybrid, AdmUNet};
use super::family::{Net, Process};
use super::gaussian;
use super::schedule::NoiseSchedule;
use super::settings::Threshold;
use super::unet::UNet;

/// The guided noise estimate for `x` at timestep `t`. `labels` `None` (or an
/// unconditional model) gives the plain prediction; `num_classes` is the unconditional row;
/// `scale` 0 is "no guidance" (the conditional prediction), as in the user's sampler.
pub fn guided_eps(
    model: &UNet,
    x: Tensor<4>,
    t: usize,
    labels: Option<&[u32]>,
    num_classes: usize,
    scale: f64,
) -> Tensor<4> {
    let forward = |x, t, y| model.forward(x, t, y);
    let labels = labels.filter(|_| model.is_conditional());
    guided(&forward, x, t, labels, num_classes, scale, None)
}

/// The model's forward pass: `(x, timesteps, labels)` to its output.
type Forward<'a> = dyn Fn(Tensor<4>, Tensor<1>, Option<Tensor<1, Int>>) -> Tensor<4> + 'a;

/// Classifier-free guidance around `forward`: the conditional and unconditional passes in
/// one batch, `uncond + s (cond - uncond)` over the output's first `eps_channels` channels
/// (all when `None`); the rest of the output (the ADM's variance interpolation) is the
/// conditional pass's, as the user's `AdmDdpmModel.sample` takes it.
fn guided(
    forward: &Forward,
    x: Tensor<4>,
    t: usize,
    labels: Option<&[u32]>,
    num_classes: usize,
    scale: f64,
    eps_channels: Option<usize>,
) -> Tensor<4> {
    let device = x.device();
    let n = x.dims()[0];
    let times = |k: usize| Tensor::<1>::full([k], t as f32, &device);
    let ints = |v: Vec<i64>| {
        let k = v.len();
        Tensor::<1, Int>::from_data(TensorData::new(v, [k]), &device)
    };
    let Some(labels) = labels else {
        return forward(x, times(n), None);
    };
    let cond: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    if scale == 0.0 || scale == 1.0 {
        return forward(x, times(n), Some(ints(cond)));
    }
    let uncond = vec![num_classes as i64; n];
    let both = forward(
        Tensor::cat(vec![x.clone(), x], 0),
        times(2 * n),
        Some(ints([cond, uncond].concat())),
    );
    let out_c = both.clone().narrow(0, 0, n);
    let out_u = both.narrow(0, n, n);
    let channels = out_c.dims()[1];
    let c = eps_channels.unwrap_or(channels);
    let eps_c = out_c.clone().narrow(1, 0, c);
    let eps_u = out_u.narrow(1, 0, c);
    let eps = eps_u.clone() + (eps_c - eps_u).mul_scalar(scale);
    if c == channels {
        return eps;
    }
    Tensor::cat(vec![eps, out_c.narrow(1, c, channels - c)], 1)
}

/// `torch.quantile(|x|.flatten(1), q, dim=1)`: per sample, the linear interpolation
/// between the two order statistics around rank `q (n - 1)`, as torch's default
/// `interpolation="linear"`. `[B, C, H, W]` in, `[B, 1]` out.
pub fn abs_quantile(x: Tensor<4>, q: f64) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    let n = c * h * w;
    let sorted = x.abs().reshape([b, n]).sort(1);
    let rank = q * (n - 1) as f64;
    let below = (rank.floor() as usize).min(n - 1);
    let above = (rank.ceil() as usize).min(n - 1);
    let weight = rank - below as f64;
    let lo = sorted.clone().narrow(1, below, 1);
    let hi = sorted.narrow(1, above, 1);
    lo.clone() + (hi - lo).mul_scalar(weight)
}

/// Bounds the estimated clean image `x0` as `threshold` says.
pub fn threshold(x0: Tensor<4>, threshold: Threshold) -> Tensor<4> {
    match threshold {
        Threshold::Clip => x0.clamp(-1.0, 1.0),
        Threshold::Dynamic { percentile } => {
            let dims = x0.dims();
            let s = abs_quantile(x0.clone(), percentile)
                .clamp_min(1.0)
                .reshape([dims[0], 1, 1, 1])
                .expand(dims);
            x0.min_pair(s.clone()).max_pair(s.clone().neg()).div(s)
        }
    }
}

/// What to generate in one batch.
pub struct Request<'a> {
    /// One label per sample (ignored by an unconditional model).
    pub labels: &'a [u32],
    pub num_classes: usize,
    pub guidance_scale: f64,
    pub threshold: Threshold,
    pub channels: usize,
    pub size: usize,
    pub seed: u64,
    /// Distinguishes the batches of one generation run (their noise streams).
    pub batch: u64,
    /// Timesteps at which to keep a copy of the current noisy sample `x_t` (before the
    /// step from t), for denoising strips.
    pub snapshots: &'a [usize],
}

/// Generated samples as `[B, C, H, W]` floats in [-1, 1], and the requested snapshots
/// of `x_t` (each `[B, C, H, W]`), from the noisiest: the DDPM's ancestral sampler over
/// all `T` steps, or the ADM's over its respaced process (snapshots by the respaced
/// index).
pub fn sample(
    model: &Net,
    process: &Process,
    req: &Request,
    device: &Device,
) -> (Vec<f32>, Vec<(usize, Vec<f32>)>) {
    match (model, process) {
        (Net::Ddpm(m), Process::Ddpm(schedule)) => sample_with(
            |x, t| {
                guided_eps(
                    m,
                    x,
                    t,
                    Some(req.labels),
                    req.num_classes,
                    req.guidance_scale,
                )
            },
            schedule,
            req,
            device,
        ),
        (Net::Adm(m), Process::Adm { sample, .. }) => sample_adm(m, sample, req, device),
        _ => unreachable!("the model and its process come from the same settings"),
    }
}

/// The ADM's sampler (`p_sample_loop` with `clip_denoised`, as the user's
/// `AdmDdpmModel.sample`): from noise, one ancestral step of the respaced process `p` per
/// index, the model given the original timestep `timestep_map[i]`; no noise is drawn at the
/// last step, whose sample is the mean.
fn sample_adm(
    model: &AdmUNet,
    p: &gaussian::Process,
    req: &Request,
    device: &Device,
) -> (Vec<f32>, Vec<(usize, Vec<f32>)>) {
    let forward = |x, t, y| model.forward(x, t, y);
    let labels = model.label_rows().map(|_| req.labels);
    ancestral(p.len(), req, device, |x, i, z| {
        let out = guided(
            &forward,
            x.clone(),
            p.timestep_map[i],
            labels,
            req.num_classes,
            req.guidance_scale,
            Some(req.channels),
        );
        let z = z.unwrap_or_else(|| x.zeros_like());
        hybrid::p_sample(p, x, i, out, z, true)
    })
}

/// [`sample`] with any noise predictor `eps(x_t, t)`.
pub fn sample_with(
    mut eps: impl FnMut(Tensor<4>, usize) -> Tensor<4>,
    schedule: &NoiseSchedule,
    req: &Request,
    device: &Device,
) -> (Vec<f32>, Vec<(usize, Vec<f32>)>) {
    ancestral(schedule.len(), req, device, |x, t, z| {
        let e = eps(x.clone(), t);
        let (a, b) = schedule.forward_coefficients(t);
        let x0 = threshold((x.clone() - e.mul_scalar(b)).div_scalar(a), req.threshold);
        let (c0, ct, sigma) = schedule.posterior(t);
        let next = x0.mul_scalar(c0) + x.mul_scalar(ct);
        match z {
            Some(z) => next + z.mul_scalar(sigma),
            None => next,
        }
    })
}

/// The loop both samplers share: `x` starts as noise from the host stream
/// `(seed, "generation", batch)`; for each step `t` from `steps - 1` down to 0 a snapshot
/// is kept when asked, and `step(x, t, z)` gives the next `x`, `z` the step's fresh noise
/// (drawn from the same stream, none at `t = 0`). The result is clamped to [-1, 1].
fn ancestral(
    steps: usize,
    req: &Request,
    device: &Device,
    mut step: impl FnMut(Tensor<4>, usize, Option<Tensor<4>>) -> Tensor<4>,
) -> (Vec<f32>, Vec<(usize, Vec<f32>)>) {
    let n = req.labels.len();
    let shape = [n, req.channels, req.size, req.size];
    let len = shape.iter().product();
    let mut stream = Stream::fast(req.seed, Purpose::Generation, &[req.batch]);
    let mut noise = vec![0f32; len];
    stream.fill_normal(&mut noise);
    let mut x = Tensor::<4>::from_data(TensorData::new(noise.clone(), shape), device);
    let mut snaps = Vec::new();
    for t in (0..steps).rev() {
        if req.snapshots.contains(&t) {
            snaps.push((t, x.to_data().try_to_vec::<f32>().expect("f32 samples")));
        }
        let z = (t > 0).then(|| {
            stream.fill_normal(&mut noise);
            Tensor::<4>::from_data(TensorData::new(noise.clone(), shape), device)
        });
        x = step(x, t, z);
    }
    let out = x
        .clamp(-1.0, 1.0)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 samples");
    (out, snaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in model whose output is the label (plus 10 in the variance channels), so
    /// what guidance mixes and what it takes from which pass can be read off.
    fn by_label(x: Tensor<4>, _t: Tensor<1>, y: Option<Tensor<1, Int>>) -> Tensor<4> {
        let [n, _, h, w] = x.dims();
        let y: Vec<i64> = y
            .unwrap()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        let mut v = Vec::new();
        for l in y {
            v.extend(std::iter::repeat_n(l as f32, 2 * h * w));
            v.extend(std::iter::repeat_n(l as f32 + 10.0, 2 * h * w));
        }
        Tensor::from_data(TensorData::new(v, [n, 4, h, w]), &x.device())
    }

    #[test]
    fn adm_guidance_mixes_epsilon_and_keeps_the_conditional_variance() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([2, 2, 1, 1], &device);
        let calls = std::cell::Cell::new(0);
        let forward = |x, t, y| {
            calls.set(calls.get() + 1);
            by_label(x, t, y)
        };
        let out = guided(&forward, x.clone(), 5, Some(&[0, 1]), 2, 3.0, Some(2));
        assert_eq!(calls.get(), 1, "both passes in one batched forward");
        let v: Vec<f32> = out.into_data().try_to_vec::<f32>().unwrap();
        // eps = u + 3 (c - u) with u = 2 (the unconditional row): 2 + 3 (0 - 2) = -4 for
        // label 0, 2 + 3 (1 - 2) = -1 for label 1; the variance the conditional pass's.
        assert_eq!(v, [-4.0, -4.0, 10.0, 10.0, -1.0, -1.0, 11.0, 11.0]);
        // Guidance 0: the conditional pass alone, as the user's sampler.
        let out = guided(&forward, x, 5, Some(&[0, 1]), 2, 0.0, Some(2));
        let v: Vec<f32> = out.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, [0.0, 0.0, 10.0, 10.0, 1.0, 1.0, 11.0, 11.0]);
    }
}
