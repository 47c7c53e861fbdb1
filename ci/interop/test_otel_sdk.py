"""The OpenTelemetry Python SDK (the real exporters from PyPI) sending traces, metrics and logs over
OTLP/HTTP and OTLP/gRPC, with and without gzip, into the collector and (traces) straight into
`stack serve`'s Tempo OTLP ports; what arrives is read back through the public query APIs.

Expectations follow the real servers: Prometheus' and Mimir's OTLP translation for metric names
(`_total`, unit suffixes, `_ratio`), `job`/`instance` from `service.*` and `target_info` with the
other resource attributes; delta temporality converted to cumulative (Prometheus' delta
conversion, the OTel Collector's deltatocumulative); Loki's OTLP logs mapping (index resource
attributes as labels, the rest as structured metadata, returned merged into stream labels);
Tempo's trace-by-id API.
"""

from __future__ import annotations

import base64
import logging
import math
import warnings

import grpc
import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from conftest import eventually, metric_names, now_ns

RESOURCE_ATTRS = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "pos-1",
    "host.name": "host-a",
    "deployment.environment": "prod",
}
JOB, INSTANCE = "shop/checkout", "pos-1"

# What `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta` selects in the SDKs: delta for
# counters and histograms, cumulative for up-down counters.
DELTA = {
    Counter: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
}

PROTOCOLS = ["http", "grpc"]
COMPRESSIONS = pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])


def exporter(signal: str, protocol: str, gzip: bool, http_base: str, grpc_addr: str, **kw):
    """The SDK's own OTLP exporter for `signal` over `protocol`, gzip or not."""
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        cls = {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}[signal]
        comp = Compression.Gzip if gzip else Compression.NoCompression
        return cls(endpoint=f"{http_base}/v1/{signal}", compression=comp, timeout=5, **kw)
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    cls = {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}[signal]
    comp = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    return cls(endpoint=grpc_addr, insecure=True, compression=comp, timeout=5, **kw)


def record_results(exp) -> list:
    """Wraps `exp.export` so the test sees every export's result (the SDK only logs failures)."""
    results: list = []
    inner = exp.export

    def export(*args, **kwargs):
        result = inner(*args, **kwargs)
        results.append(result)
        return result

    exp.export = export
    return results


def assert_exported(results: list, caplog, what: str) -> None:
    """Every export succeeded; otherwise fail with what the exporter logged (status, message)."""
    failed = [r for r in results if r.name != "SUCCESS"]
    if not results or failed:
        logged = "\n".join(
            f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING
        )
        pytest.fail(f"{what}: the SDK exporter reported {[r.name for r in results] or 'no export'}\n{logged}", pytrace=False)


def resource() -> Resource:
    return Resource.create(RESOURCE_ATTRS)


def target(request, path: str, stack):
    """(OTLP/HTTP base URL, OTLP/gRPC address) of the collector or of the stack's Tempo."""
    if path == "collector":
        c = request.getfixturevalue("collector")
        return c.otlp_http, c.otlp_grpc_addr
    return stack.otlp_http, stack.otlp_grpc_addr


# --- traces -------------------------------------------------------------------------------------


def any_value(v: dict):
    """An OTLP/JSON AnyValue as a Python value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    return v


def attrs(kvs: list) -> dict:
    return {kv["key"]: any_value(kv.get("value", {})) for kv in kvs or []}


def id_hex(v: str) -> str:
    """Span and trace ids come as hex or (Tempo's OTLP/JSON) base64: normalise to hex."""
    if v and all(c in "0123456789abcdefABCDEF" for c in v) and len(v) in (16, 32):
        return v.lower()
    return base64.b64decode(v).hex()


def spans_of(trace: dict) -> list[tuple[dict, dict]]:
    """(resource attributes, span) for every span of a Tempo `/api/traces/<id>` answer."""
    batches = trace.get("batches") or trace.get("resourceSpans") or trace.get("trace", {}).get("resourceSpans") or []
    out = []
    for b in batches:
        res = attrs(b.get("resource", {}).get("attributes"))
        for ss in b.get("scopeSpans") or b.get("instrumentationLibrarySpans") or []:
            for sp in ss.get("spans", []):
                out.append((res, sp))
    return out


@pytest.mark.parametrize("path", ["collector", "direct"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@COMPRESSIONS
def test_traces(request, stack, caplog, path, protocol, gzip):
    http_base, grpc_addr = target(request, path, stack)
    exp = exporter("traces", protocol, gzip, http_base, grpc_addr)
    results = record_results(exp)
    provider = TracerProvider(resource=resource())
    provider.add_span_processor(BatchSpanProcessor(exp))
    tracer = provider.get_tracer("interop.checkout", "1.0.0")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        root.set_attributes({"order.id": "o-42", "items": 3, "express": True, "amount": 12.5})
        with tracer.start_as_current_span("charge-card", kind=SpanKind.CLIENT) as charge:
            charge.add_event("retry", {"attempt": 2})
            charge.set_status(Status(StatusCode.ERROR, "declined"))
        with tracer.start_as_current_span("reserve-stock"):
            pass
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    provider.force_flush(10_000)
    provider.shutdown()
    assert_exported(results, caplog, f"traces over OTLP/{protocol} ({'gzip' if gzip else 'plain'}) to {path}")

    trace = eventually(
        lambda: stack.trace(trace_id),
        f"trace {trace_id} with 3 spans in Tempo's /api/traces",
        ok=lambda t: t is not None and len(spans_of(t)) >= 3,
    )
    spans = spans_of(trace)
    by_name = {sp["name"]: (res, sp) for res, sp in spans}
    assert len(spans) == 3, f"span count: {[sp['name'] for _, sp in spans]}"
    assert set(by_name) == {"checkout", "charge-card", "reserve-stock"}
    res, sp = by_name["checkout"]
    assert res.get("service.name") == "checkout" and res.get("host.name") == "host-a", res
    assert attrs(sp.get("attributes")) == {"order.id": "o-42", "items": 3, "express": True, "amount": 12.5}
    assert id_hex(sp["spanId"]) == root_id
    _, charge_sp = by_name["charge-card"]
    assert id_hex(charge_sp["parentSpanId"]) == root_id
    assert charge_sp.get("status", {}).get("message") == "declined"
    assert [e["name"] for e in charge_sp.get("events", [])] == ["retry"]
    assert attrs(charge_sp["events"][0].get("attributes")) == {"attempt": 2}


# --- metrics ------------------------------------------------------------------------------------


def series_checks(stack, expected: list[tuple[str, float]]) -> list[str]:
    """What differs between the stack's answers and `expected` ((PromQL, value) pairs), each
    failure naming the query and what came back."""
    failures = []
    for promql, want in expected:
        try:
            got = stack.query(promql)
        except ValueError as e:
            failures.append(f"{promql}: {e}")
            continue
        if not got:
            failures.append(f"{promql}: absent")
        elif len(got) != 1:
            failures.append(f"{promql}: {len(got)} series {[g['metric'] for g in got]}")
        elif not math.isclose(float(got[0]["value"][1]), want, rel_tol=1e-9, abs_tol=1e-9):
            failures.append(f"{promql}: {got[0]['value'][1]}, want {want}")
    return failures


def target_info_check(stack) -> list[str]:
    sel = f'target_info{{job="{JOB}",instance="{INSTANCE}"}}'
    got = stack.query(sel)
    if len(got) != 1:
        return [f"{sel}: {len(got)} series {[g['metric'] for g in got]}"]
    labels, value = got[0]["metric"], float(got[0]["value"][1])
    problems = [f"{sel}: label {k}={labels.get(k)!r}, want {v!r}"
                for k, v in {"host_name": "host-a", "deployment_environment": "prod"}.items() if labels.get(k) != v]
    if value != 1:
        problems.append(f"{sel}: value {value}, want 1")
    return problems


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@COMPRESSIONS
def test_metrics(collector, stack, caplog, temporality, protocol, gzip):
    kw = {"preferred_temporality": DELTA} if temporality == "delta" else {}
    exp = exporter("metrics", protocol, gzip, collector.otlp_http, collector.otlp_grpc_addr, **kw)
    results = record_results(exp)
    # A reader that never fires on its own: the test exports twice, explicitly.
    reader = PeriodicExportingMetricReader(exp, export_interval_millis=3_600_000)
    view = View(instrument_name="request.duration", aggregation=ExplicitBucketHistogramAggregation([0.25, 1.0]))
    provider = MeterProvider(resource=resource(), metric_readers=[reader], views=[view])
    meter = provider.get_meter("interop.checkout", "1.0.0")
    requests_ = meter.create_counter("requests", unit="1", description="checkout requests")
    depth = meter.create_up_down_counter("queue.depth", unit="{items}")
    duration = meter.create_histogram("request.duration", unit="s")
    temperature = meter.create_gauge("temperature", unit="Cel")
    export_round = meter.create_gauge("export.round")
    from opentelemetry.metrics import Observation

    meter.create_observable_gauge("cpu.utilization", [lambda _opts: [Observation(0.42)]], unit="1")

    route = {"route": "/checkout"}
    requests_.add(3, route)
    depth.add(5)
    duration.record(0.1)
    duration.record(0.3)
    temperature.set(21.5)
    export_round.set(1)
    provider.force_flush(10_000)
    requests_.add(4, route)
    depth.add(-2)
    duration.record(2.0)
    export_round.set(2)
    provider.force_flush(10_000)
    provider.shutdown()
    assert_exported(results, caplog, f"metrics ({temporality}) over OTLP/{protocol} ({'gzip' if gzip else 'plain'})")

    ident = f'job="{JOB}",instance="{INSTANCE}"'
    expected = [
        (f"export_round{{{ident}}}", 2),
        (f'requests_total{{{ident},route="/checkout"}}', 7),
        (f"queue_depth{{{ident}}}", 3),
        (f"request_duration_seconds_count{{{ident}}}", 3),
        (f"request_duration_seconds_sum{{{ident}}}", 2.4),
        (f'request_duration_seconds_bucket{{{ident},le=~"0.25"}}', 1),
        (f'request_duration_seconds_bucket{{{ident},le=~"1|1.0"}}', 2),
        (f'request_duration_seconds_bucket{{{ident},le="+Inf"}}', 3),
        (f"temperature_celsius{{{ident}}}", 21.5),
        (f"cpu_utilization_ratio{{{ident}}}", 0.42),
    ]

    def problems() -> list[str]:
        found = series_checks(stack, expected) + target_info_check(stack)
        return found

    try:
        eventually(problems, "every metric with its Prometheus name and value", ok=lambda p: p == [])
    except pytest.fail.Exception as e:
        names = sorted(n for n in metric_names(stack.prom))
        raise pytest.fail.Exception(f"{e}\nmetric names in the stack: {names}", pytrace=False) from None


# --- logs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@COMPRESSIONS
def test_logs(collector, stack, caplog, protocol, gzip):
    start = now_ns() - 60 * 10**9
    exp = exporter("logs", protocol, gzip, collector.otlp_http, collector.otlp_grpc_addr)
    results = record_results(exp)
    provider = LoggerProvider(resource=resource())
    provider.add_log_record_processor(SimpleLogRecordProcessor(exp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    app_log = logging.getLogger(f"interop.checkout.{protocol}.{gzip}")
    app_log.propagate = False
    app_log.setLevel(logging.INFO)
    app_log.addHandler(handler)
    tracer = TracerProvider(resource=resource()).get_tracer("interop.checkout")
    try:
        with tracer.start_as_current_span("checkout") as span:
            app_log.warning("payment declined for order %s", "o-42", extra={"order.id": "o-42", "attempt": 2})
        app_log.info("checkout complete")
        provider.force_flush(10_000)
    finally:
        app_log.removeHandler(handler)
        provider.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")
    assert_exported(results, caplog, f"logs over OTLP/{protocol} ({'gzip' if gzip else 'plain'})")

    streams = eventually(
        lambda: stack.loki_query_range('{service_name="checkout"}', start, now_ns() + 10**9),
        'both log lines under {service_name="checkout"} in Loki',
        ok=lambda s: sum(len(x["values"]) for x in s) >= 2,
    )
    lines = {v[1]: x["stream"] for x in streams for v in x["values"]}
    assert set(lines) == {"payment declined for order o-42", "checkout complete"}, lines
    warn = lines["payment declined for order o-42"]
    want = {
        # index labels (Loki's default resource attributes as index labels)
        "service_name": "checkout",
        "service_namespace": "shop",
        "service_instance_id": "pos-1",
        "deployment_environment": "prod",
        # structured metadata: other resource attributes, record attributes, ids, severity
        "host_name": "host-a",
        "order_id": "o-42",
        "attempt": "2",
        "severity_text": "WARN",
        "trace_id": trace_id,
        "span_id": span_id,
    }
    wrong = {k: (warn.get(k), v) for k, v in want.items() if warn.get(k) != v}
    assert not wrong, f"labels/structured metadata (got, want): {wrong}; stream: {warn}"
    assert lines["checkout complete"].get("severity_text") == "INFO"
