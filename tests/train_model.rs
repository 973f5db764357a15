//! The trainer's model, loss and optimizer on burn's CPU backend (Flex): shapes, parameter
//! counts against the PyTorch reference, the class-weighted loss, gradient flow, clipping
//! and learning on the embedded example.

#![cfg(feature = "train")]

mod util;

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use balance_split::train::loss::{per_sample_mse, sample_weights, weighted_mse};
use balance_split::train::optim::{clip_global_norm, global_norm};
use balance_split::train::settings::{Architecture, TrainSettings};
use balance_split::train::unet::UNet;

fn cpu() -> Device {
    Device::flex().autodiff()
}

fn arch(size: usize, ch: usize, mult: &[usize], attn: &[bool]) -> Architecture {
    Architecture {
        image_size: size,
        in_channels: 3,
        model_channels: ch,
        channel_multipliers: mult.to_vec(),
        use_attention: attn.to_vec(),
    }
}

fn tensor4(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>() as f64
}

#[test]
fn unet_keeps_the_input_shape_for_every_layout() {
    let device = Device::flex();
    let cases = [
        (32, &[1, 2][..], &[false, false][..]),
        (32, &[1, 2, 4][..], &[false, false, true][..]),
        (40, &[1, 2][..], &[true, true][..]),
        (40, &[1, 2, 4][..], &[false, true, true][..]),
        // 10 -> 5 -> 3: odd sizes need the decoder to resize to its skip.
        (10, &[1, 1, 1][..], &[false, false, false][..]),
    ];
    for (size, mult, attn) in cases {
        let a = arch(size, 8, mult, attn);
        let model = UNet::new(&a, Some(2), &device);
        let x = Tensor::<4>::zeros([2, 3, size, size], &device);
        let t = Tensor::<1>::from_floats([0.0, 999.0], &device);
        let y = Tensor::<1, Int>::from_ints([0, 2], &device);
        let out = model.forward(x, t, Some(y));
        assert_eq!(out.dims(), [2, 3, size, size], "{size} {mult:?} {attn:?}");
    }
}

#[test]
fn matrix_bilinear_equals_burns_interpolate() {
    use balance_split::train::unet::bilinear;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    let device = Device::flex();
    for (h, w, oh, ow) in [(5, 5, 10, 10), (10, 20, 20, 40), (3, 4, 5, 7), (4, 4, 4, 4)] {
        let v: Vec<f32> = (0..2 * 3 * h * w)
            .map(|i| ((i as f32) * 0.31).sin())
            .collect();
        let x = tensor4(v, [2, 3, h, w], &device);
        let mut o = InterpolateOptions::new(InterpolateMode::Bilinear);
        o.align_corners = true;
        o.output_size = Some([oh, ow]);
        let a = interpolate(x.clone(), o)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b = bilinear(x, [oh, ow])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let diff = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{h}x{w} -> {oh}x{ow}: {diff}");
    }
    // Corners are kept exactly (align_corners).
    let x = tensor4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], &device);
    let up = bilinear(x, [3, 3]).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(up, [1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
}

fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    let (a, b) = (a.into_data(), b.into_data());
    let (a, b) = (
        a.try_to_vec::<f32>().unwrap(),
        b.try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max)
}

#[test]
fn pointwise_product_equals_the_1x1_convolution_and_its_gradients() {
    use balance_split::train::unet::pointwise;
    use burn::nn::conv::Conv2dConfig;
    let device = cpu();
    device.seed(11);
    let conv = Conv2dConfig::new([6, 10], [1, 1]).init(&device);
    let v: Vec<f32> = (0..3 * 6 * 5 * 4)
        .map(|i| ((i as f32) * 0.43).cos())
        .collect();
    let x = || tensor4(v.clone(), [3, 6, 5, 4], &device).require_grad();
    let (xa, xb) = (x(), x());
    let (ya, yb) = (conv.forward(xa.clone()), pointwise(&conv, xb.clone()));
    assert_eq!(yb.dims(), [3, 10, 5, 4]);
    assert!(max_diff(ya.clone(), yb.clone()) < 1e-5);
    // A loss that weights every output differently, so every gradient entry counts.
    let w = Tensor::<4>::random([3, 10, 5, 4], burn::tensor::Distribution::Default, &device);
    let (ga, gb) = ((ya * w.clone()).sum().backward(), (yb * w).sum().backward());
    assert!(max_diff(xa.grad(&ga).unwrap(), xb.grad(&gb).unwrap()) < 1e-5);
    let weight = conv.weight.val();
    assert!(max_diff(weight.grad(&ga).unwrap(), weight.grad(&gb).unwrap()) < 1e-4);
    let bias = conv.bias.as_ref().unwrap().val();
    let (ba, bb) = (bias.grad(&ga).unwrap(), bias.grad(&gb).unwrap());
    assert!(max_diff(ba.reshape([1, 1, 1, 10]), bb.reshape([1, 1, 1, 10])) < 1e-4);
}

#[test]
fn a_recorded_forward_names_every_layer_call_by_kind() {
    use balance_split::train::profile;
    let device = cpu();
    let model = UNet::new(&arch(8, 8, &[1, 2], &[false, true]), Some(2), &device);
    let forward = || {
        model.forward(
            Tensor::<4>::zeros([2, 3, 8, 8], &device),
            Tensor::<1>::from_floats([1.0, 2.0], &device),
            Some(Tensor::<1, Int>::from_ints([0, 2], &device)),
        )
    };
    let (out, calls) = profile::record(forward);
    assert_eq!(out.dims(), [2, 3, 8, 8]);
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for c in &calls {
        match kinds.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((c.kind, 1)),
        }
    }
    // Ten residual blocks (2 per stage down and up, 2 in the middle), each with two 3x3
    // convolutions, two group norms, four SiLUs (time, class, two on the feature map), two
    // linear layers and a dropout; 1x1 shortcuts where the width changes (8 -> 16 down,
    // 32 -> 16 and 24 -> 8 up) and in the three attention blocks (qkv and projection);
    // the time MLP's two linear layers and SiLU, the head's norm and SiLU, conv in and out,
    // one strided and one upsampling convolution, one bilinear upsample.
    assert_eq!(
        kinds,
        [
            ("linear", 22),
            ("SiLU", 42),
            ("conv 3x3", 23),
            ("group norm", 24),
            ("dropout", 10),
            ("conv 3x3 stride 2", 1),
            ("conv 1x1", 9),
            ("attention (QK^T, softmax, AV)", 3),
            ("bilinear upsample", 1),
        ]
    );
    // Every call runs alone, forward and backward.
    let times = profile::by_kind(&calls, &device, 1).unwrap();
    assert_eq!(times.len(), kinds.len());
    let counted: Vec<(&str, usize)> = times.iter().map(|t| (t.kind, t.calls)).collect();
    assert_eq!(
        counted, kinds,
        "by_kind counts the calls of each kind in first-seen order"
    );
    assert!(times
        .iter()
        .all(|t| t.forward_ms >= 0.0 && t.backward_ms >= 0.0));
    // Recording stops with `record`: a forward outside it leaves nothing behind.
    forward();
    assert_eq!(profile::record(|| ()).1.len(), 0);
}

#[test]
fn parameter_counts_match_the_pytorch_reference() {
    // Counted by tests/python/torch_reference.py's UNet (the user's, with its 256-wide time
    // embedding at every size): sum of p.numel().
    let device = Device::flex();
    let count = |a: &Architecture, k: Option<usize>| UNet::new(a, k, &device).num_params();
    assert_eq!(
        count(&arch(40, 64, &[1, 2, 4], &[false, false, true]), Some(2)),
        12_817_859,
        "the user's default config"
    );
    assert_eq!(
        count(&arch(16, 16, &[1, 2], &[false, true]), Some(2)),
        826_451
    );
    let mut gray = arch(32, 32, &[1, 2], &[true, true]);
    gray.in_channels = 1;
    assert_eq!(count(&gray, Some(3)), 1_464_993);
    // The arithmetic count the config reader bounds models with is the built model's.
    for (a, k) in [
        (arch(40, 64, &[1, 2, 4], &[false, false, true]), Some(2)),
        (arch(16, 16, &[1, 2], &[false, true]), Some(2)),
        (gray, Some(3)),
        (
            arch(32, 24, &[1, 2, 3, 4], &[true, false, true, false]),
            None,
        ),
    ] {
        assert_eq!(a.parameters(k), count(&a, k) as u128, "{a:?}");
    }
}

#[test]
fn weighted_loss_with_equal_weights_is_plain_mse() {
    let device = cpu();
    let p: Vec<f32> = (0..2 * 3 * 4 * 4)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let t: Vec<f32> = (0..2 * 3 * 4 * 4)
        .map(|i| (i as f32 * 0.11).cos())
        .collect();
    let expect = p
        .iter()
        .zip(&t)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / p.len() as f64;
    let per = per_sample_mse(
        tensor4(p.clone(), [2, 3, 4, 4], &device),
        tensor4(t.clone(), [2, 3, 4, 4], &device),
    );
    let plain = scalar(weighted_mse(per.clone(), None));
    assert!((plain - expect).abs() < 1e-6, "{plain} vs {expect}");
    let ones = sample_weights(&[1.0, 1.0], &[0, 1], &device);
    assert!((scalar(weighted_mse(per, Some(ones))) - expect).abs() < 1e-6);
}

#[test]
fn doubling_a_class_weight_adds_its_share() {
    let device = cpu();
    // Sample 0 (class 0) is off by 1 everywhere, sample 1 (class 1) by 2: per-sample MSEs 1 and 4.
    let pred = tensor4([vec![1.0; 4], vec![2.0; 4]].concat(), [2, 1, 2, 2], &device);
    let target = Tensor::<4>::zeros([2, 1, 2, 2], &device);
    let per = per_sample_mse(pred, target);
    assert_eq!(per.to_data().try_to_vec::<f32>().unwrap(), [1.0, 4.0]);
    let loss = |w: &[f64]| {
        scalar(weighted_mse(
            per.clone(),
            Some(sample_weights(w, &[0, 1], &device)),
        ))
    };
    assert_eq!(loss(&[1.0, 1.0]), 2.5);
    // Doubling class 1's weight adds w * mse_1 / B = 4 / 2.
    assert_eq!(loss(&[1.0, 2.0]), 4.5);
    assert_eq!(loss(&[2.0, 1.0]), 3.0);
    // The weight follows the true label, whatever the conditioning label was.
    let swapped = scalar(weighted_mse(
        per.clone(),
        Some(sample_weights(&[1.0, 2.0], &[1, 0], &device)),
    ));
    assert_eq!(swapped, (2.0 * 1.0 + 4.0) / 2.0);
}

/// Records, for every parameter, whether its gradient is present and not all zero.
struct GradCheck<'a> {
    grads: &'a GradientsParams,
    missing: usize,
    zero: usize,
    total: usize,
}

impl ModuleVisitor for GradCheck<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.total += 1;
        match self.grads.get::<D>(param.id) {
            None => self.missing += 1,
            Some(g) => {
                if g.abs().sum().into_scalar::<f32>() == 0.0 {
                    self.zero += 1;
                }
            }
        }
    }
}

#[test]
fn gradients_reach_every_parameter() {
    let device = cpu();
    device.seed(1);
    let model = UNet::new(&arch(8, 8, &[1, 2], &[false, true]), Some(2), &device);
    let x = Tensor::<4>::random(
        [4, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let noise = Tensor::<4>::random(
        [4, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let t = Tensor::<1>::from_floats([1.0, 50.0, 300.0, 999.0], &device);
    // Both classes and the unconditional row are used, so every embedding row learns.
    let y = Tensor::<1, Int>::from_ints([0, 1, 2, 1], &device);
    let per = per_sample_mse(model.forward(x, t, Some(y)), noise);
    let loss = weighted_mse(
        per,
        Some(sample_weights(&[1.0, 9.0], &[0, 1, 0, 1], &device)),
    );
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut check = GradCheck {
        grads: &grads,
        missing: 0,
        zero: 0,
        total: 0,
    };
    model.visit(&mut check);
    assert!(check.total > 50, "{}", check.total);
    assert_eq!(
        (check.missing, check.zero),
        (0, 0),
        "of {} parameters",
        check.total
    );
}

#[test]
fn global_clipping_matches_clip_grad_norm() {
    let device = cpu();
    device.seed(2);
    let model = UNet::new(&arch(8, 8, &[1, 2], &[false, false]), None, &device);
    let x = Tensor::<4>::random(
        [2, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let t = Tensor::<1>::from_floats([3.0, 7.0], &device);
    let loss = per_sample_mse(model.forward(x.clone(), t, None), x.mul_scalar(5.0)).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let before = scalar(global_norm(&model, &grads).unwrap());
    assert!(before > 0.5, "{before}");
    let clipped = clip_global_norm(&model, grads, 0.5);
    let after = scalar(global_norm(&model, &clipped).unwrap());
    // torch: scaled by max_norm / (norm + 1e-6).
    assert!(
        (after - 0.5 * before / (before + 1e-6)).abs() < 1e-4,
        "{after}"
    );
    // A bound above the norm leaves gradients as they are.
    let unclipped = clip_global_norm(&model, clipped, 10.0);
    assert!((scalar(global_norm(&model, &unclipped).unwrap()) - after).abs() < 1e-5);
}

#[test]
fn training_on_the_example_lowers_the_validation_loss() {
    use balance_split::train::data::TrainData;
    use balance_split::train::feed::Feed;
    use balance_split::train::state::fresh;
    use balance_split::train::step::validate;
    use balance_split::train::trainer::{RunOptions, Trainer};
    let d = util::Dir::tiny_project();
    let mut s = TrainSettings::load(&d.join("tiny.yaml")).unwrap();
    s.training.visualization.enabled = false;
    s.output = s.output.rebased(&d.join("out"));
    let data = TrainData::load(
        &d.join("splits/example/train_val_split.balanced.json"),
        d.path(),
        &s,
    )
    .unwrap();
    let device = cpu();
    let val = data.val.as_ref().expect("the example has validation data");
    let val_cfg = s.pipeline.loader(data.data_seed, false);
    let (val, _, _) = Feed::new(val, val_cfg, u64::MAX, &device).unwrap();
    assert!(val.is_resident());
    let state = fresh(&s, 0, &device);
    let process = balance_split::train::family::Process::of(&s);
    let loss = |m: &balance_split::train::family::Net| {
        validate(&m.valid(), &val, &process, 0, 2, &device).unwrap()
    };
    let (before, _) = loss(&state.model);
    let t = Trainer {
        settings: &s,
        data: &data,
        device: device.clone(),
        seed: 0,
        options: RunOptions {
            epochs: Some(2),
            ..RunOptions::default()
        },
    };
    let (state, summary) = t.run(state).unwrap();
    assert_eq!(summary.steps, 26, "2 epochs of 200 images in batches of 16");
    let (after, per_class) = loss(&state.model);
    assert!(after < 0.8 * before, "validation MSE {before} -> {after}");
    assert!(
        per_class.iter().all(|v| v.is_some_and(f64::is_finite)),
        "{per_class:?}"
    );
}

#[test]
fn the_tiny_example_config_loads_and_fits_the_example_split() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = TrainSettings::load(&root.join("configs/examples/tiny.yaml")).unwrap();
    assert_eq!(s.conditioning.as_ref().unwrap().num_classes, 2);
    assert!(s.architecture.image_size <= 40);
}
