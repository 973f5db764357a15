//! The split file's bytes: what the user's `json.dump(data, f, indent=2,
//! ensure_ascii=False)` writes, key for key, so that a file of ours and one of theirs differ
//! at most in `created_at`.
//!
//! serde_json's pretty printer already lays JSON out as Python's does at indent 2 (the same
//! separators, `[]` and `{}` for empty collections, the same escapes, no final newline);
//! what it does not share is Python's `repr` of floats (`1e-05` where it writes `1e-5`),
//! which [`PyFormatter`] supplies.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::{Map, Value};

use crate::text::py_repr;

/// One `{"path", "label"}` entry.
#[derive(Serialize)]
pub struct Entry<'a> {
    pub path: &'a str,
    pub label: u32,
}

/// A whole split file.
#[derive(Serialize)]
pub struct SplitFile<'a> {
    pub metadata: Map<String, Value>,
    pub train: Vec<Entry<'a>>,
    pub val: Vec<Entry<'a>>,
    pub test: Vec<Entry<'a>>,
}

/// Writes `doc` as the user's Python would.
pub fn write(w: &mut impl Write, doc: &SplitFile<'_>) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, PyFormatter::default());
    doc.serialize(&mut ser).map_err(io::Error::from)
}

/// serde_json's pretty layout at indent 2, with Python's float `repr`.
pub struct PyFormatter(PrettyFormatter<'static>);

impl Default for PyFormatter {
    fn default() -> Self {
        PyFormatter(PrettyFormatter::with_indent(b"  "))
    }
}

impl Formatter for PyFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(py_repr(value).as_bytes())
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `repr()` of each, printed by CPython 3.11.
    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (0.7, "0.7"),
            (0.15, "0.15"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5, "-2.5"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.3333333333333333, "0.3333333333333333"),
        ];
        for (x, want) in cases {
            assert_eq!(py_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn layout_is_pythons_indent_2() {
        let mut metadata = Map::new();
        metadata.insert("seed".into(), Value::from(42));
        metadata.insert("ratio".into(), Value::from(0.00001));
        metadata.insert("classes".into(), Value::Object(Map::new()));
        let doc = SplitFile {
            metadata,
            train: vec![Entry {
                path: "a/\u{e4}\"\u{1}.png",
                label: 0,
            }],
            val: vec![],
            test: vec![],
        };
        let mut out = Vec::new();
        write(&mut out, &doc).unwrap();
        // json.dumps({...}, indent=2, ensure_ascii=False) of the same object.
        let want = "{\n  \"metadata\": {\n    \"seed\": 42,\n    \"ratio\": 1e-05,\n    \"classes\": {}\n  },\n  \"train\": [\n    {\n      \"path\": \"a/\u{e4}\\\"\\u0001.png\",\n      \"label\": 0\n    }\n  ],\n  \"val\": [],\n  \"test\": []\n}";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}
