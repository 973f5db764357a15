//! Reading a YAML config: bounded in size and nesting before the parser sees it.
//!
//! libyaml (under serde_yaml_ng) takes time quadratic in the depth of flow collections: a
//! 200,000-deep `[[[...` in a key we ignore parsed for 93 s. A config is a few kilobytes
//! nested four levels deep, so both bounds are far from any real one.

use std::path::Path;

use super::ConfigError;

/// The largest config read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The deepest nesting of collections accepted (block or flow style).
pub const MAX_DEPTH: usize = 64;

/// The config's text: at most [`MAX_CONFIG_BYTES`], UTF-8, a leading byte-order mark
/// dropped (PyYAML accepts one, so the user's files may have it), nested at most
/// [`MAX_DEPTH`] levels.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let bytes =
        crate::input::read_bounded(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
    let mut text = String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: format!("not UTF-8 text: {}", e.utf8_error()),
    })?;
    let bom = text.len() - prepare(&text, path)?.len();
    text.drain(..bom);
    Ok(text)
}

/// What the parser is given of a config's text: refused when nested deeper than
/// [`MAX_DEPTH`] (naming the line), a leading byte-order mark dropped.
pub fn prepare<'a>(text: &'a str, path: &Path) -> Result<&'a str, ConfigError> {
    if let Some(line) = too_deep(text) {
        return Err(ConfigError::Syntax {
            path: path.to_owned(),
            message: format!(
                "nested deeper than {MAX_DEPTH} levels at line {line}; a config needs a handful"
            ),
        });
    }
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// The 1-based line where flow nesting (`[`, `{` outside quotes and comments) or block
/// nesting (indentation levels, `- ` items included) first passes [`MAX_DEPTH`].
///
/// An over-estimate is possible only for text no real config holds, and then the error
/// says why; an under-estimate cannot make the parser slow, since block nesting costs
/// libyaml linear time and this counts every flow bracket.
fn too_deep(text: &str) -> Option<usize> {
    let mut flow = 0usize;
    // Indentation widths of the open block levels, innermost last.
    let mut blocks: Vec<usize> = Vec::new();
    let mut quote: Option<char> = None;
    for (n, line) in text.lines().enumerate() {
        if quote.is_none() && flow == 0 {
            let body = line.trim_start_matches(' ');
            if !body.is_empty() && !body.starts_with('#') {
                // Each leading "- " opens a level of its own.
                let mut indent = line.len() - body.len();
                let mut rest = body;
                loop {
                    while blocks.last().is_some_and(|&w| w > indent) {
                        blocks.pop();
                    }
                    if blocks.last() != Some(&indent) {
                        blocks.push(indent);
                    }
                    match rest.strip_prefix("- ") {
                        Some(r) => {
                            let r2 = r.trim_start_matches(' ');
                            indent += 2 + (r.len() - r2.len());
                            rest = r2;
                        }
                        None => break,
                    }
                }
                if blocks.len() > MAX_DEPTH {
                    return Some(n + 1);
                }
            }
        }
        let mut prev = ' ';
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') if prev == ' ' || prev == '\t' => break,
                (None, '"' | '\'') if matches!(prev, ' ' | '\t' | '[' | '{' | ',' | ':') => {
                    quote = Some(c)
                }
                (None, '[' | '{') => {
                    flow += 1;
                    if blocks.len() + flow > MAX_DEPTH {
                        return Some(n + 1);
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
        // A single-quoted scalar may span lines; a double-quoted one too.
    }
    None
}

/// A YAML reader's message in the user's words. serde_yaml_ng reads an integer too large
/// for 64 bits as a 128-bit one and then says `invalid type: integer `N` as u128, expected
/// u64`; this says what was expected instead.
pub fn clarify(message: &str) -> String {
    static WIDE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = WIDE.get_or_init(|| {
        regex::Regex::new(
            r"invalid type: integer `(-?\d+)` as [ui]128, expected ([ui])(8|16|32|64|size)",
        )
        .expect("a valid pattern")
    });
    re.replace_all(message, |c: &regex::Captures| {
        let (kind, bits) = (&c[2], &c[3]);
        let range = match (kind, bits) {
            ("u", "8") => "0 to 255".to_string(),
            ("u", "16") => "0 to 65535".into(),
            ("u", "32") => "0 to 4294967295".into(),
            ("u", _) => "0 to 18446744073709551615".into(),
            ("i", "32") => "-2147483648 to 2147483647".into(),
            _ => "-9223372036854775808 to 9223372036854775807".into(),
        };
        format!("expected an integer from {range}, found {}", &c[1])
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_configs_are_far_from_the_bounds() {
        for name in ["configs/diffusion.yaml", "configs/examples/tiny.yaml"] {
            let text =
                std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap();
            assert_eq!(too_deep(&text), None, "{name}");
        }
    }

    #[test]
    fn deep_flow_and_block_nesting_are_found_at_their_line() {
        let deep = format!("a: 1\nb: {}{}\n", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(too_deep(&deep), Some(2));
        let ok = format!(
            "b: {}{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(too_deep(&ok), None);
        let mut block = String::new();
        for i in 0..100 {
            block += &format!("{}k{i}:\n", " ".repeat(i));
        }
        assert_eq!(too_deep(&block), Some(MAX_DEPTH + 1));
        let items: String = (0..100)
            .map(|i| format!("{}- x\n", "  ".repeat(i)))
            .collect();
        assert!(too_deep(&items).is_some());
    }

    #[test]
    fn integers_past_64_bits_are_said_plainly() {
        assert_eq!(
            clarify("compute.seed: invalid type: integer `18446744073709551616` as u128, expected u64 at line 2 column 9"),
            "compute.seed: expected an integer from 0 to 18446744073709551615, found 18446744073709551616 at line 2 column 9"
        );
        assert_eq!(clarify("anything else"), "anything else");
    }

    #[test]
    fn brackets_in_quotes_and_comments_do_not_count() {
        let text = format!(
            "a: \"{}\"\nb: '{}'\nc: 1 # {}\nd: x[{{\n",
            "[".repeat(1000),
            "{".repeat(1000),
            "[".repeat(1000)
        );
        assert_eq!(too_deep(&text), None);
    }
}
