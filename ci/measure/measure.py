#!/usr/bin/env python3
"""Re-measures the table of issue 12 with the release binaries: a collector process against
`stack serve` (embedded Loki, Mimir, Tempo on 127.0.0.1, free ports). Standard library only.

    cargo build --release -p collector -p stack
    python3 ci/measure/measure.py ROW [ROW...]      # rows: see ROWS below, or `all`
    CARGO_TARGET_DIR=/elsewhere python3 ci/measure/measure.py bombs

Each row prints one JSON object (the figures) on stdout; progress goes to stderr. Work files go
to a fresh /tmp/measure-ROW-* folder, deleted at the end unless MEASURE_KEEP=1. CPU seconds
are the collector process' utime + stime (/proc/PID/stat), RSS is VmRSS / VmHWM of
/proc/PID/status, never wall time alone.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    COLLECTOR, Collector, Stack, cpu_seconds, field_bytes, field_double, field_varint,
    gzip_zeros, http, hwm_mib, log, loki_lines, loki_push_proto, metric_sum, post_loki_json,
    reset_hwm, rss_mib, snappy_literal, snappy_repeat, workdir)

PROTO = {"content-type": "application/x-protobuf", "content-encoding": "snappy"}
RW = {**PROTO, "x-prometheus-remote-write-version": "0.1.0"}


def gateway_config(stack, loki_extra="", writer_extra=""):
    """Receivers for the three signals, writers to `stack`; receivers on free ports."""
    from common import free_port
    ports = {k: free_port() for k in ("loki", "rw", "otlp")}
    cfg = f"""
[sources.loki_in]
type = "loki_push"
address = "127.0.0.1:{ports['loki']}"
{loki_extra}
[sources.rw]
type = "remote_write"
address = "127.0.0.1:{ports['rw']}"

[sources.otlp]
type = "otlp"
http_address = "127.0.0.1:{ports['otlp']}"
grpc_enabled = false

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["rw"]
url = "{stack.mimir}/api/v1/push"

[writers.tempo]
type = "otlp"
inputs = ["otlp"]
protocol = "http"
url = "{stack.otlp}"

[writers.loki]
type = "loki"
inputs = ["loki_in"]
url = "{stack.loki}/loki/api/v1/push"
{writer_extra}
"""
    urls = {"loki": f"http://127.0.0.1:{ports['loki']}/loki/api/v1/push",
            "rw": f"http://127.0.0.1:{ports['rw']}/api/v1/write",
            "otlp": f"http://127.0.0.1:{ports['otlp']}/v1/traces"}
    return cfg, urls


# --- rows 1-3: throughput through `collector bench --backend` into stack serve ---------------

def throughput(pipeline):
    d = workdir(pipeline)
    stack = Stack("--retention", "4GiB", "--out-of-order-window", "10000h", workdir=d)
    try:
        backend = {"logs": f"logs={stack.loki}", "metrics": f"metrics={stack.mimir}",
                   "traces": f"traces={stack.otlp}"}[pipeline]
        out = os.path.join(d, "bench.json")
        cmd = [COLLECTOR, "bench", "--pipeline", pipeline, "--backend", backend,
               "--dir", os.path.join(d, "bench"), "--out", out]
        log(" ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        log(r.stdout, r.stderr[-2000:])
        m = json.load(open(out))[0]
        time.sleep(2)
        if pipeline == "logs":
            stored = metric_sum(stack.metrics(stack.loki), "loki_embedded_ingested_entries_total")
            dup = metric_sum(stack.metrics(stack.loki), "loki_embedded_duplicate_entries_total")
            backend_fig = {"loki_ingested_entries": stored, "loki_duplicates": dup}
        elif pipeline == "metrics":
            text = stack.metrics(stack.mimir)
            backend_fig = {"mimir_ingested_samples":
                           metric_sum(text, "cortex_ingester_ingested_samples_total"),
                           "mimir_discarded": metric_sum(text, "cortex_discarded_samples_total")}
        else:
            text = stack.metrics(stack.tempo)
            backend_fig = {"tempo_ingested_spans":
                           metric_sum(text, "tempo_embedded_ingested_spans_total"),
                           "tempo_refused_exports":
                           metric_sum(text, "tempo_embedded_refused_exports_total")}
        cpu = m["cpu_seconds"]
        return {"row": pipeline, "items": m["items"], "sent": m["sent"],
                "cpu_s": round(cpu, 2), "wall_s": round(m["wall_seconds"], 1),
                "items_per_cpu_s": round(m["items_per_cpu_second"]),
                "mb_per_cpu_s": round(m["input_bytes"] / 1e6 / cpu, 1) if cpu else None,
                "input_mb": round(m["input_bytes"] / 1e6, 1),
                "peak_rss_mib": round(m["peak_rss_bytes"] / 2**20, 1),
                "refusals_429": m["refusals"], "discarded": m["discarded"], **backend_fig,
                "bench_summary": r.stdout.strip().splitlines()[0] if r.stdout else r.stderr[-300:]}
    finally:
        stack.stop()
        cleanup(d)


# --- rows 4, 5, 6, 13: bombs and a big body beside small ones --------------------------------

def remote_write_body(n_series, labels_per=8, seed=0):
    """A remote-write WriteRequest protobuf (not compressed) of `n_series` one-sample series."""
    out = bytearray()
    t = int(time.time() * 1000)
    for i in range(n_series):
        ts = bytearray()
        ts += field_bytes(1, field_bytes(1, b"__name__") + field_bytes(2, b"bench_metric"))
        for k in range(labels_per - 1):
            ts += field_bytes(1, field_bytes(1, f"label_{k}".encode())
                              + field_bytes(2, f"value-{seed}-{i}-{k}".encode()))
        ts += field_bytes(2, field_double(1, float(i)) + field_varint(2, t))
        out += field_bytes(1, bytes(ts))
    return bytes(out)


def bombs():
    d = workdir("bombs")
    stack = Stack(workdir=d)
    try:
        cfg, urls = gateway_config(stack)
        res = {"row": "bombs"}
        # 4: 100 MiB of empty series (each `0a 00`), snappy: ~4.9 MB.
        c = Collector(cfg, d, "c4")
        body = snappy_repeat(b"\x0a\x00", 100 << 20)
        before = rss_mib(c.pid)
        reset_hwm(c.pid)
        st, _, b = http("POST", urls["rw"], body, RW)
        time.sleep(0.5)
        res["row4_empty_series"] = {"body_mb": round(len(body) / 1e6, 2), "status": st,
                                    "answer": b[:160].decode(errors="replace"),
                                    "rss_before_mib": round(before, 1),
                                    "rss_after_mib": round(rss_mib(c.pid), 1),
                                    "peak_rss_mib": round(hwm_mib(c.pid), 1)}
        c.stop()
        # 5: one stream of 100 labels x 100 B, 100k entries, protobuf+snappy.
        c = Collector(cfg, d, "c5")
        labels = "{" + ", ".join(f'l{i:02d}="{("v" * 96)}{i:02d}"' for i in range(100)) + "}"
        now = time.time_ns()
        raw = loki_push_proto([(labels, [(now + i, "x") for i in range(100_000)])])
        body = snappy_literal(raw)
        before = rss_mib(c.pid)
        reset_hwm(c.pid)
        st, _, b = http("POST", urls["loki"], body, PROTO)
        time.sleep(3)
        res["row5_loki_labels"] = {"body_mb": round(len(body) / 1e6, 2),
                                   "label_bytes": len(labels), "status": st,
                                   "answer": b[:160].decode(errors="replace"),
                                   "rss_before_mib": round(before, 1),
                                   "rss_after_mib": round(rss_mib(c.pid), 1),
                                   "peak_rss_mib": round(hwm_mib(c.pid), 1),
                                   "loki_sent": metric_sum(c.metrics(), "collector_sent_items_total",
                                                           component="loki")}
        c.stop()
        # 6: a gzip bomb of zeros over OTLP/HTTP.
        c = Collector(cfg, d, "c6")
        body = gzip_zeros(100 << 20)
        before = rss_mib(c.pid)
        reset_hwm(c.pid)
        st, _, b = http("POST", urls["otlp"], body,
                        {"content-type": "application/x-protobuf", "content-encoding": "gzip"})
        time.sleep(0.5)
        res["row6_gzip_bomb"] = {"body_kb": round(len(body) / 1e3, 1), "status": st,
                                 "answer": b[:160].decode(errors="replace"),
                                 "rss_before_mib": round(before, 1),
                                 "rss_after_mib": round(rss_mib(c.pid), 1),
                                 "peak_rss_mib": round(hwm_mib(c.pid), 1)}
        c.stop()
        # 13: a 10 MiB remote write decoding beside small good ones.
        c = Collector(cfg, d, "c13")
        big_body = snappy_literal(remote_write_body(45_900))  # 10 MiB as sent
        small = snappy_literal(remote_write_body(10, seed=1))
        res["row13_big_beside_small"] = latency_beside(urls["rw"], big_body, small, c)
        c.stop()
        return res
    finally:
        stack.stop()
        cleanup(d)


def latency_beside(url, big_body, small_body, c, rounds=8):
    """Posts `big_body` `rounds` times; during each, small posts one after another; returns the
    small posts' latencies (ms) while a big one was in flight, and alone."""
    alone = []
    for _ in range(10):
        t = time.perf_counter()
        http("POST", url, small_body, RW)
        alone.append((time.perf_counter() - t) * 1000)
    beside, big_status, big_ms, small_status = [], [], [], {}
    for _ in range(rounds):
        done = threading.Event()

        def post_big():
            t = time.perf_counter()
            st, _, _ = http("POST", url, big_body, RW, timeout=120)
            big_ms.append((time.perf_counter() - t) * 1000)
            big_status.append(st)
            done.set()
        th = threading.Thread(target=post_big)
        th.start()
        time.sleep(0.02)
        while not done.is_set():
            t = time.perf_counter()
            st, _, _ = http("POST", url, small_body, RW)
            ms = (time.perf_counter() - t) * 1000
            if not done.is_set():
                beside.append(ms)
                small_status[st] = small_status.get(st, 0) + 1
        th.join()
        time.sleep(0.3)
    beside.sort()
    alone.sort()
    return {"big_body_mb": round(len(big_body) / 2**20, 2), "big_status": sorted(set(big_status)),
            "big_ms_median": round(sorted(big_ms)[len(big_ms) // 2]),
            "small_samples": len(beside), "small_status": small_status,
            "small_ms_median": round(beside[len(beside) // 2], 1) if beside else None,
            "small_ms_max": round(beside[-1], 1) if beside else None,
            "small_alone_ms_median": round(alone[len(alone) // 2], 1),
            "peak_rss_mib": round(hwm_mib(c.pid), 1)}


# --- rows 7 and 12: backend stopped, 250 KB pushes until 429 ---------------------------------

def stopped_backend():
    d = workdir("stopped")
    stack = Stack(workdir=d)
    c = None
    try:
        cfg, urls = gateway_config(stack)
        c = Collector(cfg, d, "c7")
        os.kill(stack.pid, signal.SIGSTOP)
        line = "y" * 230
        acked = 0
        acked_lines = 0
        first = None
        seq = 0
        statuses = {}
        until = time.time() + 120
        while time.time() < until:
            entries = []
            for _ in range(1000):
                entries.append((time.time_ns(), f"{seq:08d} {line}"))
                seq += 1
            st, h, b = post_loki_json(urls["loki"], {"job": "stopped"}, entries)
            statuses[st] = statuses.get(st, 0) + 1
            if st // 100 == 2:
                acked += 1
                acked_lines += len(entries)
            elif st == 429:
                first = {"retry_after": h.get("Retry-After") or h.get("retry-after"),
                         "answer": b[:160].decode(errors="replace")}
                break
        body_kb = len(__import__("common").loki_json({"job": "stopped"}, entries)) / 1e3
        time.sleep(1)
        text = c.metrics()
        depth = metric_sum(text, "collector_queue_depth", component="loki")
        qbytes = metric_sum(text, "collector_queue_bytes", component="loki")
        sent_before = metric_sum(text, "collector_sent_items_total", component="loki")
        res = {"row": "stopped_backend", "push_kb": round(body_kb, 1),
               "acked_pushes_before_429": acked, "acked_lines": acked_lines,
               "first_refusal": first, "statuses": statuses,
               "collector_rss_mib": round(rss_mib(c.pid), 1),
               "collector_peak_rss_mib": round(hwm_mib(c.pid), 1),
               "row12_queue_depth": depth, "row12_queue_bytes": qbytes,
               "sent_while_stopped": sent_before,
               "inflight_gauge": metric_sum(text, "collector_receiver_inflight_bytes",
                                            component="loki_in")}
        os.kill(stack.pid, signal.SIGCONT)
        deadline = time.time() + 180
        while time.time() < deadline:
            stored = stack.loki_entries()
            if stored >= acked_lines:
                break
            time.sleep(1)
        time.sleep(2)
        text = c.metrics()
        res.update({"loki_stored_after_sigcont": stack.loki_entries(),
                    "collector_sent": metric_sum(text, "collector_sent_items_total",
                                                 component="loki"),
                    "collector_discarded": {l.split("reason=")[1]: float(l.rsplit(" ", 1)[1])
                                            for l in text.splitlines()
                                            if l.startswith("collector_discarded_items_total")
                                            and 'component="loki"' in l
                                            and not l.endswith(" 0")},
                    "queue_depth_after_drain": metric_sum(text, "collector_queue_depth",
                                                          component="loki")})
        return res
    finally:
        if c:
            c.stop()
        stack.stop()
        cleanup(d)


# --- row 8: a 5-minute outage while 100 lines/s arrive ---------------------------------------

def outage(outage_s=300, run_s=360, rate=100):
    d = workdir("outage")
    stack = Stack(workdir=d)
    c = None
    try:
        cfg, urls = gateway_config(stack)
        c = Collector(cfg, d, "c8")
        acked = 0
        refused = {}
        seq = 0
        start = time.time()
        stack.faults({"loki_push": {"outage": f"{outage_s}s"}})
        log(f"[outage] {outage_s}s outage set; sending {rate} lines/s for {run_s}s")
        tick = 0
        while time.time() - start < run_s:
            tick += 1
            entries = [(time.time_ns() + i, f"outage line {seq + i:07d}") for i in range(rate // 10)]
            while True:
                st, h, _ = post_loki_json(urls["loki"], {"job": "outage"}, entries)
                if st // 100 == 2:
                    acked += len(entries)
                    seq += len(entries)
                    break
                refused[st] = refused.get(st, 0) + 1
                time.sleep(float(h.get("Retry-After") or 1))
            sleep = start + tick * 0.1 - time.time()
            if sleep > 0:
                time.sleep(sleep)
            if tick % 600 == 0:
                log(f"[outage] {time.time() - start:.0f}s acked {acked}")
        deadline = time.time() + 120
        while time.time() < deadline and stack.loki_entries() < acked:
            time.sleep(1)
        time.sleep(2)
        text = c.metrics()
        return {"row": "outage", "outage_s": outage_s, "run_s": run_s, "acked_lines": acked,
                "client_refusals": refused, "loki_stored": stack.loki_entries(),
                "collector_sent": metric_sum(text, "collector_sent_items_total", component="loki"),
                "collector_retries": metric_sum(text, "collector_retries_total", component="loki"),
                "collector_discarded": discards(text),
                "stack_faulted": metric_sum(stack.metrics(),
                                            "stack_embedded_faulted_requests_total"),
                "collector_peak_rss_mib": round(hwm_mib(c.pid), 1)}
    finally:
        if c:
            c.stop()
        stack.stop()
        cleanup(d)


def discards(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("collector_discarded_items_total") and not line.endswith(" 0"):
            head, _, v = line.rpartition(" ")
            out[head.split("{", 1)[1].rstrip("}")] = float(v)
    return out


# --- row 9: kill -9 with a disk buffer while Loki is down ------------------------------------

def kill9_disk():
    d = workdir("kill9")
    stack = Stack(workdir=d)
    c = None
    try:
        cfg, urls = gateway_config(
            stack, writer_extra='buffer = { type = "disk", max_size = "256MiB", fsync = "1s" }\n')
        data = os.path.join(d, "data")
        c = Collector(cfg, d, "c9", data_dir=data)
        stack.faults({"loki_push": {"outage": "600s"}})
        acked, seq, refused = 0, 0, {}
        stop_at = time.time() + 10
        killer = threading.Timer(8.0, lambda: os.kill(c.pid, signal.SIGKILL))
        killer.start()
        while time.time() < stop_at:
            entries = [(time.time_ns() + i, f"kill9 line {seq + i:07d}") for i in range(100)]
            try:
                st, _, _ = post_loki_json(urls["loki"], {"job": "kill9"}, entries, timeout=5)
            except OSError:
                break  # the collector is gone: this push was not acknowledged
            if st // 100 == 2:
                acked += len(entries)
                seq += len(entries)
            else:
                refused[st] = refused.get(st, 0) + 1
        c.proc.wait()
        killed_at_acked = acked
        stored_before = stack.loki_entries()
        stack.clear_faults()
        c = Collector(cfg, d, "c9b", data_dir=data)
        deadline = time.time() + 120
        while time.time() < deadline and stack.loki_entries() < acked:
            time.sleep(0.5)
        time.sleep(2)
        text = c.metrics()
        lines = loki_lines(stack.loki, '{job="kill9"}', 0, time.time_ns() + 10**9)
        distinct = {l for _, l in lines}
        want = {f"kill9 line {i:07d}" for i in range(acked)}
        return {"row": "kill9_disk_buffer", "acked_lines": killed_at_acked,
                "client_refusals": refused, "loki_stored_during_outage": stored_before,
                "loki_entries_after_restart": len(lines), "distinct_lines": len(distinct),
                "acked_missing": len(want - distinct),
                "collector_after_restart_sent": metric_sum(text, "collector_sent_items_total",
                                                           component="loki"),
                "collector_discarded": discards(text),
                "buffer_corrupt": metric_sum(text, "collector_buffer_corrupt_records_total")}
    finally:
        if c:
            c.stop()
        stack.stop()
        cleanup(d)


# --- row 10: file tail across kill -9 at ~180,000 lines --------------------------------------

def file_kill9(total=300_000, kill_at=180_000, rate=5000):
    d = workdir("filetail")
    stack = Stack("--retention", "1GiB", workdir=d)
    c = None
    writer_stop = threading.Event()
    try:
        path = os.path.join(d, "app.log")
        open(path, "w").close()
        cfg = f"""
[sources.files]
type = "file"
paths = ["{path}"]
start_at = "beginning"
labels = {{ job = "filetail" }}

[writers.loki]
type = "loki"
inputs = ["files"]
url = "{stack.loki}/loki/api/v1/push"
"""
        data = os.path.join(d, "data")
        c = Collector(cfg, d, "c10", data_dir=data)
        written = [0]

        def write_lines():
            with open(path, "a") as f:
                t0 = time.time()
                while written[0] < total and not writer_stop.is_set():
                    n = min(rate // 20, total - written[0])
                    f.write("".join(f"filetail line {written[0] + i:07d} payload-abcdefghij\n"
                                    for i in range(n)))
                    f.flush()
                    written[0] += n
                    sleep = t0 + written[0] / rate - time.time()
                    if sleep > 0:
                        time.sleep(sleep)
        w = threading.Thread(target=write_lines)
        w.start()
        while True:
            sent = metric_sum(c.metrics(), "collector_sent_items_total", component="loki")
            if sent >= kill_at:
                break
            time.sleep(0.02)
        c.kill9()
        killed_sent = sent
        log(f"[filetail] kill -9 at sent={sent}, written={written[0]}")
        time.sleep(2)
        c = Collector(cfg, d, "c10b", data_dir=data)
        w.join()
        deadline = time.time() + 180
        while time.time() < deadline:
            if metric_sum(stack.metrics(), "loki_embedded_ingested_entries_total") >= total:
                break
            time.sleep(1)
        time.sleep(12)  # the last lease and batch
        text = c.metrics()
        lines = loki_lines(stack.loki, '{job="filetail"}', 0, time.time_ns() + 10**9)
        by_line = {}
        for ts, l in lines:
            by_line.setdefault(l, []).append(ts)
        want = {f"filetail line {i:07d} payload-abcdefghij" for i in range(total)}
        dup_stored = sum(len(v) - 1 for v in by_line.values())
        smetrics = stack.metrics()
        return {"row": "file_kill9", "total_lines": total,
                "killed_at_sent": killed_sent,
                "lost": len(want - set(by_line)), "stored_entries": len(lines),
                "duplicates_stored_in_loki": dup_stored,
                "loki_dropped_as_equal_duplicates":
                    metric_sum(smetrics, "loki_embedded_duplicate_entries_total"),
                "collector_sent_total_after_restart":
                    metric_sum(text, "collector_sent_items_total", component="loki"),
                "reread_lines": killed_sent + metric_sum(text, "collector_sent_items_total",
                                                         component="loki") - total,
                "collector_discarded": discards(text)}
    finally:
        writer_stop.set()
        if c:
            c.stop()
        stack.stop()
        cleanup(d)


# --- row 11: a push the backend partly refuses -----------------------------------------------

def partial():
    d = workdir("partial")
    stack = Stack("--max-line-size", "1KiB", workdir=d)
    c = None
    try:
        cfg, urls = gateway_config(stack, loki_extra="use_incoming_timestamp = true\n")
        c = Collector(cfg, d, "c11")
        now = time.time_ns()
        entries = [(now + i, f"partial line {i:03d}") for i in range(100)]
        entries.append((now + 100, "z" * 2000))  # over Loki's max_line_size (1 KiB here)
        st, _, _ = post_loki_json(urls["loki"], {"job": "partial"}, entries)
        time.sleep(4)
        text = c.metrics()
        res = {"row": "partial_refusal", "receiver_status": st, "pushed": len(entries),
               "loki_stored": stack.loki_entries(),
               "collector_sent": metric_sum(text, "collector_sent_items_total", component="loki"),
               "collector_discarded": discards(text)}
        c.stop()
        c = None
        # The same through a backend that answers as Loki's ingester does ("total ignored").
        res["loki_ingester_style"] = partial_mock(d)
        return res
    finally:
        if c:
            c.stop()
        stack.stop()
        cleanup(d)


def partial_mock(d):
    """A backend answering every push 400 "... total ignored: 1 out of 101 ..." (Loki's ingester
    refusing one entry of a stream, e.g. too far behind)."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            msg = (b"entry with timestamp 2026-12-04 00:00:00 ignored, reason: 'entry too far "
                   b"behind', user 'fake', total ignored: 1 out of 101 for stream: {job=\"partial\"}")
            self.send_response(400)
            self.send_header("content-length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    from common import free_port
    port = free_port()
    cfg = f"""
[sources.loki_in]
type = "loki_push"
address = "127.0.0.1:{port}"
use_incoming_timestamp = true
[writers.loki]
type = "loki"
inputs = ["loki_in"]
url = "http://127.0.0.1:{srv.server_address[1]}/loki/api/v1/push"
"""
    c = Collector(cfg, d, "c11mock")
    try:
        now = time.time_ns()
        entries = [(now + i, f"partial line {i:03d}") for i in range(101)]
        post_loki_json(f"http://127.0.0.1:{port}/loki/api/v1/push", {"job": "partial"}, entries)
        time.sleep(4)
        text = c.metrics()
        return {"collector_sent": metric_sum(text, "collector_sent_items_total", component="loki"),
                "collector_discarded": discards(text)}
    finally:
        c.stop()
        srv.shutdown()


def cleanup(d):
    if os.environ.get("MEASURE_KEEP") != "1":
        shutil.rmtree(d, ignore_errors=True)


ROWS = {
    "logs": lambda: throughput("logs"),          # row 1 (and RSS while the backlog drains)
    "metrics": lambda: throughput("metrics"),    # row 2
    "traces": lambda: throughput("traces"),      # row 3
    "bombs": bombs,                              # rows 4, 5, 6, 13
    "stopped": stopped_backend,                  # rows 7, 12
    "outage": outage,                            # row 8
    "kill9": kill9_disk,                         # row 9
    "filetail": file_kill9,                      # row 10
    "partial": partial,                          # row 11
}

if __name__ == "__main__":
    names = sys.argv[1:] or ["--help"]
    if names == ["all"]:
        names = list(ROWS)
    if any(n not in ROWS for n in names):
        print(__doc__ + "\nrows: " + ", ".join(ROWS), file=sys.stderr)
        sys.exit(2)
    for n in names:
        t = time.time()
        out = ROWS[n]()
        out["wall_s_of_measurement"] = round(time.time() - t, 1)
        print(json.dumps(out), flush=True)
