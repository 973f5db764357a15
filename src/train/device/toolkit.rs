//! Where the CUDA toolkit is, found as burn's CUDA backend (cubecl) finds it, for the
//! checks of [`super::cuda`]. Apart from them so it is built and tested without the
//! `cuda` feature, whose LLVM bundle needs a download at build time (see Cargo.toml).

use std::path::{Path, PathBuf};

/// The CUDA toolkit directory, found the way cubecl finds it (its `include` directory is
/// passed to NVRTC): `CUDA_PATH`, else `/usr/local/cuda`, `/opt/cuda`, or `/usr` when
/// `/usr/bin/nvcc` exists. `exists` is the file system, a parameter for the tests.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub fn toolkit_dir(
    cuda_path: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    if let Some(dir) = cuda_path {
        let include = dir.join("include");
        return match exists(&include) {
            true => Ok(dir.to_owned()),
            false => Err(format!(
                "CUDA_PATH is {} but {} does not exist; point CUDA_PATH at the CUDA toolkit",
                dir.display(),
                include.display()
            )),
        };
    }
    [
        ("/usr/local/cuda", "/usr/local/cuda"),
        ("/opt/cuda", "/opt/cuda"),
        ("/usr", "/usr/bin/nvcc"),
    ]
    .into_iter()
    .find(|(_, marker)| exists(Path::new(marker)))
    .map(|(dir, _)| PathBuf::from(dir))
    .ok_or_else(|| {
        "no CUDA toolkit found (CUDA_PATH is unset and there is no /usr/local/cuda, /opt/cuda or /usr/bin/nvcc), and NVRTC compiles the kernels against its headers; install the toolkit or set CUDA_PATH".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(paths: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p| paths.iter().any(|q| Path::new(q) == p)
    }

    #[test]
    fn the_toolkit_is_found_where_cubecl_looks() {
        let none: Option<&Path> = None;
        assert_eq!(
            toolkit_dir(none, only(&["/opt/cuda", "/usr/bin/nvcc"])),
            Ok(PathBuf::from("/opt/cuda"))
        );
        assert_eq!(
            toolkit_dir(none, only(&["/usr/bin/nvcc"])),
            Ok(PathBuf::from("/usr"))
        );
        assert_eq!(
            toolkit_dir(
                Some(Path::new("/x/cuda-12")),
                only(&["/x/cuda-12/include", "/usr/local/cuda"])
            ),
            Ok(PathBuf::from("/x/cuda-12")),
            "CUDA_PATH comes first"
        );
    }

    #[test]
    fn a_missing_toolkit_is_named() {
        assert_eq!(
            toolkit_dir(Some(Path::new("/nowhere")), only(&["/usr/local/cuda"])),
            Err("CUDA_PATH is /nowhere but /nowhere/include does not exist; point CUDA_PATH at the CUDA toolkit".into())
        );
        assert_eq!(
            toolkit_dir(None, only(&[])),
            Err("no CUDA toolkit found (CUDA_PATH is unset and there is no /usr/local/cuda, /opt/cuda or /usr/bin/nvcc), and NVRTC compiles the kernels against its headers; install the toolkit or set CUDA_PATH".into())
        );
    }
}
