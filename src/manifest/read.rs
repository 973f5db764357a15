//! Reading a manifest back: the split part through the split reader, the `balancing`
//! section into typed records, with the consistency checks that every consumer (sample,
//! verify, stats, the trainer) relies on.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{Balancing, MAX_NUM_SAMPLES};
use crate::sampler::Weighted;
use crate::split::{Split, SplitError};
use crate::weights::WeightMethod;

use super::FORMAT_VERSION;

/// A file that is not a usable manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error("{path}: not a manifest (no \"balancing\" section); run balance-split balance first")]
    NotAManifest { path: PathBuf },
    #[error("{path}: balancing: {message}")]
    Record { path: PathBuf, message: String },
}

/// The `balancing` section of a version-1 manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format_version: u64,
    pub tool: Tool,
    pub seed: u64,
    pub strategy: String,
    pub overridden: Vec<String>,
    pub warnings: Vec<String>,
    pub config: Option<Balancing>,
    pub source: Source,
    pub class_counts: ClassCounts,
    pub sampler: Option<SamplerRecord>,
    pub loss: Option<LossRecord>,
    /// The user's command-line overrides, `[dotted key, value as given]`, when there were
    /// any.
    #[serde(default)]
    pub overrides: Vec<(String, String)>,
    /// Synthetic augmentation, when `train` ends with synthetic entries.
    #[serde(default)]
    pub synthetic: Option<SyntheticRecord>,
    pub source_index: Vec<usize>,
}

/// The synthetic part of a manifest's `train`: the entries after the real ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticRecord {
    /// The effective `data.synthetic_augmentation` (its `split_file` is the selection file).
    pub config: Value,
    pub selection_sha256: String,
    /// How many entries the selection file's `train` has.
    pub selection_samples: u64,
    pub class_counts: SyntheticCounts,
    /// For each synthetic entry of `train`, its position in the selection file's `train`.
    pub selection_index: Vec<usize>,
}

/// Per class, by name: real entries, those removed, synthetic entries added.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticCounts {
    pub real: Map<String, Value>,
    pub removed: Map<String, Value>,
    pub synthetic: Map<String, Value>,
}

impl SyntheticRecord {
    /// The recorded section, read back as a config's section is read.
    pub fn augmentation(&self) -> Result<crate::config::synthetic::SyntheticAugmentation, String> {
        let yaml = serde_yaml_ng::to_value(&self.config).map_err(|e| e.to_string())?;
        match crate::config::synthetic::parse(Some(&yaml)) {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err("config.enabled: expected true".into()),
            Err((key, message)) => Err(format!("config.{key}: {message}")),
        }
    }
}

impl Record {
    /// How many of `train`'s entries are real (the rest, at the end, are synthetic).
    pub fn real_entries(&self) -> usize {
        self.source_index.len()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Where the manifest came from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub split_file: String,
    pub split_sha256: String,
    pub train_samples: u64,
}

/// Per-class counts, by class name in label order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCounts {
    pub before: Map<String, Value>,
    pub after: Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerRecord {
    pub class_weights: Vec<f64>,
    pub replacement: bool,
    pub num_samples: u64,
    pub expected_counts: Map<String, Value>,
}

impl SamplerRecord {
    /// The sampler's parameters for [`crate::sampler`].
    pub fn weighted(&self) -> Weighted {
        Weighted {
            class_weights: self.class_weights.clone(),
            replacement: self.replacement,
            num_samples: self.num_samples,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossRecord {
    pub class_weights: Vec<f64>,
    pub method: WeightMethod,
    pub normalize: bool,
}

/// A parsed manifest.
#[derive(Clone, Debug)]
pub struct Manifest<'a> {
    pub split: Split<'a>,
    pub record: Record,
}

impl<'a> Manifest<'a> {
    /// See [`Split::into_owned`].
    pub fn into_owned(self) -> Manifest<'static> {
        Manifest {
            split: self.split.into_owned(),
            record: self.record,
        }
    }

    /// Parses and checks a manifest; `path` is only used in messages.
    pub fn parse(text: &'a str, path: &Path) -> Result<Manifest<'a>, ManifestError> {
        let (split, raw) = Split::parse_with_balancing(text, path)?;
        let raw = raw.ok_or_else(|| ManifestError::NotAManifest {
            path: path.to_owned(),
        })?;
        Manifest::from_parts(split, raw, path)
    }

    /// A manifest from a split read with [`Split::parse_with_balancing`] and the raw text
    /// of its `balancing` section.
    pub fn from_parts(
        split: Split<'a>,
        raw: &str,
        path: &Path,
    ) -> Result<Manifest<'a>, ManifestError> {
        let bad = |message: String| ManifestError::Record {
            path: path.to_owned(),
            message,
        };
        // The version first: a newer manifest should say so, not list missing fields.
        #[derive(Deserialize)]
        struct Version {
            format_version: u64,
        }
        let version: Version = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        if version.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format_version is {}; this balance-split reads version {FORMAT_VERSION}",
                version.format_version
            )));
        }
        let record: Record = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        let synthetic = record
            .synthetic
            .as_ref()
            .map_or(0, |s| s.selection_index.len());
        if record.source_index.len().checked_add(synthetic) != Some(split.train.len()) {
            return Err(bad(match &record.synthetic {
                None => format!(
                    "source_index has {} entries but train has {}",
                    record.source_index.len(),
                    split.train.len()
                ),
                Some(_) => format!(
                    "source_index has {} entries and synthetic.selection_index {synthetic}, but train has {}",
                    record.source_index.len(),
                    split.train.len()
                ),
            }));
        }
        let k = split.classes.len();
        let weights = [
            ("sampler", record.sampler.as_ref().map(|s| &s.class_weights)),
            ("loss", record.loss.as_ref().map(|l| &l.class_weights)),
        ];
        for (name, w) in weights {
            if let Some(w) = w.filter(|w| w.len() != k) {
                return Err(bad(format!(
                    "{name}.class_weights has {} values but metadata.classes has {k} classes",
                    w.len()
                )));
            }
        }
        check_record(&record, &split).map_err(bad)?;
        Ok(Manifest { split, record })
    }
}

/// The recorded values every consumer computes with, validated as strictly as a config:
/// a hand-edited manifest with a negative weight or a target ratio of 1e30 is refused
/// with the field named, instead of sampling nonsense or hanging `verify`. Over 80 lines
/// on purpose: one check per recorded field, in the manifest's order, each independent.
fn check_record(r: &Record, split: &Split) -> Result<(), String> {
    const STRATEGIES: [&str; 4] = ["none", "weighted_sampler", "downsampling", "upsampling"];
    if !STRATEGIES.contains(&r.strategy.as_str()) {
        return Err(format!(
            "strategy: expected one of none, weighted_sampler, downsampling, upsampling, found {:?}",
            r.strategy
        ));
    }
    if let Some(b) = &r.config {
        b.validate()
            .map_err(|(key, message)| format!("config.{key}: {message}"))?;
    }
    match (&r.sampler, r.strategy == "weighted_sampler") {
        (None, true) => return Err("sampler: missing for strategy weighted_sampler".into()),
        (Some(_), false) => {
            return Err(format!(
                "sampler: present, but strategy is {}; only weighted_sampler has one",
                r.strategy
            ))
        }
        _ => {}
    }
    let k = split.classes.len();
    if let Some(s) = &r.sampler {
        let labels = split.train_labels();
        let counts = crate::plan::class_counts(&labels, k);
        crate::weights::check(&s.class_weights, Some(&counts))
            .map_err(|m| format!("sampler.class_weights{m}"))?;
        if !(1..=MAX_NUM_SAMPLES).contains(&s.num_samples) {
            return Err(format!(
                "sampler.num_samples: expected an integer from 1 to {MAX_NUM_SAMPLES}, found {}",
                s.num_samples
            ));
        }
        if !s.replacement && s.num_samples > split.train.len() as u64 {
            return Err(format!(
                "sampler.num_samples is {} but replacement is false and train has only {} entries",
                s.num_samples,
                split.train.len()
            ));
        }
        check_counts("sampler.expected_counts", &s.expected_counts, false)?;
    }
    if let Some(l) = &r.loss {
        crate::weights::check(&l.class_weights, None)
            .map_err(|m| format!("loss.class_weights{m}"))?;
    }
    check_counts("class_counts.before", &r.class_counts.before, true)?;
    check_counts("class_counts.after", &r.class_counts.after, true)?;
    if let Some(syn) = &r.synthetic {
        if r.strategy != "none" {
            return Err(format!(
                "synthetic: present, but strategy is {}; synthetic augmentation is never combined with a data strategy",
                r.strategy
            ));
        }
        syn.augmentation().map_err(|m| format!("synthetic.{m}"))?;
        check_counts("synthetic.class_counts.real", &syn.class_counts.real, true)?;
        check_counts(
            "synthetic.class_counts.removed",
            &syn.class_counts.removed,
            true,
        )?;
        check_counts(
            "synthetic.class_counts.synthetic",
            &syn.class_counts.synthetic,
            true,
        )?;
        if let Some((i, &s)) = syn
            .selection_index
            .iter()
            .enumerate()
            .find(|(_, &s)| s as u64 >= syn.selection_samples)
        {
            return Err(format!(
                "synthetic.selection_index[{i}] is {s} but synthetic.selection_samples is {}",
                syn.selection_samples
            ));
        }
    }
    if let Some((i, &s)) = r
        .source_index
        .iter()
        .enumerate()
        .find(|(_, &s)| s as u64 >= r.source.train_samples)
    {
        return Err(format!(
            "source_index[{i}] is {s} but source.train_samples is {}",
            r.source.train_samples
        ));
    }
    Ok(())
}

/// Per-class numbers: non-negative, finite, integers where `integers`.
fn check_counts(field: &str, m: &Map<String, Value>, integers: bool) -> Result<(), String> {
    for (class, v) in m {
        let ok = match v.as_f64() {
            Some(x) => x.is_finite() && x >= 0.0 && (!integers || v.is_u64()),
            None => false,
        };
        if !ok {
            let what = if integers {
                "a non-negative integer"
            } else {
                "a non-negative finite number"
            };
            return Err(format!("{field}.{class}: expected {what}, found {v}"));
        }
    }
    Ok(())
}
