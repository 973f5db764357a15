//! Synthetic augmentation (`data.synthetic_augmentation`) and the user's command-line
//! overrides, seen from outside: the composed lists, every refusal of their validator and
//! loader, and what `verify`, `stats`, `sample` and `check-leaks` make of such a manifest.

mod util;

use pretty_assertions::assert_eq;
use util::{copy_dir, json, repo, Dir};

/// The user's classifier config, pointed at `split.json`, with this synthetic section.
fn classifier(d: &Dir, section: &str) {
    let base = std::fs::read_to_string(repo().join("configs/classifier.yaml")).unwrap();
    let start = base.find("  synthetic_augmentation:").unwrap();
    let end = base[start..].find("output:").unwrap() + start;
    let text = format!("{}{section}{}", &base[..start], &base[end..])
        .replace("splits/example/train_val_split.json", "split.json")
        .replace("  seed: null", "  seed: 0");
    d.write("config.yaml", &text);
}

/// 6 `c0` and 2 `c1` real training entries, and a selection file of 5 entries.
fn project(selection_labels: &[u32]) -> Dir {
    let d = Dir::new();
    d.split(&[6, 2]);
    let entries: Vec<String> = selection_labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{{\"path\": \"gen/{i}.png\", \"label\": {l}, \"score\": {}.5}}",
                i + 1
            )
        })
        .collect();
    d.write(
        "sel.json",
        &format!(
            "{{\"metadata\": {{\"classes\": {{\"c1\": 1}}}}, \"train\": [{}]}}",
            entries.join(", ")
        ),
    );
    d
}

const ON: &str = "  synthetic_augmentation:\n    enabled: true\n    split_file: sel.json\n";

fn paths(m: &serde_json::Value) -> Vec<String> {
    m["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn replace_minority_with_a_sample_limit_writes_the_composed_list_and_its_record() {
    let d = project(&[1, 0, 1, 1, 1]);
    classifier(
        &d,
        &format!("{ON}    mode: replace_minority\n    replace_class: 1\n    limit:\n      mode: max_samples\n      max_samples: 2\n"),
    );
    let r = d.run(&["balance", "--config", "config.yaml"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "strategy  none
seed      0
synthetic replace_minority from sel.json (max_samples 2, replaces class 1)
class  label  before  removed  synthetic  after
c0         0       6        0          0      6
c1         1       2        2          2      2
total              8        2          2      8
wrote split.balanced.json
"
    );
    let m = json(&d.read("split.balanced.json"));
    // The real c0 entries in order, then the first two c1 entries of the selection.
    let mut want: Vec<String> = (0..8)
        .filter(|i| ![1, 3].contains(i))
        .map(|i| {
            format!(
                "train/c{}/img_{i:05}.png",
                if [1, 3].contains(&i) { 1 } else { 0 }
            )
        })
        .collect();
    want.extend(["gen/0.png".to_string(), "gen/2.png".to_string()]);
    assert_eq!(paths(&m), want);
    assert_eq!(
        m["train"][6],
        serde_json::json!({"path": "gen/0.png", "label": 1, "score": 1.5, "synthetic": true})
    );
    let b = &m["balancing"];
    assert_eq!(b["strategy"], "none");
    assert_eq!(b["source_index"], serde_json::json!([0, 2, 4, 5, 6, 7]));
    let syn = &b["synthetic"];
    assert_eq!(syn["selection_index"], serde_json::json!([0, 2]));
    assert_eq!(syn["selection_samples"], 5);
    assert_eq!(
        syn["class_counts"],
        serde_json::json!({"real": {"c0": 6, "c1": 2}, "removed": {"c0": 0, "c1": 2}, "synthetic": {"c0": 0, "c1": 2}})
    );
    assert_eq!(
        syn["config"],
        serde_json::json!({"enabled": true, "split_file": "sel.json", "mode": "replace_minority", "replace_class": 1, "limit": {"mode": "max_samples", "max_ratio": null, "max_samples": 2}})
    );
    assert_eq!(
        syn["selection_sha256"].as_str().unwrap(),
        sha256(&d.read("sel.json"))
    );
    assert_eq!(
        b["class_counts"]["after"],
        serde_json::json!({"c0": 6, "c1": 2})
    );
    // verify recomputes it; a changed selection file is a difference (exit 3).
    d.run(&["verify", "split.balanced.json"]).assert_ok();
    d.write(
        "sel.json",
        &d.read("sel.json").replace("gen/2.png", "gen/9.png"),
    );
    let r = d.run(&["verify", "split.balanced.json"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("balancing.synthetic.selection_sha256"),
        "{}",
        r.stdout
    );
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn augment_keeps_every_real_entry_and_stats_sample_and_check_leaks_read_it() {
    let d = project(&[1, 1, 1, 0, 1]);
    classifier(&d, ON);
    d.run(&["balance", "--config", "config.yaml"]).assert_ok();
    let m = json(&d.read("split.balanced.json"));
    assert_eq!(m["train"].as_array().unwrap().len(), 13);
    let r = d.run(&["stats", "split.balanced.json"]);
    r.assert_ok();
    assert!(
        r.stdout.contains("synthetic augmentation: augment from sel.json\nclass  before  real removed  synthetic  after\nc0          6             0          1      7\nc1          2             0          4      6\n"),
        "{}",
        r.stdout
    );
    let r = d.run(&[
        "sample",
        "split.balanced.json",
        "--epoch",
        "0",
        "--format",
        "json",
    ]);
    r.assert_ok();
    let mut order: Vec<u64> = serde_json::from_str::<Vec<u64>>(&r.stdout).unwrap();
    order.sort_unstable();
    assert_eq!(order, (0..13).collect::<Vec<u64>>());
}

#[test]
fn check_leaks_compares_synthetic_images_with_val_and_test_only() {
    let d = Dir::new();
    copy_dir(&repo().join("splits/example"), &d.join("splits/example"));
    // A "generated" image that is a byte copy of a real validation image, one that copies a
    // real training image (what a generator is for: not a leak), and a distinct one.
    let split = json(&d.read("splits/example/train_val_split.json"));
    let val0 = split["val"][0]["path"].as_str().unwrap().to_owned();
    let train0 = split["train"][0]["path"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(d.join("gen")).unwrap();
    std::fs::copy(d.join(&val0), d.join("gen/copy_of_val.png")).unwrap();
    std::fs::copy(d.join(&train0), d.join("gen/copy_of_train.png")).unwrap();
    std::fs::copy(
        d.join("splits/example/generated/abnormal/sample_0000.png"),
        d.join("gen/own.png"),
    )
    .unwrap();
    d.write(
        "sel.json",
        r#"{"train": [{"path": "gen/copy_of_val.png", "label": 1}, {"path": "gen/copy_of_train.png", "label": 1}, {"path": "gen/own.png", "label": 1}]}"#,
    );
    let base = std::fs::read_to_string(repo().join("configs/examples/dose_ladder.yaml")).unwrap();
    d.write(
        "config.yaml",
        &base
            .replace("splits/example/accepted_samples.json", "sel.json")
            .replace("      mode: max_samples\n", "      mode: null\n"),
    );
    d.run(&["balance", "--config", "config.yaml"]).assert_ok();
    let r = d.run(&[
        "check-leaks",
        "splits/example/train_val_split.balanced.json",
        "--json",
    ]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let report = json(&r.stdout);
    // One cluster (the byte copy of a val image), no near copy: the copy of a training
    // image is a generator's business, the other generated image resembles nothing.
    let clusters: Vec<Vec<String>> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| format!("{}[{}]", m["list"].as_str().unwrap(), m["index"]))
                .collect()
        })
        .collect();
    assert_eq!(
        clusters,
        [["synthetic[0]".to_string(), "val[0]".to_string()]]
    );
    assert_eq!(report["pairs"], serde_json::json!([]));
}

#[test]
fn their_validators_refusals_are_one_line_and_write_nothing() {
    let cases: &[(&str, &str)] = &[
        ("  synthetic_augmentation:\n    enabled: true\n", "error: config.yaml: data.synthetic_augmentation.split_file: expected the path of a sample-selection JSON (a non-empty string) because synthetic augmentation is enabled, found nothing"),
        (&format!("{ON}    mode: swap\n"), "error: config.yaml: data.synthetic_augmentation.mode: expected augment or replace_minority, found \"swap\""),
        (&format!("{ON}    mode: replace_minority\n    replace_class: -1\n"), "error: config.yaml: data.synthetic_augmentation.replace_class: expected a non-negative integer (the label of the class to replace) because mode is replace_minority, found -1"),
        (&format!("{ON}    limit: {{mode: max_ratio, max_ratio: null}}\n"), "error: config.yaml: data.synthetic_augmentation.limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found null"),
        (&format!("{ON}    limit: {{mode: max_ratio, max_ratio: -1}}\n"), "error: config.yaml: data.synthetic_augmentation.limit.max_ratio: expected a positive finite number because limit.mode is max_ratio, found -1"),
        (&format!("{ON}    limit: {{mode: max_samples, max_samples: 0}}\n"), "error: config.yaml: data.synthetic_augmentation.limit.max_samples: expected a positive integer because limit.mode is max_samples, found 0"),
        (&format!("{ON}    limit: {{mode: first}}\n"), "error: config.yaml: data.synthetic_augmentation.limit.mode: expected null, max_ratio or max_samples, found \"first\""),
        ("  synthetic_augmentation:\n    enabeld: true\n", "error: config.yaml: data.synthetic_augmentation.enabeld: unknown key; expected one of enabled, split_file, mode, replace_class, limit"),
        ("  synthetic_augmentation:\n    enabled: true\n    split_file: missing.json\n", "error: config.yaml: data.synthetic_augmentation.split_file: cannot read the sample-selection file missing.json: No such file or directory (os error 2)"),
        (&format!("{ON}    mode: replace_minority\n    replace_class: 2\n"), "error: split.json: data.synthetic_augmentation.replace_class is 2 but no real training entry has that label; the labels present are [0, 1]"),
        (&format!("{ON}    mode: replace_minority\n    replace_class: 0\n"), "error: split.json: data.synthetic_augmentation.replace_class is 0 but the selection file has no entry of that label, so nothing would replace the removed real entries; its labels are [1]"),
    ];
    for (section, message) in cases {
        let d = project(&[1, 1, 1, 1, 1]);
        classifier(&d, section);
        let r = d.run(&["balance", "--config", "config.yaml"]);
        assert_eq!(r.assert_bad_input(), *message, "{section}");
        assert!(!d.exists("split.balanced.json"), "{section}");
    }
    // Together with a balancing strategy, as their validator refuses it.
    let d = project(&[1]);
    classifier(&d, ON);
    d.write(
        "config.yaml",
        &d.read("config.yaml").replace(
            "    upsampling:\n      enabled: false",
            "    upsampling:\n      enabled: true",
        ),
    );
    assert_eq!(
        d.run(&["balance", "--config", "config.yaml"]).assert_bad_input(),
        "error: config.yaml: data.synthetic_augmentation: cannot be combined with data.balancing.upsampling (enabled); the user's trainer refuses both together: disable one of them"
    );
    // An empty selection file, and one whose label is not a class of the real split.
    for (text, message) in [
        (r#"{"train": []}"#, "error: sel.json: train: is empty; the selection file has no synthetic images"),
        (r#"{"train": [{"path": "g.png", "label": 7}]}"#, "error: sel.json: train[0].label: 7 is not a class of the real split (expected an integer from 0 to 1)"),
        (r#"{"val": []}"#, "error: sel.json: train: missing; a sample-selection file lists its images under \"train\""),
    ] {
        let d = project(&[1]);
        classifier(&d, ON);
        d.write("sel.json", text);
        assert_eq!(d.run(&["balance", "--config", "config.yaml"]).assert_bad_input(), message);
        assert!(!d.exists("split.balanced.json"));
    }
}

#[test]
fn a_limit_of_zero_is_a_warning_recorded_in_the_manifest() {
    let d = project(&[1, 1, 1, 1, 1]);
    classifier(
        &d,
        &format!("{ON}    limit: {{mode: max_ratio, max_ratio: 0.1}}\n"),
    );
    let r = d.run(&["balance", "--config", "config.yaml"]);
    r.assert_ok();
    let warning = "data.synthetic_augmentation.limit resolves to 0 synthetic entries (max_ratio 0.1 of 8 real entries); none is added";
    assert_eq!(r.stderr, format!("warning: {warning}\n"));
    let m = json(&d.read("split.balanced.json"));
    assert_eq!(m["balancing"]["warnings"], serde_json::json!([warning]));
    assert_eq!(m["train"].as_array().unwrap().len(), 8);
}

#[test]
fn overrides_give_the_edited_configs_manifest_and_typos_are_refused() {
    let d = project(&[1, 0, 1, 1, 1]);
    classifier(
        &d,
        &format!("{ON}    mode: replace_minority\n    replace_class: 1\n"),
    );
    d.run(&["balance", "--config", "config.yaml", "--out", "edited.json"])
        .assert_ok();
    classifier(&d, "  synthetic_augmentation:\n    enabled: false\n    split_file: null\n    mode: augment\n    replace_class: null\n");
    d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--out",
        "overridden.json",
        "--data.synthetic_augmentation.enabled",
        "true",
        "--data.synthetic_augmentation.split_file",
        "sel.json",
        "--data.synthetic_augmentation.mode",
        "replace_minority",
        "--data.synthetic_augmentation.replace_class",
        "1",
    ])
    .assert_ok();
    let mut a = json(&d.read("edited.json"));
    let mut b = json(&d.read("overridden.json"));
    assert_eq!(
        b["balancing"]
            .as_object_mut()
            .unwrap()
            .remove("overrides")
            .unwrap(),
        serde_json::json!([
            ["data.synthetic_augmentation.enabled", "true"],
            ["data.synthetic_augmentation.split_file", "sel.json"],
            ["data.synthetic_augmentation.mode", "replace_minority"],
            ["data.synthetic_augmentation.replace_class", "1"]
        ])
    );
    assert!(a["balancing"]
        .as_object_mut()
        .unwrap()
        .remove("overrides")
        .is_none());
    assert_eq!(a, b);
    d.run(&["verify", "overridden.json"]).assert_ok();
    // Seeds and strategies as the user's pipeline driver passes them.
    let r = d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--dry-run",
        "--compute.seed",
        "7",
        "--data.balancing.upsampling.enabled",
        "true",
    ]);
    r.assert_ok();
    assert!(
        r.stdout.starts_with("strategy  upsampling\nseed      7\n"),
        "{}",
        r.stdout
    );
    for (args, message) in [
        (
            vec!["--data.balancing.upsampling.enabeld", "true"],
            "error: config.yaml: overrides: unknown config key \"data.balancing.upsampling.enabeld\" (a typo?); the keys at data.balancing.upsampling are enabled, target_ratio",
        ),
        (
            vec!["--compute.seed"],
            "error: override --compute.seed: missing value; each override is --dotted.key value (for example --compute.seed 42)",
        ),
        (
            vec!["--data.balancing.upsampling.target_ratio", "abc"],
            "error: config.yaml: data.balancing.upsampling.target_ratio: invalid type: string \"abc\", expected f64 (with the command-line overrides applied)",
        ),
    ] {
        let mut all = vec!["balance", "--config", "config.yaml", "--out", "x.json"];
        all.extend(args);
        assert_eq!(d.run(&all).assert_bad_input(), message);
        assert!(!d.exists("x.json"));
    }
}

#[test]
fn split_takes_overrides_too() {
    let d = Dir::new();
    copy_dir(&repo().join("splits/example"), &d.join("splits/example"));
    std::fs::copy(
        repo().join("configs/examples/data_preparation.yaml"),
        d.join("prep.yaml"),
    )
    .unwrap();
    let edited = d
        .read("prep.yaml")
        .replace("seed: 42", "seed: 7")
        .replace("train_val_test_split.json", "edited.json");
    d.write("edited.yaml", &edited);
    d.run(&["split", "--config", "edited.yaml"]).assert_ok();
    d.run(&[
        "split",
        "--config",
        "prep.yaml",
        "--split.seed",
        "7",
        "--split.split_file",
        "overridden.json",
    ])
    .assert_ok();
    let save = serde_yaml_save_dir(&d.read("prep.yaml"));
    assert_eq!(
        d.read(&format!("{save}/edited.json")),
        d.read(&format!("{save}/overridden.json"))
    );
    let r = d.run(&["split", "--config", "prep.yaml", "--split.sed", "7"]);
    assert!(
        r.assert_bad_input()
            .contains("unknown config key \"split.sed\""),
        "{}",
        r.stderr
    );
}

fn serde_yaml_save_dir(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("save_dir:"))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap()
}
