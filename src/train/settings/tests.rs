use super::*;

fn parse(text: &str) -> Result<TrainSettings, String> {
    TrainSettings::parse(text, Path::new("c.yaml")).map_err(|e| e.to_string())
}

#[test]
fn the_users_config() {
    let s = parse(include_str!("../../../configs/diffusion.yaml")).unwrap();
    assert_eq!(s.seed, SeedSetting::Fixed(0));
    assert_eq!(s.device, DeviceChoice::Cuda);
    assert!(!s.generate_mode);
    assert_eq!(
        s.split_file.as_deref(),
        Some("splits/example/train_val_split.json")
    );
    assert_eq!(
        s.architecture,
        Architecture {
            image_size: 40,
            in_channels: 3,
            model_channels: 64,
            channel_multipliers: vec![1, 2, 4],
            use_attention: vec![false, false, true],
        }
    );
    assert_eq!(s.architecture.embed_dim(), 256);
    assert_eq!(
        s.diffusion,
        Diffusion {
            num_timesteps: 1000,
            beta_schedule: BetaSchedule::Cosine,
            beta_start: 1e-4,
            beta_end: 0.02,
        }
    );
    assert_eq!(
        s.conditioning,
        Some(Conditioning {
            num_classes: 2,
            class_dropout_prob: 0.1
        })
    );
    let t = &s.training;
    assert_eq!(t.epochs, 500);
    assert_eq!(
        t.optimizer,
        Optimizer {
            kind: OptimizerKind::Adam,
            learning_rate: 1e-4,
            weight_decay: 0.0,
            betas: [0.9, 0.999],
            gradient_clip_norm: None,
        }
    );
    assert_eq!(
        t.scheduler,
        Scheduler::Cosine {
            t_max: 500,
            eta_min: 1e-6
        }
    );
    assert_eq!(t.checkpointing.save_frequency, 50);
    assert_eq!((t.ema.enabled, t.ema.decay), (true, 0.9999));
    assert_eq!(t.visualization.log_images_interval, Some(50));
    assert!(!t.resume.enabled);
    assert_eq!(s.generation.num_samples, 100);
    assert_eq!(s.generation.grid_nrow, 10);
    assert_eq!(
        s.output.checkpoints,
        Path::new("outputs/diffusion/checkpoints")
    );
    assert_eq!(
        s.output.rebased(Path::new("/tmp/run")).samples,
        Path::new("/tmp/run/samples")
    );
}

#[test]
fn the_users_untouched_example_loads() {
    parse(include_str!(
        "../../../tests/fixtures/user.diffusion.example.yaml"
    ))
    .unwrap();
}

#[test]
fn defaults_for_an_empty_file() {
    let s = parse("").unwrap();
    assert_eq!(s.device, DeviceChoice::Auto);
    assert_eq!(
        s.conditioning, None,
        "no conditioning section: unconditional"
    );
    assert_eq!(s.architecture.channel_multipliers, [1, 2, 4]);
    assert_eq!(s.architecture.use_attention, [false, false, true]);
    assert_eq!(s.training.scheduler, Scheduler::Constant);
}

/// Every config the user's DDPM takes, as at every size: the time embedding is theirs.
#[test]
fn the_time_embedding_is_256_at_every_width() {
    for mc in [16, 32, 64, 128] {
        let s = parse(&format!(
            "model:\n  architecture:\n    model_channels: {mc}\n"
        ))
        .unwrap();
        assert_eq!(s.architecture.embed_dim(), 256, "{mc}");
    }
}

#[test]
fn every_bad_value_names_its_key() {
    let cases = [
        (
            "training:\n  optimizer:\n    type: sgd\n",
            "c.yaml: training.optimizer.type: expected adam or adamw, found \"sgd\"",
        ),
        (
            "training:\n  scheduler:\n    type: plateau\n    T_max: auto\n",
            "c.yaml: training.scheduler.T_max: not an argument of ReduceLROnPlateau (type: plateau takes mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps)",
        ),
        (
            "training:\n  scheduler:\n    type: plateau\n    mode: lowest\n",
            "c.yaml: training.scheduler.mode: expected min or max, found \"lowest\"",
        ),
        (
            "training:\n  scheduler:\n    type: plateau\n    factor: 1.0\n",
            "c.yaml: training.scheduler.factor: expected a number below 1 (ReduceLROnPlateau refuses 1 and above), found 1",
        ),
        (
            "compute:\n  device: tpu\n",
            "c.yaml: compute.device: expected auto, cuda, wgpu or cpu, found \"tpu\"",
        ),
        (
            "model:\n  architecture:\n    model_channels: 12\n",
            "c.yaml: model.architecture.model_channels: expected a multiple of 8 (GroupNorm uses 8 groups), found 12",
        ),
        (
            "model:\n  architecture:\n    channel_multipliers: [1, 2]\n    use_attention: [true]\n",
            "c.yaml: model.architecture.use_attention: expected one entry per channel multiplier (2), found 1",
        ),
        (
            "model:\n  architecture:\n    image_size: 2\n    channel_multipliers: [1, 1, 1]\n",
            "c.yaml: model.architecture.image_size: expected a multiple of 4 for 3 stages (each but the last halves it, and the user's decoder needs the halves exact), found 2",
        ),
        (
            "model:\n  conditioning:\n    type: class\n",
            "c.yaml: model.conditioning.num_classes: required when model.conditioning.type is class",
        ),
        (
            "model:\n  conditioning:\n    type: text\n",
            "c.yaml: model.conditioning.type: expected class or null, found \"text\"",
        ),
        (
            "model:\n  diffusion:\n    beta_schedule: linear\n    beta_start: 0.5\n    beta_end: 0.1\n",
            "c.yaml: model.diffusion.beta_end: expected 0 < beta_start <= beta_end < 1, found beta_start 0.5, beta_end 0.1",
        ),
        (
            "training:\n  optimizer:\n    betas: [0.9]\n",
            "c.yaml: training.optimizer.betas: expected two numbers in [0, 1), found [0.9]",
        ),
        (
            "training:\n  epochs: 0\n",
            "c.yaml: training.epochs: expected a positive integer, found 0",
        ),
        (
            "training:\n  resume:\n    enabled: true\n",
            "c.yaml: training.resume.checkpoint: required when training.resume.enabled is true",
        ),
        (
            "mode: evaluate\n",
            "c.yaml: mode: expected train or generate, found \"evaluate\"",
        ),
        (
            "model:\n  architecture:\n    image_size: 36\n    channel_multipliers: [1, 2, 2, 2]\n    use_attention: [false, false, false, true]\n",
            "c.yaml: model.architecture.image_size: expected a multiple of 8 for 4 stages (each but the last halves it, and the user's decoder needs the halves exact), found 36",
        ),
        (
            "model:\n  architecture:\n    channel_multipliers: [2, 4]\n    use_attention: [false, true]\n",
            "c.yaml: model.architecture.channel_multipliers: expected the first multiplier to be 1 (the user's output layer takes model_channels channels), found [2, 4]",
        ),
        (
            "model:\n  conditioning:\n    type: null\n    num_classes: 2\n",
            "c.yaml: model.conditioning.num_classes: set while model.conditioning.type is null: the user's create_ddpm then builds class-embedding layers that training never uses, a model diffusion-train does not make; set num_classes: null for the unconditional model (the same training), or type: class",
        ),
        (
            "model:\n  architecture:\n    model_channels: 8192\n",
            "c.yaml: model.architecture.model_channels: expected at most 4096, found 8192",
        ),
        (
            "model:\n  architecture:\n    channel_multipliers: [1, 2, 4, 8, 16, 32, 64, 64, 64]\n",
            "c.yaml: model.architecture.channel_multipliers: expected at most 8 stages, each multiplier at most 64, found [1, 2, 4, 8, 16, 32, 64, 64, 64]",
        ),
        (
            "model:\n  architecture:\n    image_size: 4096\n",
            "c.yaml: model.architecture.image_size: expected at most 1024 for the trainer, found 4096",
        ),
        (
            "model:\n  diffusion:\n    num_timesteps: 1000000000\n",
            "c.yaml: model.diffusion.num_timesteps: expected at most 100000, found 1000000000",
        ),
        (
            "model:\n  architecture:\n    model_channels: 2048\n    channel_multipliers: [1, 2, 4]\n",
            "c.yaml: model.architecture: this model would have 11370011907 parameters; at most 1000000000 are trained here (the user's default has 12,817,859)",
        ),
        (
            "experiment: classifier\n",
            "c.yaml: experiment: \"classifier\" is not trained by diffusion-train; it trains the user's DDPM (experiment: diffusion) and their ADM fine-tuning (experiment: diffusion_pretrained)",
        ),
        (
            "model:\n  pretrained:\n    checkpoint_path: adm.pt\n",
            "c.yaml: model.pretrained: not a section of the user's DDPM config (model.architecture, model.diffusion, model.conditioning); diffusion-train does not implement it",
        ),
        (
            "model:\n  architecture:\n    num_res_blocks: 3\n",
            "c.yaml: model.architecture.num_res_blocks: not a key of the user's DDPM (their create_ddpm reads image_size, in_channels, model_channels, channel_multipliers, use_attention here); it would change nothing in their model, so it is refused rather than ignored",
        ),
    ];
    for (yaml, expect) in cases {
        assert_eq!(parse(yaml).unwrap_err(), expect, "{yaml}");
    }
    let wrong_type = parse("training:\n  epochs: many\n").unwrap_err();
    assert!(
        wrong_type.starts_with("c.yaml: training.epochs: invalid type: string \"many\""),
        "{wrong_type}"
    );
}

#[test]
fn schedulers_and_intervals() {
    let s =
        parse("training:\n  epochs: 7\n  scheduler:\n    type: cosine\n    T_max: 3\n").unwrap();
    assert_eq!(
        s.training.scheduler,
        Scheduler::Cosine {
            t_max: 3,
            eta_min: 1e-6
        }
    );
    let s = parse("training:\n  scheduler:\n    type: step\n    step_size: 4\n    gamma: 0.5\n")
        .unwrap();
    assert_eq!(
        s.training.scheduler,
        Scheduler::Step {
            step_size: 4,
            gamma: 0.5
        }
    );
    let s = parse("training:\n  visualization:\n    log_images_interval: null\n    log_denoising_interval: 0\n").unwrap();
    assert_eq!(s.training.visualization.log_images_interval, None);
    assert_eq!(s.training.visualization.log_denoising_interval, None);
}

#[test]
fn plateau_takes_reduce_lr_on_plateaus_defaults_and_arguments() {
    use crate::train::plateau::Plateau;
    let s = parse("training:\n  scheduler:\n    type: plateau\n").unwrap();
    assert_eq!(s.training.scheduler, Scheduler::Plateau(Plateau::default()));
    let s = parse(
        "training:\n  scheduler:\n    type: Plateau\n    mode: max\n    factor: 0.5\n    patience: 3\n    threshold: 0.01\n    threshold_mode: abs\n    cooldown: 2\n    min_lr: 1.0e-6\n    eps: 0\n",
    )
    .unwrap();
    assert_eq!(
        s.training.scheduler,
        Scheduler::Plateau(Plateau {
            maximize: true,
            factor: 0.5,
            patience: 3,
            threshold: 0.01,
            absolute: true,
            cooldown: 2,
            min_lr: 1e-6,
            eps: 0.0,
        })
    );
}

#[test]
fn sampling_thresholds_dynamically_by_default_as_their_sampler() {
    let s = parse("").unwrap();
    let default = Threshold::Dynamic { percentile: 0.995 };
    assert_eq!(s.generation.threshold, default);
    assert_eq!(s.training.visualization.threshold, default);
    let s = parse(
        "generation:\n  sampling:\n    use_dynamic_threshold: false\ntraining:\n  visualization:\n    dynamic_threshold_percentile: 0.9\n",
    )
    .unwrap();
    assert_eq!(s.generation.threshold, Threshold::Clip);
    assert_eq!(
        s.training.visualization.threshold,
        Threshold::Dynamic { percentile: 0.9 }
    );
    assert_eq!(
        parse("generation:\n  sampling:\n    dynamic_threshold_percentile: 99.5\n").unwrap_err(),
        "c.yaml: generation.sampling.dynamic_threshold_percentile: expected a number in [0, 1], found 99.5"
    );
}

#[test]
fn the_users_keys_without_effect_here_are_listed_and_use_amp_and_tensorboard_read() {
    // The user's own file, byte for byte.
    let text = include_str!("../../../tests/fixtures/user.diffusion.example.yaml");
    let s = TrainSettings::parse(text, Path::new("diffusion.yaml")).unwrap();
    assert_eq!(
        s.ignored,
        [
            "logging.console_level",
            "logging.file_level",
            "logging.format",
            "logging.date_format",
            "logging.timezone",
            "logging.metrics.csv.enabled",
            "logging.metrics.tensorboard.flush_secs",
            "logging.metrics.tensorboard.log_histograms",
            "logging.metrics.tensorboard.log_graph",
            "training.performance.use_tf32",
            "training.performance.cudnn_benchmark",
            "training.performance.compile_model",
        ]
    );
    assert!(s.use_amp);
    assert_eq!(
        s.tensorboard,
        TensorBoard {
            enabled: true,
            images: true
        }
    );
    let s = parse("").unwrap();
    assert!(s.ignored.is_empty() && !s.use_amp && !s.tensorboard.enabled);
}
