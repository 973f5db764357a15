//! The manifests of the committed example configs on the embedded example, with seed 0,
//! are pinned byte for byte. A change here changes every user's manifests: if it is
//! intended, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and say why in the
//! commit.

mod util;

use util::{repo, run_in, Dir};

const CONFIGS: [&str; 7] = [
    "configs/diffusion.yaml",
    "configs/examples/weighted_sampler.yaml",
    "configs/examples/downsampling.yaml",
    "configs/examples/upsampling.yaml",
    "configs/examples/class_weights_with_upsampling.yaml",
    "configs/examples/dose_ladder.yaml",
    "configs/examples/tstr.yaml",
];

fn golden_path(config: &str) -> std::path::PathBuf {
    let stem = std::path::Path::new(config)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap();
    repo()
        .join("tests/golden")
        .join(format!("{stem}.balanced.json"))
}

fn manifest(config: &str, env: &[(&str, &str)]) -> String {
    let d = Dir::new();
    let out = d.join("m.json");
    run_in(
        &repo(),
        &[
            "balance",
            "--config",
            config,
            "--seed",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
        env,
    )
    .assert_ok();
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn example_manifests_match_the_golden_files() {
    for config in CONFIGS {
        let got = manifest(config, &[]);
        let path = golden_path(config);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            got == want,
            "{config}: manifest differs from {}",
            path.display()
        );
    }
}

#[test]
fn a_second_run_and_a_single_thread_run_give_the_same_bytes() {
    for config in CONFIGS {
        let first = manifest(config, &[]);
        assert_eq!(first, manifest(config, &[]), "{config}: second run differs");
        assert_eq!(
            first,
            manifest(config, &[("RAYON_NUM_THREADS", "1")]),
            "{config}: one thread differs"
        );
    }
}
