use std::path::{Path, PathBuf};

use crate::train::gaussian::AdmSchedule;
use crate::train::settings::{
    Adm, AdmModel, AdmSource, BetaSchedule, Diffusion, Threshold, TrainSettings, Trainable,
};

fn parse(text: &str) -> Result<TrainSettings, String> {
    TrainSettings::parse(text, Path::new("c.yaml")).map_err(|e| e.to_string())
}

const USERS: &str = include_str!("../../../../configs/diffusion-pretrained.yaml");

/// The user's example config, unchanged: their ImageNet-64 ADM, the cosine schedule,
/// 250-step sampling, the heads trained, the cache path (checkpoint_path is null).
#[test]
fn the_users_pretrained_config() {
    let s = parse(USERS).unwrap();
    assert_eq!(
        s.adm,
        Some(Adm {
            model: AdmModel {
                source: AdmSource::AdmImagenet64,
                noise_schedule: AdmSchedule::Cosine,
            },
            checkpoint: PathBuf::from("models/adm/64x64_diffusion.pt"),
            checkpoint_key: "model.pretrained.cache_path",
            checkpoint_url: Some(
                "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/64x64_diffusion.pt"
                    .into()
            ),
            respacing: "250".into(),
            trainable: Trainable::Heads,
        })
    );
    assert_eq!(
        s.diffusion,
        Diffusion {
            num_timesteps: 1000,
            beta_schedule: BetaSchedule::Cosine,
            beta_start: 1e-4,
            beta_end: 0.02,
        }
    );
    assert_eq!(s.architecture.image_size, 40);
    assert_eq!(s.architecture.channel_multipliers, [1, 2, 3, 4]);
    assert_eq!(s.conditioning.as_ref().unwrap().num_classes, 2);
    assert_eq!(s.training.visualization.threshold, Threshold::Clip);
    assert_eq!(s.generation.threshold, Threshold::Clip);
}

#[test]
fn initialization_and_paths_as_their_code_reads_them() {
    let with = |extra: &str| parse(&format!("{USERS}{extra}")).unwrap().adm.unwrap();
    let patterns = with("");
    assert_eq!(patterns.trainable, Trainable::Heads);
    // trainable_layers wins over freeze_backbone, as in their build_adm_model.
    let s = USERS.replace(
        "    freeze_backbone: true\n    trainable_layers: null",
        "    freeze_backbone: true\n    trainable_layers: [\"out.*\", \"output_blocks.1*\"]",
    );
    assert_eq!(
        parse(&s).unwrap().adm.unwrap().trainable,
        Trainable::Patterns(vec!["out.*".into(), "output_blocks.1*".into()])
    );
    let s = USERS.replace("freeze_backbone: true", "freeze_backbone: false");
    assert_eq!(parse(&s).unwrap().adm.unwrap().trainable, Trainable::All);
    let s = USERS.replace("checkpoint_path: null", "checkpoint_path: here/adm.pt");
    let adm = parse(&s).unwrap().adm.unwrap();
    assert_eq!(adm.checkpoint, PathBuf::from("here/adm.pt"));
    assert_eq!(adm.checkpoint_key, "model.pretrained.checkpoint_path");
    let s = USERS
        .replace("noise_schedule: cosine", "noise_schedule: linear")
        .replace("num_timesteps: 1000", "num_timesteps: 500")
        .replace(
            "sample_timestep_respacing: \"250\"",
            "sample_timestep_respacing: \"ddim50\"",
        );
    let parsed = parse(&s).unwrap();
    assert_eq!(
        parsed.adm.as_ref().unwrap().model.noise_schedule,
        AdmSchedule::Linear
    );
    assert_eq!(parsed.adm.unwrap().respacing, "ddim50");
    assert_eq!(parsed.diffusion.beta_start, 2e-4);
    assert_eq!(parsed.diffusion.beta_end, 0.04);
}

/// Each refusal is one line naming the file and the key.
#[test]
fn bad_pretrained_configs_are_refused() {
    let cases: [(&str, &str, &str); 13] = [
        (
            "    image_size: 40",
            "    image_size: 4096",
            "c.yaml: model.architecture.image_size: expected at most 1024 for the trainer, found 4096",
        ),
        (
            "num_timesteps: 1000",
            "num_timesteps: 1",
            "c.yaml: model.diffusion.num_timesteps: expected at least 2 with the cosine schedule (guided-diffusion's posterior needs two steps), found 1",
        ),
        (
            "num_timesteps: 1000\n    noise_schedule: cosine",
            "num_timesteps: 20\n    noise_schedule: linear",
            "c.yaml: model.diffusion.num_timesteps: expected at least 21 with the linear schedule (guided-diffusion's linear betas 0.02 x 1000 / T must stay below 1), found 20",
        ),
        (
            "source: adm_imagenet64",
            "source: adm_imagenet256",
            "c.yaml: model.pretrained.source: expected one of [\"adm_imagenet64\", \"adm_tiny\"], found \"adm_imagenet256\"",
        ),
        (
            "    cache_path: \"models/adm/64x64_diffusion.pt\"",
            "    cache_path: null",
            "c.yaml: model.pretrained: expected checkpoint_path (a local file) or cache_path (where the downloaded file is kept)",
        ),
        (
            "noise_schedule: cosine",
            "noise_schedule: sigmoid",
            "c.yaml: model.diffusion.noise_schedule: \"sigmoid\" passes the user's validator but guided-diffusion's get_named_beta_schedule has only linear and cosine (it raises NotImplementedError)",
        ),
        (
            "noise_schedule: cosine",
            "noise_schedule: cosin",
            "c.yaml: model.diffusion.noise_schedule: expected cosine or linear, found \"cosin\"",
        ),
        (
            "sample_timestep_respacing: \"250\"",
            "sample_timestep_respacing: \"fast\"",
            "c.yaml: model.diffusion.sample_timestep_respacing: \"fast\" is not a list of step counts (\"250\", \"10,20,30\") nor \"ddimN\"",
        ),
        (
            "    image_size: 40",
            "    image_size: 36",
            "c.yaml: model.architecture.image_size: expected a multiple of 8 (adm_imagenet64 halves it 3 times and concatenates its skips unresized), found 36",
        ),
        (
            "    in_channels: 3",
            "    in_channels: 1",
            "c.yaml: model.architecture.in_channels: must be 3 for the ADM backbone (grayscale images are read as RGB), found 1",
        ),
        (
            "    type: class",
            "    type: null\n    # (num_classes below)",
            "c.yaml: model.conditioning.num_classes: set while model.conditioning.type is null: the user's create_ddpm then builds class-embedding layers that training never uses, a model diffusion-train does not make; set num_classes: null for the unconditional model (the same training), or type: class",
        ),
        (
            "    image_size: 40",
            "    image_size: 40\n    model_channels: 64",
            "c.yaml: model.architecture.model_channels: not a key of the user's diffusion_pretrained config (their build_adm_model reads image_size, in_channels here); it would change nothing in their model, so it is refused rather than ignored",
        ),
        (
            "    guidance_scale: 3.0\n    log_images_interval",
            "    guidance_scale: 3.0\n    use_dynamic_threshold: true\n    log_images_interval",
            "c.yaml: training.visualization.use_dynamic_threshold: true: the ADM samples with clip_denoised as the user's AdmDdpmModel does; dynamic thresholding is their DDPM sampler's (set it to false or remove it)",
        ),
    ];
    for (from, to, expect) in cases {
        assert!(USERS.contains(from), "{from}");
        assert_eq!(
            parse(&USERS.replacen(from, to, 1)).unwrap_err(),
            expect,
            "{to}"
        );
    }
    let unconditional = USERS.replace(
        "    type: class\n    num_classes: 2",
        "    type: null\n    num_classes: null",
    );
    assert_eq!(
        parse(&unconditional).unwrap_err(),
        "c.yaml: model.conditioning.type: null: the user's AdmDdpmModel always has num_classes + 1 label rows (the last the unconditional token); set type: class"
    );
    for (value, shown) in [("250", "250"), ("null", "null")] {
        let s = USERS.replace(
            "sample_timestep_respacing: \"250\"",
            &format!("sample_timestep_respacing: {value}"),
        );
        assert_eq!(
            parse(&s).unwrap_err(),
            format!("c.yaml: model.diffusion.sample_timestep_respacing: expected a string (their validator requires one: \"250\", \"ddim50\", \"\" for the full chain), found {shown}; quote it")
        );
    }
    let section = USERS.replace(
        "  initialization:",
        "  schedule:\n    x: 1\n  initialization:",
    );
    assert_eq!(
        parse(&section).unwrap_err(),
        "c.yaml: model.schedule: not a section of the user's diffusion_pretrained config (model.architecture, model.pretrained, model.diffusion, model.conditioning, model.initialization); diffusion-train does not implement it"
    );
}
