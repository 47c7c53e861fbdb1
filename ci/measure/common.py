"""Shared pieces of the issue-12 measurements (standard library only): starting `stack serve`
and a collector from the release build, reading /proc for CPU seconds and RSS, reading
Prometheus text metrics, posting bodies, and encoding the wire formats the receivers take
(protobuf by hand, snappy block format, Loki push)."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
STACK = os.path.join(TARGET, "release", "stack")
COLLECTOR = os.path.join(TARGET, "release", "collector")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --- /proc ----------------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_mib(pid):
    return status_kib(pid, "VmRSS") / 1024


def hwm_mib(pid):
    return status_kib(pid, "VmHWM") / 1024


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        log(f"cannot reset VmHWM of {pid}: {e}")


# --- HTTP -----------------------------------------------------------------------------------

def http(method, url, body=None, headers=None, timeout=60):
    """Returns (status, headers, body bytes); never raises on an HTTP status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_text(url, timeout=30):
    st, _, b = http("GET", url, timeout=timeout)
    if st != 200:
        raise RuntimeError(f"GET {url}: {st} {b[:200]!r}")
    return b.decode()


def metric_sum(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def metric_lines(text, prefix):
    return [line for line in text.splitlines() if line.startswith(prefix)]


# --- processes ------------------------------------------------------------------------------

class Stack:
    """`stack serve --ephemeral --json` with `args`; `.loki`, `.mimir`, `.otlp` are base URLs."""

    def __init__(self, *args, workdir):
        self.log_path = os.path.join(workdir, "stack.log")
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [STACK, "serve", "--ephemeral", "--json", *args],
            stdout=subprocess.PIPE, stderr=self.logf, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"stack serve did not start: see {self.log_path}")
        info = json.loads(line)
        a = info["addrs"]
        self.loki = f"http://{a['loki']}"
        self.mimir = f"http://{a['mimir']}"
        self.otlp = f"http://{a['otlp_http']}"
        self.tempo = f"http://{a['tempo']}"
        self.pid = self.proc.pid

    def metrics(self, base=None):
        return get_text((base or self.loki) + "/metrics")

    def loki_entries(self):
        return metric_sum(self.metrics(self.loki), "loki_embedded_ingested_entries_total")

    def faults(self, body):
        st, _, b = http("PUT", self.loki + "/stack/faults", json.dumps(body).encode(),
                        {"content-type": "application/json"})
        if st // 100 != 2:
            raise RuntimeError(f"PUT /stack/faults: {st} {b!r}")

    def clear_faults(self):
        http("DELETE", self.loki + "/stack/faults")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


class Collector:
    """`collector run` with the config text `config` (its `[server]` is added here)."""

    def __init__(self, config, workdir, name="collector", data_dir=None):
        self.server = free_port()
        self.base = f"http://127.0.0.1:{self.server}"
        data_dir = data_dir or os.path.join(workdir, name + "-data")
        os.makedirs(data_dir, exist_ok=True)
        self.config_path = os.path.join(workdir, name + ".toml")
        with open(self.config_path, "w") as f:
            f.write(f'data_dir = "{data_dir}"\n[server]\naddress = "127.0.0.1:{self.server}"\n'
                    + config)
        self.log_path = os.path.join(workdir, name + ".log")
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen([COLLECTOR, "run", "--config", self.config_path],
                                     stdout=self.logf, stderr=self.logf)
        self.pid = self.proc.pid
        until = time.time() + 30
        while time.time() < until:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited: see {self.log_path}")
            st, _, _ = http("GET", self.base + "/-/ready", timeout=2) if self._up() else (0, 0, 0)
            if st == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("collector not ready in 30 s")

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.server), 0.2).close()
            return True
        except OSError:
            return False

    def metrics(self):
        return get_text(self.base + "/metrics")

    def counters(self):
        """sent/received/discarded per component, from /metrics."""
        text = self.metrics()
        out = {}
        for line in text.splitlines():
            if line.startswith("collector_") and not line.startswith("#"):
                head, _, v = line.rpartition(" ")
                if float(v) != 0 and ("_items_total" in head or "queue" in head
                                      or "buffer" in head or "retries" in head):
                    out[head] = float(v)
        return out

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    def stop(self, grace=20):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()


def workdir(name):
    d = tempfile.mkdtemp(prefix=f"measure-{name}-", dir=os.environ.get("MEASURE_TMP", "/tmp"))
    log(f"[{name}] work dir {d}")
    return d


# --- wire formats ---------------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_double(num, v):
    import struct
    return varint(num << 3 | 1) + struct.pack("<d", v)


def snappy_literal(data):
    """Snappy block format with literals only: the body is as large as `data`."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(61 << 2)
            out += n.to_bytes(2, "little")
        out += chunk
    return bytes(out)


def snappy_repeat(unit, total):
    """Snappy of `unit` repeated to `total` bytes: one literal, then 64-byte copies."""
    assert total % len(unit) == 0 and 64 % len(unit) == 0
    out = bytearray(varint(total))
    out.append((len(unit) - 1) << 2)
    out += unit
    left = total - len(unit)
    copy = bytes([(63 << 2) | 2]) + len(unit).to_bytes(2, "little")
    out += copy * (left // 64)
    rest = left % 64
    if rest:
        out += bytes([((rest - 1) << 2) | 2]) + len(unit).to_bytes(2, "little")
    return bytes(out)


def loki_push_proto(streams):
    """PushRequest: `streams` = [(labels string, [(ts_ns, line)])], protobuf (not compressed)."""
    out = bytearray()
    for labels, entries in streams:
        s = bytearray(field_bytes(1, labels.encode()))
        for ts, line in entries:
            t = field_varint(1, ts // 1_000_000_000) + field_varint(2, ts % 1_000_000_000)
            s += field_bytes(2, field_bytes(1, t) + field_bytes(2, line.encode()))
        out += field_bytes(1, bytes(s))
    return bytes(out)


def loki_json(labels, entries):
    return json.dumps({"streams": [{"stream": labels,
                                    "values": [[str(t), l] for t, l in entries]}]}).encode()


def post_loki_json(url, labels, entries, timeout=30):
    return http("POST", url, loki_json(labels, entries),
                {"content-type": "application/json"}, timeout=timeout)


def gzip_zeros(n):
    return gzip.compress(bytes(n), 9)


def loki_query_count(loki, selector, since_s=7200):
    """Entries matching `selector` stored in the last `since_s` seconds (sum of count_over_time)."""
    now = time.time_ns()
    q = urllib.parse.urlencode({"query": f"sum(count_over_time({selector}[{since_s}s]))",
                                "time": str(now)})
    st, _, b = http("GET", f"{loki}/loki/api/v1/query?{q}")
    if st != 200:
        raise RuntimeError(f"loki query: {st} {b[:300]!r}")
    res = json.loads(b)["data"]["result"]
    return int(float(res[0]["value"][1])) if res else 0


def loki_lines(loki, selector, start_ns, end_ns, page=5000):
    """Every (ts, line) of `selector` between start and end, paging forward."""
    out = []
    start = start_ns
    seen_at_edge = set()
    while True:
        q = urllib.parse.urlencode({"query": selector, "start": str(start), "end": str(end_ns),
                                    "limit": str(page), "direction": "forward"})
        st, _, b = http("GET", f"{loki}/loki/api/v1/query_range?{q}", timeout=120)
        if st != 200:
            raise RuntimeError(f"loki query_range: {st} {b[:300]!r}")
        got = []
        for s in json.loads(b)["data"]["result"]:
            got += [(int(t), l) for t, l in s["values"]]
        got.sort()
        new = [e for e in got if e not in seen_at_edge]
        out += new
        if len(got) < page:
            return out
        last = got[-1][0]
        seen_at_edge = {e for e in got if e[0] == last}
        start = last


import urllib.parse  # noqa: E402  (used above)
