//! The `plateau` scheduler in a run: the learning rate of each epoch follows
//! ReduceLROnPlateau's rule on the epoch's loss, and its state survives a resume.

#![cfg(feature = "train")]

mod util;

use burn::prelude::*;

use balance_split::train::checkpoint::Checkpoint;
use balance_split::train::data::TrainData;
use balance_split::train::plateau::Plateau;
use balance_split::train::settings::{Scheduler, TrainSettings};
use balance_split::train::state::{fresh, restore, State};
use balance_split::train::trainer::{RunOptions, Trainer};
use util::Dir;

fn lr_column(s: &TrainSettings) -> Vec<f64> {
    let csv = std::fs::read_to_string(s.output.base_dir.join("metrics.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_rate_falls_on_a_plateau_and_a_resume_keeps_counting() {
    let d = Dir::tiny_project();
    let mut s = TrainSettings::load(&d.join("tiny.yaml")).unwrap();
    s.training.visualization.enabled = false;
    s.training.validation.frequency = 2;
    // An absolute threshold no loss can beat after the first: every later epoch is bad,
    // whatever the losses are, so the rates below do not depend on them.
    s.training.scheduler = Scheduler::Plateau(Plateau {
        patience: 0,
        factor: 0.5,
        threshold: 1e9,
        absolute: true,
        ..Plateau::default()
    });
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
    let with_out = |name: &str| {
        let mut c = s.clone();
        c.output = s.output.rebased(&d.join(name));
        c
    };

    let straight = with_out("straight");
    let end = run(&straight, 4, fresh(&straight, 0, &device));
    let expected = [0.002, 0.002, 0.001, 0.0005];
    assert_eq!(lr_column(&straight), expected);
    let p = end.plateau.as_ref().unwrap();
    assert_eq!((p.lr, p.num_bad_epochs), (0.00025, 0));

    let first = with_out("first");
    run(&first, 2, fresh(&first, 0, &device));
    let latest = first.output.checkpoints.join("latest.ckpt");
    let ck = Checkpoint::load(&latest).unwrap();
    assert_eq!(ck.meta.plateau.as_ref().unwrap().lr, 0.001);
    let restored = restore(fresh(&first, 7, &device), &ck, &latest, &first).unwrap();
    run(&first, 4, restored);
    assert_eq!(lr_column(&first), expected);

    // reset_scheduler starts the plateau afresh at the configured rate.
    let mut reset = with_out("reset");
    reset.training.resume.reset_scheduler = true;
    let restored = restore(fresh(&reset, 7, &device), &ck, &latest, &reset).unwrap();
    run(&reset, 4, restored);
    assert_eq!(lr_column(&reset), [0.002, 0.002]);
}
