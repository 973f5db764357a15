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
    pub source_index: Vec<usize>,
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
        if record.source_index.len() != split.train.len() {
            return Err(bad(format!(
                "source_index has {} entries but train has {}",
                record.source_index.len(),
                split.train.len()
            )));
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
/// with the field named, instead of sampling nonsense or hanging `verify`.
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
