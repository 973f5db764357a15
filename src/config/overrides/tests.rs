use std::path::Path;

use serde_yaml_ng::Value;

use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// Each value typed as CPython 3.11 types it through the user's `infer_type` (printed with
/// `int()`, `float()` and `ast.literal_eval` on the same strings).
#[test]
fn values_are_typed_by_the_users_rules() {
    let cases: &[(&str, &str)] = &[
        ("42", "42"),
        ("-7", "-7"),
        ("+5", "5"),
        (" 7 ", "7"),
        ("1_000", "1000"),
        ("3.14", "3.14"),
        ("1e3", "1000.0"),
        ("1_0.5", "10.5"),
        (".5", "0.5"),
        ("5.", "5.0"),
        ("true", "true"),
        ("TRUE", "true"),
        ("False", "false"),
        ("none", "null"),
        ("Null", "null"),
        ("hello", "hello"),
        ("'42'", "'42'"),
        ("\"true\"", "'true'"),
        ("inf", "inf"),
        ("-Infinity", "-Infinity"),
        ("nan", "nan"),
        ("1__0", "1__0"),
        ("1e", "1e"),
        ("0x10", "'0x10'"),
        ("['Mixed_7*', 'Mixed_6*']", "- Mixed_7*\n- Mixed_6*"),
        (
            "[0x10, -3, 1_0, 1e3, .5, 5.]",
            "- 16\n- -3\n- 10\n- 1000.0\n- 0.5\n- 5.0",
        ),
        ("[1, 2,]", "- 1\n- 2"),
        ("(1,)", "'(1,)'"),
        ("[(1,), ()]", "- - 1\n- []"),
        ("[00]", "- 0"),
        (
            "{'upsampling': {'enabled': True}}",
            "upsampling:\n  enabled: true",
        ),
        ("{1: [2, (3, 4)]}", "1:\n- 2\n- - 3\n  - 4"),
        ("[\"a\\nb\", 'c\\'d']", "- |-\n  a\n  b\n- c'd"),
        ("{}", "{}"),
        ("[]", "[]"),
        ("[None, True, False]", "- null\n- true\n- false"),
        // Not literals: `literal_eval` raises, the raw string is kept.
        ("[010]", "'[010]'"),
        ("[-True]", "'[-True]'"),
        ("[1", "'[1'"),
        ("[inf]", "'[inf]'"),
        ("[a]", "'[a]'"),
    ];
    for (given, want) in cases {
        let got = infer_type(given).unwrap();
        assert_eq!(got, yaml(want), "{given:?}");
    }
}

#[test]
fn literals_without_a_yaml_form_are_refused() {
    for (given, what) in [
        ("{1, 2}", "set literal"),
        ("[b'x']", "bytes literal"),
        ("[1j]", "complex number"),
        ("[123456789012345678901234567890]", "integer past 64 bits"),
    ] {
        let err = infer_type(given).unwrap_err();
        assert!(err.contains(what), "{given}: {err}");
    }
    assert_eq!(
        infer_type("123456789012345678901234567890").unwrap_err(),
        "\"123456789012345678901234567890\" is an integer too large for a config value"
    );
}

#[test]
fn arguments_are_key_value_pairs() {
    let o = Overrides::from_args(&[
        "--compute.seed",
        "3",
        "--data.balancing.upsampling.enabled",
        "true",
    ])
    .unwrap();
    assert_eq!(o.0.len(), 2);
    assert_eq!(o.0[0].key, "compute.seed");
    assert_eq!(o.0[0].value, Value::from(3));
    assert_eq!(o.0[1].value, Value::Bool(true));
    assert_eq!(
        o.record(),
        serde_json::json!([
            ["compute.seed", "3"],
            ["data.balancing.upsampling.enabled", "true"]
        ])
    );
    let negative = Overrides::from_args(&["--compute.seed", "-1"]).unwrap();
    assert_eq!(negative.0[0].value, Value::from(-1));
    for (args, message) in [
        (
            vec!["--compute.seed"],
            "override --compute.seed: missing value; each override is --dotted.key value (for example --compute.seed 42)",
        ),
        (
            vec!["--a.b", "--c.d", "1"],
            "override --a.b: missing value; each override is --dotted.key value (for example --compute.seed 42)",
        ),
        (
            vec!["compute.seed", "1"],
            "unexpected argument \"compute.seed\": an override is --dotted.key value (for example --compute.seed 42)",
        ),
        (
            vec!["--compute.seed=1"],
            "override \"--compute.seed=1\": give the value as its own argument (--compute.seed VALUE), as the user's command line does",
        ),
        (
            vec!["--a..b", "1"],
            "override --a..b: expected a dotted key such as data.balancing.upsampling.enabled",
        ),
    ] {
        assert_eq!(Overrides::from_args(&args).unwrap_err().0, message, "{args:?}");
    }
}

const CONFIG: &str = "compute:\n  seed: 0\ndata:\n  split_file: a.json\n  balancing:\n    upsampling:\n      enabled: false\n      target_ratio: 1.0\n";

fn apply(args: &[&str]) -> Result<Value, String> {
    Overrides::from_args(args)
        .map_err(|e| e.0)?
        .apply(CONFIG, Path::new("c.yaml"))
        .map(|text| yaml(&text))
        .map_err(|e| e.to_string())
}

#[test]
fn overrides_merge_into_the_config() {
    let got = apply(&[
        "--compute.seed",
        "7",
        "--data.balancing.upsampling.enabled",
        "true",
        "--data.balancing",
        "{'upsampling': {'target_ratio': 0.5}}",
    ])
    .unwrap();
    assert_eq!(
        got,
        yaml("compute:\n  seed: 7\ndata:\n  split_file: a.json\n  balancing:\n    upsampling:\n      enabled: true\n      target_ratio: 0.5\n")
    );
    // A later override of the same key wins; a scalar replaces a section whole.
    let got = apply(&["--compute.seed", "1", "--compute.seed", "2"]).unwrap();
    assert_eq!(got["compute"]["seed"], Value::from(2));
    let got = apply(&["--data.balancing", "null"]).unwrap();
    assert_eq!(got["data"]["balancing"], Value::Null);
    // No overrides: the text untouched.
    assert_eq!(
        Overrides::default()
            .apply(CONFIG, Path::new("c.yaml"))
            .unwrap(),
        CONFIG
    );
}

#[test]
fn a_key_not_in_the_config_is_refused_with_the_keys_available() {
    assert_eq!(
        apply(&["--data.balancing.upsampling.enabeld", "true"]).unwrap_err(),
        "c.yaml: overrides: unknown config key \"data.balancing.upsampling.enabeld\" (a typo?); the keys at data.balancing.upsampling are enabled, target_ratio"
    );
    assert_eq!(
        apply(&["--comput.seed", "1"]).unwrap_err(),
        "c.yaml: overrides: unknown config key \"comput\" (a typo?); the keys at the top level are compute, data"
    );
    assert_eq!(
        apply(&["--compute.seed.x", "1"]).unwrap_err(),
        "c.yaml: overrides: unknown config key \"compute.seed\": compute.seed is not a section in the config"
    );
    // Keys inside a dict value are checked too.
    assert_eq!(
        apply(&["--data.balancing", "{'upsampling': {'ratio': 1}}"]).unwrap_err(),
        "c.yaml: overrides: unknown config key \"data.balancing.upsampling.ratio\" (a typo?); the keys at data.balancing.upsampling are enabled, target_ratio"
    );
}

/// The recorded form of a typed value types back to it (the user's `serialize_override`).
#[test]
fn typed_values_serialise_to_arguments_that_type_back() {
    for v in [
        "true",
        "null",
        "3",
        "-3",
        "0.5",
        "1e-05",
        "hello",
        "'42'",
        "'true'",
        "'[1]'",
        "[1, 'a', null]",
        "{'a': [1.5]}",
        "\"it's\"",
    ] {
        let value = infer_type(v).unwrap();
        let o = Override::typed("a.b", value.clone()).unwrap();
        assert_eq!(infer_type(&o.raw).unwrap(), value, "{v} -> {}", o.raw);
    }
    assert_eq!(serialize(&Value::String("42".into())), "'42'");
    assert_eq!(
        serialize(&yaml("[1, 'a', null, 2.5]")),
        "[1, 'a', None, 2.5]"
    );
    assert_eq!(serialize(&Value::from(1e-5)), "1e-05");
}
