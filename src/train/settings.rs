//! The parts of the user's YAML that the trainer reads: `compute`, `model`, `training`,
//! `output`, `generation` (and, through [`PipelineSettings`], `data.loading` and
//! `data.augmentation`). Sections other commands own are ignored, so the user's complete
//! file loads unchanged; every value the trainer uses is validated up front, with the file
//! and the dotted key in the message, so a run never fails hours in on a typo.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::plateau::Plateau;
use crate::config::overrides::Overrides;
use crate::config::{ConfigError, SeedSetting};
use crate::images::settings::PipelineSettings;

mod doc;
mod model;
mod pretrained;
mod training;

use doc::{ignored_keys, Doc};
pub use model::{
    MAX_CLASSES, MAX_IMAGE_SIZE, MAX_MODEL_CHANNELS, MAX_MULTIPLIER, MAX_STAGES, MAX_TIMESTEPS,
};
pub use pretrained::{Adm, AdmFlags, AdmModel, AdmSource, Trainable};

/// Where the model runs (`compute.device`, or `--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The best device there is: CUDA (when built with the `cuda` feature), then a wgpu
    /// GPU, then the CPU backend.
    Auto,
    /// burn's CUDA backend when built with the `cuda` feature; without it the GPU through
    /// wgpu, so the user's `compute.device: cuda` trains on their GPU with either build.
    Cuda,
    /// Any adapter wgpu reaches (Vulkan, Metal, DX12).
    Wgpu,
    /// burn's pure-Rust CPU backend.
    Cpu,
}

impl DeviceChoice {
    /// Parses a `compute.device` / `--device` value.
    pub fn parse(s: &str) -> Option<DeviceChoice> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Some(DeviceChoice::Auto),
            "cuda" => Some(DeviceChoice::Cuda),
            "wgpu" | "gpu" | "vulkan" | "metal" => Some(DeviceChoice::Wgpu),
            "cpu" => Some(DeviceChoice::Cpu),
            _ => None,
        }
    }
}

/// `model.architecture`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    pub image_size: usize,
    pub in_channels: usize,
    pub model_channels: usize,
    pub channel_multipliers: Vec<usize>,
    pub use_attention: Vec<bool>,
}

/// Width of the time and class embeddings: the user's `UNet(time_emb_dim=256)`, which their
/// `create_ddpm` never passes, so it is 256 whatever `model_channels` is.
pub const TIME_EMBED_DIM: usize = 256;

/// The most parameters a configured model may have: 1e9 (4 GB of f32 weights, and as much
/// again for each of Adam's two moments and the EMA); the user's default has 12.8 million.
/// Checked by arithmetic before anything is allocated.
pub const MAX_PARAMETERS: u128 = 1_000_000_000;

impl Architecture {
    /// Width of the time and class embeddings ([`TIME_EMBED_DIM`]).
    pub fn embed_dim(&self) -> usize {
        TIME_EMBED_DIM
    }

    /// The parameter count of the user's UNet with this architecture, by arithmetic (the
    /// layers `UNet::new` makes, counted without making them), so a configured size can be
    /// refused before it is allocated. In u128: any list of multipliers fits.
    pub fn parameters(&self, num_classes: Option<usize>) -> u128 {
        let e = TIME_EMBED_DIM as u128;
        let cond = num_classes.is_some();
        let conv = |cin: u128, cout: u128, k: u128| cin * cout * k * k + cout;
        let linear = |i: u128, o: u128| i * o + o;
        let norm = |c: u128| 2 * c;
        let res = |cin: u128, cout: u128| {
            conv(cin, cout, 3)
                + conv(cout, cout, 3)
                + 2 * norm(cout)
                + linear(e, cout) * if cond { 2 } else { 1 }
                + if cin != cout { conv(cin, cout, 1) } else { 0 }
        };
        let attention = |c: u128| norm(c) + conv(c, 3 * c, 1) + conv(c, c, 1);
        let base = self.model_channels as u128;
        let n = self.channel_multipliers.len();
        let mut total =
            linear(e, 4 * e) + linear(4 * e, e) + conv(self.in_channels as u128, base, 3);
        if let Some(k) = num_classes {
            total += (k as u128 + 1) * e;
        }
        let (mut now, mut skips) = (base, Vec::with_capacity(n));
        for (i, &m) in self.channel_multipliers.iter().enumerate() {
            let out = base * m as u128;
            total += res(now, out) + res(out, out);
            if self.use_attention.get(i) == Some(&true) {
                total += attention(out);
            }
            if i + 1 < n {
                total += conv(out, out, 3);
            }
            now = out;
            skips.push(now);
        }
        total += 2 * res(now, now) + attention(now);
        for i in (0..n).rev() {
            let out = base * self.channel_multipliers[i] as u128;
            let cin = now + skips.pop().unwrap_or(0);
            total += res(cin, out) + res(out, out);
            if self.use_attention.get(i) == Some(&true) {
                total += attention(out);
            }
            if i > 0 {
                total += conv(out, out, 3);
            }
            now = out;
        }
        total + norm(base) + conv(base, self.in_channels as u128, 3)
    }
}

/// `model.diffusion.beta_schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BetaSchedule {
    Linear,
    Cosine,
    Quadratic,
    Sigmoid,
}

/// `model.diffusion`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diffusion {
    pub num_timesteps: usize,
    pub beta_schedule: BetaSchedule,
    pub beta_start: f64,
    pub beta_end: f64,
}

/// `model.conditioning` when `type: class`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditioning {
    pub num_classes: usize,
    /// Probability that a training label is replaced by the unconditional class.
    pub class_dropout_prob: f64,
}

/// `training.optimizer.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`).
    Adam,
    /// Adam with decoupled weight decay (`torch.optim.AdamW`).
    AdamW,
}

/// `training.optimizer`.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub betas: [f64; 2],
    /// Global L2 norm over all gradients, as `clip_grad_norm_`.
    pub gradient_clip_norm: Option<f64>,
}

/// `training.scheduler`, stepped once per epoch as the user's PyTorch loop does.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheduler {
    Constant,
    /// `CosineAnnealingLR(T_max, eta_min)`.
    Cosine {
        t_max: usize,
        eta_min: f64,
    },
    /// `StepLR(step_size, gamma)`.
    Step {
        step_size: usize,
        gamma: f64,
    },
    /// `ReduceLROnPlateau(**the other keys)`, stepped on the epoch's validation loss
    /// (the training loss when validation did not run).
    Plateau(Plateau),
}

/// `training.checkpointing`.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpointing {
    pub save_frequency: usize,
    pub save_optimizer: bool,
    pub save_best_only: bool,
    pub save_latest: bool,
}

/// `training.ema`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ema {
    pub enabled: bool,
    pub decay: f64,
}

/// `training.validation`.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    pub enabled: bool,
    pub frequency: usize,
}

/// How sampling bounds the estimated clean image before each posterior step
/// (`use_dynamic_threshold`, `dynamic_threshold_percentile`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// Clipped to [-1, 1].
    Clip,
    /// Imagen's dynamic thresholding, the user's default: per sample,
    /// `s = max(1, quantile(|x0|, p))`, then `x0` clipped to [-s, s] and divided by `s`.
    Dynamic { percentile: f64 },
}

/// `training.visualization`.
#[derive(Clone, Debug, PartialEq)]
pub struct Visualization {
    pub enabled: bool,
    pub num_samples: usize,
    pub guidance_scale: f64,
    pub log_images_interval: Option<usize>,
    pub log_denoising_interval: Option<usize>,
    pub threshold: Threshold,
}

/// `training.resume`.
#[derive(Clone, Debug, PartialEq)]
pub struct Resume {
    pub enabled: bool,
    pub checkpoint: Option<PathBuf>,
    pub reset_optimizer: bool,
    pub reset_scheduler: bool,
}

/// `training`.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub epochs: usize,
    pub optimizer: Optimizer,
    pub scheduler: Scheduler,
    pub checkpointing: Checkpointing,
    pub ema: Ema,
    pub validation: Validation,
    pub visualization: Visualization,
    pub resume: Resume,
    /// `training.init_from` (ours): weights to start from, a `.safetensors` file with the
    /// user's names or their own `.pth` checkpoint.
    pub init_from: Option<PathBuf>,
}

/// `generation`.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub checkpoint: Option<PathBuf>,
    pub num_samples: usize,
    pub batch_size: usize,
    pub guidance_scale: f64,
    pub threshold: Threshold,
    pub use_ema: bool,
    pub class_selection: Option<Vec<usize>>,
    pub save_individual: bool,
    pub save_grid: bool,
    pub grid_nrow: usize,
}

/// `output`: the run's directories.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub base_dir: PathBuf,
    pub logs: PathBuf,
    pub checkpoints: PathBuf,
    pub samples: PathBuf,
    pub generated: PathBuf,
    /// TensorBoard event files (`subdirs.tensorboard`).
    pub tensorboard: PathBuf,
}

impl Output {
    /// The same layout under another base directory (`--out`).
    pub fn rebased(&self, base: &Path) -> Output {
        let sub = |p: &Path| base.join(p.strip_prefix(&self.base_dir).unwrap_or(p));
        Output {
            base_dir: base.to_owned(),
            logs: sub(&self.logs),
            checkpoints: sub(&self.checkpoints),
            samples: sub(&self.samples),
            generated: sub(&self.generated),
            tensorboard: sub(&self.tensorboard),
        }
    }
}

/// Everything the trainer reads from the config, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSettings {
    pub seed: SeedSetting,
    pub device: DeviceChoice,
    /// `mode: train | generate`.
    pub generate_mode: bool,
    /// `data.split_file`: where the default manifest is found.
    pub split_file: Option<String>,
    /// The DDPM's architecture; for the ADM, its image size and the source's widths.
    pub architecture: Architecture,
    /// The DDPM's process; for the ADM, its step count and guided-diffusion's betas named.
    pub diffusion: Diffusion,
    /// `experiment: diffusion_pretrained`: the ADM fine-tuning's settings.
    pub adm: Option<Adm>,
    /// `None` when `model.conditioning.type` is null (unconditional).
    pub conditioning: Option<Conditioning>,
    pub pipeline: PipelineSettings,
    pub training: Training,
    pub generation: Generation,
    pub output: Output,
    /// `logging.metrics.tensorboard`.
    pub tensorboard: TensorBoard,
    /// `training.performance.use_amp`: CUDA-only in the user's code; here accepted on
    /// the CPU (where theirs does not use it either) and refused on a GPU.
    pub use_amp: bool,
    /// Keys of the user's file that are valid there and have no effect here, listed once
    /// in the log so nobody wonders why they did nothing.
    pub ignored: Vec<String>,
    /// What `balance-split balance` reads of the same config (`data.balancing`,
    /// `data.synthetic_augmentation`): the manifest trained on must have been made with
    /// them, or the config's keys would change nothing.
    pub data: crate::config::Config,
    /// The config's text as read, with the command-line overrides merged in (recorded in
    /// exports, so the metadata says what was trained).
    pub text: String,
}

/// `logging.metrics.tensorboard`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorBoard {
    pub enabled: bool,
    /// `log_images`: the sample grids and denoising strips as images too.
    pub images: bool,
}

impl TrainSettings {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<TrainSettings, ConfigError> {
        TrainSettings::load_with(path, &Overrides::default())
    }

    /// Reads a config file with the user's command-line overrides applied first.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<TrainSettings, ConfigError> {
        crate::config::parse_with(path, overrides, TrainSettings::parse)
    }

    /// Parses config text; `path` is only used in messages. Missing keys take the values
    /// of the user's default config.
    pub fn parse(text: &str, path: &Path) -> Result<TrainSettings, ConfigError> {
        let pipeline = PipelineSettings::parse(text, path)?;
        let root: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: crate::config::yaml::clarify(&e.to_string()),
        })?;
        let d = Doc { root, path };
        let experiment = model::experiment(&d)?;
        let data = crate::config::Config::parse(text, path)?;
        let (seed, device, generate_mode) = compute(&d)?;
        let split_file = d.opt::<String>("data.split_file")?;
        let conditioning = model::conditioning(&d)?;
        let (architecture, diffusion, adm) = match experiment {
            model::Experiment::Ddpm => {
                let architecture = model::architecture(&d, &pipeline)?;
                let parameters =
                    architecture.parameters(conditioning.as_ref().map(|c| c.num_classes));
                if parameters > MAX_PARAMETERS {
                    return Err(d.invalid(
                        "model.architecture",
                        format!(
                            "this model would have {parameters} parameters; at most {MAX_PARAMETERS} are trained here (the user's default has 12,817,859)"
                        ),
                    ));
                }
                (architecture, model::diffusion(&d)?, None)
            }
            model::Experiment::Adm => {
                let (adm, architecture, diffusion) =
                    pretrained::adm(&d, &pipeline, conditioning.as_ref())?;
                (architecture, diffusion, Some(adm))
            }
        };
        let mut training = training::training(&d)?;
        let mut generation = training::generation(&d, conditioning.as_ref())?;
        if adm.is_some() {
            let v = &mut training.visualization;
            v.threshold = pretrained::clip_threshold(&d, "training.visualization", v.threshold)?;
            generation.threshold =
                pretrained::clip_threshold(&d, "generation.sampling", generation.threshold)?;
        }
        let output = output(&d)?;
        let tensorboard = TensorBoard {
            enabled: d.get("logging.metrics.tensorboard.enabled", false)?,
            images: d.get("logging.metrics.tensorboard.log_images", true)?,
        };
        let use_amp = d.get("training.performance.use_amp", false)?;
        let mut ignored = Vec::new();
        ignored_keys(&d, "logging", &mut ignored);
        ignored_keys(&d, "training.performance", &mut ignored);
        Ok(TrainSettings {
            seed,
            device,
            generate_mode,
            split_file,
            architecture,
            diffusion,
            adm,
            conditioning,
            pipeline,
            training,
            generation,
            output,
            tensorboard,
            use_amp,
            ignored,
            data,
            text: text.to_owned(),
        })
    }
}

/// `compute.seed`, `compute.device` and `mode`.
fn compute(d: &Doc) -> Result<(SeedSetting, DeviceChoice, bool), ConfigError> {
    let seed = if !d.has("compute.seed") {
        SeedSetting::Fixed(0)
    } else {
        match d.opt::<u64>("compute.seed")? {
            Some(n) => SeedSetting::Fixed(n),
            None => SeedSetting::FromOs,
        }
    };
    let device_name: String = d.get("compute.device", "auto".to_owned())?;
    let device = DeviceChoice::parse(&device_name).ok_or_else(|| {
        d.invalid(
            "compute.device",
            format!("expected auto, cuda, wgpu or cpu, found {device_name:?}"),
        )
    })?;
    let mode: String = d.get("mode", "train".to_owned())?;
    let generate_mode = match mode.as_str() {
        "train" => false,
        "generate" => true,
        other => {
            return Err(d.invalid(
                "mode",
                format!("expected train or generate, found {other:?}"),
            ))
        }
    };
    Ok((seed, device, generate_mode))
}

/// `output.base_dir` and its `subdirs`.
fn output(d: &Doc) -> Result<Output, ConfigError> {
    let base: PathBuf = d.path_buf("output.base_dir", "outputs/diffusion")?;
    let sub = |name: &str| -> Result<PathBuf, ConfigError> {
        Ok(base.join(d.path_buf(&format!("output.subdirs.{name}"), name)?))
    };
    Ok(Output {
        logs: sub("logs")?,
        checkpoints: sub("checkpoints")?,
        samples: sub("samples")?,
        generated: sub("generated")?,
        tensorboard: sub("tensorboard")?,
        base_dir: base.clone(),
    })
}

#[cfg(test)]
mod tests;
