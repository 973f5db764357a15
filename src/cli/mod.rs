//! One module per subcommand, each with its arguments and a `run` function.

pub mod balance;
pub mod cache;
pub mod check_images;
pub mod check_leaks;
pub mod sample;
pub mod split;
pub mod stats;
pub mod verify;

use std::path::PathBuf;

/// Exit code when images are not usable (`check-images`; `check-leaks` when nothing else
/// is wrong).
pub const BAD_IMAGES: u8 = 3;

/// Where a split's images are and what size training wants: shared by the image commands.
#[derive(clap::Args)]
pub struct ImageArgs {
    /// Directory the image paths are relative to (the user's project root).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// model.architecture.image_size: the side images are resized to.
    #[arg(long, default_value_t = 40)]
    pub image_size: u32,
}

/// A progress bar over images, only for a person watching a terminal; never in pipes or CI
/// logs.
pub fn image_progress() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
            .expect("valid template"),
    );
    b
}
