//! `balance-split sample`: the epoch stream as a Python trainer would read it.

mod util;

use pretty_assertions::assert_eq;
use util::{repo, run_in, Dir};

fn sample(args: &[&str]) -> util::Run {
    let mut all = vec!["sample"];
    all.extend_from_slice(args);
    run_in(&repo(), &all, &[])
}

fn positions(r: &util::Run) -> Vec<usize> {
    r.assert_ok();
    r.stdout.lines().map(|l| l.parse().unwrap()).collect()
}

const WEIGHTED: &str = "tests/golden/weighted_sampler.balanced.json";
const DOWN: &str = "tests/golden/downsampling.balanced.json";

#[test]
fn weighted_epoch_is_pinned_and_balanced() {
    let p = positions(&sample(&[WEIGHTED, "--epoch", "0"]));
    assert_eq!(p.len(), 200);
    // The same as examples/python/rng_reference.py epoch_stream(...) for this manifest.
    assert_eq!(&p[..8], &[28, 65, 186, 86, 117, 175, 159, 159]);
    // inverse-frequency weights on 180:20: about half the draws are abnormal
    let m = util::json(&std::fs::read_to_string(repo().join(WEIGHTED)).unwrap());
    let abnormal = p.iter().filter(|&&i| m["train"][i]["label"] == 1).count();
    assert!((70..=130).contains(&abnormal), "{abnormal}");
}

#[test]
fn json_and_lines_agree_and_epochs_differ() {
    let lines = positions(&sample(&[WEIGHTED, "--epoch", "2"]));
    let r = sample(&[WEIGHTED, "--epoch", "2", "--format", "json"]);
    r.assert_ok();
    let json: Vec<usize> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(lines, json);
    let r = sample(&[WEIGHTED, "--epoch", "2", "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<usize>>(&r.stdout).unwrap(),
        lines
    );
    assert_ne!(lines, positions(&sample(&[WEIGHTED, "--epoch", "3"])));
}

#[test]
fn ranks_split_the_padded_epoch() {
    let global = positions(&sample(&[DOWN, "--epoch", "1"]));
    assert_eq!(global.len(), 40);
    let shards: Vec<Vec<usize>> = (0..3)
        .map(|r| {
            positions(&sample(&[
                DOWN,
                "--epoch",
                "1",
                "--rank",
                &r.to_string(),
                "--world-size",
                "3",
            ]))
        })
        .collect();
    assert!(shards.iter().all(|s| s.len() == 14)); // ceil(40 / 3)
    for p in 0..42 {
        assert_eq!(shards[p % 3][p / 3], global[p % 40]);
    }
}

#[test]
fn shuffled_epochs_are_permutations_and_no_shuffle_is_identity() {
    let mut p = positions(&sample(&[DOWN, "--epoch", "0"]));
    assert_ne!(p, (0..40).collect::<Vec<_>>());
    p.sort_unstable();
    assert_eq!(p, (0..40).collect::<Vec<_>>());
    assert_eq!(
        positions(&sample(&[DOWN, "--epoch", "0", "--no-shuffle"])),
        (0..40).collect::<Vec<_>>()
    );
}

#[test]
fn bad_input_exits_2() {
    let r = sample(&["splits/example/train_val_split.json", "--epoch", "0"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: splits/example/train_val_split.json: not a manifest (no \"balancing\" section); run balance-split balance first"
    );
    let r = sample(&[DOWN, "--epoch", "0", "--rank", "2", "--world-size", "2"]);
    assert_eq!(
        r.assert_bad_input(),
        format!("error: {DOWN}: --rank 2 is not below --world-size 2")
    );
    let d = Dir::new();
    d.write("m.json", "{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\", \"label\": 0}], \"balancing\": {\"format_version\": 2}}");
    let r = d.run(&["sample", "m.json", "--epoch", "0"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: m.json: balancing: format_version is 2; this balance-split reads version 1"
    );
    d.write("m.json", "{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\", \"label\": 0}], \"balancing\": {\"format_version\": 1}}");
    let r = d.run(&["sample", "m.json", "--epoch", "0"]);
    assert!(
        r.assert_bad_input()
            .starts_with("error: m.json: balancing: missing field `tool`"),
        "{}",
        r.stderr
    );
}
