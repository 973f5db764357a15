//! The version-1 manifest: writing it here, reading it back in `read` ([`Manifest`]).
//!
//! A manifest is the source split (a valid split file for the user's
//! `SplitFileDataset`) plus a `balancing` section with provenance.
//!
//! The layout is fixed so that the same inputs give the same bytes and diffs stay small:
//! two-space indentation, one `train`/`val`/`test` entry per line (as
//! `{"path": ..., "label": ..., <extra fields>}`), one `source_index` value per line so it
//! lines up with `train`, no timestamps, no absolute paths added. It is written by hand
//! rather than by serde_json's pretty printer because the pretty printer would spread
//! every entry over four lines.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::{Map, Value};

use crate::config::{Balancing, DataStrategy};
use crate::plan::{Plan, Selection};
use crate::split::{Entry, Split};

mod read;

pub use read::{
    ClassCounts, LossRecord, Manifest, ManifestError, Record, SamplerRecord, Source,
    SyntheticRecord, Tool,
};

/// The manifest format this crate writes.
pub const FORMAT_VERSION: u64 = 1;

/// Provenance that is not part of the plan itself.
pub struct Provenance<'a> {
    pub seed: u64,
    /// The effective `data.balancing` (defaults filled in); `None` if the config had none.
    pub config: Option<&'a Balancing>,
    /// The split file as the user named it (config or `--split`), not resolved.
    pub split_file: &'a str,
    pub split_sha256: &'a str,
    /// The user's command-line overrides, `(dotted key, value as given)`; recorded when
    /// there are any.
    pub overrides: &'a [(String, String)],
    /// The selection file of synthetic augmentation, when the plan has a synthetic part.
    pub synthetic: Option<SyntheticSource<'a>>,
}

/// The sample-selection file a synthetic part was drawn from.
#[derive(Clone, Copy)]
pub struct SyntheticSource<'a> {
    /// Its `train` entries, which the plan's `selection_index` points into.
    pub entries: &'a [Entry<'a>],
    pub sha256: &'a str,
}

/// The field each synthetic entry of `train` carries (`"synthetic": true`), so that a
/// person or the user's own tools can tell them apart; the file stays a split file their
/// `SplitFileDataset` reads.
pub const SYNTHETIC_MARK: &str = "synthetic";

/// A synthetic entry as the manifest's `train` holds it: the selection file's entry with
/// its fields, and the mark.
fn marked<'s>(e: &Entry<'_>) -> Entry<'s> {
    let mut extra = e.extra.as_deref().cloned().unwrap_or_default();
    extra.insert(SYNTHETIC_MARK.into(), Value::Bool(true));
    Entry {
        path: e.path.to_string().into(),
        label: e.label,
        extra: Some(Box::new(extra)),
    }
}

/// Writes the whole manifest to `w`.
pub fn write<'s, W: Write>(
    w: &mut W,
    split: &Split<'s>,
    plan: &Plan,
    prov: &Provenance,
) -> io::Result<()> {
    w.write_all(b"{\n  \"metadata\": ")?;
    write_pretty(w, &split.metadata, 1)?;
    w.write_all(b",\n  \"train\": ")?;
    let synthetic: Vec<Entry<'s>> = match (&plan.synthetic, &prov.synthetic) {
        (Some(p), Some(source)) => p
            .composition
            .selection_index
            .iter()
            .map(|&i| marked(&source.entries[i]))
            .collect(),
        _ => Vec::new(),
    };
    let synthetic = synthetic.iter().enumerate();
    match &plan.selection {
        Selection::All => write_entries(w, split.train.iter().enumerate().chain(synthetic))?,
        Selection::Copies(c) => write_entries(w, repeated(&split.train, c).chain(synthetic))?,
    }
    for (name, list) in split.lists().into_iter().skip(1) {
        write!(w, ",\n  \"{name}\": ")?;
        write_entries(w, list.iter().enumerate())?;
    }
    for (key, value) in &split.extra {
        w.write_all(b",\n  ")?;
        serde_json::to_writer(&mut *w, key)?;
        w.write_all(b": ")?;
        write_pretty(w, value, 1)?;
    }
    w.write_all(b",\n  \"balancing\": {\n")?;
    write_balancing(w, split, plan, prov)?;
    w.write_all(b"\n  }\n}\n")
}

/// The `balancing` object, key by key in the order DESIGN.md fixes. Over 80 lines on
/// purpose: it is the byte layout read top to bottom, and split into pieces the order of
/// the keys (which golden files pin) would be spread over several functions.
fn write_balancing<W: Write>(
    w: &mut W,
    split: &Split,
    plan: &Plan,
    prov: &Provenance,
) -> io::Result<()> {
    let by_name = |counts: &[u64]| -> Map<String, Value> {
        split
            .classes
            .iter()
            .zip(counts)
            .map(|(name, &n)| (name.clone(), Value::from(n)))
            .collect()
    };
    let overridden: Vec<&str> = plan
        .overridden
        .iter()
        .map(|s: &DataStrategy| s.name())
        .collect();
    let fields: [(&str, Value); 11] = [
        ("format_version", FORMAT_VERSION.into()),
        (
            "tool",
            serde_json::json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")}),
        ),
        ("seed", prov.seed.into()),
        ("strategy", plan.strategy.name().into()),
        ("overridden", overridden.into()),
        ("warnings", plan.warnings.clone().into()),
        ("config", to_value(&prov.config)),
        (
            "source",
            serde_json::json!({
                "split_file": prov.split_file,
                "split_sha256": prov.split_sha256,
                "train_samples": split.train.len(),
            }),
        ),
        (
            "class_counts",
            serde_json::json!({"before": by_name(&plan.counts_before), "after": by_name(&plan.counts_after)}),
        ),
        (
            "sampler",
            plan.sampler.as_ref().map_or(Value::Null, |s| {
                serde_json::json!({
                    "class_weights": s.class_weights,
                    "replacement": s.replacement,
                    "num_samples": s.num_samples,
                    "expected_counts": by_name_f64(&split.classes, &s.expected_counts),
                })
            }),
        ),
        (
            "loss",
            plan.loss.as_ref().map_or(Value::Null, |l| {
                serde_json::json!({
                    "class_weights": l.class_weights,
                    "method": l.method.name(),
                    "normalize": l.normalize,
                })
            }),
        ),
    ];
    let overrides = (!prov.overrides.is_empty()).then(|| {
        let pairs: Vec<[&str; 2]> = prov.overrides.iter().map(|(k, v)| [&**k, &**v]).collect();
        ("overrides", to_value(&pairs))
    });
    let synthetic = plan
        .synthetic
        .as_ref()
        .zip(prov.synthetic)
        .map(|(p, source)| {
            let c = &p.composition;
            (
                "synthetic",
                serde_json::json!({
                    "config": p.config.record(),
                    "selection_sha256": source.sha256,
                    "selection_samples": source.entries.len(),
                    "class_counts": {
                        "real": by_name(&c.real),
                        "removed": by_name(&c.removed),
                        "synthetic": by_name(&c.synthetic),
                    },
                    "selection_index": c.selection_index,
                }),
            )
        });
    for (key, value) in fields
        .iter()
        .chain(overrides.iter())
        .chain(synthetic.iter())
    {
        write!(w, "    \"{key}\": ")?;
        write_pretty(w, value, 2)?;
        w.write_all(b",\n")?;
    }
    w.write_all(b"    \"source_index\": ")?;
    match &plan.selection {
        Selection::All => write_index_list(w, split.train.iter().enumerate()),
        Selection::Copies(c) => write_index_list(w, repeated(c, c)),
    }
}

/// Each item of `items` as many times as `copies` says, in order, with its index.
fn repeated<'a, T>(items: &'a [T], copies: &'a [u32]) -> impl Iterator<Item = (usize, &'a T)> + 'a {
    items
        .iter()
        .zip(copies)
        .enumerate()
        .flat_map(|(i, (item, &n))| std::iter::repeat_n((i, item), n as usize))
}

fn by_name_f64(classes: &[String], values: &[f64]) -> Map<String, Value> {
    classes
        .iter()
        .zip(values)
        .map(|(n, &v)| (n.clone(), Value::from(v)))
        .collect()
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("config values are plain data and always serialise")
}

/// `[\n      0,\n      1\n    ]` at depth 2 (inside `balancing`), from (source index, _)
/// pairs.
fn write_index_list<W: Write, T>(
    w: &mut W,
    indices: impl Iterator<Item = (usize, T)>,
) -> io::Result<()> {
    let mut buf = itoa::Buffer::new();
    let mut first = true;
    for (i, _) in indices {
        w.write_all(if first { b"[\n      " } else { b",\n      " })?;
        first = false;
        w.write_all(buf.format(i).as_bytes())?;
    }
    w.write_all(if first { b"[]" } else { b"\n    ]" })
}

/// A list of entries at depth 1, one per line.
fn write_entries<'a, 'e: 'a, W: Write>(
    w: &mut W,
    entries: impl Iterator<Item = (usize, &'a Entry<'e>)>,
) -> io::Result<()> {
    let mut first = true;
    let mut num = itoa::Buffer::new();
    // Each line is assembled here and handed over in one write: a dozen small writes per
    // entry cost more than the formatting itself.
    let mut line = Vec::with_capacity(256);
    for (_, e) in entries {
        line.clear();
        line.extend_from_slice(if first {
            b"[\n    {\"path\": "
        } else {
            b",\n    {\"path\": "
        });
        first = false;
        write_str(&mut line, &e.path)?;
        line.extend_from_slice(b", \"label\": ");
        line.extend_from_slice(num.format(e.label).as_bytes());
        if let Some(extra) = &e.extra {
            for (k, v) in extra.iter() {
                line.extend_from_slice(b", ");
                write_str(&mut line, k)?;
                line.extend_from_slice(b": ");
                let mut ser = serde_json::Serializer::with_formatter(&mut line, PythonCompact);
                v.serialize(&mut ser)?;
            }
        }
        line.push(b'}');
        w.write_all(&line)?;
    }
    w.write_all(if first { b"[]" } else { b"\n  ]" })
}

/// A JSON string. Strings without characters that need escaping (nearly every path) are
/// copied as they are.
fn write_str(w: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // A fold rather than `any`: no early exit, so the compiler vectorises it.
    let plain = !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        w.push(b'"');
        w.extend_from_slice(s.as_bytes());
        w.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(w, s).map_err(io::Error::from)
    }
}

/// serde_json's pretty printer (two-space indent), re-indented to start at `depth`.
fn write_pretty<W: Write, T: Serialize + ?Sized>(
    w: &mut W,
    value: &T,
    depth: usize,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, PrettyFormatter::with_indent(b"  "));
    value.serialize(&mut ser)?;
    let pad = "  ".repeat(depth);
    // A raw newline only occurs between tokens (JSON strings escape theirs).
    for (i, line) in buf.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            w.write_all(b"\n")?;
            w.write_all(pad.as_bytes())?;
        }
        w.write_all(line)?;
    }
    Ok(())
}

/// One-line JSON with Python's default separators (`", "` and `": "`), for the extra
/// fields of an entry, so an entry line reads like `json.dumps` output.
struct PythonCompact;

impl Formatter for PythonCompact {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests;
