//! What `check-leaks` prints, and its `--report` files: a CSV of the pairs, or an HTML page
//! with the two images side by side per pair (a person decides faster by looking).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;

use super::{Cluster, Exact, Pair, Report, Side, SHOWN_MEMBERS};
use crate::text::escape;

fn exact_text(k: Exact) -> &'static str {
    match k {
        Exact::IdenticalBytes => "identical bytes",
        Exact::IdenticalPixels => "identical pixels",
    }
}

fn near_text(p: &Pair) -> String {
    if p.featureless {
        format!("near (featureless, one colour, residual {:.2})", p.residual)
    } else {
        format!("near (distance {}, residual {:.2})", p.distance, p.residual)
    }
}

/// A cluster's heading: its kind, and for more than two members their number per list.
fn cluster_text(c: &Cluster) -> String {
    if c.members.len() == 2 {
        return exact_text(c.kind).into();
    }
    let lists: Vec<String> = c.lists.iter().map(|(l, n)| format!("{l} {n}")).collect();
    format!(
        "{}, {} images ({})",
        exact_text(c.kind),
        c.members.len(),
        lists.join(", ")
    )
}

fn side_text(s: &Side) -> String {
    format!(
        "{}[{}] {} ({})",
        s.list,
        s.index,
        escape(&s.path),
        escape(&s.class)
    )
}

fn cluster_line(out: &mut String, c: &Cluster) {
    let shown: Vec<String> = c
        .members
        .iter()
        .take(SHOWN_MEMBERS)
        .map(side_text)
        .collect();
    let more = c.members.len().saturating_sub(SHOWN_MEMBERS);
    let _ = writeln!(
        out,
        "  {}: {}{}",
        cluster_text(c),
        shown.join("  =  "),
        if more > 0 {
            format!("  and {more} more")
        } else {
            String::new()
        }
    );
}

fn pair_line(out: &mut String, p: &Pair) {
    let _ = writeln!(
        out,
        "  {}: {}  =  {}",
        near_text(p),
        side_text(&p.a),
        side_text(&p.b)
    );
}

/// One section of the text report: its clusters and pairs, under a heading with their
/// number, or nothing.
fn section(s: &mut String, heading: &str, clusters: Vec<&Cluster>, pairs: Vec<&Pair>) {
    if clusters.is_empty() && pairs.is_empty() {
        return;
    }
    let _ = writeln!(s, "{heading}: {}", clusters.len() + pairs.len());
    for c in clusters {
        cluster_line(s, c);
    }
    for p in pairs {
        pair_line(s, p);
    }
}

/// The text report: label conflicts first, then leaks across lists, then (with `--within`)
/// duplicates inside a list, then the summary.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    for b in &r.unreadable {
        let _ = writeln!(s, "{b} (skipped)");
    }
    section(
        &mut s,
        "label conflicts (the same image under two labels)",
        r.clusters.iter().filter(|c| c.label_conflict).collect(),
        r.pairs.iter().filter(|p| p.label_conflict).collect(),
    );
    section(
        &mut s,
        "across lists",
        r.clusters
            .iter()
            .filter(|c| c.crosses_lists() && !c.label_conflict)
            .collect(),
        r.pairs
            .iter()
            .filter(|p| p.crosses_lists() && !p.label_conflict)
            .collect(),
    );
    section(
        &mut s,
        "within a list",
        r.clusters
            .iter()
            .filter(|c| !c.crosses_lists() && !c.label_conflict)
            .collect(),
        r.pairs
            .iter()
            .filter(|p| !p.crosses_lists() && !p.label_conflict)
            .collect(),
    );
    if r.pairs_found > r.pairs.len() {
        let _ = writeln!(
            s,
            "{} more near pair(s) found and counted, not listed (at most {} are kept)",
            r.pairs_found - r.pairs.len(),
            super::MAX_PAIRS
        );
    }
    let join = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = write!(
        s,
        "{}: {} images, {} unreadable; {} leak(s) across lists",
        escape(&r.file.display().to_string()),
        r.images,
        r.unreadable.len(),
        r.leaks()
    );
    if r.leaks() > 0 {
        let _ = write!(
            s,
            " ({}; by class: {})",
            join(&r.by_lists),
            join(&r.by_class)
        );
    }
    let _ = writeln!(
        s,
        "; pHash threshold {} bits, {}{}",
        r.threshold,
        match r.max_residual {
            Some(m) => format!("pixel residual at most {m}"),
            None => "pixels not compared".into(),
        },
        if r.within { ", within lists too" } else { "" }
    );
    s
}

/// A CSV row per near pair, and per member of a cluster after its first (paired with the
/// first), so the file grows with the images, not with their square.
pub fn write_csv(w: impl Write, r: &Report) -> io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record([
        "kind",
        "cluster",
        "distance",
        "residual",
        "label_conflict",
        "a_list",
        "a_index",
        "a_path",
        "a_class",
        "b_list",
        "b_index",
        "b_path",
        "b_class",
    ])?;
    let sides = |a: &Side, b: &Side| {
        [
            a.list.to_string(),
            a.index.to_string(),
            a.path.clone(),
            a.class.clone(),
            b.list.to_string(),
            b.index.to_string(),
            b.path.clone(),
            b.class.clone(),
        ]
    };
    for (n, cl) in r.clusters.iter().enumerate() {
        let kind = match cl.kind {
            Exact::IdenticalBytes => "identical_bytes",
            Exact::IdenticalPixels => "identical_pixels",
        };
        for m in &cl.members[1..] {
            let mut row = vec![
                kind.to_string(),
                n.to_string(),
                "0".into(),
                "0".into(),
                (m.label != cl.members[0].label).to_string(),
            ];
            row.extend(sides(&cl.members[0], m));
            c.write_record(row)?;
        }
    }
    for p in &r.pairs {
        let mut row = vec![
            "near".to_string(),
            String::new(),
            p.distance.to_string(),
            format!("{:.3}", p.residual),
            p.label_conflict.to_string(),
        ];
        row.extend(sides(&p.a, &p.b));
        c.write_record(row)?;
    }
    c.flush()
}

/// At most this many pairs get thumbnails in the HTML page (a page of 100,000 images helps
/// nobody; the CSV has them all).
pub const MAX_HTML_PAIRS: usize = 500;

/// A self-contained HTML page: per pair the two images (thumbnails embedded as PNG data
/// URIs, at most 128 pixels a side), their entries and the kind.
pub fn write_html(mut w: impl Write, r: &Report, root: &Path) -> io::Result<()> {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>check-leaks</title>\n<style>body{font-family:sans-serif}table{border-collapse:collapse}td{border:1px solid #ccc;padding:4px;vertical-align:top}.conflict{background:#fdd}img{image-rendering:pixelated;width:128px}</style></head><body>\n",
    );
    let _ = writeln!(
        page,
        "<h1>{}</h1><p>{} images, {} leak(s) across lists, {} cluster(s) of exact copies and {} near pair(s) in all; pHash threshold {} bits.</p>",
        html(&r.file.display().to_string()),
        r.images,
        r.leaks(),
        r.clusters.len(),
        r.pairs_found,
        r.threshold
    );
    page.push_str("<table>\n<tr><th>kind</th><th>first</th><th>second</th></tr>\n");
    let rows = r
        .clusters
        .iter()
        .map(|c| {
            let more = c.members.len() - 2;
            let kind = format!(
                "{}{}",
                html(&cluster_text(c)),
                if more > 0 {
                    format!("<br>and {more} more")
                } else {
                    String::new()
                }
            );
            (kind, c.label_conflict, &c.members[0], &c.members[1])
        })
        .chain(
            r.pairs
                .iter()
                .map(|p| (html(&near_text(p)), p.label_conflict, &p.a, &p.b)),
        );
    let mut shown = 0;
    for (kind, conflict, a, b) in rows.take(MAX_HTML_PAIRS) {
        shown += 1;
        let _ = writeln!(
            page,
            "<tr{}><td>{kind}{}</td><td>{}</td><td>{}</td></tr>",
            if conflict { " class=\"conflict\"" } else { "" },
            if conflict { "<br>label conflict" } else { "" },
            cell(a, root),
            cell(b, root)
        );
    }
    page.push_str("</table>\n");
    let total = r.clusters.len() + r.pairs.len();
    if total > shown {
        let _ = writeln!(page, "<p>{} more in the CSV report.</p>", total - shown);
    }
    page.push_str("</body></html>\n");
    w.write_all(page.as_bytes())
}

fn cell(s: &Side, root: &Path) -> String {
    let img = match thumbnail(&crate::input::under(root, Path::new(&s.path))) {
        Some(b64) => format!(
            "<img alt=\"{}\" src=\"data:image/png;base64,{b64}\"><br>",
            html(&s.path)
        ),
        None => String::new(),
    };
    format!(
        "{img}{}[{}] {}<br>{}",
        s.list,
        s.index,
        html(&s.path),
        html(&s.class)
    )
}

fn thumbnail(path: &Path) -> Option<String> {
    let bytes = crate::images::decode::read(path).ok()?;
    let (img, _) = crate::images::decode::decode(&bytes).ok()?;
    let small = img.thumbnail(128, 128).into_rgb8();
    let mut png = Vec::new();
    small
        .write_to(&mut io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(png))
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
