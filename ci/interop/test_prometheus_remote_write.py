"""Debian's `prometheus` scraping Debian's `prometheus-node-exporter` every second and
remote-writing (its own remote write 1.0 client, metadata requests included) into the collector's
`remote_write` receiver and on to the stack, or straight into the stack's Mimir: at one instant,
the stack must answer exactly what Prometheus answers from its own TSDB, series for series and
value for value.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from conftest import eventually, free_port, prom_query, tool, wait_http_ok

HINT = "apt-get install prometheus prometheus-node-exporter"


def start_prometheus(procs, tmp_path: Path, write_url: str) -> tuple[str, str]:
    """node exporter + Prometheus (server mode, so its own view can be queried) on free ports;
    returns (Prometheus base URL, the node exporter's address)."""
    prometheus = tool("prometheus", HINT)
    node_exporter = tool("prometheus-node-exporter", HINT)
    ne_addr = f"127.0.0.1:{free_port()}"
    # systemd: no D-Bus in containers, its collector only logs errors.
    ne = procs("node-exporter", [node_exporter, f"--web.listen-address={ne_addr}", "--no-collector.systemd", "--log.level=warn"])
    wait_http_ok(f"http://{ne_addr}/metrics", ne)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{ne_addr}"]
remote_write:
  - url: {write_url}
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
""")
    prom_addr = f"127.0.0.1:{free_port()}"
    p = procs("prometheus", [
        prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address={prom_addr}", "--log.level=warn",
    ])
    wait_http_ok(f"http://{prom_addr}/-/ready", p)
    return f"http://{prom_addr}", ne_addr


def as_map(result: list[dict]) -> dict[tuple, float]:
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def newest_sample(matrix: list[dict]) -> float | None:
    """The newest sample time in a range-vector answer."""
    times = [float(ts) for series in matrix for ts, _ in series.get("values", [])]
    return max(times, default=None)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def differences(ours: dict, theirs: dict, limit: int = 15) -> list[str]:
    out = [f"missing in the stack: {dict(k)}" for k in theirs.keys() - ours.keys()]
    out += [f"only in the stack: {dict(k)}" for k in ours.keys() - theirs.keys()]
    out += [f"value of {dict(k)}: stack {ours[k]!r}, prometheus {theirs[k]!r}"
            for k in ours.keys() & theirs.keys() if not same(ours[k], theirs[k])]
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


@pytest.mark.parametrize("path", ["collector", "direct"])
def test_node_exporter_through_remote_write(request, procs, stack, tmp_path, path):
    if path == "collector":
        write_url = f"{request.getfixturevalue('collector').remote_write}/api/v1/write"
    else:
        write_url = f"{stack.mimir}/api/v1/write"
    prom, ne_addr = start_prometheus(procs, tmp_path, write_url)

    # Five scrapes in Prometheus, then an instant T just behind the newest one.
    eventually(
        lambda: prom_query(prom, 'count_over_time(up{job="node"}[1m])'),
        "Prometheus scraped the node exporter 5 times",
        ok=lambda r: bool(r) and float(r[0]["value"][1]) >= 5,
    )
    t = time.time() - 1.5
    # Remote write sends each series in order: once the stack has an `up` sample past T, it
    # has every sample up to T (all series come from the same scrapes).
    # (`up[10s]`, not `timestamp(up)`: the embedded Mimir has no timestamp().)
    eventually(
        lambda: newest_sample(stack.query('up{job="node"}[10s]')),
        f"the stack has an up{{job=\"node\"}} sample past T={t:.3f}",
        ok=lambda newest: newest is not None and newest >= t + 1,
    )

    up = as_map(stack.query('up{job="node"}', at=t))
    assert up == {(("__name__", "up"), ("instance", ne_addr), ("job", "node")): 1.0}, up

    for promql in ('count({job="node"})', "node_cpu_seconds_total", 'node_memory_MemTotal_bytes', '{job="node"}'):
        ours = as_map(stack.query(promql, at=t))
        theirs = as_map(prom_query(prom, promql, at=t))
        assert theirs, f"Prometheus itself has no {promql} at T"
        diff = differences(ours, theirs)
        assert not diff, f"{promql} at T={t:.3f}: stack vs Prometheus ({len(ours)} vs {len(theirs)} series):\n" + "\n".join(diff)
