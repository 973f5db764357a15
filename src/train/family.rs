//! The one seam between the trainer and its two model families: the user's DDPM
//! (`experiment: diffusion`, [`UNet`] with the epsilon MSE) and their ADM fine-tuning
//! (`experiment: diffusion_pretrained`, guided-diffusion's [`AdmUNet`] with the hybrid loss
//! and a respaced sampler). The loop, EMA, checkpoints, validation, generation, export
//! and TensorBoard are written once against [`Net`] and [`Process`]; each match below is
//! where the families differ, and nowhere else.

use burn::module::Module;
use burn::prelude::*;

use super::adm::hybrid;
use super::adm::{AdmFlags, AdmUNet};
use super::gaussian::{self, AdmSchedule};
use super::loss;
use super::schedule::NoiseSchedule;
use super::settings::{AdmModel, AdmSource, Architecture, Diffusion};
use super::unet::UNet;

/// The model being trained or sampled.
// Both variants are kilobytes of layer handles and one exists per run (and its EMA).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Ddpm(UNet),
    Adm(AdmUNet),
}

/// guided-diffusion's flags for a source.
pub fn adm_flags(source: AdmSource) -> AdmFlags {
    match source {
        AdmSource::AdmImagenet64 => AdmFlags::imagenet64(),
        AdmSource::AdmTiny => AdmFlags::tiny(),
    }
}

impl Net {
    /// A freshly initialised model of the family `adm` names (`None`: the DDPM).
    pub fn new(
        arch: &Architecture,
        num_classes: Option<usize>,
        adm: Option<&AdmModel>,
        device: &Device,
    ) -> Net {
        match adm {
            None => Net::Ddpm(UNet::new(arch, num_classes, device)),
            Some(m) => Net::Adm(AdmUNet::new(
                &adm_flags(m.source),
                num_classes.map(|k| k + 1),
                device,
            )),
        }
    }

    /// The model's raw output for `x` at (original) timesteps `t` with label rows `y`.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Option<Tensor<1, Int>>) -> Tensor<4> {
        match self {
            Net::Ddpm(m) => m.forward(x, t, y),
            Net::Adm(m) => m.forward(x, t, y),
        }
    }

    /// Whether the model takes class labels.
    pub fn is_conditional(&self) -> bool {
        match self {
            Net::Ddpm(m) => m.is_conditional(),
            Net::Adm(m) => m.label_rows().is_some(),
        }
    }

    /// The family's name in messages.
    pub fn family(&self) -> &'static str {
        match self {
            Net::Ddpm(_) => "the DDPM",
            Net::Adm(_) => "the ADM",
        }
    }
}

/// A family's diffusion process: training's (all `T` steps) and, for the ADM, the respaced
/// one sampling walks.
// One per run or per generation; the ADM's tables are a few kilobytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Process {
    Ddpm(NoiseSchedule),
    Adm {
        train: gaussian::Process,
        sample: gaussian::Process,
    },
}

/// The betas a model was trained under (checkpoints record their hash).
pub fn betas(diffusion: &Diffusion, adm: Option<&AdmModel>) -> Vec<f64> {
    match adm {
        None => NoiseSchedule::new(diffusion).betas,
        Some(m) => gaussian::betas(m.noise_schedule, diffusion.num_timesteps),
    }
}

/// SHA-256 of the betas' little-endian bytes (the DDPM's is
/// [`NoiseSchedule::betas_sha256`], unchanged).
pub fn betas_sha256(diffusion: &Diffusion, adm: Option<&AdmModel>) -> String {
    match adm {
        None => NoiseSchedule::new(diffusion).betas_sha256(),
        Some(_) => {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for b in betas(diffusion, adm) {
                h.update(b.to_le_bytes());
            }
            format!("{:x}", h.finalize())
        }
    }
}

/// A step's per-sample losses: the objective's terms (weighted later) and the plain MSE.
pub struct Losses {
    /// Per sample: the DDPM's epsilon MSE, the ADM's hybrid `mse + vb`.
    pub per_sample: Tensor<1>,
    /// Per sample, the epsilon MSE alone (what the metrics' `loss` column reports).
    pub mse: Tensor<1>,
}

impl Process {
    /// The process a config trains.
    pub fn of(s: &super::settings::TrainSettings) -> Process {
        Process::new(
            &s.diffusion,
            s.adm.as_ref().map(|a| (&a.model, a.respacing.as_str())),
        )
    }

    /// The process of `diffusion` (and `adm`); `respacing` is the ADM's sampling
    /// respacing, validated with the settings.
    pub fn new(diffusion: &Diffusion, adm: Option<(&AdmModel, &str)>) -> Process {
        match adm {
            None => Process::Ddpm(NoiseSchedule::new(diffusion)),
            Some((m, respacing)) => {
                let betas = gaussian::betas(m.noise_schedule, diffusion.num_timesteps);
                let kept = gaussian::respacing(betas.len(), respacing)
                    .expect("validated with the settings");
                Process::Adm {
                    sample: gaussian::Process::respaced(&betas, &kept),
                    train: gaussian::Process::new(betas),
                }
            }
        }
    }

    /// The training process's step count `T`.
    pub fn len(&self) -> usize {
        match self {
            Process::Ddpm(s) => s.len(),
            Process::Adm { train, .. } => train.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The DDPM's schedule (its sampler and exports read it directly).
    pub fn ddpm(&self) -> Option<&NoiseSchedule> {
        match self {
            Process::Ddpm(s) => Some(s),
            Process::Adm { .. } => None,
        }
    }

    /// `x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise` per sample.
    pub fn noised(&self, x0: Tensor<4>, noise: Tensor<4>, t: &[usize]) -> Tensor<4> {
        match self {
            Process::Ddpm(s) => {
                let device = x0.device();
                let (a, b): (Vec<f32>, Vec<f32>) = t
                    .iter()
                    .map(|&t| {
                        let (a, b) = s.forward_coefficients(t);
                        (a as f32, b as f32)
                    })
                    .unzip();
                let n = t.len();
                let a = Tensor::<1>::from_floats(a.as_slice(), &device).reshape([n, 1, 1, 1]);
                let b = Tensor::<1>::from_floats(b.as_slice(), &device).reshape([n, 1, 1, 1]);
                x0 * a + noise * b
            }
            Process::Adm { train, .. } => hybrid::q_sample(train, x0, noise, t),
        }
    }

    /// The per-sample losses of the model's output `out` at `x_t` (made from `x0` and
    /// `noise` at `t`).
    pub fn losses(
        &self,
        out: Tensor<4>,
        x0: Tensor<4>,
        x_t: Tensor<4>,
        noise: Tensor<4>,
        t: &[usize],
    ) -> Losses {
        match self {
            Process::Ddpm(_) => {
                let per = loss::per_sample_mse(out, noise);
                Losses {
                    mse: per.clone(),
                    per_sample: per,
                }
            }
            Process::Adm { train, .. } => {
                let terms = hybrid::terms(train, x0, x_t, noise, t, out);
                Losses {
                    per_sample: terms.loss(),
                    mse: terms.mse,
                }
            }
        }
    }

    /// The original timestep of the sampler's step `i` (the ADM's respacing keeps some).
    pub fn original_timestep(&self, i: usize) -> usize {
        match self {
            Process::Ddpm(_) => i,
            Process::Adm { sample, .. } => sample.timestep_map[i],
        }
    }

    /// The sampler's steps, from the noisiest (`T` for the DDPM, the respaced count for
    /// the ADM).
    pub fn sampling_len(&self) -> usize {
        match self {
            Process::Ddpm(s) => s.len(),
            Process::Adm { sample, .. } => sample.len(),
        }
    }
}

/// guided-diffusion's schedule name, for messages.
pub fn schedule_name(s: AdmSchedule) -> &'static str {
    match s {
        AdmSchedule::Cosine => "cosine",
        AdmSchedule::Linear => "linear",
    }
}
