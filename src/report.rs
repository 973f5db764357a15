//! The human summary of a `balance` run: an aligned table of per-class counts.

use std::fmt::Write;

use crate::balance::Outcome;
use crate::plan::Strategy;

/// Renders the summary that `balance-split balance` prints on stdout. Over 80 lines on
/// purpose: the printed layout, line by line, in the order it appears.
pub fn summary(o: &Outcome) -> String {
    let p = &o.plan;
    let mut s = String::new();
    let _ = write!(s, "strategy  {}", p.strategy.name());
    if !p.overridden.is_empty() {
        let names: Vec<_> = p.overridden.iter().map(|s| s.name()).collect();
        let _ = write!(s, " (overrides {})", names.join(", "));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", seed_line(o));
    let after_head = match (&p.strategy, &p.sampler) {
        (Strategy::Data(_), Some(_)) => "epoch",
        _ => "after",
    };
    if let Some(syn) = &p.synthetic {
        let c = &syn.config;
        let limit = match c.limit {
            crate::config::synthetic::Limit::None => "all".to_string(),
            crate::config::synthetic::Limit::MaxRatio(r) => {
                format!("max_ratio {}", crate::text::number(r))
            }
            crate::config::synthetic::Limit::MaxSamples(n) => format!("max_samples {n}"),
        };
        let _ = writeln!(
            s,
            "synthetic {} from {} ({limit}{})",
            c.mode_name(),
            crate::text::escape(&c.split_file),
            c.replace_class()
                .map_or(String::new(), |r| format!(", replaces class {r}"))
        );
    }
    let mut head = vec!["class".to_string(), "label".into(), "before".into()];
    if p.synthetic.is_some() {
        head.extend(["removed".into(), "synthetic".into()]);
    }
    head.push(after_head.into());
    let mut rows = vec![head];
    let total = |v: &[u64]| v.iter().sum::<u64>().to_string();
    for (label, name) in o.classes.iter().enumerate() {
        let mut row = vec![
            crate::text::escape(name).into_owned(),
            label.to_string(),
            p.counts_before[label].to_string(),
        ];
        if let Some(syn) = &p.synthetic {
            row.push(syn.composition.removed[label].to_string());
            row.push(syn.composition.synthetic[label].to_string());
        }
        row.push(p.counts_after[label].to_string());
        rows.push(row);
    }
    let mut last = vec!["total".into(), String::new(), total(&p.counts_before)];
    if let Some(syn) = &p.synthetic {
        last.push(total(&syn.composition.removed));
        last.push(total(&syn.composition.synthetic));
    }
    last.push(total(&p.counts_after));
    let right: Vec<bool> = (0..last.len()).map(|c| c > 0).collect();
    rows.push(last);
    s += &crate::text::columns(&rows, &right, "");
    if let Some(sm) = &p.sampler {
        let _ = writeln!(
            s,
            "sampler   {} draws per epoch, {} replacement; class weights {}",
            sm.num_samples,
            if sm.replacement { "with" } else { "without" },
            join_f64(&sm.class_weights)
        );
    }
    if let Some(l) = &p.loss {
        let _ = writeln!(
            s,
            "loss      class weights {} ({}{})",
            join_f64(&l.class_weights),
            l.method.name(),
            if l.normalize { ", normalized" } else { "" }
        );
    }
    let _ = writeln!(
        s,
        "{} {}",
        if o.written {
            "wrote"
        } else {
            "dry run, would write"
        },
        crate::text::escape(&o.out_path.display().to_string())
    );
    s
}

/// The same summary for machines (`balance --json`).
pub fn summary_json(o: &Outcome) -> serde_json::Value {
    let p = &o.plan;
    let by_class = |v: &[u64]| -> serde_json::Map<String, serde_json::Value> {
        o.classes
            .iter()
            .zip(v)
            .map(|(c, &n)| (c.clone(), n.into()))
            .collect()
    };
    let mut out = serde_json::json!({
        "strategy": p.strategy.name(),
        "seed": o.seed,
        "seed_from_os": o.seed_from_os,
        "overridden": p.overridden.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "warnings": p.warnings,
        "class_counts": {"before": by_class(&p.counts_before), "after": by_class(&p.counts_after)},
        "sampler": p.sampler.as_ref().map(|s| serde_json::json!({
            "class_weights": s.class_weights, "replacement": s.replacement, "num_samples": s.num_samples,
        })),
        "loss": p.loss.as_ref().map(|l| serde_json::json!({
            "class_weights": l.class_weights, "method": l.method.name(), "normalize": l.normalize,
        })),
        "manifest": o.out_path,
        "written": o.written,
    });
    // Only where there is one, so a summary without it reads as before.
    if let Some(syn) = &p.synthetic {
        out["synthetic"] = serde_json::json!({
            "config": syn.config.record(),
            "real": by_class(&syn.composition.real),
            "removed": by_class(&syn.composition.removed),
            "synthetic": by_class(&syn.composition.synthetic),
        });
    }
    out
}

/// One row per split for `balance --split A --split B ...`: the per-class counts before and
/// after (`normal/abnormal`), or the error that split met.
pub fn many_summary(results: &[crate::balance::SplitResult]) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "split".into(),
        "strategy".into(),
        "before".into(),
        "after".into(),
        "manifest".into(),
    ]];
    let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join("/");
    for (split, result) in results {
        let name = crate::text::escape(&split.display().to_string()).into_owned();
        rows.push(match result {
            Ok(o) => [
                name,
                o.plan.strategy.name().into(),
                join(&o.plan.counts_before),
                join(&o.plan.counts_after),
                format!(
                    "{}{}",
                    if o.written { "" } else { "(dry run) " },
                    crate::text::escape(&o.out_path.display().to_string())
                ),
            ],
            Err(_) => [name, "failed".into(), "-".into(), "-".into(), "-".into()],
        });
    }
    let mut s = String::new();
    if let Some(o) = results.iter().find_map(|r| r.1.as_ref().ok()) {
        let _ = writeln!(s, "classes   {}", o.classes.join("/"));
        let _ = writeln!(s, "{}", seed_line(o));
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    s += &crate::text::columns(&rows, &[false, false, true, true, false], "");
    s
}

/// `seed      N`, saying when it was drawn from the OS.
fn seed_line(o: &Outcome) -> String {
    let drawn = if o.seed_from_os {
        " (drawn from the OS: compute.seed is null)"
    } else {
        ""
    };
    format!("seed      {}{drawn}", o.seed)
}

fn join_f64(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
    format!("[{}]", parts.join(", "))
}
