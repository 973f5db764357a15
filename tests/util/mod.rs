//! The one harness every CLI test uses: a temp dir, files written into it, and the built
//! `balance-split` binary run inside it.

#![allow(dead_code)]

#[cfg(feature = "train")]
pub mod train;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (where `configs/` and `splits/example/` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree (the example split into a test's project directory).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// What a run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts a bad-input failure: exit 2 and exactly one `error:` line on stderr.
    pub fn assert_bad_input(&self) -> &str {
        assert_eq!(
            self.code, 2,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line, got: {}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", self.stderr);
        lines[0]
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A scratch directory to run the binary in.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) -> &Self {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, contents).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    /// Files in the directory (not recursive), sorted: to check nothing stray was left.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Writes `split.json` with `counts[c]` training samples of class `c{c}` (classes
    /// interleaved) and a quarter as many validation samples.
    pub fn split(&self, counts: &[usize]) -> &Self {
        self.write("split.json", &split_json(counts))
    }

    /// Writes `config.yaml` with `data.split_file: split.json`, `compute.seed: 0` and the
    /// given `data.balancing` body (indented by the caller as under `balancing:`).
    pub fn config(&self, balancing: &str) -> &Self {
        self.write(
            "config.yaml",
            &format!(
                "compute:\n  seed: 0\ndata:\n  split_file: split.json\n  balancing:\n{balancing}"
            ),
        )
    }

    /// A project with the embedded example split, `tiny.yaml` (the trainer demo config)
    /// and the manifest `balance-split balance --config tiny.yaml` writes.
    pub fn tiny_project() -> Dir {
        let d = Dir::new();
        copy_dir(&repo().join("splits/example"), &d.join("splits/example"));
        std::fs::copy(
            repo().join("configs/examples/tiny.yaml"),
            d.join("tiny.yaml"),
        )
        .unwrap();
        d.run(&["balance", "--config", "tiny.yaml"]).assert_ok();
        assert!(d.exists("splits/example/train_val_split.balanced.json"));
        d
    }

    /// Runs `balance-split ARGS` in this directory.
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args, &[])
    }
}

pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_program(env!("CARGO_BIN_EXE_balance-split"), dir, args, env)
}

/// Runs one of the crate's binaries (`balance-split`, `diffusion-train`) in `dir`.
pub fn run_program(program: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    Run {
        code: out.status.code().expect("exited normally, no signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A split file in the user's format.
pub fn split_json(counts: &[usize]) -> String {
    let mut classes = String::new();
    for c in 0..counts.len() {
        let _ = write!(classes, "{}\"c{c}\": {c}", if c > 0 { ", " } else { "" });
    }
    let list = |counts: Vec<usize>, prefix: &str| {
        let mut left = counts;
        let mut entries = Vec::new();
        let mut i = 0;
        while left.iter().any(|&n| n > 0) {
            for (c, n) in left.iter_mut().enumerate() {
                if *n > 0 {
                    *n -= 1;
                    entries.push(format!(
                        "{{\"path\": \"{prefix}/c{c}/img_{i:05}.png\", \"label\": {c}}}"
                    ));
                    i += 1;
                }
            }
        }
        entries.join(",\n    ")
    };
    format!(
        "{{\n  \"metadata\": {{\"classes\": {{{classes}}}}},\n  \"train\": [\n    {}\n  ],\n  \"val\": [\n    {}\n  ]\n}}\n",
        list(counts.to_vec(), "train"),
        list(counts.iter().map(|n| n / 4).collect(), "val"),
    )
}

/// Parses a manifest.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON")
}
