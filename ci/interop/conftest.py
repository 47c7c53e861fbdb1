"""Shared fixtures of the interop suite: our binaries as real processes on free 127.0.0.1 ports,
third-party tools looked up (a missing one skips, or fails under REQUIRE_LOCAL_SERVERS=1), and
small clients for the public query APIs (Prometheus, Loki, Tempo) that every test asserts with.

Every process a test starts is stopped (SIGTERM, then SIGKILL) when the test ends, and its
stderr tail is printed so a failure shows what the server said.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("INTEROP_BIN_DIR", REPO / "target" / "debug"))
NODE_DIR = Path(os.environ.get("INTEROP_NODE_DIR", REPO / "target" / "interop-node"))
# Any non-empty value other than "0" makes a missing tool a failure, as in the Rust tests.
REQUIRE = os.environ.get("REQUIRE_LOCAL_SERVERS", "") not in ("", "0")
# How long a test waits for data to show up in a query API: arrival is asynchronous (batching
# in the collector, remote-write shards), so tests poll up to this bound, never sleep blindly.
ARRIVAL_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 5.0


def missing(what: str, hint: str) -> None:
    """Skips the test, or fails it when REQUIRE_LOCAL_SERVERS is set."""
    message = f"{what} is not available ({hint})"
    if REQUIRE:
        pytest.fail(f"{message}; REQUIRE_LOCAL_SERVERS is set, so this is a failure")
    pytest.skip(message)


def tool(name: str, hint: str) -> str:
    """The path of an executable on PATH (or in /usr/bin), or a skip/failure naming it."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if not found:
        missing(name, hint)
    return found


def our_binary(name: str) -> str:
    path = BIN_DIR / name
    if not os.access(path, os.X_OK):
        missing(str(path), "run `cargo build -p stack -p collector -p loadgen --bins` or ci/interop/run.sh")
    return str(path)


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free right now on 127.0.0.1, never one handed out before in this session: the OS
    may offer a just-closed port again, and two listeners of one config must not share it. (The
    window before our process binds it is accepted: tests run one at a time.)"""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def eventually(
    probe: Callable[[], Any], what: str, ok: Callable[[Any], bool] = bool,
    timeout: float = ARRIVAL_TIMEOUT_S, every: float = 0.25,
) -> Any:
    """Polls `probe` until `ok(value)` and returns the value. On the bound, fails with `what` and
    the last value (or exception) seen, so the failure says what did arrive."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
            if ok(last):
                return last
        except (requests.RequestException, ValueError, KeyError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not so after {timeout:.0f} s; last seen: {last!r}"[:6000], pytrace=False)
        time.sleep(every)


class Proc:
    """A child process with its output in files, stopped at teardown."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.out_path = workdir / f"{name}.stdout"
        self.err_path = workdir / f"{name}.stderr"
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.popen = subprocess.Popen(
            argv, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=workdir,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            text = self.err_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self.out.close()
        self.err.close()
        tail = self.stderr_tail()
        if tail:
            print(f"--- {self.name} stderr (last lines) ---\n{tail}")


@pytest.fixture
def procs(tmp_path: Path):
    """Starts processes for one test and stops them all (newest first) when it ends."""
    started: list[Proc] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        p = Proc(name, argv, tmp_path, env)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.stop()


def wait_http_ok(url: str, proc: Proc, timeout: float = 30.0) -> None:
    """Waits until `url` answers 200, failing early (with its stderr) if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(f"{proc.name} exited with {proc.popen.returncode} before {url} was ready:\n{proc.stderr_tail()}")
        try:
            if requests.get(url, timeout=HTTP_TIMEOUT_S).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"{proc.name}: {url} not ready after {timeout:.0f} s:\n{proc.stderr_tail()}")


class Stack:
    """A running `stack serve --ephemeral --json` and its endpoints."""

    def __init__(self, proc: Proc, endpoints: dict[str, Any]):
        self.proc = proc
        addrs = endpoints["addrs"]
        self.loki = f"http://{addrs['loki']}"
        self.mimir = f"http://{addrs['mimir']}"
        self.tempo = f"http://{addrs['tempo']}"
        self.otlp_http = f"http://{addrs['otlp_http']}"
        self.otlp_grpc_addr = addrs["otlp_grpc"]
        self.prom = f"{self.mimir}/prometheus"

    # Prometheus query API (Mimir's, under /prometheus).
    def query(self, promql: str, at: float | None = None) -> list[dict]:
        return prom_query(self.prom, promql, at)

    def loki_query_range(self, logql: str, start_ns: int, end_ns: int, limit: int = 1000) -> list[dict]:
        return loki_query_range(self.loki, logql, start_ns, end_ns, limit)

    def trace(self, trace_id_hex: str) -> dict | None:
        r = requests.get(f"{self.tempo}/api/traces/{trace_id_hex}", timeout=HTTP_TIMEOUT_S)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()


def prom_query(base: str, promql: str, at: float | None = None) -> list[dict]:
    """`GET {base}/api/v1/query`: the vector result (each `{metric, value: [t, "v"]}`)."""
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    r = requests.get(f"{base}/api/v1/query", params=params, timeout=HTTP_TIMEOUT_S)
    body = r.json()
    if r.status_code != 200 or body.get("status") != "success":
        raise ValueError(f"query {promql!r} -> HTTP {r.status_code}: {body}")
    return body["data"]["result"]


def loki_query_range(base: str, logql: str, start_ns: int, end_ns: int, limit: int = 1000) -> list[dict]:
    """`GET /loki/api/v1/query_range` (direction forward): the streams result."""
    r = requests.get(
        f"{base}/loki/api/v1/query_range",
        params={"query": logql, "start": str(start_ns), "end": str(end_ns), "limit": str(limit), "direction": "forward"},
        timeout=HTTP_TIMEOUT_S,
    )
    body = r.json()
    if r.status_code != 200 or body.get("status") != "success":
        raise ValueError(f"query_range {logql!r} -> HTTP {r.status_code}: {body}")
    return body["data"]["result"]


def metric_names(base: str) -> list[str]:
    """Every metric name the Prometheus API knows (for failure messages)."""
    try:
        r = requests.get(f"{base}/api/v1/label/__name__/values", timeout=HTTP_TIMEOUT_S)
        return r.json().get("data", [])
    except (requests.RequestException, ValueError):
        return []


@pytest.fixture
def stack(procs) -> Stack:
    """A fresh `stack serve` on free ports."""
    argv = [our_binary("stack"), "serve", "--ephemeral", "--json"]
    p = procs("stack", argv)
    line = b""
    deadline = time.monotonic() + 30
    with open(p.out_path, "rb") as out:
        while not line.endswith(b"\n"):
            if not p.alive():
                pytest.fail(f"stack serve exited with {p.popen.returncode}:\n{p.stderr_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"stack serve printed no endpoints within 30 s:\n{p.stderr_tail()}")
            chunk = out.readline()
            if chunk:
                line += chunk
            else:
                time.sleep(0.05)
    s = Stack(p, json.loads(line))
    for url in (f"{s.loki}/ready", f"{s.mimir}/ready", f"{s.tempo}/ready"):
        wait_http_ok(url, p)
    return s


class Collector:
    """A running `collector run` with a gateway-like config: OTLP (HTTP and gRPC), Loki push and
    remote write in; logs to the stack's Loki, metrics to its Mimir, traces to its Tempo OTLP."""

    def __init__(self, proc: Proc, ports: dict[str, int], config: str):
        self.proc = proc
        self.config = config
        self.otlp_http = f"http://127.0.0.1:{ports['otlp_http']}"
        self.otlp_grpc_addr = f"127.0.0.1:{ports['otlp_grpc']}"
        self.loki_push = f"http://127.0.0.1:{ports['loki_push']}"
        self.remote_write = f"http://127.0.0.1:{ports['remote_write']}"
        self.server = f"http://127.0.0.1:{ports['server']}"


def gateway_config(stack: Stack, ports: dict[str, int], data_dir: Path, traces_protocol: str = "grpc") -> str:
    """The shipped gateway (collector/examples/gateway.toml) on free ports, plus a remote_write
    source, with short batch waits so tests see data within a second or two."""
    tempo_url = f"http://{stack.otlp_grpc_addr}" if traces_protocol == "grpc" else stack.otlp_http
    return f"""
data_dir = "{data_dir}"

[server]
address = "127.0.0.1:{ports['server']}"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:{ports['otlp_grpc']}"
http_address = "127.0.0.1:{ports['otlp_http']}"

[sources.loki_push]
type = "loki_push"
address = "127.0.0.1:{ports['loki_push']}"

[sources.remote_write]
type = "remote_write"
address = "127.0.0.1:{ports['remote_write']}"

[writers.loki]
type = "loki"
inputs = ["otlp", "loki_push"]
url = "{stack.loki}/loki/api/v1/push"
batch_wait = "200ms"

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["otlp", "remote_write"]
url = "{stack.mimir}/api/v1/push"
batch_wait = "200ms"

[writers.tempo]
type = "otlp"
inputs = ["otlp"]
protocol = "{traces_protocol}"
url = "{tempo_url}"
batch_wait = "200ms"
"""


@pytest.fixture
def collector(procs, stack: Stack, tmp_path: Path) -> Collector:
    """A fresh collector in front of the test's stack."""
    ports = {k: free_port() for k in ("server", "otlp_http", "otlp_grpc", "loki_push", "remote_write")}
    data_dir = tmp_path / "collector-data"
    data_dir.mkdir()
    config = gateway_config(stack, ports, data_dir)
    path = tmp_path / "gateway.toml"
    path.write_text(config)
    p = procs("collector", [our_binary("collector"), "run", "--config", str(path)], env={"RUST_LOG": "info"})
    c = Collector(p, ports, config)
    wait_http_ok(f"{c.server}/-/ready", p)
    # /-/healthy lists components that failed (a listener that could not bind, say).
    wait_http_ok(f"{c.server}/-/healthy", p)
    return c


def now_ns() -> int:
    return time.time_ns()
