//! `balance-split split` seen from outside: the user's configs give the pinned files, the
//! report, `force`, small classes, groups, and bad input.
//!
//! The golden files under tests/golden/split/ are also what examples/python/split_reference.py
//! derives with CPython's own `random` (tests/python/test_split_reference.py checks that).
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test cli_split` and say why in the commit.

mod util;

use std::path::Path;

use pretty_assertions::assert_eq;
use util::{copy_dir, json, repo, Dir};

/// A project holding the user's folder layout (`data/0.Normal`, `data/1.Abnormal`, the
/// embedded example's training images) and their two configs, unchanged.
fn users_project() -> Dir {
    let d = Dir::new();
    let images = repo().join("splits/example/images/train");
    copy_dir(&images.join("0.Normal"), &d.join("data/0.Normal"));
    copy_dir(&images.join("1.Abnormal"), &d.join("data/1.Abnormal"));
    for name in ["data-preparation.yaml", "data-preparation-kfold.yaml"] {
        std::fs::copy(repo().join("tests/fixtures").join(name), d.join(name)).unwrap();
    }
    d
}

/// Compares `dir/name` with `tests/golden/split/<set>/name`, or rewrites the golden file.
fn golden(dir: &Path, set: &str, names: &[String]) {
    let golden_dir = repo().join("tests/golden/split").join(set);
    for name in names {
        let got = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let path = golden_dir.join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(got == want, "{name} differs from {}", path.display());
    }
}

#[test]
fn the_users_ratio_config_gives_the_pinned_file_and_table() {
    let d = users_project();
    let r = d.run(&["split", "--config", "data-preparation.yaml"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "outputs/splits/train_val_test_split.json  written
  class     total  train  val  test  train%  val%  test%
  normal      180    125   27    28    69.4  15.0   15.6
  abnormal     20     14    3     3    70.0  15.0   15.0
  all         200    139   30    31    69.5  15.0   15.5
"
    );
    assert_eq!(r.stderr, "");
    golden(
        &d.join("outputs/splits"),
        "users",
        &["train_val_test_split.json".into()],
    );
    let m = json(&d.read("outputs/splits/train_val_test_split.json"));
    assert_eq!(m["metadata"]["seed"], 42);
    assert!(m["metadata"].get("created_at").is_none());
    assert_eq!(
        m["metadata"]["classes"],
        serde_json::json!({"normal": 0, "abnormal": 1})
    );
}

#[test]
fn the_users_kfold_config_gives_ten_pinned_files_named_by_index() {
    let d = users_project();
    let r = d.run(&["split", "--config", "data-preparation-kfold.yaml"]);
    r.assert_ok();
    let names: Vec<String> = (0..10).map(|i| format!("cv_split_{i}.json")).collect();
    let mut found: Vec<String> = std::fs::read_dir(d.join("outputs/splits"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(found, sorted);
    golden(&d.join("outputs/splits"), "users-kfold", &names);
    for (i, name) in names.iter().enumerate() {
        let m = json(&d.read(&format!("outputs/splits/{name}")));
        let md = &m["metadata"];
        assert_eq!(
            (
                md["split_index"].as_u64(),
                md["repeat"].as_u64(),
                md["fold"].as_u64()
            ),
            (Some(i as u64), Some(i as u64 / 5), Some(i as u64 % 5))
        );
        assert_eq!(md["repeat_seed"], [42, 43][i / 5]);
        assert!(r.stdout.contains(&format!(
            "split {i} (repeat {}, fold {})  outputs/splits/{name}  written\n",
            i / 5,
            i % 5
        )));
    }
}

#[test]
fn created_at_is_added_first_only_on_request() {
    let d = users_project();
    d.run(&["split", "--config", "data-preparation.yaml", "--created-at"])
        .assert_ok();
    let text = d.read("outputs/splits/train_val_test_split.json");
    let line = text.lines().nth(2).unwrap();
    // "    "created_at": "2026-12-02T12:00:00","
    assert!(line.starts_with("    \"created_at\": \"20"), "{line}");
    assert_eq!(
        line.len(),
        "    \"created_at\": \"2026-12-02T12:00:00\",".len(),
        "{line}"
    );
}

#[test]
fn an_existing_file_is_kept_unless_forced() {
    let d = users_project();
    d.write("outputs/splits/train_val_test_split.json", "old");
    let r = d.run(&["split", "--config", "data-preparation.yaml"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "outputs/splits/train_val_test_split.json  kept (it exists; --force or split.force: true overwrites it)\n"
    );
    assert_eq!(d.read("outputs/splits/train_val_test_split.json"), "old");
    let r = d.run(&[
        "split",
        "--config",
        "data-preparation.yaml",
        "--dry-run",
        "--force",
    ]);
    r.assert_ok();
    assert!(r
        .stdout
        .starts_with("outputs/splits/train_val_test_split.json  would be written (dry run)\n"));
    assert_eq!(d.read("outputs/splits/train_val_test_split.json"), "old");
    d.run(&["split", "--config", "data-preparation.yaml", "--force"])
        .assert_ok();
    golden(
        &d.join("outputs/splits"),
        "users",
        &["train_val_test_split.json".into()],
    );

    // K-fold: each file on its own; the missing ones are written.
    d.write("outputs/splits/cv_split_3.json", "old");
    let r = d.run(&["split", "--config", "data-preparation-kfold.yaml"]);
    r.assert_ok();
    assert!(r
        .stdout
        .contains("split 3 (repeat 0, fold 3)  outputs/splits/cv_split_3.json  kept"));
    assert_eq!(d.read("outputs/splits/cv_split_3.json"), "old");
    assert!(d.exists("outputs/splits/cv_split_9.json"));
}

#[test]
fn a_dry_run_writes_nothing() {
    let d = users_project();
    let r = d.run(&[
        "split",
        "--config",
        "data-preparation-kfold.yaml",
        "--dry-run",
    ]);
    r.assert_ok();
    assert!(r
        .stdout
        .contains("outputs/splits/cv_split_9.json  would be written (dry run)"));
    assert!(!d.exists("outputs"));
}

/// A project with classes of the given sizes (empty files named like images) and a
/// ratio config with these ratios.
fn small_classes(sizes: &[usize], ratios: &str) -> Dir {
    let d = Dir::new();
    let mut classes = String::new();
    for (c, &n) in sizes.iter().enumerate() {
        for i in 0..n {
            d.write(&format!("img/c{c}/{i:02}.png"), "");
        }
        classes += &format!("  c{c}: {{path: img/c{c}, label: {c}}}\n");
    }
    d.write(
        "prep.yaml",
        &format!(
            "experiment: data_preparation\nclasses:\n{classes}split:\n  seed: 3\n{ratios}  save_dir: out\n  split_file: s.json\n"
        ),
    );
    d
}

fn class_samples(d: &Dir) -> Vec<[u64; 4]> {
    let m = json(&d.read("out/s.json"));
    m["metadata"]["class_samples"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| ["total", "train", "val", "test"].map(|k| v[k].as_u64().unwrap()))
        .collect()
}

#[test]
fn small_classes_follow_the_users_count_rules() {
    let d = small_classes(
        &[1, 2, 3, 7],
        "  train_ratio: 0.7\n  val_ratio: 0.15\n  test_ratio: 0.15\n",
    );
    let r = d.run(&["split", "--config", "prep.yaml"]);
    r.assert_ok();
    assert_eq!(
        class_samples(&d),
        [[1, 0, 0, 1], [2, 1, 1, 0], [3, 2, 1, 0], [7, 4, 1, 2]]
    );
    assert_eq!(
        r.stderr,
        "warning: class 'c1' has too few samples (2) to populate the test split; its test entries are empty although test_ratio > 0
warning: class 'c2' has too few samples (3) to populate the test split; its test entries are empty although test_ratio > 0
"
    );
    // Odd ratios, and a test ratio of 0 written as an integer stays one.
    let d = small_classes(
        &[7, 10],
        "  train_ratio: 0.34\n  val_ratio: 0.66\n  test_ratio: 0\n",
    );
    d.run(&["split", "--config", "prep.yaml"]).assert_ok();
    assert_eq!(class_samples(&d), [[7, 2, 4, 1], [10, 3, 6, 1]]);
    assert!(d.read("out/s.json").contains("\"test_ratio\": 0\n"));
}

#[test]
fn a_null_seed_is_drawn_printed_and_recorded() {
    let d = small_classes(
        &[5, 5],
        "  train_ratio: 0.6\n  val_ratio: 0.2\n  test_ratio: 0.2\n",
    );
    let text = d.read("prep.yaml").replace("seed: 3", "seed: null");
    d.write("prep.yaml", &text);
    let r = d.run(&["split", "--config", "prep.yaml"]);
    r.assert_ok();
    let seed = json(&d.read("out/s.json"))["metadata"]["seed"]
        .as_u64()
        .unwrap();
    assert_eq!(
        r.stderr,
        format!("note: split.seed is null; drew seed {seed} from the OS and recorded it in metadata.seed\n")
    );
}

/// `count` files per patient `p{g}` in two classes: patient `g` is abnormal when `g % 10 == 0`.
fn grouped_project(patients: usize, group_by: &str) -> Dir {
    let d = Dir::new();
    for g in 0..patients {
        let class = if g % 10 == 0 { "abnormal" } else { "normal" };
        for i in 0..1 + g % 4 {
            d.write(&format!("img/{class}/p{g:03}_{i}.png"), "");
        }
    }
    d.write(
        "prep.yaml",
        &format!(
            "experiment: data_preparation
classes:
  normal: {{path: img/normal, label: 0}}
  abnormal: {{path: img/abnormal, label: 1}}
split:
  mode: kfold
  n_folds: 3
  n_repeats: 1
  repeat_seeds: [9]
  val_fraction: 0.2
  save_dir: out
  split_file: cv_{{index}}.json
  group_by: {group_by}
"
        ),
    );
    d
}

fn patient(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap();
    name.split('_').next().unwrap()
}

#[test]
fn groups_never_straddle_lists_and_the_report_shows_requested_shares() {
    let d = grouped_project(60, "{regex: \"^(?P<group>p[0-9]+)_\"}");
    let r = d.run(&["split", "--config", "prep.yaml"]);
    r.assert_ok();
    let mut tested = std::collections::BTreeMap::new();
    for i in 0..3 {
        let m = json(&d.read(&format!("out/cv_{i}.json")));
        let mut list_of = std::collections::HashMap::new();
        for list in ["train", "val", "test"] {
            for e in m[list].as_array().unwrap() {
                let p = patient(e["path"].as_str().unwrap()).to_owned();
                assert_eq!(
                    *list_of.entry(p.clone()).or_insert(list),
                    list,
                    "{p} in two lists of split {i}"
                );
            }
        }
        for (p, list) in list_of {
            if list == "test" {
                *tested.entry(p).or_insert(0) += 1;
            }
        }
        assert_eq!(m["metadata"]["groups"], 60);
        assert_eq!(
            m["metadata"]["group_by"],
            serde_json::json!({"regex": "^(?P<group>p[0-9]+)_"})
        );
    }
    assert_eq!(tested.len(), 60);
    assert!(
        tested.values().all(|&n| n == 1),
        "every patient tested once per repeat"
    );
    assert!(
        r.stdout.contains(
            "  class     total  train  val  test       train%         val%        test%\n"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(33.3)"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("groups    60; largest deviation from a requested share: "),
        "{}",
        r.stdout
    );
}

#[test]
fn a_group_table_and_unmatched_files() {
    let d = grouped_project(
        12,
        "{csv: groups.csv, path_column: file, group_column: patient}",
    );
    let mut table = String::from("file,patient\n");
    for e in walk(&d.join("img")) {
        let rel = e
            .strip_prefix(d.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        table += &format!("./{rel},{}\n", patient(&rel));
    }
    d.write("groups.csv", &table);
    d.run(&["split", "--config", "prep.yaml"]).assert_ok();
    assert_eq!(json(&d.read("out/cv_0.json"))["metadata"]["groups"], 12);

    // One file missing from the table; then a regex that matches nothing.
    let short: String = table
        .lines()
        .filter(|l| !l.contains("p005_0"))
        .map(|l| format!("{l}\n"))
        .collect();
    d.write("groups.csv", &short);
    let before = d.read("out/cv_0.json");
    let r = d.run(&["split", "--config", "prep.yaml", "--force"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: prep.yaml: split.group_by: 1 file(s) have no group (not listed in groups.csv): img/normal/p005_0.png"
    );
    assert_eq!(d.read("out/cv_0.json"), before);
    let text = d.read("prep.yaml").replace(
        "{csv: groups.csv, path_column: file, group_column: patient}",
        "{regex: \"^(?P<group>q[0-9]+)_\"}",
    );
    d.write("prep.yaml", &text);
    let r = d.run(&["split", "--config", "prep.yaml", "--force"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: prep.yaml: split.group_by: 30 file(s) have no group (the regex ^(?P<group>q[0-9]+)_ does not match): img/normal/p001_0.png, img/normal/p001_1.png, img/normal/p002_0.png, img/normal/p002_1.png, img/normal/p002_2.png, ..."
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// What is done to the project, and the error line it gives.
type Case<'a> = (&'a str, &'a dyn Fn(&Dir), &'a str);

#[test]
fn class_folders_that_cannot_be_used_exit_2_and_write_nothing() {
    let cases: [Case; 4] = [
        ("missing", &|_| {}, "error: prep.yaml: classes.c1.path: class directory not found: img/c1"),
        ("a file", &|d| { d.write("img/c1", "x"); }, "error: prep.yaml: classes.c1.path: not a directory: img/c1"),
        ("no images", &|d| { d.write("img/c1/a.gif", ""); d.write("img/c1/b.Png", ""); },
            "error: prep.yaml: classes.c1.path: no image files (*.jpg, *.jpeg, *.png, *.ppm, *.bmp, *.pgm, *.tif, *.tiff, *.webp and upper case) in img/c1"),
        ("bad config", &|d| { d.write("img/c1/a.png", ""); let t = d.read("prep.yaml").replace("seed: 3", "seed: x"); d.write("prep.yaml", &t); },
            "error: prep.yaml: split.seed: expected an integer or null, found \"x\""),
    ];
    for (what, setup, want) in cases {
        let d = small_classes(
            &[3],
            "  train_ratio: 0.7\n  val_ratio: 0.15\n  test_ratio: 0.15\n",
        );
        let text = d
            .read("prep.yaml")
            .replace("split:", "  c1: {path: img/c1, label: 1}\nsplit:");
        d.write("prep.yaml", &text);
        setup(&d);
        let r = d.run(&["split", "--config", "prep.yaml"]);
        assert_eq!(r.assert_bad_input(), want, "{what}");
        assert_eq!(r.stdout, "", "{what}");
        assert!(!d.exists("out"), "{what}: nothing written");
    }
}

#[test]
fn the_json_report_lists_every_split() {
    let d = users_project();
    let r = d.run(&[
        "split",
        "--config",
        "data-preparation-kfold.yaml",
        "--json",
        "--dry-run",
    ]);
    r.assert_ok();
    let v = json(&r.stdout);
    let splits = v["splits"].as_array().unwrap();
    assert_eq!(splits.len(), 10);
    assert_eq!(splits[7]["path"], "outputs/splits/cv_split_7.json");
    assert_eq!(splits[7]["status"], "would_write");
    assert_eq!(
        (splits[7]["repeat"].as_u64(), splits[7]["fold"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(splits[7]["classes"][1]["name"], "abnormal");
    assert_eq!(splits[7]["classes"][1]["total"], 20);
}

#[test]
fn the_example_configs_run_from_the_repository() {
    for config in [
        "data_preparation",
        "data_preparation_kfold",
        "data_preparation_grouped",
    ] {
        let d = Dir::new();
        copy_dir(&repo().join("splits/example"), &d.join("splits/example"));
        std::fs::create_dir_all(d.join("configs/examples")).unwrap();
        let name = format!("configs/examples/{config}.yaml");
        std::fs::copy(repo().join(&name), d.join(&name)).unwrap();
        let r = d.run(&["split", "--config", &name]);
        r.assert_ok();
        assert_eq!(r.stderr, "", "{config}");
        if config == "data_preparation_grouped" {
            let names: Vec<String> = (0..10).map(|i| format!("cv_split_{i}.json")).collect();
            golden(&d.join("outputs/splits/grouped"), "grouped", &names);
        }
    }
}

/// Ten k-fold splits balanced in one call: each manifest is byte for byte the one balancing
/// that split alone writes; a broken split fails alone, naming itself.
#[test]
fn balancing_a_set_of_splits_equals_balancing_each_alone() {
    let d = users_project();
    d.run(&["split", "--config", "data-preparation-kfold.yaml"])
        .assert_ok();
    std::fs::copy(
        repo().join("configs/examples/upsampling.yaml"),
        d.join("up.yaml"),
    )
    .unwrap();
    let names: Vec<String> = (0..10)
        .map(|i| format!("outputs/splits/cv_split_{i}.json"))
        .collect();
    let mut alone = Vec::new();
    for name in &names {
        d.run(&["balance", "--config", "up.yaml", "--split", name])
            .assert_ok();
        let m = name.replace(".json", ".balanced.json");
        alone.push(d.read(&m));
        std::fs::remove_file(d.join(&m)).unwrap();
    }
    // A quoted pattern, expanded by us in path order (cv_split_0, 1, ...).
    let r = d.run(&[
        "balance",
        "--config",
        "up.yaml",
        "--split",
        "outputs/splits/cv_split_*.json",
    ]);
    r.assert_ok();
    for (name, want) in names.iter().zip(&alone) {
        assert!(
            d.read(&name.replace(".json", ".balanced.json")) == *want,
            "{name}"
        );
    }
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "classes   normal/abnormal");
    assert_eq!(lines[1], "seed      0");
    assert_eq!(
        lines[2],
        "split                           strategy    before    after  manifest"
    );
    assert_eq!(lines[3], "outputs/splits/cv_split_0.json  upsampling  117/13  117/117  outputs/splits/cv_split_0.balanced.json");
    assert_eq!(lines.len(), 13);

    // One broken split among them, given as separate arguments.
    d.write("outputs/splits/cv_split_4.json", "{\"metadata\": 3}");
    for name in &names {
        let _ = std::fs::remove_file(d.join(&name.replace(".json", ".balanced.json")));
    }
    let mut args = vec!["balance", "--config", "up.yaml", "--split"];
    args.extend(names.iter().map(String::as_str));
    let r = d.run(&args);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: outputs/splits/cv_split_4.json: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("outputs/splits/cv_split_4.json  failed"),
        "{}",
        r.stdout
    );
    for (i, name) in names.iter().enumerate() {
        let m = name.replace(".json", ".balanced.json");
        assert_eq!(d.exists(&m), i != 4, "{m}");
        if i != 4 {
            assert!(d.read(&m) == alone[i], "{m}");
        }
    }
    // --out names one manifest, so it takes one split.
    let r = d.run(&[
        "balance", "--config", "up.yaml", "--out", "m.json", "--split", &names[0], &names[1],
    ]);
    assert_eq!(
        r.assert_bad_input(),
        "error: --out takes a single split, found 2; without it each manifest is written beside its split"
    );
    let r = d.run(&[
        "balance",
        "--config",
        "up.yaml",
        "--split",
        "nothing_*.json",
    ]);
    assert_eq!(
        r.assert_bad_input(),
        "error: --split nothing_*.json: no split file matches (manifests, *.balanced.json, are skipped)"
    );
    // Run again: the pattern skips the manifests the first run wrote.
    let r = d.run(&[
        "balance",
        "--config",
        "up.yaml",
        "--split",
        "outputs/splits/cv_split_[0-3].json",
    ]);
    r.assert_ok();
    assert_eq!(r.stdout.lines().count(), 3 + 4, "{}", r.stdout);
    // A plain split named like another's manifest is an input, never overwritten.
    std::fs::copy(
        d.join(&names[1]),
        d.join("outputs/splits/cv_split_0.balanced.json"),
    )
    .unwrap();
    let before = d.read("outputs/splits/cv_split_0.balanced.json");
    let r = d.run(&[
        "balance",
        "--config",
        "up.yaml",
        "--split",
        &names[0],
        "outputs/splits/cv_split_0.balanced.json",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "error: outputs/splits/cv_split_0.balanced.json: refusing to overwrite an input file"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(d.read("outputs/splits/cv_split_0.balanced.json"), before);
}

#[test]
fn unusable_destinations_are_refused_before_anything_is_written() {
    let d = users_project();
    // save_dir is a file.
    let text = d
        .read("data-preparation-kfold.yaml")
        .replace("outputs/splits", "afile");
    d.write("k.yaml", &text);
    d.write("afile", "x");
    let r = d.run(&["split", "--config", "k.yaml"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: k.yaml: split.save_dir: not a directory: afile"
    );
    // An output that is a folder is refused in a dry run too.
    let text = d
        .read("data-preparation-kfold.yaml")
        .replace("cv_split_{index}.json", "d{index}.json");
    d.write("k2.yaml", &text);
    std::fs::create_dir_all(d.join("outputs/splits/d3.json")).unwrap();
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec!["split", "--config", "k2.yaml", "--force"];
        args.extend(extra);
        let r = d.run(&args);
        assert_eq!(
            r.assert_bad_input(),
            "error: outputs/splits/d3.json: refusing to replace a directory with a regular file; choose a file path"
        );
    }
    assert!(!d.exists("outputs/splits/d0.json"), "nothing written");
}

#[test]
fn fewer_groups_than_folds_is_warned_about() {
    let d = grouped_project(2, "{regex: \"^(?P<group>p[0-9]+)_\"}");
    let r = d.run(&["split", "--config", "prep.yaml"]);
    r.assert_ok();
    assert!(
        r.stderr
            .contains("warning: only 2 group(s) for 3 folds: some test folds are empty\n"),
        "{}",
        r.stderr
    );
}

/// `--check-leaks`: a copy of an image in the same class lands in another fold's test list,
/// so the set is refused with exit 4 and nothing is written; grouped by content it passes.
#[test]
fn check_leaks_refuses_identical_pixels_across_lists() {
    let d = Dir::new();
    let images = repo().join("splits/example/images/train/0.Normal");
    std::fs::create_dir_all(d.join("img/n")).unwrap();
    for i in 0..4 {
        let to = d.join(&format!("img/n/p{i}_a.png"));
        std::fs::copy(images.join(format!("image_{i:03}.png")), to).unwrap();
    }
    std::fs::copy(d.join("img/n/p2_a.png"), d.join("img/n/p2_b.png")).unwrap();
    d.write(
        "prep.yaml",
        "experiment: data_preparation
classes:
  n: {path: img/n, label: 0}
split:
  mode: kfold
  n_folds: 5
  n_repeats: 1
  repeat_seeds: [1]
  val_fraction: 0.2
  save_dir: out
  split_file: cv_{index}.json
",
    );
    let r = d.run(&["split", "--config", "prep.yaml", "--check-leaks"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: out/cv_0.json: identical pixels in "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("img/n/p2_a.png") && r.stderr.contains("img/n/p2_b.png"),
        "{}",
        r.stderr
    );
    assert!(!d.exists("out"));
    // Grouped by patient, the two copies stay together.
    let text = d.read("prep.yaml") + "  group_by: {regex: \"^(?P<group>p[0-9]+)_\"}\n";
    d.write("prep.yaml", &text);
    d.run(&["split", "--config", "prep.yaml", "--check-leaks"])
        .assert_ok();
    assert!(d.exists("out/cv_4.json"));
}

/// Output names no file system takes are refused before any folder is made (exit 2, not
/// exit 1 after creating save_dir); two classes reading one folder are warned about.
#[test]
fn impossible_output_names_are_refused_first_and_shared_folders_warned_about() {
    for (name, want) in [
        (
            "\"a\\x00b.json\"".to_string(),
            "error: prep.yaml: split.split_file: contains a NUL byte, which no path can hold: \"a\\u{0}b.json\"".to_string(),
        ),
        (
            format!("{}.json", "n".repeat(260)),
            "error: prep.yaml: split.split_file: makes a file or folder name of 265 bytes; file systems take at most 255".to_string(),
        ),
    ] {
        let d = small_classes(&[3], "  train_ratio: 0.7\n  val_ratio: 0.15\n  test_ratio: 0.15\n");
        let text = d.read("prep.yaml").replace("split_file: s.json", &format!("split_file: {name}"));
        d.write("prep.yaml", &text);
        for args in [vec!["split", "--config", "prep.yaml"], vec!["split", "--config", "prep.yaml", "--dry-run"]] {
            let r = d.run(&args);
            assert_eq!(r.assert_bad_input(), want);
            assert!(!d.exists("out"), "nothing made");
        }
    }
    let d = small_classes(
        &[20, 2],
        "  train_ratio: 0.7\n  val_ratio: 0.15\n  test_ratio: 0.15\n",
    );
    let text = d
        .read("prep.yaml")
        .replace("path: img/c1", "path: ./img/c0/");
    d.write("prep.yaml", &text);
    let r = d.run(&["split", "--config", "prep.yaml"]);
    r.assert_ok();
    assert_eq!(
        r.stderr,
        "warning: prep.yaml: classes c0 and c1 read the same folder img/c0: each of its images is listed under every one of their labels\n"
    );
}
