//! See balance_split::fuzzing::split.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| balance_split::fuzzing::split(data));
