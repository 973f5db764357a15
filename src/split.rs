//! The user's split file: `metadata.classes` (name -> label), `train`, `val` and an
//! optional `test`, each a list of `{"path", "label"}` entries.
//!
//! Parsing is hand-driven through serde visitors instead of a derived struct for two
//! reasons: paths are borrowed from the input text (a 10-million-entry split would
//! otherwise allocate 10 million strings), and a malformed entry is reported with its list
//! and index (`train[12]: "label" must be an integer, found "1"`), which a derived
//! deserializer cannot say. Unknown fields, on entries and at the top level, are kept and
//! written back into the manifest.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

mod fast;
mod serde_path;

/// A split file that cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("{path}: cannot read split file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Invalid JSON, or an entry of the wrong shape; the message carries line and column.
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {list}[{index}]: label {label} is not a class in metadata.classes (expected an integer from 0 to {})", num_classes.saturating_sub(1))]
    UnknownLabel {
        path: PathBuf,
        list: &'static str,
        index: usize,
        label: i64,
        num_classes: usize,
    },
}

/// One `{"path", "label"}` entry. Other fields are kept in `extra`, in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<'a> {
    pub path: Cow<'a, str>,
    pub label: u32,
    /// Boxed so the common case (no extra fields) costs one pointer per entry.
    pub extra: Option<Box<Map<String, Value>>>,
}

/// A parsed and validated split.
#[derive(Clone, Debug, PartialEq)]
pub struct Split<'a> {
    /// The whole `metadata` object, copied unchanged into manifests.
    pub metadata: Map<String, Value>,
    /// Class names indexed by label (`metadata.classes` inverted).
    pub classes: Vec<String>,
    pub train: Vec<Entry<'a>>,
    pub val: Option<Vec<Entry<'a>>>,
    pub test: Option<Vec<Entry<'a>>>,
    /// Other top-level keys, in source order.
    pub extra: Vec<(String, Value)>,
}

impl<'a> Split<'a> {
    /// Parses and validates split JSON; `path` is only used in messages.
    ///
    /// A fast reader (`split/fast.rs`) takes the common shape; anything it does not fully
    /// understand, and every error, goes through the serde reader (`split/serde_path.rs`), which
    /// is also what words the messages.
    pub fn parse(text: &'a str, path: &Path) -> Result<Split<'a>, SplitError> {
        match Split::parse_with_balancing(text, path)? {
            (split, None) => Ok(split),
            (_, Some(_)) => Err(SplitError::Invalid {
                path: path.to_owned(),
                key: "balancing".into(),
                message: "this is already a balanced manifest; balance its source split instead"
                    .into(),
            }),
        }
    }

    /// Like [`Split::parse`], but a top-level `balancing` section (a manifest's) is
    /// allowed and returned as its raw JSON text.
    pub fn parse_with_balancing(
        text: &'a str,
        path: &Path,
    ) -> Result<(Split<'a>, Option<&'a str>), SplitError> {
        let json_err = |e: serde_json::Error| SplitError::Json {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let raw = match fast::read(text) {
            Some(raw) => raw,
            None => {
                let mut de = serde_json::Deserializer::from_str(text);
                let raw =
                    serde::Deserializer::deserialize_map(&mut de, serde_path::TopVisitor { text })
                        .map_err(json_err)?;
                de.end().map_err(json_err)?;
                raw
            }
        };
        let balancing = raw.balancing;
        Ok((raw.validate(path)?, balancing))
    }

    /// The `train` entries of a sample-selection file (the user's `accepted_samples.json`,
    /// read by their `SplitFileDataset` as a split): a split file whose `metadata.classes`
    /// names only the classes it holds (`{"abnormal": 1}`), so only the entries are
    /// checked, each label against the `num_classes` of the real split it augments.
    pub fn parse_selection(
        text: &'a str,
        path: &Path,
        num_classes: usize,
    ) -> Result<Vec<Entry<'a>>, SplitError> {
        let raw = match fast::read(text) {
            Some(raw) => raw,
            None => {
                let json_err = |e: serde_json::Error| SplitError::Json {
                    path: path.to_owned(),
                    message: e.to_string(),
                };
                let mut de = serde_json::Deserializer::from_str(text);
                let raw =
                    serde::Deserializer::deserialize_map(&mut de, serde_path::TopVisitor { text })
                        .map_err(json_err)?;
                de.end().map_err(json_err)?;
                raw
            }
        };
        let invalid = |key: String, message: String| SplitError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let train = raw.train.ok_or_else(|| {
            invalid(
                "train".into(),
                "missing; a sample-selection file lists its images under \"train\"".into(),
            )
        })?;
        if train.entries.is_empty() {
            return Err(invalid(
                "train".into(),
                "is empty; the selection file has no synthetic images".into(),
            ));
        }
        let bad = train
            .entries
            .iter()
            .position(|e| e.label as usize >= num_classes)
            .map(|i| (i, i64::from(train.entries[i].label)));
        let bad = match (bad, train.first_out_of_range) {
            (Some((i, _)), Some((j, l))) if j <= i => Some((j, l)),
            (None, Some(o)) => Some(o),
            (b, _) => b,
        };
        if let Some((i, label)) = bad {
            return Err(invalid(
                format!("train[{i}].label"),
                format!(
                    "{label} is not a class of the real split (expected an integer from 0 to {})",
                    num_classes.saturating_sub(1)
                ),
            ));
        }
        Ok(train.entries)
    }

    /// For the fuzz targets and their proptest twins: the fast reader, where it takes
    /// `text`, must read exactly what the serde reader reads. `Err` describes a
    /// disagreement (a bug); a text both refuse, or only the fast one leaves, is fine.
    #[doc(hidden)]
    pub fn readers_agree(text: &str) -> Result<(), String> {
        let Some(fast) = fast::read(text) else {
            return Ok(());
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let slow = serde::Deserializer::deserialize_map(&mut de, serde_path::TopVisitor { text })
            .and_then(|raw| de.end().map(|()| raw));
        match slow {
            Ok(slow) if slow == fast => Ok(()),
            Ok(slow) => Err(format!("fast read {fast:?}, serde read {slow:?}")),
            Err(e) => Err(format!("fast read {fast:?}, serde refused: {e}")),
        }
    }

    /// The lists present, in this order: `train`, then `val` and `test` when the file has
    /// them.
    pub fn lists(&self) -> Vec<(&'static str, &[Entry<'a>])> {
        [
            ("train", Some(&self.train)),
            ("val", self.val.as_ref()),
            ("test", self.test.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, list)| list.map(|l| (name, l.as_slice())))
        .collect()
    }

    /// Each distinct image path once, in list order, with the first entry that names it
    /// (list, index): what image jobs decode, and how they report a bad file.
    pub fn distinct_paths(&self) -> Vec<(&str, &'static str, usize)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (name, list) in self.lists() {
            for (i, e) in list.iter().enumerate() {
                if seen.insert(&*e.path) {
                    out.push((&*e.path, name, i));
                }
            }
        }
        out
    }

    /// Train labels, in source order.
    pub fn train_labels(&self) -> Vec<u32> {
        self.train.iter().map(|e| e.label).collect()
    }

    /// The split with its paths copied out of the text it was parsed from, for a caller
    /// (the Python package) that keeps it longer than the text.
    pub fn into_owned(self) -> Split<'static> {
        let owned = |list: Vec<Entry<'a>>| -> Vec<Entry<'static>> {
            list.into_iter()
                .map(|e| Entry {
                    path: Cow::Owned(e.path.into_owned()),
                    label: e.label,
                    extra: e.extra,
                })
                .collect()
        };
        Split {
            metadata: self.metadata,
            classes: self.classes,
            train: owned(self.train),
            val: self.val.map(owned),
            test: self.test.map(owned),
            extra: self.extra,
        }
    }
}

/// The split as read, before the cross-field checks.
#[derive(Debug, Default, PartialEq)]
struct RawSplit<'a> {
    metadata: Option<Value>,
    train: Option<RawList<'a>>,
    val: Option<RawList<'a>>,
    test: Option<RawList<'a>>,
    /// A manifest's `balancing` section, as written.
    balancing: Option<&'a str>,
    extra: Vec<(String, Value)>,
}

/// Entries whose labels have not yet been checked against `metadata.classes` (which may
/// come later in the file). Checking afterwards, in place, avoids a second copy of a list
/// that can hold tens of millions of entries.
#[derive(Debug, PartialEq)]
struct RawList<'a> {
    entries: Vec<Entry<'a>>,
    /// The first label that does not even fit a `u32` (negative or huge), stored in
    /// `entries` as `u32::MAX`: (index, label).
    first_out_of_range: Option<(usize, i64)>,
}

impl<'a> RawSplit<'a> {
    fn validate(self, path: &Path) -> Result<Split<'a>, SplitError> {
        let invalid = |key: &str, message: String| SplitError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        let metadata = match self.metadata {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(invalid(
                    "metadata",
                    format!("expected an object, found {}", describe_value(&other)),
                ))
            }
            None => {
                return Err(invalid(
                    "metadata",
                    "missing (expected an object with \"classes\")".into(),
                ))
            }
        };
        let classes = class_names(&metadata).map_err(|m| invalid("metadata.classes", m))?;
        let train = self.train.ok_or_else(|| {
            invalid(
                "train",
                "missing (expected a list of {\"path\", \"label\"} entries)".into(),
            )
        })?;
        if train.entries.is_empty() {
            return Err(invalid(
                "train",
                "is empty; there is nothing to balance".into(),
            ));
        }
        let k = classes.len();
        let check = |list: &'static str, raw: RawList<'a>| -> Result<Vec<Entry<'a>>, SplitError> {
            let too_big = raw.entries.iter().position(|e| e.label as usize >= k);
            let bad = match (too_big, raw.first_out_of_range) {
                (Some(i), Some((j, l))) if j <= i => Some((j, l)),
                (Some(i), _) => Some((i, i64::from(raw.entries[i].label))),
                (None, other) => other,
            };
            match bad {
                Some((index, label)) => Err(SplitError::UnknownLabel {
                    path: path.to_owned(),
                    list,
                    index,
                    label,
                    num_classes: k,
                }),
                None => Ok(raw.entries),
            }
        };
        Ok(Split {
            train: check("train", train)?,
            val: self.val.map(|v| check("val", v)).transpose()?,
            test: self.test.map(|v| check("test", v)).transpose()?,
            metadata,
            classes,
            extra: self.extra,
        })
    }
}

/// Inverts `metadata.classes`, requiring the labels to be exactly 0..K-1.
fn class_names(metadata: &Map<String, Value>) -> Result<Vec<String>, String> {
    let classes = match metadata.get("classes") {
        Some(Value::Object(c)) => c,
        Some(other) => {
            return Err(format!(
                "expected an object mapping class name to label, found {}",
                describe_value(other)
            ))
        }
        None => return Err("missing (expected an object mapping class name to label)".into()),
    };
    if classes.is_empty() {
        return Err("is empty; expected at least one class".into());
    }
    let k = classes.len();
    let mut names: Vec<Option<String>> = vec![None; k];
    for (name, label) in classes {
        let l = label.as_u64().filter(|&l| l < k as u64).ok_or_else(|| {
            format!(
                "class {name:?} has label {label}; expected labels 0 to {}, one per class",
                k - 1
            )
        })?;
        if let Some(prev) = &names[l as usize] {
            return Err(format!(
                "classes {prev:?} and {name:?} share label {l}; expected labels 0 to {}, one per class",
                k - 1
            ));
        }
        names[l as usize] = Some(name.clone());
    }
    Ok(names
        .into_iter()
        .map(|n| n.expect("labels 0..K-1 are all taken"))
        .collect())
}

/// "a string \"x\"", "an integer 3", ... for messages.
fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests;
