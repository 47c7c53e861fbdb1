#!/usr/bin/env bash
# A store node: runs the device's exporter (`loadgen node`) and the collector node agent side by
# side. SIGTERM/SIGINT stop both; if either exits, the other is stopped and the container exits
# with the first one's status, so `docker compose ps` shows a dead node as dead.
#
# Identity (labels on every series and stream):
#   NODE_TYPE     server | pos | router | switch | custom   (default pos)
#   DEVICE_TYPE   defaults to NODE_TYPE
#   DEVICE        defaults to <NODE_TYPE>-<container hostname>
#   REGION, LOCATION, BRAND, PROBLEM_MODE (healthy | problem)
# Wiring:
#   NODE_LISTEN       exporter address (default 0.0.0.0:9300 here, so `-p 9500:9300` works)
#   LOG_DIR           where the device's log file goes (default /var/log/retail)
#   OTLP_URL          OTLP/HTTP endpoint for POS checkout traces (optional; compose: the gateway)
#   LOKI_URL, MIMIR_WRITE_URL   the stack (compose: http://loki:3100, http://mimir:9009/api/v1/push)
#   SEED              fleet seed for the device's signals (optional)
#   COLLECTOR_CONFIG  node agent config (default /etc/collector/node-agent.toml)
set -euo pipefail

export NODE_TYPE="${NODE_TYPE:-pos}"
export DEVICE_TYPE="${DEVICE_TYPE:-$NODE_TYPE}"
export DEVICE="${DEVICE:-$NODE_TYPE-$(hostname)}"
export REGION="${REGION:-region1}"
export LOCATION="${LOCATION:-store-1}"
export BRAND="${BRAND:-brand1}"
export PROBLEM_MODE="${PROBLEM_MODE:-healthy}"
export NODE_LISTEN="${NODE_LISTEN:-0.0.0.0:9300}"
export LOG_DIR="${LOG_DIR:-/var/log/retail}"
# The agent scrapes the exporter over loopback and tails the exporter's log files.
export EXPORTER_ADDRESS="${EXPORTER_ADDRESS:-127.0.0.1:${NODE_LISTEN##*:}}"
export LOG_PATH="${LOG_PATH:-$LOG_DIR/*.log}"
export COLLECTOR_LISTEN="${COLLECTOR_LISTEN:-0.0.0.0:12345}"
export COLLECTOR_DATA_DIR="${COLLECTOR_DATA_DIR:-/var/lib/collector/data}"
config="${COLLECTOR_CONFIG:-/etc/collector/node-agent.toml}"

mkdir -p "$LOG_DIR" "$COLLECTOR_DATA_DIR"
echo "node $DEVICE ($NODE_TYPE, $REGION/$LOCATION, $BRAND, $PROBLEM_MODE): exporter on $NODE_LISTEN, logs in $LOG_DIR"

# Refuse a bad config before starting anything, naming file, line and key.
collector check --config "$config"

node_args=(node --listen "$NODE_LISTEN" --log-dir "$LOG_DIR")
if [ -n "${OTLP_URL:-}" ]; then node_args+=(--otlp "$OTLP_URL"); fi
if [ -n "${SEED:-}" ]; then node_args+=(--seed "$SEED"); fi

pids=()
stop() {
  trap - TERM INT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT

loadgen "${node_args[@]}" &
pids+=($!)
collector run --config "$config" &
pids+=($!)

# Whichever exits first ends the node.
set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "a node process exited with status $status: stopping the node" >&2
stop
exit "$status"
