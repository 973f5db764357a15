//! The one seam between the trainer and its two model families: the user's DDPM
//! (`experiment: diffusion`, [`UNet`] with the epsilon MSE) and their ADM fine-tuning
//! (`experiment: diffusion_pretrained`, guided-diffusion's [`AdmUNet`] with the hybrid loss
//! and a respaced sampler). The loop, EMA, checkpoints, validation, generation, export
//! and TensorBoard are written once against [`Net`] and [`Process`]. What differs by family
//! is here (the model, its record, its export, its process and loss), in the sampler
//! (`generate::sample`), and in what only one family has: OpenAI's file, freezing and their
//! `AdmDdpmModel` checkpoints (`state/adm.rs`), the DDPM's schedule buffers
//! (`state::init_from`).

use burn::module::Module;
use burn::prelude::*;

use super::adm::hybrid;
use super::adm::state_dict as adm_dict;
use super::adm::AdmUNet;
use super::gaussian;
use super::loss;
use super::schedule::NoiseSchedule;
use super::settings::{AdmModel, Architecture, Diffusion};
use super::unet::state_dict::{self as unet_dict, Named};
use super::unet::UNet;

/// The model being trained or sampled.
// Both variants are kilobytes of layer handles and one exists per run (and its EMA).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Ddpm(UNet),
    Adm(AdmUNet),
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
                &m.source.flags(),
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

    /// The family's own module's record (not the [`Net`] around it), so a DDPM's
    /// checkpoint bytes are what they were before there were two families.
    pub fn record_bytes(&self) -> Vec<u8> {
        fn bytes<M: Module>(m: &M) -> Vec<u8> {
            m.clone()
                .into_record()
                .into_bytes()
                .expect("an in-memory record always serialises")
                .to_vec()
        }
        match self {
            Net::Ddpm(u) => bytes(u),
            Net::Adm(a) => bytes(a),
        }
    }

    /// The model with the weights of a record written by [`Net::record_bytes`].
    pub fn load_record_bytes(self, bytes: &[u8]) -> Result<Net, String> {
        fn load<M: Module>(m: M, bytes: &[u8]) -> Result<M, String> {
            let record = burn::store::ModuleRecord::from_bytes(
                burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()),
            )
            .map_err(|e| e.to_string())?;
            m.try_load_record(record).map_err(|e| e.to_string())
        }
        Ok(match self {
            Net::Ddpm(u) => Net::Ddpm(load(u, bytes)?),
            Net::Adm(a) => Net::Adm(load(a, bytes)?),
        })
    }

    /// The weights under the user's names, and the prefix of the model's parameters among
    /// them: the DDPM as their `DDPMModel` (`model.`, with the schedule's buffers), the ADM
    /// as their `AdmDdpmModel` (`unet.`, no buffers: its processes are not modules).
    pub fn export_tensors(&self, diffusion: &Diffusion) -> (Vec<Named>, &'static str) {
        match self {
            Net::Ddpm(u) => (
                unet_dict::buffers(&NoiseSchedule::new(diffusion))
                    .into_iter()
                    .chain(unet_dict::state_dict(u))
                    .collect(),
                "model.",
            ),
            Net::Adm(a) => (adm_dict::for_user(a), adm_dict::EXPORT_PREFIX),
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

/// SHA-256 of the betas a model was trained under (checkpoints record it): the DDPM's
/// [`NoiseSchedule::betas_sha256`], or guided-diffusion's named schedule's.
pub fn betas_sha256(diffusion: &Diffusion, adm: Option<&AdmModel>) -> String {
    match adm {
        None => NoiseSchedule::new(diffusion).betas_sha256(),
        Some(m) => crate::train::schedule::sha256_le(&gaussian::betas(
            m.noise_schedule,
            diffusion.num_timesteps,
        )),
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
