//! Choosing the device: burn's CUDA backend (feature `cuda`), a wgpu adapter (Vulkan,
//! Metal, DX12) or burn's pure-Rust CPU backend (Flex). `auto` takes the first of these
//! that is a real GPU, in that order, and says in the log why it passed over the others.

#[cfg(feature = "cuda")]
pub mod cuda;

use std::sync::OnceLock;

use burn::prelude::*;
use burn::tensor::wgpu::wgpu;
use burn_backend::Backend as _;

use super::settings::DeviceChoice;

/// The device a run uses, and how to describe it in logs.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub device: Device,
    /// The backend, the adapter and the kernel compiler, for the log and `bench`.
    pub description: String,
    /// True for a real GPU (not a software rasteriser such as lavapipe).
    pub gpu: bool,
    /// True for burn's CPU backend (any wgpu adapter, lavapipe included, is not).
    pub cpu: bool,
}

/// Why the requested device cannot be used: one line naming the device and what is
/// missing. Bad setup of the machine, not a failure of ours, so exit 2.
#[derive(Debug, thiserror::Error)]
#[error("--device {choice}: {reason}")]
pub struct Unavailable {
    pub choice: &'static str,
    pub reason: String,
}

/// wgpu's runtime can be initialised once per process; every later request gets the
/// same answer.
static WGPU: OnceLock<Result<Chosen, String>> = OnceLock::new();

fn wgpu_device() -> Result<Chosen, String> {
    const HINT: &str =
        "install a Vulkan driver (Mesa's lavapipe works on any CPU) or use --device cpu";
    WGPU.get_or_init(|| {
        let (device, setup) = Device::wgpu_options()
            .init_with_setup()
            .map_err(|e| format!("no wgpu adapter is available ({e}); {HINT}"))?;
        let info = setup.adapter.get_info();
        let adapter = format!(
            "{:?} adapter \"{}\" ({:?}, driver {} {})",
            info.backend, info.name, info.device_type, info.driver, info.driver_info
        );
        // Without a Vulkan driver wgpu falls back to OpenGL, where cubecl's kernels
        // fail to compile (no subgroup operations) and the first step then waits
        // forever: measured with Mesa's llvmpipe.
        if info.backend == wgpu::Backend::Gl {
            return Err(format!(
                "wgpu found only an OpenGL adapter, {adapter}, on which burn's kernels do not compile; {HINT}"
            ));
        }
        let compiler = kernel_compiler(&burn_dispatch::Dispatch::name(device.as_dispatch()));
        Ok(Chosen {
            description: format!("wgpu {adapter}, {compiler} kernels"),
            device,
            gpu: info.device_type != wgpu::DeviceType::Cpu,
            cpu: false,
        })
    })
    .clone()
}

/// The kernel language in burn's name for a wgpu backend (`dispatch<cubecl<wgpu<spirv>>>`):
/// cubecl picks SPIR-V on a Vulkan adapter that has what its SPIR-V compiler needs and WGSL
/// elsewhere, and says which only there.
fn kernel_compiler(backend_name: &str) -> String {
    if backend_name.contains("wgpu<spirv>") {
        "SPIR-V".into()
    } else if backend_name.contains("wgpu<wgsl>") {
        "WGSL".into()
    } else if backend_name.contains("wgpu<msl>") {
        "MSL".into()
    } else {
        format!("{backend_name}'s")
    }
}

fn cpu() -> Chosen {
    Chosen {
        device: Device::flex(),
        description: "CPU (burn Flex backend)".into(),
        gpu: false,
        cpu: true,
    }
}

/// burn's CUDA backend on the first GPU, checked before first use.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Chosen, String> {
    cuda::device(0)
}

/// Without the `cuda` feature, `cuda` is the user's word for their NVIDIA GPU, which
/// wgpu reaches through Vulkan.
#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Chosen, String> {
    log::info!("--device cuda: this build has no CUDA backend (cargo feature `cuda`); using the GPU through wgpu");
    wgpu_device()
}

/// Waits for `device`'s queued work. A device failing mid-run is a failure of the run
/// (exit 1), named by `what` (the device's description, or the work under way).
pub fn sync(device: &Device, what: &str) -> Result<(), super::error::TrainError> {
    device
        .sync()
        .map_err(|e| super::error::TrainError::Device(format!("{what}: {e:?}")))
}

/// The device for `choice`.
pub fn choose(choice: DeviceChoice) -> Result<Chosen, Unavailable> {
    let unavailable = |choice| move |reason| Unavailable { choice, reason };
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Wgpu => wgpu_device().map_err(unavailable("wgpu")),
        DeviceChoice::Cuda => cuda_device().map_err(unavailable("cuda")),
        DeviceChoice::Auto => Ok(auto()),
    }
}

/// CUDA, then a wgpu GPU, then the CPU.
fn auto() -> Chosen {
    #[cfg(feature = "cuda")]
    match cuda_device() {
        Ok(c) => return c,
        Err(e) => log::info!("auto: not CUDA: {e}"),
    }
    match wgpu_device() {
        Ok(c) if c.gpu => c,
        Ok(c) => {
            log::info!("auto: {} is not a GPU; using the CPU", c.description);
            cpu()
        }
        Err(e) => {
            log::info!("auto: {e}; using the CPU");
            cpu()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_compiler;

    #[test]
    fn the_kernel_compiler_is_read_from_burns_backend_name() {
        assert_eq!(
            kernel_compiler("dispatch<fusion<cubecl<wgpu<spirv>>>>"),
            "SPIR-V"
        );
        assert_eq!(kernel_compiler("dispatch<cubecl<wgpu<wgsl>>>"), "WGSL");
        assert_eq!(kernel_compiler("dispatch<cubecl<wgpu<msl>>>"), "MSL");
        assert_eq!(
            kernel_compiler("dispatch<cubecl<wgpu>>"),
            "dispatch<cubecl<wgpu>>'s"
        );
    }
}
