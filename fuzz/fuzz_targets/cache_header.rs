//! See balance_split::fuzzing::cache_header.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| balance_split::fuzzing::cache_header(data));
