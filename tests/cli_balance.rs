//! `balance-split balance` seen from outside: strategies, output, and every bad input.

mod util;

use pretty_assertions::assert_eq;
use serde_json::json;
use util::{json, repo, run_in, Dir};

fn counts_of(list: &serde_json::Value, k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for e in list.as_array().unwrap() {
        c[e["label"].as_u64().unwrap() as usize] += 1;
    }
    c
}

#[test]
fn downsampling_the_embedded_example_prints_the_table() {
    let d = Dir::new();
    let out = d.join("m.json");
    let r = run_in(
        &repo(),
        &[
            "balance",
            "--config",
            "configs/examples/downsampling.yaml",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    r.assert_ok();
    let expected = format!(
        "strategy  downsampling
seed      0
class     label  before  after
normal        0     180     20
abnormal      1      20     20
total               200     40
wrote {}
",
        out.display()
    );
    assert_eq!(r.stdout, expected);
    assert_eq!(r.stderr, "");
    let m = json(&d.read("m.json"));
    assert_eq!(counts_of(&m["train"], 2), vec![20, 20]);
    assert_eq!(m["val"].as_array().unwrap().len(), 50);
    assert_eq!(
        m["balancing"]["source"]["split_file"],
        "splits/example/train_val_split.json"
    );
}

#[test]
fn every_example_config_runs_on_the_embedded_example() {
    let cases = [
        ("weighted_sampler", vec![180, 20], "weighted_sampler"),
        ("downsampling", vec![20, 20], "downsampling"),
        ("upsampling", vec![180, 180], "upsampling"),
        ("class_weights_with_upsampling", vec![180, 90], "upsampling"),
    ];
    for (name, train_counts, strategy) in cases {
        let d = Dir::new();
        let out = d.join("m.json");
        let config = format!("configs/examples/{name}.yaml");
        run_in(
            &repo(),
            &[
                "balance",
                "--config",
                &config,
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        )
        .assert_ok();
        let m = json(&d.read("m.json"));
        assert_eq!(counts_of(&m["train"], 2), train_counts, "{name}");
        assert_eq!(m["balancing"]["strategy"], strategy, "{name}");
    }
}

#[test]
fn generated_splits_with_three_classes() {
    let d = Dir::new();
    d.split(&[50, 10, 30])
        .config("    downsampling:\n      enabled: true\n      target_ratio: 0.5\n");
    d.run(&["balance", "--config", "config.yaml"]).assert_ok();
    let m = json(&d.read("split.balanced.json"));
    assert_eq!(counts_of(&m["train"], 3), vec![20, 10, 20]);
    let idx: Vec<u64> = m["balancing"]["source_index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        m["balancing"]["class_counts"],
        json!({"before": {"c0": 50, "c1": 10, "c2": 30}, "after": {"c0": 20, "c1": 10, "c2": 20}})
    );

    d.config("    upsampling:\n      enabled: true\n      target_ratio: 0.8\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "up.json"])
        .assert_ok();
    let m = json(&d.read("up.json"));
    assert_eq!(counts_of(&m["train"], 3), vec![50, 40, 40]);
    // every train entry is the source entry its source_index names
    let src = json(&d.read("split.json"));
    for (e, i) in m["train"]
        .as_array()
        .unwrap()
        .iter()
        .zip(m["balancing"]["source_index"].as_array().unwrap())
    {
        assert_eq!(e, &src["train"][i.as_u64().unwrap() as usize]);
    }
}

#[test]
fn same_inputs_same_bytes_and_seed_override_changes_them() {
    let d = Dir::new();
    d.split(&[40, 7])
        .config("    upsampling:\n      enabled: true\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "a.json"])
        .assert_ok();
    d.run(&["balance", "--config", "config.yaml", "--out", "b.json"])
        .assert_ok();
    assert_eq!(d.read("a.json"), d.read("b.json"));
    d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--out",
        "c.json",
        "--seed",
        "1",
    ])
    .assert_ok();
    assert_ne!(d.read("a.json"), d.read("c.json"));
    assert_eq!(json(&d.read("c.json"))["balancing"]["seed"], 1);
}

#[test]
fn null_seed_draws_one_and_records_it_so_the_run_can_be_repeated() {
    let d = Dir::new();
    d.split(&[40, 7]).write(
        "config.yaml",
        "compute:\n  seed: null\ndata:\n  split_file: split.json\n  balancing:\n    downsampling:\n      enabled: true\n",
    );
    let r = d.run(&["balance", "--config", "config.yaml", "--out", "a.json"]);
    r.assert_ok();
    let seed = json(&d.read("a.json"))["balancing"]["seed"]
        .as_u64()
        .unwrap();
    assert!(
        r.stderr.contains(&format!("drew seed {seed} from the OS")),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains(&format!("seed      {seed} (drawn from the OS")),
        "{}",
        r.stdout
    );
    d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--out",
        "b.json",
        "--seed",
        &seed.to_string(),
    ])
    .assert_ok();
    assert_eq!(d.read("a.json"), d.read("b.json"));
}

#[test]
fn several_strategies_warn_and_record_the_losers() {
    let d = Dir::new();
    d.split(&[40, 7])
        .config("    downsampling:\n      enabled: true\n    upsampling:\n      enabled: true\n");
    let r = d.run(&["balance", "--config", "config.yaml"]);
    r.assert_ok();
    assert_eq!(
        r.stderr,
        "warning: data.balancing enables downsampling and upsampling; using downsampling (priority weighted_sampler > downsampling > upsampling)\n"
    );
    assert!(
        r.stdout
            .starts_with("strategy  downsampling (overrides upsampling)\n"),
        "{}",
        r.stdout
    );
    let m = json(&d.read("split.balanced.json"));
    assert_eq!(m["balancing"]["overridden"], json!(["upsampling"]));
}

#[test]
fn dry_run_writes_nothing() {
    let d = Dir::new();
    d.split(&[40, 7])
        .config("    downsampling:\n      enabled: true\n");
    let r = d.run(&["balance", "--config", "config.yaml", "--dry-run"]);
    r.assert_ok();
    assert!(
        r.stdout
            .ends_with("dry run, would write split.balanced.json\n"),
        "{}",
        r.stdout
    );
    assert_eq!(d.files(), vec!["config.yaml", "split.json"]);
}

#[test]
fn inputs_are_never_modified_and_output_is_readable() {
    let d = Dir::new();
    d.split(&[40, 7])
        .config("    upsampling:\n      enabled: true\n");
    let (split, config) = (d.read("split.json"), d.read("config.yaml"));
    d.run(&["balance", "--config", "config.yaml"]).assert_ok();
    assert_eq!(d.read("split.json"), split);
    assert_eq!(d.read("config.yaml"), config);
    assert_eq!(
        d.files(),
        vec!["config.yaml", "split.balanced.json", "split.json"]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.join("split.balanced.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn refuses_to_overwrite_its_input() {
    let d = Dir::new();
    d.split(&[40, 7])
        .config("    upsampling:\n      enabled: true\n");
    let split = d.read("split.json");
    std::os::unix::fs::symlink("split.json", d.join("link.json")).unwrap();
    for (out, input) in [
        ("split.json", "split.json"),
        ("./split.json", "split.json"),
        ("link.json", "split.json"),
        ("config.yaml", "config.yaml"),
    ] {
        let r = d.run(&["balance", "--config", "config.yaml", "--out", out]);
        let line = r.assert_bad_input().to_string();
        assert_eq!(
            line,
            format!(
                "error: {out}: refusing to overwrite an input file ({input}); choose another output"
            )
        );
    }
    assert_eq!(d.read("split.json"), split);
}

/// Runs a config body against a split and checks: exit 2, one `error:` line equal to
/// `want`, no output file.
fn bad(counts: &[usize], balancing: &str, want: &str) {
    let d = Dir::new();
    d.split(counts).config(balancing);
    let r = d.run(&["balance", "--config", "config.yaml"]);
    assert_eq!(r.assert_bad_input(), want);
    assert_eq!(
        d.files(),
        vec!["config.yaml", "split.json"],
        "no output, no temp file"
    );
}

#[test]
fn config_errors_exit_2_with_one_line_naming_file_and_key() {
    bad(&[5, 5], "    downsampling:\n      enabeld: true\n",
        "error: config.yaml: data.balancing.downsampling: unknown field `enabeld`, expected `enabled` or `target_ratio` at line 7 column 7");
    bad(&[5, 5], "    upsampling:\n      target_ratio: 2\n",
        "error: config.yaml: data.balancing.upsampling.target_ratio: expected a number in (0, 1], found 2");
    bad(&[5, 5], "    class_weights:\n      beta: 1\n",
        "error: config.yaml: data.balancing.class_weights.beta: expected a number in (0, 1), found 1");
    bad(&[5, 5], "    weighted_sampler:\n      num_samples: 0\n",
        "error: config.yaml: data.balancing.weighted_sampler.num_samples: expected null or an integer from 1 to 1073741824, found 0");
    bad(&[5, 5], "    weighted_sampler:\n      method: manual\n      manual_weights: [1, -1]\n",
        "error: config.yaml: data.balancing.weighted_sampler.manual_weights[1]: expected a positive finite number, found -1");
    bad(&[5, 5], "    class_weights:\n      method: median\n",
        "error: config.yaml: data.balancing.class_weights.method: unknown variant `median`, expected one of `inverse_frequency`, `effective_num`, `manual` at line 7 column 15");
    bad(&[5, 5], "    weighted_sampler:\n      replacement: yes please\n",
        "error: config.yaml: data.balancing.weighted_sampler.replacement: invalid type: string \"yes please\", expected a boolean at line 7 column 20");
}

#[test]
fn plan_errors_exit_2_naming_split_and_class() {
    bad(&[5, 0, 3], "    downsampling:\n      enabled: true\n",
        "error: split.json: class \"c1\" (label 1) has no training samples; downsampling needs every class's count");
    bad(&[5, 0], "    class_weights:\n      enabled: true\n      method: effective_num\n",
        "error: split.json: class \"c1\" (label 1) has no training samples; data.balancing.class_weights.method effective_num needs every class's count");
    bad(&[5, 5], "    weighted_sampler:\n      enabled: true\n      replacement: false\n      num_samples: 11\n",
        "error: split.json: data.balancing.weighted_sampler.num_samples is 11 but replacement is false and the train split has only 10 samples");
    bad(&[5, 5], "    class_weights:\n      enabled: true\n      method: manual\n      manual_weights: [1, 2, 3]\n",
        "error: split.json: data.balancing.class_weights.manual_weights has 3 values but the split has 2 classes");
}

#[test]
fn split_errors_exit_2_naming_file_and_entry() {
    let cases = [
        ("{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\", \"label\": 0}", "error: split.json: EOF while parsing a list at line 1 column 71"),
        ("{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": []}", "error: split.json: train: is empty; there is nothing to balance"),
        ("{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": 1, \"label\": 0}]}", "error: split.json: train[0]: \"path\" must be a string, found integer 1 at line 1 column 56"),
        ("{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\", \"label\": 4}]}", "error: split.json: train[0]: label 4 is not a class in metadata.classes (expected an integer from 0 to 0)"),
        ("{\"metadata\": {\"classes\": {\"a\": 1}}, \"train\": [{\"path\": \"x\", \"label\": 1}]}", "error: split.json: metadata.classes: class \"a\" has label 1; expected labels 0 to 0, one per class"),
    ];
    for (split, want) in cases {
        let d = Dir::new();
        d.write("split.json", split)
            .config("    upsampling:\n      enabled: true\n");
        let r = d.run(&["balance", "--config", "config.yaml"]);
        assert_eq!(r.assert_bad_input(), want);
        assert_eq!(d.files(), vec!["config.yaml", "split.json"]);
    }
}

#[test]
fn missing_files_and_split_file_key() {
    let d = Dir::new();
    let r = d.run(&["balance", "--config", "nope.yaml"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: nope.yaml: cannot read config: No such file or directory (os error 2)"
    );
    d.config("    upsampling:\n      enabled: true\n");
    let r = d.run(&["balance", "--config", "config.yaml"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: split.json: cannot read split file: No such file or directory (os error 2)"
    );
    d.write("config.yaml", "compute:\n  seed: 1\n");
    let r = d.run(&["balance", "--config", "config.yaml"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: config.yaml: data.split_file: missing; set it or pass --split FILE"
    );
    d.split(&[3, 3]);
    d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--split",
        "split.json",
    ])
    .assert_ok();
    assert!(d.exists("split.balanced.json"));
}

#[test]
fn balancing_a_manifest_is_refused() {
    let d = Dir::new();
    d.split(&[8, 2])
        .config("    upsampling:\n      enabled: true\n");
    d.run(&["balance", "--config", "config.yaml"]).assert_ok();
    let r = d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--split",
        "split.balanced.json",
        "--out",
        "again.json",
    ]);
    assert_eq!(
        r.assert_bad_input(),
        "error: split.balanced.json: balancing: this is already a balanced manifest; balance its source split instead"
    );
}

#[test]
fn single_class_split_is_a_no_op_with_a_warning() {
    let d = Dir::new();
    d.split(&[6])
        .config("    upsampling:\n      enabled: true\n");
    let r = d.run(&["balance", "--config", "config.yaml"]);
    r.assert_ok();
    assert_eq!(r.stderr, "warning: the split declares a single class (\"c0\"); upsampling has nothing to balance and is skipped\n");
    let m = json(&d.read("split.balanced.json"));
    assert_eq!(m["balancing"]["strategy"], "none");
    assert_eq!(m["train"].as_array().unwrap().len(), 6);
}

#[test]
fn weighted_sampler_and_loss_on_a_generated_split() {
    let d = Dir::new();
    d.split(&[30, 10]).config(
        "    weighted_sampler:\n      enabled: true\n      num_samples: 100\n    class_weights:\n      enabled: true\n      normalize: false\n",
    );
    let r = d.run(&["balance", "--config", "config.yaml"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "strategy  weighted_sampler
seed      0
class  label  before  epoch
c0         0      30     50
c1         1      10     50
total             40    100
sampler   100 draws per epoch, with replacement; class weights [1.333333, 4.000000]
loss      class weights [1.333333, 4.000000] (inverse_frequency)
wrote split.balanced.json
"
    );
    let m = json(&d.read("split.balanced.json"));
    assert_eq!(
        m["train"],
        json(&d.read("split.json"))["train"],
        "the sampler leaves train unchanged"
    );
    assert_eq!(
        m["balancing"]["sampler"],
        json!({"class_weights": [40.0 / 30.0, 4.0], "replacement": true, "num_samples": 100, "expected_counts": {"c0": 50.0, "c1": 50.0}})
    );
    assert_eq!(
        m["balancing"]["loss"],
        json!({"class_weights": [40.0 / 30.0, 4.0], "method": "inverse_frequency", "normalize": false})
    );
}

#[test]
fn a_directory_as_split_is_bad_input() {
    let d = Dir::new();
    d.config("    upsampling:\n      enabled: true\n");
    std::fs::create_dir(d.join("split.json")).unwrap();
    let r = d.run(&["balance", "--config", "config.yaml", "--out", "m.json"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: split.json: cannot read split file: is a directory"
    );
}

#[test]
fn an_unwritable_output_is_an_internal_failure() {
    let d = Dir::new();
    d.split(&[4, 2])
        .config("    upsampling:\n      enabled: true\n");
    let r = d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--out",
        "/proc/balance-split-test/m.json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: /proc/balance-split-test/m.json: cannot write manifest: "),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    let r = d.run(&["balance", "--config", "c.yaml", "--seed", "minus-one"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: invalid value 'minus-one' for '--seed <SEED>'"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_summary() {
    let d = Dir::new();
    d.split(&[9, 3])
        .config("    downsampling:\n      enabled: true\n");
    let r = d.run(&["balance", "--config", "config.yaml", "--json", "--dry-run"]);
    r.assert_ok();
    assert_eq!(
        json(&r.stdout),
        json!({
            "strategy": "downsampling", "seed": 0, "seed_from_os": false, "overridden": [], "warnings": [],
            "class_counts": {"before": {"c0": 9, "c1": 3}, "after": {"c0": 3, "c1": 3}},
            "sampler": null, "loss": null, "manifest": "split.balanced.json", "written": false
        })
    );
}

/// Two splits of one run whose manifests would have one name: refused before anything is
/// written, instead of one manifest silently replacing the other.
#[test]
fn two_splits_with_one_manifest_name_are_refused() {
    let d = Dir::new();
    d.split(&[4, 2])
        .config("    upsampling:\n      enabled: true\n");
    std::fs::copy(d.join("split.json"), d.join("split.txt")).unwrap();
    let r = d.run(&[
        "balance",
        "--config",
        "config.yaml",
        "--split",
        "split.json",
        "split.txt",
    ]);
    assert_eq!(
        r.assert_bad_input(),
        "error: --split split.json and split.txt would both write split.balanced.json; rename one of them, or balance each with --out"
    );
    assert!(!d.exists("split.balanced.json"));
}
