//! What the trainer takes from a manifest, checked against the config and the split it
//! was made from before any training starts.

use std::path::{Path, PathBuf};

use crate::images::loader::Dataset;
use crate::input;
use crate::manifest::Manifest;
use crate::sampler::{self, SamplerError, Source, Weighted};

use super::error::TrainError;
use super::settings::TrainSettings;

/// A manifest's training and validation data.
pub struct TrainData {
    pub manifest: PathBuf,
    pub manifest_sha256: String,
    pub classes: Vec<String>,
    pub train: Dataset,
    pub train_labels: Vec<u32>,
    pub val: Option<Dataset>,
    /// `balancing.sampler`: weighted draws instead of a shuffle.
    pub sampler: Option<Weighted>,
    /// `balancing.loss.class_weights`: the class-weighted MSE.
    pub loss_weights: Option<Vec<f64>>,
    /// The seed the manifest's epoch order derives from (`balancing.seed`), so the
    /// trainer sees exactly the order `balance-split sample` prints.
    pub data_seed: u64,
    /// The split the manifest was made from, and whether its hash was checked.
    pub source_check: SourceCheck,
}

/// The outcome of checking the source split's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceCheck {
    Matches(PathBuf),
    /// The split file is not there (the manifest was copied to another machine); nothing
    /// to compare.
    Absent(PathBuf),
}

impl TrainData {
    /// Reads `manifest`, resolving image paths and the recorded split path against `root`.
    pub fn load(manifest: &Path, root: &Path, s: &TrainSettings) -> Result<TrainData, TrainError> {
        let bytes = input::read(manifest)?;
        let manifest_sha256 = input::sha256_hex(&bytes);
        let text = input::text(&bytes, manifest)?;
        let m = Manifest::parse(text, manifest)?;
        let k = m.split.classes.len();
        let configured = s.conditioning.as_ref().map(|c| c.num_classes);
        if let Some(n) = configured.filter(|&n| n != k) {
            return Err(TrainError::Mismatch(format!(
                "{}: metadata.classes has {k} classes but the config's model.conditioning.num_classes is {n}",
                manifest.display()
            )));
        }
        check_data_sections(&m, s, manifest)?;
        if m.split.train.is_empty() {
            return Err(TrainError::Mismatch(format!(
                "{}: train is empty; nothing to train on",
                manifest.display()
            )));
        }
        let source_check = check_source(
            &input::under(root, Path::new(&m.record.source.split_file)),
            &m.record.source.split_sha256,
        )?;
        let train_labels = m.split.train_labels();
        Ok(TrainData {
            manifest: manifest.to_owned(),
            manifest_sha256,
            classes: m.split.classes.clone(),
            train: Dataset::new(&m.split.train, root),
            train_labels,
            val: m
                .split
                .val
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| Dataset::new(v, root)),
            sampler: m.record.sampler.as_ref().map(|r| r.weighted()),
            loss_weights: m.record.loss.as_ref().map(|l| l.class_weights.clone()),
            data_seed: m.record.seed,
            source_check,
        })
    }

    /// The positions of `train` that epoch `epoch` visits, in order.
    pub fn epoch_order(&self, epoch: u64, shuffle: bool) -> Result<Vec<usize>, SamplerError> {
        let src = Source {
            labels: &self.train_labels,
            num_classes: self.classes.len(),
            weighted: self.sampler.as_ref(),
            shuffle,
        };
        sampler::global(&src, self.data_seed, epoch)
    }
}

/// The config's `data.balancing` and `data.synthetic_augmentation` (overrides applied) must
/// be those the manifest was made with: the trainer takes the training list from the
/// manifest, so a config (or an override) that differs would otherwise change nothing.
fn check_data_sections(m: &Manifest, s: &TrainSettings, manifest: &Path) -> Result<(), TrainError> {
    let r = &m.record;
    let sections = [
        (
            "data.balancing",
            serde_json::to_value(&r.config).expect("plain data"),
            serde_json::to_value(&s.data.balancing).expect("plain data"),
        ),
        (
            "data.synthetic_augmentation",
            r.synthetic
                .as_ref()
                .map_or(serde_json::Value::Null, |x| x.config.clone()),
            s.data
                .synthetic
                .as_ref()
                .map_or(serde_json::Value::Null, |x| x.record()),
        ),
    ];
    for (name, recorded, configured) in &sections {
        if let Some(d) = crate::verify::first_difference(recorded, configured, name) {
            return Err(TrainError::Mismatch(format!(
                "{}: made with another {name} than the config's ({}: the manifest has {}, the config {}); make it again with balance-split balance and this config (and the same overrides)",
                manifest.display(),
                d.field,
                d.expected,
                d.found
            )));
        }
    }
    Ok(())
}

fn check_source(split: &Path, recorded: &str) -> Result<SourceCheck, TrainError> {
    let bytes = match input::read_bounded(split, input::MAX_INPUT_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SourceCheck::Absent(split.to_owned()))
        }
        Err(source) => {
            return Err(TrainError::Mismatch(format!(
                "{}: cannot read the manifest's source split: {source}",
                split.display()
            )))
        }
    };
    let found = input::sha256_hex(&bytes);
    if found != recorded {
        return Err(TrainError::Mismatch(format!(
            "{}: the split changed since the manifest was made (sha256 {found}, manifest records {recorded}); run balance-split balance again",
            split.display()
        )));
    }
    Ok(SourceCheck::Matches(split.to_owned()))
}
