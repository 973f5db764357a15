//! The reference reader: serde_json visitors over the whole split.
//!
//! It handles every valid input and words every error (with line and column), but pays
//! serde's per-token cost. [`super::fast`] reads the common shape several times faster and
//! hands anything unusual, and every error, back to this reader, so messages always come
//! from here.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Entry, RawList, RawSplit};

/// The top-level object. `text` is the whole input, to turn positions inside an entry
/// into positions in the file.
pub(super) struct TopVisitor<'de> {
    pub(super) text: &'de str,
}

impl<'de> TopVisitor<'de> {
    fn list(&self, list: &'static str) -> ListSeed<'de> {
        ListSeed {
            list,
            text: self.text,
        }
    }
}

impl<'de> Visitor<'de> for TopVisitor<'de> {
    type Value = RawSplit<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a split object with \"metadata\", \"train\" and \"val\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawSplit::default();
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "metadata" => raw.metadata = Some(map.next_value()?),
                "balancing" => raw.balancing = Some(map.next_value::<&'de RawValue>()?.get()),
                "train" => raw.train = Some(map.next_value_seed(self.list("train"))?),
                "val" => raw.val = Some(map.next_value_seed(self.list("val"))?),
                "test" => raw.test = Some(map.next_value_seed(self.list("test"))?),
                _ => {
                    let value = map.next_value()?;
                    raw.extra.retain(|(k, _)| k != &key);
                    raw.extra.push((key.into_owned(), value));
                }
            }
        }
        Ok(raw)
    }
}

/// A list of entries named `train`, `val` or `test`.
struct ListSeed<'de> {
    list: &'static str,
    text: &'de str,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'de> {
    type Value = RawList<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'de> {
    type Value = RawList<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "\"{}\" to be a list of {{\"path\", \"label\"}} entries",
            self.list
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = RawList {
            entries: Vec::with_capacity(seq.size_hint().unwrap_or(0)),
            first_out_of_range: None,
        };
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let index = out.entries.len();
            let (entry, label) = read_entry(self.list, index, raw)
                .map_err(|e| de::Error::custom(absolute_position(self.text, raw.get(), &e)))?;
            if entry.label == u32::MAX && out.first_out_of_range.is_none() {
                out.first_out_of_range = Some((index, label));
            }
            out.entries.push(entry);
        }
        Ok(out)
    }
}

/// One entry, with its label as written (for the message if it does not fit a `u32`).
pub(super) fn read_entry<'a>(
    list: &'static str,
    index: usize,
    raw: &'a RawValue,
) -> Result<(Entry<'a>, i64), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    EntrySeed { list, index }.deserialize(&mut de)
}

/// Labels that cannot be a class (negative, or beyond `u32`) are stored as `u32::MAX`,
/// which is never a valid label either; the original is kept for the message.
pub(super) fn stored_label(label: i64) -> u32 {
    u32::try_from(label)
        .ok()
        .filter(|&l| l != u32::MAX)
        .unwrap_or(u32::MAX)
}

/// serde_json reports positions within the entry's own slice; turn them into positions in
/// the whole file, as the user's editor shows them.
pub(super) fn absolute_position(text: &str, raw: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let bare = message.strip_suffix(&suffix).unwrap_or(&message);
    let offset = raw.as_ptr() as usize - text.as_ptr() as usize;
    let before = &text.as_bytes()[..offset];
    let start_line = memchr::memchr_iter(b'\n', before).count() + 1;
    let start_col = offset - memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    let (line, column) = if e.line() <= 1 {
        (start_line, start_col + e.column())
    } else {
        (start_line + e.line() - 1, e.column())
    };
    format!("{bare} at line {line} column {column}")
}

struct EntrySeed {
    list: &'static str,
    index: usize,
}

/// An entry, with its label as written (for the message if it does not fit a `u32`).
impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = (Entry<'de>, i64);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = (Entry<'de>, i64);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}[{}] to be an object {{\"path\": string, \"label\": integer}}",
            self.list, self.index
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let at = || format!("{}[{}]", self.list, self.index);
        let mut path = None;
        let mut label = None;
        let mut extra: Option<Box<Map<String, Value>>> = None;
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "path" => match map.next_value()? {
                    Any::Str(s) => path = Some(s),
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "{}: \"path\" must be a string, found {other}",
                            at()
                        )))
                    }
                },
                "label" => match map.next_value()? {
                    Any::Int(l) => label = Some(l),
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "{}: \"label\" must be an integer, found {other}",
                            at()
                        )))
                    }
                },
                _ => {
                    let value: Value = map.next_value()?;
                    extra
                        .get_or_insert_with(Default::default)
                        .insert(key.into_owned(), value);
                }
            }
        }
        let path =
            path.ok_or_else(|| de::Error::custom(format_args!("{}: missing \"path\"", at())))?;
        let label =
            label.ok_or_else(|| de::Error::custom(format_args!("{}: missing \"label\"", at())))?;
        Ok((
            Entry {
                path,
                label: stored_label(label),
                extra,
            },
            label,
        ))
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, kept only as far as the entry checks need: strings and integers in
/// full, everything else as what it was, for the message.
enum Any<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    Other(String),
}

impl fmt::Display for Any<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Any::Str(s) => write!(f, "string {s:?}"),
            Any::Int(i) => write!(f, "integer {i}"),
            Any::Other(what) => f.write_str(what),
        }
    }
}

impl<'de> Deserialize<'de> for Any<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Any<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Any::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Any::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Any::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Any::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or_else(|_| Any::Other(format!("integer {v}")), Any::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Any::Other(format!("number {v:?}")))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Any::Other(format!("boolean {v}")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Any::Other("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Any::Other("a list".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Any::Other("an object".into()))
            }
        }
        d.deserialize_any(V)
    }
}
