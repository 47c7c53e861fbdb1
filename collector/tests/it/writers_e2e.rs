//! The writers over real sockets: each writer against the embedded stack (read back through the
//! stack's query clients), and against fault-injecting endpoints (an axum HTTP server and a tonic
//! gRPC server answering a scripted sequence) proving the retry, drop, timeout and shutdown
//! rules. No assertion is on time; waits are bounded only so that a bug cannot hang the suite.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use collector::event::{
    Labels, LogBatch, LogRecord, MetricBatch, MetricSample, Signal, TraceBatch,
};
use collector::queue;
use collector::selfmon::{ComponentMetrics, Registry};
use collector::writers::{self, AnyWriter, Writer, WriterContext, WriterError};
use parking_lot::Mutex;
use testkit::now_ns;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

// ---------------------------------------------------------------- harness

/// A writer running on its own task, fed through its queue.
struct Running<T> {
    tx: Option<queue::Sender<T>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), WriterError>>,
    m: ComponentMetrics,
}

impl<T: collector::event::Items + Send + 'static> Running<T> {
    fn start(writer: Box<dyn Writer<T>>, drain_timeout: Duration) -> Self {
        let (stop, shutdown) = watch::channel(false);
        let m = ComponentMetrics::new(Registry::new(), "w", "writer");
        let gauges = queue::Gauges {
            items: Some(m.queue_depth()),
            bytes: Some(m.queue_bytes()),
        };
        let (tx, rx) = queue::channel(queue::Bound::batches(16), gauges);
        let ctx = WriterContext {
            name: "w".into(),
            input: rx,
            shutdown,
            metrics: m.clone(),
            drain_timeout,
            durable: false,
        };
        let task = tokio::spawn(writer.run(ctx));
        Running {
            tx: Some(tx),
            stop,
            task,
            m,
        }
    }

    async fn send(&self, batch: T) {
        self.tx.as_ref().unwrap().send(batch).await.ok().unwrap();
    }

    /// Signals shutdown and waits (bounded) for the writer to return.
    async fn shutdown(mut self) -> ComponentMetrics {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the writer returns after shutdown")
            .unwrap()
            .unwrap();
        drop(self.tx.take());
        self.m
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn table(s: &str) -> toml::Table {
    toml::from_str(s).unwrap()
}

fn logs_writer(cfg: &str) -> Box<dyn Writer<LogBatch>> {
    match writers::build("loki", table(cfg)).unwrap() {
        AnyWriter::Logs(w) => w,
        _ => unreachable!(),
    }
}

fn metrics_writer(cfg: &str) -> Box<dyn Writer<MetricBatch>> {
    match writers::build("prometheus_remote_write", table(cfg)).unwrap() {
        AnyWriter::Metrics(w) => w,
        _ => unreachable!(),
    }
}

fn traces_writer(cfg: &str) -> Box<dyn Writer<TraceBatch>> {
    match writers::build("otlp", table(cfg)).unwrap() {
        AnyWriter::Traces(w) => w,
        _ => unreachable!(),
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}{}",
        now_ns() % 1_000_000_007,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn records(job: &str, n: usize, from: i64) -> LogBatch {
    (0..n)
        .map(|i| LogRecord {
            labels: Labels::from_iter([("job", job), ("level", "info")]).into(),
            timestamp_ns: from + i as i64,
            line: format!("line {i} of {job}"),
            structured_metadata: vec![("trace_id".into(), format!("t{i}"))],
            ..Default::default()
        })
        .collect()
}

fn resource_spans(service: &str, trace_id: [u8; 16], names: &[&str]) -> ResourceSpans {
    let start = now_ns() as u64 - 1_000_000;
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(service.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: names
                .iter()
                .enumerate()
                .map(|(i, n)| Span {
                    trace_id: trace_id.to_vec(),
                    span_id: vec![1, 2, 3, 4, 5, 6, 7, i as u8 + 1],
                    name: (*n).into(),
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + 500_000,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

// ---------------------------------------------------------------- against the embedded stack

/// An embedded stack, and a `loki` writer pushing to it.
async fn embedded_loki_writer(
    config: stack::EmbeddedConfig,
) -> (stack::EmbeddedStack, Running<LogBatch>) {
    let stack = stack::EmbeddedStack::start(config).await.unwrap();
    let push = stack.endpoints().loki.join("loki/api/v1/push").unwrap();
    let w = Running::start(
        logs_writer(&format!("url = \"{push}\"\nbatch_wait = \"50ms\"")),
        Duration::from_secs(5),
    );
    (stack, w)
}

/// A Loki range from a second before `t0` to a second from now, oldest first.
fn range_since(t0: i64, limit: u32) -> stack::client::loki::RangeOptions {
    stack::client::loki::RangeOptions {
        start_ns: t0 - 1_000_000_000,
        end_ns: now_ns() + 1_000_000_000,
        limit: Some(limit),
        direction: Some(stack::client::loki::Direction::Forward),
        ..Default::default()
    }
}

#[tokio::test]
async fn loki_writer_to_embedded_loki() {
    let (stack, w) = embedded_loki_writer(stack::EmbeddedConfig::default()).await;
    let job = unique("writer_loki_");
    let t0 = now_ns();
    // Out of order across batches and within: the writer sorts each stream's entries.
    let mut b = records(&job, 5, t0);
    b.reverse();
    w.send(b).await;
    w.send(records(&job, 3, t0 + 100)).await;
    let m = w.m.clone();
    wait_until("8 log lines acknowledged", || {
        m.sent(Signal::Logs).get() == 8
    })
    .await;
    let m = w.shutdown().await;
    assert_eq!(
        m.registry()
            .counter_sum("collector_discarded_items_total", &[]),
        0
    );

    let loki = stack::client::LokiClient::new(stack.endpoints());
    let opts = range_since(t0, 100);
    let res = loki
        .query_range(&format!("{{job=\"{job}\"}}"), &opts)
        .await
        .unwrap();
    let mut lines: Vec<&str> = res.lines();
    lines.sort_unstable();
    let mut want: Vec<String> = (0..5)
        .map(|i| format!("line {i} of {job}"))
        .chain((0..3).map(|i| format!("line {i} of {job}")))
        .collect();
    want.sort_unstable();
    assert_eq!(lines, want);
    // Structured metadata travelled with the entries (filterable, not a stream label).
    let with_meta = loki
        .query_range(&format!("{{job=\"{job}\"}} | trace_id=\"t4\""), &opts)
        .await
        .unwrap();
    assert_eq!(with_meta.lines(), [format!("line 4 of {job}")]);
    let streams = res.streams().unwrap();
    assert!(
        streams
            .iter()
            .all(|s| s.labels.get("level").map(String::as_str) == Some("info"))
    );
}

#[tokio::test]
async fn remote_write_writer_to_embedded_mimir() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let url = &stack.endpoints().prometheus_write;
    let w = Running::start(
        metrics_writer(&format!(
            "url = \"{url}\"\nbatch_wait = \"50ms\"\nshards = 3\nmax_samples_per_send = 4"
        )),
        Duration::from_secs(5),
    );
    let job = unique("w");
    let t0 = now_ns() / 1_000_000 - 60_000;
    let mut batch = Vec::new();
    for series in 0..5 {
        for i in 0..4 {
            batch.push(MetricSample {
                labels: Labels::from_iter([
                    ("__name__", "writer_test_value"),
                    ("job", job.as_str()),
                    ("series", &series.to_string()),
                ])
                .into(),
                value: f64::from(series * 10 + i),
                timestamp_ms: t0 + i64::from(i) * 1000,
            });
        }
    }
    w.send(batch).await;
    let m = w.m.clone();
    wait_until("20 samples acknowledged", || {
        m.sent(Signal::Metrics).get() == 20
    })
    .await;
    let m = w.shutdown().await;
    assert!(
        m.batch_size(Signal::Metrics).count() >= 5,
        "at most 4 per send"
    );

    let prom = stack::client::PromClient::new(stack.endpoints());
    let res = prom
        .query(
            &format!("writer_test_value{{job=\"{job}\"}}"),
            Some((t0 + 3000) as f64 / 1000.0),
        )
        .await
        .unwrap();
    let mut got: Vec<(String, f64)> = res
        .vector()
        .unwrap()
        .iter()
        .map(|s| (s.metric["series"].clone(), s.sample.value))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, f64)> = (0..5)
        .map(|s| (s.to_string(), f64::from(s * 10 + 3)))
        .collect();
    assert_eq!(got, want);
}

/// `compression`: the HTTP path goes with the default (gzip); the gRPC one uncompressed, the
/// embedded Tempo's gRPC port not taking gzip before the stack side of issue 9 (gzip over gRPC
/// is proven against a tonic server in `writer_otlp_compression_gzip_and_none`).
async fn otlp_to_tempo(protocol: &str, compression: &str) {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let url = match protocol {
        "grpc" => format!("http://{}", stack.addrs().otlp_grpc),
        _ => stack.endpoints().tempo_otlp_http.to_string(),
    };
    let w = Running::start(
        traces_writer(&format!(
            "url = \"{url}\"\nprotocol = \"{protocol}\"\n{compression}\nbatch_wait = \"50ms\""
        )),
        Duration::from_secs(5),
    );
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(now_ns() as u64).to_be_bytes());
    trace_id[15] = if protocol == "grpc" { 1 } else { 2 };
    w.send(vec![resource_spans(
        "checkout",
        trace_id,
        &["GET /cart", "SELECT cart"],
    )])
    .await;
    let m = w.m.clone();
    wait_until("2 spans acknowledged", || m.sent(Signal::Traces).get() == 2).await;
    w.shutdown().await;

    let tempo = stack::client::TempoClient::new(stack.endpoints());
    let hex = wire::otlp::trace_id_to_hex(&trace_id);
    let mut found = None;
    for _ in 0..100 {
        if let Some(t) = tempo.trace_by_id(&hex).await.unwrap() {
            found = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trace = found.expect("Tempo has the trace");
    let mut names: Vec<String> = trace
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter().map(|s| s.name.clone()))
        .collect();
    names.sort();
    assert_eq!(names, ["GET /cart", "SELECT cart"]);
}

#[tokio::test]
async fn otlp_grpc_writer_to_embedded_tempo() {
    // The default, gzip, as the OpenTelemetry Collector's exporter sends it.
    otlp_to_tempo("grpc", "").await;
}

#[tokio::test]
async fn otlp_grpc_writer_to_embedded_tempo_uncompressed() {
    otlp_to_tempo("grpc", "compression = \"none\"").await;
}

#[tokio::test]
async fn otlp_http_writer_to_embedded_tempo() {
    otlp_to_tempo("http", "").await;
}

// ---------------------------------------------------------------- fault injection (HTTP)

#[derive(Clone, Copy, Debug)]
enum Step {
    Status(u16),
    /// 429 with `Retry-After: 0`.
    TooMany,
    /// No answer, ever.
    Hang,
    /// 200 with an OTLP partial success rejecting this many spans.
    Partial(i64),
    /// Loki's 400 when its ingester refused this many entries of a stream of that many (and
    /// stored the rest).
    LokiIgnored(u32, u32),
    /// A Remote-Write 2.0 receiver's 400 saying this many samples were written.
    Written(u32),
}

#[derive(Default)]
struct Fault {
    script: Mutex<VecDeque<Step>>,
    requests: AtomicUsize,
    /// Bodies answered with 204.
    accepted: Mutex<Vec<Bytes>>,
    headers: Mutex<Vec<HeaderMap>>,
}

impl Fault {
    fn loki_lines(&self) -> Vec<String> {
        self.accepted
            .lock()
            .iter()
            .flat_map(|b| wire::loki::decode_protobuf(b, 1 << 24).unwrap().streams)
            .flat_map(|s| s.entries.into_iter().map(|e| e.line))
            .collect()
    }
}

async fn fault_handler(State(f): State<Arc<Fault>>, headers: HeaderMap, body: Bytes) -> Response {
    f.requests.fetch_add(1, Ordering::SeqCst);
    f.headers.lock().push(headers);
    let step = f.script.lock().pop_front();
    match step {
        Some(Step::Status(code)) => (
            StatusCode::from_u16(code).unwrap(),
            format!("scripted {code}: entry out of order for stream"),
        )
            .into_response(),
        Some(Step::TooMany) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "ingestion rate limit exceeded",
        )
            .into_response(),
        Some(Step::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Step::LokiIgnored(n, of)) => (
            StatusCode::BAD_REQUEST,
            format!(
                "entry with timestamp 1970-01-01 00:00:00.000001 +0000 UTC ignored, reason: 'entry too far behind',\n\
                 user 'fake', total ignored: {n} out of {of} for stream: {{job=\"p\", level=\"info\"}}"
            ),
        )
            .into_response(),
        Some(Step::Written(n)) => (
            StatusCode::BAD_REQUEST,
            [("x-prometheus-remote-write-samples-written", n.to_string())],
            "out of order sample",
        )
            .into_response(),
        Some(Step::Partial(rejected_spans)) => {
            let resp = wire::otlp::ExportTraceServiceResponse {
                partial_success: Some(
                    wire::otlp::proto::collector::trace::v1::ExportTracePartialSuccess {
                        rejected_spans,
                        error_message: "span too old".into(),
                    },
                ),
            };
            (
                StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                prost::Message::encode_to_vec(&resp),
            )
                .into_response()
        }
        None => {
            f.accepted.lock().push(body);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn fault_server(script: &[Step]) -> (String, Arc<Fault>) {
    let fault = Arc::new(Fault::default());
    fault.script.lock().extend(script.iter().copied());
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(fault_handler))
        .with_state(fault.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), fault)
}

fn fast_loki(base: &str, extra: &str) -> Box<dyn Writer<LogBatch>> {
    logs_writer(&format!(
        "url = \"{base}/loki/api/v1/push\"\nbatch_wait = \"20ms\"\nmin_backoff = \"10ms\"\nmax_backoff = \"50ms\"\nmax_retries = 5\ntimeout = \"300ms\"\n{extra}"
    ))
}

fn discarded(m: &ComponentMetrics) -> u64 {
    m.registry()
        .counter_sum("collector_discarded_items_total", &[])
}

#[tokio::test]
async fn writer_http_429_then_200_is_retried_and_nothing_is_lost() {
    let (base, fault) = fault_server(&[Step::TooMany]).await;
    let w = Running::start(
        fast_loki(
            &base,
            "tenant_id = \"team-a\"\nbasic_auth = { username = \"u\", password = \"secret\" }\nheaders = { \"X-Extra\" = \"1\" }",
        ),
        Duration::from_secs(5),
    );
    w.send(records("a", 3, 1_000)).await;
    let m = w.m.clone();
    wait_until("3 lines sent", || m.sent(Signal::Logs).get() == 3).await;
    let m = w.shutdown().await;
    assert_eq!(fault.loki_lines().len(), 3);
    assert_eq!(m.retries().get(), 1);
    assert_eq!(m.request_duration("4xx").count(), 1);
    assert_eq!(discarded(&m), 0);
    let headers = fault.headers.lock();
    for h in headers.iter() {
        assert_eq!(h["content-type"], "application/x-protobuf");
        assert_eq!(h["x-scope-orgid"], "team-a");
        assert_eq!(h["authorization"], "Basic dTpzZWNyZXQ=");
        assert_eq!(h["x-extra"], "1");
        assert!(h["user-agent"].to_str().unwrap().starts_with("collector/"));
    }
}

#[tokio::test]
async fn writer_http_500_500_200_is_retried_and_nothing_is_lost() {
    let (base, fault) = fault_server(&[Step::Status(500), Step::Status(503)]).await;
    let w = Running::start(fast_loki(&base, ""), Duration::from_secs(5));
    w.send(records("a", 4, 1_000)).await;
    let m = w.m.clone();
    wait_until("4 lines sent", || m.sent(Signal::Logs).get() == 4).await;
    let m = w.shutdown().await;
    let mut lines = fault.loki_lines();
    lines.sort();
    assert_eq!(
        lines,
        (0..4).map(|i| format!("line {i} of a")).collect::<Vec<_>>()
    );
    assert_eq!(m.retries().get(), 2);
    assert_eq!(m.request_duration("5xx").count(), 2);
    assert_eq!(fault.requests.load(Ordering::SeqCst), 3);
    assert_eq!(discarded(&m), 0);
}

#[tokio::test]
async fn writer_http_400_is_dropped_counted_and_the_queue_keeps_moving() {
    let (base, fault) = fault_server(&[Step::Status(400)]).await;
    let w = Running::start(fast_loki(&base, ""), Duration::from_secs(5));
    w.send(records("bad", 2, 1_000)).await;
    let m = w.m.clone();
    wait_until("the refused batch counted", || {
        m.discarded(Signal::Logs, "http_400").get() == 2
    })
    .await;
    w.send(records("good", 3, 2_000)).await;
    wait_until("the next batch sent", || m.sent(Signal::Logs).get() == 3).await;
    let m = w.shutdown().await;
    assert_eq!(m.retries().get(), 0, "a 400 is not retried");
    assert_eq!(
        fault.loki_lines(),
        (0..3)
            .map(|i| format!("line {i} of good"))
            .collect::<Vec<_>>()
    );
}

/// Loki stored 100 of 101 entries and said so: 100 sent, 1 refused, not 101 discarded.
#[tokio::test]
async fn writer_loki_partial_refusal_is_counted_per_entry() {
    let (base, _fault) = fault_server(&[Step::LokiIgnored(1, 101)]).await;
    let w = Running::start(fast_loki(&base, ""), Duration::from_secs(5));
    w.send(records("p", 101, 1_000)).await;
    let m = w.m.clone();
    wait_until("the push accounted", || {
        m.sent(Signal::Logs).get() + m.discarded(Signal::Logs, "http_400").get() == 101
    })
    .await;
    let m = w.shutdown().await;
    assert_eq!(m.sent(Signal::Logs).get(), 100);
    assert_eq!(m.discarded(Signal::Logs, "http_400").get(), 1);
    assert_eq!(m.retries().get(), 0, "a partial refusal is not retried");
    assert_eq!(discarded(&m), 1);
}

/// The same against the embedded Loki's distributor, which words its validation errors as
/// Loki's does (grouped, with counts): 3 lines of 101 over `max_line_size` are refused and
/// counted as such, the other 98 stored and counted as sent.
#[tokio::test]
async fn writer_loki_validation_refusal_is_counted_per_entry() {
    let (stack, w) = embedded_loki_writer(stack::EmbeddedConfig {
        max_line_size: 64,
        ..Default::default()
    })
    .await;
    let job = unique("partial_");
    let t0 = now_ns();
    let mut batch = records(&job, 101, t0);
    for i in [7, 50, 99] {
        batch[i].line = "x".repeat(100);
    }
    w.send(batch).await;
    let m = w.m.clone();
    wait_until("the push accounted", || {
        m.sent(Signal::Logs).get() + m.discarded(Signal::Logs, "http_400").get() == 101
    })
    .await;
    let m = w.shutdown().await;
    assert_eq!(m.sent(Signal::Logs).get(), 98);
    assert_eq!(m.discarded(Signal::Logs, "http_400").get(), 3);
    let res = stack::client::LokiClient::new(stack.endpoints())
        .query_range(&format!("{{job=\"{job}\"}}"), &range_since(t0, 1000))
        .await
        .unwrap();
    assert_eq!(res.lines().len(), 98);
}

/// A remote-write 400 that says how many samples were written is split the same way; one
/// that does not is counted as refused whole (the writer cannot know what was stored).
#[tokio::test]
async fn writer_remote_write_partial_refusal_uses_samples_written() {
    let (base, _fault) = fault_server(&[Step::Written(7), Step::Status(400)]).await;
    let w = Running::start(
        metrics_writer(&format!(
            "url = \"{base}/api/v1/push\"\nbatch_wait = \"10ms\"\nmax_samples_per_send = 10"
        )),
        Duration::from_secs(5),
    );
    let batch = |from: i64| -> MetricBatch {
        (0..10)
            .map(|i| MetricSample {
                labels: Labels::from_iter([("__name__", "x"), ("i", &i.to_string())]).into(),
                value: 1.0,
                timestamp_ms: from + i,
            })
            .collect()
    };
    w.send(batch(1_000)).await;
    let m = w.m.clone();
    wait_until("the first request accounted", || {
        m.discarded(Signal::Metrics, "http_400").get() == 3
    })
    .await;
    w.send(batch(2_000)).await;
    wait_until("the second request accounted", || {
        m.discarded(Signal::Metrics, "http_400").get() == 13
    })
    .await;
    let m = w.shutdown().await;
    assert_eq!(m.sent(Signal::Metrics).get(), 7);
}

#[tokio::test]
async fn writer_a_hanging_backend_times_out_and_is_retried() {
    let (base, fault) = fault_server(&[Step::Hang]).await;
    let w = Running::start(fast_loki(&base, ""), Duration::from_secs(5));
    w.send(records("slow", 2, 1_000)).await;
    let m = w.m.clone();
    wait_until("2 lines sent", || m.sent(Signal::Logs).get() == 2).await;
    let m = w.shutdown().await;
    assert_eq!(m.request_duration("error").count(), 1, "the hang timed out");
    assert_eq!(m.retries().get(), 1);
    assert_eq!(fault.loki_lines().len(), 2);
    assert_eq!(discarded(&m), 0);
}

#[tokio::test]
async fn writer_retries_are_capped_and_what_is_given_up_is_counted() {
    let (base, fault) = fault_server(&[Step::Status(502); 10]).await;
    let w = Running::start(fast_loki(&base, ""), Duration::from_secs(5));
    w.send(records("x", 2, 1_000)).await;
    let m = w.m.clone();
    wait_until("the batch given up", || {
        m.discarded(Signal::Logs, "retries_exhausted").get() == 2
    })
    .await;
    let m = w.shutdown().await;
    assert_eq!(m.retries().get(), 5);
    assert_eq!(
        fault.requests.load(Ordering::SeqCst),
        6,
        "1 try + max_retries"
    );
    assert_eq!(m.sent(Signal::Logs).get(), 0);
}

#[tokio::test]
async fn writer_shutdown_flushes_what_is_batched() {
    let (base, fault) = fault_server(&[]).await;
    // A batch_wait far away: only the shutdown can flush these.
    let w = Running::start(
        logs_writer(&format!(
            "url = \"{base}/loki/api/v1/push\"\nbatch_wait = \"1h\""
        )),
        Duration::from_secs(10),
    );
    w.send(records("late", 5, 1_000)).await;
    let m = w.m.clone();
    wait_until("the queue taken", || m.queue_depth().get() == 0).await;
    let m = w.shutdown().await;
    assert_eq!(m.sent(Signal::Logs).get(), 5);
    assert_eq!(fault.loki_lines().len(), 5);
}

#[tokio::test]
async fn writer_shutdown_against_a_hung_backend_counts_the_rest_as_shutdown() {
    let (base, _fault) = fault_server(&[Step::Hang; 100]).await;
    let w = Running::start(
        logs_writer(&format!(
            "url = \"{base}/loki/api/v1/push\"\nbatch_wait = \"10ms\"\nbatch_size = 30\ntimeout = \"1h\"\nmax_retries = 1000"
        )),
        Duration::from_millis(300),
    );
    // Each record weighs ~30 bytes: several batches, the first stuck in flight.
    for i in 0..4 {
        w.send(records(&format!("s{i}"), 3, 1_000)).await;
    }
    let m = w.m.clone();
    wait_until("a request in flight", || {
        m.batch_size(Signal::Logs).count() >= 1
    })
    .await;
    let m = w.shutdown().await;
    assert_eq!(m.sent(Signal::Logs).get(), 0);
    assert_eq!(m.discarded(Signal::Logs, "shutdown").get(), 12);
}

// ---------------------------------------------------------------- remote write headers

#[tokio::test]
async fn writer_remote_write_sends_the_spec_headers_and_drops_400() {
    let (base, fault) = fault_server(&[Step::Status(400)]).await;
    let w = Running::start(
        metrics_writer(&format!(
            "url = \"{base}/api/v1/push\"\nbatch_wait = \"20ms\"\nbearer_token = \"tok\"\ntenant_id = \"t1\""
        )),
        Duration::from_secs(5),
    );
    let sample = |v: f64| MetricSample {
        labels: Labels::from_iter([("__name__", "m"), ("a", "b")]).into(),
        value: v,
        timestamp_ms: 1_000 + v as i64,
    };
    w.send(vec![sample(1.0), sample(2.0)]).await;
    let m = w.m.clone();
    wait_until("the 400 counted", || {
        m.discarded(Signal::Metrics, "http_400").get() == 2
    })
    .await;
    w.send(vec![sample(4.0), sample(3.0)]).await;
    wait_until("2 samples sent", || m.sent(Signal::Metrics).get() == 2).await;
    let m = w.shutdown().await;
    assert_eq!(m.retries().get(), 0);
    let bodies = fault.accepted.lock();
    let req = wire::remote_write::decode(&bodies[0], 1 << 20).unwrap();
    assert_eq!(req.timeseries.len(), 1);
    let ts: Vec<i64> = req.timeseries[0]
        .samples
        .iter()
        .map(|s| s.timestamp)
        .collect();
    assert_eq!(ts, [1_003, 1_004], "samples in time order");
    for h in fault.headers.lock().iter() {
        assert_eq!(h["content-encoding"], "snappy");
        assert_eq!(h["content-type"], "application/x-protobuf");
        assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(h["authorization"], "Bearer tok");
        assert_eq!(h["x-scope-orgid"], "t1");
        assert!(h.contains_key("user-agent"));
    }
}

// ---------------------------------------------------------------- fault injection (gRPC)

mod grpc_fault {
    use super::*;
    use wire::otlp::grpc::{TraceService, TraceServiceServer};
    use wire::otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse};

    #[derive(Default)]
    pub struct GrpcFault {
        pub script: Mutex<VecDeque<tonic::Code>>,
        pub accepted_spans: AtomicUsize,
        pub tenants: Mutex<Vec<String>>,
    }

    struct Svc(Arc<GrpcFault>);

    #[tonic::async_trait]
    impl TraceService for Svc {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            if let Some(t) = request.metadata().get("x-scope-orgid") {
                self.0.tenants.lock().push(t.to_str().unwrap().to_string());
            }
            let step = self.0.script.lock().pop_front();
            if let Some(code) = step {
                return Err(tonic::Status::new(code, "scripted failure"));
            }
            let spans: usize = request
                .get_ref()
                .resource_spans
                .iter()
                .flat_map(|rs| rs.scope_spans.iter())
                .map(|ss| ss.spans.len())
                .sum();
            self.0.accepted_spans.fetch_add(spans, Ordering::SeqCst);
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    /// A server that accepts gzip-compressed requests, as the OTel Collector and Tempo do.
    pub async fn start(script: &[tonic::Code]) -> (String, Arc<GrpcFault>) {
        start_with(script, true).await
    }

    /// `accept_gzip = false`: a server built without compression, which answers a compressed
    /// request UNIMPLEMENTED.
    pub async fn start_with(script: &[tonic::Code], accept_gzip: bool) -> (String, Arc<GrpcFault>) {
        let fault = Arc::new(GrpcFault::default());
        fault.script.lock().extend(script.iter().copied());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let svc = TraceServiceServer::new(Svc(fault.clone()));
        let svc = match accept_gzip {
            true => svc.accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            false => svc,
        };
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        (format!("http://{addr}"), fault)
    }
}

#[tokio::test]
async fn writer_otlp_grpc_retries_unavailable_and_drops_invalid_argument() {
    use tonic::Code;
    let (url, fault) = grpc_fault::start(&[Code::Unavailable, Code::ResourceExhausted]).await;
    let w = Running::start(
        traces_writer(&format!(
            "url = \"{url}\"\nbatch_wait = \"20ms\"\nmin_backoff = \"10ms\"\nmax_backoff = \"50ms\"\ntenant_id = \"t9\""
        )),
        Duration::from_secs(5),
    );
    w.send(vec![resource_spans("a", [7; 16], &["x", "y", "z"])])
        .await;
    let m = w.m.clone();
    wait_until("3 spans sent", || m.sent(Signal::Traces).get() == 3).await;
    assert_eq!(m.retries().get(), 2);
    fault.script.lock().push_back(Code::InvalidArgument);
    w.send(vec![resource_spans("a", [8; 16], &["bad"])]).await;
    wait_until("the refused span counted", || {
        m.discarded(Signal::Traces, "grpc_invalid_argument").get() == 1
    })
    .await;
    w.send(vec![resource_spans("a", [9; 16], &["after"])]).await;
    wait_until("4 spans sent", || m.sent(Signal::Traces).get() == 4).await;
    let m = w.shutdown().await;
    assert_eq!(m.retries().get(), 2, "INVALID_ARGUMENT is not retried");
    assert_eq!(fault.accepted_spans.load(Ordering::SeqCst), 4);
    assert!(fault.tenants.lock().iter().all(|t| t == "t9"));
}

#[tokio::test]
async fn writer_otlp_http_retries_503_and_counts_a_partial_success() {
    let (base, fault) = fault_server(&[Step::Status(503), Step::Partial(1)]).await;
    let w = Running::start(
        traces_writer(&format!(
            "url = \"{base}\"\nprotocol = \"http\"\nbatch_wait = \"20ms\"\nmin_backoff = \"10ms\"\nmax_backoff = \"50ms\""
        )),
        Duration::from_secs(5),
    );
    w.send(vec![resource_spans("a", [3; 16], &["x", "y", "z"])])
        .await;
    let m = w.m.clone();
    wait_until("the partial success counted", || {
        m.discarded(Signal::Traces, "rejected").get() == 1
    })
    .await;
    w.send(vec![resource_spans("a", [4; 16], &["w"])]).await;
    wait_until("3 spans sent", || m.sent(Signal::Traces).get() == 3).await;
    let m = w.shutdown().await;
    assert_eq!(m.retries().get(), 1);
    let bodies = fault.accepted.lock();
    // gzip by default, as the OTel Collector's otlphttp exporter.
    let body = wire::compression::gzip_decompress(&bodies[0], 1 << 20).unwrap();
    let req: wire::otlp::ExportTraceServiceRequest =
        wire::otlp::decode(&body, wire::otlp::Encoding::Protobuf).unwrap();
    assert_eq!(req.resource_spans[0].scope_spans[0].spans[0].name, "w");
    assert!(fault.headers.lock().iter().all(|h| {
        h["content-type"] == "application/x-protobuf" && h["content-encoding"] == "gzip"
    }));
}

/// `compression`: gzip (the default) reaches a gRPC server only if it accepts gzip (a server
/// without compression answers UNIMPLEMENTED: proof the message went compressed); `none`
/// reaches either; over HTTP `none` sends a plain body without `Content-Encoding`.
#[tokio::test]
async fn writer_otlp_compression_gzip_and_none() {
    let fast = "batch_wait = \"20ms\"\nmin_backoff = \"10ms\"\nmax_backoff = \"50ms\"";
    for (accept_gzip, compression, arrives) in [
        (true, "gzip", true),
        (false, "gzip", false),
        (false, "none", true),
    ] {
        let (url, fault) = grpc_fault::start_with(&[], accept_gzip).await;
        let w = Running::start(
            traces_writer(&format!(
                "url = \"{url}\"\ncompression = \"{compression}\"\n{fast}"
            )),
            Duration::from_secs(5),
        );
        w.send(vec![resource_spans("a", [5; 16], &["x", "y"])])
            .await;
        let m = w.m.clone();
        let what = format!("{compression} into a server accepting gzip: {accept_gzip}");
        wait_until(&what, || m.sent(Signal::Traces).get() + discarded(&m) == 2).await;
        w.shutdown().await;
        let want = if arrives { 2 } else { 0 };
        assert_eq!(fault.accepted_spans.load(Ordering::SeqCst), want, "{what}");
        if !arrives {
            assert_eq!(m.discarded(Signal::Traces, "grpc_unimplemented").get(), 2);
        }
    }

    let (base, fault) = fault_server(&[]).await;
    let w = Running::start(
        traces_writer(&format!(
            "url = \"{base}\"\nprotocol = \"http\"\ncompression = \"none\"\n{fast}"
        )),
        Duration::from_secs(5),
    );
    w.send(vec![resource_spans("a", [6; 16], &["plain"])]).await;
    let m = w.m.clone();
    wait_until("1 span sent", || m.sent(Signal::Traces).get() == 1).await;
    w.shutdown().await;
    let req: wire::otlp::ExportTraceServiceRequest =
        wire::otlp::decode(&fault.accepted.lock()[0], wire::otlp::Encoding::Protobuf).unwrap();
    assert_eq!(req.resource_spans[0].scope_spans[0].spans[0].name, "plain");
    assert!(fault.headers.lock()[0].get("content-encoding").is_none());
}
