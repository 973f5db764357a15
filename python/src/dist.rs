//! Which rank this process is: given, or torch.distributed's when a process group is
//! initialised (as `DistributedSampler` defaults), else a single process. torch is never
//! imported here: a process group can only exist if the program imported it already.

use pyo3::prelude::*;
use pyo3::types::PyDict;

pub fn rank_and_size(
    py: Python<'_>,
    rank: Option<usize>,
    world_size: Option<usize>,
) -> PyResult<(usize, usize)> {
    if let (Some(r), Some(w)) = (rank, world_size) {
        return Ok((r, w));
    }
    let modules = py.import("sys")?.getattr("modules")?;
    let modules = modules.cast::<PyDict>()?;
    if let Some(d) = modules.get_item("torch.distributed")? {
        let on = |f: &str| -> PyResult<bool> { d.call_method0(f)?.is_truthy() };
        if on("is_available")? && on("is_initialized")? {
            let r = match rank {
                Some(r) => r,
                None => d.call_method0("get_rank")?.extract()?,
            };
            let w = match world_size {
                Some(w) => w,
                None => d.call_method0("get_world_size")?.extract()?,
            };
            return Ok((r, w));
        }
    }
    Ok((rank.unwrap_or(0), world_size.unwrap_or(1)))
}
