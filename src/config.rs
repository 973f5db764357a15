//! The user's diffusion or classifier YAML, as far as the training list needs it.
//!
//! Only `compute.seed`, `data.split_file`, `data.balancing`, `data.synthetic_augmentation`
//! and `model.conditioning.num_classes` are read; every other section of the user's config
//! is ignored, so their full file loads unchanged. `data.balancing` and
//! `data.synthetic_augmentation` are strict: an unknown key there (`enabeld`) is an error,
//! because a typo must never silently change which images are trained on. Their
//! command-line overrides ([`overrides`]) apply before any of it is read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::weights::WeightMethod;

pub mod overrides;
pub mod synthetic;

use overrides::Overrides;
use synthetic::SyntheticAugmentation;

/// A config that could not be read or is invalid. Every message names the file and the
/// dotted key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
}

/// The most draws one epoch of the weighted sampler may have: `sample` holds an epoch's
/// positions in memory (8 bytes each), so 2^30 of them are already 8 GiB.
pub const MAX_NUM_SAMPLES: u64 = 1 << 30;

/// Where the seed comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSetting {
    /// `compute.seed: N` (or no `compute.seed` at all, which the user's code reads as 0).
    Fixed(u64),
    /// `compute.seed: null`: the user asked for no fixed seed; one is drawn from the OS and
    /// recorded so the run can still be repeated.
    FromOs,
}

/// The parts of the config that balance-split uses, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub seed: SeedSetting,
    pub split_file: Option<String>,
    /// `None` when the config has no `data.balancing` section (no balancing).
    pub balancing: Option<Balancing>,
    /// `model.conditioning.num_classes`, checked against the split's classes.
    pub num_classes: Option<u64>,
    /// An enabled `data.synthetic_augmentation` (never together with a data strategy).
    pub synthetic: Option<SyntheticAugmentation>,
}

/// `data.balancing`, with the user's defaults filled in for missing keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balancing {
    #[serde(default, deserialize_with = "null_as_default")]
    pub weighted_sampler: WeightedSamplerConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    pub downsampling: ResampleConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    pub upsampling: ResampleConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    pub class_weights: ClassWeightsConfig,
}

/// `data.balancing.weighted_sampler`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightedSamplerConfig {
    pub enabled: bool,
    pub method: WeightMethod,
    pub beta: f64,
    pub manual_weights: Option<Vec<f64>>,
    pub replacement: bool,
    pub num_samples: Option<u64>,
}

impl Default for WeightedSamplerConfig {
    fn default() -> Self {
        WeightedSamplerConfig {
            enabled: false,
            method: WeightMethod::InverseFrequency,
            beta: 0.999,
            manual_weights: None,
            replacement: true,
            num_samples: None,
        }
    }
}

/// `data.balancing.downsampling` and `data.balancing.upsampling`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResampleConfig {
    pub enabled: bool,
    /// minority:majority ratio to reach, in (0, 1].
    pub target_ratio: f64,
}

impl Default for ResampleConfig {
    fn default() -> Self {
        ResampleConfig {
            enabled: false,
            target_ratio: 1.0,
        }
    }
}

/// `data.balancing.class_weights`: per-class weights for the loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassWeightsConfig {
    pub enabled: bool,
    pub method: WeightMethod,
    pub beta: f64,
    pub manual_weights: Option<Vec<f64>>,
    pub normalize: bool,
}

impl Default for ClassWeightsConfig {
    fn default() -> Self {
        ClassWeightsConfig {
            enabled: false,
            method: WeightMethod::InverseFrequency,
            beta: 0.999,
            manual_weights: None,
            normalize: true,
        }
    }
}

/// The data strategies, in priority order (the first enabled one wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataStrategy {
    WeightedSampler,
    Downsampling,
    Upsampling,
}

impl DataStrategy {
    pub fn name(self) -> &'static str {
        match self {
            DataStrategy::WeightedSampler => "weighted_sampler",
            DataStrategy::Downsampling => "downsampling",
            DataStrategy::Upsampling => "upsampling",
        }
    }
}

impl Balancing {
    /// Enabled data strategies in priority order: `weighted_sampler > downsampling >
    /// upsampling`. The first is used, the rest are overridden.
    pub fn enabled_strategies(&self) -> Vec<DataStrategy> {
        [
            (self.weighted_sampler.enabled, DataStrategy::WeightedSampler),
            (self.downsampling.enabled, DataStrategy::Downsampling),
            (self.upsampling.enabled, DataStrategy::Upsampling),
        ]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
        .collect()
    }

    /// Range checks serde cannot express. Returns the dotted key (below `data.balancing`)
    /// and what was wrong.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        let ws = &self.weighted_sampler;
        check_method("weighted_sampler", ws.method, ws.beta, &ws.manual_weights)?;
        if let Some(n) = ws.num_samples.filter(|&n| n == 0 || n > MAX_NUM_SAMPLES) {
            return Err((
                "weighted_sampler.num_samples".into(),
                format!("expected null or an integer from 1 to {MAX_NUM_SAMPLES}, found {n}"),
            ));
        }
        for (name, section) in [
            ("downsampling", &self.downsampling),
            ("upsampling", &self.upsampling),
        ] {
            let r = section.target_ratio;
            if !(r > 0.0 && r <= 1.0) {
                return Err((
                    format!("{name}.target_ratio"),
                    format!("expected a number in (0, 1], found {}", show_f64(r)),
                ));
            }
        }
        let cw = &self.class_weights;
        check_method("class_weights", cw.method, cw.beta, &cw.manual_weights)
    }
}

fn check_method(
    section: &str,
    method: WeightMethod,
    beta: f64,
    manual: &Option<Vec<f64>>,
) -> Result<(), (String, String)> {
    if !(beta > 0.0 && beta < 1.0) {
        return Err((
            format!("{section}.beta"),
            format!("expected a number in (0, 1), found {}", show_f64(beta)),
        ));
    }
    match manual {
        None if method == WeightMethod::Manual => Err((
            format!("{section}.manual_weights"),
            "expected a list of positive numbers (one per class) because method is manual, found null"
                .into(),
        )),
        Some(list) if list.is_empty() => Err((
            format!("{section}.manual_weights"),
            "expected a non-empty list of positive numbers, found []".into(),
        )),
        Some(list) => match list.iter().position(|w| !(w.is_finite() && *w > 0.0)) {
            Some(i) => Err((
                format!("{section}.manual_weights[{i}]"),
                format!("expected a positive finite number, found {}", show_f64(list[i])),
            )),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// Numbers in messages as the user would write them (`1.5`, `.nan`, `-inf`).
fn show_f64(x: f64) -> String {
    crate::text::number(x)
}

/// Treats an explicit YAML `null` section like a missing one (defaults).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Distinguishes `seed: null` (Some(None)) from a missing `seed` (None).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    compute: Option<RawCompute>,
    #[serde(default)]
    data: Option<RawData>,
    #[serde(default)]
    model: Option<RawModel>,
}

#[derive(Deserialize, Default)]
struct RawCompute {
    #[serde(default, deserialize_with = "present")]
    seed: Option<Option<u64>>,
}

#[derive(Deserialize, Default)]
struct RawData {
    #[serde(default)]
    split_file: Option<String>,
    #[serde(default)]
    balancing: Option<Balancing>,
    #[serde(default)]
    synthetic_augmentation: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
struct RawModel {
    #[serde(default)]
    conditioning: Option<RawConditioning>,
}

#[derive(Deserialize, Default)]
struct RawConditioning {
    #[serde(default)]
    num_classes: Option<u64>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// Reads a config file with the user's command-line overrides applied first.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        parse_with(path, overrides, Config::parse)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // serde_yaml_ng's messages already start with the dotted key and end with the line
        // and column: "data.balancing.downsampling: unknown field `enabeld`, ... at line 4".
        let raw: Option<RawConfig> =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
                path: path.to_owned(),
                message: crate::config::yaml::clarify(&e.to_string()),
            })?;
        let raw = raw.unwrap_or_default();
        let data = raw.data.unwrap_or_default();
        if let Some(b) = &data.balancing {
            b.validate()
                .map_err(|(key, message)| ConfigError::Invalid {
                    path: path.to_owned(),
                    key: format!("data.balancing.{key}"),
                    message,
                })?;
        }
        if data.split_file.as_deref() == Some("") {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                key: "data.split_file".into(),
                message: "expected the path of the split JSON, found an empty string".into(),
            });
        }
        let synthetic =
            synthetic::parse(data.synthetic_augmentation.as_ref()).map_err(|(key, message)| {
                ConfigError::Invalid {
                    path: path.to_owned(),
                    key: if key.is_empty() {
                        "data.synthetic_augmentation".into()
                    } else {
                        format!("data.synthetic_augmentation.{key}")
                    },
                    message,
                }
            })?;
        if let (Some(_), Some(b)) = (&synthetic, &data.balancing) {
            // Their validator's rule: the combined list would be balanced by neither.
            if let Some(s) = b.enabled_strategies().first() {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: "data.synthetic_augmentation".into(),
                    message: format!(
                        "cannot be combined with data.balancing.{} (enabled); the user's trainer refuses both together: disable one of them",
                        s.name()
                    ),
                });
            }
        }
        let seed = match raw.compute.unwrap_or_default().seed {
            None => SeedSetting::Fixed(0),
            Some(None) => SeedSetting::FromOs,
            Some(Some(n)) => SeedSetting::Fixed(n),
        };
        Ok(Config {
            seed,
            split_file: data.split_file,
            balancing: data.balancing,
            num_classes: raw
                .model
                .and_then(|m| m.conditioning)
                .and_then(|c| c.num_classes),
            synthetic,
        })
    }
}

/// Reads a config file, merges the command-line overrides into it, and parses the result
/// with `parse`. A syntax error's line and column would point into the merged document,
/// which the user never sees, so with overrides they are replaced by a note saying so.
pub fn parse_with<T>(
    path: &Path,
    overrides: &Overrides,
    parse: impl FnOnce(&str, &Path) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let text = overrides.apply(&yaml::read(path)?, path)?;
    parse(&text, path).map_err(|e| match e {
        ConfigError::Syntax { path, message } if !overrides.is_empty() => {
            let message = match message.rfind(" at line ") {
                Some(at) => &message[..at],
                None => &message,
            };
            ConfigError::Syntax {
                path,
                message: format!("{message} (with the command-line overrides applied)"),
            }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests;
pub mod yaml;
