//! Sampling and averaging on burn's CPU backend: the ancestral sampler recovers the data
//! when given the exact noise predictor, classifier-free guidance mixes the two passes as
//! the formula says (scale 0 meaning no guidance, as in the user's sampler), and the EMA
//! follows its update rule.

#![cfg(feature = "train")]

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use balance_split::train::ema::Ema;
use balance_split::train::generate::{abs_quantile, guided_eps, sample_with, threshold, Request};
use balance_split::train::schedule::NoiseSchedule;
use balance_split::train::settings::{Architecture, BetaSchedule, Diffusion, Threshold};
use balance_split::train::unet::UNet;

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn the_exact_noise_predictor_samples_the_data_point() {
    // Data = one fixed image c. Its exact noise predictor is
    // eps(x_t, t) = (x_t - sqrt(a_t) c) / sqrt(1 - a_t); ancestral sampling must end at c.
    let device = Device::flex();
    let thresholds = [Threshold::Clip, Threshold::Dynamic { percentile: 0.995 }];
    for (kind, threshold) in [BetaSchedule::Cosine, BetaSchedule::Linear]
        .into_iter()
        .flat_map(|k| thresholds.map(|t| (k, t)))
    {
        let schedule = NoiseSchedule::new(&Diffusion {
            num_timesteps: 200,
            beta_schedule: kind,
            beta_start: 1e-4,
            beta_end: 0.02,
        });
        let c: Vec<f32> = (0..2 * 3 * 4 * 4)
            .map(|i| ((i as f32) * 0.7).sin() * 0.9)
            .collect();
        let ct = Tensor::<4>::from_data(TensorData::new(c.clone(), [2, 3, 4, 4]), &device);
        let req = Request {
            labels: &[0, 1],
            num_classes: 2,
            guidance_scale: 1.0,
            threshold,
            channels: 3,
            size: 4,
            seed: 9,
            batch: 0,
            snapshots: &[199, 0],
        };
        let (out, snaps) = sample_with(
            |x, t| {
                let (a, b) = schedule.forward_coefficients(t);
                (x - ct.clone().mul_scalar(a)).div_scalar(b)
            },
            &schedule,
            &req,
            &device,
        );
        assert!(
            max_diff(&out, &c) < 1e-3,
            "{kind:?} {threshold:?}: {}",
            max_diff(&out, &c)
        );
        assert_eq!(snaps.iter().map(|s| s.0).collect::<Vec<_>>(), [199, 0]);
        // At t = 199 the sample is still the starting noise, far from the data.
        assert!(max_diff(&snaps[0].1, &c) > 1.0);
    }
}

#[test]
fn sampling_is_deterministic_for_a_seed() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(&Diffusion {
        num_timesteps: 10,
        beta_schedule: BetaSchedule::Linear,
        beta_start: 1e-4,
        beta_end: 0.02,
    });
    let run = |seed| {
        let req = Request {
            labels: &[0],
            num_classes: 1,
            guidance_scale: 1.0,
            threshold: Threshold::Dynamic { percentile: 0.995 },
            channels: 1,
            size: 2,
            seed,
            batch: 0,
            snapshots: &[],
        };
        sample_with(|x, _| x.mul_scalar(0.5), &schedule, &req, &device).0
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn guidance_scale_zero_is_no_guidance_and_other_scales_mix_the_two_passes() {
    let device = Device::flex();
    device.seed(5);
    let arch = Architecture {
        image_size: 8,
        in_channels: 3,
        model_channels: 8,
        channel_multipliers: vec![1, 2],
        use_attention: vec![false, true],
    };
    let model = UNet::new(&arch, Some(2), &device).valid();
    let x = Tensor::<4>::random(
        [3, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels = [0u32, 1, 1];
    let t = 17;
    let pass = |y: [i64; 3]| {
        values(model.forward(
            x.clone(),
            Tensor::<1>::full([3], t as f32, &device),
            Some(Tensor::<1, Int>::from_ints(y, &device)),
        ))
    };
    let cond = pass([0, 1, 1]);
    let uncond = pass([2, 2, 2]);
    assert!(max_diff(&cond, &uncond) > 1e-3, "the label matters");
    let g = |s| values(guided_eps(&model, x.clone(), t, Some(&labels), 2, s));
    // 0 is the user's "no guidance": the conditional pass alone, as is 1.
    assert_eq!(g(0.0), cond);
    assert_eq!(g(1.0), cond);
    // Any other scale runs both in one batch and mixes them.
    let mixed: Vec<f32> = uncond
        .iter()
        .zip(&cond)
        .map(|(u, c)| u + 2.5 * (c - u))
        .collect();
    assert!(
        max_diff(&g(2.5), &mixed) < 1e-4,
        "{}",
        max_diff(&g(2.5), &mixed)
    );
}

#[test]
fn ema_follows_its_update_rule() {
    let device = Device::flex();
    let mut model: Linear = LinearConfig::new(2, 1).init(&device);
    let set = |m: Linear, w: [f32; 2], b: f32| Linear {
        weight: Param::initialized(
            m.weight.id,
            Tensor::<1>::from_floats(w, &device).reshape([2, 1]),
        ),
        bias: Some(Param::initialized(
            m.bias.unwrap().id,
            Tensor::<1>::from_floats([b], &device),
        )),
    };
    model = set(model, [1.0, 2.0], 3.0);
    let mut ema = Ema::new(&model, 0.9);
    model = set(model, [11.0, 2.0], -7.0);
    ema.update(&model);
    // 0.9 * old + 0.1 * new
    let weight = |m: &Linear| m.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let bias = |m: &Linear| {
        m.bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let w = weight(&ema.model);
    assert!(max_diff(&w, &[2.0, 2.0]) < 1e-6, "{w:?}");
    let b = bias(&ema.model);
    assert!(max_diff(&b, &[2.0]) < 1e-6, "{b:?}");
    ema.update(&model);
    let w = weight(&ema.model);
    assert!(max_diff(&w, &[2.9, 2.0]) < 1e-5, "{w:?}");
    assert_eq!(ema.model.num_params(), model.num_params());
}

fn t4(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn the_quantile_interpolates_linearly_between_order_statistics_per_sample() {
    // |x| sorted: [1, 2, 3, 4] and [0, 0, 5, 10]; rank q (n - 1).
    let x = t4(
        vec![-3.0, 1.0, 2.0, -4.0, 0.0, 10.0, -5.0, 0.0],
        [2, 1, 2, 2],
    );
    assert_eq!(floats(abs_quantile(x.clone(), 0.5)), [2.5, 2.5]);
    assert_eq!(floats(abs_quantile(x.clone(), 1.0)), [4.0, 10.0]);
    assert_eq!(floats(abs_quantile(x.clone(), 0.0)), [1.0, 0.0]);
    // rank 0.9 * 3 = 2.7: 3 + 0.7 (4 - 3), 5 + 0.7 (10 - 5).
    let q = floats(abs_quantile(x, 0.9));
    assert!(
        (q[0] - 3.7).abs() < 1e-6 && (q[1] - 8.5).abs() < 1e-6,
        "{q:?}"
    );
}

#[test]
fn dynamic_thresholding_rescales_a_sample_beyond_one_and_leaves_others_alone() {
    // Sample 0 within [-1, 1]: s = 1, unchanged. Sample 1: |x| up to 4, q = 1 gives s = 4:
    // divided by 4. A percentile below the maximum clips the largest value to s first.
    let x = t4(
        vec![0.5, -1.0, 0.25, 0.0, 2.0, -4.0, 1.0, 0.0],
        [2, 1, 2, 2],
    );
    let dynamic = |p| floats(threshold(x.clone(), Threshold::Dynamic { percentile: p }));
    assert_eq!(dynamic(1.0), [0.5, -1.0, 0.25, 0.0, 0.5, -1.0, 0.25, 0.0]);
    // q = 2/3: rank 2 of sorted [0, 1, 2, 4] is 2: s = 2; -4 clipped to -2, then / 2.
    let out = dynamic(2.0 / 3.0);
    let want = [0.5, -1.0, 0.25, 0.0, 1.0, -1.0, 0.5, 0.0];
    assert!(
        out.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
        "{out:?}"
    );
    let clipped = floats(threshold(x, Threshold::Clip));
    assert_eq!(clipped, [0.5, -1.0, 0.25, 0.0, 1.0, -1.0, 1.0, 0.0]);
}
