#!/usr/bin/env bash
# CI fuzz job: every cargo-fuzz target in fuzz/ (the wire decoders and the collector's receivers,
# see fuzz/README.md) for a bounded time, their corpora seeded fresh from the project's own
# encoders (loadgen's fleet payloads, `cargo run -p loadgen --example fuzz_seed`). Fails on any
# crash, hang or oversized allocation, printing the input's path and how to reproduce it.
# Needs a nightly toolchain (cargo-fuzz uses libFuzzer's -Z flags): without one, it says so and
# skips.
#
#   FUZZ_SECONDS      seconds per target (default 30)
#   FUZZ_JOBS         targets run at once (default 2: this machine's cores)
#   FUZZ_TARGET_DIR   the fuzz build's target dir (default: a cache kept outside the clone, so a
#                     fresh CI clone does not rebuild the instrumented dependencies every run)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-2}
fuzz_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/observability-fuzz-target}
# Only the fuzz build uses it; the seeding reuses the workspace's own target dir.
fuzz() { CARGO_TARGET_DIR="$fuzz_dir" cargo +nightly fuzz "$@"; }
start=$SECONDS

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain list): fuzzing skipped."
  echo "      To fuzz: rustup toolchain install nightly; see fuzz/README.md."
  exit 0
fi
if ! fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  if ! CARGO_TARGET_DIR="$fuzz_dir/cargo-fuzz-install" \
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet; then
    echo "fuzz: cargo-fuzz could not be installed: fuzzing skipped."
    exit 0
  fi
fi
fuzz --version

# `-s none`: no AddressSanitizer. The project forbids unsafe code, and ASan's instrumented
# dependency tree takes several times longer to build and run; libFuzzer still catches panics,
# hangs (-timeout), and allocations over -malloc_limit_mb.
echo "fuzz: building the targets (cargo +nightly fuzz build, target dir $fuzz_dir)"
fuzz build -s none
echo "fuzz: built in $((SECONDS - start)) s"

echo "fuzz: seeding the corpora from the project's encoders"
if ! cargo run -q -p loadgen --features fuzz-seed --example fuzz_seed -- fuzz/corpus; then
  echo "fuzz: WARNING: the seed writer failed; fuzzing from the corpora as they are"
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_one() {
  local t=$1 log="$logs/$1.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  if fuzz run -s none "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    local execs
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    echo "fuzz: $t: ok, $execs inputs in ${SECONDS_PER_TARGET} s"
  else
    echo "fuzz: $t: FAILED"
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -5 || true
    local f
    for f in "fuzz/artifacts/$t"/*; do
      [ -e "$f" ] || continue
      echo "fuzz: $t: failing input: $f"
      echo "fuzz: reproduce with: cargo +nightly fuzz run -s none $t $f"
    done
    echo "fuzz: $t: the log's end:"
    tail -25 "$log"
    return 1
  fi
}
export -f run_one fuzz
export logs SECONDS_PER_TARGET fuzz_dir

status=0
fuzz list | xargs -P "$JOBS" -I{} bash -c 'run_one {}' || status=1
echo "fuzz: the whole section took $((SECONDS - start)) s"
if [ "$status" != 0 ]; then
  echo "fuzz: some target failed: see above"
  exit 1
fi
