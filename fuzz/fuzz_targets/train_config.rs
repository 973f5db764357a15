//! See balance_split::fuzzing::train_config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| balance_split::fuzzing::train_config(data));
