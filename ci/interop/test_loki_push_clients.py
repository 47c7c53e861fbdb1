"""Loki push clients from the registries, into the collector's `loki_push` receiver (and on to the
stack's Loki) and straight into the stack's Loki: PyPI's `python-logging-loki` (JSON, expects
Loki's 204) and npm's `winston-loki` (protobuf+snappy, and JSON with structured metadata).
Lines and labels are read back with `query_range`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import logging_loki
import pytest

from conftest import NODE_DIR, REPO, eventually, missing, now_ns, tool


def push_base(request, path: str, stack) -> str:
    return request.getfixturevalue("collector").loki_push if path == "collector" else stack.loki


def lines_by_text(streams: list[dict]) -> dict[str, dict]:
    return {v[1]: s["stream"] for s in streams for v in s["values"]}


@pytest.mark.parametrize("path", ["collector", "direct"])
def test_python_logging_loki_json(request, stack, path):
    start = now_ns() - 60 * 10**9
    handler = logging_loki.LokiHandler(
        url=f"{push_base(request, path, stack)}/loki/api/v1/push",
        tags={"app": "interop", "client": "python-logging-loki"},
        version="1",
    )
    errors: list[str] = []
    # The handler reports a failed push (any status but 204, a refused connection) through
    # logging's handleError; keep the reason instead of printing it.
    handler.handleError = lambda record: errors.append(repr(sys.exc_info()[1]))
    log = logging.getLogger(f"interop.pos.{path}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        log.error("disk almost full", extra={"tags": {"store": "store-7"}})
        log.info("restock done")
    finally:
        log.removeHandler(handler)
    assert not errors, f"python-logging-loki could not push: {errors}"

    streams = eventually(
        lambda: stack.loki_query_range('{client="python-logging-loki"}', start, now_ns() + 10**9),
        'both lines under {client="python-logging-loki"}',
        ok=lambda s: sum(len(x["values"]) for x in s) >= 2,
    )
    lines = lines_by_text(streams)
    assert set(lines) == {"disk almost full", "restock done"}, lines
    # Loki 3 adds service_name (discovered from `app`) and detected_level (from `severity`) on
    # push; query results show structured metadata merged into the labels.
    assert lines["disk almost full"] == {
        "app": "interop", "client": "python-logging-loki", "severity": "error",
        "logger": f"interop.pos.{path}", "store": "store-7",
        "service_name": "interop", "detected_level": "error",
    }
    assert lines["restock done"]["severity"] == "info"
    assert lines["restock done"]["detected_level"] == "info"


def winston_push(host: str, mode: str, labels: dict, lines: list[str]) -> dict:
    node = tool("node", "apt-get install nodejs npm, then ci/interop/run.sh installs winston-loki")
    if not (NODE_DIR / "node_modules" / "winston-loki").is_dir():
        missing(f"winston-loki in {NODE_DIR}", "ci/interop/run.sh installs it with npm ci")
    proc = subprocess.run(
        [node, str(REPO / "ci" / "interop" / "node" / "winston_push.js"), host, mode, json.dumps(labels), *lines],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")},
    )
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(f"winston-loki script failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    assert proc.returncode == 0 and not report["errors"], f"winston-loki ({mode}) could not push: {report}\n{proc.stderr}"
    return report


@pytest.mark.parametrize("path", ["collector", "direct"])
@pytest.mark.parametrize("mode", ["PROTOBUF", "JSON"])
def test_winston_loki(request, stack, path, mode):
    start = now_ns() - 60 * 10**9
    client = f"winston-loki-{mode.lower()}"
    report = winston_push(push_base(request, path, stack), mode, {"app": "interop", "client": client},
                          ["card reader reset", "receipt printed"])
    # winston-loki falls back to JSON silently when its snappy binding is missing: make sure the
    # protobuf case really sent protobuf.
    want_type = "application/x-protobuf" if mode == "PROTOBUF" else "application/json"
    assert report["contentType"] == want_type, report

    streams = eventually(
        lambda: stack.loki_query_range(f'{{client="{client}"}}', start, now_ns() + 10**9),
        f'both lines under {{client="{client}"}}',
        ok=lambda s: sum(len(x["values"]) for x in s) >= 2,
    )
    # winston-loki's line: the message, then the remaining metadata as JSON.
    lines = lines_by_text(streams)
    first, second = 'card reader reset {"seq":"0","level":"info"}', 'receipt printed {"seq":"1","level":"info"}'
    assert set(lines) == {first, second}, lines
    labels = lines[first]
    want = {"app": "interop", "client": client, "level": "info",
            # Loki 3's discovery on push: service_name from `app`, detected_level from `level`.
            "service_name": "interop", "detected_level": "info"}
    if mode == "JSON":
        # JSON pushes carry the metadata as structured metadata too, returned merged into labels.
        want["seq"] = "0"
    assert labels == want
