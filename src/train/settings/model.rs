//! `experiment` and `model.*`: which model is trained, refused rather than guessed when it
//! is not the user's DDPM, and bounded before anything of its size is made.

use serde_yaml_ng::Value;

use super::doc::Doc;
use super::{Architecture, BetaSchedule, Conditioning, Diffusion};
use crate::config::ConfigError;
use crate::images::settings::PipelineSettings;

/// The experiments `diffusion-train` trains: the user's DDPM (`experiment: diffusion`, or a
/// config without the key, as ours are) and their ADM fine-tuning (`diffusion_pretrained`).
/// Anything else (a classifier) is refused rather than trained as a model the user did not
/// ask for.
const EXPERIMENTS: [&str; 2] = ["diffusion", "diffusion_pretrained"];

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

/// Which model family a config trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Experiment {
    Ddpm,
    Adm,
}

/// `experiment`, and every `model.*` key checked against what that experiment's code reads.
pub(super) fn experiment(d: &Doc) -> Result<Experiment, ConfigError> {
    let mut which = Experiment::Ddpm;
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
                    "{shown} is not trained by diffusion-train; it trains the user's DDPM (experiment: diffusion) and their ADM fine-tuning (experiment: diffusion_pretrained)"
                ),
            ));
        }
        if name.as_str() == Some("diffusion_pretrained") {
            which = Experiment::Adm;
        }
    }
    // (sections, whose config, whose code reads the keys)
    let (keys_of, config, reader): (&[(&str, &[&str])], &str, &str) = match which {
        Experiment::Ddpm => (
            &MODEL_KEYS,
            "the user's DDPM config",
            "the user's DDPM (their create_ddpm",
        ),
        Experiment::Adm => (
            &super::pretrained::MODEL_KEYS,
            "the user's diffusion_pretrained config",
            "the user's diffusion_pretrained config (their build_adm_model",
        ),
    };
    let Some(Value::Mapping(model)) = d.value("model") else {
        return Ok(which);
    };
    for (section, v) in model {
        let name = section.as_str().unwrap_or_default();
        let Some((_, keys)) = keys_of.iter().find(|(s, _)| *s == name) else {
            let sections: Vec<String> = keys_of.iter().map(|(s, _)| format!("model.{s}")).collect();
            return Err(d.invalid(
                &format!("model.{name}"),
                format!(
                    "not a section of {config} ({}); diffusion-train does not implement it",
                    sections.join(", ")
                ),
            ));
        };
        if let Value::Mapping(m) = v {
            for k in m.keys() {
                let key = k.as_str().unwrap_or_default();
                if !keys.contains(&key) {
                    return Err(d.invalid(
                        &format!("model.{name}.{key}"),
                        format!(
                            "not a key of {reader} reads {} here); it would change nothing in their model, so it is refused rather than ignored",
                            keys.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(which)
}

pub(super) fn architecture(d: &Doc, p: &PipelineSettings) -> Result<Architecture, ConfigError> {
    let key = "model.architecture";
    let model_channels =
        d.positive_at_most(&format!("{key}.model_channels"), 64, MAX_MODEL_CHANNELS)?;
    if model_channels % 8 != 0 {
        return Err(d.invalid(
            &format!("{key}.model_channels"),
            format!("expected a multiple of 8 (GroupNorm uses 8 groups), found {model_channels}"),
        ));
    }
    let channel_multipliers = channel_multipliers(d, key)?;
    let n = channel_multipliers.len();
    let use_attention = use_attention(d, key, n)?;
    check_image_size(d, key, n, p.image_size)?;
    Ok(Architecture {
        image_size: p.image_size as usize,
        in_channels: p.in_channels,
        model_channels,
        channel_multipliers,
        use_attention,
    })
}

/// `channel_multipliers`: bounded, positive, and starting at 1 as their model needs.
fn channel_multipliers(d: &Doc, key: &str) -> Result<Vec<usize>, ConfigError> {
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
    Ok(channel_multipliers)
}

/// `use_attention`: one flag per stage (default: the last stage only).
fn use_attention(d: &Doc, key: &str, n: usize) -> Result<Vec<bool>, ConfigError> {
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
    Ok(use_attention)
}

/// `image_size`: halved exactly at every stage but the last, and bounded.
fn check_image_size(d: &Doc, key: &str, n: usize, image_size: u32) -> Result<(), ConfigError> {
    // Each stage but the last halves the size (a stride-2 conv rounds up) and each
    // decoder stage doubles it; the user's decoder concatenates its skip without resizing,
    // so their model runs only where every halving is exact.
    let step = 1u64
        .checked_shl(n as u32 - 1)
        .filter(|&s| s <= u64::from(u32::MAX));
    if step.is_none_or(|s| u64::from(image_size) % s != 0) {
        return Err(d.invalid(
            &format!("{key}.image_size"),
            format!(
                "expected a multiple of {} for {n} stages (each but the last halves it, and the user's decoder needs the halves exact), found {}",
                step.map_or_else(|| format!("2^{}", n - 1), |s| s.to_string()),
                image_size
            ),
        ));
    }
    if image_size > MAX_IMAGE_SIZE {
        return Err(d.invalid(
            &format!("{key}.image_size"),
            format!(
                "expected at most {MAX_IMAGE_SIZE} for the trainer, found {}",
                image_size
            ),
        ));
    }
    Ok(())
}

/// Bounds on what a configured model can be, each checked before anything of its size is
/// made (the whole model is then bounded by [`MAX_PARAMETERS`](super::MAX_PARAMETERS)): far above any model of
/// this kind (the user's has 64 channels, 3 stages, 40 pixels, 1000 timesteps).
pub const MAX_MODEL_CHANNELS: usize = 4096;
pub const MAX_STAGES: usize = 8;
pub const MAX_MULTIPLIER: usize = 64;
pub const MAX_IMAGE_SIZE: u32 = 1024;
pub const MAX_TIMESTEPS: usize = 100_000;
pub const MAX_CLASSES: usize = 100_000;

pub(super) fn diffusion(d: &Doc) -> Result<Diffusion, ConfigError> {
    let key = "model.diffusion";
    let num_timesteps = d.positive_at_most(&format!("{key}.num_timesteps"), 1000, MAX_TIMESTEPS)?;
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

pub(super) fn conditioning(d: &Doc) -> Result<Option<Conditioning>, ConfigError> {
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
