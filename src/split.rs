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
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

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
    #[error("{path}: {list}[{index}]: label {label} is not a class in metadata.classes (expected 0..{num_classes})")]
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
    pub fn parse(text: &'a str, path: &Path) -> Result<Split<'a>, SplitError> {
        let json_err = |e: serde_json::Error| SplitError::Json {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de.deserialize_map(TopVisitor).map_err(json_err)?;
        de.end().map_err(json_err)?;
        raw.validate(path)
    }

    /// Train labels, in source order.
    pub fn train_labels(&self) -> Vec<u32> {
        self.train.iter().map(|e| e.label).collect()
    }
}

/// The split as read, before the cross-field checks.
struct RawSplit<'a> {
    metadata: Option<Value>,
    train: Option<Vec<RawEntry<'a>>>,
    val: Option<Vec<RawEntry<'a>>>,
    test: Option<Vec<RawEntry<'a>>>,
    extra: Vec<(String, Value)>,
}

/// An entry whose label has not yet been checked against `metadata.classes` (which may come
/// later in the file).
struct RawEntry<'a> {
    path: Cow<'a, str>,
    label: i64,
    extra: Option<Box<Map<String, Value>>>,
}

impl<'a> RawSplit<'a> {
    fn validate(self, path: &Path) -> Result<Split<'a>, SplitError> {
        let invalid = |key: &str, message: String| SplitError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.extra.iter().any(|(k, _)| k == "balancing") {
            return Err(invalid(
                "balancing",
                "this is already a balanced manifest; balance its source split instead".into(),
            ));
        }
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
        if train.is_empty() {
            return Err(invalid(
                "train",
                "is empty; there is nothing to balance".into(),
            ));
        }
        let k = classes.len();
        let check = |list: &'static str, entries: Vec<RawEntry<'a>>| {
            entries
                .into_iter()
                .enumerate()
                .map(|(index, e)| {
                    if e.label < 0 || e.label as u64 >= k as u64 {
                        return Err(SplitError::UnknownLabel {
                            path: path.to_owned(),
                            list,
                            index,
                            label: e.label,
                            num_classes: k,
                        });
                    }
                    Ok(Entry {
                        path: e.path,
                        label: e.label as u32,
                        extra: e.extra,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
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
                "class {name:?} has label {label}; expected labels 0..{} (one per class)",
                k - 1
            )
        })?;
        if let Some(prev) = &names[l as usize] {
            return Err(format!(
                "classes {prev:?} and {name:?} share label {l}; expected labels 0..{} (one per class)",
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

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = RawSplit<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a split object with \"metadata\", \"train\" and \"val\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawSplit {
            metadata: None,
            train: None,
            val: None,
            test: None,
            extra: Vec::new(),
        };
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "metadata" => raw.metadata = Some(map.next_value()?),
                "train" => raw.train = Some(map.next_value_seed(ListSeed("train"))?),
                "val" => raw.val = Some(map.next_value_seed(ListSeed("val"))?),
                "test" => raw.test = Some(map.next_value_seed(ListSeed("test"))?),
                _ => {
                    let value = map.next_value()?;
                    raw.extra.retain(|(k, _)| k != &key);
                    raw.extra.push((key.into_owned(), value));
                }
            }
        }
        Ok(raw)
    }
}

/// A list of entries named `train`, `val` or `test`.
struct ListSeed(&'static str);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<RawEntry<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<RawEntry<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "\"{}\" to be a list of {{\"path\", \"label\"}} entries",
            self.0
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(e) = seq.next_element_seed(EntrySeed {
            list: self.0,
            index: out.len(),
        })? {
            out.push(e);
        }
        Ok(out)
    }
}

struct EntrySeed {
    list: &'static str,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = RawEntry<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = RawEntry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}[{}] to be an object {{\"path\": string, \"label\": integer}}",
            self.list, self.index
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let at = || format!("{}[{}]", self.list, self.index);
        let mut path = None;
        let mut label = None;
        let mut extra: Option<Box<Map<String, Value>>> = None;
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "path" => match map.next_value()? {
                    Any::Str(s) => path = Some(s),
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "{}: \"path\" must be a string, found {other}",
                            at()
                        )))
                    }
                },
                "label" => match map.next_value()? {
                    Any::Int(l) => label = Some(l),
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "{}: \"label\" must be an integer, found {other}",
                            at()
                        )))
                    }
                },
                _ => {
                    let value: Value = map.next_value()?;
                    extra
                        .get_or_insert_with(Default::default)
                        .insert(key.into_owned(), value);
                }
            }
        }
        let path =
            path.ok_or_else(|| de::Error::custom(format_args!("{}: missing \"path\"", at())))?;
        let label =
            label.ok_or_else(|| de::Error::custom(format_args!("{}: missing \"label\"", at())))?;
        Ok(RawEntry { path, label, extra })
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, kept only as far as the entry checks need: strings and integers in
/// full, everything else as what it was, for the message.
enum Any<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    Other(String),
}

impl fmt::Display for Any<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Any::Str(s) => write!(f, "string {s:?}"),
            Any::Int(i) => write!(f, "integer {i}"),
            Any::Other(what) => f.write_str(what),
        }
    }
}

impl<'de> Deserialize<'de> for Any<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Any<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Any::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Any::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Any::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Any::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or_else(|_| Any::Other(format!("integer {v}")), Any::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Any::Other(format!("number {v:?}")))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Any::Other(format!("boolean {v}")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Any::Other("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Any::Other("a list".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Any::Other("an object".into()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests;
