//! `rx_loki_push`: see `fuzz::receivers::loki_push` (fuzz/src) for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::receivers::loki_push(data));
