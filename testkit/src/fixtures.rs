//! Test data files, kept under `testkit/fixtures/` so that the product crates hold only product
//! code. Each file says in its folder where it came from.

use std::path::PathBuf;

/// The path of `testkit/fixtures/<name>`, e.g. `otlp/trace.json`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")).join(name)
}

/// The bytes of `testkit/fixtures/<name>`; panics (failing the test) with the path when missing.
pub fn read(name: &str) -> Vec<u8> {
    let path = path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
