//! The user's data-preparation YAML (`experiment: data_preparation`): `classes` and `split`.
//!
//! Over 500 lines on purpose: one YAML's every key, rule and refusal, so that the
//! messages and their order stay the user's validator's, read in one place.
//!
//! Read through a YAML tree rather than derived structs, because the user's own validator
//! decides by Python type (a ratio may be written `0` or `0.0`, and their file records
//! it as written; `true` is not an integer) and every message must name the dotted key.
//! The rules are theirs: each class a dict of exactly `path` (non-empty) and `label`
//! (labels forming 0..K-1); ratio mode: train and val ratios in (0, 1), test in [0, 1), the
//! three summing to 1 within 1e-6; k-fold mode: `n_folds >= 2`, `n_repeats >= 1`,
//! `repeat_seeds` distinct integers, one per repeat, `val_fraction` in (0, 1) and a
//! `split_file` with the `{index}` placeholder. Unknown keys in `split` are refused (a
//! typo such as `forse: true` must not silently keep an old file); keys of the other mode
//! are accepted and reported as unused, as the user's code ignores them.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::config::{yaml, ConfigError};

/// The most split files one k-fold config may ask for (`n_folds * n_repeats`).
pub const MAX_SPLITS: u64 = 100_000;

/// A validated data-preparation config.
#[derive(Clone, Debug)]
pub struct PrepConfig {
    /// The classes in the config's order (the order `metadata.classes` is written in).
    pub classes: Vec<ClassSpec>,
    pub mode: Mode,
    pub save_dir: String,
    pub split_file: String,
    pub force: bool,
    pub group_by: Option<GroupBy>,
    /// Keys present but not used by the mode (`seed` in k-fold mode), for a warning.
    pub unused: Vec<String>,
    /// Other things worth a warning (two classes reading the same folder).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClassSpec {
    pub name: String,
    /// As written in the config (recorded in `source_paths` unchanged).
    pub path: String,
    pub label: u32,
}

/// A YAML number as the user wrote it: its value, and whether it was an integer (Python
/// keeps `0` an int and `0.0` a float, and writes each back as it is).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    pub value: f64,
    pub integer: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Ratio {
        /// `None`: `seed: null` or no seed; one is drawn from the OS.
        seed: Option<i128>,
        train: Number,
        val: Number,
        test: Number,
    },
    KFold {
        n_folds: u32,
        n_repeats: u32,
        repeat_seeds: Vec<i128>,
        val_fraction: Number,
    },
}

/// A warning for each folder two or more classes read: their images would be listed under
/// every one of those labels (the user's code does the same, without a word).
fn shared_folders(classes: &[ClassSpec]) -> Vec<String> {
    use std::path::{Component, Path};
    // As the scan joins them: `./a/b/` and `a/b` are one folder.
    let folders: Vec<Vec<Component<'_>>> = classes
        .iter()
        .map(|c| {
            Path::new(&c.path)
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for (i, a) in classes.iter().enumerate() {
        let same: Vec<&str> = (i + 1..classes.len())
            .filter(|&j| folders[j] == folders[i])
            .map(|j| classes[j].name.as_str())
            .collect();
        if !same.is_empty() && !folders[..i].contains(&folders[i]) {
            out.push(format!(
                "classes {} and {} read the same folder {}: each of its images is listed under every one of their labels",
                a.name,
                same.join(" and "),
                a.path
            ));
        }
    }
    out
}

/// `split.group_by`: how a file's group (patient) is found.
#[derive(Clone, Debug)]
pub enum GroupBy {
    /// Searched in the file name; the named capture `group` is the group.
    Regex(regex::Regex),
    /// A table of `path_column` (a path as the split lists it) to `group_column`.
    Csv {
        file: PathBuf,
        path_column: String,
        group_column: String,
    },
}

const COMMON_KEYS: [&str; 5] = ["mode", "save_dir", "split_file", "force", "group_by"];
const RATIO_KEYS: [&str; 4] = ["seed", "train_ratio", "val_ratio", "test_ratio"];
const KFOLD_KEYS: [&str; 4] = ["n_folds", "n_repeats", "repeat_seeds", "val_fraction"];

impl PrepConfig {
    pub fn load(path: &Path) -> Result<PrepConfig, ConfigError> {
        PrepConfig::parse(&yaml::read(path)?, path)
    }

    /// Parses config text; `path` names the file in messages and is where a relative
    /// `group_by.csv` is not resolved against (it is relative to the working directory,
    /// like the class paths).
    pub fn parse(text: &str, path: &Path) -> Result<PrepConfig, ConfigError> {
        let root: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: crate::config::yaml::clarify(&e.to_string()),
        })?;
        let cx = Cx { path };
        let root = match &root {
            Value::Mapping(m) => m,
            Value::Null => return Err(cx.err("classes", "missing; expected the class folders")),
            other => {
                return Err(cx.err(
                    "(top level)",
                    format!("expected a mapping, found {}", kind(other)),
                ))
            }
        };
        match root.get("experiment") {
            Some(Value::String(s)) if s == "data_preparation" => {}
            None => return Err(cx.err("experiment", "missing; expected data_preparation")),
            Some(v) => {
                return Err(cx.err(
                    "experiment",
                    format!("expected data_preparation, found {}", show(v)),
                ))
            }
        }
        let classes = cx.classes(root.get("classes"))?;
        let split = match root.get("split") {
            Some(Value::Mapping(m)) => m,
            None => return Err(cx.err("split", "missing; expected the split settings")),
            Some(v) => {
                return Err(cx.err("split", format!("expected a mapping, found {}", kind(v))))
            }
        };
        cx.split(split, classes)
    }
}

/// What messages need: the file's name.
struct Cx<'a> {
    path: &'a Path,
}

impl Cx<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn classes(&self, v: Option<&Value>) -> Result<Vec<ClassSpec>, ConfigError> {
        let map = match v {
            Some(Value::Mapping(m)) if !m.is_empty() => m,
            None => return Err(self.err("classes", "missing; expected the class folders")),
            Some(v) => {
                return Err(self.err(
                    "classes",
                    format!(
                        "expected a non-empty mapping of class name to {{path, label}}, found {}",
                        show(v)
                    ),
                ))
            }
        };
        let out = map
            .iter()
            .map(|(name, entry)| self.class(name, entry))
            .collect::<Result<Vec<ClassSpec>, ConfigError>>()?;
        self.labels_unique_and_dense(&out)?;
        Ok(out)
    }

    /// One `classes.<name>` entry: its folder and label.
    fn class(&self, name: &Value, entry: &Value) -> Result<ClassSpec, ConfigError> {
        let name = match name {
            Value::String(s) => s.clone(),
            other => {
                return Err(self.err(
                    "classes",
                    format!("class names must be strings, found {}", show(other)),
                ))
            }
        };
        let key = |k: &str| format!("classes.{name}.{k}");
        let entry = match entry {
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(
                    &format!("classes.{name}"),
                    format!(
                        "expected a mapping with path and label, found {}",
                        show(other)
                    ),
                ))
            }
        };
        if let Some(extra) = entry
            .keys()
            .find(|k| !matches!(k.as_str(), Some("path" | "label")))
        {
            return Err(self.err(
                &format!("classes.{name}"),
                format!(
                    "unknown key {}; only path and label are allowed",
                    show(extra)
                ),
            ));
        }
        let path = match entry.get("path") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None => return Err(self.err(&key("path"), "missing; expected the class folder")),
            Some(v) => {
                return Err(self.err(
                    &key("path"),
                    format!("expected a non-empty string, found {}", show(v)),
                ))
            }
        };
        let label = match entry.get("label") {
            Some(Value::Number(n)) => n.as_u64().filter(|&l| l < u64::from(u32::MAX)),
            None => return Err(self.err(&key("label"), "missing; expected an integer from 0")),
            Some(_) => None,
        };
        let Some(label) = label else {
            return Err(self.err(
                &key("label"),
                format!(
                    "expected a non-negative integer, found {}",
                    show(entry.get("label").unwrap_or(&Value::Null))
                ),
            ));
        };
        Ok(ClassSpec {
            name,
            path,
            label: label as u32,
        })
    }

    /// Labels 0 to n-1, one per class, as the user's training code indexes them.
    fn labels_unique_and_dense(&self, out: &[ClassSpec]) -> Result<(), ConfigError> {
        let mut labels: Vec<u32> = out.iter().map(|c| c.label).collect();
        labels.sort_unstable();
        if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
            let names: Vec<&str> = out
                .iter()
                .filter(|c| c.label == w[0])
                .map(|c| c.name.as_str())
                .collect();
            return Err(self.err(
                "classes",
                format!(
                    "label {} is used by {}; labels must be unique",
                    w[0],
                    names.join(" and ")
                ),
            ));
        }
        if labels.iter().enumerate().any(|(i, &l)| l as usize != i) {
            let shown: Vec<String> = labels.iter().map(u32::to_string).collect();
            return Err(self.err(
                "classes",
                format!(
                    "labels must be 0 to {} (one per class), found {}",
                    out.len() - 1,
                    shown.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn split(&self, m: &Mapping, classes: Vec<ClassSpec>) -> Result<PrepConfig, ConfigError> {
        let get = |k: &str| m.get(k).filter(|v| !v.is_null());
        self.known_split_keys(m)?;
        let kfold = match get("mode") {
            None => false,
            Some(Value::String(s)) if s == "ratio" => false,
            Some(Value::String(s)) if s == "kfold" => true,
            Some(v) => {
                return Err(self.err(
                    "split.mode",
                    format!("expected ratio or kfold, found {}", show(v)),
                ))
            }
        };
        let save_dir = self.string(get("save_dir"), "split.save_dir", "the output folder")?;
        let split_file = self.string(
            get("split_file"),
            "split.split_file",
            "the split file's name",
        )?;
        if !split_file.ends_with(".json") {
            return Err(self.err(
                "split.split_file",
                format!("must end in .json, found {}", show_str(&split_file)),
            ));
        }
        let force = match get("force") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(self.err(
                    "split.force",
                    format!("expected true or false, found {}", show(v)),
                ))
            }
        };
        let (mode, unused_keys) = if kfold {
            (self.kfold(&get, &split_file)?, RATIO_KEYS)
        } else {
            if split_file.contains('{') || split_file.contains('}') {
                return Err(self.err(
                    "split.split_file",
                    format!(
                        "braces are only for {{index}} in mode kfold, found {}",
                        show_str(&split_file)
                    ),
                ));
            }
            (self.ratio(&get)?, KFOLD_KEYS)
        };
        let group_by = match m.get("group_by") {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.group_by(v)?),
        };
        if group_by.is_some() {
            self.seeds_fit_chacha(&mode)?;
        }
        self.names_fit(&save_dir, &split_file, &mode)?;
        let unused = unused_keys
            .iter()
            .filter(|k| m.contains_key(**k))
            .map(|k| format!("split.{k}"))
            .collect();
        let warnings = shared_folders(&classes);
        Ok(PrepConfig {
            classes,
            mode,
            save_dir,
            split_file,
            force,
            group_by,
            unused,
            warnings,
        })
    }

    /// Refuses a key of `split` that neither mode reads.
    fn known_split_keys(&self, m: &Mapping) -> Result<(), ConfigError> {
        for k in m.keys() {
            let known = k.as_str().is_some_and(|k| {
                COMMON_KEYS.contains(&k) || RATIO_KEYS.contains(&k) || KFOLD_KEYS.contains(&k)
            });
            if !known {
                return Err(self.err(
                    "split",
                    format!(
                        "unknown key {}; expected one of {}",
                        show(k),
                        COMMON_KEYS
                            .iter()
                            .chain(&RATIO_KEYS)
                            .chain(&KFOLD_KEYS)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses, before any folder is made, output names no file system takes: a NUL byte
    /// (in `save_dir` or `split_file`), or a file name longer than 255 bytes once `{index}`
    /// is its largest value (file systems' NAME_MAX).
    fn names_fit(&self, save_dir: &str, split_file: &str, mode: &Mode) -> Result<(), ConfigError> {
        for (key, value) in [
            ("split.save_dir", save_dir),
            ("split.split_file", split_file),
        ] {
            if value.contains('\0') {
                return Err(self.err(
                    key,
                    format!(
                        "contains a NUL byte, which no path can hold: {}",
                        show_str(value)
                    ),
                ));
            }
        }
        let largest = match mode {
            Mode::KFold {
                n_folds, n_repeats, ..
            } => split_file.replacen(
                "{index}",
                &(u64::from(*n_folds) * u64::from(*n_repeats) - 1).to_string(),
                1,
            ),
            Mode::Ratio { .. } => split_file.to_owned(),
        };
        let long = std::path::Path::new(&largest)
            .iter()
            .chain(std::path::Path::new(save_dir).iter())
            .map(|part| part.len())
            .max()
            .unwrap_or(0);
        if long > 255 {
            return Err(self.err(
                if std::path::Path::new(save_dir).iter().any(|p| p.len() > 255) {
                    "split.save_dir"
                } else {
                    "split.split_file"
                },
                format!(
                    "makes a file or folder name of {long} bytes; file systems take at most 255"
                ),
            ));
        }
        Ok(())
    }

    /// With groups the seed keys our ChaCha streams, which take 64 unsigned bits.
    fn seeds_fit_chacha(&self, mode: &Mode) -> Result<(), ConfigError> {
        let bad = |s: i128| u64::try_from(s).is_err();
        let expected =
            "with group_by, expected a non-negative integer (it seeds the group placement)";
        match mode {
            Mode::Ratio { seed: Some(s), .. } if bad(*s) => {
                Err(self.err("split.seed", format!("{expected}, found {s}")))
            }
            Mode::KFold { repeat_seeds, .. } => match repeat_seeds.iter().position(|&s| bad(s)) {
                Some(i) => Err(self.err(
                    &format!("split.repeat_seeds[{i}]"),
                    format!("{expected}, found {}", repeat_seeds[i]),
                )),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn ratio<'v>(&self, get: &impl Fn(&str) -> Option<&'v Value>) -> Result<Mode, ConfigError> {
        let seed = match get("seed") {
            None => None,
            Some(v) => Some(self.integer(v, "split.seed", "an integer or null")?),
        };
        let train = self.number(get("train_ratio"), "split.train_ratio", false)?;
        let val = self.number(get("val_ratio"), "split.val_ratio", false)?;
        let test = self.number(get("test_ratio"), "split.test_ratio", true)?;
        let sum = train.value + val.value + test.value;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(self.err(
                "split",
                format!(
                    "train_ratio + val_ratio + test_ratio must be 1 (within 1e-6), found {}",
                    crate::text::number(sum)
                ),
            ));
        }
        Ok(Mode::Ratio {
            seed,
            train,
            val,
            test,
        })
    }

    fn kfold<'v>(
        &self,
        get: &impl Fn(&str) -> Option<&'v Value>,
        split_file: &str,
    ) -> Result<Mode, ConfigError> {
        let count = |key: &str, min: u64| -> Result<u32, ConfigError> {
            let v = get(key.strip_prefix("split.").unwrap_or(key));
            match v.and_then(Value::as_u64) {
                Some(n) if n >= min && n <= MAX_SPLITS => Ok(n as u32),
                _ => Err(self.err(
                    key,
                    format!(
                        "expected an integer from {min} to {MAX_SPLITS}, found {}",
                        v.map_or_else(|| "nothing".into(), show)
                    ),
                )),
            }
        };
        let n_folds = count("split.n_folds", 2)?;
        let n_repeats = count("split.n_repeats", 1)?;
        if u64::from(n_folds) * u64::from(n_repeats) > MAX_SPLITS {
            return Err(self.err(
                "split",
                format!(
                    "n_folds * n_repeats is {}, more split files than the {MAX_SPLITS} allowed",
                    u64::from(n_folds) * u64::from(n_repeats)
                ),
            ));
        }
        let seeds = match get("repeat_seeds") {
            Some(Value::Sequence(s)) if s.len() == n_repeats as usize => s,
            other => {
                return Err(self.err(
                    "split.repeat_seeds",
                    format!(
                    "expected a list of {n_repeats} distinct integers (one per repeat), found {}",
                    other.map_or_else(|| "nothing".into(), show)
                ),
                ))
            }
        };
        let mut repeat_seeds = Vec::with_capacity(seeds.len());
        for (i, s) in seeds.iter().enumerate() {
            let key = format!("split.repeat_seeds[{i}]");
            let s = self.integer(s, &key, "an integer")?;
            if let Some(j) = repeat_seeds.iter().position(|&t| t == s) {
                return Err(self.err(
                    &key,
                    format!("{s} repeats repeat_seeds[{j}]; seeds must be distinct"),
                ));
            }
            repeat_seeds.push(s);
        }
        let val_fraction = self.number(get("val_fraction"), "split.val_fraction", false)?;
        let rest = split_file.replacen("{index}", "", 1);
        if !split_file.contains("{index}") || rest.contains('{') || rest.contains('}') {
            return Err(self.err(
                "split.split_file",
                format!(
                    "must contain {{index}} once and no other braces in mode kfold (it becomes 0 to {}), found {}",
                    n_folds * n_repeats - 1,
                    show_str(split_file)
                ),
            ));
        }
        Ok(Mode::KFold {
            n_folds,
            n_repeats,
            repeat_seeds,
            val_fraction,
        })
    }

    fn group_by(&self, v: &Value) -> Result<GroupBy, ConfigError> {
        let expected = "expected {regex: PATTERN} or {csv: FILE, path_column: C, group_column: G}";
        let Value::Mapping(m) = v else {
            return Err(self.err("split.group_by", format!("{expected}, found {}", show(v))));
        };
        let keys: Vec<&str> = m.keys().filter_map(Value::as_str).collect();
        let string = |k: &str| self.string(m.get(k), &format!("split.group_by.{k}"), "a string");
        if keys == ["regex"] {
            let pattern = string("regex")?;
            let re = regex::Regex::new(&pattern).map_err(|e| {
                // The crate's message draws a caret under the pattern over several lines;
                // its last line says what is wrong.
                let text = e.to_string();
                let what = text.lines().last().unwrap_or_default();
                self.err(
                    "split.group_by.regex",
                    format!(
                        "not a valid regex ({}): {}",
                        what.strip_prefix("error: ").unwrap_or(what),
                        show_str(&pattern)
                    ),
                )
            })?;
            if !re.capture_names().any(|n| n == Some("group")) {
                return Err(self.err(
                    "split.group_by.regex",
                    format!(
                        "needs a named group (?P<group>...) that captures the group id, found {}",
                        show_str(&pattern)
                    ),
                ));
            }
            return Ok(GroupBy::Regex(re));
        }
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if sorted == ["csv", "group_column", "path_column"] && keys.len() == m.len() {
            return Ok(GroupBy::Csv {
                file: PathBuf::from(string("csv")?),
                path_column: string("path_column")?,
                group_column: string("group_column")?,
            });
        }
        Err(self.err("split.group_by", format!("{expected}, found {}", show(v))))
    }

    fn string(&self, v: Option<&Value>, key: &str, what: &str) -> Result<String, ConfigError> {
        match v {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            None => Err(self.err(key, format!("missing; expected {what}"))),
            Some(v) => Err(self.err(
                key,
                format!("expected a non-empty string, found {}", show(v)),
            )),
        }
    }

    /// Seeds: any integer YAML gives (64 bits); Python would take larger ones, which the
    /// user's files do not hold.
    fn integer(&self, v: &Value, key: &str, what: &str) -> Result<i128, ConfigError> {
        match v {
            Value::Number(n) if n.is_i64() => Ok(i128::from(n.as_i64().unwrap_or_default())),
            Value::Number(n) if n.is_u64() => Ok(i128::from(n.as_u64().unwrap_or_default())),
            _ => Err(self.err(key, format!("expected {what}, found {}", show(v)))),
        }
    }

    /// A ratio in (0, 1), or [0, 1) when `zero_ok`.
    fn number(&self, v: Option<&Value>, key: &str, zero_ok: bool) -> Result<Number, ConfigError> {
        let range = if zero_ok { "[0, 1)" } else { "(0, 1)" };
        let n = match v {
            Some(Value::Number(n)) => Number {
                value: n.as_f64().unwrap_or(f64::NAN),
                integer: !n.is_f64(),
            },
            None => return Err(self.err(key, format!("missing; expected a number in {range}"))),
            Some(v) => {
                return Err(self.err(
                    key,
                    format!("expected a number in {range}, found {}", show(v)),
                ))
            }
        };
        let low_ok = if zero_ok {
            n.value >= 0.0
        } else {
            n.value > 0.0
        };
        if !(low_ok && n.value < 1.0) {
            return Err(self.err(
                key,
                format!(
                    "expected a number in {range}, found {}",
                    crate::text::number(n.value)
                ),
            ));
        }
        Ok(n)
    }
}

/// A YAML value as a message shows it: scalars as written, collections by kind.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => show_str(s),
        other => kind(other).into(),
    }
}

fn show_str(s: &str) -> String {
    format!("\"{}\"", crate::text::escape(s))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
