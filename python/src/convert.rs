//! Python values into the library's: `balance(overrides={...})`.

use balance_split::config::overrides::{Override, Overrides};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::errors::bad;

/// `{"compute.seed": 3, ...}` as the overrides `--compute.seed 3 ...` give.
pub fn overrides(d: &Bound<'_, PyDict>) -> PyResult<Overrides> {
    let mut out = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        let key: String = k.extract().map_err(|_| {
            bad(format!(
                "overrides: keys are dotted config keys (strings), found {}",
                k.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            ))
        })?;
        let value = json(&v, &key, 0)?;
        out.push(Override::from_json(&key, &value).map_err(|e| bad(e.0))?);
    }
    Ok(Overrides(out))
}

/// A config value: None, bool, int, float, str, and lists, tuples and dicts of them.
fn json(v: &Bound<'_, PyAny>, key: &str, depth: usize) -> PyResult<Value> {
    if depth > 64 {
        return Err(bad(format!(
            "overrides[{key:?}]: nested deeper than 64 levels"
        )));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.cast::<PyInt>().is_ok() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(bad(format!(
            "overrides[{key:?}]: an integer too large for a config value"
        )));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| {
                bad(format!(
                    "overrides[{key:?}]: expected a finite number, found {}",
                    f.value()
                ))
            });
    }
    if v.cast::<PyString>().is_ok() {
        return Ok(Value::String(v.extract::<String>()?));
    }
    if v.cast::<PyList>().is_ok() || v.cast::<PyTuple>().is_ok() {
        return v
            .try_iter()?
            .map(|item| json(&item?, key, depth + 1))
            .collect::<PyResult<Vec<Value>>>()
            .map(Value::Array);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, item) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| bad(format!("overrides[{key:?}]: dict keys must be strings")))?;
            m.insert(k, json(&item, key, depth + 1)?);
        }
        return Ok(Value::Object(m));
    }
    Err(bad(format!(
        "overrides[{key:?}]: expected None, a bool, a number, a string, a list or a dict, found {}",
        v.get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string())
    )))
}
