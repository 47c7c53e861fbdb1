//! `loki_push`: see `fuzz::checks::loki_push` (fuzz/src) for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::checks::loki_push(data));
