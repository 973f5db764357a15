//! guided-diffusion's UNet and process (the user's `diffusion_pretrained` model) against
//! our PyTorch reference of them (tests/python/adm_reference.py, written from the published
//! definitions): the forward with tiny and with the real ImageNet-64 flags, each term of the
//! hybrid loss, the weighted loss and its gradient, one respaced sampling step, OpenAI's
//! file format, freezing, and export to the user's names.

#![cfg(feature = "train")]

mod util;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use balance_split::train::adm::hybrid;
use balance_split::train::adm::state_dict::{
    for_user, freeze, load_pretrained, load_state_dict, names, state_dict, trainable, HEADS,
};
use balance_split::train::adm::{AdmFlags, AdmUNet};
use balance_split::train::gaussian::{betas, respacing, AdmSchedule, Process};
use balance_split::train::torch_files;
use balance_split::train::unet::state_dict::{Named, Source};
use util::Dir;

const REFERENCE: &str = "tests/python/adm_reference.py";

fn reference(args: &[&str]) -> serde_json::Value {
    util::train::python_json(REFERENCE, args)
}

/// A safetensors file's tensors by name.
fn tensors(path: &std::path::Path) -> Box<dyn Source> {
    torch_files::open(path).unwrap().model
}

fn get(s: &dyn Source, name: &str) -> (Vec<f32>, Vec<usize>) {
    (s.values(name).unwrap(), s.shape(name).unwrap())
}

fn tensor<const D: usize>(s: &dyn Source, name: &str, device: &Device) -> Tensor<D> {
    let (v, shape) = get(s, name);
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The largest difference relative to the reference's largest magnitude.
fn relative(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
        / scale
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tolerance: f32) {
    let r = relative(ours, theirs);
    assert!(
        r <= tolerance,
        "{what}: relative difference {r:e} > {tolerance:e}"
    );
}

/// The reference's case (`x`, `t`, `y`) through `model`.
fn forward(model: &AdmUNet, case: &dyn Source, device: &Device) -> Vec<f32> {
    let y: Tensor<1> = tensor(case, "y", device);
    floats(model.forward(
        tensor(case, "x", device),
        tensor(case, "t", device),
        Some(y.int()),
    ))
}

/// The reference's random weights for `flags` loaded strictly into our model, and our
/// forward against theirs.
fn forward_parity(flags_name: &str, flags: &AdmFlags, rows: usize, batch: &str) {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    let made = reference(&["model", dir, "--flags", flags_name, "--batch", batch]);
    let device = Device::flex();
    let model = AdmUNet::new(flags, Some(rows), &device);
    assert_eq!(
        names(&model).len() as u64,
        made["tensors"].as_u64().unwrap()
    );
    let weights = torch_files::open_state_dict(&d.join("weights.pt")).unwrap();
    let model = load_state_dict(model, weights.as_ref()).unwrap();
    let count: usize = state_dict(&model).iter().map(|t| t.values.len()).sum();
    assert_eq!(count as u64, made["parameters"].as_u64().unwrap());
    let case = tensors(&d.join("case.safetensors"));
    let ours = forward(&model, case.as_ref(), &device);
    assert_close("forward", &ours, &get(case.as_ref(), "out").0, 1e-4);
}

#[test]
fn tiny_forward_matches_the_reference() {
    forward_parity("tiny", &AdmFlags::tiny(), 5, "4");
}

/// OpenAI's ImageNet-64 shapes (296M parameters, a 1.2 GB file): once, one input.
#[test]
fn imagenet64_forward_matches_the_reference() {
    forward_parity("imagenet64", &AdmFlags::imagenet64(), 1000, "1");
}

#[test]
fn hybrid_loss_gradient_and_a_respaced_step_match_the_reference() {
    let d = Dir::new();
    let made = reference(&["process", d.path().to_str().unwrap()]);
    let s = tensors(&d.join("process.safetensors"));
    let s = s.as_ref();
    let device = Device::flex().autodiff();
    let process = Process::new(betas(AdmSchedule::Cosine, 1000));
    let t: Vec<usize> = get(s, "t").0.iter().map(|&v| v as usize).collect();
    let x0: Tensor<4> = tensor(s, "x0", &device);
    let noise: Tensor<4> = tensor(s, "noise", &device);
    let out: Tensor<4> = tensor::<4>(s, "out", &device).require_grad();
    let x_t = hybrid::q_sample(&process, x0.clone(), noise.clone(), &t);
    let terms = hybrid::terms(&process, x0, x_t.clone(), noise, &t, out.clone());
    assert_close("mse", &floats(terms.mse.clone()), &get(s, "mse").0, 1e-5);
    assert_close("vb", &floats(terms.vb.clone()), &get(s, "vb").0, 1e-5);
    assert_close("loss", &floats(terms.loss()), &get(s, "loss").0, 1e-5);
    let weights: Tensor<1> = tensor(s, "weights", &device);
    let weighted = (terms.loss() * weights).mean();
    assert_close(
        "weighted",
        &floats(weighted.clone()),
        &get(s, "weighted").0,
        1e-5,
    );
    let grads = weighted.backward();
    let grad = out.grad(&grads).expect("the output's gradient");
    assert_close("gradient", &floats(grad), &get(s, "grad").0, 1e-4);

    let kept = respacing(1000, "250").unwrap();
    assert_eq!(kept[100] as u64, made["kept_100"].as_u64().unwrap());
    for (spec, theirs) in made["respacings"].as_object().unwrap() {
        let theirs: Vec<usize> = serde_json::from_value(theirs.clone()).unwrap();
        assert_eq!(respacing(1000, spec).unwrap(), theirs, "{spec}");
    }
    let spaced = Process::respaced(&betas(AdmSchedule::Cosine, 1000), &kept);
    let device = Device::flex();
    let x_t = Tensor::<4>::from_data(x_t.into_data(), &device);
    let out: Tensor<4> = tensor(s, "out", &device);
    let step_noise: Tensor<4> = tensor(s, "step_noise", &device);
    let sample = hybrid::p_sample(
        &spaced,
        x_t.clone(),
        100,
        out.clone(),
        step_noise.clone(),
        true,
    );
    assert_close("sample", &floats(sample), &get(s, "sample").0, 1e-5);
    let last = hybrid::p_sample(&spaced, x_t, 0, out, step_noise, true);
    assert_close("last step", &floats(last), &get(s, "sample_at_0").0, 1e-5);
}

/// OpenAI's format (a plain state dict with 5 label rows standing in for their 1000) into
/// the user's model of 2 classes: the backbone loaded, the label head the model's own;
/// with the backbone frozen a step moves the heads only, and export gives the reference
/// our weights and our forward.
#[test]
fn pretrained_file_loads_freezes_trains_the_heads_and_exports() {
    let d = Dir::new();
    let dir = d.path().to_str().unwrap();
    reference(&["model", dir, "--flags", "tiny", "--batch", "2"]);
    let file = torch_files::open_state_dict(&d.join("weights.pt")).unwrap();
    let device = Device::flex().autodiff();
    let fresh = AdmUNet::new(&AdmFlags::tiny(), Some(3), &device);
    let head_before = state_dict(&fresh)[4].clone();
    assert_eq!(head_before.name, "label_emb.weight");
    let (model, loaded) = load_pretrained(fresh, file.as_ref()).unwrap();
    assert_eq!((loaded.missing.len(), loaded.unexpected), (0, 0));
    assert_eq!(loaded.matched, names(&model).len() - 1);
    for t in state_dict(&model) {
        if t.name == "label_emb.weight" {
            assert_eq!(t, head_before);
        } else {
            assert_eq!(t.values, file.values(&t.name).unwrap(), "{}", t.name);
        }
    }

    let all = names(&model);
    let heads: Vec<String> = HEADS.iter().map(|s| s.to_string()).collect();
    let train = trainable(&all, &heads).unwrap();
    let mut expected: Vec<&str> = train.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(
        expected,
        [
            "label_emb.weight",
            "out.0.bias",
            "out.0.weight",
            "out.2.bias",
            "out.2.weight"
        ]
    );
    let model = freeze(model, &train);
    let before = state_dict(&model);
    let model = one_step(model, &device);
    let after = state_dict(&model);
    for (b, a) in before.iter().zip(&after) {
        if train.contains(&b.name) {
            assert_ne!(b.values, a.values, "{} did not move", b.name);
        } else {
            assert_eq!(b.values, a.values, "{} moved although frozen", b.name);
        }
    }

    // Export: the user's names, strictly into the reference, and our forward there.
    let cpu = Device::flex();
    let model = AdmUNet::new(&AdmFlags::tiny(), Some(3), &cpu);
    let model = load_state_dict(model, &after).unwrap();
    let x = Tensor::<4>::random(
        [2, 3, 40, 40],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &cpu,
    );
    let (t, y) = ([999.0f32, 3.0], [2i64, 0]);
    let ours = model.forward(
        x.clone(),
        Tensor::from_floats(t, &cpu),
        Some(Tensor::from_ints(y, &cpu)),
    );
    let named = |name: &str, shape: &[usize], values: Vec<f32>| Named {
        name: name.into(),
        shape: shape.to_vec(),
        values,
    };
    let case = vec![
        named("x", &[2, 3, 40, 40], floats(x)),
        named("t", &[2], t.to_vec()),
        named("y", &[2], vec![2.0, 0.0]),
        named("out", &ours.dims(), floats(ours.clone())),
    ];
    let case_path = d.join("ours.safetensors");
    torch_files::write_safetensors(&case_path, &case, Default::default()).unwrap();
    let weights = d.join("export.safetensors");
    torch_files::write_safetensors(&weights, &for_user(&model), Default::default()).unwrap();
    let checked = reference(&[
        "check-export",
        weights.to_str().unwrap(),
        case_path.to_str().unwrap(),
        "--flags",
        "tiny",
        "--rows",
        "3",
    ]);
    let (diff, scale) = (
        checked["max_abs_diff"].as_f64().unwrap(),
        checked["scale"].as_f64().unwrap(),
    );
    assert!(diff <= 1e-4 * scale, "{checked}");
}

/// One Adam step of the weighted hybrid loss on a batch of 2.
fn one_step(model: AdmUNet, device: &Device) -> AdmUNet {
    let process = Process::new(betas(AdmSchedule::Cosine, 1000));
    let t = [0usize, 500];
    let x0 = Tensor::<4>::random(
        [2, 3, 40, 40],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        device,
    );
    let noise = Tensor::<4>::random(
        [2, 3, 40, 40],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    let x_t = hybrid::q_sample(&process, x0.clone(), noise.clone(), &t);
    let out = model.forward(
        x_t.clone(),
        Tensor::from_floats([0.0, 500.0], device),
        Some(Tensor::from_ints([0, 2], device)),
    );
    let loss = hybrid::terms(&process, x0, x_t, noise, &t, out)
        .loss()
        .mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    assert_eq!(grads.len(), 5, "gradients for the five head tensors only");
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    optim.step(1e-3, model, grads)
}
