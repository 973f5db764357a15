use burn::prelude::*;

use super::*;
use crate::train::settings::{Architecture, BetaSchedule, Diffusion};

fn arch(ch: usize, mult: &[usize], attn: &[bool]) -> Architecture {
    Architecture {
        image_size: 40,
        in_channels: 3,
        model_channels: ch,
        channel_multipliers: mult.to_vec(),
        use_attention: attn.to_vec(),
    }
}

fn default_schedule() -> NoiseSchedule {
    NoiseSchedule::new(&Diffusion {
        num_timesteps: 1000,
        beta_schedule: BetaSchedule::Linear,
        beta_start: 1e-4,
        beta_end: 0.02,
    })
}

fn tiny(seed: u64) -> UNet {
    let device = Device::flex();
    device.seed(seed);
    UNet::new(&arch(8, &[1, 2], &[false, true]), Some(2), &device)
}

/// The user's `state_dict` of the default config, as they listed it: every name and
/// shape, in their order, buffers first.
#[test]
fn the_default_model_has_exactly_the_users_names_and_shapes_in_their_order() {
    let tsv = include_str!("../../../../tests/fixtures/torch/user-unet-state-dict.tsv");
    let theirs: Vec<(String, Vec<usize>)> = tsv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split('\t');
            let name = f.next().unwrap().to_owned();
            let shape = f.next().unwrap();
            let shape = shape
                .trim_matches(|c| c == '(' || c == ')')
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().unwrap())
                .collect();
            assert_eq!(f.next(), Some("torch.float32"));
            (name, shape)
        })
        .collect();
    assert_eq!(theirs.len(), 228);
    let device = Device::flex();
    let model = UNet::new(
        &arch(64, &[1, 2, 4], &[false, false, true]),
        Some(2),
        &device,
    );
    let ours: Vec<(String, Vec<usize>)> = buffers(&default_schedule())
        .into_iter()
        .chain(state_dict(&model))
        .map(|n| (n.name, n.shape))
        .collect();
    pretty_assertions::assert_eq!(ours, theirs);
    let params: usize = state_dict(&model).iter().map(|n| n.values.len()).sum();
    assert_eq!(params, 12_817_859);
}

#[test]
fn a_state_dict_loaded_into_another_model_gives_back_the_same_weights_bit_for_bit() {
    let a = state_dict(&tiny(1));
    let b = tiny(2);
    assert_ne!(state_dict(&b), a);
    let loaded = load_state_dict(b, &a).unwrap();
    let back = state_dict(&loaded);
    assert_eq!(back.len(), a.len());
    for (x, y) in back.iter().zip(&a) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.shape, y.shape);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x.values), bits(&y.values), "{}", x.name);
    }
}

#[test]
fn a_linear_weight_is_transposed_into_pytorchs_out_by_in_layout() {
    let model = tiny(3);
    let sd = state_dict(&model);
    let w = sd
        .iter()
        .find(|n| n.name == "model.time_mlp.1.weight")
        .unwrap();
    // The user's time embedding: 256 -> 1024, whatever model_channels is (8 here).
    assert_eq!(w.shape, vec![1024, 256]);
    let burn_w = model
        .time_in
        .weight
        .val()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    // PyTorch [o][i] is burn [i][o].
    for (o, i) in [(0, 0), (5, 7), (1023, 255)] {
        assert_eq!(w.values[o * 256 + i], burn_w[i * 1024 + o]);
    }
}

#[test]
fn loading_refuses_a_wrong_shape_a_missing_name_and_an_unexpected_one() {
    let good = state_dict(&tiny(1));

    let mut wrong = good.clone();
    let conv = wrong
        .iter_mut()
        .find(|n| n.name == "model.downs.0.resblocks.0.conv1.weight")
        .unwrap();
    conv.shape = vec![4, 8, 3, 3];
    conv.values.truncate(4 * 8 * 9);
    assert_eq!(
        load_state_dict(tiny(2), &wrong).unwrap_err().to_string(),
        "model.downs.0.resblocks.0.conv1.weight: expected shape [8, 8, 3, 3] for the configured model, found [4, 8, 3, 3]"
    );

    let missing: Vec<Named> = good
        .iter()
        .filter(|n| n.name != "model.class_emb.weight")
        .cloned()
        .collect();
    assert_eq!(
        load_state_dict(tiny(2), &missing).unwrap_err().to_string(),
        "model.class_emb.weight: missing (the configured model has it; expected shape [3, 256])"
    );

    let mut extra = good.clone();
    extra.extend(buffers(&default_schedule()));
    extra.push(Named {
        name: "model.downs.9.attention.qkv.weight".into(),
        shape: vec![1],
        values: vec![0.0],
    });
    assert_eq!(
        load_state_dict(tiny(2), &extra).unwrap_err().to_string(),
        "model.downs.9.attention.qkv.weight: not a parameter of the configured model (their DDPMModel would refuse it too, with strict=True)"
    );
    // The buffers alone are accepted.
    extra.pop();
    load_state_dict(tiny(2), &extra).unwrap();
}

#[test]
fn the_buffers_follow_their_formulas() {
    let b = buffers(&default_schedule());
    let get = |name: &str| &b.iter().find(|n| n.name == name).unwrap().values;
    assert_eq!(get("betas")[0], 1e-4f32);
    assert_eq!(get("betas")[999], 0.02f32);
    assert_eq!(get("alphas_cumprod_prev")[0], 1.0);
    assert_eq!(get("alphas_cumprod_prev")[1], get("alphas_cumprod")[0]);
    // t = 0: the posterior has no variance, so its log is clamped at 1e-20.
    assert_eq!(get("posterior_variance")[0], 0.0);
    assert_eq!(
        get("posterior_log_variance_clipped")[0],
        (1e-20f64).ln() as f32
    );
    assert_eq!(get("posterior_mean_coef1")[0], 1.0);
    assert_eq!(get("posterior_mean_coef2")[0], 0.0);
}

#[test]
fn a_files_schedule_buffers_must_be_the_configs() {
    let cosine = buffers(&NoiseSchedule::new(&Diffusion {
        num_timesteps: 1000,
        beta_schedule: BetaSchedule::Cosine,
        beta_start: 1e-4,
        beta_end: 0.02,
    }));
    let linear = buffers(&default_schedule());
    check_buffers(&cosine, &cosine).unwrap();
    check_buffers(&Vec::<Named>::new(), &cosine).unwrap();
    assert_eq!(
        check_buffers(&linear, &cosine).unwrap_err().to_string(),
        "betas: the file's noise schedule is not the one model.diffusion gives (largest difference 9.80e-1 of the buffer's scale); set model.diffusion as the file was trained"
    );
    let short = buffers(&NoiseSchedule::new(&Diffusion {
        num_timesteps: 100,
        beta_schedule: BetaSchedule::Cosine,
        beta_start: 1e-4,
        beta_end: 0.02,
    }));
    assert_eq!(
        check_buffers(&short, &cosine).unwrap_err().to_string(),
        "betas: expected shape [1000] for the configured model, found [100]"
    );
}
