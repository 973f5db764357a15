//! Writing a split file (or only describing it): its metadata as the user's script writes
//! it, the folder it goes into, and the values those files hold.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::config::{GroupBy, Number};
use super::lists::Lists;
use super::write::{self, Entry, SplitFile};
use super::{Class, ClassRow, PrepareError, SplitIndex, SplitReport, Status};
use crate::output::WriteError;

/// Writes (or only describes) one split.
pub(super) struct Emit<'a> {
    pub(super) classes: &'a [Class<'a>],
    pub(super) created_at: Option<String>,
    pub(super) group_meta: Option<(Value, Value)>,
}

impl Emit<'_> {
    pub(super) fn finish(&self, mut job: Job, status: Status) -> Result<SplitReport, PrepareError> {
        if let Some((by, n)) = &self.group_meta {
            job.extra.insert("group_by".into(), by.clone());
            job.extra.insert("groups".into(), n.clone());
        }
        let rows = job.rows(self.classes);
        if status == Status::Written {
            job.write(self.classes, &rows, self.created_at.as_deref())?;
        }
        Ok(SplitReport {
            index: job.index,
            path: job.path,
            status,
            rows,
        })
    }
}

/// One split file to write.
pub(super) struct Job {
    pub(super) index: SplitIndex,
    pub(super) path: PathBuf,
    pub(super) lists: Lists,
    /// The mode's metadata keys, after the common ones.
    pub(super) extra: Map<String, Value>,
    /// Per class (label order), with groups: the requested shares of train, val, test.
    pub(super) requested: Vec<Option<[f64; 3]>>,
}

impl Job {
    pub(super) fn rows(&self, classes: &[Class]) -> Vec<ClassRow> {
        classes
            .iter()
            .enumerate()
            .map(|(c, class)| ClassRow {
                name: class.spec.name.clone(),
                total: class.files.len(),
                counts: self
                    .lists
                    .each_ref()
                    .map(|l| l.iter().filter(|&&(k, _)| k == c).count()),
                requested: self.requested[c],
            })
            .collect()
    }

    /// Writes the file; `rows` are this split's [`Job::rows`] (its `class_samples`).
    pub(super) fn write(
        &self,
        classes: &[Class],
        rows: &[ClassRow],
        created_at: Option<&str>,
    ) -> Result<(), PrepareError> {
        let entries = |list: &[(usize, usize)]| -> Vec<Entry> {
            list.iter()
                .map(|&(c, i)| Entry {
                    path: &classes[c].files[i],
                    label: classes[c].spec.label,
                })
                .collect()
        };
        let [train, val, test] = self.lists.each_ref().map(|l| entries(l));
        let mut m = Map::new();
        if let Some(t) = created_at {
            m.insert("created_at".into(), t.into());
        }
        m.insert(
            "total_samples".into(),
            (train.len() + val.len() + test.len()).into(),
        );
        m.insert("train_samples".into(), train.len().into());
        m.insert("val_samples".into(), val.len().into());
        m.insert("test_samples".into(), test.len().into());
        // `classes` in the config's order (their dict comprehension over the YAML mapping);
        // everything else per class in label order.
        let mut config_order: Vec<&Class> = classes.iter().collect();
        config_order.sort_by_key(|c| c.config_index);
        m.insert(
            "classes".into(),
            Value::Object(
                config_order
                    .iter()
                    .map(|c| (c.spec.name.clone(), c.spec.label.into()))
                    .collect(),
            ),
        );
        m.insert(
            "class_samples".into(),
            Value::Object(
                rows.iter()
                    .map(|r| {
                        let mut o = Map::new();
                        o.insert("total".into(), r.total.into());
                        o.insert("train".into(), r.counts[0].into());
                        o.insert("val".into(), r.counts[1].into());
                        o.insert("test".into(), r.counts[2].into());
                        (r.name.clone(), Value::Object(o))
                    })
                    .collect(),
            ),
        );
        m.insert(
            "source_paths".into(),
            Value::Object(
                classes
                    .iter()
                    .map(|c| (c.spec.name.clone(), c.spec.path.clone().into()))
                    .collect(),
            ),
        );
        m.extend(self.extra.clone());
        let doc = SplitFile {
            metadata: m,
            train,
            val,
            test,
        };
        crate::output::write_file_atomically(&self.path, "split file", false, |w| {
            write::write(w, &doc)
        })
        .map_err(PrepareError::from)
    }
}

/// Creates `save_dir` and checks that a file can be made in it, naming `split.save_dir`
/// when it is a file or under one.
pub(super) fn prepare_folder(
    config: &Path,
    save_dir: &Path,
    probe: &Path,
) -> Result<(), PrepareError> {
    let bad = |what: String| -> PrepareError {
        PrepareError::SaveDir {
            config: config.to_owned(),
            message: what,
        }
    };
    if save_dir.exists() && !save_dir.is_dir() {
        return Err(bad(format!("not a directory: {}", save_dir.display())));
    }
    std::fs::create_dir_all(save_dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
            bad(format!("cannot create {}: {e}", save_dir.display()))
        }
        _ => WriteError {
            path: save_dir.to_owned(),
            what: "split folder",
            source: e,
        }
        .into(),
    })?;
    // A temporary file made and dropped: a read-only folder fails here, before any split.
    crate::output::AtomicFile::create(probe).map_err(|source| WriteError {
        path: probe.to_owned(),
        what: "split file",
        source,
    })?;
    Ok(())
}

pub(super) fn int_value(n: i128) -> Value {
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(i), _) => i.into(),
        (_, Ok(u)) => u.into(),
        // Seeds come from YAML integers, which fit one of the two.
        _ => Value::from(n as f64),
    }
}

/// A ratio as the user wrote it: `0` stays an integer, `0.0` a float.
pub(super) fn number_value(n: Number) -> Value {
    if n.integer {
        (n.value as i64).into()
    } else {
        n.value.into()
    }
}

pub(super) fn group_by_value(by: &GroupBy) -> Value {
    let mut m = Map::new();
    match by {
        GroupBy::Regex(re) => {
            m.insert("regex".into(), re.as_str().into());
        }
        GroupBy::Csv {
            file,
            path_column,
            group_column,
        } => {
            m.insert("csv".into(), file.to_string_lossy().into_owned().into());
            m.insert("path_column".into(), path_column.clone().into());
            m.insert("group_column".into(), group_column.clone().into());
        }
    }
    Value::Object(m)
}

/// `datetime.now().isoformat(timespec="seconds")`: local time, no zone.
pub(super) fn local_timestamp() -> String {
    let now = libc_time();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        now.tm_year + 1900,
        now.tm_mon + 1,
        now.tm_mday,
        now.tm_hour,
        now.tm_min,
        now.tm_sec
    )
}

pub(super) fn libc_time() -> libc::tm {
    // SAFETY: time(NULL) has no preconditions; localtime_r writes into the zeroed tm we own.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    }
}
