#!/usr/bin/env bash
# CI capacity job: 5000 emulated devices for 2 minutes through the collector into the embedded
# stack; fails on any loss. target/capacity/report.html and results.json are the artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -p loadgen -- --devices "${CAPACITY_DEVICES:-5000}" --duration "${CAPACITY_DURATION:-2m}" \
  --out target/capacity --slo loss=0
