//! burn's CUDA backend, checked before its first use. cubecl's CUDA runtime `unwrap`s
//! every driver call and `expect`s a toolkit directory, so on a machine without the
//! driver, NVRTC or the toolkit the first tensor would panic. Each is looked for here
//! first, in the order cubecl needs them, and the first one missing is named.

use std::ffi::c_int;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use cudarc::driver::result as driver;
use cudarc::driver::sys::CUdevice_attribute;

use super::toolkit::toolkit_dir;
use super::Chosen;

/// Whether NVIDIA's driver library can be loaded here (what the first check after the
/// toolkit's needs).
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the shared library, by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// CUDA device `index`, or the first thing missing for it.
pub fn device(index: usize) -> Result<Chosen, String> {
    let env = std::env::var_os("CUDA_PATH").map(PathBuf::from);
    let toolkit = toolkit_dir(env.as_deref(), Path::exists)?;
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
    // SAFETY: as for the driver, only opens the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(format!(
            "NVRTC (libnvrtc.so), which compiles the kernels, was not found; install the CUDA toolkit's NVRTC or add {}/lib64 to LD_LIBRARY_PATH",
            toolkit.display()
        ));
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
            "CUDA device {index} \"{name}\" (compute capability {major}.{minor}), kernels compiled by NVRTC with {}",
            toolkit.display()
        ),
        gpu: true,
        cpu: false,
    })
}

/// One tiny kernel, run and read back: cubecl starts its runtime (context, memory pools,
/// the first NVRTC compile) lazily and panics on what the checks above cannot see (a
/// driver too old for the PTX it emits), so that happens here, caught and named,
/// instead of mid-run.
fn first_use(device: &Device) -> Result<(), String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ran = std::panic::catch_unwind(|| {
        Tensor::<1>::from_floats([1.0, 2.0], device)
            .sum()
            .into_scalar::<f32>()
    });
    std::panic::set_hook(hook);
    match ran {
        Ok(3.0) => Ok(()),
        Ok(v) => Err(format!("the CUDA backend computed 1 + 2 = {v}")),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(format!("the CUDA backend failed to start: {}", why.trim()))
        }
    }
}
