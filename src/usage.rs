//! clap's usage errors in the shape of every other error of ours, for both binaries:
//! `--help` and `--version` print as clap renders them (exit 0); a usage error is one
//! `error:` line with its tips folded in (exit 2), so scripts and logs that read one line
//! per error read these too.

use crate::stdout;

/// Prints `e` as described above and returns the exit status. `commands` names the
/// subcommands for the message when one is missing.
pub fn report(e: &clap::Error, commands: &str) -> u8 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return match stdout::text(&e.render().to_string()) {
            Err(out) if !out.is_closed_pipe() => {
                stdout::note(format_args!("error: {out}"));
                1
            }
            _ => 0,
        };
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        stdout::note(format_args!(
            "error: a subcommand is required ({commands}); see --help"
        ));
        return 2;
    }
    stdout::note(one_line(&e.render().to_string()));
    2
}

/// clap's rendered message (a first line, continuation lines such as the missing
/// arguments, tips, the usage, a pointer to --help) as one `error:` line; the usage and the
/// pointer are left to --help.
pub fn one_line(rendered: &str) -> String {
    let mut line = String::from("error:");
    for part in rendered
        .lines()
        .map(str::trim)
        .filter(|l| !(l.is_empty() || l.starts_with("Usage:") || l.starts_with("For more")))
    {
        match part.strip_prefix("tip: ") {
            Some(tip) => line += &format!("; {tip}"),
            None => line += &format!(" {}", part.strip_prefix("error: ").unwrap_or(part)),
        }
    }
    line + "; see --help"
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_multi_line_message_becomes_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --config <CONFIG>\n\nUsage: diffusion-train train --config <CONFIG>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(rendered),
            "error: the following required arguments were not provided: --config <CONFIG>; see --help"
        );
        let with_tip = "error: unexpected argument '--epoch' found\n\n  tip: a similar argument exists: '--epochs'\n\nUsage: x\n";
        assert_eq!(
            super::one_line(with_tip),
            "error: unexpected argument '--epoch' found; a similar argument exists: '--epochs'; see --help"
        );
    }
}
