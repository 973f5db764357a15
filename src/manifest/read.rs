//! Reading a manifest back: the split part through the split reader, the `balancing`
//! section into typed records, with the consistency checks that every consumer (sample,
//! verify, stats, the trainer) relies on.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Balancing;
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
        Ok(Manifest { split, record })
    }
}
