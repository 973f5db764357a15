//! Hostile input, every subcommand: each case asserts the exit code, the single `error:`
//! line naming the file and the field, an empty stdout, and that the directory is exactly
//! as before (inputs unchanged, no output, no temporary file).

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use util::Dir;

/// Every entry under `root` with what identifies its content: bytes for files, the target
/// for symlinks, the kind for anything else.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let t = e.file_type().unwrap();
            let what = if t.is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if t.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else if t.is_fifo() {
                "fifo".into()
            } else {
                let len = e.metadata().unwrap().len();
                if len > 64 << 20 {
                    // Large (sparse) test files: size and modification time are enough.
                    format!(
                        "{len} bytes, modified {:?}",
                        e.metadata().unwrap().modified().unwrap()
                    )
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    format!("{len} bytes, sha {}", sha(&bytes))
                }
            };
            out.insert(p.strip_prefix(root).unwrap().to_owned(), what);
        }
    }
    out
}

fn sha(bytes: &[u8]) -> String {
    balance_split::input::sha256_hex(bytes)
}

/// Runs `args` and checks the refusal: exit `code`, exactly the line `want` on stderr,
/// nothing on stdout, and no file created, changed or removed.
#[track_caller]
fn refuses(d: &Dir, args: &[&str], code: i32, want: &str) {
    let before = snapshot(d.path());
    let r = d.run(args);
    assert_eq!(
        (
            r.code,
            r.stderr.lines().collect::<Vec<_>>(),
            r.stdout.as_str()
        ),
        (code, vec![want], ""),
        "balance-split {args:?}"
    );
    assert_eq!(
        snapshot(d.path()),
        before,
        "balance-split {args:?} changed files"
    );
}

/// [`refuses`] with exit 2 for each `(args, error line)` in turn.
#[track_caller]
fn refuses_all(d: &Dir, cases: &[(&[&str], &str)]) {
    for (args, want) in cases {
        refuses(d, args, 2, want);
    }
}

const UPSAMPLING: &str = "    upsampling:\n      enabled: true\n";
const WEIGHTED: &str = "    weighted_sampler:\n      enabled: true\n";

/// `split.json` (6 + 2 training samples, 1 + 0 validation) and `config.yaml` (upsampling).
fn project() -> Dir {
    let d = Dir::new();
    d.split(&[6, 2]).config(UPSAMPLING);
    d
}

/// A project with `m.json`, the manifest of `balancing`, written by `balance` itself.
fn with_manifest(balancing: &str) -> Dir {
    let d = Dir::new();
    d.split(&[6, 2]).config(balancing);
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    d
}

/// Writes `to`: the JSON of `from` changed by `edit`.
fn edited(d: &Dir, from: &str, to: &str, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&d.read(from)).unwrap();
    edit(&mut v);
    d.write(to, &serde_json::to_string_pretty(&v).unwrap());
}

/// A config with `data.balancing` replaced by `balancing` (under `config.yaml`'s split).
fn config(d: &Dir, name: &str, balancing: &str) {
    d.write(
        name,
        &format!("compute:\n  seed: 0\ndata:\n  split_file: split.json\n  balancing:\n{balancing}"),
    );
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn balance_refuses_bad_configs() {
    let d = project();
    refuses(
        &d,
        &["balance", "--config", "nope.yaml"],
        2,
        "error: nope.yaml: cannot read config: No such file or directory (os error 2)",
    );
    std::fs::create_dir(d.join("dir.yaml")).unwrap();
    refuses(
        &d,
        &["balance", "--config", "dir.yaml"],
        2,
        "error: dir.yaml: cannot read config: is a directory",
    );
    std::fs::write(
        d.join("latin1.yaml"),
        b"data:\n  split_file: caf\xe9.json\n",
    )
    .unwrap();
    refuses(
        &d,
        &["balance", "--config", "latin1.yaml"],
        2,
        "error: latin1.yaml: not UTF-8 text: invalid utf-8 sequence of 1 bytes from index 23",
    );
    d.write(
        "deep.yaml",
        &format!("ignored: {}{}\n", "[".repeat(200_000), "]".repeat(200_000)),
    );
    refuses(
        &d,
        &["balance", "--config", "deep.yaml"],
        2,
        "error: deep.yaml: nested deeper than 64 levels at line 1; a config needs a handful",
    );
    std::fs::File::create(d.join("huge.yaml"))
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    refuses(&d, &["balance", "--config", "huge.yaml"], 2,
        "error: huge.yaml: cannot read config: larger than the 16777216-byte limit for this kind of file");
    config(
        &d,
        "n.yaml",
        "    weighted_sampler:\n      enabled: true\n      num_samples: 18446744073709551615\n",
    );
    refuses(&d, &["balance", "--config", "n.yaml"], 2,
        "error: n.yaml: data.balancing.weighted_sampler.num_samples: expected null or an integer from 1 to 1073741824, found 18446744073709551615");
    config(
        &d,
        "n2.yaml",
        "    weighted_sampler:\n      enabled: true\n      num_samples: 1073741825\n",
    );
    refuses(&d, &["balance", "--config", "n2.yaml"], 2,
        "error: n2.yaml: data.balancing.weighted_sampler.num_samples: expected null or an integer from 1 to 1073741824, found 1073741825");
    config(
        &d,
        "r.yaml",
        "    upsampling:\n      enabled: true\n      target_ratio: 1e30\n",
    );
    refuses(&d, &["balance", "--config", "r.yaml"], 2,
        "error: r.yaml: data.balancing.upsampling.target_ratio: expected a number in (0, 1], found 1e30");
    config(
        &d,
        "nan.yaml",
        "    downsampling:\n      enabled: true\n      target_ratio: .nan\n",
    );
    refuses(&d, &["balance", "--config", "nan.yaml"], 2,
        "error: nan.yaml: data.balancing.downsampling.target_ratio: expected a number in (0, 1], found .nan");
    d.write("empty.yaml", "data:\n  split_file: \"\"\n");
    refuses(&d, &["balance", "--config", "empty.yaml"], 2,
        "error: empty.yaml: data.split_file: expected the path of the split JSON, found an empty string");
    d.write("two.yaml", "a: 1\n---\nb: 2\n");
    refuses(&d, &["balance", "--config", "two.yaml"], 2,
        "error: two.yaml: deserializing from YAML containing more than one document is not supported");
}

#[test]
fn balance_refuses_weights_that_overflow() {
    let d = project();
    config(&d, "w.yaml", "    weighted_sampler:\n      enabled: true\n      method: manual\n      manual_weights: [1e308, 1e308]\n");
    refuses(&d, &["balance", "--config", "w.yaml"], 2,
        "error: split.json: data.balancing.weighted_sampler: class weights: the weights sum to .inf; expected a finite sum");
    config(&d, "l.yaml", "    class_weights:\n      enabled: true\n      method: manual\n      manual_weights: [1e308, 1e308]\n");
    refuses(&d, &["balance", "--config", "l.yaml"], 2,
        "error: split.json: data.balancing.class_weights: class weights: the weights sum to .inf; expected a finite sum");
}

#[test]
fn balance_refuses_bad_splits() {
    let d = project();
    d.write(
        "s1.json",
        "{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\", \"label\": 3}]}",
    );
    d.write(
        "s2.json",
        "{\"metadata\": {\"classes\": {\"a\": 0, \"b\": 0}}, \"train\": []}",
    );
    d.write("s3.json", "{\"metadata\": ");
    d.write("s4.json", "{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\\ny\", \"label\": 9}]}");
    std::fs::write(d.join("bin.json"), [0xff, 0xfe, 0x00]).unwrap();
    for (split, want) in [
        ("s1.json", "error: s1.json: train[0]: label 3 is not a class in metadata.classes (expected an integer from 0 to 0)"),
        ("s2.json", "error: s2.json: metadata.classes: classes \"a\" and \"b\" share label 0; expected labels 0 to 1, one per class"),
        ("s3.json", "error: s3.json: EOF while parsing a value at line 1 column 13"),
        ("s4.json", "error: s4.json: train[0]: label 9 is not a class in metadata.classes (expected an integer from 0 to 0)"),
        ("bin.json", "error: bin.json: not UTF-8 text: invalid utf-8 sequence of 1 bytes from index 0"),
        ("none.json", "error: none.json: cannot read split file: No such file or directory (os error 2)"),
        // A path with a newline stays on one line.
        ("a\nb.json", "error: a\\nb.json: cannot read split file: No such file or directory (os error 2)"),
    ] {
        let args = ["balance", "--config", "config.yaml", "--split", split, "--out", "o.json"];
        refuses(&d, &args, 2, want);
    }
}

#[test]
fn balance_refuses_outputs_that_are_inputs_or_not_files() {
    let d = project();
    std::os::unix::fs::symlink("split.json", d.join("link.json")).unwrap();
    std::fs::hard_link(d.join("config.yaml"), d.join("hard.yaml")).unwrap();
    std::fs::create_dir(d.join("outdir")).unwrap();
    mkfifo(&d.join("fifo"));
    refuses_all(
        &d,
        &[
            (&["balance", "--config", "config.yaml", "--out", "link.json"], "error: link.json: refusing to overwrite an input file (split.json); choose another output"),
            (&["balance", "--config", "config.yaml", "--out", "hard.yaml"], "error: hard.yaml: refusing to overwrite an input file (config.yaml); choose another output"),
            (&["balance", "--config", "config.yaml", "--out", "outdir"], "error: outdir: refusing to replace a directory with a regular file; choose a file path"),
            (&["balance", "--config", "config.yaml", "--out", "fifo"], "error: fifo: refusing to replace a FIFO with a regular file; choose a file path"),
        ],
    );
}

#[test]
fn usage_errors_are_one_line() {
    let d = project();
    refuses_all(
        &d,
        &[
            (&["balance", "--config", "config.yaml", "--otu", "x.json"], "error: unexpected argument '--otu' found; see --help"),
            (&["balance"], "error: the following required arguments were not provided: --config <CONFIG>; see --help"),
            (&["balance", "--config", "config.yaml", "--seed", "-3"], "error: unexpected argument '-3' found; see --help"),
            (&["sample", "m.json", "--epoch", "x"], "error: invalid value 'x' for '--epoch <EPOCH>': invalid digit found in string; see --help"),
            (&["frobnicate"], "error: unrecognized subcommand 'frobnicate'; see --help"),
            (&[], "error: a subcommand is required (balance, cache, check-images, check-leaks, sample, split, stats, verify); see --help"),
        ],
    );
}

/// A change to a manifest's JSON.
type Edit = Box<dyn Fn(&mut Value)>;

#[test]
fn sample_refuses_impossible_sampler_records() {
    let d = with_manifest(WEIGHTED);
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("neg.json", Box::new(|v| v["balancing"]["sampler"]["class_weights"] = json!([-1.0, 10.0])),
            "error: neg.json: balancing: sampler.class_weights[0]: expected a positive finite number, found -1"),
        ("zero.json", Box::new(|v| v["balancing"]["sampler"]["class_weights"] = json!([0.0, 1.0])),
            "error: zero.json: balancing: sampler.class_weights[0]: expected a positive finite number, found 0"),
        ("big.json", Box::new(|v| v["balancing"]["sampler"]["class_weights"] = json!([1e308, 1e308])),
            "error: big.json: balancing: sampler.class_weights: the weights sum to .inf; expected a finite sum"),
        ("mass.json", Box::new(|v| v["balancing"]["sampler"]["class_weights"] = json!([1e308, 1.0])),
            "error: mass.json: balancing: sampler.class_weights: count times weight summed over the classes is .inf; expected a finite number"),
        ("huge.json", Box::new(|v| v["balancing"]["sampler"]["num_samples"] = json!(u64::MAX)),
            "error: huge.json: balancing: sampler.num_samples: expected an integer from 1 to 1073741824, found 18446744073709551615"),
        ("none.json", Box::new(|v| v["balancing"]["sampler"]["num_samples"] = json!(0)),
            "error: none.json: balancing: sampler.num_samples: expected an integer from 1 to 1073741824, found 0"),
        ("norep.json", Box::new(|v| {
            v["balancing"]["sampler"]["replacement"] = json!(false);
            v["balancing"]["sampler"]["num_samples"] = json!(9);
        }), "error: norep.json: balancing: sampler.num_samples is 9 but replacement is false and train has only 8 entries"),
        ("nosampler.json", Box::new(|v| v["balancing"]["sampler"] = Value::Null),
            "error: nosampler.json: balancing: sampler: missing for strategy weighted_sampler"),
        ("strategy.json", Box::new(|v| v["balancing"]["strategy"] = json!("bogus")),
            "error: strategy.json: balancing: strategy: expected one of none, weighted_sampler, downsampling, upsampling, found \"bogus\""),
        ("version.json", Box::new(|v| v["balancing"]["format_version"] = json!(2)),
            "error: version.json: balancing: format_version is 2; this balance-split reads version 1"),
        ("extra.json", Box::new(|v| v["balancing"]["surprise"] = json!(1)),
            "error: extra.json: balancing: unknown field `surprise`, expected one of `format_version`, `tool`, `seed`, `strategy`, `overridden`, `warnings`, `config`, `source`, `class_counts`, `sampler`, `loss`, `overrides`, `synthetic`, `source_index` at line 74 column 14"),
        ("expected.json", Box::new(|v| v["balancing"]["sampler"]["expected_counts"]["c0"] = json!(-4.0)),
            "error: expected.json: balancing: sampler.expected_counts.c0: expected a non-negative finite number, found -4.0"),
        ("counts.json", Box::new(|v| v["balancing"]["class_counts"]["after"]["c1"] = json!(2.5)),
            "error: counts.json: balancing: class_counts.after.c1: expected a non-negative integer, found 2.5"),
        ("index.json", Box::new(|v| v["balancing"]["source_index"][3] = json!(8)),
            "error: index.json: balancing: source_index[3] is 8 but source.train_samples is 8"),
        ("short.json", Box::new(|v| { v["balancing"]["source_index"].as_array_mut().unwrap().pop(); }),
            "error: short.json: balancing: source_index has 7 entries but train has 8"),
        ("ratio.json", Box::new(|v| v["balancing"]["config"]["upsampling"]["target_ratio"] = json!(1e30)),
            "error: ratio.json: balancing: config.upsampling.target_ratio: expected a number in (0, 1], found 1e30"),
    ];
    for (name, edit, want) in cases {
        edited(&d, "m.json", name, edit);
        refuses(&d, &["sample", name, "--epoch", "0"], 2, want);
    }
    refuses_all(
        &d,
        &[
            (&[
            "sample",
            "m.json",
            "--epoch",
            "0",
            "--rank",
            "2",
            "--world-size",
            "2",
        ], "error: m.json: --rank 2 is not below --world-size 2"),
            (&["sample", "m.json", "--epoch", "0", "--world-size", "0"], "error: m.json: --world-size must be at least 1"),
            (&["sample", "split.json", "--epoch", "0"], "error: split.json: not a manifest (no \"balancing\" section); run balance-split balance first"),
            (&["sample", "gone.json", "--epoch", "0"], "error: gone.json: cannot read split file: No such file or directory (os error 2)"),
        ],
    );
}

#[test]
fn a_manifest_balance_wrote_from_the_largest_num_samples_is_read_back() {
    // What balance accepts, sample, verify and stats must accept.
    let d = Dir::new();
    d.split(&[6, 2]).config("    weighted_sampler:\n      enabled: true\n      num_samples: 1073741824\n      replacement: true\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    let m = util::json(&d.read("m.json"));
    let after = &m["balancing"]["class_counts"]["after"];
    assert_eq!(
        after["c0"].as_u64().unwrap() + after["c1"].as_u64().unwrap(),
        1 << 30
    );
    d.run(&["verify", "m.json"]).assert_ok();
    d.run(&["stats", "m.json"]).assert_ok();
}

#[test]
fn loss_and_recorded_config_are_validated_everywhere() {
    let d = with_manifest(
        "    upsampling:\n      enabled: true\n    class_weights:\n      enabled: true\n",
    );
    edited(&d, "m.json", "loss.json", |v| {
        v["balancing"]["loss"]["class_weights"] = json!([0.0, 0.0])
    });
    edited(&d, "m.json", "neg.json", |v| {
        v["balancing"]["config"]["upsampling"]["target_ratio"] = json!(-1.0)
    });
    edited(&d, "m.json", "big.json", |v| {
        v["balancing"]["config"]["upsampling"]["target_ratio"] = json!(1e7)
    });
    let loss = "error: loss.json: balancing: loss.class_weights[0]: expected a positive finite number, found 0";
    let neg = "error: neg.json: balancing: config.upsampling.target_ratio: expected a number in (0, 1], found -1";
    let big = "error: big.json: balancing: config.upsampling.target_ratio: expected a number in (0, 1], found 10000000";
    for cmd in [
        &["verify"][..],
        &["stats"],
        &["sample", "--epoch", "1"],
        &["cache", "--out", "c.bin"],
    ] {
        for (file, want) in [("loss.json", loss), ("neg.json", neg), ("big.json", big)] {
            let mut args = vec![cmd[0], file];
            args.extend(&cmd[1..]);
            refuses(&d, &args, 2, want);
        }
    }
}

#[test]
fn verify_refuses_what_it_cannot_recompute() {
    let d = with_manifest(UPSAMPLING);
    refuses_all(
        &d,
        &[
            (&["verify", "m.json", "--split", "missing.json"], "error: missing.json: cannot read split file: No such file or directory (os error 2)"),
            (&["verify", "m.json", "--config", "missing.yaml"], "error: missing.yaml: cannot read config: No such file or directory (os error 2)"),
            (&["verify", "split.json"], "error: split.json: not a manifest (no \"balancing\" section); run balance-split balance first"),
        ],
    );
}

#[test]
fn stats_plot_refuses_to_destroy_or_misname() {
    let d = with_manifest(WEIGHTED);
    std::os::unix::fs::symlink("m.json", d.join("m-link.png")).unwrap();
    std::fs::hard_link(d.join("split.json"), d.join("split.png")).unwrap();
    std::fs::create_dir(d.join("charts.png")).unwrap();
    refuses_all(
        &d,
        &[
            (&["stats", "m.json", "--plot", "m-link.png"], "error: m-link.png: refusing to overwrite an input file (m.json); choose another output"),
            (&["stats", "split.json", "--plot", "split.png"], "error: split.png: refusing to overwrite an input file (split.json); choose another output"),
            (&["stats", "m.json", "--plot", "m.json"], "error: m.json: --plot writes a PNG; give it a name ending in .png"),
            (&["stats", "m.json", "--plot", "chart.json"], "error: chart.json: --plot writes a PNG; give it a name ending in .png"),
            (&["stats", "m.json", "--plot", "charts.png"], "error: charts.png: refusing to replace a directory with a regular file; choose a file path"),
        ],
    );
    edited(&d, "m.json", "max.json", |v| {
        v["balancing"]["sampler"]["expected_counts"]["c0"] = json!(1.7e308);
    });
    refuses(
        &d,
        &["stats", "max.json", "--plot", "max.png"],
        2,
        "error: max.json: a count of 1.7e308 is outside what --plot can chart (0 to 1e15)",
    );
    let many: Vec<usize> = vec![1; 100];
    d.write("many.json", &util::split_json(&many));
    refuses_all(
        &d,
        &[
            (&["stats", "many.json", "--plot", "many.png"], "error: many.json: --plot draws at most 64 classes; this file has 100"),
            (&["stats", "nothing.json"], "error: nothing.json: cannot read split file: No such file or directory (os error 2)"),
        ],
    );
}

#[test]
fn cache_refuses_sizes_and_destinations() {
    let d = with_manifest(UPSAMPLING);
    mkfifo(&d.join("fifo.cache"));
    refuses_all(
        &d,
        &[
            (&["cache", "m.json", "--out", "m.json"], "error: m.json: refusing to overwrite an input file (m.json); choose another output"),
            (&["cache", "m.json", "--out", "fifo.cache"], "error: fifo.cache: refusing to replace a FIFO with a regular file; choose a file path"),
        ],
    );
    for size in ["0", "4097", "100000", "4294967295"] {
        refuses(
            &d,
            &["cache", "m.json", "--out", "c.bin", "--image-size", size],
            2,
            &format!("error: --image-size: expected 1 to 4096, found {size}"),
        );
    }
    refuses_all(
        &d,
        &[
            (&["cache", "m.json", "--out", "c.bin", "--image-size", "4294967296"], "error: invalid value '4294967296' for '--image-size <IMAGE_SIZE>': 4294967296 is not in 0..=4294967295; see --help"),
            (&["cache", "split.json", "--out", "c.bin"], "error: split.json: not a manifest (no \"balancing\" section); run balance-split balance first"),
        ],
    );
}

#[test]
fn a_huge_sparse_file_named_like_an_image_is_reported_not_allocated() {
    let d = with_manifest(UPSAMPLING);
    let m = util::json(&d.read("m.json"));
    let first = m["train"][0]["path"].as_str().unwrap().to_owned();
    let p = d.join(&first);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::File::create(&p)
        .unwrap()
        .set_len(40 << 30)
        .unwrap();
    refuses(&d, &["cache", "m.json", "--out", "c.bin"], 2,
        &format!("error: m.json: train[0] ({first}): too large: 42949672960 bytes (at most 268435456 bytes per image file)"));
    let r = d.run(&["check-images", "m.json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(&format!(
        "train[0] {first}: too large: 42949672960 bytes (at most 268435456 bytes per image file)\n"
    )),
        "{}",
        r.stdout
    );
}

#[test]
fn check_images_escapes_paths_in_its_report() {
    let d = Dir::new();
    d.write(
        "s.json",
        "{\"metadata\": {\"classes\": {\"a\": 0}}, \"train\": [{\"path\": \"x\\nval[0] forged.png: ok\", \"label\": 0}]}",
    );
    let r = d.run(&["check-images", "s.json"]);
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        "train[0] x\\nval[0] forged.png: ok: missing (no such file)"
    );
    refuses_all(
        &d,
        &[
            (&["check-images", "absent.json"], "error: absent.json: cannot read split file: No such file or directory (os error 2)"),
            (&["check-images", "s.json", "--image-size", "big"], "error: invalid value 'big' for '--image-size <IMAGE_SIZE>': invalid digit found in string; see --help"),
        ],
    );
}

#[test]
fn a_bom_in_the_config_is_accepted_as_pyyaml_does() {
    let d = project();
    let text = d.read("config.yaml");
    d.write("bom.yaml", &format!("\u{feff}{text}"));
    d.run(&["balance", "--config", "bom.yaml", "--out", "a.json"])
        .assert_ok();
    d.run(&["balance", "--config", "config.yaml", "--out", "b.json"])
        .assert_ok();
    assert_eq!(d.read("a.json"), d.read("b.json"));
}

/// stdout at /dev/full: one `error:` line and exit 1; a closed pipe: quiet success.
#[test]
fn output_streams_that_fail() {
    use std::process::{Command, Stdio};
    let d = with_manifest(WEIGHTED);
    let bin = env!("CARGO_BIN_EXE_balance-split");
    // With the exit status a closed pipe leaves: the verdict of a verdict command
    // (check-images finds the split's images missing: 3), else 0.
    for (args, verdict) in [
        (
            &["balance", "--config", "config.yaml", "--out", "n.json"][..],
            0,
        ),
        (&["verify", "m.json"], 0),
        (&["stats", "m.json"], 0),
        (&["check-images", "m.json"], 3),
        (&["check-leaks", "m.json"], 3),
        (&["sample", "m.json", "--epoch", "0"], 0),
        (&["balance", "--help"], 0),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(bin)
            .args(args)
            .current_dir(d.path())
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            ["error: standard output: No space left on device (os error 28)"],
            "{args:?}"
        );
        // A reader that has gone: the pipe is closed before anything is written.
        let mut child = Command::new(bin)
            .args(args)
            .current_dir(d.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(verdict),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stderr, b"", "{args:?}");
    }
}

/// An epoch the bounds allow (2^30 draws, 8 GiB of positions) on a machine that cannot
/// hold it: the documented error, exit 1, never an abort.
#[test]
fn an_epoch_too_large_for_the_memory_limit_is_an_error_not_an_abort() {
    let d = Dir::new();
    d.split(&[6, 2]).config("    weighted_sampler:\n      enabled: true\n      num_samples: 1073741824\n      replacement: true\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v 2000000; exec {} sample m.json --epoch 0",
            env!("CARGO_BIN_EXE_balance-split")
        ))
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: m.json: out of memory: one epoch of 1073741824 draws needs 8589934592 bytes\n"
    );
    assert!(out.stdout.is_empty());
}

/// Eight 1-2 KB JPEGs declaring 11585x11585 pixels (an 8-core machine decodes eight at
/// once): under a 4 GB memory limit check-images, check-leaks and cache report them as
/// corrupt, never abort.
#[test]
fn jpegs_declaring_more_pixels_than_their_bytes_hold_are_reported_not_allocated() {
    let d = Dir::new();
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(16, 16, image::Rgb([9, 9, 9]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0x2D, 0x41, 0x2D, 0x41]); // 11585 x 11585
    let entries: Vec<String> = (0..8)
        .map(|i| {
            d.write(&format!("img/{i}.jpg"), "");
            std::fs::write(d.join(&format!("img/{i}.jpg")), &jpeg).unwrap();
            format!("{{\"path\": \"img/{i}.jpg\", \"label\": {}}}", i % 2)
        })
        .collect();
    d.write(
        "split.json",
        &format!(
            "{{\"metadata\": {{\"classes\": {{\"a\": 0, \"b\": 1}}}}, \"train\": [{}], \"val\": [{}]}}",
            entries[..6].join(", "),
            entries[6..].join(", ")
        ),
    );
    let limited = |args: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -v 4000000; RAYON_NUM_THREADS=8 exec {} {args}",
                env!("CARGO_BIN_EXE_balance-split")
            ))
            .current_dir(d.path())
            .output()
            .unwrap()
    };
    let out = limited("check-images split.json --json");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = report.to_string();
    assert_eq!(
        text.matches("declares 11585x11585 pixels, more than its")
            .count(),
        8,
        "{text}"
    );
    let out = limited("check-leaks split.json");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.config("    upsampling:\n      enabled: true\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    let out = limited("cache m.json --out m.cache");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt: declares 11585x11585 pixels"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
