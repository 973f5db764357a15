//! The `verify` job: recompute a manifest from what it records (source split, effective
//! config, seed) and compare, byte for byte; on a difference, name the first one.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::balance::UnreadableSelection;
use crate::config::{Config, ConfigError, SeedSetting};
use crate::input;
use crate::manifest::{self, Manifest, ManifestError, Provenance, SyntheticSource};
use crate::plan::{self, PlanError, PlanInput, SyntheticInput};
use crate::split::{Entry, Split, SplitError};

/// Why a manifest cannot be checked (a difference is a [`Report`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Selection(#[from] UnreadableSelection),
    /// The recorded split and config no longer plan (the split was edited).
    #[error("{split}: {source}")]
    Plan {
        split: PathBuf,
        #[source]
        source: PlanError,
    },
}

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub manifest: PathBuf,
    /// Also compare this config's effective `data.balancing` and seed with the recorded.
    pub config: Option<PathBuf>,
    /// The source split, instead of the recorded `source.split_file`.
    pub split: Option<PathBuf>,
}

/// One difference: where, what the recomputation (or the config) says, what was found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub field: String,
    pub expected: String,
    pub found: String,
}

/// The verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub manifest: PathBuf,
    pub source: PathBuf,
    pub identical: bool,
    /// In order of importance: the source file, the config, then the first difference in
    /// the manifest itself.
    pub differences: Vec<Difference>,
}

/// Runs the check.
pub fn run(req: &Request) -> Result<Report, VerifyError> {
    let bytes = input::read(&req.manifest)?;
    let text = input::text(&bytes, &req.manifest)?;
    let m = Manifest::parse(text, &req.manifest)?;
    let rec = &m.record;
    let source = req
        .split
        .clone()
        .unwrap_or_else(|| PathBuf::from(&rec.source.split_file));
    let src_bytes = input::read(&source)?;
    let sha = input::sha256_hex(&src_bytes);
    let mut differences = Vec::new();
    if sha != rec.source.split_sha256 {
        differences.push(changed(
            "balancing.source.split_sha256",
            &rec.source.split_sha256,
            &sha,
            &source,
        ));
    }
    if let Some(config_path) = &req.config {
        differences.extend(config_differences(config_path, rec)?);
    }
    let split = Split::parse(input::text(&src_bytes, &source)?, &source)?;
    let synthetic = rec.synthetic.as_ref().map(|s| {
        s.augmentation()
            .expect("checked when the manifest was read")
    });
    let selection_path = synthetic.as_ref().map(|s| PathBuf::from(&s.split_file));
    let selection_bytes = match &selection_path {
        Some(p) => Some(crate::balance::read_selection(&req.manifest, p)?),
        None => None,
    };
    let selection = match (&selection_path, &selection_bytes) {
        (Some(p), Some(b)) => Some(crate::balance::parse_selection(p, b, split.classes.len())?),
        _ => None,
    };
    if let (Some((_, sha)), Some(s)) = (&selection, &rec.synthetic) {
        if *sha != s.selection_sha256 {
            differences.push(changed(
                "balancing.synthetic.selection_sha256",
                &s.selection_sha256,
                sha,
                selection_path.as_deref().unwrap_or(Path::new("")),
            ));
        }
    }
    let expected = recompute(
        rec,
        &split,
        &source,
        selection.as_ref().map(|(e, _)| e.as_slice()),
    )?;
    if expected.as_slice() != &bytes[..] {
        differences.push(manifest_difference(&expected, &bytes));
    }
    Ok(Report {
        manifest: req.manifest.clone(),
        source,
        identical: differences.is_empty(),
        differences,
    })
}

/// The manifest's bytes recomputed from what it records, the source split and the
/// selection file's entries.
fn recompute(
    rec: &manifest::Record,
    split: &Split,
    source: &Path,
    selection: Option<&[Entry]>,
) -> Result<Vec<u8>, VerifyError> {
    let synthetic = rec.synthetic.as_ref().map(|s| {
        s.augmentation()
            .expect("checked when the manifest was read")
    });
    let selection_labels: Vec<u32> = selection
        .map(|entries| entries.iter().map(|e| e.label).collect())
        .unwrap_or_default();
    let labels = split.train_labels();
    let plan = plan::plan(&PlanInput {
        labels: &labels,
        classes: &split.classes,
        balancing: rec.config.as_ref(),
        seed: rec.seed,
        num_classes: None,
        synthetic: synthetic.as_ref().map(|c| SyntheticInput {
            config: c,
            labels: &selection_labels,
        }),
    })
    .map_err(|source_err| VerifyError::Plan {
        split: source.to_owned(),
        source: source_err,
    })?;
    let prov = Provenance {
        seed: rec.seed,
        config: rec.config.as_ref(),
        split_file: &rec.source.split_file,
        split_sha256: &rec.source.split_sha256,
        overrides: &rec.overrides,
        synthetic: selection.map(|entries| SyntheticSource {
            entries,
            sha256: rec
                .synthetic
                .as_ref()
                .map_or("", |s| s.selection_sha256.as_str()),
        }),
    };
    let mut expected = Vec::new();
    manifest::write(&mut expected, split, &plan, &prov).expect("writing to memory cannot fail");
    Ok(expected)
}

/// A file whose SHA-256 is not the recorded one.
fn changed(field: &str, expected: &str, found: &str, path: &Path) -> Difference {
    Difference {
        field: field.into(),
        expected: expected.into(),
        found: format!(
            "{found} ({} changed since the manifest was written)",
            path.display()
        ),
    }
}

/// Where `config_path`'s seed, `data.balancing` and `data.synthetic_augmentation` differ
/// from what the manifest records.
fn config_differences(
    config_path: &Path,
    rec: &manifest::Record,
) -> Result<Vec<Difference>, VerifyError> {
    let mut differences = Vec::new();
    let config = Config::load(config_path)?;
    if let SeedSetting::Fixed(seed) = config.seed {
        if seed != rec.seed {
            differences.push(Difference {
                field: format!("{}: compute.seed", config_path.display()),
                expected: rec.seed.to_string(),
                found: seed.to_string(),
            });
        }
    }
    let sections = [
        (
            "data.balancing",
            serde_json::to_value(&rec.config).expect("plain data"),
            serde_json::to_value(&config.balancing).expect("plain data"),
        ),
        (
            "data.synthetic_augmentation",
            rec.synthetic
                .as_ref()
                .map_or(Value::Null, |s| s.config.clone()),
            config
                .synthetic
                .as_ref()
                .map_or(Value::Null, |s| s.record()),
        ),
    ];
    for (name, recorded, current) in &sections {
        if let Some(d) = first_difference(recorded, current, name) {
            differences.push(Difference {
                field: format!("{}: {}", config_path.display(), d.field),
                ..d
            });
        }
    }
    Ok(differences)
}

/// The first difference between the recomputed and the found manifest: by JSON value
/// where they differ in content, else by line (same content, different layout).
fn manifest_difference(expected: &[u8], found: &[u8]) -> Difference {
    let parsed = (
        serde_json::from_slice::<Value>(expected),
        serde_json::from_slice::<Value>(found),
    );
    if let (Ok(e), Ok(f)) = &parsed {
        if let Some(d) = first_difference(e, f, "") {
            return d;
        }
    }
    let line = expected
        .split(|&b| b == b'\n')
        .zip(found.split(|&b| b == b'\n'))
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| {
            expected
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                .min(found.iter().filter(|&&b| b == b'\n').count())
        });
    let nth = |bytes: &[u8]| {
        bytes.split(|&b| b == b'\n').nth(line).map_or_else(
            || "end of file".to_string(),
            |l| String::from_utf8_lossy(l).into_owned(),
        )
    };
    Difference {
        field: format!("line {}", line + 1),
        expected: nth(expected),
        found: nth(found),
    }
}

/// Walks two JSON values in step and returns the first place they differ, as a path like
/// `train[12].label`.
pub fn first_difference(expected: &Value, found: &Value, path: &str) -> Option<Difference> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (expected, found) {
        (Value::Object(e), Value::Object(f)) => {
            for (k, ev) in e {
                match f.get(k) {
                    Some(fv) => {
                        if let Some(d) = first_difference(ev, fv, &join(k)) {
                            return Some(d);
                        }
                    }
                    None => {
                        return Some(Difference {
                            field: join(k),
                            expected: show(ev),
                            found: "missing".into(),
                        })
                    }
                }
            }
            f.iter()
                .find(|(k, _)| !e.contains_key(*k))
                .map(|(k, fv)| Difference {
                    field: join(k),
                    expected: "absent".into(),
                    found: show(fv),
                })
        }
        (Value::Array(e), Value::Array(f)) => {
            for (i, (ev, fv)) in e.iter().zip(f).enumerate() {
                if let Some(d) = first_difference(ev, fv, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (e.len() != f.len()).then(|| Difference {
                field: format!("{path} (length)"),
                expected: e.len().to_string(),
                found: f.len().to_string(),
            })
        }
        _ => (expected != found).then(|| Difference {
            field: path.to_string(),
            expected: show(expected),
            found: show(found),
        }),
    }
}

/// A value for a message: compact JSON, cut to a readable length.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(117).collect::<String>())
    } else {
        s
    }
}
