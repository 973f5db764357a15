//! What the trainer's tests read back from burn: a model's weights, a feed's batches.

use std::path::PathBuf;
use std::process::Command;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use balance_split::train::feed::Feed;

/// Every parameter's values in visiting order (records also carry parameter ids, which
/// differ between a fresh model and a restored one).
struct Values(Vec<Vec<f32>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0
            .push(p.val().into_data().try_to_vec::<f32>().unwrap());
    }
}

pub fn values<M: Module>(m: &M) -> Vec<Vec<f32>> {
    let mut v = Values(Vec::new());
    m.visit(&mut v);
    v.0
}

/// The first `limit` batches of `feed`'s epoch over `order`, read back: (images, labels).
pub fn batches(
    feed: &Feed,
    order: &[usize],
    epoch: u64,
    limit: usize,
) -> Vec<(Vec<f32>, Vec<u32>)> {
    feed.epoch(order.to_vec(), epoch)
        .take(limit)
        .map(|b| {
            let b = b.unwrap();
            (b.x0.into_data().try_to_vec::<f32>().unwrap(), b.labels)
        })
        .collect()
}

/// The Python with torch; a missing one fails the test, never skips it.
pub fn python() -> PathBuf {
    match std::env::var_os("BALANCE_SPLIT_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "BALANCE_SPLIT_TEST_PYTHON is not set: these tests need a Python with torch, safetensors and tensorboard \
             (tests/python/requirements.txt); scripts/test sets it to the environment it makes"
        ),
    }
}

/// Runs the repository's Python `script` (a path from the repository's root) with `args`
/// and parses the JSON of its last line.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(super::repo().join(script))
        .args(args)
        .output()
        .expect("run the Python of BALANCE_SPLIT_TEST_PYTHON");
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().expect("one JSON line")).unwrap()
}

/// Runs `diffusion-train ARGS` in `dir`.
pub fn diffusion_train(dir: &super::Dir, args: &[&str]) -> super::Run {
    super::run_program(env!("CARGO_BIN_EXE_diffusion-train"), dir.path(), args, &[])
}

/// `diffusion-train [COMMAND] --config CONFIG --device cpu --out OUT -q EXTRA...` in `dir`;
/// `command` is empty for training.
pub fn on_cpu(
    dir: &super::Dir,
    command: &[&str],
    config: &str,
    out: &str,
    extra: &[&str],
) -> super::Run {
    let mut args = command.to_vec();
    args.extend(["--config", config, "--device", "cpu", "--out", out, "-q"]);
    args.extend_from_slice(extra);
    diffusion_train(dir, &args)
}
