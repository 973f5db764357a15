//! One module per subcommand, each with its arguments and a `run` function.

pub mod balance;
pub mod cache;
pub mod check_images;
pub mod sample;
pub mod stats;
pub mod verify;
