//! The parts of the user's YAML that the trainer reads: `compute`, `model`, `training`,
//! `output`, `generation` (and, through [`PipelineSettings`], `data.loading` and
//! `data.augmentation`). Sections other commands own are ignored, so the user's complete
//! file loads unchanged; every value the trainer uses is validated up front, with the file
//! and the dotted key in the message, so a run never fails hours in on a typo.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::plateau::{Plateau, KEYS as PLATEAU_KEYS};
use crate::config::overrides::Overrides;
use crate::config::{ConfigError, SeedSetting};
use crate::images::settings::PipelineSettings;

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
    pub architecture: Architecture,
    pub diffusion: Diffusion,
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

/// The user's keys read here; every other key under `logging` and
/// `training.performance` is theirs alone.
const USED_ELSEWHERE: [&str; 3] = [
    "logging.metrics.tensorboard.enabled",
    "logging.metrics.tensorboard.log_images",
    "training.performance.use_amp",
];

/// The dotted leaf keys under `section` that are set and not read here.
fn ignored_keys(d: &Doc, section: &str, out: &mut Vec<String>) {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let key = format!("{prefix}.{}", k.as_str().unwrap_or("?"));
                    walk(v, &key, out);
                }
            }
            _ if USED_ELSEWHERE.contains(&prefix) => {}
            _ => out.push(prefix.to_owned()),
        }
    }
    if let Some(v) = d.value(section) {
        walk(v, section, out);
    }
}

/// A view of the YAML tree that reads typed values by dotted key and words every failure
/// as `file: key: message`.
struct Doc<'a> {
    root: Value,
    path: &'a Path,
}

impl Doc<'_> {
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The value at `key`, `None` when it or a parent is absent or null.
    fn value(&self, key: &str) -> Option<&Value> {
        let mut v = &self.root;
        for part in key.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.value(key)
            .map(|v| {
                serde_yaml_ng::from_value(v.clone()).map_err(|e| {
                    let message = crate::config::yaml::clarify(&e.to_string());
                    self.invalid(key, format!("{message}, found {}", show(v)))
                })
            })
            .transpose()
    }

    fn get<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.opt(key)?.unwrap_or(default))
    }

    fn positive(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        let n = self.get(key, default)?;
        if n == 0 {
            return Err(self.invalid(key, "expected a positive integer, found 0"));
        }
        Ok(n)
    }

    /// A number in `range` (inclusive).
    fn number(&self, key: &str, default: f64, lo: f64, hi: f64) -> Result<f64, ConfigError> {
        let x = self.get(key, default)?;
        if !(x.is_finite() && (lo..=hi).contains(&x)) {
            return Err(self.invalid(key, format!("expected a number in [{lo}, {hi}], found {x}")));
        }
        Ok(x)
    }

    /// An interval in epochs where `null` or 0 disables.
    fn interval(&self, key: &str, default: Option<usize>) -> Result<Option<usize>, ConfigError> {
        let n = if self.has(key) {
            self.opt::<usize>(key)?
        } else {
            default
        };
        Ok(n.filter(|&n| n > 0))
    }

    /// Whether `key` is written at all (possibly as null).
    fn has(&self, key: &str) -> bool {
        let mut v = &self.root;
        for part in key.split('.') {
            match v.get(part) {
                Some(x) => v = x,
                None => return false,
            }
        }
        true
    }

    fn path_buf(&self, key: &str, default: &str) -> Result<PathBuf, ConfigError> {
        Ok(PathBuf::from(self.get::<String>(key, default.to_owned())?))
    }
}

/// A YAML scalar as the user wrote it, for messages.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().replace('\n', " "))
            .unwrap_or_else(|_| "?".into()),
    }
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
        experiment(&d)?;
        let data = crate::config::Config::parse(text, path)?;
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
        let split_file = d.opt::<String>("data.split_file")?;
        let architecture = architecture(&d, &pipeline)?;
        let diffusion = diffusion(&d)?;
        let conditioning = conditioning(&d)?;
        let parameters = architecture.parameters(conditioning.as_ref().map(|c| c.num_classes));
        if parameters > MAX_PARAMETERS {
            return Err(d.invalid(
                "model.architecture",
                format!(
                    "this model would have {parameters} parameters; at most {MAX_PARAMETERS} are trained here (the user's default has 12,817,859)"
                ),
            ));
        }
        let training = training(&d)?;
        let generation = generation(&d, conditioning.as_ref())?;
        let base: PathBuf = d.path_buf("output.base_dir", "outputs/diffusion")?;
        let sub = |name: &str| -> Result<PathBuf, ConfigError> {
            Ok(base.join(d.path_buf(&format!("output.subdirs.{name}"), name)?))
        };
        let output = Output {
            logs: sub("logs")?,
            checkpoints: sub("checkpoints")?,
            samples: sub("samples")?,
            generated: sub("generated")?,
            tensorboard: sub("tensorboard")?,
            base_dir: base.clone(),
        };
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

/// The experiments `diffusion-train` trains: the user's DDPM (`experiment: diffusion`, or a
/// config without the key, as ours are). Anything else (their `diffusion_pretrained` ADM,
/// a classifier) is refused rather than trained as a DDPM the user did not ask for.
const EXPERIMENTS: [&str; 1] = ["diffusion"];

/// `model.*` sections and keys of the user's DDPM config (their `create_ddpm` reads these
/// and no others): a key beyond them would change which model is trained in their code's
/// eyes or in the user's, and is refused rather than ignored.
const MODEL_KEYS: [(&str, &[&str]); 3] = [
    (
        "architecture",
        &[
            "image_size",
            "in_channels",
            "model_channels",
            "channel_multipliers",
            "use_attention",
        ],
    ),
    (
        "diffusion",
        &["num_timesteps", "beta_schedule", "beta_start", "beta_end"],
    ),
    (
        "conditioning",
        &["type", "num_classes", "class_dropout_prob"],
    ),
];

fn experiment(d: &Doc) -> Result<(), ConfigError> {
    if d.has("experiment") {
        let name: Value = d.get("experiment", Value::Null)?;
        if !name.as_str().is_some_and(|n| EXPERIMENTS.contains(&n)) {
            let shown = match &name {
                Value::String(s) => format!("{s:?}"),
                other => serde_yaml_ng::to_string(other)
                    .map(|t| t.trim_end().to_owned())
                    .unwrap_or_default(),
            };
            return Err(d.invalid(
                "experiment",
                format!(
                    "{shown} is not trained by diffusion-train; it trains the user's DDPM (experiment: diffusion){}",
                    if name.as_str() == Some("diffusion_pretrained") {
                        " (OpenAI's ADM fine-tuning, their diffusion_pretrained, is not implemented here yet)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    let Some(Value::Mapping(model)) = d.value("model") else {
        return Ok(());
    };
    for (section, v) in model {
        let name = section.as_str().unwrap_or_default();
        let Some((_, keys)) = MODEL_KEYS.iter().find(|(s, _)| *s == name) else {
            return Err(d.invalid(
                &format!("model.{name}"),
                "not a section of the user's DDPM config (model.architecture, model.diffusion, model.conditioning); diffusion-train does not implement it",
            ));
        };
        if let Value::Mapping(m) = v {
            for k in m.keys() {
                let key = k.as_str().unwrap_or_default();
                if !keys.contains(&key) {
                    return Err(d.invalid(
                        &format!("model.{name}.{key}"),
                        format!(
                            "not a key of the user's DDPM (their create_ddpm reads {} here); it would change nothing in their model, so it is refused rather than ignored",
                            keys.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn architecture(d: &Doc, p: &PipelineSettings) -> Result<Architecture, ConfigError> {
    let key = "model.architecture";
    let model_channels = d.positive(&format!("{key}.model_channels"), 64)?;
    if model_channels > MAX_MODEL_CHANNELS {
        return Err(d.invalid(
            &format!("{key}.model_channels"),
            format!("expected at most {MAX_MODEL_CHANNELS}, found {model_channels}"),
        ));
    }
    if model_channels % 8 != 0 {
        return Err(d.invalid(
            &format!("{key}.model_channels"),
            format!("expected a multiple of 8 (GroupNorm uses 8 groups), found {model_channels}"),
        ));
    }
    let channel_multipliers: Vec<usize> =
        d.get(&format!("{key}.channel_multipliers"), vec![1, 2, 4])?;
    if channel_multipliers.len() > MAX_STAGES
        || channel_multipliers.iter().any(|&m| m > MAX_MULTIPLIER)
    {
        return Err(d.invalid(
            &format!("{key}.channel_multipliers"),
            format!(
                "expected at most {MAX_STAGES} stages, each multiplier at most {MAX_MULTIPLIER}, found {channel_multipliers:?}"
            ),
        ));
    }
    if channel_multipliers.is_empty() || channel_multipliers.contains(&0) {
        return Err(d.invalid(
            &format!("{key}.channel_multipliers"),
            format!(
                "expected a non-empty list of positive integers, found {channel_multipliers:?}"
            ),
        ));
    }
    // Their output layer normalises model_channels channels, which the last decoder
    // stage has only when its multiplier is 1 (their validator's rule).
    if channel_multipliers[0] != 1 {
        return Err(d.invalid(
            &format!("{key}.channel_multipliers"),
            format!(
                "expected the first multiplier to be 1 (the user's output layer takes model_channels channels), found {channel_multipliers:?}"
            ),
        ));
    }
    let n = channel_multipliers.len();
    let use_attention: Vec<bool> = d.get(&format!("{key}.use_attention"), {
        let mut v = vec![false; n];
        v[n - 1] = true;
        v
    })?;
    if use_attention.len() != n {
        return Err(d.invalid(
            &format!("{key}.use_attention"),
            format!(
                "expected one entry per channel multiplier ({n}), found {}",
                use_attention.len()
            ),
        ));
    }
    // Each stage but the last halves the size (a stride-2 conv rounds up) and each
    // decoder stage doubles it; the user's decoder concatenates its skip without resizing,
    // so their model runs only where every halving is exact.
    let step = 1u64
        .checked_shl(n as u32 - 1)
        .filter(|&s| s <= u64::from(u32::MAX));
    if step.is_none_or(|s| u64::from(p.image_size) % s != 0) {
        return Err(d.invalid(
            &format!("{key}.image_size"),
            format!(
                "expected a multiple of {} for {n} stages (each but the last halves it, and the user's decoder needs the halves exact), found {}",
                step.map_or_else(|| format!("2^{}", n - 1), |s| s.to_string()),
                p.image_size
            ),
        ));
    }
    if p.image_size > MAX_IMAGE_SIZE {
        return Err(d.invalid(
            &format!("{key}.image_size"),
            format!(
                "expected at most {MAX_IMAGE_SIZE} for the trainer, found {}",
                p.image_size
            ),
        ));
    }
    Ok(Architecture {
        image_size: p.image_size as usize,
        in_channels: p.in_channels,
        model_channels,
        channel_multipliers,
        use_attention,
    })
}

/// Bounds on what a configured model can be, each checked before anything of its size is
/// made (the whole model is then bounded by [`MAX_PARAMETERS`]): far above any model of
/// this kind (the user's has 64 channels, 3 stages, 40 pixels, 1000 timesteps).
pub const MAX_MODEL_CHANNELS: usize = 4096;
pub const MAX_STAGES: usize = 8;
pub const MAX_MULTIPLIER: usize = 64;
pub const MAX_IMAGE_SIZE: u32 = 1024;
pub const MAX_TIMESTEPS: usize = 100_000;
pub const MAX_CLASSES: usize = 100_000;

fn diffusion(d: &Doc) -> Result<Diffusion, ConfigError> {
    let key = "model.diffusion";
    let num_timesteps = d.positive(&format!("{key}.num_timesteps"), 1000)?;
    if num_timesteps > MAX_TIMESTEPS {
        return Err(d.invalid(
            &format!("{key}.num_timesteps"),
            format!("expected at most {MAX_TIMESTEPS}, found {num_timesteps}"),
        ));
    }
    let beta_schedule = d.get(&format!("{key}.beta_schedule"), BetaSchedule::Cosine)?;
    let beta_start = d.number(&format!("{key}.beta_start"), 1e-4, 0.0, 1.0)?;
    let beta_end = d.number(&format!("{key}.beta_end"), 0.02, 0.0, 1.0)?;
    if beta_schedule != BetaSchedule::Cosine
        && !(beta_start > 0.0 && beta_start <= beta_end && beta_end < 1.0)
    {
        return Err(d.invalid(
            &format!("{key}.beta_end"),
            format!("expected 0 < beta_start <= beta_end < 1, found beta_start {beta_start}, beta_end {beta_end}"),
        ));
    }
    Ok(Diffusion {
        num_timesteps,
        beta_schedule,
        beta_start,
        beta_end,
    })
}

fn conditioning(d: &Doc) -> Result<Option<Conditioning>, ConfigError> {
    let key = "model.conditioning";
    let kind: Option<String> = d.opt(&format!("{key}.type"))?;
    match kind.as_deref() {
        None if d.value(&format!("{key}.num_classes")).is_some() => Err(d.invalid(
            &format!("{key}.num_classes"),
            "set while model.conditioning.type is null: the user's create_ddpm then builds class-embedding layers that training never uses, a model diffusion-train does not make; set num_classes: null for the unconditional model (the same training), or type: class",
        )),
        None => Ok(None),
        Some("class") => {
            let num_classes: usize = d.opt(&format!("{key}.num_classes"))?.ok_or_else(|| {
                d.invalid(
                    &format!("{key}.num_classes"),
                    "required when model.conditioning.type is class",
                )
            })?;
            if num_classes == 0 || num_classes > MAX_CLASSES {
                return Err(d.invalid(
                    &format!("{key}.num_classes"),
                    format!("expected a positive integer of at most {MAX_CLASSES}, found {num_classes}"),
                ));
            }
            Ok(Some(Conditioning {
                num_classes,
                class_dropout_prob: d.number(
                    &format!("{key}.class_dropout_prob"),
                    0.1,
                    0.0,
                    1.0,
                )?,
            }))
        }
        Some(other) => Err(d.invalid(
            &format!("{key}.type"),
            format!("expected class or null, found {other:?}"),
        )),
    }
}

fn training(d: &Doc) -> Result<Training, ConfigError> {
    let epochs = d.positive("training.epochs", 500)?;
    let o = "training.optimizer";
    let kind_name: String = d.get(&format!("{o}.type"), "adam".to_owned())?;
    let kind = match kind_name.to_ascii_lowercase().as_str() {
        "adam" => OptimizerKind::Adam,
        "adamw" => OptimizerKind::AdamW,
        _ => {
            return Err(d.invalid(
                &format!("{o}.type"),
                format!("expected adam or adamw, found {kind_name:?}"),
            ))
        }
    };
    let learning_rate = d.number(&format!("{o}.learning_rate"), 1e-4, 0.0, 10.0)?;
    if learning_rate == 0.0 {
        return Err(d.invalid(
            &format!("{o}.learning_rate"),
            "expected a positive number, found 0",
        ));
    }
    let weight_decay = d.number(&format!("{o}.weight_decay"), 0.0, 0.0, 1.0)?;
    let betas: Vec<f64> = d.get(&format!("{o}.betas"), vec![0.9, 0.999])?;
    let betas: [f64; 2] = match betas[..] {
        [a, b] if (0.0..1.0).contains(&a) && (0.0..1.0).contains(&b) => [a, b],
        _ => {
            return Err(d.invalid(
                &format!("{o}.betas"),
                format!("expected two numbers in [0, 1), found {betas:?}"),
            ))
        }
    };
    let gradient_clip_norm: Option<f64> = d.opt(&format!("{o}.gradient_clip_norm"))?;
    if let Some(c) = gradient_clip_norm {
        if !(c.is_finite() && c > 0.0) {
            return Err(d.invalid(
                &format!("{o}.gradient_clip_norm"),
                format!("expected a positive number or null, found {c}"),
            ));
        }
    }
    let optimizer = Optimizer {
        kind,
        learning_rate,
        weight_decay,
        betas,
        gradient_clip_norm,
    };
    let scheduler = scheduler(d, epochs)?;
    let c = "training.checkpointing";
    let checkpointing = Checkpointing {
        save_frequency: d.positive(&format!("{c}.save_frequency"), 50)?,
        save_optimizer: d.get(&format!("{c}.save_optimizer"), true)?,
        save_best_only: d.get(&format!("{c}.save_best_only"), false)?,
        save_latest: d.get(&format!("{c}.save_latest"), false)?,
    };
    let ema = Ema {
        enabled: d.get("training.ema.enabled", true)?,
        decay: d.number("training.ema.decay", 0.9999, 0.0, 1.0)?,
    };
    let validation = Validation {
        enabled: d.get("training.validation.enabled", true)?,
        frequency: d.positive("training.validation.frequency", 50)?,
    };
    let v = "training.visualization";
    let visualization = Visualization {
        enabled: d.get(&format!("{v}.enabled"), true)?,
        num_samples: d.positive(&format!("{v}.num_samples"), 8)?,
        guidance_scale: d.number(&format!("{v}.guidance_scale"), 3.0, 0.0, 100.0)?,
        log_images_interval: d.interval(&format!("{v}.log_images_interval"), Some(50))?,
        log_denoising_interval: d.interval(&format!("{v}.log_denoising_interval"), Some(50))?,
        threshold: threshold(d, v)?,
    };
    let r = "training.resume";
    let resume = Resume {
        enabled: d.get(&format!("{r}.enabled"), false)?,
        checkpoint: d
            .opt::<String>(&format!("{r}.checkpoint"))?
            .map(PathBuf::from),
        reset_optimizer: d.get(&format!("{r}.reset_optimizer"), false)?,
        reset_scheduler: d.get(&format!("{r}.reset_scheduler"), false)?,
    };
    if resume.enabled && resume.checkpoint.is_none() {
        return Err(d.invalid(
            &format!("{r}.checkpoint"),
            "required when training.resume.enabled is true",
        ));
    }
    let init_from = d.opt::<String>("training.init_from")?.map(PathBuf::from);
    if init_from.is_some() && resume.enabled {
        return Err(d.invalid(
            "training.init_from",
            "cannot be combined with training.resume.enabled: a resumed run takes its weights from the checkpoint",
        ));
    }
    Ok(Training {
        epochs,
        optimizer,
        scheduler,
        checkpointing,
        ema,
        validation,
        visualization,
        resume,
        init_from,
    })
}

fn scheduler(d: &Doc, epochs: usize) -> Result<Scheduler, ConfigError> {
    let s = "training.scheduler";
    let kind: Option<String> = d.opt(&format!("{s}.type"))?;
    match kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("none") | Some("null") | Some("constant") => Ok(Scheduler::Constant),
        Some("cosine") => {
            let t_max = match d.value(&format!("{s}.T_max")) {
                None => epochs,
                Some(Value::String(a)) if a == "auto" => epochs,
                Some(_) => d.positive(&format!("{s}.T_max"), epochs)?,
            };
            Ok(Scheduler::Cosine {
                t_max,
                eta_min: d.number(&format!("{s}.eta_min"), 1e-6, 0.0, 10.0)?,
            })
        }
        Some("step") => Ok(Scheduler::Step {
            step_size: d.positive(&format!("{s}.step_size"), 30)?,
            gamma: d.number(&format!("{s}.gamma"), 0.1, 0.0, 1.0)?,
        }),
        Some("plateau") => plateau(d, s).map(Scheduler::Plateau),
        Some(other) => Err(d.invalid(
            &format!("{s}.type"),
            format!("expected cosine, step, plateau or null, found {other:?}"),
        )),
    }
}

/// `ReduceLROnPlateau`'s arguments, which the user's code passes from every key of the
/// section but `type`: one it does not take fails there with a `TypeError`, here up front.
fn plateau(d: &Doc, s: &str) -> Result<Plateau, ConfigError> {
    if let Some(Value::Mapping(m)) = d.value(s) {
        for k in m.keys() {
            let name = k.as_str().unwrap_or_default();
            if name != "type" && !PLATEAU_KEYS.contains(&name) {
                return Err(d.invalid(
                    &format!("{s}.{name}"),
                    format!(
                        "not an argument of ReduceLROnPlateau (type: plateau takes {})",
                        PLATEAU_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    let default = Plateau::default();
    let choice = |key: &str, a: &str, b: &str| -> Result<bool, ConfigError> {
        let k = format!("{s}.{key}");
        match d.opt::<String>(&k)? {
            None => Ok(false),
            Some(v) if v == a => Ok(false),
            Some(v) if v == b => Ok(true),
            Some(v) => Err(d.invalid(&k, format!("expected {a} or {b}, found {v:?}"))),
        }
    };
    let factor = d.number(&format!("{s}.factor"), default.factor, 0.0, 1.0)?;
    if factor >= 1.0 {
        return Err(d.invalid(
            &format!("{s}.factor"),
            "expected a number below 1 (ReduceLROnPlateau refuses 1 and above), found 1",
        ));
    }
    Ok(Plateau {
        maximize: choice("mode", "min", "max")?,
        factor,
        patience: d.get(&format!("{s}.patience"), default.patience)?,
        threshold: d.number(&format!("{s}.threshold"), default.threshold, 0.0, f64::MAX)?,
        absolute: choice("threshold_mode", "rel", "abs")?,
        cooldown: d.get(&format!("{s}.cooldown"), default.cooldown)?,
        min_lr: d.number(&format!("{s}.min_lr"), default.min_lr, 0.0, f64::MAX)?,
        eps: d.number(&format!("{s}.eps"), default.eps, 0.0, f64::MAX)?,
    })
}

/// `use_dynamic_threshold` (default true, as the user's sampler) and
/// `dynamic_threshold_percentile` (default 0.995) under `section`: the names of their
/// sampler's arguments.
fn threshold(d: &Doc, section: &str) -> Result<Threshold, ConfigError> {
    if !d.get(&format!("{section}.use_dynamic_threshold"), true)? {
        return Ok(Threshold::Clip);
    }
    let key = format!("{section}.dynamic_threshold_percentile");
    let percentile = d.number(&key, 0.995, 0.0, 1.0)?;
    Ok(Threshold::Dynamic { percentile })
}

fn generation(d: &Doc, cond: Option<&Conditioning>) -> Result<Generation, ConfigError> {
    let g = "generation";
    let class_selection: Option<Vec<usize>> = d.opt(&format!("{g}.sampling.class_selection"))?;
    if let (Some(sel), Some(c)) = (&class_selection, cond) {
        if let Some(bad) = sel.iter().find(|&&k| k >= c.num_classes) {
            return Err(d.invalid(
                &format!("{g}.sampling.class_selection"),
                format!("class {bad} is not below num_classes {}", c.num_classes),
            ));
        }
    }
    Ok(Generation {
        checkpoint: d
            .opt::<String>(&format!("{g}.checkpoint"))?
            .map(PathBuf::from),
        num_samples: d.positive(&format!("{g}.sampling.num_samples"), 100)?,
        batch_size: d.positive(&format!("{g}.sampling.batch_size"), 50)?,
        guidance_scale: d.number(&format!("{g}.sampling.guidance_scale"), 3.0, 0.0, 100.0)?,
        threshold: threshold(d, &format!("{g}.sampling"))?,
        use_ema: d.get(&format!("{g}.sampling.use_ema"), true)?,
        class_selection,
        save_individual: d.get(&format!("{g}.output.save_individual"), true)?,
        save_grid: d.get(&format!("{g}.output.save_grid"), true)?,
        grid_nrow: d.positive(&format!("{g}.output.grid_nrow"), 10)?,
    })
}

#[cfg(test)]
mod tests;
