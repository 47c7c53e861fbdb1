#!/usr/bin/env bash
# The interop suite: real third-party clients (OpenTelemetry Python SDK, Debian's prometheus and
# node exporter, python-logging-loki, winston-loki, promtool) against our own binaries, asserted
# through the stack's public query APIs. Called by .ci/run; runnable on its own:
#
#   bash ci/interop/run.sh [pytest args...]      e.g. -k traces, -x
#
# Builds the binaries it drives (debug), installs the pinned Python packages into
# target/interop-venv and the pinned npm packages into target/interop-node (each reinstalled
# only when its pin file changes), then runs pytest. Exit status: pytest's (0 only if every
# test passed; no tests collected is a failure too).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=ci/interop
target_dir="${CARGO_TARGET_DIR:-target}"

echo "interop: building stack, collector and loadgen (debug)"
cargo build -q -p stack -p collector -p loadgen --bins

venv=target/interop-venv
if ! cmp -s "$here/requirements.txt" "$venv/.installed-requirements.txt" 2>/dev/null; then
  echo "interop: creating $venv from $here/requirements.txt"
  start=$(date +%s)
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.installed-requirements.txt"
  echo "interop: venv installed in $(( $(date +%s) - start )) s"
fi

node_dir=target/interop-node
if command -v npm >/dev/null 2>&1; then
  if ! cmp -s "$here/node/package-lock.json" "$node_dir/package-lock.json" 2>/dev/null; then
    echo "interop: installing $here/node/package-lock.json into $node_dir"
    start=$(date +%s)
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$here/node/package.json" "$here/node/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "interop: node packages installed in $(( $(date +%s) - start )) s"
  fi
else
  echo "interop: npm not found: the winston-loki tests will skip (or fail under REQUIRE_LOCAL_SERVERS)"
fi

export INTEROP_BIN_DIR="$target_dir/debug"
export INTEROP_NODE_DIR="$PWD/$node_dir"
case "$INTEROP_BIN_DIR" in /*) ;; *) INTEROP_BIN_DIR="$PWD/$INTEROP_BIN_DIR" ;; esac
exec "$venv/bin/python" -m pytest "$here" -c "$here/pytest.ini" --rootdir "$here" "$@"
