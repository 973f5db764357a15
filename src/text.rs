//! Human-readable output stays one record per line whatever the input holds.
//!
//! Paths and class names come from the user's files and may contain newlines or terminal
//! escapes: printed raw, a path with a newline would split an `error:` line in two, or
//! forge a line of `check-images`' report. Every human-readable output passes such text
//! through here (JSON output escapes by itself).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every control character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`), and
/// a backslash before them doubled only when something was escaped, so ordinary text
/// (Windows paths included) prints unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A message for one `error:` line: the same escaping, so it cannot span two lines.
pub fn one_line(message: &str) -> Cow<'_, str> {
    escape(message)
}

/// A number as a person reads it in a message: plain where that is short (`2`, `0.15`),
/// in exponent form for very large or small magnitudes (`1e30`, `1.7e308`, `5e-7`) rather
/// than 300 digits; YAML's spellings for the non-finite (`.nan`, `.inf`, `-.inf`).
pub fn number(x: f64) -> String {
    if x.is_nan() {
        ".nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { ".inf" } else { "-.inf" }.into()
    } else if x != 0.0 && !(1e-5..1e16).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Python's `repr(x)` of a finite float: the shortest digits that read back as `x` (which
/// Rust's formatting also finds), in fixed notation when the decimal exponent is from -4 to
/// 15, else as `d.ddde±XX`; a whole number keeps a `.0`.
pub fn py_repr(x: f64) -> String {
    if !x.is_finite() {
        // json.dump writes these as bare words (it allows NaN by default).
        return if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1; // digits before the decimal point
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    if (-3..=16).contains(&point) {
        let n = digits.len() as i32;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        return format!("{sign}{body}");
    }
    let (first, rest) = digits.split_at(1);
    let frac = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
}

/// Rows as aligned columns two spaces apart, each line after `indent` and without trailing
/// blanks; `right[c]` right-aligns column `c` (numbers), the others are left-aligned.
pub fn columns(rows: &[Vec<String>], right: &[bool], indent: &str) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, x)| match right.get(c) {
                Some(true) => format!("{x:>w$}", w = widths[c]),
                _ => format!("{x:<w$}", w = widths[c]),
            })
            .collect();
        out += indent;
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_written() {
        let shown: Vec<String> = [
            2.0,
            0.15,
            -1.0,
            1e30,
            1.7e308,
            5e-7,
            0.0,
            f64::NAN,
            f64::INFINITY,
        ]
        .into_iter()
        .map(number)
        .collect();
        assert_eq!(
            shown,
            ["2", "0.15", "-1", "1e30", "1.7e308", "5e-7", "0", ".nan", ".inf"]
        );
    }

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert_eq!(escape("splits/a b/ä.png"), "splits/a b/ä.png");
        assert_eq!(escape(r"C:\data\x.png"), r"C:\data\x.png");
        assert_eq!(escape("a\nb"), r"a\nb");
        assert_eq!(escape("a\r\tb\u{1b}[31m"), r"a\r\tb\u{1b}[31m");
        // Once something is escaped, a literal backslash-n cannot pass for a newline.
        assert_eq!(escape("x\\n\ny"), r"x\\n\ny");
        assert_eq!(escape("\u{7f}\u{85}"), r"\u{7f}\u{85}");
    }
}
