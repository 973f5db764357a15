//! What `balance-split split` prints: per split file where it went and a table of the
//! classes' counts and shares; with groups, each share beside the one requested.

use std::fmt::Write;

use serde_json::{json, Value};

use super::{ClassRow, Outcome, SplitReport, Status};

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Written => "written",
        Status::Kept => "kept (it exists; --force or split.force: true overwrites it)",
        Status::WouldWrite => "would be written (dry run)",
        Status::WouldKeep => "would be kept (it exists; dry run)",
    }
}

fn status_key(s: Status) -> &'static str {
    match s {
        Status::Written => "written",
        Status::Kept => "kept",
        Status::WouldWrite => "would_write",
        Status::WouldKeep => "would_keep",
    }
}

fn percent(n: usize, total: usize) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}", 100.0 * n as f64 / total as f64)
    }
}

/// The text report.
pub fn summary(o: &Outcome) -> String {
    let mut s = String::new();
    for split in &o.splits {
        let head = match split.index {
            Some((i, r, f)) => format!("split {i} (repeat {r}, fold {f})  "),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "{head}{}  {}",
            crate::text::escape(&split.path.to_string_lossy()),
            status_word(split.status)
        );
        if !split.rows.is_empty() {
            table(&mut s, &split.rows);
        }
    }
    if let Some(g) = o.groups {
        let _ = write!(s, "groups    {g}");
        if let Some((dev, class, list, split)) = largest_deviation(&o.splits) {
            let _ = write!(
                s,
                "; largest deviation from a requested share: {dev:.1} points ({class}, {list}{split})"
            );
        }
        let _ = writeln!(s);
    }
    s
}

fn table(s: &mut String, rows: &[ClassRow]) {
    let mut cells: Vec<Vec<String>> = vec![[
        "class", "total", "train", "val", "test", "train%", "val%", "test%",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect()];
    for r in rows {
        let mut line = vec![
            crate::text::escape(&r.name).into_owned(),
            r.total.to_string(),
        ];
        line.extend(r.counts.iter().map(usize::to_string));
        for (l, &n) in r.counts.iter().enumerate() {
            let got = percent(n, r.total);
            line.push(match r.requested {
                Some(want) => format!("{got} ({:.1})", 100.0 * want[l]),
                None => got,
            });
        }
        cells.push(line);
    }
    let total: usize = rows.iter().map(|r| r.total).sum();
    let sums: Vec<usize> = (0..3)
        .map(|l| rows.iter().map(|r| r.counts[l]).sum())
        .collect();
    let mut line = vec!["all".to_string(), total.to_string()];
    line.extend(sums.iter().map(usize::to_string));
    line.extend(sums.iter().map(|&n| percent(n, total)));
    cells.push(line);
    s.push_str(&crate::text::columns(
        &cells,
        &[false, true, true, true, true, true, true, true],
        "  ",
    ));
}

/// The largest |achieved - requested| share in points over every class, list and split.
fn largest_deviation(splits: &[SplitReport]) -> Option<(f64, String, &'static str, String)> {
    let mut best: Option<(f64, String, &'static str, String)> = None;
    for split in splits {
        for r in &split.rows {
            let (Some(want), true) = (r.requested, r.total > 0) else {
                continue;
            };
            for (l, name) in ["train", "val", "test"].into_iter().enumerate() {
                let dev = 100.0 * (r.counts[l] as f64 / r.total as f64 - want[l]).abs();
                if best.as_ref().is_none_or(|b| dev > b.0 + 1e-9) {
                    let at = split
                        .index
                        .map_or(String::new(), |(i, _, _)| format!(", split {i}"));
                    best = Some((dev, crate::text::escape(&r.name).into_owned(), name, at));
                }
            }
        }
    }
    best
}

/// The `--json` report.
pub fn summary_json(o: &Outcome) -> Value {
    let splits: Vec<Value> = o
        .splits
        .iter()
        .map(|s| {
            let classes: Vec<Value> = s
                .rows
                .iter()
                .map(|r| {
                    let mut v = json!({
                        "name": r.name, "total": r.total,
                        "train": r.counts[0], "val": r.counts[1], "test": r.counts[2],
                    });
                    if let Some(w) = r.requested {
                        v["requested_shares"] = json!({"train": w[0], "val": w[1], "test": w[2]});
                    }
                    v
                })
                .collect();
            let mut v = json!({
                "path": s.path.to_string_lossy(),
                "status": status_key(s.status),
                "classes": classes,
            });
            if let Some((i, r, f)) = s.index {
                v["split_index"] = i.into();
                v["repeat"] = r.into();
                v["fold"] = f.into();
            }
            v
        })
        .collect();
    let mut v = json!({"splits": splits, "warnings": o.warnings});
    if let Some(seed) = o.drawn_seed {
        v["drawn_seed"] = super::emit::int_value(seed);
    }
    if let Some(g) = o.groups {
        v["groups"] = g.into();
    }
    v
}
