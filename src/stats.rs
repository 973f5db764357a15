//! Class statistics of a split or a manifest: counts, shares and imbalance per list, and
//! for a manifest what balancing did (before/after, one weighted epoch, loss weights).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::input;
use crate::manifest::{Manifest, ManifestError};
use crate::plan::class_counts;
use crate::split::{Entry, Split, SplitError};

/// Everything `stats` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub file: PathBuf,
    pub classes: Vec<String>,
    /// `train`, `val` and (when present) `test`.
    pub lists: Vec<ListStats>,
    /// Only for a manifest.
    pub balancing: Option<BalancingStats>,
}

/// One list (train, val or test).
#[derive(Clone, Debug, Serialize)]
pub struct ListStats {
    pub name: String,
    pub total: u64,
    /// Per class in label order.
    pub counts: Vec<u64>,
    pub shares: Vec<f64>,
    /// Largest class count over smallest; `None` when a class is empty (the ratio is
    /// infinite) or the list is.
    pub imbalance_ratio: Option<f64>,
}

/// What a manifest's balancing did, per class in label order.
#[derive(Clone, Debug, Serialize)]
pub struct BalancingStats {
    pub strategy: String,
    pub seed: u64,
    pub before: Vec<u64>,
    pub after: Vec<u64>,
    /// Expected draws per class in one epoch of the weighted sampler.
    pub expected_epoch: Option<Vec<f64>>,
    pub loss_weights: Option<Vec<f64>>,
    /// Synthetic augmentation: what `train` holds beside the real entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticStats>,
}

/// Per class in label order: real entries of the source, those removed (the replaced
/// class), synthetic entries added.
#[derive(Clone, Debug, Serialize)]
pub struct SyntheticStats {
    pub selection_file: String,
    pub mode: String,
    pub real: Vec<u64>,
    pub removed: Vec<u64>,
    pub synthetic: Vec<u64>,
}

/// Why a file's statistics cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Reads a split or a manifest and computes its statistics.
pub fn run(path: &Path) -> Result<Stats, StatsError> {
    let bytes = input::read(path)?;
    let text = input::text(&bytes, path)?;
    let (split, raw) = Split::parse_with_balancing(text, path)?;
    let Some(raw) = raw else {
        return Ok(compute(path, &split, None));
    };
    let m = Manifest::from_parts(split, raw, path)?;
    Ok(of_manifest(&m, path))
}

/// The statistics of a parsed manifest: its lists, and before/after per class.
pub fn of_manifest(m: &Manifest, path: &Path) -> Stats {
    let classes = &m.split.classes;
    let by_label = |map: &serde_json::Map<String, serde_json::Value>| -> Vec<f64> {
        classes
            .iter()
            .map(|c| map.get(c).and_then(|v| v.as_f64()).unwrap_or(0.0))
            .collect()
    };
    let whole = |map| by_label(map).into_iter().map(|x| x as u64).collect();
    let r = &m.record;
    let balancing = BalancingStats {
        strategy: r.strategy.clone(),
        seed: r.seed,
        before: whole(&r.class_counts.before),
        after: whole(&r.class_counts.after),
        expected_epoch: r.sampler.as_ref().map(|s| by_label(&s.expected_counts)),
        loss_weights: r.loss.as_ref().map(|l| l.class_weights.clone()),
        synthetic: r.synthetic.as_ref().map(|syn| {
            let c = &syn.class_counts;
            let text = |key: &str| {
                syn.config
                    .get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            SyntheticStats {
                selection_file: text("split_file"),
                mode: text("mode"),
                real: whole(&c.real),
                removed: whole(&c.removed),
                synthetic: whole(&c.synthetic),
            }
        }),
    };
    compute(path, &m.split, Some(balancing))
}

/// The pure part: statistics of a parsed split.
pub fn compute(path: &Path, split: &Split, balancing: Option<BalancingStats>) -> Stats {
    let k = split.classes.len();
    let list = |name: &str, entries: &[Entry]| {
        let labels: Vec<u32> = entries.iter().map(|e| e.label).collect();
        let counts = class_counts(&labels, k);
        let total: u64 = counts.iter().sum();
        let max = counts.iter().copied().max().unwrap_or(0);
        let min = counts.iter().copied().min().unwrap_or(0);
        ListStats {
            name: name.to_string(),
            total,
            shares: counts
                .iter()
                .map(|&n| {
                    if total == 0 {
                        0.0
                    } else {
                        n as f64 / total as f64
                    }
                })
                .collect(),
            counts,
            imbalance_ratio: (min > 0).then(|| max as f64 / min as f64),
        }
    };
    let lists = split
        .lists()
        .into_iter()
        .map(|(name, l)| list(name, l))
        .collect();
    Stats {
        file: path.to_owned(),
        classes: split.classes.clone(),
        lists,
        balancing,
    }
}

/// The human-readable report.
pub fn render(s: &Stats) -> String {
    let mut out = String::new();
    for l in &s.lists {
        let _ = writeln!(out, "{} ({} entries)", l.name, l.total);
        let mut rows = vec![[
            "class".to_string(),
            "label".into(),
            "count".into(),
            "share".into(),
        ]];
        for (label, name) in s.classes.iter().enumerate() {
            rows.push([
                crate::text::escape(name).into_owned(),
                label.to_string(),
                l.counts[label].to_string(),
                format!("{:.1}%", 100.0 * l.shares[label]),
            ]);
        }
        table(&mut out, &rows);
        let _ = writeln!(
            out,
            "imbalance ratio {} (majority/minority)\n",
            ratio(l.imbalance_ratio)
        );
    }
    if let Some(b) = &s.balancing {
        let _ = writeln!(out, "balancing: {} (seed {})", b.strategy, b.seed);
        if let Some(syn) = &b.synthetic {
            let _ = writeln!(
                out,
                "synthetic augmentation: {} from {}",
                syn.mode,
                crate::text::escape(&syn.selection_file)
            );
        }
        let mut head = vec!["class".to_string(), "before".into()];
        if b.synthetic.is_some() {
            head.extend(["real removed".into(), "synthetic".into()]);
        }
        head.push("after".into());
        if b.expected_epoch.is_some() {
            head.push("epoch (expected)".into());
        }
        if b.loss_weights.is_some() {
            head.push("loss weight".into());
        }
        let mut rows = vec![head];
        for (label, name) in s.classes.iter().enumerate() {
            let mut row = vec![
                crate::text::escape(name).into_owned(),
                b.before[label].to_string(),
            ];
            if let Some(syn) = &b.synthetic {
                row.push(syn.removed[label].to_string());
                row.push(syn.synthetic[label].to_string());
            }
            row.push(b.after[label].to_string());
            if let Some(e) = &b.expected_epoch {
                row.push(format!("{:.1}", e[label]));
            }
            if let Some(w) = &b.loss_weights {
                row.push(format!("{:.4}", w[label]));
            }
            rows.push(row);
        }
        table(&mut out, &rows);
        let ratio_of = |c: &[u64]| {
            let (max, min) = (
                c.iter().max().copied().unwrap_or(0),
                c.iter().min().copied().unwrap_or(0),
            );
            (min > 0).then(|| max as f64 / min as f64)
        };
        let _ = writeln!(
            out,
            "imbalance ratio {} before, {} after",
            ratio(ratio_of(&b.before)),
            ratio(ratio_of(&b.after))
        );
    }
    out
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(
        || "infinite (a class is empty)".into(),
        |r| format!("{r:.2}"),
    )
}

/// Left-aligned first column, right-aligned numbers.
fn table<R: AsRef<[String]>>(out: &mut String, rows: &[R]) {
    let cols = rows[0].as_ref().len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.as_ref()[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.as_ref().iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}
