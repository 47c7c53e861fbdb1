#!/usr/bin/env bash
# CI test job: the README's test command with the local servers required, plus the compose
# file check. Cucumber's JUnit report lands in target/cucumber/junit.xml (uploaded by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v prometheus >/dev/null || ! command -v prometheus-node-exporter >/dev/null; then
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-node-exporter
fi
export REQUIRE_LOCAL_SERVERS=1
bash ci/compose-check.sh
cargo test --workspace
