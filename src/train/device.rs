//! Choosing the device: a wgpu adapter (Vulkan, Metal, DX12; the user's `cuda` is the
//! NVIDIA GPU through Vulkan) or burn's pure-Rust CPU backend (Flex).

use std::sync::OnceLock;

use burn::prelude::*;
use burn::tensor::wgpu::wgpu;

use super::settings::DeviceChoice;

/// The device a run uses, and how to describe it in logs.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub device: Device,
    pub description: String,
    /// True for a real GPU (not a software rasteriser such as lavapipe).
    pub gpu: bool,
    /// True for burn's CPU backend (any wgpu adapter, lavapipe included, is not).
    pub cpu: bool,
}

/// wgpu's runtime can be initialised once per process; every later request gets the
/// same answer.
static WGPU: OnceLock<Result<Chosen, String>> = OnceLock::new();

fn wgpu_device() -> Result<Chosen, String> {
    WGPU.get_or_init(|| {
        Device::wgpu_options()
            .init_with_setup()
            .map(|(device, setup)| {
                let info = setup.adapter.get_info();
                Chosen {
                    device,
                    description: format!(
                        "wgpu {:?} adapter \"{}\" ({:?}, driver {} {})",
                        info.backend, info.name, info.device_type, info.driver, info.driver_info
                    ),
                    gpu: info.device_type != wgpu::DeviceType::Cpu,
                    cpu: false,
                }
            })
            .map_err(|e| e.to_string())
    })
    .clone()
}

fn cpu() -> Chosen {
    Chosen {
        device: Device::flex(),
        description: "CPU (burn Flex backend)".into(),
        gpu: false,
        cpu: true,
    }
}

/// Why the requested device cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--device wgpu: no wgpu adapter is available ({0}); install a Vulkan driver (Mesa's lavapipe works on any CPU) or use --device cpu")]
pub struct NoAdapter(pub String);

/// The device for `choice`; `auto` takes a wgpu GPU when one exists, else the CPU.
pub fn choose(choice: DeviceChoice) -> Result<Chosen, NoAdapter> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Wgpu => wgpu_device().map_err(NoAdapter),
        DeviceChoice::Auto => Ok(match wgpu_device() {
            Ok(c) if c.gpu => c,
            Ok(c) => {
                log::info!("auto: {} is not a GPU; using the CPU", c.description);
                cpu()
            }
            Err(e) => {
                log::info!("auto: no wgpu adapter ({e}); using the CPU");
                cpu()
            }
        }),
    }
}
