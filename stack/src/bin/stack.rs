//! `stack serve` (stub).
fn main() {}
