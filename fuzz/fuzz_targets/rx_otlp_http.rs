//! `rx_otlp_http`: see `fuzz::receivers::otlp_http` (fuzz/src) for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::receivers::otlp_http(data));
