//! What `check-leaks` prints, and its `--report` files: a CSV of the pairs, or an HTML page
//! with the two images side by side per pair (a person decides faster by looking).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;

use super::{Kind, Pair, Report, Side};
use crate::text::escape;

fn kind_text(k: Kind) -> String {
    match k {
        Kind::IdenticalBytes => "identical bytes".into(),
        Kind::IdenticalPixels => "identical pixels".into(),
        Kind::Near(d) => format!("near (distance {d})"),
    }
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

fn pair_line(out: &mut String, p: &Pair) {
    let _ = writeln!(
        out,
        "  {}: {}  =  {}",
        kind_text(p.kind),
        side_text(&p.a),
        side_text(&p.b)
    );
}

/// The text report: label conflicts first, then leaks across lists, then (with `--within`)
/// duplicates inside a list, then the summary.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    for b in &r.unreadable {
        let _ = writeln!(s, "{b} (skipped)");
    }
    let conflicts: Vec<&Pair> = r.pairs.iter().filter(|p| p.label_conflict).collect();
    if !conflicts.is_empty() {
        let _ = writeln!(
            s,
            "label conflicts (the same image under two labels): {}",
            conflicts.len()
        );
        for p in &conflicts {
            pair_line(&mut s, p);
        }
    }
    let cross: Vec<&Pair> = r
        .pairs
        .iter()
        .filter(|p| p.crosses_lists() && !p.label_conflict)
        .collect();
    if !cross.is_empty() {
        let _ = writeln!(s, "across lists: {}", cross.len());
        for p in &cross {
            pair_line(&mut s, p);
        }
    }
    let inside: Vec<&Pair> = r
        .pairs
        .iter()
        .filter(|p| !p.crosses_lists() && !p.label_conflict)
        .collect();
    if !inside.is_empty() {
        let _ = writeln!(s, "within a list: {}", inside.len());
        for p in &inside {
            pair_line(&mut s, p);
        }
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
        "; pHash threshold {} bits{}",
        r.threshold,
        if r.within { ", within lists too" } else { "" }
    );
    s
}

/// A CSV row per pair.
pub fn write_csv(w: impl Write, r: &Report) -> io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record([
        "kind",
        "distance",
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
    for p in &r.pairs {
        let (kind, d) = match p.kind {
            Kind::IdenticalBytes => ("identical_bytes", 0),
            Kind::IdenticalPixels => ("identical_pixels", 0),
            Kind::Near(d) => ("near", d),
        };
        c.write_record([
            kind.to_string(),
            d.to_string(),
            p.label_conflict.to_string(),
            p.a.list.into(),
            p.a.index.to_string(),
            p.a.path.clone(),
            p.a.class.clone(),
            p.b.list.into(),
            p.b.index.to_string(),
            p.b.path.clone(),
            p.b.class.clone(),
        ])?;
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
        "<h1>{}</h1><p>{} images, {} leak(s) across lists, {} pair(s) in all; pHash threshold {} bits.</p>",
        html(&r.file.display().to_string()),
        r.images,
        r.leaks(),
        r.pairs.len(),
        r.threshold
    );
    page.push_str("<table>\n<tr><th>kind</th><th>first</th><th>second</th></tr>\n");
    for p in r.pairs.iter().take(MAX_HTML_PAIRS) {
        let _ = writeln!(
            page,
            "<tr{}><td>{}{}</td><td>{}</td><td>{}</td></tr>",
            if p.label_conflict {
                " class=\"conflict\""
            } else {
                ""
            },
            html(&kind_text(p.kind)),
            if p.label_conflict {
                "<br>label conflict"
            } else {
                ""
            },
            cell(&p.a, root),
            cell(&p.b, root)
        );
    }
    page.push_str("</table>\n");
    if r.pairs.len() > MAX_HTML_PAIRS {
        let _ = writeln!(
            page,
            "<p>{} more pair(s) in the CSV report.</p>",
            r.pairs.len() - MAX_HTML_PAIRS
        );
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
