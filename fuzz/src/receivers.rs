//! The `rx_*` targets: the collector's real receivers (their axum routers, and the OTLP/gRPC
//! services behind tonic's router) built in process with small limits, each input sent to them
//! as one request ([`crate::input`]), on a runtime kept across inputs. A fresh receiver, metrics
//! registry and downstream queue per input, so inputs do not depend on each other.
//!
//! What must hold for every request:
//! - no panic, and an answer the receiver documents: 2xx, 400, 404/405 (a path or method it
//!   does not serve), 413, 415 (never 500, and no 408/429/503: the body is all there, nothing
//!   else holds the budget, the queue has room, nothing is stopping); over gRPC never `INTERNAL`
//!   or `UNKNOWN`;
//! - the in-flight budget is all given back once answered, and its high-water mark is within
//!   `max_inflight_bytes`;
//! - the accounting balances: `received = sent + discarded` per signal, and what was `sent` is
//!   what the downstream queue got.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, Request as HttpRequest, Response};
use bytes::Bytes;
use collector::event::{Items, Signal};
use collector::output::{Output, Target, WhenFull};
use collector::queue;
use collector::selfmon::{ComponentMetrics, Registry};
use collector::sources::otlp::grpc;
use collector::sources::otlp::http::{Logs, Metrics, Traces};
use collector::sources::{Outputs, loki_push, otlp, remote_write};
use http_body::Frame;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::encode;
use crate::input::Request;

/// The receivers' limits here: small, so the fuzzer reaches them.
pub const MAX_BODY: usize = 1 << 20;
pub const MAX_DECOMPRESSED: usize = 4 << 20;
pub const MAX_DECODED: usize = 8 << 20;
pub const MAX_INFLIGHT: usize = 16 << 20;

fn limits_json() -> serde_json::Value {
    serde_json::json!({
        "max_body_bytes": MAX_BODY,
        "max_decompressed_bytes": MAX_DECOMPRESSED,
        "max_decoded_bytes": MAX_DECODED,
        "max_inflight_bytes": MAX_INFLIGHT,
    })
}

fn config<T: serde::de::DeserializeOwned>(extra: serde_json::Value) -> T {
    let mut v = limits_json();
    if let (Some(m), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    match serde_json::from_value(v) {
        Ok(c) => c,
        Err(e) => panic!("the fuzz receiver config does not parse: {e}"),
    }
}

/// One runtime for every input: a current-thread one (the receivers' decoding goes to its
/// blocking pool, as in the collector).
static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    }
});

/// A request body that arrives in the chunks given.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn chunks(body: Vec<u8>, chunk: Option<usize>) -> Chunks {
    let body = Bytes::from(body);
    let Some(n) = chunk else {
        return Chunks(VecDeque::from([body]));
    };
    Chunks(
        (0..body.len())
            .step_by(n)
            .map(|i| body.slice(i..(i + n).min(body.len())))
            .collect(),
    )
}

/// The HTTP request of an input: POST to its path (or `default_path`), its headers (those that
/// are valid HTTP), `body`.
fn http_request(req: &Request, default_path: &str, body: Vec<u8>) -> HttpRequest<axum::body::Body> {
    let path = req
        .path
        .filter(|p| p.parse::<axum::http::Uri>().is_ok())
        .unwrap_or(default_path);
    let mut r = HttpRequest::new(axum::body::Body::new(chunks(body, req.chunk)));
    *r.method_mut() = Method::POST;
    *r.uri_mut() = match path.parse() {
        Ok(u) => u,
        Err(_) => axum::http::Uri::from_static("/"),
    };
    for (name, value) in &req.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            r.headers_mut().append(n, v);
        }
    }
    r
}

/// The status, and the gRPC status (from the headers or the trailers) if any, of a response
/// read to its end.
fn answer<B>(resp: Response<B>) -> (u16, Option<i32>)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = resp.status().as_u16();
    let grpc_status = |h: &axum::http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
    };
    let in_headers = grpc_status(resp.headers());
    let collected = match RT.block_on(resp.into_body().collect()) {
        Ok(c) => c,
        Err(e) => panic!("the response body failed: {e:?}"),
    };
    let in_trailers = collected.trailers().and_then(grpc_status);
    (status, in_headers.or(in_trailers))
}

/// A downstream queue for `signal` of `metrics`' component, and what drains it.
fn sink<T: Clone + Items>(
    signal: Signal,
    metrics: &ComponentMetrics,
) -> (Output<T>, queue::Receiver<T>) {
    let (tx, rx) = queue::bounded(8);
    let target = Target {
        tx,
        when_full: WhenFull::Block,
        name: "sink".into(),
    };
    (Output::new(signal, vec![target], metrics.clone()), rx)
}

/// Items that reached a queue.
fn drain<T: Items>(rx: &mut queue::Receiver<T>) -> u64 {
    let mut n = 0;
    while let Ok(batch) = rx.try_recv() {
        n += batch.items() as u64;
    }
    n
}

fn metrics() -> (std::sync::Arc<Registry>, ComponentMetrics) {
    let registry = Registry::new();
    let m = ComponentMetrics::new(registry.clone(), "fuzz_rx", "source");
    (registry, m)
}

/// The budget given back and within its bound; `received = sent + discarded`; `sent` is what
/// reached the queue.
fn check_books(registry: &Registry, m: &ComponentMetrics, signal: Signal, delivered: u64) {
    assert_eq!(
        m.inflight_bytes().get(),
        0,
        "in-flight bytes not given back"
    );
    let high = m.inflight_bytes_max().get();
    assert!(
        (0..=MAX_INFLIGHT as i64).contains(&high),
        "in-flight high-water {high} over {MAX_INFLIGHT}"
    );
    let f = [("signal", signal.as_str())];
    let received = registry.counter_sum("collector_received_items_total", &f);
    let sent = registry.counter_sum("collector_sent_items_total", &f);
    let discarded = registry.counter_sum("collector_discarded_items_total", &f);
    assert_eq!(
        received,
        sent + discarded,
        "{signal}: received {received} != sent {sent} + discarded {discarded}"
    );
    assert_eq!(
        sent, delivered,
        "{signal}: sent {sent}, the queue got {delivered}"
    );
}

fn check_http_status(status: u16) {
    assert!(
        matches!(status, 200 | 204 | 400 | 404 | 405 | 413 | 415),
        "unexpected HTTP status {status}"
    );
}

fn send(router: Router, req: HttpRequest<axum::body::Body>) -> u16 {
    let resp = match RT.block_on(router.oneshot(req)) {
        Ok(r) => r,
        Err(e) => match e {},
    };
    answer(resp).0
}

/// `rx_loki_push`: `POST /loki/api/v1/push` (by default) to a `loki_push` receiver.
pub fn loki_push(data: &[u8]) {
    let req = Request::parse(data);
    let body = if req.encode {
        encode::loki(&req)
    } else {
        req.body.to_vec()
    };
    let (registry, m) = metrics();
    let (out, mut rx) = sink(Signal::Logs, &m);
    let cfg: loki_push::LokiPushConfig = config(serde_json::json!({
        "use_incoming_timestamp": data.first().is_some_and(|b| b & 1 == 1),
    }));
    let router = loki_push::router(cfg, out, m.clone());
    let status = send(router, http_request(&req, "/loki/api/v1/push", body));
    check_http_status(status);
    check_books(&registry, &m, Signal::Logs, drain(&mut rx));
}

/// `rx_remote_write`: `POST /api/v1/write` (by default) to a `remote_write` receiver.
pub fn remote_write(data: &[u8]) {
    let req = Request::parse(data);
    let body = if req.encode {
        encode::remote_write(&req)
    } else {
        req.body.to_vec()
    };
    let (registry, m) = metrics();
    let (out, mut rx) = sink(Signal::Metrics, &m);
    let router = remote_write::router(config(serde_json::json!({})), out, m.clone());
    let status = send(router, http_request(&req, "/api/v1/write", body));
    check_http_status(status);
    check_books(&registry, &m, Signal::Metrics, drain(&mut rx));
}

struct OtlpRx {
    registry: std::sync::Arc<Registry>,
    metrics: ComponentMetrics,
    receiver: std::sync::Arc<otlp::Receiver>,
    queues: (
        queue::Receiver<collector::event::LogBatch>,
        queue::Receiver<collector::event::MetricBatch>,
        queue::Receiver<collector::event::TraceBatch>,
    ),
}

impl OtlpRx {
    fn new() -> OtlpRx {
        let (registry, m) = metrics();
        let (logs, l) = sink(Signal::Logs, &m);
        let (metrics, mq) = sink(Signal::Metrics, &m);
        let (traces, t) = sink(Signal::Traces, &m);
        let outputs = Outputs {
            logs,
            metrics,
            traces,
        };
        let cfg: otlp::OtlpConfig = config(serde_json::json!({
            "promote_resource_attributes": ["service.name", "host.name"],
            "delta_max_series": 64,
        }));
        OtlpRx {
            registry,
            receiver: otlp::Receiver::new(cfg, outputs, m.clone()),
            metrics: m,
            queues: (l, mq, t),
        }
    }

    fn check(mut self) {
        let (r, m) = (&self.registry, &self.metrics);
        check_books(r, m, Signal::Logs, drain(&mut self.queues.0));
        check_books(r, m, Signal::Metrics, drain(&mut self.queues.1));
        check_books(r, m, Signal::Traces, drain(&mut self.queues.2));
    }
}

/// `rx_otlp_http`: `POST /v1/logs` (by default; `/v1/metrics`, `/v1/traces` by the path line)
/// to an `otlp` receiver's HTTP router.
pub fn otlp_http(data: &[u8]) {
    let req = Request::parse(data);
    let body = if req.encode {
        encode::otlp_http(&req)
    } else {
        req.body.to_vec()
    };
    let rx = OtlpRx::new();
    let router = otlp::http::router(rx.receiver.clone());
    let status = send(router, http_request(&req, "/v1/logs", body));
    check_http_status(status);
    rx.check();
}

/// `rx_otlp_grpc`: a unary call to `/opentelemetry.proto.collector.logs.v1.LogsService/Export`
/// (by default; the metrics and trace services by the path line) through tonic's router of the
/// three `Export` services, as `otlp` serves them, without a socket.
pub fn otlp_grpc(data: &[u8]) {
    let req = Request::parse(data);
    let body = if req.encode {
        encode::grpc(&req)
    } else {
        req.body.to_vec()
    };
    let rx = OtlpRx::new();
    let routes = tonic::service::Routes::new(grpc::server::<Logs>(&rx.receiver))
        .add_service(grpc::server::<Metrics>(&rx.receiver))
        .add_service(grpc::server::<Traces>(&rx.receiver))
        .prepare();
    let mut http = http_request(
        &req,
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        body,
    );
    *http.version_mut() = axum::http::Version::HTTP_2;
    let resp = match RT.block_on(routes.oneshot(http)) {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let (status, grpc_status) = answer(resp);
    assert_eq!(status, 200, "gRPC answered HTTP {status}");
    if let Some(code) = grpc_status {
        // 2 UNKNOWN, 13 INTERNAL: a failure the receiver did not name.
        assert!(
            !matches!(code, 2 | 13),
            "gRPC status {code}: a failure the receiver did not name"
        );
    }
    rx.check();
}
