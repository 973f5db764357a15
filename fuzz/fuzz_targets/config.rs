//! See balance_split::fuzzing::config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| balance_split::fuzzing::config(data));
