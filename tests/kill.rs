//! Real signals against `balance` while it writes a large manifest: whatever the moment,
//! the destination holds the old file or the complete new one, and no temporary file
//! survives (SIGKILL on the named-file path leaves one, which the next write clears).

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::Dir;

const SIGNALS: [(i32, &str); 3] = [
    (libc::SIGKILL, "KILL"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGINT, "INT"),
];

fn balance(d: &Dir, out: &str, named: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_balance-split"));
    c.args(["balance", "--config", "config.yaml", "--out", out])
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if named {
        c.env("BALANCE_SPLIT_NAMED_TEMP", "1");
    }
    c
}

#[test]
fn a_signal_mid_write_leaves_the_old_or_the_new_manifest_and_no_temporary_file() {
    let d = Dir::new();
    // About 10 MB of manifest: long enough to be caught mid-write.
    d.split(&[40_000, 8_000])
        .config("    upsampling:\n      enabled: true\n");
    let start = Instant::now();
    assert!(balance(&d, "reference.json", false)
        .status()
        .unwrap()
        .success());
    let full = start.elapsed();
    eprintln!("one uninterrupted run: {full:?}");
    let reference = std::fs::read(d.join("reference.json")).unwrap();
    let mut outcomes = std::collections::BTreeMap::new();
    for named in [false, true] {
        for (sig, name) in SIGNALS {
            for fraction in [0.3, 0.6, 0.9] {
                std::fs::write(d.join("out.json"), b"old").unwrap();
                let mut child = balance(&d, "out.json", named).spawn().unwrap();
                std::thread::sleep(full.mul_f64(fraction));
                // SAFETY: a signal to our own child, which has not been waited for yet.
                unsafe { libc::kill(child.id() as i32, sig) };
                let status = child.wait().unwrap();
                let now = std::fs::read(d.join("out.json")).unwrap();
                let what = if now == b"old" {
                    "old"
                } else if now == reference {
                    "new"
                } else {
                    panic!(
                        "SIG{name} at {fraction} (named {named}): a partial manifest of {} bytes",
                        now.len()
                    )
                };
                *outcomes.entry(what).or_insert(0) += 1;
                if sig == libc::SIGKILL {
                    // Nothing could remove it; the next write to the directory does. Even an
                    // anonymous (O_TMPFILE) output has a temporary name for the instant
                    // between its linkat and its rename, and a SIGKILL there leaves it (seen
                    // once at 0.9 of the run).
                    assert!(balance(&d, "other.json", true).status().unwrap().success());
                    std::fs::remove_file(d.join("other.json")).unwrap();
                }
                let mut files = d.files();
                files.retain(|f| f != "out.json");
                assert_eq!(
                    files,
                    ["config.yaml", "reference.json", "split.json"],
                    "SIG{name} at {fraction} (named {named}), status {status:?}"
                );
            }
        }
    }
    // The checks above mean something only if some runs were really interrupted.
    assert!(
        outcomes.get("old").copied().unwrap_or(0) >= 6,
        "{outcomes:?}"
    );
}

#[test]
fn truncating_the_split_while_balance_reads_it_is_not_a_crash() {
    // A script rewriting the split with open(path, "w") truncates it first: balance must
    // end with a message (or finish with what it read), never die of SIGBUS.
    let d = Dir::new();
    d.split(&[40_000, 8_000])
        .config("    upsampling:\n      enabled: true\n");
    let text = d.read("split.json");
    for delay_ms in [0, 5, 20, 60] {
        d.write("split.json", &text);
        let child = balance(&d, "out.json", false)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        std::fs::File::create(d.join("split.json")).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.code().is_some(),
            "killed by a signal after {delay_ms} ms: {:?}",
            out.status
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            out.status.success() || (out.status.code() == Some(2) && err.lines().count() == 1),
            "{delay_ms} ms: {:?} {err}",
            out.status
        );
    }
}

/// A named temporary a SIGKILL left (the instant between naming an anonymous file and the
/// rename) is removed by the next run of any command that could write into that folder,
/// a dry run included; another live process's temporary is kept.
#[test]
fn the_next_run_of_any_command_clears_what_a_killed_writer_left() {
    let d = Dir::new();
    d.split(&[6, 2])
        .config("    upsampling:\n      enabled: true\n");
    // No process has pid 2^22 + 1 (above Linux's pid_max limit).
    let dead = ".balance-split-4194305-abc.tmp";
    let live = format!(".balance-split-{}-abc.tmp", std::process::id());
    for (args, left) in [
        (
            vec!["balance", "--config", "config.yaml", "--dry-run"],
            "dry run of balance",
        ),
        (vec!["balance", "--config", "config.yaml"], "balance"),
        (
            vec!["stats", "split.json", "--plot", "chart.png"],
            "stats --plot",
        ),
    ] {
        d.write(dead, "partial");
        d.write(&live, "in progress");
        d.run(&args).assert_ok();
        assert!(!d.exists(dead), "{left} left the dead writer's temporary");
        assert!(d.exists(&live), "{left} removed a live writer's temporary");
    }
}
