//! `balance-split`: argument parsing and printing only; every decision is in the library.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    ExitCode::from(cli::main(std::env::args_os()))
}
