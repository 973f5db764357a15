//! See balance_split::fuzzing::prep_config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| balance_split::fuzzing::prep_config(data));
