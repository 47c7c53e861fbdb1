#!/usr/bin/env bash
# CI e2e job: the scenarios against grafana/loki, mimir, tempo and grafana in containers
# (testcontainers; needs a Docker engine, as GitHub's ubuntu runners have). Pulls the pinned
# images first so image download time does not count against the containers' startup timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
docker info >/dev/null
grep -hoE 'grafana/(loki|mimir|tempo|grafana):[0-9][0-9.]*' docker-compose.yaml | sort -u |
  while read -r image; do docker pull -q "$image"; done
cargo test -p steps --features e2e
