//! A view of the user's YAML that reads typed values by dotted key and words every failure
//! as `file: key: message`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use crate::config::ConfigError;

/// The user's keys read here; every other key under `logging` and
/// `training.performance` is theirs alone.
pub(super) const USED_ELSEWHERE: [&str; 3] = [
    "logging.metrics.tensorboard.enabled",
    "logging.metrics.tensorboard.log_images",
    "training.performance.use_amp",
];

/// The dotted leaf keys under `section` that are set and not read here.
pub(super) fn ignored_keys(d: &Doc, section: &str, out: &mut Vec<String>) {
    pub(super) fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let key = format!("{prefix}.{}", k.as_str().unwrap_or("?"));
                    walk(v, &key, out);
                }
            }
            _ if USED_ELSEWHERE.contains(&prefix) => {}
            _ => out.push(prefix.to_owned()),
        }
    }
    if let Some(v) = d.value(section) {
        walk(v, section, out);
    }
}

/// A view of the YAML tree that reads typed values by dotted key and words every failure
/// as `file: key: message`.
pub(super) struct Doc<'a> {
    pub(super) root: Value,
    pub(super) path: &'a Path,
}

impl Doc<'_> {
    pub(super) fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The value at `key`, `None` when it or a parent is absent or null.
    pub(super) fn value(&self, key: &str) -> Option<&Value> {
        let mut v = &self.root;
        for part in key.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    pub(super) fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.value(key)
            .map(|v| {
                serde_yaml_ng::from_value(v.clone()).map_err(|e| {
                    let message = crate::config::yaml::clarify(&e.to_string());
                    self.invalid(key, format!("{message}, found {}", show(v)))
                })
            })
            .transpose()
    }

    pub(super) fn get<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.opt(key)?.unwrap_or(default))
    }

    pub(super) fn positive(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        let n = self.get(key, default)?;
        if n == 0 {
            return Err(self.invalid(key, "expected a positive integer, found 0"));
        }
        Ok(n)
    }

    /// A positive integer no larger than `max`: a size read from the config is bounded
    /// before anything is allocated for it.
    pub(super) fn positive_at_most(
        &self,
        key: &str,
        default: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        let n = self.positive(key, default)?;
        if n > max {
            return Err(self.invalid(key, format!("expected at most {max}, found {n}")));
        }
        Ok(n)
    }

    /// A number in `range` (inclusive).
    pub(super) fn number(
        &self,
        key: &str,
        default: f64,
        lo: f64,
        hi: f64,
    ) -> Result<f64, ConfigError> {
        let x = self.get(key, default)?;
        if !(x.is_finite() && (lo..=hi).contains(&x)) {
            return Err(self.invalid(key, format!("expected a number in [{lo}, {hi}], found {x}")));
        }
        Ok(x)
    }

    /// An interval in epochs where `null` or 0 disables.
    pub(super) fn interval(
        &self,
        key: &str,
        default: Option<usize>,
    ) -> Result<Option<usize>, ConfigError> {
        let n = if self.has(key) {
            self.opt::<usize>(key)?
        } else {
            default
        };
        Ok(n.filter(|&n| n > 0))
    }

    /// Whether `key` is written at all (possibly as null).
    pub(super) fn has(&self, key: &str) -> bool {
        let mut v = &self.root;
        for part in key.split('.') {
            match v.get(part) {
                Some(x) => v = x,
                None => return false,
            }
        }
        true
    }

    pub(super) fn path_buf(&self, key: &str, default: &str) -> Result<PathBuf, ConfigError> {
        Ok(PathBuf::from(self.get::<String>(key, default.to_owned())?))
    }
}

/// A YAML scalar as the user wrote it, for messages.
pub(super) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().replace('\n', " "))
            .unwrap_or_else(|_| "?".into()),
    }
}
