//! The user's command-line overrides: `CONFIG --dotted.key value ...`, as their pipeline
//! driver runs every experiment (seeds and balancing strategies as overrides).
//!
//! Over 500 lines on purpose: their override rules and the Python-literal reader they
//! depend on (`ast.literal_eval`'s subset) are one contract, tested together.
//!
//! Their rules, from their `parse_override_args`, `infer_type`, `validate_override_keys`
//! and `merge_configs`:
//!
//! - each override is `--key value` (two arguments); a value starting with `--` is taken
//!   for the next key, so that override has no value;
//! - the value's type, first match wins: quoted (`'42'`, `"true"`: the string inside),
//!   `true`/`false` (any case), `null`/`none` (any case), Python's `int()`, Python's
//!   `float()` when finite (`inf` and `nan` stay strings), a Python list or dict literal
//!   (`ast.literal_eval`, when the value starts with `[` or `{`), else the string itself;
//! - all overrides are first merged into one tree (a later key wins; mappings merge), then
//!   every key of that tree must exist in the config, a mapping where the tree has one (a
//!   typo is refused, naming the keys available at that level), then the tree is merged
//!   into the config: mappings key by key, anything else replaced whole.
//!
//! The config is then re-read from the merged document, so every check a config gets, the
//! overridden values get too.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::ConfigError;

/// One `--key value` pair: the dotted key, the value as given, and the value as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub key: String,
    /// The argument as given (for the Python API: the form the user's `serialize_override`
    /// would give), recorded in manifests so a run can be repeated.
    pub raw: String,
    pub value: Value,
}

/// The overrides of one run, in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides(pub Vec<Override>);

/// An override that cannot be read: one line, naming the argument.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct OverrideError(pub String);

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(key, value as written)` in order: what a manifest records.
    pub fn recorded(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|o| (o.key.clone(), o.raw.clone()))
            .collect()
    }

    /// Reads `--key value` pairs (the arguments after the command's own options).
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Overrides, OverrideError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_ref();
            let Some(key) = arg.strip_prefix("--") else {
                return Err(OverrideError(format!(
                    "unexpected argument {arg:?}: an override is --dotted.key value (for example --compute.seed 42)"
                )));
            };
            if key.contains('=') {
                return Err(OverrideError(format!(
                    "override {arg:?}: give the value as its own argument (--{} VALUE), as the user's command line does",
                    key.split('=').next().unwrap_or_default()
                )));
            }
            let value = match args.get(i + 1).map(AsRef::as_ref) {
                Some(v) if !v.starts_with("--") => v,
                _ => {
                    return Err(OverrideError(format!(
                        "override {arg}: missing value; each override is --dotted.key value (for example --compute.seed 42)"
                    )))
                }
            };
            out.push(Override::parse(key, value)?);
            i += 2;
        }
        Ok(Overrides(out))
    }

    /// Takes the overrides out of a command line: from position `from` on, an argument
    /// `--NAME` whose name has a dot (no option of ours has one) and the argument after it
    /// (unless that starts with `--`, which [`Overrides::from_args`] then reports as a
    /// missing value). The other arguments are returned in order, for clap.
    pub fn take_from_args(
        args: Vec<std::ffi::OsString>,
        from: usize,
    ) -> Result<(Vec<std::ffi::OsString>, Overrides), OverrideError> {
        let is_override = |a: &std::ffi::OsString| {
            a.to_str().is_some_and(|s| {
                s.strip_prefix("--")
                    .is_some_and(|name| name.split('=').next().unwrap_or_default().contains('.'))
            })
        };
        let mut rest = Vec::with_capacity(args.len());
        let mut pairs: Vec<String> = Vec::new();
        let mut args = args.into_iter().enumerate().peekable();
        while let Some((i, arg)) = args.next() {
            if i < from || !is_override(&arg) {
                rest.push(arg);
                continue;
            }
            pairs.push(arg.to_string_lossy().into_owned());
            let value = args
                .next_if(|(_, v)| v.to_str().is_some_and(|v| !v.starts_with("--")))
                .map(|(_, v)| v.to_string_lossy().into_owned());
            pairs.extend(value);
        }
        Ok((rest, Overrides::from_args(&pairs)?))
    }

    /// `[[key, raw], ...]` for a manifest's record.
    pub fn record(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|o| serde_json::json!([o.key, o.raw]))
            .collect()
    }

    /// The config text with the overrides merged in, by the user's rules (see the module
    /// documentation). With no overrides, the text as it is.
    pub fn apply(&self, text: &str, path: &Path) -> Result<String, ConfigError> {
        if self.is_empty() {
            return Ok(text.to_owned());
        }
        let syntax = |e: serde_yaml_ng::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut config: Value = serde_yaml_ng::from_str(text).map_err(syntax)?;
        if config.is_null() {
            config = Value::Mapping(Mapping::new());
        }
        let mut tree = Value::Mapping(Mapping::new());
        for o in &self.0 {
            merge(&mut tree, nested(&o.key, o.value.clone()));
        }
        check_keys(&config, &tree, "").map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            key: "overrides".into(),
            message,
        })?;
        merge(&mut config, tree);
        serde_yaml_ng::to_string(&config).map_err(syntax)
    }
}

impl Override {
    /// `--key value` as given on the command line.
    pub fn parse(key: &str, value: &str) -> Result<Override, OverrideError> {
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(OverrideError(format!(
                "override --{key}: expected a dotted key such as data.balancing.upsampling.enabled"
            )));
        }
        let typed =
            infer_type(value).map_err(|m| OverrideError(format!("override --{key}: {m}")))?;
        Ok(Override {
            key: key.to_owned(),
            raw: value.to_owned(),
            value: typed,
        })
    }

    /// An override given as a JSON value (the Python API's `overrides={...}`).
    pub fn from_json(key: &str, value: &serde_json::Value) -> Result<Override, OverrideError> {
        let value = serde_yaml_ng::to_value(value)
            .map_err(|e| OverrideError(format!("override {key}: {e}")))?;
        Override::typed(key, value)
    }

    /// An override given as a typed value; its recorded form is the user's
    /// `serialize_override` of it, which types back to it.
    pub fn typed(key: &str, value: Value) -> Result<Override, OverrideError> {
        let raw = serialize(&value);
        let mut o = Override::parse(key, &raw)?;
        o.value = value;
        Ok(o)
    }
}

/// `a.b.c` and a value -> `{a: {b: {c: value}}}`.
fn nested(key: &str, value: Value) -> Value {
    key.rsplit('.').fold(value, |inner, part| {
        let mut m = Mapping::new();
        m.insert(Value::String(part.to_owned()), inner);
        Value::Mapping(m)
    })
}

/// The user's `merge_configs`: mappings merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot @ Value::Mapping(_)) if v.is_mapping() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// The user's `validate_override_keys`: every key of the override tree exists in the
/// config, and is a mapping there where the tree continues below it.
fn check_keys(config: &Value, tree: &Value, prefix: &str) -> Result<(), String> {
    let (Value::Mapping(c), Value::Mapping(t)) = (config, tree) else {
        return Ok(());
    };
    for (k, v) in t {
        let name = key_text(k);
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let Some(existing) = c.get(k) else {
            let mut available: Vec<String> = c.keys().map(key_text).collect();
            available.sort();
            return Err(format!(
                "unknown config key {full:?} (a typo?); the keys at {} are {}",
                if prefix.is_empty() {
                    "the top level"
                } else {
                    prefix
                },
                if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                }
            ));
        };
        if v.is_mapping() {
            if !existing.is_mapping() {
                return Err(format!(
                    "unknown config key {full:?}: {full} is not a section in the config"
                ));
            }
            check_keys(existing, v, &full)?;
        }
    }
    Ok(())
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

/// The user's `infer_type`: quoted string > bool > None > int > float > list/dict literal >
/// string.
pub fn infer_type(value: &str) -> Result<Value, String> {
    let quoted = value.len() >= 2
        && ((value.starts_with('\'') && value.ends_with('\''))
            || (value.starts_with('"') && value.ends_with('"')));
    if quoted {
        return Ok(Value::String(value[1..value.len() - 1].to_owned()));
    }
    match value.to_lowercase().as_str() {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" | "none" => return Ok(Value::Null),
        _ => {}
    }
    if let Some(n) = python_int(value) {
        return n;
    }
    if let Some(f) = python_float(value) {
        if f.is_finite() {
            return Ok(Value::from(f));
        }
        return Ok(Value::String(value.to_owned()));
    }
    let stripped = value.trim();
    if stripped.starts_with(['[', '{']) {
        match literal::parse(stripped) {
            Ok(v) => return Ok(v),
            Err(literal::Failure::NotALiteral) => {}
            Err(literal::Failure::Unrepresentable(what)) => {
                return Err(format!(
                "{value:?} is a Python {what}, which has no YAML equivalent; use a list or a dict"
            ))
            }
        }
    }
    Ok(Value::String(value.to_owned()))
}

/// Digits with single underscores between them (PEP 515), as `int()` and `float()` accept.
fn digits_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// Python's `int(s)`: surrounding whitespace, a sign, decimal digits (leading zeros
/// allowed). `None` where `int()` raises; an error for an integer past 64 bits, which
/// Python keeps and a YAML number cannot.
fn python_int(s: &str) -> Option<Result<Value, String>> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if !digits_ok(body) {
        return None;
    }
    let digits: String = body.chars().filter(|&c| c != '_').collect();
    let too_big = || Err(format!("{s:?} is an integer too large for a config value"));
    Some(if neg {
        match digits.parse::<u64>() {
            Ok(0) => Ok(Value::from(0)),
            Ok(n) if n <= 1 << 63 => Ok(Value::from((n as i128).wrapping_neg() as i64)),
            _ => too_big(),
        }
    } else {
        digits
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| too_big())
    })
}

/// Python's `float(s)`: whitespace, a sign, `inf`/`infinity`/`nan` in any case, or a
/// decimal with optional fraction and exponent, underscores between digits.
fn python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return t.to_ascii_lowercase().parse::<f64>().ok();
    }
    let (mantissa, exponent) = match lower.find('e') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let int_ok = int_part.is_empty() || digits_ok(int_part);
    let frac_ok = frac.is_none_or(|f| f.is_empty() || digits_ok(f));
    let has_digits = !int_part.is_empty() || frac.is_some_and(|f| !f.is_empty());
    let exp_ok = exponent.is_none_or(|e| digits_ok(e.strip_prefix(['-', '+']).unwrap_or(e)));
    if !(int_ok && frac_ok && has_digits && exp_ok) {
        return None;
    }
    t.replace('_', "").parse::<f64>().ok()
}

/// The user's `serialize_override`: the argument that [`infer_type`] types back to `value`.
pub fn serialize(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && !f.is_finite() => if f.is_nan() {
                "nan"
            } else if f > 0.0 {
                "inf"
            } else {
                "-inf"
            }
            .into(),
            Some(f) if n.is_f64() => crate::text::py_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => {
            if infer_type(s).ok() == Some(Value::String(s.clone())) {
                s.clone()
            } else {
                format!("'{s}'")
            }
        }
        Value::Sequence(_) | Value::Mapping(_) => literal::repr(value),
        Value::Tagged(t) => serialize(&t.value),
    }
}

/// Python literals as `ast.literal_eval` reads them, for list and dict overrides
/// (`--model.initialization.trainable_layers "['label_emb*', 'out.*']"`). Written out here
/// because no crate reads Python literal syntax into a YAML value; it covers what a config
/// can hold: strings, numbers, `True`/`False`/`None`, lists, tuples (as lists) and dicts.
mod literal {
    use serde_yaml_ng::{Mapping, Value};

    pub enum Failure {
        /// `literal_eval` would raise: the user's code keeps the raw string.
        NotALiteral,
        /// A literal (a set, bytes, a complex number) no config value can hold.
        Unrepresentable(&'static str),
    }

    pub fn parse(text: &str) -> Result<Value, Failure> {
        let mut p = Parser {
            s: text.as_bytes(),
            text,
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(Failure::NotALiteral);
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        text: &'a str,
        i: usize,
    }

    /// Nesting beyond this is refused (Python's parser has a limit of its own).
    const MAX_DEPTH: usize = 64;

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.s.get(self.i).copied()
        }

        fn eat(&mut self, c: u8) -> bool {
            if self.peek() == Some(c) {
                self.i += 1;
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, Failure> {
            if depth > MAX_DEPTH {
                return Err(Failure::NotALiteral);
            }
            match self.peek().ok_or(Failure::NotALiteral)? {
                b'[' => {
                    self.i += 1;
                    Ok(Value::Sequence(self.items(b']', depth)?))
                }
                b'(' => {
                    self.i += 1;
                    Ok(Value::Sequence(self.items(b')', depth)?))
                }
                b'{' => {
                    self.i += 1;
                    self.dict_or_set(depth)
                }
                b'\'' | b'"' => self.string(),
                b'b' | b'B' if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) => {
                    Err(Failure::Unrepresentable("bytes literal"))
                }
                _ => self.atom(),
            }
        }

        fn items(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, Failure> {
            let mut out = Vec::new();
            loop {
                if self.eat(close) {
                    return Ok(out);
                }
                out.push(self.value(depth + 1)?);
                if !self.eat(b',') {
                    return if self.eat(close) {
                        Ok(out)
                    } else {
                        Err(Failure::NotALiteral)
                    };
                }
            }
        }

        fn dict_or_set(&mut self, depth: usize) -> Result<Value, Failure> {
            let mut m = Mapping::new();
            if self.eat(b'}') {
                return Ok(Value::Mapping(m));
            }
            loop {
                let k = self.value(depth + 1)?;
                if !self.eat(b':') {
                    // `{a, b}` or `{a}`: a set, if it parses at all.
                    if !self.eat(b'}') {
                        if !self.eat(b',') {
                            return Err(Failure::NotALiteral);
                        }
                        self.items(b'}', depth)?;
                    }
                    return Err(Failure::Unrepresentable("set literal"));
                }
                let v = self.value(depth + 1)?;
                m.insert(k, v);
                if !self.eat(b',') {
                    return if self.eat(b'}') {
                        Ok(Value::Mapping(m))
                    } else {
                        Err(Failure::NotALiteral)
                    };
                }
                if self.eat(b'}') {
                    return Ok(Value::Mapping(m));
                }
            }
        }

        /// A single- or double-quoted string with Python's common escapes.
        fn string(&mut self) -> Result<Value, Failure> {
            let quote = self.s[self.i];
            if self.s[self.i..].starts_with(&[quote; 3]) {
                return Err(Failure::NotALiteral);
            }
            self.i += 1;
            let mut out = String::new();
            let rest = &self.text[self.i..];
            let mut chars = rest.char_indices();
            while let Some((at, c)) = chars.next() {
                match c {
                    c if c as u32 == u32::from(quote) => {
                        self.i += at + 1;
                        return Ok(Value::String(out));
                    }
                    '\n' => return Err(Failure::NotALiteral),
                    '\\' => {
                        let (_, e) = chars.next().ok_or(Failure::NotALiteral)?;
                        match e {
                            '\\' | '\'' | '"' => out.push(e),
                            'n' => out.push('\n'),
                            't' => out.push('\t'),
                            'r' => out.push('\r'),
                            '0' => out.push('\0'),
                            'x' | 'u' | 'U' => {
                                let len = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let hex: String = (0..len)
                                    .filter_map(|_| chars.next().map(|(_, h)| h))
                                    .collect();
                                let code = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| hex.len() == len)
                                    .and_then(char::from_u32)
                                    .ok_or(Failure::NotALiteral)?;
                                out.push(code);
                            }
                            // Python keeps an unknown escape as it is.
                            other => {
                                out.push('\\');
                                out.push(other);
                            }
                        }
                    }
                    c => out.push(c),
                }
            }
            Err(Failure::NotALiteral)
        }

        /// `True`, `False`, `None`, or a number with at most one sign (`literal_eval`
        /// takes `-1`, not `--1` or `-True`).
        fn atom(&mut self) -> Result<Value, Failure> {
            let sign = self
                .s
                .get(self.i)
                .copied()
                .filter(|c| matches!(c, b'-' | b'+'));
            if sign.is_some() {
                self.i += 1;
            }
            let (signed, negative) = (sign.is_some(), sign == Some(b'-'));
            let start = self.i;
            while let Some(&c) = self.s.get(self.i) {
                let exponent_sign = matches!(c, b'+' | b'-')
                    && self.i > start
                    && matches!(self.s[self.i - 1], b'e' | b'E');
                if !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.') || exponent_sign) {
                    break;
                }
                self.i += 1;
            }
            let word = &self.text[start..self.i];
            match (word, signed) {
                ("True", false) => return Ok(Value::Bool(true)),
                ("False", false) => return Ok(Value::Bool(false)),
                ("None", false) => return Ok(Value::Null),
                _ => {}
            }
            if word.ends_with(['j', 'J']) && word.len() > 1 {
                return Err(Failure::Unrepresentable("complex number"));
            }
            let lower = word.to_ascii_lowercase();
            for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
                if let Some(d) = lower.strip_prefix(prefix) {
                    let d = d.strip_prefix('_').unwrap_or(d);
                    if !d.chars().all(|c| c.is_digit(radix) || c == '_') || d.is_empty() {
                        return Err(Failure::NotALiteral);
                    }
                    let n = i128::from_str_radix(&d.replace('_', ""), radix)
                        .map_err(|_| Failure::Unrepresentable("integer past 64 bits"))?;
                    return int_value(if negative { -n } else { n });
                }
            }
            if super::digits_ok(word) {
                // A literal, unlike `int()`, may not have leading zeros: `010` is a syntax
                // error, `00` is not.
                if word.starts_with('0') && word.chars().any(|c| c.is_ascii_digit() && c != '0') {
                    return Err(Failure::NotALiteral);
                }
                let n: i128 = word
                    .replace('_', "")
                    .parse()
                    .map_err(|_| Failure::Unrepresentable("integer past 64 bits"))?;
                return int_value(if negative { -n } else { n });
            }
            // `inf` and `nan` are names, not literals.
            if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                return Err(Failure::NotALiteral);
            }
            let f = super::python_float(word).ok_or(Failure::NotALiteral)?;
            Ok(Value::from(if negative { -f } else { f }))
        }
    }

    fn int_value(n: i128) -> Result<Value, Failure> {
        if let Ok(v) = i64::try_from(n) {
            Ok(Value::from(v))
        } else if let Ok(v) = u64::try_from(n) {
            Ok(Value::from(v))
        } else {
            Err(Failure::Unrepresentable("integer past 64 bits"))
        }
    }

    /// Python's `repr` of a list or dict value (the user's `serialize_override`).
    pub fn repr(v: &Value) -> String {
        match v {
            Value::Null => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => crate::text::py_repr(f),
                _ => n.to_string(),
            },
            Value::String(s) => python_str_repr(s),
            Value::Sequence(items) => {
                format!(
                    "[{}]",
                    items.iter().map(repr).collect::<Vec<_>>().join(", ")
                )
            }
            Value::Mapping(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{}: {}", repr(k), repr(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Tagged(t) => repr(&t.value),
        }
    }

    /// `repr(str)`: single quotes unless the string has one and no double quote.
    fn python_str_repr(s: &str) -> String {
        let quote = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        let mut out = String::from(quote);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push(quote);
        out
    }
}

#[cfg(test)]
mod tests;
