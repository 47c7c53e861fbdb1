//! `exposition`: see `fuzz::checks::exposition` (fuzz/src) for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::checks::exposition(data));
