//! Stop after epoch 1, resume from the checkpoint, and reach exactly the weights of an
//! uninterrupted two-epoch run (CPU backend, same seed, same data order).
//!
//! Alone in its test binary: burn's CPU backend seeds one process-wide generator (dropout
//! masks), which a concurrently running test would draw from.

#![cfg(feature = "train")]

mod util;

use burn::prelude::*;

use balance_split::train::checkpoint::Checkpoint;
use balance_split::train::data::TrainData;
use balance_split::train::settings::TrainSettings;
use balance_split::train::state::{fresh, restore, State};
use balance_split::train::trainer::{RunOptions, Trainer};
use util::train::values;
use util::Dir;

type Fingerprint = (Vec<Vec<f32>>, Vec<Vec<f32>>, usize, u64);

fn fingerprint(s: &State) -> Fingerprint {
    (
        values(&s.model),
        values(&s.ema.as_ref().unwrap().model),
        s.epoch,
        s.step,
    )
}

#[test]
fn a_resumed_run_reaches_the_uninterrupted_weights() {
    let d = Dir::tiny_project();
    let mut s = TrainSettings::load(&d.join("tiny.yaml")).unwrap();
    s.training.visualization.enabled = false;
    // Dropout on, clipping on, the cosine schedule: everything a resume must restore.
    assert!(s.training.optimizer.gradient_clip_norm.is_some());
    let data = TrainData::load(
        &d.join("splits/example/train_val_split.balanced.json"),
        d.path(),
        &s,
    )
    .unwrap();
    let device = Device::flex().autodiff();
    let run = |s: &TrainSettings, epochs: usize, state: State| {
        let t = Trainer {
            settings: s,
            data: &data,
            device: device.clone(),
            seed: 0,
            options: RunOptions {
                epochs: Some(epochs),
                ..RunOptions::default()
            },
        };
        t.run(state).unwrap().0
    };

    let mut straight = s.clone();
    straight.output = s.output.rebased(&d.join("straight"));
    let uninterrupted = run(&straight, 2, fresh(&straight, 0, &device));

    let mut first = s.clone();
    first.output = s.output.rebased(&d.join("first"));
    let stopped = run(&first, 1, fresh(&first, 0, &device));
    assert_eq!(stopped.epoch, 1);
    let latest = first.output.checkpoints.join("latest.ckpt");
    let ck = Checkpoint::load(&latest).unwrap();
    assert_eq!((ck.meta.epoch, ck.meta.step), (1, 13));

    // A fresh process would start from another initialisation; the checkpoint must
    // replace all of it.
    let restored = restore(fresh(&first, 12345, &device), &ck, &latest, &first).unwrap();
    assert!(values(&restored.model) == values(&stopped.model));
    let resumed = run(&first, 2, restored);

    let (a, b) = (fingerprint(&uninterrupted), fingerprint(&resumed));
    assert_eq!((a.2, a.3), (2, 26));
    assert_eq!((b.2, b.3), (2, 26));
    assert!(a.0 == b.0, "model weights differ after resuming");
    assert!(a.1 == b.1, "EMA weights differ after resuming");
    // The second epoch moved the weights, and it needed the restored optimizer state:
    // resuming with a fresh optimizer (reset_optimizer) ends elsewhere.
    assert!(values(&stopped.model) != a.0);
    let mut reset = first.clone();
    reset.training.resume.reset_optimizer = true;
    reset.output = s.output.rebased(&d.join("reset"));
    let fresh_optim = restore(fresh(&reset, 0, &device), &ck, &latest, &reset).unwrap();
    assert!(values(&run(&reset, 2, fresh_optim).model) != a.0);
    // The metrics of the resumed run continue the first run's file.
    let csv = std::fs::read_to_string(first.output.base_dir.join("metrics.csv")).unwrap();
    let epochs: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "2"]);
}
