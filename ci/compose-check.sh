#!/usr/bin/env bash
# Validates docker-compose.yaml with a real compose parser (every profile enabled), without a
# Docker engine: `docker compose` (v2) where there is one, else Debian's `docker-compose` (1.29).
# steps/tests/it/compose.rs checks the rest (files exist, images pinned, node variables).
set -euo pipefail
cd "$(dirname "$0")/.."
profiles=(--profile core --profile nodes --profile template --profile load)
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "compose-check: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi
"${compose[@]}" -f docker-compose.yaml "${profiles[@]}" config -q
services=$("${compose[@]}" -f docker-compose.yaml "${profiles[@]}" config --services | sort | tr '\n' ' ')
echo "compose-check: ${compose[*]}: docker-compose.yaml is valid: $services"
