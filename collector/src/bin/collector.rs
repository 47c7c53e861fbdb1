//! `collector check|run --config F` (the command line lands with the config module).
fn main() {}
