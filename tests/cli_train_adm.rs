//! `diffusion-train` on the user's `experiment: diffusion_pretrained` config end to end on
//! the CPU: OpenAI's file format (a random one, saved by our PyTorch reference at the small
//! `adm_tiny` flags so it runs in seconds), the frozen backbone, the class-weighted hybrid
//! loss, validation, grids, resume, generation, export into the reference with
//! `strict=True`, `--init-from` their trainer's checkpoint, and the bad inputs.

#![cfg(feature = "train")]

mod util;

use util::train::{diffusion_train as train, on_cpu};
use util::{Dir, Run};

const REFERENCE: &str = "tests/python/adm_reference.py";

fn reference(args: &[&str]) -> serde_json::Value {
    util::train::python_json(REFERENCE, args)
}

/// The user's `diffusion_pretrained` model section at the `adm_tiny` flags, on the data,
/// training and output sections of the tiny DDPM demo (whose manifest the project has),
/// sampling over 10 respaced steps of 100.
fn adm_config(tiny: &str) -> String {
    let start = tiny.find("model:\n").unwrap();
    let end = tiny.find("data:\n").unwrap();
    let model = "model:
  architecture:
    image_size: 16
    in_channels: 3
  pretrained:
    source: adm_tiny
    checkpoint_url: \"https://openaipublic.blob.core.windows.net/diffusion/jul-2021/64x64_diffusion.pt\"
    checkpoint_path: null
    cache_path: \"models/adm/weights.pt\"
  diffusion:
    num_timesteps: 100
    noise_schedule: cosine
    sample_timestep_respacing: \"10\"
  conditioning:
    type: class
    num_classes: 2
    class_dropout_prob: 0.1
  initialization:
    freeze_backbone: true
    trainable_layers: null

";
    format!("{}{model}{}", &tiny[..start], &tiny[end..])
        .replace(
            "experiment: diffusion\n",
            "experiment: diffusion_pretrained\n",
        )
        .replace("learning_rate: 0.002", "learning_rate: 0.01")
}

/// The tiny project with `adm.yaml` and, under `models/adm/`, OpenAI's format at the tiny
/// flags (`weights.pt`, 1000 label rows as theirs) and the bad variants of it.
fn adm_project() -> Dir {
    let d = Dir::tiny_project();
    d.write("adm.yaml", &adm_config(&d.read("tiny.yaml")));
    std::fs::create_dir_all(d.join("models/adm")).unwrap();
    let dir = d.join("models/adm");
    let dir = dir.to_str().unwrap();
    reference(&["model", dir, "--flags", "tiny", "--rows", "1000"]);
    reference(&["files", dir, "--flags", "tiny", "--rows", "3"]);
    d
}

/// `n` steps of `adm.yaml` into `run/`.
fn steps(d: &Dir, n: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--max-steps", n];
    args.extend_from_slice(extra);
    on_cpu(d, &[], "adm.yaml", "run", &args)
}

/// Exports `checkpoint` of `config` to `out`, with `extra` arguments.
fn export_of(d: &Dir, config: &str, checkpoint: &str, out: &str, extra: &[&str]) -> Run {
    let mut a = vec![
        "export",
        "--config",
        config,
        "--checkpoint",
        checkpoint,
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    train(d, &a)
}

/// [`export_of`] of `adm.yaml`; `flag` is `--raw`, `--ema` or empty.
fn export(d: &Dir, checkpoint: &str, out: &str, flag: &str) -> Run {
    let flags: &[&str] = if flag.is_empty() { &[] } else { &[flag] };
    export_of(d, "adm.yaml", checkpoint, out, flags)
}

/// Their config with the backbone frozen: OpenAI's tensors load, the heads train, every
/// frozen tensor leaves bit for bit as it came, and the export loads into the reference
/// with `strict=True` under their `AdmDdpmModel` names.
#[test]
fn the_users_pretrained_config_trains_the_heads_of_openais_file() {
    let d = adm_project();
    let r = steps(&d, "3", &[]);
    r.assert_ok();
    assert!(
        r.stdout.contains("trained 0 epochs (3 steps)"),
        "{}",
        r.stdout
    );
    let log = d.read("run/logs/train.log");
    assert!(
        log.contains("loaded 216 of the ADM's backbone tensors from models/adm/weights.pt; the label head (3 rows) is new"),
        "{log}"
    );
    assert!(
        log.contains("training 5 of the ADM's 217 tensors (label_emb*, out.*)"),
        "{log}"
    );
    assert!(log.contains("loss class-weighted"), "{log}");
    let csv = d.read("run/metrics.csv");
    let row: Vec<f64> = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .take(4)
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(row[..2], [0.0, 3.0]);
    assert!(
        row[2].is_finite() && row[3].is_finite() && row[3] != row[2],
        "{csv}"
    );

    // The model's 1,422,662 f32 parameters (5.69 MB) and little else: the EMA section holds
    // the 5 trained tensors only (the rest of the average is the frozen weights) and the
    // optimizer their moments only.
    let size = std::fs::metadata(d.join("run/checkpoints/latest.ckpt"))
        .unwrap()
        .len();
    assert!((5_690_000..5_800_000).contains(&size), "{size} bytes");
    let e = export(&d, "run/checkpoints/latest.ckpt", "m.safetensors", "--raw");
    e.assert_ok();
    assert_eq!(
        e.stdout,
        "exported 217 tensors (1422662 parameters, trained weights, epoch 0 step 3) to m.safetensors\n"
    );
    let checked = reference(&[
        "check-trained",
        d.join("m.safetensors").to_str().unwrap(),
        d.join("models/adm/weights.pt").to_str().unwrap(),
        "--flags",
        "tiny",
        "--rows",
        "3",
    ]);
    assert_eq!(checked["identical"], 212, "{checked}");
    assert_eq!(
        checked["changed"],
        serde_json::json!(["out.0.bias", "out.0.weight", "out.2.bias", "out.2.weight"]),
        "{checked}"
    );
    assert_eq!(
        checked["other_shape"],
        serde_json::json!(["label_emb.weight"])
    );
}

/// Full fine-tuning moves the backbone too; trainable_layers picks tensors by their names
/// and wins over freeze_backbone.
#[test]
fn trainable_layers_choose_what_moves() {
    let d = adm_project();
    let weights = d.join("models/adm/weights.pt");
    let changed = |extra: &[&str], name: &str| {
        let r = steps(&d, "1", extra);
        r.assert_ok();
        export(&d, "run/checkpoints/latest.ckpt", name, "--raw").assert_ok();
        let c = reference(&[
            "check-trained",
            d.join(name).to_str().unwrap(),
            weights.to_str().unwrap(),
            "--flags",
            "tiny",
            "--rows",
            "3",
        ]);
        std::fs::remove_dir_all(d.join("run")).unwrap();
        (c["identical"].as_u64().unwrap(), c["changed"].clone())
    };
    let (identical, _) = changed(
        &["--model.initialization.freeze_backbone", "false"],
        "full.safetensors",
    );
    assert!(
        identical < 10,
        "full fine-tuning moves nearly every tensor: {identical}"
    );
    let (_, moved) = changed(
        &[
            "--model.initialization.trainable_layers",
            "[\"middle_block.2.*\"]",
        ],
        "middle.safetensors",
    );
    let moved: Vec<String> = serde_json::from_value(moved).unwrap();
    assert!(!moved.is_empty());
    assert!(
        moved.iter().all(|n| n.starts_with("middle_block.2.")),
        "{moved:?}"
    );
}

/// An epoch validates the hybrid loss per class and draws the grid and the strip with the
/// respaced sampler; generation samples from the checkpoint; a resume continues exactly.
#[test]
fn an_epoch_validates_draws_resumes_and_generates() {
    let d = adm_project();
    let every = [
        "--training.validation.frequency",
        "1",
        "--training.visualization.log_images_interval",
        "1",
        "--training.visualization.log_denoising_interval",
        "1",
        "--training.visualization.num_samples",
        "2",
    ];
    let mut args = vec!["--epochs", "1"];
    args.extend(every);
    on_cpu(&d, &[], "adm.yaml", "run", &args).assert_ok();
    let csv = d.read("run/metrics.csv");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[..2], ["1", "13"], "{csv}");
    for v in &row[6..9] {
        assert!(v.parse::<f64>().unwrap() > 0.0, "validation losses: {csv}");
    }
    assert!(d.exists("run/samples/samples_epoch_0001.png"));
    assert!(d.exists("run/samples/denoising_epoch_0001.png"));

    // Two epochs straight against one and a resume: the same weights, bit for bit.
    let run = |out: &str, epochs: &str, resume: Option<&str>| {
        let mut args = vec!["--epochs", epochs];
        args.extend(resume.map(|r| ["--resume", r]).into_iter().flatten());
        on_cpu(&d, &[], "adm.yaml", out, &args).assert_ok();
    };
    run("half", "1", None);
    run("half", "2", Some("half/checkpoints/latest.ckpt"));
    run("whole", "2", None);
    export(
        &d,
        "whole/checkpoints/latest.ckpt",
        "straight.safetensors",
        "",
    )
    .assert_ok();
    export(
        &d,
        "half/checkpoints/latest.ckpt",
        "resumed.safetensors",
        "",
    )
    .assert_ok();
    let (a, b) = (
        std::fs::read(d.join("straight.safetensors")).unwrap(),
        std::fs::read(d.join("resumed.safetensors")).unwrap(),
    );
    assert!(a == b, "a resumed run differs from the straight one");

    let g = on_cpu(
        &d,
        &["generate"],
        "adm.yaml",
        "gen",
        &["--checkpoint", "run/checkpoints/latest.ckpt"],
    );
    g.assert_ok();
    assert!(d.exists("gen/generated/grid.png"), "{}", g.stdout);
    assert!(d.exists("gen/generated/normal_0000.png"));
    assert!(d.exists("gen/generated/abnormal_0003.png"));
}

/// `--init-from` their trainer's checkpoint of an `AdmDdpmModel`: the model from its
/// `model_state_dict` (`unet.` names), the EMA from its shadow of the trained heads.
#[test]
fn init_from_their_adm_checkpoint() {
    let d = adm_project();
    std::fs::remove_file(d.join("models/adm/weights.pt")).unwrap();
    let r = steps(&d, "1", &["--init-from", "models/adm/theirs.pt"]);
    r.assert_ok();
    let log = d.read("run/logs/train.log");
    assert!(
        log.contains(
            "initialised the model from models/adm/theirs.pt (the EMA from its ema_state_dict)"
        ),
        "{log}"
    );
    assert!(
        !log.contains("backbone tensors from"),
        "no pretrained load: {log}"
    );
}

/// Every bad input is one line with exit 2, and nothing is written.
#[test]
fn bad_pretrained_inputs_are_one_line_and_write_nothing() {
    let d = adm_project();
    let bad = |extra: &[&str]| {
        let r = steps(&d, "1", extra);
        let line = r.assert_bad_input().to_owned();
        assert!(!d.exists("run"), "{line}");
        line
    };
    let cases: [(&[&str], &str); 6] = [
        (
            &["--model.pretrained.cache_path", "models/adm/absent.pt"],
            "error: adm.yaml: model.pretrained.cache_path: models/adm/absent.pt does not exist; diffusion-train downloads nothing: fetch https://openaipublic.blob.core.windows.net/diffusion/jul-2021/64x64_diffusion.pt and put it there",
        ),
        (
            &["--model.pretrained.checkpoint_path", "models/adm/wrapped.pt"],
            "error: models/adm/wrapped.pt: only 0 of the model's 216 backbone tensors are in the file (every name in it starts with \"model_state_dict\": a wrapped dict); expected OpenAI's ImageNet-64 ADM state dict (guided-diffusion's names, a plain dict saved by torch.save)",
        ),
        (
            &["--model.pretrained.checkpoint_path", "models/adm/reshaped.pt"],
            "error: models/adm/reshaped.pt: out.2.weight: expected shape [6, 32, 3, 3] for the configured model, found [6, 16, 3, 3]",
        ),
        (
            &["--model.pretrained.checkpoint_path", "models/adm/nan.pt"],
            "error: models/adm/nan.pt: out.2.weight: holds NaN: expected finite weights",
        ),
        (
            &["--model.initialization.trainable_layers", "[\"decoder.*\"]"],
            "error: adm.yaml: model.initialization.trainable_layers: [\"decoder.*\"] match no parameter of the model (names like \"input_blocks.0.0.weight\", \"out.2.bias\")",
        ),
        (
            &["--model.diffusion.sample_timestep_respacing", "ddim33"],
            "error: adm.yaml: model.diffusion.sample_timestep_respacing: \"ddim33\": cannot take exactly 33 steps of 100 with an integer stride",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(bad(args), expected, "{args:?}");
    }
    // A checkpoint of other steps, and a DDPM checkpoint, given to the ADM config.
    steps(&d, "1", &[]).assert_ok();
    let r = export_of(
        &d,
        "adm.yaml",
        "run/checkpoints/latest.ckpt",
        "x.safetensors",
        &["--model.diffusion.num_timesteps", "50"],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: run/checkpoints/latest.ckpt: the checkpoint's model differs from the config's: model.diffusion.num_timesteps is 100 in the checkpoint, 50 in the config"
    );
    std::fs::remove_dir_all(d.join("run")).unwrap();
    on_cpu(&d, &[], "tiny.yaml", "ddpm", &["--max-steps", "1"]).assert_ok();
    let r = export(&d, "ddpm/checkpoints/latest.ckpt", "x.safetensors", "");
    assert_eq!(
        r.assert_bad_input(),
        "error: ddpm/checkpoints/latest.ckpt: the checkpoint's model is the DDPM (experiment: diffusion), the config's the ADM adm_tiny with the cosine schedule (experiment: diffusion_pretrained)"
    );
    assert!(!d.exists("x.safetensors"));
    let r = on_cpu(
        &d,
        &["generate"],
        "adm.yaml",
        "gen",
        &["--checkpoint", "ddpm/checkpoints/latest.ckpt"],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: ddpm/checkpoints/latest.ckpt: a DDPM checkpoint (experiment: diffusion); generate with that experiment's config (this one's sampler is the ADM's)"
    );
    assert!(!d.exists("gen"), "a refused generation leaves no log");
    // Their DDPMModel's weights given to the ADM config, and the other way round.
    export_of(
        &d,
        "tiny.yaml",
        "ddpm/checkpoints/latest.ckpt",
        "ddpm.safetensors",
        &[],
    )
    .assert_ok();
    assert_eq!(
        bad(&["--init-from", "ddpm.safetensors"]),
        "error: ddpm.safetensors: no unet.* tensors: expected a checkpoint of their AdmDdpmModel (a DDPMModel's names start with model.)"
    );
    let r = on_cpu(
        &d,
        &[],
        "tiny.yaml",
        "run",
        &["--max-steps", "1", "--init-from", "models/adm/theirs.pt"],
    );
    assert_eq!(
        r.assert_bad_input(),
        "error: models/adm/theirs.pt: a checkpoint of their AdmDdpmModel (unet.* names); the config trains the DDPM (experiment: diffusion)"
    );
    assert!(!d.exists("run"));
}
