//! `balance-split stats`: tables, JSON, and the chart.

mod util;

use pretty_assertions::assert_eq;
use util::{json, repo, run_in, Dir};

#[test]
fn a_split_prints_counts_shares_and_imbalance() {
    let r = run_in(
        &repo(),
        &["stats", "splits/example/train_val_split.json"],
        &[],
    );
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "train (200 entries)
class     label  count  share
normal        0    180  90.0%
abnormal      1     20  10.0%
imbalance ratio 9.00 (majority/minority)

val (50 entries)
class     label  count  share
normal        0     45  90.0%
abnormal      1      5  10.0%
imbalance ratio 9.00 (majority/minority)

"
    );
}

#[test]
fn a_manifest_adds_before_after_epoch_and_loss() {
    let r = run_in(
        &repo(),
        &["stats", "tests/golden/weighted_sampler.balanced.json"],
        &[],
    );
    r.assert_ok();
    assert!(
        r.stdout.ends_with(
            "balancing: weighted_sampler (seed 0)
class     before  after  epoch (expected)
normal       180    100             100.0
abnormal      20    100             100.0
imbalance ratio 9.00 before, 1.00 after
"
        ),
        "{}",
        r.stdout
    );
    let r = run_in(
        &repo(),
        &[
            "stats",
            "tests/golden/class_weights_with_upsampling.balanced.json",
            "--json",
        ],
        &[],
    );
    r.assert_ok();
    let v = json(&r.stdout);
    assert_eq!(v["classes"], serde_json::json!(["normal", "abnormal"]));
    assert_eq!(v["lists"][0]["name"], "train");
    assert_eq!(v["lists"][0]["counts"], serde_json::json!([180, 90]));
    assert_eq!(v["lists"][0]["imbalance_ratio"], 2.0);
    assert_eq!(v["balancing"]["before"], serde_json::json!([180, 20]));
    assert_eq!(v["balancing"]["after"], serde_json::json!([180, 90]));
    assert_eq!(
        v["balancing"]["loss_weights"],
        serde_json::json!([0.21461974722872257, 1.7853802527712772])
    );
    assert_eq!(v["balancing"]["expected_epoch"], serde_json::Value::Null);
}

#[test]
fn an_empty_class_has_an_infinite_ratio() {
    let d = Dir::new();
    d.split(&[4, 0, 2]);
    let r = d.run(&["stats", "split.json", "--json"]);
    r.assert_ok();
    assert_eq!(
        json(&r.stdout)["lists"][0]["imbalance_ratio"],
        serde_json::Value::Null
    );
    let r = d.run(&["stats", "split.json"]);
    assert!(
        r.stdout
            .contains("imbalance ratio infinite (a class is empty) (majority/minority)"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_plot_is_a_readable_png() {
    let d = Dir::new();
    let png = d.join("chart.png");
    let r = run_in(
        &repo(),
        &[
            "stats",
            "tests/golden/upsampling.balanced.json",
            "--plot",
            png.to_str().unwrap(),
        ],
        &[],
    );
    r.assert_ok();
    assert!(r.stdout.ends_with(&format!("chart: {}\n", png.display())));
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (720, 520));
    // Both bar colours are there: before (blue) and after (orange).
    let has = |c: [u8; 3]| img.pixels().any(|p| p.0 == c);
    assert!(has([0x4c, 0x72, 0xb0]) && has([0xdd, 0x84, 0x52]));
    // Drawing the same chart twice gives the same bytes (the font is built in).
    let again = d.join("again.png");
    run_in(
        &repo(),
        &[
            "stats",
            "tests/golden/upsampling.balanced.json",
            "--plot",
            again.to_str().unwrap(),
        ],
        &[],
    )
    .assert_ok();
    assert_eq!(std::fs::read(&png).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn bad_input_and_unwritable_plot() {
    let d = Dir::new();
    d.write("bad.json", "{\"train\": 3}");
    let r = d.run(&["stats", "bad.json"]);
    assert!(
        r.assert_bad_input().starts_with(
            "error: bad.json: invalid type: integer `3`, expected \"train\" to be a list"
        ),
        "{}",
        r.stderr
    );
    d.split(&[3, 1]);
    let r = d.run(&["stats", "split.json", "--plot", "/proc/nope/x.png"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: /proc/nope/x.png: cannot draw the chart: "),
        "{}",
        r.stderr
    );
}
