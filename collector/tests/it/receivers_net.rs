//! The network receivers over real sockets: each test builds a source from its TOML, runs it on
//! port 0 with outputs over channels the test holds, sends real requests (reqwest, the tonic
//! OTLP clients) and checks the answers and the batches that arrive.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use collector::event::{LogBatch, MetricBatch, Signal, TraceBatch};
use collector::output::{Output, Target, WhenFull};
use collector::queue;
use collector::selfmon::{ComponentMetrics, Registry};
use collector::sources::otlp::test_data::{logs_request, metrics_request, traces_request};
use collector::sources::otlp::{RETRY_INFO_TYPE_URL, RpcStatus};
use collector::sources::{ListenAddrs, Outputs, SourceContext, SourceError};
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wire::otlp::grpc::{LogsServiceClient, MetricsServiceClient, TraceServiceClient};
use wire::otlp::{
    Encoding, ExportLogsServiceResponse, ExportMetricsServiceResponse, ExportTraceServiceResponse,
};

const NAME: &str = "rx";

/// A running source and the ends of its outputs.
struct Harness {
    addrs: ListenAddrs,
    logs: queue::Receiver<LogBatch>,
    metrics: queue::Receiver<MetricBatch>,
    traces: queue::Receiver<TraceBatch>,
    registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), SourceError>>,
    http: reqwest::Client,
}

fn target<T>(tx: queue::Sender<T>) -> Vec<Target<T>> {
    vec![Target {
        tx,
        when_full: WhenFull::Block,
        name: "test".into(),
    }]
}

impl Harness {
    /// Builds `kind` from `settings` (listening on port 0), downstream queues of `capacity`.
    async fn start(kind: &str, settings: &str, capacity: usize) -> Harness {
        let mut table: toml::Table = toml::from_str(settings).unwrap();
        let keys: &[&str] = if kind == "otlp" {
            &["http_address", "grpc_address"]
        } else {
            &["address"]
        };
        for key in keys {
            table.insert(key.to_string(), toml::Value::String("127.0.0.1:0".into()));
        }
        let source = collector::sources::build(kind, table).unwrap();
        let registry = Registry::new();
        let m = ComponentMetrics::new(registry.clone(), NAME, "source");
        let (ltx, logs) = queue::bounded(capacity);
        let (mtx, metrics) = queue::bounded(capacity);
        let (ttx, traces) = queue::bounded(capacity);
        let outputs = Outputs {
            logs: Output::new(Signal::Logs, target(ltx), m.clone()),
            metrics: Output::new(Signal::Metrics, target(mtx), m.clone()),
            traces: Output::new(Signal::Traces, target(ttx), m.clone()),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let addrs = ListenAddrs::default();
        let ctx = SourceContext {
            name: NAME.into(),
            outputs,
            shutdown: shutdown_rx,
            metrics: m,
            data_dir: std::env::temp_dir(),
            listen_addrs: addrs.clone(),
            started: collector::sources::Started::new().0,
        };
        let task = tokio::spawn(source.run(ctx));
        let h = Harness {
            addrs,
            logs,
            metrics,
            traces,
            registry,
            shutdown,
            task,
            http: reqwest::Client::new(),
        };
        h.wait_for(NAME).await;
        if kind == "otlp" && !settings.contains("grpc_enabled = false") {
            h.wait_for(&format!("{NAME}.grpc")).await;
        }
        h
    }

    async fn wait_for(&self, key: &str) -> SocketAddr {
        for _ in 0..500 {
            if let Some(a) = self.addrs.get(key) {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{key} never listened");
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.get(NAME).unwrap())
    }

    fn grpc_url(&self) -> String {
        format!(
            "http://{}",
            self.addrs.get(&format!("{NAME}.grpc")).unwrap()
        )
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    fn discarded(&self, reason: &str) -> u64 {
        self.registry.counter_sum(
            "collector_discarded_items_total",
            &[("component", NAME), ("reason", reason)],
        )
    }

    fn received(&self, signal: &str) -> u64 {
        self.registry.counter_sum(
            "collector_received_items_total",
            &[("component", NAME), ("signal", signal)],
        )
    }

    /// Stops the source and checks it returns cleanly.
    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("source stops on shutdown")
            .unwrap();
        res.unwrap();
    }
}

async fn recv<T>(rx: &mut queue::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a batch arrives")
        .unwrap()
}

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

// ---- OTLP ---------------------------------------------------------------------------------------

#[tokio::test]
async fn receiver_otlp_http_protobuf_and_json_gzip_for_all_signals() {
    let settings = "promote_resource_attributes = [\"deployment.environment\"]";
    let mut h = Harness::start("otlp", settings, 8).await;

    // Traces, protobuf: passed on as received.
    let req = traces_request();
    let resp = h.post("/v1/traces", &[PROTOBUF], req.encode_to_vec()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let body = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body.partial_success, None);
    assert_eq!(recv(&mut h.traces).await, req.resource_spans);

    // Logs, JSON + gzip: converted with Loki's OTLP mapping; the answer is JSON.
    let json = wire::otlp::encode(&logs_request(), Encoding::Json).unwrap();
    let resp = h
        .post(
            "/v1/logs",
            &[JSON, ("content-encoding", "gzip")],
            wire::compression::gzip_compress(&json),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: ExportLogsServiceResponse =
        wire::otlp::decode(&resp.bytes().await.unwrap(), Encoding::Json).unwrap();
    assert_eq!(body.partial_success, None);
    let logs = recv(&mut h.logs).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].labels.get("service_name"), Some("pos-checkout"));
    assert_eq!(logs[0].line, "checkout completed");
    assert!(
        logs[0]
            .structured_metadata
            .contains(&("trace_id".into(), "5b8efff798038103d269b633813fc60c".into()))
    );

    // Metrics, protobuf: a partial success for the exponential histogram (the delta sum is
    // made cumulative).
    let resp = h
        .post(
            "/v1/metrics",
            &[PROTOBUF],
            metrics_request().encode_to_vec(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body = ExportMetricsServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    let partial = body.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("exponential"),
        "{}",
        partial.error_message
    );
    let samples = recv(&mut h.metrics).await;
    let counter = samples
        .iter()
        .find(|s| s.name() == Some("pos_checkout_transactions_total"))
        .unwrap();
    assert_eq!(counter.value, 17.0);
    assert_eq!(counter.labels.get("job"), Some("retail/pos-checkout"));
    assert_eq!(counter.labels.get("instance"), Some("till-07"));
    assert_eq!(counter.labels.get("deployment_environment"), Some("prod"));
    assert!(
        samples
            .iter()
            .any(|s| s.name() == Some("pos_checkout_duration_seconds_bucket"))
    );
    assert_eq!(h.discarded("invalid"), 1);
    let reads = samples
        .iter()
        .find(|s| s.name() == Some("pos_scanner_reads_total"))
        .unwrap();
    assert_eq!(reads.value, 3.0);
    let info = samples
        .iter()
        .find(|s| s.name() == Some("target_info"))
        .unwrap();
    assert_eq!(info.labels.get("host_name"), Some("till-07"));
    assert_eq!(h.received("traces"), 2);
    assert_eq!(h.received("logs"), 2);

    let ready = h.http.get(h.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn receiver_otlp_grpc_all_services() {
    let mut h = Harness::start("otlp", "", 8).await;
    let mut traces = TraceServiceClient::connect(h.grpc_url()).await.unwrap();
    let resp = traces.export(traces_request()).await.unwrap().into_inner();
    assert_eq!(resp.partial_success, None);
    assert_eq!(recv(&mut h.traces).await, traces_request().resource_spans);

    let mut logs = LogsServiceClient::connect(h.grpc_url()).await.unwrap();
    logs.export(logs_request()).await.unwrap();
    assert_eq!(recv(&mut h.logs).await.len(), 2);

    let mut metrics = MetricsServiceClient::connect(h.grpc_url()).await.unwrap();
    let resp = metrics
        .export(metrics_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.partial_success.unwrap().rejected_data_points, 1);
    assert!(!recv(&mut h.metrics).await.is_empty());
    drop((traces, logs, metrics));
    h.stop().await;
}

/// What the OpenTelemetry SDKs, the OTel Collector and Alloy send by default: gzip-compressed
/// gRPC messages (and zstd, which the OTel Collector offers).
#[tokio::test]
async fn receiver_otlp_grpc_gzip_and_zstd_requests_arrive() {
    use tonic::codec::CompressionEncoding;
    let mut h = Harness::start("otlp", "", 8).await;
    for enc in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut traces = TraceServiceClient::connect(h.grpc_url())
            .await
            .unwrap()
            .send_compressed(enc);
        traces.export(traces_request()).await.unwrap();
        assert_eq!(recv(&mut h.traces).await, traces_request().resource_spans);
        let mut logs = LogsServiceClient::connect(h.grpc_url())
            .await
            .unwrap()
            .send_compressed(enc);
        logs.export(logs_request()).await.unwrap();
        assert_eq!(recv(&mut h.logs).await.len(), 2, "{enc}");
        let mut metrics = MetricsServiceClient::connect(h.grpc_url())
            .await
            .unwrap()
            .send_compressed(enc);
        metrics.export(metrics_request()).await.unwrap();
        let samples = recv(&mut h.metrics).await;
        assert!(
            samples
                .iter()
                .any(|s| s.name() == Some("pos_checkout_transactions_total")),
            "{enc}"
        );
    }
    assert_eq!(h.received("traces"), 4);
    assert_eq!(h.received("logs"), 4);
    // An encoding nobody offered is UNIMPLEMENTED, as gRPC specifies.
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    let (code, message) = raw_grpc_with(&h, path, b"x", &[("grpc-encoding", "br")], 1).await;
    assert_eq!(code, "12", "{message}");
    h.stop().await;
}

/// A gzip-compressed OTLP/HTTP protobuf export of metrics arrives; an unknown
/// `Content-Encoding` is a 400 naming what is supported.
#[tokio::test]
async fn receiver_otlp_http_gzip_protobuf_metrics_and_unknown_encoding() {
    let mut h = Harness::start("otlp", "grpc_enabled = false", 8).await;
    let body = wire::compression::gzip_compress(&metrics_request().encode_to_vec());
    let headers = [PROTOBUF, ("content-encoding", "gzip")];
    let resp = h.post("/v1/metrics", &headers, body).await;
    assert_eq!(resp.status(), 200);
    let samples = recv(&mut h.metrics).await;
    let counter = samples
        .iter()
        .find(|s| s.name() == Some("pos_checkout_transactions_total"))
        .unwrap();
    assert_eq!(counter.value, 17.0);
    let headers = [PROTOBUF, ("content-encoding", "br")];
    let resp = h
        .post("/v1/metrics", &headers, metrics_request().encode_to_vec())
        .await;
    assert_eq!(resp.status(), 400);
    let status = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("gzip"), "{}", status.message);
    h.stop().await;
}

#[tokio::test]
async fn receiver_otlp_bad_payloads_are_4xx_and_the_server_keeps_serving() {
    let h = Harness::start("otlp", "max_body_bytes = 4096\ngrpc_enabled = false", 8).await;
    assert!(h.addrs.get("rx.grpc").is_none());

    // Garbage protobuf: 400 with a google.rpc.Status in protobuf.
    let garbage = b"\xff\xff\xff garbage".to_vec();
    let resp = h.post("/v1/traces", &[PROTOBUF], garbage).await;
    assert_eq!(resp.status(), 400);
    let status = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.contains("protobuf"), "{}", status.message);

    // Bad JSON: 400 with the Status in JSON.
    let resp = h
        .post("/v1/logs", &[JSON], b"{\"resourceLogs\": [".to_vec())
        .await;
    assert_eq!(resp.status(), 400);
    let status: RpcStatus = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("json"), "{}", status.message);

    // Not gzip although it says so.
    let headers = [PROTOBUF, ("content-encoding", "gzip")];
    let resp = h.post("/v1/metrics", &headers, b"plain".to_vec()).await;
    assert_eq!(resp.status(), 400);

    // Wrong media type: 415.
    let headers = [("content-type", "text/plain")];
    let resp = h.post("/v1/traces", &headers, b"hi".to_vec()).await;
    assert_eq!(resp.status(), 415);

    // Too large: 413.
    let resp = h.post("/v1/traces", &[PROTOBUF], vec![0u8; 10_000]).await;
    assert_eq!(resp.status(), 413);

    assert_eq!(h.discarded("decode_error"), 3);
    assert_eq!(h.discarded("unsupported_media_type"), 1);
    assert_eq!(h.discarded("too_large"), 1);

    // Still serving.
    let resp = h
        .post("/v1/traces", &[PROTOBUF], traces_request().encode_to_vec())
        .await;
    assert_eq!(resp.status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn receiver_otlp_full_queue_is_429_and_resource_exhausted_with_retry_info() {
    let h = Harness::start("otlp", "", 1).await;
    let body = traces_request().encode_to_vec();
    let first = h.post("/v1/traces", &[PROTOBUF], body.clone()).await;
    assert_eq!(first.status(), 200);
    // The queue (capacity 1) is full and nobody drains it.
    let resp = h.post("/v1/traces", &[PROTOBUF], body).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let status = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 8); // RESOURCE_EXHAUSTED, as on gRPC

    let mut client = TraceServiceClient::connect(h.grpc_url()).await.unwrap();
    let err = client.export(traces_request()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    let details = RpcStatus::decode(err.details()).unwrap();
    assert_eq!(details.details[0].type_url, RETRY_INFO_TYPE_URL);
    assert_eq!(h.discarded("backpressure"), 4); // two spans, twice
    drop(client);
    h.stop().await;
}

/// A raw gRPC unary call over HTTP/2 (what a client with a broken encoder would send); returns
/// the `grpc-status` and `grpc-message`.
async fn raw_grpc(h: &Harness, path: &str, payload: &[u8]) -> (String, String) {
    raw_grpc_with(h, path, payload, &[], 0).await
}

/// [`raw_grpc`] with extra headers and the message's compressed flag.
async fn raw_grpc_with(
    h: &Harness,
    path: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
    compressed: u8,
) -> (String, String) {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut body = vec![compressed];
    body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    body.extend_from_slice(payload);
    let req = client
        .post(format!("{}{path}", h.grpc_url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    let resp = headers
        .iter()
        .fold(req, |r, (k, v)| r.header(*k, *v))
        .body(body)
        .send()
        .await
        .unwrap();
    let get = |k: &str| {
        resp.headers()
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (get("grpc-status"), get("grpc-message"))
}

#[tokio::test]
async fn receiver_otlp_grpc_bad_protobuf_is_invalid_argument() {
    let h = Harness::start("otlp", "", 8).await;
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    let (code, message) = raw_grpc(&h, path, b"\xff\xff\xff garbage").await;
    assert_eq!(code, "3", "{message}");
    assert!(message.contains("protobuf"), "{message}");
    assert_eq!(h.discarded("decode_error"), 1);
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Nope";
    assert_eq!(raw_grpc(&h, path, b"").await.0, "12"); // UNIMPLEMENTED
    // Still serving.
    let mut logs = LogsServiceClient::connect(h.grpc_url()).await.unwrap();
    logs.export(logs_request()).await.unwrap();
    drop(logs);
    h.stop().await;
}

// ---- Loki push ----------------------------------------------------------------------------------

fn loki_push() -> wire::loki::PushRequest {
    let mut e = wire::loki::Entry::new(
        1_700_000_000_000_000_000,
        "checkout completed till=07 total=12.50",
    );
    e.structured_metadata.push(wire::loki::LabelPair {
        name: "trace_id".into(),
        value: "5b8efff798038103d269b633813fc60c".into(),
    });
    let printed = wire::loki::Entry::new(1_700_000_001_000_000_000, "receipt printed");
    wire::loki::PushRequest {
        streams: vec![wire::loki::Stream {
            labels: r#"{service_name="pos-checkout", env="prod"}"#.into(),
            entries: vec![e, printed],
            hash: 0,
        }],
    }
}

const PUSH: &str = "/loki/api/v1/push";

#[tokio::test]
async fn receiver_loki_push_protobuf_and_json_gzip() {
    let settings = "labels = { source = \"pos\" }\nuse_incoming_timestamp = true";
    let mut h = Harness::start("loki_push", settings, 8).await;
    let body = wire::loki::encode_protobuf(&loki_push());
    let resp = h.post(PUSH, &[PROTOBUF], body).await;
    assert_eq!(resp.status(), 204);
    let b = recv(&mut h.logs).await;
    assert_eq!(b.len(), 2);
    assert_eq!(
        b[0].labels.to_loki_string(),
        r#"{env="prod", service_name="pos-checkout", source="pos"}"#
    );
    assert_eq!(b[0].timestamp_ns, 1_700_000_000_000_000_000);
    assert_eq!(b[0].structured_metadata[0].0, "trace_id");

    let json = wire::loki::encode_json(&loki_push()).unwrap();
    let headers = [JSON, ("content-encoding", "gzip")];
    let resp = h
        .post(PUSH, &headers, wire::compression::gzip_compress(&json))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(recv(&mut h.logs).await[1].line, "receipt printed");
    let ready = h.http.get(h.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn receiver_loki_push_bad_input_and_full_queue() {
    let h = Harness::start("loki_push", "", 1).await;
    let resp = h
        .post(PUSH, &[PROTOBUF], b"not snappy at all".to_vec())
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("snappy"));
    let resp = h.post(PUSH, &[JSON], b"{\"streams\": 3}".to_vec()).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(h.discarded("decode_error"), 2);

    let mut bad = loki_push();
    bad.streams[0].labels = "{service_name=pos}".into();
    let resp = h
        .post(PUSH, &[PROTOBUF], wire::loki::encode_protobuf(&bad))
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(h.discarded("invalid"), 2);

    let body = wire::loki::encode_protobuf(&loki_push());
    assert_eq!(h.post(PUSH, &[PROTOBUF], body.clone()).await.status(), 204);
    let resp = h.post(PUSH, &[PROTOBUF], body).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(h.discarded("backpressure"), 2);
    h.stop().await;
}

// ---- remote write -------------------------------------------------------------------------------

fn write_request(labels: &[(&str, &str)]) -> Vec<u8> {
    use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest, stale_nan};
    wire::remote_write::encode(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
            samples: vec![
                Sample {
                    value: 42.0,
                    timestamp: 1_700_000_000_000,
                },
                Sample {
                    value: stale_nan(),
                    timestamp: 1_700_000_015_000,
                },
            ],
            exemplars: vec![],
        }],
        metadata: vec![],
    })
}

const RW_HEADERS: [(&str, &str); 3] = [
    PROTOBUF,
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

#[tokio::test]
async fn receiver_remote_write_write_and_push_paths() {
    let mut h = Harness::start("remote_write", "", 8).await;
    let series = [
        ("__name__", "pos_checkouts_total"),
        ("job", "pos"),
        ("till", "07"),
    ];
    for path in ["/api/v1/write", "/api/v1/push"] {
        let resp = h.post(path, &RW_HEADERS, write_request(&series)).await;
        assert_eq!(resp.status(), 204, "{path}");
        let b = recv(&mut h.metrics).await;
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].value, 42.0);
        assert_eq!(b[0].labels.get("till"), Some("07"));
        assert!(wire::remote_write::is_stale_nan(b[1].value));
    }
    assert_eq!(h.received("metrics"), 4);
    h.stop().await;
}

#[tokio::test]
async fn receiver_remote_write_bad_input_and_full_queue() {
    let h = Harness::start("remote_write", "", 1).await;
    let resp = h
        .post("/api/v1/write", &RW_HEADERS, b"\x00\x01garbage".to_vec())
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(h.discarded("decode_error"), 1);

    let resp = h
        .post(
            "/api/v1/write",
            &RW_HEADERS,
            write_request(&[("till", "07")]),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("no metric name"));
    assert_eq!(h.discarded("invalid"), 2);

    let headers = [("content-type", "application/json")];
    let resp = h.post("/api/v1/write", &headers, b"{}".to_vec()).await;
    assert_eq!(resp.status(), 415);

    let good = write_request(&[("__name__", "up")]);
    let first = h.post("/api/v1/write", &RW_HEADERS, good.clone()).await;
    assert_eq!(first.status(), 204);
    let resp = h.post("/api/v1/write", &RW_HEADERS, good).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    h.stop().await;
}

// ---- arbitrary bytes never panic ----------------------------------------------------------------

mod receiver_decode_paths {
    use axum::http::{HeaderMap, HeaderValue};
    use collector::sources::otlp::http::{Logs, Metrics, Traces, decode_bytes};
    use collector::sources::{http_common, loki_push, remote_write};
    use proptest::prelude::*;
    use wire::otlp::Encoding;

    fn headers(ct: &'static str, ce: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static(ct));
        if !ce.is_empty() {
            h.insert("content-encoding", HeaderValue::from_static(ce));
        }
        h
    }

    fn loki_config() -> loki_push::LokiPushConfig {
        collector::sources::BuildError::parse(toml::Table::new()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn otlp(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for enc in [Encoding::Protobuf, Encoding::Json] {
                let _ = decode_bytes::<Logs>(&bytes, enc);
                let _ = decode_bytes::<Metrics>(&bytes, enc);
                let _ = decode_bytes::<Traces>(&bytes, enc);
            }
            let h = headers("application/x-protobuf", "gzip");
            let _ = http_common::decode_content_encoding(&h, bytes.clone().into(), 1 << 20);
        }

        #[test]
        fn loki(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let kinds = [
                ("application/x-protobuf", ""),
                ("application/json", ""),
                ("application/json", "gzip"),
                ("application/x-protobuf", "deflate"),
            ];
            for (ct, ce) in kinds {
                if let Ok(req) = loki_push::decode(&headers(ct, ce), &bytes, 1 << 20) {
                    let _ = loki_push::convert(req, &loki_config(), 0);
                }
            }
        }

        #[test]
        fn remote_write(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(req) = remote_write::decode(&bytes, 1 << 20) {
                let _ = remote_write::convert(req);
            }
            // Valid snappy around arbitrary bytes reaches the protobuf decoder.
            let framed = wire::compression::snappy_compress(&bytes);
            if let Ok(req) = remote_write::decode(&framed, 1 << 20) {
                let _ = remote_write::convert(req);
            }
        }

        /// The budgeted paths: arbitrary bytes, framed or not, under small bounds never panic,
        /// and what a request holds never passes the budget.
        #[test]
        fn charged_decodes(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                           limit in 16usize..8192) {
            use collector::selfmon::{ComponentMetrics, Registry};
            let m = ComponentMetrics::new(Registry::new(), "rx", "source");
            let budget = http_common::InflightBudget::new(limit, &m);
            let table: toml::Table =
                toml::from_str(&format!("max_decoded_bytes = {limit}")).unwrap();
            let rw: remote_write::RemoteWriteConfig =
                collector::sources::BuildError::parse(table.clone()).unwrap();
            let loki: loki_push::LokiPushConfig =
                collector::sources::BuildError::parse(table).unwrap();
            let framed = wire::compression::snappy_compress(&bytes);
            let gzipped = wire::compression::gzip_compress(&bytes);
            for body in [&bytes, &framed] {
                let mut charge = budget.charge();
                let _ = remote_write::decode_charged(body, &rw, &mut charge);
                prop_assert!(charge.held() <= limit);
            }
            let kinds = [
                ("application/x-protobuf", "", &framed),
                ("application/json", "", &bytes),
                ("application/json", "gzip", &gzipped),
            ];
            for (ct, ce, body) in kinds {
                let mut charge = budget.charge();
                let _ = loki_push::decode_charged(&headers(ct, ce), body, &loki, &mut charge);
                prop_assert!(charge.held() <= limit);
            }
            prop_assert_eq!(budget.used(), 0);
            prop_assert!(budget.high_water() <= limit);
        }

        #[test]
        fn otlp_conversions(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            use prost::Message;
            if let Ok(req) = wire::otlp::ExportMetricsServiceRequest::decode(bytes.as_slice()) {
                let _ = collector::sources::otlp::metrics::convert(req, &Default::default());
            }
            if let Ok(req) = wire::otlp::ExportLogsServiceRequest::decode(bytes.as_slice()) {
                let _ = collector::sources::otlp::logs::convert(req, &[], 0);
            }
        }
    }
}

// ---- memory budgets: bombs beside good requests -------------------------------------------------

/// 8 MiB per request (decompressed + decoded estimate), 32 MiB in flight per receiver (room for
/// the bombs of one test at once, so the good requests beside them are never 429).
const BUDGET: &str = "max_decoded_bytes = 8388608\nmax_inflight_bytes = 33554432";
const INFLIGHT_LIMIT: i64 = 32 << 20;

/// `n` bytes of `0a 00`: empty messages in field 1 (series, streams, resources), each a struct
/// of 50–200 bytes once decoded.
fn empty_messages(n: usize) -> Vec<u8> {
    [0x0a, 0x00].repeat(n / 2)
}

impl Harness {
    fn gauge(&self, name: &str) -> i64 {
        self.registry
            .gauge(name, "", &[("component", NAME), ("kind", "source")])
            .get()
    }

    /// Checks the receiver's own accounting: the in-flight high-water mark stayed within the
    /// budget (and was used), and nothing is held once every answer is in.
    fn assert_budget_held(&self, limit: i64) {
        let max = self.gauge("collector_receiver_inflight_bytes_max");
        assert!(
            max > 0 && max <= limit,
            "high-water mark {max}, limit {limit}"
        );
        assert_eq!(self.gauge("collector_receiver_inflight_bytes"), 0);
    }
}

/// A request for [`post_all`]: path, headers, body.
type Post<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>);

/// Sends every request at once (each on its own task); the statuses in order.
async fn post_all(h: &Harness, reqs: Vec<Post<'_>>) -> Vec<u16> {
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|(path, headers, body)| {
            let mut req = h.http.post(h.url(path)).body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_remote_write_bombs_are_413_beside_good_writes() {
    let h = Harness::start("remote_write", BUDGET, 64).await;
    let rw = RW_HEADERS.to_vec();
    let good = write_request(&[("__name__", "up")]);
    // 4 MiB of empty series: within max_decompressed_bytes, ~150 MiB once decoded.
    let small_bomb = wire::compression::snappy_compress(&empty_messages(4 << 20));
    // 20 MiB of empty series (the issue's 100 MiB shape, scaled): its snappy header is over.
    let big_bomb = wire::compression::snappy_compress(&empty_messages(20 << 20));
    let mut reqs = Vec::new();
    for i in 0..8 {
        reqs.push(("/api/v1/write", rw.clone(), good.clone()));
        if i == 2 {
            reqs.push(("/api/v1/write", rw.clone(), small_bomb.clone()));
        }
        if i == 5 {
            reqs.push(("/api/v1/write", rw.clone(), big_bomb.clone()));
        }
    }
    let statuses = post_all(&h, reqs).await;
    let bombs = [3, 7];
    for (i, s) in statuses.iter().enumerate() {
        let want = if bombs.contains(&i) { 413 } else { 204 };
        assert_eq!(*s, want, "request {i}: {statuses:?}");
    }
    assert_eq!(h.discarded("too_large"), 2);
    h.assert_budget_held(INFLIGHT_LIMIT);
    // The answer names the bound.
    let resp = h.post("/api/v1/write", &RW_HEADERS, small_bomb).await;
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("max_decoded_bytes"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_otlp_bombs_are_413_beside_good_exports() {
    let h = Harness::start("otlp", BUDGET, 64).await;
    let gz = ("content-encoding", "gzip");
    // The issue's gzip bomb, scaled: 24 MiB of empty resources in ~24 KB, refused as its
    // decompression passes max_decoded_bytes.
    let gzip_bomb = wire::compression::gzip_compress(&empty_messages(24 << 20));
    // 4 MiB decompressed (allowed) that would decode into ~400 MiB: refused by the estimate.
    let gzip_small_bomb = wire::compression::gzip_compress(&empty_messages(4 << 20));
    // JSON: three bytes per empty resource.
    let mut json_bomb = br#"{"resourceLogs":["#.to_vec();
    json_bomb.extend(b"{},".repeat(1 << 20));
    json_bomb.extend(b"{}]}");
    let good_metrics = metrics_request().encode_to_vec();
    let good_logs = wire::otlp::encode(&logs_request(), Encoding::Json).unwrap();
    let reqs = vec![
        ("/v1/metrics", vec![PROTOBUF], good_metrics.clone()),
        ("/v1/metrics", vec![PROTOBUF, gz], gzip_bomb),
        ("/v1/logs", vec![JSON], good_logs.clone()),
        ("/v1/traces", vec![PROTOBUF, gz], gzip_small_bomb),
        ("/v1/metrics", vec![PROTOBUF], good_metrics),
        ("/v1/logs", vec![JSON], json_bomb),
        ("/v1/logs", vec![JSON], good_logs),
    ];
    let statuses = post_all(&h, reqs).await;
    assert_eq!(statuses, [200, 413, 200, 413, 200, 413, 200]);
    // gRPC: the same empty resources as one message, beside a good export.
    let path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    let (code, message) = raw_grpc(&h, path, &empty_messages(4 << 20)).await;
    assert_eq!(code, "8", "{message}"); // RESOURCE_EXHAUSTED
    assert!(message.contains("max_decoded_bytes"), "{message}");
    let mut traces = TraceServiceClient::connect(h.grpc_url()).await.unwrap();
    traces.export(traces_request()).await.unwrap();
    drop(traces);
    assert_eq!(h.discarded("too_large"), 4);
    h.assert_budget_held(INFLIGHT_LIMIT);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_loki_push_bombs_are_413_beside_good_pushes() {
    let h = Harness::start("loki_push", BUDGET, 64).await;
    let mut json_bomb = br#"{"streams":[{"stream":{"app":"x"},"values":["#.to_vec();
    json_bomb.extend(br#"["1",""],"#.repeat(400_000));
    json_bomb.extend(br#"["1",""]]}]}"#);
    let snappy_bomb = wire::compression::snappy_compress(&empty_messages(4 << 20));
    let good = wire::loki::encode_protobuf(&loki_push());
    let good_json = wire::loki::encode_json(&loki_push()).unwrap();
    let reqs = vec![
        (PUSH, vec![PROTOBUF], good.clone()),
        (PUSH, vec![JSON], json_bomb),
        (PUSH, vec![JSON], good_json),
        (PUSH, vec![PROTOBUF], snappy_bomb),
        (PUSH, vec![PROTOBUF], good),
    ];
    let statuses = post_all(&h, reqs).await;
    assert_eq!(statuses, [204, 413, 204, 413, 204]);
    assert_eq!(h.discarded("too_large"), 2);
    h.assert_budget_held(INFLIGHT_LIMIT);
    h.stop().await;
}

/// Waits (bounded) until the in-flight gauge reads at least `n`; returns what it reads.
async fn inflight_reaches(h: &Harness, n: i64) -> i64 {
    for _ in 0..500 {
        if h.gauge("collector_receiver_inflight_bytes") >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.gauge("collector_receiver_inflight_bytes")
}

/// Reads the status line of a raw HTTP/1.1 answer (bounded in time).
async fn status_line(conn: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), conn.read_exact(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A body is charged as its bytes arrive, not as its `Content-Length` declares; a request that
/// cannot get its bytes while another holds the budget is 429 with `Retry-After`, counted as
/// `inflight_limit`; a client that stops sending is 408 after `body_read_timeout` (counted as
/// `timeout`) and its bytes are given back.
#[tokio::test]
async fn receiver_slow_body_is_charged_as_it_arrives_then_408() {
    use tokio::io::AsyncWriteExt;
    let settings =
        "max_decoded_bytes = 4096\nmax_inflight_bytes = 4096\nbody_read_timeout = \"500ms\"";
    let h = Harness::start("remote_write", settings, 8).await;
    // A client that declares 4090 bytes, sends 3900 and stops: charged for what came (and the
    // list of chunks it came in), not for what it declared.
    let mut slow = tokio::net::TcpStream::connect(h.addrs.get(NAME).unwrap())
        .await
        .unwrap();
    let head = "POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
                content-encoding: snappy\r\ncontent-length: 4090\r\n\r\n";
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&[0u8; 3900]).await.unwrap();
    let charged = inflight_reaches(&h, 3900).await;
    assert!((3900..4090).contains(&charged), "{charged}");
    let good = write_request(&[("__name__", "up")]);
    let resp = h.post("/api/v1/write", &RW_HEADERS, good.clone()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(h.discarded("inflight_limit"), 1);
    // The slow body never completes: 408, its bytes given back.
    assert_eq!(status_line(&mut slow).await, "HTTP/1.1 408");
    assert_eq!(h.discarded("timeout"), 1);
    assert_eq!(h.gauge("collector_receiver_inflight_bytes"), 0);
    let resp = h.post("/api/v1/write", &RW_HEADERS, good).await;
    assert_eq!(resp.status(), 204);
    h.assert_budget_held(4096);
    h.stop().await;
}

/// A chunked body (no `Content-Length`) is charged chunk by chunk as it arrives, and is 413 the
/// moment it passes `max_body_bytes`, before the client has finished sending it.
#[tokio::test]
async fn receiver_chunked_body_is_charged_as_it_arrives_and_413_once_over() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start("loki_push", "max_body_bytes = 2000", 8).await;
    let mut conn = tokio::net::TcpStream::connect(h.addrs.get(NAME).unwrap())
        .await
        .unwrap();
    let head = "POST /loki/api/v1/push HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = |n: usize| format!("{n:x}\r\n{}\r\n", " ".repeat(n));
    conn.write_all(chunk(1500).as_bytes()).await.unwrap();
    let charged = inflight_reaches(&h, 1500).await;
    assert!((1500..1500 + 4 * 64).contains(&charged), "{charged}");
    // Past the bound: answered at once, the body never finished.
    conn.write_all(chunk(1000).as_bytes()).await.unwrap();
    assert_eq!(status_line(&mut conn).await, "HTTP/1.1 413");
    assert_eq!(h.discarded("too_large"), 1);
    assert_eq!(h.gauge("collector_receiver_inflight_bytes"), 0);
    h.stop().await;
}

/// `n` empty resources (`0a 00`), gzipped once and repeated as gzip members: `copies` × `n`
/// bytes once decompressed, from `copies` × ~1 KB.
fn gzip_members(n: usize, copies: usize) -> Vec<u8> {
    wire::compression::gzip_compress(&empty_messages(n)).repeat(copies)
}

/// Peak resident memory of this test process so far (`VmHWM`), after resetting it.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// gzip bombs over OTLP/gRPC: tonic would decompress them outside the budget (and answer
/// without the receiver counting them); the receiver decompresses them itself, charging every
/// growth, so they are RESOURCE_EXHAUSTED (`too_large`) within `max_decoded_bytes`, and several
/// at once stay within `max_inflight_bytes` (the rest `inflight_limit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_otlp_grpc_gzip_bombs_are_refused_within_the_budget() {
    use tonic::codec::CompressionEncoding;
    let h = Harness::start("otlp", BUDGET, 64).await;
    // A real client: one log line of 64 MiB, gzipped by tonic to ~64 KB.
    let mut req = logs_request();
    let record = &mut req.resource_logs[0].scope_logs[0].log_records[0];
    record.body = Some(wire::otlp::proto::common::v1::AnyValue {
        value: Some(
            wire::otlp::proto::common::v1::any_value::Value::StringValue("a".repeat(64 << 20)),
        ),
    });
    let mut logs = LogsServiceClient::connect(h.grpc_url())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let err = logs.export(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert_eq!(h.discarded("too_large"), 1);
    assert_eq!(h.gauge("collector_receiver_inflight_bytes"), 0);
    let high = h.gauge("collector_receiver_inflight_bytes_max");
    assert!(
        high > 0 && high <= (8 << 20) + (1 << 20),
        "high-water mark {high}"
    );
    // Raw bombs, four at once: 1 GiB each from ~2 MB of gzip members.
    let bomb = gzip_members(1 << 20, 1024);
    let path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    reset_peak_rss();
    let rss_before = peak_rss_kib();
    let call = || raw_grpc_with(&h, path, &bomb, &[("grpc-encoding", "gzip")], 1);
    let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
    for (code, message) in [a, b, c, d] {
        assert_eq!(code, "8", "{message}"); // RESOURCE_EXHAUSTED
    }
    eprintln!(
        "4 × 1 GiB gRPC gzip bombs ({} bytes each): in-flight high-water {} bytes, peak RSS {} KiB (from {} KiB)",
        bomb.len(),
        h.gauge("collector_receiver_inflight_bytes_max"),
        peak_rss_kib(),
        rss_before,
    );
    assert_eq!(h.discarded("too_large") + h.discarded("inflight_limit"), 5);
    h.assert_budget_held(INFLIGHT_LIMIT);
    // Still serving, compressed or not.
    let mut logs = logs.send_compressed(CompressionEncoding::Gzip);
    logs.export(logs_request()).await.unwrap();
    drop(logs);
    h.stop().await;
}

/// Conversion copies what items share onto each of them: a 10 KB label (or resource attribute)
/// over 20 000 empty samples or records is ~50 KB on the wire, ~200 MB converted. The bound on
/// the converted batch is checked before converting: 413 (`too_large`), nothing allocated, and a
/// normal request beside it goes through. A Loki stream's labels are shared by its entries, so
/// the same shape over Loki push is no bomb: taken, its labels charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_conversion_bombs_are_413() {
    let big = "v".repeat(10_000);
    // remote write: one series, 20 000 empty samples.
    let h = Harness::start("remote_write", BUDGET, 64).await;
    let mut ts = field(1, &[field(1, b"__name__"), field(2, b"up")].concat());
    ts.extend(field(
        1,
        &[field(1, b"big"), field(2, big.as_bytes())].concat(),
    ));
    ts.extend([0x12, 0x00].repeat(20_000));
    let bomb = wire::compression::snappy_compress(&field(1, &ts));
    let resp = h.post("/api/v1/write", &RW_HEADERS, bomb).await;
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("converted"));
    let resp = h
        .post(
            "/api/v1/write",
            &RW_HEADERS,
            write_request(&[("__name__", "up")]),
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(h.discarded("too_large"), 1);
    h.assert_budget_held(INFLIGHT_LIMIT);
    h.stop().await;
    // Loki push: one stream, 20 000 empty entries: the labels are held once, not per entry.
    let h = Harness::start("loki_push", BUDGET, 64).await;
    let mut stream = field(1, format!("{{app=\"{big}\"}}").as_bytes());
    stream.extend([0x12, 0x00].repeat(20_000));
    let shared = wire::compression::snappy_compress(&field(1, &stream));
    assert_eq!(h.post(PUSH, &[PROTOBUF], shared).await.status(), 204);
    assert_eq!(h.discarded("too_large"), 0);
    // Charged about 20 000 records and one label set, not 20 000 copies of 10 KB (200 MB).
    h.assert_budget_held(8 << 20);
    h.stop().await;
    // OTLP logs: one resource, 20 000 empty records (over HTTP and gRPC).
    let h = Harness::start("otlp", BUDGET, 64).await;
    let attr = field(
        1,
        &[field(1, b"k"), field(2, &field(1, big.as_bytes()))].concat(),
    );
    let mut rl = field(1, &attr);
    rl.extend(field(2, &[0x12, 0x00].repeat(20_000)));
    let bomb = field(1, &rl);
    let resp = h.post("/v1/logs", &[PROTOBUF], bomb.clone()).await;
    assert_eq!(resp.status(), 413);
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    let (code, message) = raw_grpc(&h, path, &bomb).await;
    assert_eq!(code, "8", "{message}");
    let mut logs = LogsServiceClient::connect(h.grpc_url()).await.unwrap();
    logs.export(logs_request()).await.unwrap();
    drop(logs);
    assert_eq!(h.discarded("too_large"), 2);
    h.assert_budget_held(INFLIGHT_LIMIT);
    h.stop().await;
}

/// `bytes` as protobuf field `tag` (length-delimited).
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![(tag << 3) | 2];
    let mut n = bytes.len();
    while n >= 0x80 {
        v.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    v.push(n as u8);
    v.extend_from_slice(bytes);
    v
}

/// A request body that sends `first` and then never anything more (nor its end).
struct Stall(Option<bytes::Bytes>);

impl hyper::body::Body for Stall {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(b) => std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            None => std::task::Poll::Pending,
        }
    }
}

/// OTLP/gRPC: a message is charged as its bytes arrive (tonic would reserve its declared length
/// at once, outside the budget), and one that stops arriving is `DEADLINE_EXCEEDED` after
/// `body_read_timeout` (`timeout`), its bytes given back.
#[tokio::test]
async fn receiver_otlp_grpc_slow_message_is_charged_as_it_arrives_then_deadline_exceeded() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let settings = format!("{BUDGET}\nbody_read_timeout = \"500ms\"");
    let h = Harness::start("otlp", &settings, 8).await;
    let addr = h.addrs.get(&format!("{NAME}.grpc")).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Declares a 1 MiB message, sends 1000 bytes of it.
    let mut first = vec![0u8];
    first.extend_from_slice(&(1u32 << 20).to_be_bytes());
    first.extend_from_slice(&[0x0a; 1000]);
    let req = axum::http::Request::post(format!(
        "http://{addr}/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(Stall(Some(first.into())))
    .unwrap();
    let answer = tokio::spawn(async move { send.send_request(req).await });
    let charged = inflight_reaches(&h, 1005).await;
    assert!((1005..1 << 20).contains(&charged), "{charged}");
    let resp = tokio::time::timeout(Duration::from_secs(20), answer)
        .await
        .expect("an answer")
        .unwrap()
        .unwrap();
    assert_eq!(resp.headers()["grpc-status"], "4"); // DEADLINE_EXCEEDED
    assert_eq!(h.discarded("timeout"), 1);
    assert_eq!(h.gauge("collector_receiver_inflight_bytes"), 0);
    h.stop().await;
}

/// A snappy header declaring more than its block can hold (four bytes claiming 64 MiB) is a 400
/// before anything is reserved: it is not charged its declared length (remote write and Loki).
#[tokio::test]
async fn receiver_snappy_length_lie_is_400_uncharged() {
    let lie = vec![0x80, 0x80, 0x80, 0x20];
    for (kind, path) in [("remote_write", "/api/v1/write"), ("loki_push", PUSH)] {
        let h = Harness::start(kind, "", 8).await;
        let resp = h.post(path, &RW_HEADERS, lie.clone()).await;
        assert_eq!(resp.status(), 400, "{kind}");
        assert_eq!(h.discarded("decode_error"), 1, "{kind}");
        let high = h.gauge("collector_receiver_inflight_bytes_max");
        assert!(high < 1024, "{kind}: high-water mark {high}");
        h.stop().await;
    }
}
