//! The parts of the user's YAML that shape the image pipeline: `model.architecture`
//! (`image_size`, `in_channels`), `data.loading` (`batch_size`, `shuffle_train`,
//! `drop_last`) and `data.augmentation`. Other keys of those sections (model widths,
//! worker counts) belong to other consumers and are ignored here.

use std::path::Path;

use serde::Deserialize;

use super::loader::LoaderConfig;
use super::transform::AugmentationConfig;
use crate::config::ConfigError;

/// The pipeline's settings, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineSettings {
    pub image_size: u32,
    pub in_channels: usize,
    pub batch_size: usize,
    pub shuffle_train: bool,
    pub drop_last: bool,
    pub augmentation: AugmentationConfig,
}

#[derive(Deserialize, Default)]
struct Raw {
    #[serde(default)]
    model: Option<RawModel>,
    #[serde(default)]
    data: Option<RawData>,
}

#[derive(Deserialize, Default)]
struct RawModel {
    #[serde(default)]
    architecture: Option<RawArchitecture>,
}

#[derive(Deserialize)]
struct RawArchitecture {
    #[serde(default = "default_size")]
    image_size: u32,
    #[serde(default = "default_channels")]
    in_channels: usize,
}

#[derive(Deserialize, Default)]
struct RawData {
    #[serde(default)]
    loading: Option<RawLoading>,
    #[serde(default)]
    augmentation: Option<AugmentationConfig>,
}

#[derive(Deserialize)]
struct RawLoading {
    #[serde(default = "default_batch")]
    batch_size: usize,
    #[serde(default = "yes")]
    shuffle_train: bool,
    #[serde(default)]
    drop_last: bool,
}

fn default_size() -> u32 {
    40
}
fn default_channels() -> usize {
    3
}
fn default_batch() -> usize {
    8
}
fn yes() -> bool {
    true
}

impl PipelineSettings {
    /// Reads and validates the settings of the config file at `path`.
    pub fn load(path: &Path) -> Result<PipelineSettings, ConfigError> {
        PipelineSettings::parse(&crate::config::yaml::read(path)?, path)
    }

    /// Reads the settings from config text; `path` is only used in messages. Missing
    /// sections take the user's defaults (40 x 40 RGB, batches of 8, shuffled, no
    /// augmentation).
    pub fn parse(text: &str, path: &Path) -> Result<PipelineSettings, ConfigError> {
        let raw: Option<Raw> = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: crate::config::yaml::clarify(&e.to_string()),
        })?;
        let raw = raw.unwrap_or_default();
        let arch = raw.model.unwrap_or_default().architecture;
        let data = raw.data.unwrap_or_default();
        let loading = data.loading;
        let s = PipelineSettings {
            image_size: arch.as_ref().map_or(default_size(), |a| a.image_size),
            in_channels: arch.as_ref().map_or(default_channels(), |a| a.in_channels),
            batch_size: loading.as_ref().map_or(default_batch(), |l| l.batch_size),
            shuffle_train: loading.as_ref().is_none_or(|l| l.shuffle_train),
            drop_last: loading.as_ref().is_some_and(|l| l.drop_last),
            augmentation: data.augmentation.unwrap_or_default(),
        };
        s.check().map_err(|(key, message)| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        })?;
        Ok(s)
    }

    /// The ranges the pipeline accepts, as (the config key, what was expected and found):
    /// the config reader and the Python package's `Loader` both check through this.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.image_size == 0 {
            return Err((
                "model.architecture.image_size",
                "expected a positive integer, found 0".into(),
            ));
        }
        if !matches!(self.in_channels, 1 | 3) {
            return Err((
                "model.architecture.in_channels",
                format!("expected 1 or 3, found {}", self.in_channels),
            ));
        }
        if self.batch_size == 0 {
            return Err((
                "data.loading.batch_size",
                "expected a positive integer, found 0".into(),
            ));
        }
        let deg = self.augmentation.rotation_degrees;
        if !(deg.is_finite() && (0.0..=180.0).contains(&deg)) {
            return Err((
                "data.augmentation.rotation_degrees",
                format!("expected a number in [0, 180], found {deg}"),
            ));
        }
        let k = self.augmentation.color_jitter.strength;
        if !(k.is_finite() && (0.0..=1.0).contains(&k)) {
            return Err((
                "data.augmentation.color_jitter.strength",
                format!("expected a number in [0, 1], found {k}"),
            ));
        }
        Ok(())
    }

    /// The loader configuration for training (`train: true`, augmented) or validation.
    pub fn loader(&self, seed: u64, train: bool) -> LoaderConfig {
        LoaderConfig {
            image_size: self.image_size,
            channels: self.in_channels,
            batch_size: self.batch_size,
            drop_last: train && self.drop_last,
            augmentation: train.then(|| self.augmentation.clone()),
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineSettings, String> {
        PipelineSettings::parse(text, Path::new("c.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_users_config() {
        let s = parse(include_str!("../../configs/diffusion.yaml")).unwrap();
        assert_eq!((s.image_size, s.in_channels, s.batch_size), (40, 3, 8));
        assert!(s.shuffle_train && !s.drop_last);
        assert!(s.augmentation.horizontal_flip);
        assert_eq!(s.augmentation.rotation_degrees, 15.0);
        assert!(!s.augmentation.color_jitter.enabled);
        assert_eq!(s.augmentation.color_jitter.strength, 0.1);
        let train = s.loader(3, true);
        assert_eq!(train.augmentation.as_ref(), Some(&s.augmentation));
        assert_eq!(
            s.loader(3, false).augmentation,
            None,
            "validation is never augmented"
        );
    }

    #[test]
    fn defaults_and_validation() {
        let s = parse("").unwrap();
        assert_eq!(
            (s.image_size, s.in_channels, s.batch_size, s.shuffle_train),
            (40, 3, 8, true)
        );
        assert_eq!(s.augmentation, AugmentationConfig::default());
        assert_eq!(
            parse("model:\n  architecture:\n    in_channels: 4\n").unwrap_err(),
            "c.yaml: model.architecture.in_channels: expected 1 or 3, found 4"
        );
        assert_eq!(
            parse("data:\n  loading:\n    batch_size: 0\n").unwrap_err(),
            "c.yaml: data.loading.batch_size: expected a positive integer, found 0"
        );
        assert_eq!(
            parse("data:\n  augmentation:\n    rotation_degrees: -5\n").unwrap_err(),
            "c.yaml: data.augmentation.rotation_degrees: expected a number in [0, 180], found -5"
        );
        assert_eq!(
            parse("data:\n  augmentation:\n    color_jitter:\n      strength: 2\n").unwrap_err(),
            "c.yaml: data.augmentation.color_jitter.strength: expected a number in [0, 1], found 2"
        );
        assert!(parse("data:\n  loading:\n    shuffle_train: sometimes\n")
            .unwrap_err()
            .starts_with("c.yaml: data.loading.shuffle_train: invalid type"));
    }
}
