//! `diffusion-train` end to end on the embedded example, on the CPU backend, and its
//! bad-input errors.

#![cfg(feature = "train")]

mod util;

use util::train::diffusion_train as train;
use util::{Dir, Run};

fn project() -> Dir {
    Dir::tiny_project()
}

/// `steps` optimizer steps of `config` on the CPU into `run/`, quietly.
fn train_steps(dir: &Dir, config: &str, steps: &str) -> Run {
    train_steps_with(dir, config, steps, &[])
}

/// [`train_steps`] with `extra` arguments.
fn train_steps_with(dir: &Dir, config: &str, steps: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--config",
        config,
        "--device",
        "cpu",
        "--max-steps",
        steps,
        "--out",
        "run",
        "-q",
    ];
    args.extend_from_slice(extra);
    train(dir, &args)
}

#[test]
fn trains_a_few_steps_and_writes_metrics_checkpoints_and_a_log() {
    let d = project();
    let r = train_steps(&d, "tiny.yaml", "3");
    r.assert_ok();
    assert!(
        r.stdout.contains("trained 0 epochs (3 steps)"),
        "{}",
        r.stdout
    );
    let csv = d.read("run/metrics.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,step,loss,weighted_loss,lr,images_per_s,val_loss,val_loss_normal,val_loss_abnormal"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("0,3,"), "{}", lines[1]);
    let fields: Vec<f64> = lines[1]
        .split(',')
        .take(6)
        .map(|f| f.parse().unwrap())
        .collect();
    assert!(
        fields[2] > 0.0 && fields[2].is_finite(),
        "loss {}",
        fields[2]
    );
    assert!(
        fields[3] > 0.0 && fields[3] != fields[2],
        "the class-weighted loss differs"
    );
    assert!(d.exists("run/checkpoints/checkpoint_step_00000003.ckpt"));
    assert!(d.exists("run/checkpoints/latest.ckpt"));
    let log = d.read("run/logs/train.log");
    assert!(log.contains("device: CPU (burn Flex backend)"), "{log}");
    assert!(log.contains("matches the manifest's sha256"), "{log}");
    // 16 x 16 RGB: 200 x 3 x 257 x 4 bytes, then the 50 validation images.
    assert!(
        log.contains("train: 200 images on the device (0.6 MiB), batches gathered there"),
        "{log}"
    );
    assert!(
        log.contains("val: 50 images on the device (0.1 MiB), batches gathered there"),
        "{log}"
    );
}

#[test]
fn a_device_data_budget_too_small_keeps_batches_on_the_host_and_says_so() {
    let d = project();
    train_steps_with(&d, "tiny.yaml", "1", &["--device-data-mb", "0"]).assert_ok();
    let log = d.read("run/logs/train.log");
    let host = "images through the host pipeline (its decoded";
    assert!(
        log.contains(&format!(
            "train: {host} 0.6 MiB is over the 0.0 MiB left of --device-data-mb)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "val: {host} 0.1 MiB is over the 0.0 MiB left of --device-data-mb)"
        )),
        "{log}"
    );
    let jitter = d.read("tiny.yaml").replace(
        "enabled: false\n      strength: 0.1",
        "enabled: true\n      strength: 0.1",
    );
    assert_ne!(jitter, d.read("tiny.yaml"));
    d.write("jitter.yaml", &jitter);
    train_steps(&d, "jitter.yaml", "1").assert_ok();
    let log = d.read("run/logs/train.log");
    assert!(
        log.contains("train: images through the host pipeline (colour jitter runs on the host)"),
        "{log}"
    );
    assert!(log.contains("val: 50 images on the device"), "{log}");
}

#[test]
fn the_users_keys_without_effect_are_logged_once_and_use_amp_is_a_no_op_on_the_cpu() {
    let d = project();
    let config = d.read("tiny.yaml")
        + "logging:\n  console_level: INFO\n  metrics:\n    tensorboard:\n      flush_secs: 30\n";
    let config = config.replace(
        "training:\n",
        "training:\n  performance:\n    use_amp: true\n    compile_model: true\n",
    );
    d.write("amp.yaml", &config);
    let r = train_steps(&d, "amp.yaml", "1");
    r.assert_ok();
    let log = d.read("run/logs/train.log");
    let ignored = "ignored (no effect in diffusion-train): logging.console_level, logging.metrics.tensorboard.flush_secs, training.performance.compile_model";
    assert_eq!(log.matches(ignored).count(), 1, "{log}");
    assert!(
        log.contains("training.performance.use_amp: true has no effect on the CPU"),
        "{log}"
    );
}

#[test]
fn bench_prints_one_json_line_per_batch_with_the_time_of_each_phase() {
    let d = project();
    let r = train(
        &d,
        &[
            "bench",
            "--config",
            "tiny.yaml",
            "--device",
            "cpu",
            "--batch",
            "2",
            "3",
            "--steps",
            "2",
            "--warmup",
            "1",
        ],
    );
    r.assert_ok();
    let lines: Vec<serde_json::Value> = r.stdout.lines().map(util::json).collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    for (line, batch) in lines.iter().zip([2, 3]) {
        assert_eq!(line["batch"], batch);
        assert_eq!(line["device"], "CPU (burn Flex backend)");
        let phases = line["phases_ms"].as_object().unwrap();
        let names: Vec<&str> = phases.keys().map(String::as_str).collect();
        assert_eq!(names, ["data", "forward", "backward", "optimizer", "ema"]);
        // tiny.yaml keeps an EMA, so every phase does work.
        assert!(phases.values().all(|v| v.as_f64().unwrap() > 0.0), "{line}");
        assert!(line["images_per_s"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn a_checkpoint_trained_under_other_betas_is_refused() {
    use balance_split::train::checkpoint::Checkpoint;
    let d = project();
    train_steps(&d, "tiny.yaml", "1").assert_ok();
    let path = d.join("run/checkpoints/latest.ckpt");
    let mut ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.meta.betas_sha256.as_ref().map(String::len), Some(64));
    ck.meta.betas_sha256 = Some("0".repeat(64));
    ck.save(&d.join("other.ckpt")).unwrap();
    let r = train(
        &d,
        &[
            "generate",
            "--config",
            "tiny.yaml",
            "--device",
            "cpu",
            "--checkpoint",
            "other.ckpt",
            "--out",
            "gen",
            "-q",
        ],
    );
    assert!(
        r.assert_bad_input().starts_with(
            "error: other.ckpt: the checkpoint was trained with other noise-schedule betas than its model.diffusion (Diffusion { num_timesteps: 100, beta_schedule: Cosine"
        ),
        "{}",
        r.stderr
    );
}

/// A checkpoint of the format before the time embedding was the user's: at a width other
/// than 64 its model is not theirs, and it says so instead of loading into another shape.
#[test]
fn a_checkpoint_from_before_the_users_time_embedding_is_refused_at_other_widths() {
    use balance_split::train::checkpoint::Checkpoint;
    let d = project();
    train_steps(&d, "tiny.yaml", "1").assert_ok();
    let mut ck = Checkpoint::load(&d.join("run/checkpoints/latest.ckpt")).unwrap();
    assert_eq!(ck.meta.format_version, 2);
    ck.meta.format_version = 1;
    // Encoded by hand: `save` would write through the same check.
    std::fs::write(d.join("old.ckpt"), ck.encode()).unwrap();
    let r = train(
        &d,
        &[
            "export",
            "--config",
            "tiny.yaml",
            "--checkpoint",
            "old.ckpt",
            "--out",
            "m.safetensors",
        ],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: old.ckpt: not a diffusion-train checkpoint (written by an earlier diffusion-train whose model at model_channels 16 was not the user's (its time embedding was 64 wide, theirs is 256 at every size); its weights fit no model trained now: train again)"
    );
    assert!(!d.exists("m.safetensors"));
}

/// The user's pipeline runs every experiment as `CONFIG --dotted.key value`: the same for
/// the trainer, with their typo check.
#[test]
fn overrides_apply_to_the_trainers_config_and_a_typo_is_refused() {
    let d = project();
    let r = train_steps_with(
        &d,
        "tiny.yaml",
        "2",
        &["--training.optimizer.learning_rate", "0.5"],
    );
    r.assert_ok();
    let csv = d.read("run/metrics.csv");
    let lr: f64 = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert!((lr - 0.5).abs() < 0.01, "{csv}");
    let r = train_steps_with(
        &d,
        "tiny.yaml",
        "1",
        &["--training.optimiser.learning_rate", "0.5"],
    );
    assert!(
        r.assert_bad_input().starts_with(
            "error: tiny.yaml: overrides: unknown config key \"training.optimiser\" (a typo?); the keys at training are "
        ),
        "{}",
        r.stderr
    );
    // An override of data.balancing makes the manifest another config's: refused.
    let r = train_steps_with(
        &d,
        "tiny.yaml",
        "1",
        &["--data.balancing.class_weights.enabled", "false"],
    );
    assert!(
        r.assert_bad_input().contains(
            "made with another data.balancing than the config's (data.balancing.class_weights.enabled: the manifest has true, the config false)"
        ),
        "{}",
        r.stderr
    );
}

/// Their pretrained config as it comes, tried as a new user would (device cpu): not a
/// DDPM trained instead, but one line saying where OpenAI's file goes, exit 2.
#[test]
fn the_users_pretrained_adm_config_asks_for_openais_file() {
    let d = project();
    std::fs::copy(
        util::repo().join("configs/diffusion-pretrained.yaml"),
        d.join("adm.yaml"),
    )
    .unwrap();
    let r = train_steps(&d, "adm.yaml", "1");
    assert_eq!(
        r.assert_bad_input(),
        "error: adm.yaml: model.pretrained.cache_path: models/adm/64x64_diffusion.pt does not exist; diffusion-train downloads nothing: fetch https://openaipublic.blob.core.windows.net/diffusion/jul-2021/64x64_diffusion.pt and put it there"
    );
    assert!(!d.exists("run"));
}

#[test]
fn export_takes_the_trained_weights_with_raw_and_refuses_ema_without_one() {
    let d = project();
    let config = d
        .read("tiny.yaml")
        .replace("ema:\n    enabled: true", "ema:\n    enabled: false");
    d.write("noema.yaml", &config);
    train_steps(&d, "noema.yaml", "1").assert_ok();
    let export = |flag: &str| {
        let mut a = vec![
            "export",
            "--config",
            "noema.yaml",
            "--checkpoint",
            "run/checkpoints/latest.ckpt",
            "--out",
            "m.safetensors",
        ];
        a.extend([flag].into_iter().filter(|f| !f.is_empty()));
        train(&d, &a)
    };
    assert_eq!(
        export("--ema").assert_bad_input(),
        "error: run/checkpoints/latest.ckpt: --ema: the checkpoint has no EMA weights (training.ema.enabled was false); use --raw"
    );
    assert!(!d.exists("m.safetensors"));
    for flag in ["--raw", ""] {
        let r = export(flag);
        r.assert_ok();
        assert_eq!(
            r.stdout,
            "exported 172 tensors (826451 parameters, trained weights, epoch 0 step 1) to m.safetensors\n"
        );
    }
    // A config whose model is not the checkpoint's.
    d.write(
        "other.yaml",
        &config.replace("model_channels: 16", "model_channels: 8"),
    );
    let r = train(
        &d,
        &[
            "export",
            "--config",
            "other.yaml",
            "--checkpoint",
            "run/checkpoints/latest.ckpt",
            "--out",
            "o.safetensors",
        ],
    );
    assert!(
        r.assert_bad_input()
            .starts_with("error: run/checkpoints/latest.ckpt: the checkpoint's model"),
        "{}",
        r.stderr
    );
    assert!(!d.exists("o.safetensors"));
}

#[test]
fn a_missing_manifest_is_bad_input() {
    let d = project();
    let r = train(
        &d,
        &[
            "--config",
            "tiny.yaml",
            "--manifest",
            "nope.json",
            "--device",
            "cpu",
        ],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: nope.json: cannot read split file: No such file or directory (os error 2)"
    );
}

#[test]
fn a_changed_source_split_is_refused() {
    let d = project();
    let split = d.read("splits/example/train_val_split.json");
    d.write("splits/example/train_val_split.json", &format!("{split}\n"));
    let r = train(&d, &["--config", "tiny.yaml", "--device", "cpu"]);
    let line = r.assert_bad_input();
    assert!(
        line.starts_with("error: splits/example/train_val_split.json: the split changed since the manifest was made (sha256 "),
        "{line}"
    );
    assert!(
        line.ends_with("; run balance-split balance again"),
        "{line}"
    );
}

#[test]
fn a_class_count_mismatch_is_refused() {
    let d = project();
    let cfg = d
        .read("tiny.yaml")
        .replace("num_classes: 2", "num_classes: 3");
    d.write("three.yaml", &cfg);
    let r = train(
        &d,
        &[
            "--config",
            "three.yaml",
            "--manifest",
            "splits/example/train_val_split.balanced.json",
        ],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: splits/example/train_val_split.balanced.json: metadata.classes has 2 classes but the config's model.conditioning.num_classes is 3"
    );
}

#[test]
fn an_unsupported_optimizer_is_refused() {
    let d = project();
    let cfg = d.read("tiny.yaml").replace("type: adam", "type: sgd");
    d.write("sgd.yaml", &cfg);
    let r = train(&d, &["--config", "sgd.yaml"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: sgd.yaml: training.optimizer.type: expected adam or adamw, found \"sgd\""
    );
}

fn png_size(d: &Dir, rel: &str) -> (u32, u32) {
    image::image_dimensions(d.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn an_epoch_writes_its_sample_grid_and_denoising_strip() {
    let d = project();
    let cfg = d
        .read("tiny.yaml")
        .replace("log_images_interval: 10", "log_images_interval: 1")
        .replace("log_denoising_interval: 20", "log_denoising_interval: 1");
    d.write("vis.yaml", &cfg);
    let r = train(
        &d,
        &[
            "--config", "vis.yaml", "--device", "cpu", "--epochs", "1", "--out", "run", "-q",
        ],
    );
    r.assert_ok();
    assert!(
        r.stdout
            .contains("image: run/samples/samples_epoch_0001.png"),
        "{}",
        r.stdout
    );
    // 4 samples per class, 16 px enlarged 4x to 64, in two labelled rows.
    assert_eq!(
        png_size(&d, "run/samples/samples_epoch_0001.png"),
        (140 + 4 * 68 + 4, 28 + 2 * 68 + 4)
    );
    // Eight timesteps and the result, one row per class.
    assert_eq!(
        png_size(&d, "run/samples/denoising_epoch_0001.png"),
        (140 + 9 * 68 + 4, 28 + 2 * 68 + 4)
    );
    let csv = d.read("run/metrics.csv");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], "1");
    // The last epoch is validated: overall and per class.
    assert!(
        row[6..]
            .iter()
            .all(|v| v.parse::<f64>().is_ok_and(|x| x > 0.0)),
        "{row:?}"
    );
    assert!(d.exists("run/checkpoints/checkpoint_epoch_0001.ckpt"));
}

#[test]
fn generate_writes_per_class_pngs_and_a_grid() {
    let d = project();
    train_steps(&d, "tiny.yaml", "2").assert_ok();
    let r = train(
        &d,
        &[
            "generate",
            "--config",
            "tiny.yaml",
            "--checkpoint",
            "run/checkpoints/latest.ckpt",
            "--out",
            "gen",
            "--device",
            "cpu",
            "-q",
        ],
    );
    r.assert_ok();
    let mut files: Vec<String> = std::fs::read_dir(d.join("gen/generated"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "abnormal_0000.png",
            "abnormal_0001.png",
            "abnormal_0002.png",
            "abnormal_0003.png",
            "grid.png",
            "normal_0000.png",
            "normal_0001.png",
            "normal_0002.png",
            "normal_0003.png",
        ]
    );
    assert_eq!(png_size(&d, "gen/generated/normal_0002.png"), (16, 16));
    // grid_nrow 4: each class's 4 samples on one row.
    assert_eq!(
        png_size(&d, "gen/generated/grid.png"),
        (140 + 4 * 68 + 4, 28 + 2 * 68 + 4)
    );
    // Deterministic for the seed: a second run writes the same pixels.
    let first = std::fs::read(d.join("gen/generated/abnormal_0001.png")).unwrap();
    train(
        &d,
        &[
            "generate",
            "--config",
            "tiny.yaml",
            "--checkpoint",
            "run/checkpoints/latest.ckpt",
            "--out",
            "gen2",
            "--device",
            "cpu",
            "-q",
        ],
    )
    .assert_ok();
    assert_eq!(
        first,
        std::fs::read(d.join("gen2/generated/abnormal_0001.png")).unwrap()
    );
    // A damaged checkpoint is refused as bad input.
    let ck = d.join("run/checkpoints/latest.ckpt");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    let r = train(
        &d,
        &[
            "generate",
            "--config",
            "tiny.yaml",
            "--checkpoint",
            "run/checkpoints/latest.ckpt",
            "--device",
            "cpu",
        ],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: run/checkpoints/latest.ckpt: not a diffusion-train checkpoint (checksum mismatch: the file is truncated or damaged)"
    );
}

#[test]
fn a_cache_serves_training_and_validation_without_the_image_files() {
    for budget in ["1024", "0"] {
        cache_serves(budget);
    }
}

/// With `--device-data-mb budget`: the cache fills the resident sets, or feeds the host
/// pipeline.
fn cache_serves(budget: &str) {
    let d = project();
    d.run(&[
        "cache",
        "splits/example/train_val_split.balanced.json",
        "--image-size",
        "16",
        "--out",
        "example.cache",
    ])
    .assert_ok();
    // Every image the epoch and its validation need must now come from the cache.
    std::fs::remove_dir_all(d.join("splits/example/images")).unwrap();
    let r = train(
        &d,
        &[
            "--config",
            "tiny.yaml",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--cache",
            "example.cache",
            "--device-data-mb",
            budget,
            "--out",
            "run",
            "-q",
        ],
    );
    r.assert_ok();
    let csv = d.read("run/metrics.csv");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], "1", "{csv}");
    assert!(
        row[6].parse::<f64>().unwrap() > 0.0,
        "validation ran: {csv}"
    );
}

/// One optimizer step of tiny.yaml on `device`, with `env` added, logging to
/// `run/logs/train.log`.
fn one_step_on(dir: &Dir, device: &str, env: &[(&str, &str)]) -> Run {
    let args = [
        "--config",
        "tiny.yaml",
        "--device",
        device,
        "--max-steps",
        "1",
        "--out",
        "run",
        "-q",
    ];
    util::run_program(
        env!("CARGO_BIN_EXE_diffusion-train"),
        dir.path(),
        &args,
        env,
    )
}

#[test]
fn wgpu_without_a_vulkan_driver_is_named_with_exit_2() {
    let d = project();
    // The Vulkan loader finds no driver: every ICD path points nowhere.
    let none = "/nonexistent/icd.json";
    let r = one_step_on(
        &d,
        "wgpu",
        &[("VK_ICD_FILENAMES", none), ("VK_DRIVER_FILES", none)],
    );
    let line = r.assert_bad_input();
    // wgpu falls back to OpenGL where Mesa's is installed (and is refused: burn's
    // kernels do not compile there), else finds nothing.
    assert!(
        line.starts_with("error: --device wgpu: wgpu found only an OpenGL adapter, Gl adapter \"")
            || line.starts_with("error: --device wgpu: no wgpu adapter is available ("),
        "{line}"
    );
    assert!(
        line.ends_with(
            "; install a Vulkan driver (Mesa's lavapipe works on any CPU) or use --device cpu"
        ),
        "{line}"
    );
    assert!(!d.exists("run/checkpoints/latest.ckpt"));
}

/// scripts/test runs where CI does, without a GPU: Mesa's lavapipe, which is a CPU, and no
/// NVIDIA driver. `auto` must pass over both, saying why, and train on the CPU backend.
#[test]
fn auto_passes_over_what_is_not_a_gpu_and_says_why() {
    let d = project();
    one_step_on(&d, "auto", &[]).assert_ok();
    let log = d.read("run/logs/train.log");
    #[cfg(feature = "cuda")]
    if !balance_split::train::device::cuda::driver_present() {
        assert!(
            log.contains("auto: not CUDA: the CUDA driver library (libcuda.so) was not found"),
            "{log}"
        );
    }
    // Lavapipe is a CPU; without it wgpu finds OpenGL's llvmpipe, or nothing.
    assert!(log.contains("device: CPU (burn Flex backend)"), "{log}");
    assert!(
        log.contains("is not a GPU; using the CPU")
            || log.contains("auto: wgpu found only an OpenGL adapter")
            || log.contains("auto: no wgpu adapter"),
        "{log}"
    );
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_names_what_is_missing_with_exit_2() {
    let d = project();
    let r = one_step_on(&d, "cuda", &[]);
    // Named where NVIDIA's driver is missing (CI), used where it is there.
    if balance_split::train::device::cuda::driver_present() {
        r.assert_ok();
        assert!(d
            .read("run/logs/train.log")
            .contains("device: CUDA device 0"));
    } else {
        assert_eq!(
            r.assert_bad_input(),
            "error: --device cuda: the CUDA driver library (libcuda.so) was not found; install NVIDIA's driver, or use --device wgpu or --device cpu"
        );
    }
}

/// Every file the trainer writes goes through the destination checks: never over one of
/// its inputs, never over a FIFO or a device (a rename would have replaced /dev/null), and
/// the error names the option or config key that placed the file.
#[test]
fn the_trainers_outputs_never_replace_an_input_or_a_special_file() {
    let d = project();
    train_steps(&d, "tiny.yaml", "1").assert_ok();
    let export = |out: &str| {
        train(
            &d,
            &[
                "export",
                "--config",
                "tiny.yaml",
                "--checkpoint",
                "run/checkpoints/latest.ckpt",
                "--out",
                out,
            ],
        )
    };
    let config_before = d.read("tiny.yaml");
    assert_eq!(
        export("tiny.yaml").assert_bad_input(),
        "error: --out: tiny.yaml: refusing to overwrite an input file (tiny.yaml); choose another output"
    );
    assert_eq!(d.read("tiny.yaml"), config_before);
    assert!(export("run/checkpoints/latest.ckpt")
        .assert_bad_input()
        .contains("refusing to overwrite an input file (run/checkpoints/latest.ckpt)"));
    assert_eq!(
        export("/dev/null").assert_bad_input(),
        "error: --out: /dev/null: refusing to replace a device with a regular file; choose a file path"
    );
    let fifo = d.join("pipe.safetensors");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(export("pipe.safetensors")
        .assert_bad_input()
        .ends_with("refusing to replace a FIFO with a regular file; choose a file path"));
    // A log file that is a FIFO would block the run forever: refused naming the key.
    std::fs::remove_file(d.join("run/logs/train.log")).unwrap();
    let c = std::ffi::CString::new(d.join("run/logs/train.log").to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_eq!(
        train_steps(&d, "tiny.yaml", "1").assert_bad_input(),
        "error: output.subdirs.logs: run/logs/train.log: refusing to replace a FIFO with a regular file; choose a file path"
    );
    // --out naming a file (was exit 1, a failed mkdir).
    let r = util::train::on_cpu(&d, &[], "tiny.yaml", "tiny.yaml", &["--max-steps", "1"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: output.subdirs.logs: tiny.yaml/logs/train.log: tiny.yaml is a file, not a folder; choose another output folder"
    );
    assert_eq!(d.read("tiny.yaml"), config_before);
}

#[test]
fn zero_epochs_or_steps_and_usage_errors_are_one_line_with_exit_2() {
    let d = project();
    let r = train(&d, &["--config", "tiny.yaml", "--epochs", "0"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: invalid value '0' for '--epochs <EPOCHS>': expected at least 1 (0 would train nothing); see --help"
    );
    let r = train(&d, &["--config", "tiny.yaml", "--max-steps", "0"]);
    assert!(
        r.assert_bad_input().contains("expected at least 1"),
        "{}",
        r.stderr
    );
    let r = train(&d, &["--config", "tiny.yaml", "--epoch", "3"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: unexpected argument '--epoch' found; a similar argument exists: '--epochs'; see --help"
    );
    let r = train(&d, &["export", "--config", "tiny.yaml"]);
    assert!(
        r.assert_bad_input()
            .starts_with("error: the following required arguments were not provided:"),
        "{}",
        r.stderr
    );
}
