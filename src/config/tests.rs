use super::*;
use pretty_assertions::assert_eq;

fn parse(yaml: &str) -> Result<Config, String> {
    Config::parse(yaml, Path::new("c.yaml")).map_err(|e| e.to_string())
}

fn balancing(body: &str) -> String {
    format!("data:\n  balancing:\n{body}")
}

#[test]
fn users_full_config_loads_unchanged() {
    let text = include_str!("../../configs/diffusion.yaml");
    let c = parse(text).unwrap();
    assert_eq!(c.seed, SeedSetting::Fixed(0));
    assert_eq!(
        c.split_file.as_deref(),
        Some("splits/example/train_val_split.json")
    );
    assert_eq!(c.num_classes, Some(2));
    assert_eq!(c.balancing, Some(Balancing::default()));
}

#[test]
fn missing_balancing_means_none_and_missing_seed_means_zero() {
    let c = parse("data:\n  split_file: s.json\n").unwrap();
    assert_eq!(c.balancing, None);
    assert_eq!(c.seed, SeedSetting::Fixed(0));
    assert_eq!(parse("").unwrap().balancing, None);
}

#[test]
fn null_seed_means_draw_from_the_os() {
    assert_eq!(
        parse("compute:\n  seed: null\n").unwrap().seed,
        SeedSetting::FromOs
    );
    assert_eq!(
        parse("compute:\n  seed: 7\n").unwrap().seed,
        SeedSetting::Fixed(7)
    );
}

#[test]
fn missing_keys_take_the_users_defaults() {
    let c = parse(&balancing("    downsampling:\n      enabled: true\n")).unwrap();
    let b = c.balancing.unwrap();
    assert!(b.downsampling.enabled);
    assert_eq!(b.downsampling.target_ratio, 1.0);
    assert_eq!(b.weighted_sampler, WeightedSamplerConfig::default());
    assert_eq!(b.class_weights.beta, 0.999);
    assert!(b.class_weights.normalize);
    assert!(b.weighted_sampler.replacement);
}

#[test]
fn null_section_is_defaults() {
    let b = parse(&balancing("    upsampling: null\n"))
        .unwrap()
        .balancing
        .unwrap();
    assert_eq!(b.upsampling, ResampleConfig::default());
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let err = parse(&balancing("    downsampling:\n      enabeld: true\n")).unwrap_err();
    assert_eq!(
        err,
        "c.yaml: data.balancing.downsampling: unknown field `enabeld`, expected `enabled` or `target_ratio` at line 4 column 7"
    );
    let err = parse(&balancing("    oversampling:\n      enabled: true\n")).unwrap_err();
    assert!(
        err.starts_with("c.yaml: data.balancing: unknown field `oversampling`"),
        "{err}"
    );
}

#[test]
fn method_must_be_known() {
    let err = parse(&balancing("    class_weights:\n      method: inverse\n")).unwrap_err();
    assert!(
        err.starts_with("c.yaml: data.balancing.class_weights.method: unknown variant `inverse`, expected one of `inverse_frequency`, `effective_num`, `manual`"),
        "{err}"
    );
}

#[test]
fn booleans_must_be_booleans() {
    for key in ["enabled: \"yes\"", "replacement: 1", "normalize: maybe"] {
        let section = if key.starts_with("normalize") {
            "class_weights"
        } else {
            "weighted_sampler"
        };
        let err = parse(&balancing(&format!("    {section}:\n      {key}\n"))).unwrap_err();
        let name = key.split(':').next().unwrap();
        assert!(
            err.starts_with(&format!(
                "c.yaml: data.balancing.{section}.{name}: invalid type"
            )),
            "{err}"
        );
        assert!(err.contains("expected a boolean"), "{err}");
    }
}

#[test]
fn target_ratio_must_be_in_zero_one() {
    for (v, shown) in [
        ("0", "0"),
        ("1.5", "1.5"),
        ("-0.5", "-0.5"),
        (".nan", ".nan"),
    ] {
        let err = parse(&balancing(&format!(
            "    upsampling:\n      target_ratio: {v}\n"
        )))
        .unwrap_err();
        assert_eq!(
            err,
            format!("c.yaml: data.balancing.upsampling.target_ratio: expected a number in (0, 1], found {shown}")
        );
    }
    assert!(parse(&balancing("    downsampling:\n      target_ratio: 1\n")).is_ok());
    assert!(parse(&balancing("    downsampling:\n      target_ratio: 0.01\n")).is_ok());
}

#[test]
fn beta_must_be_in_open_zero_one() {
    for v in ["0", "1", "1.2", "-1"] {
        let err = parse(&balancing(&format!(
            "    class_weights:\n      beta: {v}\n"
        )))
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "c.yaml: data.balancing.class_weights.beta: expected a number in (0, 1), found {v}"
            )
        );
    }
    let err = parse(&balancing("    weighted_sampler:\n      beta: 1.0\n")).unwrap_err();
    assert_eq!(
        err,
        "c.yaml: data.balancing.weighted_sampler.beta: expected a number in (0, 1), found 1"
    );
}

#[test]
fn num_samples_is_null_or_positive_integer() {
    let ok = parse(&balancing("    weighted_sampler:\n      num_samples: 10\n")).unwrap();
    assert_eq!(ok.balancing.unwrap().weighted_sampler.num_samples, Some(10));
    let err = parse(&balancing("    weighted_sampler:\n      num_samples: 0\n")).unwrap_err();
    assert_eq!(err, "c.yaml: data.balancing.weighted_sampler.num_samples: expected null or an integer from 1 to 1073741824, found 0");
    let err = parse(&balancing(
        "    weighted_sampler:\n      num_samples: 18446744073709551615\n",
    ))
    .unwrap_err();
    assert_eq!(err, "c.yaml: data.balancing.weighted_sampler.num_samples: expected null or an integer from 1 to 1073741824, found 18446744073709551615");
    for v in ["-3", "2.5", "many"] {
        let err = parse(&balancing(&format!(
            "    weighted_sampler:\n      num_samples: {v}\n"
        )))
        .unwrap_err();
        assert!(
            err.starts_with("c.yaml: data.balancing.weighted_sampler.num_samples: invalid"),
            "{err}"
        );
    }
}

#[test]
fn manual_weights_rules() {
    let err = parse(&balancing("    class_weights:\n      method: manual\n")).unwrap_err();
    assert_eq!(
        err,
        "c.yaml: data.balancing.class_weights.manual_weights: expected a list of positive numbers (one per class) because method is manual, found null"
    );
    let err = parse(&balancing(
        "    class_weights:\n      method: manual\n      manual_weights: []\n",
    ))
    .unwrap_err();
    assert_eq!(err, "c.yaml: data.balancing.class_weights.manual_weights: expected a non-empty list of positive numbers, found []");
    for (list, i, shown) in [
        ("[1.0, 0]", 1, "0"),
        ("[-2, 1]", 0, "-2"),
        ("[1, .inf]", 1, ".inf"),
    ] {
        let err = parse(&balancing(&format!(
            "    weighted_sampler:\n      method: manual\n      manual_weights: {list}\n"
        )))
        .unwrap_err();
        assert_eq!(
            err,
            format!("c.yaml: data.balancing.weighted_sampler.manual_weights[{i}]: expected a positive finite number, found {shown}")
        );
    }
    let ok = parse(&balancing(
        "    weighted_sampler:\n      method: manual\n      manual_weights: [1, 5]\n",
    ))
    .unwrap();
    assert_eq!(
        ok.balancing.unwrap().weighted_sampler.manual_weights,
        Some(vec![1.0, 5.0])
    );
}

#[test]
fn yaml_syntax_errors_name_the_file_and_position() {
    let err = parse("data:\n  balancing: [\n").unwrap_err();
    assert!(err.starts_with("c.yaml: "), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn enabled_strategies_follow_priority() {
    let b = parse(&balancing(
        "    upsampling:\n      enabled: true\n    downsampling:\n      enabled: true\n    weighted_sampler:\n      enabled: true\n",
    ))
    .unwrap()
    .balancing
    .unwrap();
    assert_eq!(
        b.enabled_strategies(),
        vec![
            DataStrategy::WeightedSampler,
            DataStrategy::Downsampling,
            DataStrategy::Upsampling
        ]
    );
}

#[test]
fn users_original_file_loads_unchanged() {
    // A byte-for-byte copy of the user's own diffusion.example.yaml.
    let text = include_str!("../../tests/fixtures/user.diffusion.example.yaml");
    let c = parse(text).unwrap();
    assert_eq!(
        c.split_file.as_deref(),
        Some("outputs/splits/train_val_split.json")
    );
    assert_eq!(c.balancing, Some(Balancing::default()));
    assert_eq!(c.seed, SeedSetting::Fixed(0));
}
