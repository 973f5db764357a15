//! `data.synthetic_augmentation`: generated images from a sample-selection file added to
//! the real training list, or replacing one class's real images (the user's classifier
//! configs: TSTR and "dose ladder" experiments).
//!
//! Read by hand from the YAML value rather than derived, so that each refusal is their
//! validator's (`src/experiments/classifier/config.py`), key for key: `mode` one of
//! `augment`/`replace_minority`, `replace_class` a non-negative integer (not a boolean) in
//! `replace_minority` mode, `limit.mode` one of null/`max_ratio`/`max_samples` with its
//! value present and positive. Beyond theirs, and for the same reason as `data.balancing`:
//! an unknown key is refused (a typo such as `enabeld` must not silently train on the real
//! images alone), `enabled` must be a boolean, and `max_ratio` must be finite (theirs
//! accepts `.inf` and then fails on `int(inf)`).

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

/// How the synthetic images enter the training list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntheticMode {
    /// All real entries, then the synthetic ones.
    Augment,
    /// The real entries of this class removed; only its synthetic entries added (TSTR).
    ReplaceMinority { replace_class: u64 },
}

/// How many synthetic entries are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// All of them.
    None,
    /// `int(real_size * ratio)`, drawn with `random.Random(seed).sample`; `real_size` is the
    /// real part after any removal.
    MaxRatio(f64),
    /// The first N of the selection file (ranked best first: nested dose ladders).
    MaxSamples(u64),
}

/// An enabled `data.synthetic_augmentation`, validated, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticAugmentation {
    /// The sample-selection JSON, as written in the config (resolved against the current
    /// directory, as their loader does).
    pub split_file: String,
    pub mode: SyntheticMode,
    pub limit: Limit,
    /// `replace_class` set in `augment` mode, where it changes nothing (warned about).
    pub ignored_replace_class: bool,
}

/// The effective section as a manifest records it.
#[derive(Serialize)]
struct Record<'a> {
    enabled: bool,
    split_file: &'a str,
    mode: &'a str,
    replace_class: Option<u64>,
    limit: LimitRecord,
}

#[derive(Serialize)]
struct LimitRecord {
    mode: Option<&'static str>,
    max_ratio: Option<f64>,
    max_samples: Option<u64>,
}

impl SyntheticAugmentation {
    /// `augment` or `replace_minority`.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            SyntheticMode::Augment => "augment",
            SyntheticMode::ReplaceMinority { .. } => "replace_minority",
        }
    }

    /// The class whose real entries are replaced, in `replace_minority` mode.
    pub fn replace_class(&self) -> Option<u64> {
        match self.mode {
            SyntheticMode::ReplaceMinority { replace_class } => Some(replace_class),
            SyntheticMode::Augment => None,
        }
    }

    /// The section with its defaults filled in, as the manifest records it (and `verify`
    /// reads it back with [`parse`]).
    pub fn record(&self) -> serde_json::Value {
        let limit = match self.limit {
            Limit::None => LimitRecord {
                mode: None,
                max_ratio: None,
                max_samples: None,
            },
            Limit::MaxRatio(r) => LimitRecord {
                mode: Some("max_ratio"),
                max_ratio: Some(r),
                max_samples: None,
            },
            Limit::MaxSamples(n) => LimitRecord {
                mode: Some("max_samples"),
                max_ratio: None,
                max_samples: Some(n),
            },
        };
        serde_json::to_value(Record {
            enabled: true,
            split_file: &self.split_file,
            mode: self.mode_name(),
            replace_class: self.replace_class(),
            limit,
        })
        .expect("plain data serialises")
    }
}

const KEYS: [&str; 5] = ["enabled", "split_file", "mode", "replace_class", "limit"];
const LIMIT_KEYS: [&str; 3] = ["mode", "max_ratio", "max_samples"];

/// Reads the section. `Ok(None)` when it is missing, null or not enabled; `Err` holds the
/// dotted key below `data.synthetic_augmentation` (empty for the section itself) and what
/// was expected.
pub fn parse(section: Option<&Value>) -> Result<Option<SyntheticAugmentation>, (String, String)> {
    let m = match section {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Mapping(m)) => m,
        Some(other) => {
            return Err((
                String::new(),
                format!("expected a mapping, found {}", describe(other)),
            ))
        }
    };
    unknown_keys(m, &KEYS, "")?;
    let enabled = match m.get("enabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err((
                "enabled".into(),
                format!("expected true or false, found {}", describe(other)),
            ))
        }
    };
    let limit_section = match m.get("limit") {
        None => None,
        Some(Value::Mapping(l)) => {
            unknown_keys(l, &LIMIT_KEYS, "limit.")?;
            Some(l)
        }
        Some(Value::Null) if !enabled => None,
        Some(other) => {
            return Err((
                "limit".into(),
                format!(
                    "expected a mapping with mode, max_ratio and max_samples, found {}",
                    describe(other)
                ),
            ))
        }
    };
    if !enabled {
        return Ok(None);
    }
    let split_file = match m.get("split_file") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        other => {
            return Err((
                "split_file".into(),
                format!(
                    "expected the path of a sample-selection JSON (a non-empty string) because synthetic augmentation is enabled, found {}",
                    other.map_or("nothing".into(), describe)
                ),
            ))
        }
    };
    let replace_value = m.get("replace_class");
    let mode = mode(m.get("mode"), replace_value)?;
    let ignored_replace_class =
        mode == SyntheticMode::Augment && replace_value.is_some_and(|v| !v.is_null());
    let limit = limit(limit_section)?;
    Ok(Some(SyntheticAugmentation {
        split_file,
        mode,
        limit,
        ignored_replace_class,
    }))
}

/// `mode`, with `replace_class` when it is `replace_minority`.
fn mode(
    mode_value: Option<&Value>,
    replace_value: Option<&Value>,
) -> Result<SyntheticMode, (String, String)> {
    Ok(match mode_value.map(|v| (v, v.as_str())) {
        None | Some((_, Some("augment"))) => SyntheticMode::Augment,
        Some((_, Some("replace_minority"))) => match replace_value.and_then(Value::as_u64) {
            Some(replace_class) => SyntheticMode::ReplaceMinority { replace_class },
            None => {
                return Err((
                    "replace_class".into(),
                    format!(
                        "expected a non-negative integer (the label of the class to replace) because mode is replace_minority, found {}",
                        replace_value.map_or("nothing".into(), describe)
                    ),
                ))
            }
        },
        Some((v, _)) => {
            return Err((
                "mode".into(),
                format!("expected augment or replace_minority, found {}", describe(v)),
            ))
        }
    })
}

/// `limit.mode` and the number it reads.
fn limit(limit_section: Option<&Mapping>) -> Result<Limit, (String, String)> {
    let get = |key: &str| limit_section.and_then(|l| l.get(key));
    Ok(match get("mode").map(|v| (v, v.as_str())) {
        None | Some((Value::Null, _)) => Limit::None,
        Some((_, Some("max_ratio"))) => match get("max_ratio") {
            Some(Value::Number(n)) if n.as_f64().is_some_and(|r| r > 0.0 && r.is_finite()) => {
                Limit::MaxRatio(n.as_f64().expect("checked"))
            }
            other => {
                return Err((
                    "limit.max_ratio".into(),
                    format!(
                    "expected a positive finite number because limit.mode is max_ratio, found {}",
                    other.map_or("nothing".into(), describe)
                ),
                ))
            }
        },
        Some((_, Some("max_samples"))) => match get("max_samples") {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
                Limit::MaxSamples(n.as_u64().expect("checked"))
            }
            other => {
                return Err((
                    "limit.max_samples".into(),
                    format!(
                        "expected a positive integer because limit.mode is max_samples, found {}",
                        other.map_or("nothing".into(), describe)
                    ),
                ))
            }
        },
        Some((v, _)) => {
            return Err((
                "limit.mode".into(),
                format!(
                    "expected null, max_ratio or max_samples, found {}",
                    describe(v)
                ),
            ))
        }
    })
}

fn unknown_keys(m: &Mapping, known: &[&str], prefix: &str) -> Result<(), (String, String)> {
    for k in m.keys() {
        let name = k.as_str().unwrap_or_default();
        if !known.contains(&name) {
            return Err((
                format!("{prefix}{}", describe_key(k)),
                format!("unknown key; expected one of {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn describe_key(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => describe(other),
    }
}

/// A YAML value as a message shows it.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => describe(&t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Option<SyntheticAugmentation>, String> {
        let v: Value = serde_yaml_ng::from_str(text).unwrap();
        parse(Some(&v)).map_err(|(k, m)| format!("{k}: {m}"))
    }

    #[test]
    fn the_users_example_section_is_disabled() {
        let example = "enabled: false\nsplit_file: null\nmode: augment\nreplace_class: null\nlimit:\n  mode: null\n  max_ratio: null\n  max_samples: null\n";
        assert_eq!(read(example).unwrap(), None);
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some(&Value::Null)).unwrap(), None);
    }

    #[test]
    fn modes_and_limits_are_read_with_defaults() {
        let s = read("enabled: true\nsplit_file: sel.json\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.mode, SyntheticMode::Augment);
        assert_eq!(s.limit, Limit::None);
        let s = read("enabled: true\nsplit_file: sel.json\nmode: replace_minority\nreplace_class: 1\nlimit: {mode: max_ratio, max_ratio: 0.5}\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.mode, SyntheticMode::ReplaceMinority { replace_class: 1 });
        assert_eq!(s.limit, Limit::MaxRatio(0.5));
        assert_eq!(
            s.record(),
            serde_json::json!({"enabled": true, "split_file": "sel.json", "mode": "replace_minority", "replace_class": 1, "limit": {"mode": "max_ratio", "max_ratio": 0.5, "max_samples": null}})
        );
        let s = read("enabled: true\nsplit_file: sel.json\nreplace_class: 0\nlimit: {mode: max_samples, max_samples: 30, max_ratio: null}\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.limit, Limit::MaxSamples(30));
        assert!(s.ignored_replace_class);
        // An integer ratio is a number, as in Python.
        let s = read("enabled: true\nsplit_file: s.json\nlimit: {mode: max_ratio, max_ratio: 2}\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.limit, Limit::MaxRatio(2.0));
    }

    /// Their validator's refusals (and ours for typos), one line each naming the key.
    #[test]
    fn invalid_sections_are_refused_naming_the_key() {
        let on = "enabled: true\nsplit_file: s.json\n";
        let cases = [
            ("enabled: true\n", "split_file: expected the path of a sample-selection JSON (a non-empty string) because synthetic augmentation is enabled, found nothing"),
            ("enabled: true\nsplit_file: ''\n", "split_file: expected the path of a sample-selection JSON (a non-empty string) because synthetic augmentation is enabled, found \"\""),
            ("enabled: true\nsplit_file: null\n", "split_file: expected the path of a sample-selection JSON (a non-empty string) because synthetic augmentation is enabled, found null"),
            (&format!("{on}mode: swap\n"), "mode: expected augment or replace_minority, found \"swap\""),
            (&format!("{on}mode: null\n"), "mode: expected augment or replace_minority, found null"),
            (&format!("{on}mode: replace_minority\n"), "replace_class: expected a non-negative integer (the label of the class to replace) because mode is replace_minority, found nothing"),
            (&format!("{on}mode: replace_minority\nreplace_class: -1\n"), "replace_class: expected a non-negative integer (the label of the class to replace) because mode is replace_minority, found -1"),
            (&format!("{on}mode: replace_minority\nreplace_class: true\n"), "replace_class: expected a non-negative integer (the label of the class to replace) because mode is replace_minority, found true"),
            (&format!("{on}mode: replace_minority\nreplace_class: 1.0\n"), "replace_class: expected a non-negative integer (the label of the class to replace) because mode is replace_minority, found 1.0"),
            (&format!("{on}limit: {{mode: top}}\n"), "limit.mode: expected null, max_ratio or max_samples, found \"top\""),
            (&format!("{on}limit: {{mode: max_ratio}}\n"), "limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found nothing"),
            (&format!("{on}limit: {{mode: max_ratio, max_ratio: null}}\n"), "limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found null"),
            (&format!("{on}limit: {{mode: max_ratio, max_ratio: -0.5}}\n"), "limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found -0.5"),
            (&format!("{on}limit: {{mode: max_ratio, max_ratio: .inf}}\n"), "limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found .inf"),
            (&format!("{on}limit: {{mode: max_ratio, max_ratio: true}}\n"), "limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found true"),
            (&format!("{on}limit: {{mode: max_samples, max_samples: 0}}\n"), "limit.max_samples: expected a positive integer because limit.mode is max_samples, found 0"),
            (&format!("{on}limit: {{mode: max_samples, max_samples: 2.5}}\n"), "limit.max_samples: expected a positive integer because limit.mode is max_samples, found 2.5"),
            (&format!("{on}limit: {{mode: max_samples, max_samples: null}}\n"), "limit.max_samples: expected a positive integer because limit.mode is max_samples, found null"),
            (&format!("{on}limit: null\n"), "limit: expected a mapping with mode, max_ratio and max_samples, found null"),
            (&format!("{on}limit: {{mode: null, max_sample: 3}}\n"), "limit.max_sample: unknown key; expected one of mode, max_ratio, max_samples"),
            ("enabeld: true\n", "enabeld: unknown key; expected one of enabled, split_file, mode, replace_class, limit"),
            ("enabled: 'yes'\n", "enabled: expected true or false, found \"yes\""),
        ];
        for (text, want) in cases {
            assert_eq!(read(text).unwrap_err(), want, "{text}");
        }
        let list: Value = serde_yaml_ng::from_str("[1]").unwrap();
        assert_eq!(
            parse(Some(&list)).unwrap_err(),
            (String::new(), "expected a mapping, found a list".into())
        );
    }
}
