//! `split --check-leaks`: files with identical decoded pixels, and the refusal of a split
//! that would put two of them in different lists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::lists::Lists;
use super::{Class, PrepareError};

/// With `--check-leaks`: for each file whose decoded pixels another file also has, a number
/// shared by all files with those pixels. Unreadable files are left out (check-images
/// reports them).
pub(super) fn identical_images(classes: &[Class]) -> HashMap<(usize, usize), usize> {
    let files: Vec<(usize, usize)> = classes
        .iter()
        .enumerate()
        .flat_map(|(c, class)| (0..class.files.len()).map(move |i| (c, i)))
        .collect();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|&(c, i)| PathBuf::from(&classes[c].files[i]))
        .collect();
    let mut by_digest: HashMap<[u8; 32], Vec<(usize, usize)>> = HashMap::new();
    for (&file, look) in files.iter().zip(crate::leaks::look_all(&paths, || {})) {
        if let Some(d) = look.ok().and_then(|l| l.digests) {
            by_digest.entry(d.pixels).or_default().push(file);
        }
    }
    let mut twins = HashMap::new();
    for (n, members) in by_digest.into_values().filter(|m| m.len() > 1).enumerate() {
        for f in members {
            twins.insert(f, n);
        }
    }
    twins
}

/// Refuses a split whose lists hold the same pixels twice (exit 4, before anything is
/// written): the first such pair, and how many there are.
pub(super) fn refuse_leaks(
    twins: &HashMap<(usize, usize), usize>,
    classes: &[Class],
    lists: &Lists,
    path: &Path,
) -> Result<(), PrepareError> {
    if twins.is_empty() {
        return Ok(());
    }
    // (list, (class, file)) of a copy's first sighting, and each pair across lists.
    type Seen = (usize, (usize, usize));
    let mut first_list: HashMap<usize, Seen> = HashMap::new();
    let mut found: Vec<(Seen, Seen)> = Vec::new();
    for (l, list) in lists.iter().enumerate() {
        for &f in list {
            if let Some(&n) = twins.get(&f) {
                match first_list.get(&n) {
                    Some(&(l0, f0)) if l0 != l => found.push(((l0, f0), (l, f))),
                    Some(_) => {}
                    None => {
                        first_list.insert(n, (l, f));
                    }
                }
            }
        }
    }
    let Some(&((la, a), (lb, b))) = found.first() else {
        return Ok(());
    };
    let names = ["train", "val", "test"];
    let show = |(c, i): (usize, usize)| crate::text::escape(&classes[c].files[i]).into_owned();
    Err(PrepareError::Leaks {
        path: path.to_owned(),
        message: format!(
            "identical pixels in {} ({}) and {} ({}){}; nothing written (group them with split.group_by, or remove the copy)",
            names[la],
            show(a),
            names[lb],
            show(b),
            if found.len() > 1 { format!(", and {} more", found.len() - 1) } else { String::new() }
        ),
    })
}
