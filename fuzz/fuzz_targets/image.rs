//! See balance_split::fuzzing::image.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| balance_split::fuzzing::image(data));
