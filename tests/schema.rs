//! `splits/manifest.v1.schema.json` describes what `balance` writes: every golden manifest
//! validates, and manifests broken in typical ways do not.

mod util;

use util::repo;

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("splits/manifest.v1.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("the schema itself is valid")
}

fn golden(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("tests/golden").join(name)).unwrap())
        .unwrap()
}

#[test]
fn golden_manifests_validate() {
    let v = validator();
    for entry in std::fs::read_dir(repo().join("tests/golden")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".balanced.json") {
            continue; // tests/golden/split/ holds split files, not manifests
        }
        let m = golden(&name);
        let errors: Vec<String> = v
            .iter_errors(&m)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn broken_manifests_do_not() {
    let v = validator();
    let base = golden("class_weights_with_upsampling.balanced.json");
    type Breakage = (&'static str, fn(&mut serde_json::Value));
    let breakages: [Breakage; 5] = [
        ("wrong version", |m| {
            m["balancing"]["format_version"] = 2.into()
        }),
        ("unknown strategy", |m| {
            m["balancing"]["strategy"] = "smote".into()
        }),
        ("bad sha", |m| {
            m["balancing"]["source"]["split_sha256"] = "xyz".into()
        }),
        ("zero loss weight", |m| {
            m["balancing"]["loss"]["class_weights"][0] = 0.into()
        }),
        ("string label", |m| m["train"][0]["label"] = "0".into()),
    ];
    for (what, breakage) in breakages {
        let mut m = base.clone();
        breakage(&mut m);
        assert!(!v.is_valid(&m), "{what} should not validate");
    }
}
