"""`promtool check metrics` (Debian's Prometheus) on every `/metrics` the project serves: the
collector's self-monitoring server, `stack serve`'s Loki, Mimir and Tempo, and `loadgen node` as
each device type. Any parse error or lint problem fails, quoting promtool's own words.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from conftest import HTTP_TIMEOUT_S, free_port, our_binary, tool, wait_http_ok


def promtool_problems(url: str) -> tuple[int, list[str]]:
    """promtool's exit code and its problem lines for the exposition at `url`."""
    promtool = tool("promtool", "apt-get install prometheus")
    r = requests.get(url, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"{url}: HTTP {r.status_code}"
    assert r.content.strip(), f"{url}: empty exposition"
    checked = subprocess.run([promtool, "check", "metrics"], input=r.content, capture_output=True, timeout=30)
    said = (checked.stdout + checked.stderr).decode(errors="replace")
    return checked.returncode, [line for line in said.splitlines() if line.strip()]


def promtool_check(url: str, allowed: frozenset[str] = frozenset()) -> None:
    """promtool accepts the exposition: exit 0, or (exit 3, lint only) every problem `allowed`."""
    code, problems = promtool_problems(url)
    left = [p for p in problems if p not in allowed]
    if code != 0 and (code != 3 or left):
        pytest.fail(f"promtool check metrics on {url} (exit {code}):\n" + "\n".join(left or problems), pytrace=False)


def feed(collector) -> None:
    """One pushed line through the collector, so its components' metrics have real values and
    the stack's Loki has ingested something."""
    body = {"streams": [{"stream": {"job": "promtool"}, "values": [[str(time.time_ns()), "hello"]]}]}
    r = requests.post(f"{collector.loki_push}/loki/api/v1/push", json=body, timeout=HTTP_TIMEOUT_S)
    assert r.status_code in (200, 204), r.text


def test_collector_metrics(collector):
    feed(collector)
    promtool_check(f"{collector.server}/metrics")


@pytest.mark.parametrize("api", ["loki", "mimir", "tempo"])
def test_stack_metrics(collector, stack, api):
    feed(collector)
    promtool_check(f"{getattr(stack, api)}/metrics")


@pytest.fixture
def node_exporter_lint(procs) -> frozenset[str]:
    """promtool's lint problems on Debian's real prometheus-node-exporter: `loadgen node` keeps
    node_exporter's own metric names (node_memory_MemTotal_bytes is camelCase there too), so the
    problems the real exporter draws are allowed, and only those."""
    node_exporter = tool("prometheus-node-exporter", "apt-get install prometheus-node-exporter")
    addr = f"127.0.0.1:{free_port()}"
    p = procs("node-exporter", [node_exporter, f"--web.listen-address={addr}", "--no-collector.systemd", "--log.level=warn"])
    wait_http_ok(f"http://{addr}/metrics", p)
    code, problems = promtool_problems(f"http://{addr}/metrics")
    assert code in (0, 3), f"promtool cannot parse the real node exporter (exit {code}): {problems}"
    return frozenset(problems)


@pytest.mark.parametrize("node_type", ["pos", "server", "router", "switch"])
def test_loadgen_node_metrics(procs, tmp_path, node_exporter_lint, node_type):
    addr = f"127.0.0.1:{free_port()}"
    env = {
        "NODE_TYPE": node_type, "DEVICE": f"{node_type}-001", "REGION": "eu-west", "LOCATION": "store-101",
        "BRAND": "brand1", "PROBLEM_MODE": "healthy",
    }
    p = procs(f"loadgen-node-{node_type}",
              [our_binary("loadgen"), "node", "--listen", addr, "--log-dir", str(tmp_path)], env=env)
    wait_http_ok(f"http://{addr}/metrics", p)
    promtool_check(f"http://{addr}/metrics", allowed=node_exporter_lint)
