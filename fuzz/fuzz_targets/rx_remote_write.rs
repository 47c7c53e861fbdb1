//! `rx_remote_write`: see `fuzz::receivers::remote_write` (fuzz/src) for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::receivers::remote_write(data));
