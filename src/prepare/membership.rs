//! `split.group_by`: each file's group, from a pattern on its name or a table.

use std::path::Path;

use super::config::GroupBy;
use super::{groups, scan, Class, PrepareError, MAX_CSV_BYTES};

/// Each file's group; returns the number of groups.
pub(super) fn find_groups(
    config: &Path,
    by: &GroupBy,
    classes: &mut [Class],
    warnings: &mut Vec<String>,
) -> Result<usize, PrepareError> {
    let table = match by {
        GroupBy::Csv {
            file,
            path_column,
            group_column,
        } => Some(read_table(file, path_column, group_column)?),
        GroupBy::Regex(_) => None,
    };
    let mut ids: Vec<String> = Vec::new();
    let mut unmatched: Vec<&str> = Vec::new();
    let mut unmatched_count = 0usize;
    let mut owner: Vec<(usize, usize)> = Vec::new();
    for (c, class) in classes.iter().enumerate() {
        for (i, path) in class.files.iter().enumerate() {
            let id = match (by, &table) {
                (GroupBy::Regex(re), _) => {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    re.captures(name)
                        .and_then(|m| m.name("group"))
                        .map(|m| m.as_str().to_owned())
                }
                (_, Some(t)) => t.get(path).cloned(),
                _ => None,
            };
            match id {
                Some(id) => {
                    ids.push(id);
                    owner.push((c, i));
                }
                None => {
                    unmatched_count += 1;
                    if unmatched.len() < 5 {
                        unmatched.push(path);
                    }
                }
            }
        }
    }
    if unmatched_count > 0 {
        return Err(no_group(config, by, &unmatched, unmatched_count));
    }
    let (numbers, names) = groups::number_groups(ids.iter().map(String::as_str));
    let n_groups = names.len();
    for class in classes.iter_mut() {
        class.groups = vec![0; class.files.len()];
    }
    // Each group's first class, and whether another one follows.
    let mut first: Vec<Option<usize>> = vec![None; n_groups];
    let mut is_mixed = vec![false; n_groups];
    for (&(c, i), &g) in owner.iter().zip(&numbers) {
        classes[c].groups[i] = g;
        match first[g] {
            None => first[g] = Some(c),
            Some(f) if f != c => is_mixed[g] = true,
            Some(_) => {}
        }
    }
    let mixed = is_mixed.iter().filter(|&&m| m).count();
    if mixed > 0 {
        warnings.push(format!(
            "{mixed} group(s) have images of more than one class; each is placed whole and counts in each of its classes"
        ));
    }
    Ok(n_groups)
}

/// Files without a group: how many, the first five, and why.
fn no_group(
    config: &Path,
    by: &GroupBy,
    unmatched: &[&str],
    unmatched_count: usize,
) -> PrepareError {
    let how = match by {
        GroupBy::Regex(re) => format!("the regex {} does not match", re.as_str()),
        GroupBy::Csv { file, .. } => format!("not listed in {}", file.display()),
    };
    let shown: Vec<String> = unmatched
        .iter()
        .map(|p| crate::text::escape(p).into_owned())
        .collect();
    PrepareError::Groups {
        config: config.to_owned(),
        message: format!(
            "{unmatched_count} file(s) have no group ({how}): {}{}",
            shown.join(", "),
            if unmatched_count > shown.len() {
                ", ..."
            } else {
                ""
            }
        ),
    }
}

/// `group_by.csv`: path (normalised as pathlib prints it) -> group.
pub(super) fn read_table(
    file: &Path,
    path_column: &str,
    group_column: &str,
) -> Result<std::collections::HashMap<String, String>, PrepareError> {
    let err = |message: String| -> PrepareError {
        PrepareError::Table {
            file: file.to_owned(),
            message,
        }
    };
    let bytes = crate::input::read_bounded(file, MAX_CSV_BYTES)
        .map_err(|e| err(format!("cannot read group table: {e}")))?;
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    let headers = r
        .headers()
        .map_err(|e| err(crate::text::one_line(&e.to_string()).into_owned()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            err(format!(
                "no column {name:?} in the header (found {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (pc, gc) = (column(path_column)?, column(group_column)?);
    let mut table = std::collections::HashMap::new();
    for (row, record) in r.records().enumerate() {
        let record = record.map_err(|e| err(crate::text::one_line(&e.to_string()).into_owned()))?;
        let line = row + 2;
        let (Some(path), Some(group)) = (record.get(pc), record.get(gc)) else {
            return Err(err(format!(
                "line {line}: expected columns {path_column} and {group_column}"
            )));
        };
        if group.is_empty() {
            return Err(err(format!("line {line}: {group_column} is empty")));
        }
        let key = scan::pathlib_str(path);
        if let Some(old) = table.insert(key, group.to_owned()) {
            if old != group {
                return Err(err(format!(
                    "line {line}: {} is listed again with another group ({old} before, {group} here)",
                    crate::text::escape(path)
                )));
            }
        }
    }
    Ok(table)
}
