#!/usr/bin/env bash
# CI lint job: formatting and clippy (warnings are errors), with and without the e2e feature.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p steps --features e2e --all-targets -- -D warnings
