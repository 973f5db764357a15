//! `balance-split verify`: recomputation, and naming the first difference.

mod util;

use pretty_assertions::assert_eq;
use util::{json, Dir};

/// A balanced manifest `m.json` of a generated split, upsampled.
fn setup() -> Dir {
    let d = Dir::new();
    d.split(&[12, 4])
        .config("    upsampling:\n      enabled: true\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    d
}

#[test]
fn an_untouched_manifest_verifies() {
    let d = setup();
    let r = d.run(&["verify", "m.json"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "ok: m.json is exactly what split.json gives with its recorded config and seed\n"
    );
    let r = d.run(&["verify", "m.json", "--config", "config.yaml", "--json"]);
    r.assert_ok();
    let v = json(&r.stdout);
    assert_eq!(v["identical"], true);
    assert_eq!(v["differences"], serde_json::json!([]));
}

#[test]
fn an_edited_entry_is_named() {
    let d = setup();
    let text = d
        .read("m.json")
        .replacen("\"label\": 0}", "\"label\": 1}", 1);
    d.write("m.json", &text);
    let r = d.run(&["verify", "m.json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "differs: m.json\n  train[0].label: expected 0, found 1\n"
    );
}

#[test]
fn a_changed_source_is_reported_first() {
    let d = setup();
    let split = d.read("split.json").replacen("img_00000", "img_99999", 1);
    d.write("split.json", &split);
    let r = d.run(&["verify", "m.json"]);
    assert_eq!(r.code, 3);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[1].starts_with("  balancing.source.split_sha256: expected "),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].ends_with("(split.json changed since the manifest was written)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[2],
        "  train[0].path: expected \"train/c0/img_99999.png\", found \"train/c0/img_00000.png\""
    );
}

#[test]
fn a_different_seed_changes_the_selection() {
    let d = setup();
    let text = d.read("m.json").replace(
        "\"seed\": 0,\n    \"strategy\"",
        "\"seed\": 1,\n    \"strategy\"",
    );
    d.write("m.json", &text);
    let r = d.run(&["verify", "m.json"]);
    assert_eq!(r.code, 3);
    assert!(
        r.stdout.starts_with("differs: m.json\n  train["),
        "{}",
        r.stdout
    );
}

#[test]
fn a_config_that_drifted_is_reported() {
    let d = setup();
    d.write(
        "other.yaml",
        "compute:\n  seed: 4\ndata:\n  balancing:\n    upsampling:\n      enabled: true\n      target_ratio: 0.5\n",
    );
    let r = d.run(&["verify", "m.json", "--config", "other.yaml"]);
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stdout,
        "differs: m.json\n  other.yaml: compute.seed: expected 0, found 4\n  other.yaml: data.balancing.upsampling.target_ratio: expected 1.0, found 0.5\n"
    );
}

#[test]
fn split_override_and_layout_changes() {
    let d = setup();
    std::fs::rename(d.join("split.json"), d.join("moved.json")).unwrap();
    let r = d.run(&["verify", "m.json"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: split.json: cannot read split file: No such file or directory (os error 2)"
    );
    d.run(&["verify", "m.json", "--split", "moved.json"])
        .assert_ok();
    // Same content, other layout (pretty-printed by another tool): still a difference.
    let v = json(&d.read("m.json"));
    d.write("m.json", &serde_json::to_string_pretty(&v).unwrap());
    let r = d.run(&["verify", "m.json", "--split", "moved.json"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stdout, "differs: m.json\n  line 9: expected     {\"path\": \"train/c0/img_00000.png\", \"label\": 0},, found     {\n");
}

#[test]
fn a_plain_split_is_bad_input() {
    let d = setup();
    let r = d.run(&["verify", "split.json"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: split.json: not a manifest (no \"balancing\" section); run balance-split balance first"
    );
}
