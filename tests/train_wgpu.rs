//! The trainer on wgpu: in CI that is Mesa's lavapipe (Vulkan on the CPU). The same
//! model gives the same predictions as on the CPU backend, and training steps run and
//! lower the loss on a repeated batch.
//!
//! Without a wgpu adapter this test cannot check anything. With
//! `DIFFUSION_TRAIN_REQUIRE_WGPU=1` (set by `scripts/test`, which CI runs) that is a
//! failure; without it the test says loudly that it checked nothing.

#![cfg(feature = "train")]

mod util;

use burn::module::Module;
use burn::prelude::*;

use balance_split::train::data::TrainData;
use balance_split::train::device;
use balance_split::train::family::Process;
use balance_split::train::feed::{DeviceBatch, Feed};
use balance_split::train::settings::{DeviceChoice, TrainSettings};
use balance_split::train::state::fresh;
use balance_split::train::step::{step_inputs, train_step};
use balance_split::train::unet::UNet;

fn wgpu_or_skip() -> Option<device::Chosen> {
    match device::choose(DeviceChoice::Wgpu) {
        Ok(c) => {
            eprintln!("wgpu test on {}", c.description);
            Some(c)
        }
        Err(e) => {
            if std::env::var_os("DIFFUSION_TRAIN_REQUIRE_WGPU").is_some() {
                panic!("DIFFUSION_TRAIN_REQUIRE_WGPU is set but {e}");
            }
            eprintln!("SKIPPED (checked nothing): {e}; set DIFFUSION_TRAIN_REQUIRE_WGPU=1 to make this a failure");
            None
        }
    }
}

fn tiny() -> TrainSettings {
    TrainSettings::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/examples/tiny.yaml"),
    )
    .unwrap()
}

#[test]
fn wgpu_matches_the_cpu_and_trains() {
    // cubecl tunes each kernel shape by compiling and timing its candidates, which on
    // lavapipe (LLVM on the CPU) is most of this test's time and varies with the picks.
    // The minimal level anchors shapes coarsely, so fewer shapes are tuned (215 tunings
    // where the default made 294); the kernels are the same family a user's run picks
    // from, which is what this test proves correct. Set before cubecl reads its config,
    // once, in this test's own process (nextest runs each test in one).
    if std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_none() {
        // SAFETY: no other thread of this process exists yet.
        unsafe { std::env::set_var("CUBECL_AUTOTUNE_LEVEL", "minimal") };
    }
    let Some(gpu) = wgpu_or_skip() else { return };
    // On Vulkan (lavapipe in CI) the kernels are cubecl's SPIR-V, the path a Linux GPU
    // takes, not the WGSL that burn falls back to elsewhere.
    if gpu.description.starts_with("wgpu Vulkan adapter") {
        assert!(
            gpu.description.ends_with(", SPIR-V kernels"),
            "{}",
            gpu.description
        );
    }
    let s = tiny();
    let cpu = Device::flex();
    cpu.seed(3);
    let model = UNet::new(&s.architecture, Some(2), &cpu).valid();
    // Predicted through the autodiff device the training below uses, so the forward
    // kernels compiled here are the ones its steps run (each compile costs seconds on
    // lavapipe).
    let device = gpu.device.clone().autodiff();
    let on_gpu = model.clone().to_device(&device);
    let x: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| ((i as f32) * 0.37).sin())
        .collect();
    let predict = |m: &UNet, d: &Device| {
        m.forward(
            Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 3, 16, 16]), d),
            Tensor::<1>::from_floats([5.0, 77.0], d),
            Some(Tensor::<1, Int>::from_ints([0, 2], d)),
        )
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
    };
    let (a, b) = (predict(&model, &cpu), predict(&on_gpu, &device));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-3, "wgpu and CPU predictions differ by {diff}");

    // Training steps on one repeated batch: the loss of that batch must fall.
    let mut state = fresh(&s, 0, &device);
    let process = Process::of(&s);
    let batch = || DeviceBatch {
        x0: Tensor::<4>::from_data(
            TensorData::new(
                x.iter().map(|v| v * 0.5).collect::<Vec<f32>>(),
                [2, 3, 16, 16],
            ),
            &device,
        ),
        labels: vec![0, 1],
    };
    let mut losses = Vec::new();
    for _ in 0..12 {
        // The same draws every step (step 0's), so only the weights change.
        let inputs = step_inputs(batch(), &s, &process, Some(&[1.0, 2.0]), 0, 0, &device);
        let (objective, _) = train_step(&mut state, &process, inputs, 2e-3, Some(1.0), &device);
        losses.push(objective.into_scalar::<f32>());
    }
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[11] < 0.8 * losses[0], "{losses:?}");

    resident_feed_matches_the_host_pipeline(&s, &gpu.device);
}

/// On the GPU, the resident feed's batches (gathered, flipped and rotated there) are the
/// host pipeline's, value for value, and four training steps on each give the same losses.
fn resident_feed_matches_the_host_pipeline(s: &TrainSettings, gpu: &Device) {
    let d = util::Dir::tiny_project();
    let mut s = s.clone();
    s.pipeline.augmentation.rotation_degrees = 15.0;
    // The first part's batch of 2, so every kernel shape here was tuned there: autotuning on
    // lavapipe (compiling and timing each candidate kernel) is most of this test's time,
    // and a second batch size would tune every convolution again. Two batches are enough
    // to gather, flip and rotate through the resident feed.
    s.pipeline.batch_size = 2;
    let data = TrainData::load(
        &d.join("splits/example/train_val_split.balanced.json"),
        d.path(),
        &s,
    )
    .unwrap();
    let cfg = s.pipeline.loader(data.data_seed, true);
    let order = data.epoch_order(0, true).unwrap();
    let (host, _, _) = Feed::new(&data.train, cfg.clone(), 0, gpu).unwrap();
    let (resident, _, _) = Feed::new(&data.train, cfg, u64::MAX, gpu).unwrap();
    assert!(!host.is_resident() && resident.is_resident());
    let (h, r) = (
        util::train::batches(&host, &order, 0, 3),
        util::train::batches(&resident, &order, 0, 3),
    );
    assert_eq!((h.len(), r.len()), (3, 3));
    assert!(h == r, "resident and host batches differ");
    let device = gpu.clone().autodiff();
    let process = Process::of(&s);
    let losses = |feed: &Feed| {
        let mut state = fresh(&s, 0, &device);
        feed.epoch(order.clone(), 0)
            .take(4)
            .enumerate()
            .map(|(k, b)| {
                let inputs = step_inputs(
                    b.unwrap(),
                    &s,
                    &process,
                    Some(&[1.0, 9.0]),
                    0,
                    k as u64,
                    &device,
                );
                train_step(&mut state, &process, inputs, 2e-3, Some(1.0), &device)
                    .0
                    .into_scalar::<f32>()
            })
            .collect::<Vec<f32>>()
    };
    let (on_host, on_device) = (losses(&host), losses(&resident));
    assert_eq!((on_host.len(), on_device.len()), (4, 4));
    for (a, b) in on_host.iter().zip(&on_device) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "{on_host:?} vs {on_device:?}"
        );
    }
}
