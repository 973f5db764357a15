//! The device-resident feed gives the host pipeline's batches value for value, with
//! flips and rotations, and a run on it reaches exactly the host-fed run's weights and
//! losses (CPU backend, same seed).
//!
//! Alone in its test binary: burn's CPU backend seeds one process-wide generator (dropout
//! masks), which a concurrently running test would draw from.

#![cfg(feature = "train")]

mod util;

use burn::prelude::*;

use balance_split::images::loader::LoaderConfig;
use balance_split::train::data::TrainData;
use balance_split::train::feed::{placement, resident_bytes, Feed, HostReason};
use balance_split::train::settings::TrainSettings;
use balance_split::train::state::{fresh, State};
use balance_split::train::trainer::{RunOptions, Trainer};
use util::train::{batches, values};
use util::Dir;

fn project() -> (Dir, TrainSettings, TrainData) {
    let d = Dir::tiny_project();
    let mut s = TrainSettings::load(&d.join("tiny.yaml")).unwrap();
    s.training.visualization.enabled = false;
    s.training.validation.frequency = 1;
    // Flips alone leave most samples' pixels in place; rotations bring in black corners.
    s.pipeline.augmentation.rotation_degrees = 15.0;
    let data = TrainData::load(
        &d.join("splits/example/train_val_split.balanced.json"),
        d.path(),
        &s,
    )
    .unwrap();
    (d, s, data)
}

/// The batches of `epoch` from both feeds of `cfg`: (host, resident) images and labels.
type Batches = Vec<(Vec<f32>, Vec<u32>)>;

fn both_feeds(data: &TrainData, cfg: &LoaderConfig, epoch: u64) -> (Batches, Batches) {
    let cpu = Device::flex();
    let order = data.epoch_order(epoch, true).unwrap();
    let (host, _, _) = Feed::new(&data.train, cfg.clone(), 0, &cpu).unwrap();
    let (resident, _, _) = Feed::new(&data.train, cfg.clone(), u64::MAX, &cpu).unwrap();
    assert!(!host.is_resident() && resident.is_resident());
    (
        batches(&host, &order, epoch, usize::MAX),
        batches(&resident, &order, epoch, usize::MAX),
    )
}

#[test]
fn resident_batches_are_the_pipelines_and_so_is_the_run() {
    let (d, s, data) = project();
    let cfg = s.pipeline.loader(data.data_seed, true);
    assert!(cfg.augmentation.as_ref().unwrap().horizontal_flip);
    assert_eq!((data.train.len(), cfg.batch_size), (200, 16));
    // 200 = 12 x 16 + 8: the short last batch is kept, or dropped with drop_last.
    for (drop_last, batches) in [(false, 13), (true, 12)] {
        for channels in [3, 1] {
            let cfg = LoaderConfig {
                drop_last,
                channels,
                ..cfg.clone()
            };
            let (host, resident) = both_feeds(&data, &cfg, 3);
            assert_eq!(host.len(), batches);
            assert!(
                resident == host,
                "drop_last {drop_last}, {channels} channels"
            );
            assert_eq!(host[0].0.len(), 16 * channels * 16 * 16);
        }
    }
    // Every batch had some sample flipped or turned: the maps were used.
    let plain = LoaderConfig {
        augmentation: None,
        ..cfg.clone()
    };
    let (moved, unmoved) = (both_feeds(&data, &cfg, 3).0, both_feeds(&data, &plain, 3).0);
    assert!(moved
        .iter()
        .zip(&unmoved)
        .all(|(m, u)| m.0 != u.0 && m.1 == u.1));

    // Two runs, host-fed and resident, from the same initialisation: the same losses
    // in every metrics row, the same weights at the end.
    let device = Device::flex().autodiff();
    let run = |name: &str, budget: u64| -> (State, String) {
        let mut s = s.clone();
        s.output = s.output.rebased(&d.join(name));
        let t = Trainer {
            settings: &s,
            data: &data,
            device: device.clone(),
            seed: 0,
            options: RunOptions {
                epochs: Some(2),
                device_data_bytes: Some(budget),
                ..RunOptions::default()
            },
        };
        let state = t.run(fresh(&s, 0, &device)).unwrap().0;
        let csv = std::fs::read_to_string(s.output.base_dir.join("metrics.csv")).unwrap();
        // Everything but images_per_s, the sixth column.
        let rows = csv
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(5);
                f.join(",")
            })
            .collect::<Vec<_>>()
            .join("\n");
        (state, rows)
    };
    let (host, host_rows) = run("host", 0);
    let (dev, dev_rows) = run("resident", u64::MAX);
    assert_eq!(host.step, 26);
    assert_eq!(dev_rows, host_rows);
    assert_eq!(dev_rows.lines().count(), 3, "{dev_rows}");
    assert!(values(&dev.model) == values(&host.model), "weights differ");
}

#[test]
fn placement_follows_the_budget_and_jitter() {
    let cfg = LoaderConfig {
        image_size: 40,
        channels: 3,
        batch_size: 8,
        drop_last: false,
        augmentation: None,
        seed: 0,
    };
    // The user's set: 600 images of 3 x (40 x 40 + 1) f32.
    assert_eq!(resident_bytes(600, &cfg), 600 * 3 * 1601 * 4);
    let huge = LoaderConfig {
        image_size: u32::MAX,
        ..cfg.clone()
    };
    assert_eq!(resident_bytes(usize::MAX, &huge), u64::MAX);
    assert_eq!(placement(600, &cfg, 11_527_200), Ok(11_527_200));
    assert_eq!(
        placement(600, &cfg, 11_527_199),
        Err(HostReason::OverBudget {
            bytes: 11_527_200,
            left: 11_527_199
        })
    );
    assert_eq!(
        HostReason::OverBudget {
            bytes: 11_527_200,
            left: 0
        }
        .to_string(),
        "its decoded 11.0 MiB is over the 0.0 MiB left of --device-data-mb"
    );
    let mut jitter = cfg.clone();
    let mut aug = balance_split::images::transform::AugmentationConfig::default();
    aug.color_jitter.enabled = true;
    aug.color_jitter.strength = 0.1;
    jitter.augmentation = Some(aug);
    assert_eq!(placement(1, &jitter, u64::MAX), Err(HostReason::Jitter));
    // Validation is never augmented: resident whatever the training config's jitter.
    let val = LoaderConfig {
        augmentation: None,
        ..jitter
    };
    assert!(placement(1, &val, u64::MAX).is_ok());
    // A budget of 0 keeps even an empty set on the host.
    assert_eq!(
        placement(0, &val, 0),
        Err(HostReason::OverBudget { bytes: 0, left: 0 })
    );
    let host = Feed::Host {
        data: balance_split::images::loader::Dataset::new(&[], std::path::Path::new(".")),
        cfg,
        device: Device::flex(),
    };
    assert!(!host.is_resident() && host.is_empty());
}
