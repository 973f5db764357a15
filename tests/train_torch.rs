//! The trainer against PyTorch itself (tests/python/torch_reference.py, run with the
//! Python that `BALANCE_SPLIT_TEST_PYTHON` names; scripts/test sets it to its virtual
//! environment with torch): weights exported to and imported from the user's `DDPMModel`.

#![cfg(feature = "train")]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;

use balance_split::train::checkpoint::Checkpoint;
use balance_split::train::family::Net;
use balance_split::train::state;
use balance_split::train::torch_files;
use balance_split::train::unet::state_dict::{load_state_dict, state_dict, Named};
use balance_split::train::unet::UNet;
use util::train::diffusion_train as train;
use util::{Dir, Run};

/// Runs a subcommand of torch_reference.py and parses its JSON line.
fn torch(args: &[&str]) -> serde_json::Value {
    util::train::python_json("tests/python/torch_reference.py", args)
}

/// One step of tiny.yaml on the CPU into `out`, started from `weights`.
fn init_from(dir: &Dir, out: &str, weights: &str) -> Run {
    let args = [
        "--config",
        "tiny.yaml",
        "--device",
        "cpu",
        "--max-steps",
        "1",
        "--out",
        out,
        "-q",
        "--init-from",
        weights,
    ];
    train(dir, &args)
}

/// tiny.yaml's model, as the JSON torch_reference.py builds their DDPMModel from.
fn tiny_model_json() -> String {
    serde_json::json!({
        "architecture": {"image_size": 16, "in_channels": 3, "model_channels": 16,
                         "channel_multipliers": [1, 2], "use_attention": [false, true]},
        "diffusion": {"num_timesteps": 100, "beta_schedule": "cosine",
                      "beta_start": 0.0001, "beta_end": 0.02},
        "num_classes": 2
    })
    .to_string()
}

fn f32s(n: usize, seed: u32) -> Vec<f32> {
    // A fixed, portable sequence in [-2, 2): the test's inputs, not a model of noise.
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

/// Our predicted noise for `x` (`[3, 3, 16, 16]`), `t`, `y`.
fn predict(model: &UNet, x: &[f32], t: &[f32], y: &[i64]) -> Vec<f32> {
    let device = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [3, 3, 16, 16]), &device);
    let t = Tensor::<1>::from_data(TensorData::new(t.to_vec(), [3]), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(y.to_vec(), [3]), &device);
    model
        .forward(x, t, Some(y))
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn named(name: &str, shape: &[usize], values: Vec<f32>) -> Named {
    Named {
        name: name.into(),
        shape: shape.to_vec(),
        values,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn tiny_unet() -> UNet {
    let s = balance_split::train::settings::TrainSettings::load(
        &util::repo().join("configs/examples/tiny.yaml"),
    )
    .unwrap();
    UNet::new(&s.architecture, Some(2), &Device::flex())
}

fn bits(named: &[Named]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    named
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.shape.clone(),
                n.values.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

#[test]
fn a_trained_model_exported_loads_into_their_ddpm_model_strictly_and_predicts_the_same_noise() {
    let d = Dir::tiny_project();
    let args = [
        "--config",
        "tiny.yaml",
        "--device",
        "cpu",
        "--max-steps",
        "3",
        "--out",
        "run",
        "-q",
    ];
    train(&d, &args).assert_ok();
    let r = train(
        &d,
        &[
            "export",
            "--config",
            "tiny.yaml",
            "--checkpoint",
            "run/checkpoints/latest.ckpt",
            "--out",
            "model.safetensors",
        ],
    );
    r.assert_ok();
    assert_eq!(
        r.stdout,
        "exported 172 tensors (826451 parameters, EMA weights, epoch 0 step 3) to model.safetensors\n"
    );

    // Our prediction on fixed inputs, from the checkpoint's EMA (what was exported).
    let ck_path = d.join("run/checkpoints/latest.ckpt");
    let ck = Checkpoint::load(&ck_path).unwrap();
    let Net::Ddpm(model) =
        state::load_weights(Net::Ddpm(tiny_unet()), &ck, &ck_path, true).unwrap()
    else {
        panic!("a DDPM checkpoint")
    };
    let x = f32s(3 * 3 * 16 * 16, 1);
    let (t, y) = ([0.0, 17.0, 99.0], [0, 1, 2]);
    let eps = predict(&model, &x, &t, &y);
    let case = d.join("case.safetensors");
    torch_files::write_safetensors(
        &case,
        &[
            named("x", &[3, 3, 16, 16], x),
            named("t", &[3], t.to_vec()),
            named("eps", &[3, 3, 16, 16], eps),
        ],
        [("model".to_owned(), tiny_model_json())].into(),
    )
    .unwrap();
    // Labels are int64 in PyTorch; write them beside the float case.
    let labels = d.join("labels.safetensors");
    {
        let bytes: Vec<u8> = y.iter().flat_map(|v: &i64| v.to_le_bytes()).collect();
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![3], &bytes).unwrap();
        std::fs::write(
            &labels,
            safetensors::serialize([("y", view)], None).unwrap(),
        )
        .unwrap();
    }
    let out = torch(&[
        "check-export",
        d.join("model.safetensors").to_str().unwrap(),
        case.to_str().unwrap(),
        labels.to_str().unwrap(),
    ]);
    assert_eq!(out["keys"], 172);
    let diff = out["max_abs_diff"].as_f64().unwrap();
    assert!(diff < 1e-4, "max |eps_torch - eps_ours| = {diff} ({out})");
    assert!(out["max_abs_eps"].as_f64().unwrap() > 0.1, "{out}");
    let buffers = out["buffer_max_rel_diff"].as_f64().unwrap();
    // float32 rounding of their step-by-step computation (measured 7.9e-5, in
    // sqrt_recip_alphas_cumprod at t = 99); a wrong formula or clip is off by far more.
    assert!(
        buffers < 2e-4,
        "schedule buffers differ by {buffers} of their scale ({out})"
    );
}

/// Their checkpoint written by `torch.save`, and its inputs and predictions.
fn their_pth(d: &Dir, wrong_shape: bool) -> (PathBuf, PathBuf) {
    let pth = d.join(if wrong_shape { "bad.pth" } else { "theirs.pth" });
    let case = d.join("their_case.safetensors");
    let config = tiny_model_json();
    let mut args = vec![
        "make-pth",
        pth.to_str().unwrap(),
        case.to_str().unwrap(),
        "--config",
        &config,
    ];
    if wrong_shape {
        args.push("--wrong-shape");
    }
    let out = torch(&args);
    assert_eq!(out["params"], 826451);
    (pth, case)
}

fn case_tensor(case: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(case).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    match view.dtype() {
        safetensors::Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        safetensors::Dtype::I64 => view
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn their_pth_gives_our_forward_their_predictions_for_the_model_and_the_ema() {
    let d = Dir::new();
    let (pth, case) = their_pth(&d, false);
    let imported = torch_files::open(&pth).unwrap();
    let x = case_tensor(&case, "x");
    let t = case_tensor(&case, "t");
    let y: Vec<i64> = case_tensor(&case, "y").iter().map(|&v| v as i64).collect();

    let model = load_state_dict(tiny_unet(), imported.model.as_ref()).unwrap();
    let diff = max_abs_diff(&predict(&model, &x, &t, &y), &case_tensor(&case, "eps"));
    assert!(diff < 1e-4, "model: {diff}");

    let ema = imported.ema.as_ref().expect("their ema_state_dict.shadow");
    let ema_model = load_state_dict(tiny_unet(), ema.as_ref()).unwrap();
    let diff = max_abs_diff(
        &predict(&ema_model, &x, &t, &y),
        &case_tensor(&case, "eps_ema"),
    );
    assert!(diff < 1e-4, "ema: {diff}");

    // The two directions composed: their tensors, imported then exported, bit for bit.
    let theirs: Vec<Named> = state_dict(&model)
        .iter()
        .map(|n| named(&n.name, &n.shape, imported.model.values(&n.name).unwrap()))
        .collect();
    assert_eq!(bits(&state_dict(&model)), bits(&theirs));
    // And ours, exported as safetensors then imported.
    let st = d.join("ours.safetensors");
    torch_files::write_safetensors(&st, &state_dict(&ema_model), Default::default()).unwrap();
    let back =
        load_state_dict(tiny_unet(), torch_files::open(&st).unwrap().model.as_ref()).unwrap();
    assert_eq!(bits(&state_dict(&back)), bits(&state_dict(&ema_model)));
}

#[test]
fn a_run_starts_from_their_pth_and_a_wrong_shape_is_refused_naming_the_key() {
    let d = Dir::tiny_project();
    let (pth, _) = their_pth(&d, false);
    let r = init_from(&d, "run", pth.to_str().unwrap());
    r.assert_ok();
    let log = d.read("run/logs/train.log");
    assert!(
        log.contains(&format!(
            "initialised the model from {} (the EMA from its ema_state_dict)",
            pth.display()
        )),
        "{log}"
    );

    let (bad, _) = their_pth(&d, true);
    let r = init_from(&d, "run2", bad.to_str().unwrap());
    assert_eq!(
        r.assert_bad_input(),
        format!(
            "error: {}: model.downs.0.resblocks.0.conv1.weight: expected shape [16, 16, 3, 3] for the configured model, found [17, 16, 3, 3]",
            bad.display()
        )
    );
    assert!(!d.exists("run2/checkpoints"));

    // Their checkpoint of the same UNet trained for 1000 timesteps, not tiny.yaml's 100.
    let other = tiny_model_json().replace("\"num_timesteps\":100", "\"num_timesteps\":1000");
    let pth = d.join("t1000.pth");
    let case = d.join("t1000.safetensors");
    torch(&[
        "make-pth",
        pth.to_str().unwrap(),
        case.to_str().unwrap(),
        "--config",
        &other,
    ]);
    let r = init_from(&d, "run3", pth.to_str().unwrap());
    assert_eq!(
        r.assert_bad_input(),
        format!(
            "error: {}: betas: expected shape [100] for the configured model, found [1000]",
            pth.display()
        )
    );
}

#[test]
fn plateau_gives_torchs_learning_rates_epoch_by_epoch() {
    use balance_split::train::plateau::{Plateau, PlateauState};
    let losses = [
        1.0,
        0.9,
        0.95,
        0.9,
        0.8999,
        0.91,
        0.92,
        0.7,
        0.7,
        0.7,
        0.7,
        0.71,
        0.69,
        0.7,
        0.7,
        0.7,
        0.7,
        0.7,
        0.7,
        0.5,
        f64::NAN,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
    ];
    let cases: [(&str, Plateau); 5] = [
        (
            r#"{"patience": 3, "threshold": 1.5}"#,
            Plateau {
                patience: 3,
                threshold: 1.5,
                ..Plateau::default()
            },
        ),
        ("{}", Plateau::default()),
        (
            r#"{"patience": 1}"#,
            Plateau {
                patience: 1,
                ..Plateau::default()
            },
        ),
        (
            r#"{"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.01, "threshold_mode": "abs", "cooldown": 1, "min_lr": 0.0002}"#,
            Plateau {
                maximize: true,
                factor: 0.5,
                patience: 2,
                threshold: 0.01,
                absolute: true,
                cooldown: 1,
                min_lr: 0.0002,
                ..Plateau::default()
            },
        ),
        (
            r#"{"factor": 0.3, "patience": 0, "threshold": 0.05, "cooldown": 2, "eps": 0.0005}"#,
            Plateau {
                factor: 0.3,
                patience: 0,
                threshold: 0.05,
                cooldown: 2,
                eps: 0.0005,
                ..Plateau::default()
            },
        ),
    ];
    // Python's json reads NaN and Infinity.
    let json = format!(
        "[{}]",
        losses
            .iter()
            .map(|l| if l.is_nan() {
                "NaN".into()
            } else {
                l.to_string()
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (options, p) in cases {
        let theirs: Vec<f64> = serde_json::from_value(
            torch(&[
                "plateau",
                "--losses",
                &json,
                "--lr",
                "0.001",
                "--options",
                options,
            ])["lrs"]
                .clone(),
        )
        .unwrap();
        let mut state = PlateauState::new(&p, 0.001);
        let ours: Vec<f64> = losses
            .iter()
            .map(|&l| {
                state.step(&p, l);
                state.lr
            })
            .collect();
        assert_eq!(ours, theirs, "{options}");
        assert!(theirs.last() < theirs.first(), "{options}: the rate fell");
    }
}

#[test]
fn the_dynamic_threshold_quantile_is_torchs() {
    use balance_split::train::generate::abs_quantile;
    let d = Dir::new();
    // Spread out like an early x0 estimate (|x| up to 6), and one sample of ties.
    let mut x: Vec<f32> = f32s(4 * 3 * 40 * 40, 5).iter().map(|v| v * 3.0).collect();
    x[3 * 4800..].iter_mut().for_each(|v| *v = v.round());
    let case = d.join("x.safetensors");
    torch_files::write_safetensors(
        &case,
        &[named("x", &[4, 3, 40, 40], x.clone())],
        Default::default(),
    )
    .unwrap();
    for q in [0.995, 0.5, 0.9, 1.0] {
        let theirs: Vec<f32> = serde_json::from_value(
            torch(&["quantile", case.to_str().unwrap(), "--q", &q.to_string()])["quantiles"]
                .clone(),
        )
        .unwrap();
        let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [4, 3, 40, 40]), &Device::flex());
        let ours = abs_quantile(t, q).into_data().try_to_vec::<f32>().unwrap();
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff <= 1e-6 * 6.0, "q {q}: ours {ours:?}, torch {theirs:?}");
    }
}

/// The metrics CSV as `(tag, [(step, value)])` in TensorBoard's names.
fn csv_series(csv: &str) -> std::collections::BTreeMap<String, Vec<(u64, f32)>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = std::collections::BTreeMap::<String, Vec<(u64, f32)>>::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let epoch: u64 = f[0].parse().unwrap();
        for (name, v) in header.iter().zip(&f).skip(2) {
            if v.is_empty() {
                continue;
            }
            let tag = match name.strip_prefix("val_loss_") {
                Some(class) => format!("val_loss/{class}"),
                None => name.to_string(),
            };
            out.entry(tag)
                .or_default()
                .push((epoch, v.parse::<f64>().unwrap() as f32));
        }
    }
    out
}

#[test]
fn tensorboard_event_files_hold_every_metric_and_image_as_tensorboard_reads_them() {
    let d = Dir::tiny_project();
    let config = d.read("tiny.yaml").replace(
        "log_images_interval: 10\n    log_denoising_interval: 20",
        "log_images_interval: 1\n    log_denoising_interval: 2",
    )
        + "logging:\n  metrics:\n    tensorboard:\n      enabled: true\n      log_images: true\n";
    d.write("tb.yaml", &config);
    let args = [
        "--config", "tb.yaml", "--device", "cpu", "--epochs", "2", "--out", "run", "-q",
    ];
    train(&d, &args).assert_ok();
    let script = util::repo().join("tests/python/tensorboard_events.py");
    let out = Command::new(util::train::python())
        .arg(script)
        .arg(d.join("run/tensorboard"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Every CSV column, epoch by epoch, as TensorBoard's 32-bit scalars.
    let scalars: std::collections::BTreeMap<String, Vec<(u64, f32)>> =
        serde_json::from_value(events["scalars"].clone()).unwrap();
    let expected = csv_series(&d.read("run/metrics.csv"));
    assert_eq!(
        scalars.keys().collect::<Vec<_>>(),
        [
            "images_per_s",
            "loss",
            "lr",
            "val_loss",
            "val_loss/abnormal",
            "val_loss/normal",
            "weighted_loss"
        ]
    );
    for (tag, series) in &expected {
        let ours = &scalars[tag];
        assert_eq!(ours.len(), series.len(), "{tag}");
        for ((s1, v1), (s2, v2)) in ours.iter().zip(series) {
            assert_eq!(s1, s2, "{tag}");
            // The CSV prints six decimals (images/s one), so it is within half of the
            // last printed digit; TensorBoard keeps f32, within its rounding.
            let tolerance = if tag == "images_per_s" {
                0.05
            } else {
                5e-7 + v2.abs() * 1e-6
            };
            assert!((v1 - v2).abs() <= tolerance, "{tag}: {v1} vs {v2}");
        }
    }
    assert_eq!(scalars["loss"].len(), 2);
    assert_eq!(
        scalars["val_loss"].len(),
        1,
        "validation ran at the last epoch only"
    );

    // The grids of both epochs and the strip of epoch 2, the very PNG files written.
    let images: std::collections::BTreeMap<String, Vec<(u64, u32, u32, String)>> =
        serde_json::from_value(events["images"].clone()).unwrap();
    let sha = |rel: &str| {
        use sha2::Digest;
        format!(
            "{:x}",
            sha2::Sha256::digest(std::fs::read(d.join(rel)).unwrap())
        )
    };
    let dims = |rel: &str| image::image_dimensions(d.join(rel)).unwrap();
    let entry = |step, rel: &str| {
        let (w, h) = dims(rel);
        (step, w, h, sha(rel))
    };
    assert_eq!(
        images["samples"],
        [
            entry(1, "run/samples/samples_epoch_0001.png"),
            entry(2, "run/samples/samples_epoch_0002.png")
        ]
    );
    assert_eq!(
        images["denoising"],
        [entry(2, "run/samples/denoising_epoch_0002.png")]
    );
    assert_eq!(images.len(), 2);
}

#[test]
fn a_damaged_weights_file_is_refused_in_one_line() {
    let d = Dir::tiny_project();
    d.write("garbage.pth", "not a zip at all\n");
    d.write(
        "garbage.safetensors",
        "\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{7f}{}",
    );
    let (good, _) = their_pth(&d, false);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d.join("truncated.pth"), &bytes[..bytes.len() / 2]).unwrap();
    for (file, reason) in [
        (
            "garbage.pth",
            "not a safetensors file (by its name) nor a torch.save file",
        ),
        ("garbage.safetensors", "not a safetensors file"),
        (
            "truncated.pth",
            "not a safetensors file (by its name) nor a torch.save file",
        ),
    ] {
        let r = init_from(&d, "run", file);
        let line = r.assert_bad_input();
        assert!(
            line.starts_with(&format!("error: {file}: {reason}")),
            "{line}"
        );
        assert!(!d.exists("run/checkpoints"), "{file}");
    }
}

/// The grid of the exact-architecture issue: every size-dependent key of the user's DDPM
/// config (`model_channels` 16 to 128, 2 to 4 stages with their multipliers, attention
/// patterns, images of 16 to 64 pixels, 1 and 3 channels, with and without classes).
fn grid_cases() -> serde_json::Value {
    let case = |mc: usize,
                mult: &[usize],
                attn: &[bool],
                size: usize,
                cin: usize,
                k: Option<usize>| {
        serde_json::json!({"model_channels": mc, "channel_multipliers": mult, "use_attention": attn,
                           "image_size": size, "in_channels": cin, "num_classes": k})
    };
    serde_json::json!([
        case(16, &[1, 2], &[false, true], 16, 3, Some(2)),
        case(32, &[1, 2, 2], &[false, false, true], 24, 1, None),
        case(64, &[1, 2, 4], &[false, false, true], 40, 3, Some(2)),
        case(128, &[1, 2], &[true, false], 16, 1, Some(3)),
        case(
            16,
            &[1, 1, 2, 2],
            &[true, false, true, false],
            64,
            3,
            Some(2)
        ),
        case(
            32,
            &[1, 2, 3, 4],
            &[false, false, false, true],
            32,
            3,
            Some(5)
        ),
        case(24, &[1, 2], &[false, false], 20, 3, Some(2)),
    ])
}

fn grid_arch(c: &serde_json::Value) -> balance_split::train::settings::Architecture {
    let list = |k: &str| c[k].as_array().unwrap().clone();
    balance_split::train::settings::Architecture {
        image_size: c["image_size"].as_u64().unwrap() as usize,
        in_channels: c["in_channels"].as_u64().unwrap() as usize,
        model_channels: c["model_channels"].as_u64().unwrap() as usize,
        channel_multipliers: list("channel_multipliers")
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect(),
        use_attention: list("use_attention")
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect(),
    }
}

/// Our forward on the grid case's inputs (`io{i}.safetensors`, written by torch_reference.py).
fn grid_forward(
    model: &UNet,
    io: &Path,
    arch: &balance_split::train::settings::Architecture,
    conditional: bool,
) -> Vec<f32> {
    let device = Device::flex();
    let s = arch.image_size;
    let x = Tensor::<4>::from_data(
        TensorData::new(case_tensor(io, "x"), [2, arch.in_channels, s, s]),
        &device,
    );
    let t = Tensor::<1>::from_data(TensorData::new(case_tensor(io, "t"), [2]), &device);
    let y = conditional.then(|| {
        let y: Vec<i64> = case_tensor(io, "y").iter().map(|&v| v as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(y, [2]), &device)
    });
    model
        .forward(x, t, y)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn max_rel_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    max_abs_diff(ours, theirs) / scale
}

/// Over the grid: our model has exactly their `state_dict` names and shapes, their weights
/// load into ours strictly and give their forward, and ours load into their `DDPMModel`
/// with `strict=True` and give ours (within 1e-4 of the output's scale both ways).
#[test]
fn their_ddpm_at_every_size_of_the_grid_is_ours_names_shapes_loading_and_forward() {
    let d = Dir::new();
    let cases = grid_cases();
    let dir = d.path().to_str().unwrap();
    let made = torch(&["grid", dir, "--cases", &cases.to_string()]);
    let device = Device::flex();
    let buffer_names: std::collections::BTreeSet<&str> =
        balance_split::train::unet::state_dict::BUFFERS
            .iter()
            .copied()
            .collect();
    for (i, case) in cases.as_array().unwrap().iter().enumerate() {
        let arch = grid_arch(case);
        let k = case["num_classes"].as_u64().map(|k| k as usize);
        let theirs = torch_files::open(&d.join(&format!("theirs{i}.safetensors"))).unwrap();
        let io = d.join(&format!("io{i}.safetensors"));

        // Names and shapes, parameter for parameter.
        let fresh = UNet::new(&arch, k, &device);
        let ours: Vec<(String, Vec<usize>)> = state_dict(&fresh)
            .into_iter()
            .map(|n| (n.name, n.shape))
            .collect();
        let mut their_names: Vec<String> = theirs
            .model
            .names()
            .into_iter()
            .filter(|n| !buffer_names.contains(n.as_str()))
            .collect();
        their_names.sort();
        let mut our_names: Vec<String> = ours.iter().map(|(n, _)| n.clone()).collect();
        our_names.sort();
        assert_eq!(our_names, their_names, "case {i}: {case}");
        for (name, shape) in &ours {
            assert_eq!(
                Some(shape.clone()),
                theirs.model.shape(name),
                "case {i}: {name}"
            );
        }
        assert_eq!(
            fresh.num_params() as u64,
            made["cases"][i]["params"].as_u64().unwrap(),
            "case {i}"
        );

        // Theirs into ours, strictly: their forward.
        let loaded = load_state_dict(fresh, theirs.model.as_ref()).unwrap();
        let diff = max_rel_diff(
            &grid_forward(&loaded, &io, &arch, k.is_some()),
            &case_tensor(&io, "eps"),
        );
        assert!(
            diff < 1e-4,
            "case {i} ({case}): theirs into ours, max relative difference {diff}"
        );

        // Ours (freshly initialised) written for theirs, with our forward beside it.
        device.seed(500 + i as u64);
        let mine = UNet::new(&arch, k, &device);
        let eps = grid_forward(&mine, &io, &arch, k.is_some());
        let mut tensors = balance_split::train::unet::state_dict::buffers(
            &balance_split::train::schedule::NoiseSchedule::new(
                &balance_split::train::settings::Diffusion {
                    num_timesteps: 100,
                    beta_schedule: balance_split::train::settings::BetaSchedule::Cosine,
                    beta_start: 0.0001,
                    beta_end: 0.02,
                },
            ),
        );
        tensors.extend(state_dict(&mine));
        let shape = vec![2, arch.in_channels, arch.image_size, arch.image_size];
        tensors.push(named("ours_eps", &shape, eps));
        torch_files::write_safetensors(
            &d.join(&format!("ours{i}.safetensors")),
            &tensors,
            Default::default(),
        )
        .unwrap();
    }
    let checked = torch(&["check-grid", dir, "--cases", &cases.to_string()]);
    for (i, diff) in checked["max_rel_diff"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let diff = diff.as_f64().unwrap();
        assert!(
            diff < 1e-4,
            "case {i}: ours into theirs, max relative difference {diff}"
        );
    }
}
