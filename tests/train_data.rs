//! What the trainer takes from a manifest (built without the `train` feature): the epoch
//! order is exactly what `balance-split sample` prints, the loss weights and sampler come
//! from the manifest, and the source split is checked.

mod util;

use std::path::Path;

use balance_split::train::data::{SourceCheck, TrainData};
use balance_split::train::settings::TrainSettings;
use util::{repo, run_in};

/// The trainer's settings for a golden manifest: the example config that made it (its
/// `data.balancing` must be the manifest's, or the trainer refuses the pair).
fn settings_for(manifest: &str) -> TrainSettings {
    let name = Path::new(manifest)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".balanced.json");
    TrainSettings::load(&repo().join(format!("configs/examples/{name}.yaml"))).unwrap()
}

#[test]
fn the_trainer_sees_the_order_balance_split_sample_prints() {
    for (manifest, shuffle) in [
        ("tests/golden/weighted_sampler.balanced.json", true),
        ("tests/golden/downsampling.balanced.json", true),
        ("tests/golden/downsampling.balanced.json", false),
    ] {
        let data =
            TrainData::load(&repo().join(manifest), &repo(), &settings_for(manifest)).unwrap();
        for epoch in [0u64, 3] {
            let mut args = vec![
                "sample".to_string(),
                manifest.to_string(),
                "--epoch".into(),
                epoch.to_string(),
            ];
            if !shuffle {
                args.push("--no-shuffle".into());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run_in(&repo(), &args, &[]);
            r.assert_ok();
            let printed: Vec<usize> = r.stdout.lines().map(|l| l.parse().unwrap()).collect();
            assert_eq!(
                data.epoch_order(epoch, shuffle).unwrap(),
                printed,
                "{manifest} epoch {epoch}"
            );
        }
    }
}

#[test]
fn sampler_loss_weights_and_source_come_from_the_manifest() {
    let weighted_path = "tests/golden/weighted_sampler.balanced.json";
    let weighted = TrainData::load(
        &repo().join(weighted_path),
        &repo(),
        &settings_for(weighted_path),
    )
    .unwrap();
    assert!(weighted.sampler.is_some());
    assert_eq!(weighted.loss_weights, None);
    assert_eq!(weighted.classes, ["normal", "abnormal"]);
    assert_eq!(weighted.train.len(), 200);
    assert_eq!(weighted.val.as_ref().map(|v| v.len()), Some(50));
    assert_eq!(
        weighted.source_check,
        SourceCheck::Matches(repo().join("splits/example/train_val_split.json"))
    );
    let with_loss_path = "tests/golden/class_weights_with_upsampling.balanced.json";
    let with_loss = TrainData::load(
        &repo().join(with_loss_path),
        &repo(),
        &settings_for(with_loss_path),
    )
    .unwrap();
    assert!(with_loss.sampler.is_none());
    assert_eq!(with_loss.loss_weights.as_ref().map(Vec::len), Some(2));
    // Elsewhere (the split not present) the hash cannot be checked, and that is said.
    let elsewhere = TrainData::load(
        &repo().join(weighted_path),
        Path::new("/nonexistent-root"),
        &settings_for(weighted_path),
    )
    .unwrap();
    assert!(matches!(elsewhere.source_check, SourceCheck::Absent(_)));
}

/// A config (or an override) whose data.balancing or synthetic augmentation is not the
/// manifest's would change nothing the trainer does: refused, naming the first difference.
#[test]
fn a_manifest_made_with_other_data_sections_than_the_config_is_refused() {
    let manifest = repo().join("tests/golden/weighted_sampler.balanced.json");
    let other = settings_for("tests/golden/upsampling.balanced.json");
    let err = TrainData::load(&manifest, &repo(), &other).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: made with another data.balancing than the config's (data.balancing.weighted_sampler.enabled: the manifest has true, the config false); make it again with balance-split balance and this config (and the same overrides)",
            manifest.display()
        )
    );
}
