//! `experiment: diffusion_pretrained`: the user's ADM fine-tuning config (`model.pretrained`,
//! `model.initialization`, `model.diffusion.noise_schedule` and
//! `sample_timestep_respacing`), read with their validator's rules and refused where their
//! code would fail later or do something else than the keys say.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::doc::Doc;
use super::model::{MAX_IMAGE_SIZE, MAX_TIMESTEPS};
use super::{Architecture, BetaSchedule, Conditioning, Diffusion, Threshold};
use crate::config::ConfigError;
use crate::images::settings::PipelineSettings;
use crate::train::gaussian::{self, AdmSchedule};

/// `model.pretrained.source`: which guided-diffusion UNet is built, at which shapes the
/// pretrained file must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmSource {
    /// OpenAI's class-conditional ImageNet-64 model (296M parameters), the user's only one.
    AdmImagenet64,
    /// The same structure at small flags (32 channels, multipliers 1,2,2, one residual block
    /// per level): not an OpenAI checkpoint but a file of that format made by
    /// `tests/python/adm_reference.py`, so the whole path runs in seconds (the user's code
    /// has the same test seam as an `arch` argument).
    AdmTiny,
}

impl AdmSource {
    pub const NAMES: [&str; 2] = ["adm_imagenet64", "adm_tiny"];

    pub fn name(self) -> &'static str {
        match self {
            AdmSource::AdmImagenet64 => "adm_imagenet64",
            AdmSource::AdmTiny => "adm_tiny",
        }
    }

    /// The flags of the UNet this source names.
    pub fn flags(self) -> AdmFlags {
        match self {
            AdmSource::AdmImagenet64 => AdmFlags::imagenet64(),
            AdmSource::AdmTiny => AdmFlags::tiny(),
        }
    }
}

/// The flags of a guided-diffusion UNet that this model varies; everything else is fixed
/// at the ImageNet-64 checkpoint's choices (`train::adm`'s docs); plain numbers, so the settings know the model's shape without
/// the `train` feature.
#[derive(Clone, Debug, PartialEq)]
pub struct AdmFlags {
    pub model_channels: usize,
    pub channel_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Downsampling factors with attention (`image_size // r` for their resolutions `r`).
    pub attention_ds: Vec<usize>,
    /// Channels per attention head (`num_head_channels`).
    pub head_channels: usize,
    pub dropout: f64,
    pub in_channels: usize,
    /// Twice `in_channels` with a learned sigma: epsilon, then the variance interpolation.
    pub out_channels: usize,
}

impl AdmFlags {
    /// OpenAI's class-conditional ImageNet-64 model (guided-diffusion's README, the flags
    /// the user's `IMAGENET64_ADM_FLAGS` copy): 296M parameters.
    pub fn imagenet64() -> AdmFlags {
        AdmFlags {
            model_channels: 192,
            channel_mult: vec![1, 2, 3, 4],
            num_res_blocks: 3,
            attention_ds: vec![2, 4, 8],
            head_channels: 64,
            dropout: 0.1,
            in_channels: 3,
            out_channels: 6,
        }
    }

    /// The same structure, small (the parity tests' `tiny` in tests/python/adm_reference.py):
    /// every kind of block at three levels.
    pub fn tiny() -> AdmFlags {
        AdmFlags {
            model_channels: 32,
            channel_mult: vec![1, 2, 2],
            num_res_blocks: 1,
            attention_ds: vec![2, 4],
            head_channels: 16,
            ..AdmFlags::imagenet64()
        }
    }

    /// The time and label embeddings' width.
    pub fn embed_dim(&self) -> usize {
        4 * self.model_channels
    }
}

/// What an ADM checkpoint's weights depend on besides the classes and the step count:
/// recorded in our checkpoints, compared on resume, export and generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmModel {
    pub source: AdmSource,
    pub noise_schedule: AdmSchedule,
}

/// `model.initialization`: which of the model's tensors train.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trainable {
    /// `freeze_backbone: true` (their default): the label embedding and the output layer
    /// (`label_emb*`, `out.*`).
    Heads,
    /// `trainable_layers`: fnmatch patterns over the parameter names; they take precedence
    /// over `freeze_backbone`, as in the user's `build_adm_model`.
    Patterns(Vec<String>),
    /// `freeze_backbone: false` and no patterns: full fine-tuning.
    All,
}

/// The settings of the ADM path.
#[derive(Clone, Debug, PartialEq)]
pub struct Adm {
    pub model: AdmModel,
    /// `checkpoint_path` when set, else `cache_path` (their `_resolve_checkpoint`).
    pub checkpoint: PathBuf,
    /// Which key gave [`Adm::checkpoint`], for messages.
    pub checkpoint_key: &'static str,
    pub checkpoint_url: Option<String>,
    /// `sample_timestep_respacing` (`""`: the full chain), checked against the step count.
    pub respacing: String,
    pub trainable: Trainable,
}

/// `model.*` keys their `diffusion_pretrained` validator and `build_adm_model` read.
pub(super) const MODEL_KEYS: [(&str, &[&str]); 5] = [
    ("architecture", &["image_size", "in_channels"]),
    (
        "pretrained",
        &["source", "checkpoint_url", "checkpoint_path", "cache_path"],
    ),
    (
        "diffusion",
        &[
            "num_timesteps",
            "noise_schedule",
            "sample_timestep_respacing",
        ],
    ),
    (
        "conditioning",
        &["type", "num_classes", "class_dropout_prob"],
    ),
    ("initialization", &["freeze_backbone", "trainable_layers"]),
];

/// The ADM path's settings, and the architecture and diffusion records that describe it.
pub(super) fn adm(
    d: &Doc,
    p: &PipelineSettings,
    cond: Option<&Conditioning>,
) -> Result<(Adm, Architecture, Diffusion), ConfigError> {
    let source_name: String = d.get("model.pretrained.source", "adm_imagenet64".to_owned())?;
    let source = match source_name.as_str() {
        "adm_imagenet64" => AdmSource::AdmImagenet64,
        "adm_tiny" => AdmSource::AdmTiny,
        other => {
            return Err(d.invalid(
                "model.pretrained.source",
                format!("expected one of {:?}, found {other:?}", AdmSource::NAMES),
            ))
        }
    };
    let text = |key: &str| -> Result<Option<String>, ConfigError> {
        Ok(d.opt::<String>(key)?.filter(|s| !s.is_empty()))
    };
    let (checkpoint, checkpoint_key) = match (
        text("model.pretrained.checkpoint_path")?,
        text("model.pretrained.cache_path")?,
    ) {
        (Some(path), _) => (path, "model.pretrained.checkpoint_path"),
        (None, Some(path)) => (path, "model.pretrained.cache_path"),
        (None, None) => {
            return Err(d.invalid(
                "model.pretrained",
                "expected checkpoint_path (a local file) or cache_path (where the downloaded file is kept)",
            ))
        }
    };
    if p.in_channels != 3 {
        return Err(d.invalid(
            "model.architecture.in_channels",
            format!(
                "must be 3 for the ADM backbone (grayscale images are read as RGB), found {}",
                p.in_channels
            ),
        ));
    }
    let AdmFlags {
        model_channels,
        channel_mult: mult,
        attention_ds,
        ..
    } = source.flags();
    let halvings = mult.len() - 1;
    if p.image_size as usize % (1 << halvings) != 0 {
        return Err(d.invalid(
            "model.architecture.image_size",
            format!(
                "expected a multiple of {} ({source_name} halves it {halvings} times and concatenates its skips unresized), found {}",
                1 << halvings,
                p.image_size
            ),
        ));
    }
    if p.image_size > MAX_IMAGE_SIZE {
        return Err(d.invalid(
            "model.architecture.image_size",
            format!(
                "expected at most {MAX_IMAGE_SIZE} for the trainer, found {}",
                p.image_size
            ),
        ));
    }
    if cond.is_none() {
        return Err(d.invalid(
            "model.conditioning.type",
            "null: the user's AdmDdpmModel always has num_classes + 1 label rows (the last the unconditional token); set type: class",
        ));
    }
    let key = "model.diffusion";
    let num_timesteps = d.positive_at_most(&format!("{key}.num_timesteps"), 1000, MAX_TIMESTEPS)?;
    let schedule_name: String = d.get(&format!("{key}.noise_schedule"), "cosine".to_owned())?;
    let noise_schedule = match schedule_name.as_str() {
        "cosine" => AdmSchedule::Cosine,
        "linear" => AdmSchedule::Linear,
        "quadratic" | "sigmoid" => return Err(d.invalid(
            &format!("{key}.noise_schedule"),
            format!("{schedule_name:?} passes the user's validator but guided-diffusion's get_named_beta_schedule has only linear and cosine (it raises NotImplementedError)"),
        )),
        other => return Err(d.invalid(
            &format!("{key}.noise_schedule"),
            format!("expected cosine or linear, found {other:?}"),
        )),
    };
    // guided-diffusion's posterior needs a second step; its linear betas reach 1 at T = 20
    // (its assert on them fails below that) and leave nothing of the image at T = 20.
    let least = match noise_schedule {
        AdmSchedule::Cosine => 2,
        AdmSchedule::Linear => 21,
    };
    if num_timesteps < least {
        return Err(d.invalid(
            &format!("{key}.num_timesteps"),
            format!(
                "expected at least {least} with the {} schedule (guided-diffusion's {}), found {num_timesteps}",
                noise_schedule.name(),
                match noise_schedule {
                    AdmSchedule::Cosine => "posterior needs two steps",
                    AdmSchedule::Linear => "linear betas 0.02 x 1000 / T must stay below 1",
                }
            ),
        ));
    }
    let respacing = respacing(d, &format!("{key}.sample_timestep_respacing"))?;
    gaussian::respacing(num_timesteps, &respacing)
        .map_err(|e| d.invalid(&format!("{key}.sample_timestep_respacing"), e.to_string()))?;
    let patterns: Option<Vec<String>> = d.opt("model.initialization.trainable_layers")?;
    let trainable = match patterns {
        Some(p) if !p.is_empty() => Trainable::Patterns(p),
        _ if d.get("model.initialization.freeze_backbone", true)? => Trainable::Heads,
        _ => Trainable::All,
    };
    let architecture = Architecture {
        image_size: p.image_size as usize,
        in_channels: 3,
        model_channels,
        // Level i runs at downsampling factor 2^i.
        use_attention: (0..mult.len())
            .map(|i| attention_ds.contains(&(1 << i)))
            .collect(),
        channel_multipliers: mult,
    };
    let scale = 1000.0 / num_timesteps as f64;
    let diffusion = Diffusion {
        num_timesteps,
        beta_schedule: match noise_schedule {
            AdmSchedule::Cosine => BetaSchedule::Cosine,
            AdmSchedule::Linear => BetaSchedule::Linear,
        },
        beta_start: scale * 1e-4,
        beta_end: scale * 0.02,
    };
    let adm = Adm {
        model: AdmModel {
            source,
            noise_schedule,
        },
        checkpoint: PathBuf::from(checkpoint),
        checkpoint_key,
        checkpoint_url: text("model.pretrained.checkpoint_url")?,
        respacing,
        trainable,
    };
    Ok((adm, architecture, diffusion))
}

/// `sample_timestep_respacing`: a string, as their validator requires (`"250"` when the key
/// is absent, their example's); `null` or a number (YAML reads `250` unquoted as one) is
/// refused with the quoting that fixes it.
fn respacing(d: &Doc, key: &str) -> Result<String, ConfigError> {
    if !d.has(key) {
        return Ok("250".to_owned());
    }
    match d.value(key) {
        Some(serde_yaml_ng::Value::String(s)) => Ok(s.clone()),
        found => Err(d.invalid(
            key,
            format!(
                "expected a string (their validator requires one: \"250\", \"ddim50\", \"\" for the full chain), found {}; quote it",
                found.map_or_else(|| "null".to_owned(), super::doc::show)
            ),
        )),
    }
}

/// The ADM samples with `clip_denoised`, as the user's `AdmDdpmModel.sample` always does;
/// dynamic thresholding is their DDPM sampler's. A config that asks for it is refused.
pub(super) fn clip_threshold(
    d: &Doc,
    section: &str,
    t: Threshold,
) -> Result<Threshold, ConfigError> {
    let key = format!("{section}.use_dynamic_threshold");
    if matches!(t, Threshold::Dynamic { .. }) && d.has(&key) {
        return Err(d.invalid(
            &key,
            "true: the ADM samples with clip_denoised as the user's AdmDdpmModel does; dynamic thresholding is their DDPM sampler's (set it to false or remove it)",
        ));
    }
    Ok(Threshold::Clip)
}

#[cfg(test)]
mod tests;
