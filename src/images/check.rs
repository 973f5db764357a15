//! `check-images`: decode every image a split or manifest references, in parallel, and
//! report every file that is not usable, with a summary of what the set holds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::decode::{self, Info, Problem};
use crate::input;
use crate::split::{Split, SplitError};

/// What to check.
#[derive(Clone, Debug)]
pub struct Request {
    pub file: PathBuf,
    /// Image paths are resolved against this directory (the user's project root).
    pub root: PathBuf,
    /// `model.architecture.image_size`, to count the images that will be resized.
    pub image_size: u32,
}

/// One bad file, named by the first entry that references it.
#[derive(Clone, Debug, Serialize)]
pub struct Bad {
    pub list: String,
    pub index: usize,
    pub path: String,
    pub problem: Problem,
}

/// `list[index] path: problem`, escaped for a terminal: how every command lists a bad file.
impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::escape;
        let problem = self.problem.to_string();
        write!(
            f,
            "{}[{}] {}: {}",
            self.list,
            self.index,
            escape(&self.path),
            escape(&problem)
        )
    }
}

/// The verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub file: PathBuf,
    /// Distinct image files decoded.
    pub files: usize,
    pub bad: Vec<Bad>,
    /// Entries per list and class name.
    pub entries: BTreeMap<String, BTreeMap<String, usize>>,
    /// Distinct files per size (`WxH`), per stored colour type, and per format.
    pub sizes: BTreeMap<String, usize>,
    pub colors: BTreeMap<String, usize>,
    pub formats: BTreeMap<String, usize>,
    /// Distinct files whose size is not `image_size` x `image_size`.
    pub to_resize: usize,
    pub image_size: u32,
}

/// Checks every referenced image; `total` is told how many files there are, `progress`
/// is told after each one.
pub fn run(
    req: &Request,
    total: impl FnOnce(usize),
    progress: impl Fn() + Sync,
) -> Result<Report, SplitError> {
    let bytes = input::read(&req.file)?;
    let text = input::text(&bytes, &req.file)?;
    let (split, _) = Split::parse_with_balancing(text, &req.file)?;
    let mut entries: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (name, list) in split.lists() {
        let per_class = entries.entry(name.to_string()).or_default();
        for e in list {
            *per_class
                .entry(split.classes[e.label as usize].clone())
                .or_default() += 1;
        }
    }
    let order = split.distinct_paths();
    total(order.len());
    let results: Vec<Result<Info, Problem>> = order
        .par_iter()
        .map(|(p, _, _)| {
            let r = decode::read(&req.root.join(p))
                .and_then(|b| decode::decode(&b).map(|(_, info)| info));
            progress();
            r
        })
        .collect();
    let mut report = Report {
        file: req.file.clone(),
        files: order.len(),
        bad: Vec::new(),
        entries,
        sizes: BTreeMap::new(),
        colors: BTreeMap::new(),
        formats: BTreeMap::new(),
        to_resize: 0,
        image_size: req.image_size,
    };
    for (&(path, list, index), r) in order.iter().zip(results) {
        match r {
            Ok(info) => {
                *report
                    .sizes
                    .entry(format!("{}x{}", info.width, info.height))
                    .or_default() += 1;
                *report.colors.entry(info.color).or_default() += 1;
                *report.formats.entry(info.format).or_default() += 1;
                if (info.width, info.height) != (req.image_size, req.image_size) {
                    report.to_resize += 1;
                }
            }
            Err(problem) => {
                report.bad.push(Bad {
                    list: list.to_string(),
                    index,
                    path: path.to_string(),
                    problem,
                });
            }
        }
    }
    Ok(report)
}

/// The human-readable report.
pub fn render(r: &Report) -> String {
    use crate::text::escape;
    use std::fmt::Write;
    let mut s = String::new();
    for b in &r.bad {
        let _ = writeln!(s, "{b}");
    }
    let _ = writeln!(
        s,
        "{}: {} files checked, {} bad",
        escape(&r.file.display().to_string()),
        r.files,
        r.bad.len()
    );
    for (list, classes) in &r.entries {
        let parts: Vec<String> = classes
            .iter()
            .map(|(c, n)| format!("{} {n}", escape(c)))
            .collect();
        let _ = writeln!(s, "  {list}: {}", parts.join(", "));
    }
    let join = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "  formats: {}", join(&r.formats));
    let _ = writeln!(s, "  sizes: {}", join(&r.sizes));
    let _ = writeln!(s, "  colour types: {}", join(&r.colors));
    let _ = writeln!(
        s,
        "  {} of {} readable files will be resized to {}x{}",
        r.to_resize,
        r.files - r.bad.len(),
        r.image_size,
        r.image_size
    );
    s
}
