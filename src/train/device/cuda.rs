//! burn's CUDA backend, checked before its first use. cubecl's CUDA runtime `unwrap`s
//! its driver calls, so on a machine without NVIDIA's driver, or without a GPU, the first
//! tensor would panic. The driver library, the driver and a device are looked for here
//! first, and the first one missing is named.
//!
//! cubecl compiles the kernels in-process, through its own LLVM to PTX (cubecl-cuda's
//! default backend; its NVRTC one is behind a feature nothing here enables), so neither
//! the CUDA toolkit nor NVRTC is needed at run time.

use std::ffi::c_int;
use std::sync::{Arc, Mutex};

use burn::prelude::*;
use cudarc::driver::result as driver;
use cudarc::driver::sys::CUdevice_attribute;

use super::Chosen;

/// Whether NVIDIA's driver library can be loaded here.
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the shared library, by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// CUDA device `index`, or the first thing missing for it.
pub fn device(index: usize) -> Result<Chosen, String> {
    if !driver_present() {
        return Err("the CUDA driver library (libcuda.so) was not found; install NVIDIA's driver, or use --device wgpu or --device cpu".into());
    }
    driver::init().map_err(|e| {
        format!("the CUDA driver did not start (cuInit: {e}); is an NVIDIA GPU present and its kernel module loaded?")
    })?;
    let count = driver::device::get_count().map_err(|e| format!("cuDeviceGetCount: {e}"))?;
    if index >= count.max(0) as usize {
        return Err(format!("no CUDA device {index}: the driver sees {count}"));
    }
    let describe = |e: driver::DriverError| format!("CUDA device {index}: {e}");
    let dev = driver::device::get(index as c_int).map_err(describe)?;
    let name = driver::device::get_name(dev).map_err(describe)?;
    let attribute = |a| {
        // SAFETY: `dev` is a device handle the driver just gave us.
        unsafe { driver::device::get_attribute(dev, a) }.map_err(describe)
    };
    let major = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
    let minor = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    let device = Device::cuda(index);
    first_use(&device)?;
    Ok(Chosen {
        device,
        description: format!(
            "CUDA device {index} \"{name}\" (compute capability {major}.{minor}), kernels compiled by cubecl's LLVM to PTX"
        ),
        gpu: true,
        cpu: false,
    })
}

/// One tiny kernel, run and read back: cubecl starts its runtime (context, memory pools,
/// the first kernel compile) lazily and panics on what the checks above cannot see (a
/// driver too old for the PTX it emits), so that happens here, caught and named, instead
/// of mid-run. The runtime runs on a thread of its own, whose panic is the one that says
/// why; ours only learns that the runtime is gone. So the hook keeps the first message
/// from any thread, and the default hook, which would print them, is off meanwhile.
fn first_use(device: &Device) -> Result<(), String> {
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let keep = first.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let mut first = keep.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            *first = Some(message.trim().to_owned());
        }
    }));
    let ran = std::panic::catch_unwind(|| {
        Tensor::<1>::from_floats([1.0, 2.0], device)
            .sum()
            .into_scalar::<f32>()
    });
    std::panic::set_hook(hook);
    let why = first.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (ran, why) {
        (Ok(3.0), None) => Ok(()),
        (Ok(v), None) => Err(format!("the CUDA backend computed 1 + 2 = {v}")),
        (_, Some(why)) => Err(format!("the CUDA backend failed to start: {why}")),
        (Err(_), None) => Err("the CUDA backend failed to start".into()),
    }
}
