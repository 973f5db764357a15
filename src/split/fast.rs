//! The fast reader: a byte-level walk over the split's top-level object and its lists.
//!
//! Nearly every entry of a real split is exactly `{"path": "<plain string>", "label":
//! <integer>}`. Reading that shape directly, instead of through serde's per-token visitor
//! calls, makes a 10-million-entry split parse several times faster. The walk is strict
//! and conservative: it accepts only what it checks completely (structure, whitespace,
//! strings without escapes or control characters, integers in JSON's grammar) and uses
//! serde_json for every other value (metadata, extra fields, unusual entries). On anything
//! it does not handle, including every error, it returns `None` and the caller reads the
//! whole input with the serde reader, which also words the message. A bug here can
//! therefore only make parsing slower, never change what is read: the property test in
//! `split/tests.rs` checks that both readers agree whenever this one answers.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::serde_path::{read_entry, stored_label};
use super::{Entry, RawList, RawSplit};

/// Reads a split, or `None` if the input holds anything this reader leaves to serde.
pub(super) fn read(text: &str) -> Option<RawSplit<'_>> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        pos: 0,
    };
    let raw = r.top()?;
    r.ws();
    (r.pos == r.b.len()).then_some(raw)
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.pos) == Some(&c)).then(|| self.pos += 1)
    }

    /// A string with neither escapes nor control characters (the contents are then exactly
    /// the bytes between the quotes). One pass finds the closing quote and checks the
    /// bytes; paths are short, so a plain loop beats a vectorised search plus a check.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        loop {
            match *self.b.get(self.pos)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        let s = &self.text[start..self.pos];
        self.pos += 1;
        Some(s)
    }

    /// Exactly the bytes `l`.
    fn lit(&mut self, l: &[u8]) -> Option<()> {
        (self.b.get(self.pos..self.pos + l.len())? == l).then(|| self.pos += l.len())
    }

    /// A non-negative integer in JSON's grammar (`0` or `[1-9][0-9]*`) that fits an `i64`
    /// and is not the start of a fraction or exponent.
    fn plain_uint(&mut self) -> Option<i64> {
        let start = self.pos;
        let mut v: i64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.b.get(self.pos) {
            v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        match self.b.get(self.pos) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(v),
        }
    }

    /// One JSON value of any kind, through serde_json.
    fn value<T: Deserialize<'a>>(&mut self) -> Option<T> {
        let rest: &'a str = &self.text[self.pos..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let v = stream.next()?.ok()?;
        self.pos += stream.byte_offset();
        Some(v)
    }

    fn top(&mut self) -> Option<RawSplit<'a>> {
        let mut raw = RawSplit::default();
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(raw);
        }
        loop {
            self.ws();
            let key = self.plain_str()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            match key {
                "train" => raw.train = Some(self.list("train")?),
                "val" => raw.val = Some(self.list("val")?),
                "test" => raw.test = Some(self.list("test")?),
                "metadata" => raw.metadata = Some(self.value::<Value>()?),
                "balancing" => raw.balancing = Some(self.value::<&'a RawValue>()?.get()),
                _ => {
                    let v = self.value::<Value>()?;
                    raw.extra.retain(|(k, _)| k != key);
                    raw.extra.push((key.to_owned(), v));
                }
            }
            self.ws();
            if self.eat(b',').is_some() {
                continue;
            }
            self.eat(b'}')?;
            return Some(raw);
        }
    }

    fn list(&mut self, list: &'static str) -> Option<RawList<'a>> {
        self.eat(b'[')?;
        let mut out = RawList {
            entries: huge_vec(self.b.len() - self.pos),
            first_out_of_range: None,
        };
        self.ws();
        if self.eat(b']').is_some() {
            return Some(out);
        }
        loop {
            self.ws();
            let index = out.entries.len();
            let (entry, label) = match self.plain_entry() {
                Some(e) => e,
                None => {
                    let raw: &'a RawValue = self.value()?;
                    read_entry(list, index, raw).ok()?
                }
            };
            if entry.label == u32::MAX && out.first_out_of_range.is_none() {
                out.first_out_of_range = Some((index, label));
            }
            out.entries.push(entry);
            self.ws();
            if self.eat(b',').is_some() {
                continue;
            }
            self.eat(b']')?;
            return Some(out);
        }
    }

    /// Exactly `{"path": <plain string>, "label": <plain integer>}`; on anything else the
    /// position is left where it was.
    fn plain_entry(&mut self) -> Option<(Entry<'a>, i64)> {
        let start = self.pos;
        let found = self.plain_entry_at();
        if found.is_none() {
            self.pos = start;
        }
        found
    }

    fn plain_entry_at(&mut self) -> Option<(Entry<'a>, i64)> {
        self.eat(b'{')?;
        self.ws();
        self.lit(b"\"path\"")?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        let path = self.plain_str()?;
        self.ws();
        self.eat(b',')?;
        self.ws();
        self.lit(b"\"label\"")?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        let label = self.plain_uint()?;
        self.ws();
        self.eat(b'}')?;
        let entry = Entry {
            path: Cow::Borrowed(path),
            label: stored_label(label),
            extra: None,
        };
        Some((entry, label))
    }
}

/// An empty entry list with room for every entry `bytes` of input could hold (each needs
/// at least 22 bytes, `{"path":"","label":0},`), backed by transparent huge pages where the
/// kernel offers them. The reservation is virtual: only pages actually written cost memory.
/// A 10-million-entry list otherwise takes a hundred thousand page faults to fill, a
/// quarter of its parse time; with 2 MiB pages it takes a few hundred, and it never moves.
fn huge_vec<T>(bytes: usize) -> Vec<T> {
    let cap = bytes / 22 + 1;
    let mut v: Vec<T> = Vec::new();
    if v.try_reserve_exact(cap).is_err() {
        // Address space refused (strict overcommit, or a giant input): grow as usual.
        return Vec::new();
    }
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + cap * std::mem::size_of::<T>();
        let (a, b) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if b > a {
            // SAFETY: advice on address space this Vec owns; it never changes contents and
            // a failure only means ordinary pages.
            unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}
