//! Senders: already-built payloads to their targets over one shared `reqwest` client, each
//! request ending in an [`Outcome`] (the status, or why there was none, and the items it carried)
//! that the caller hands to the [`crate::recorder::Recorder`] with the event's *intended* time.
//!
//! | payload | request |
//! |---|---|
//! | Loki push | `POST {url}/loki/api/v1/push`, protobuf + snappy block, `X-Scope-OrgID` |
//! | remote write 1.0 | `POST {url}` (the full write URL), protobuf + snappy, `Content-Encoding: snappy`, `X-Prometheus-Remote-Write-Version: 0.1.0` |
//! | OTLP traces, metrics, logs | `POST {url}/v1/traces` (`/v1/metrics`, `/v1/logs`), protobuf |
//!
//! # In-flight bound
//!
//! Each target (`host:port`) has a semaphore of `max_in_flight_per_target` permits: a request
//! holds one ([`Permit`]) from before it is sent until its outcome is known, so the generator
//! never holds an unbounded number of requests. The open-loop driver ([`driver`]) takes the
//! permit *before* it spawns the request, so when a target is saturated the schedule falls
//! behind rather than queueing without bound — and since latency is measured from the intended
//! time, that wait is in the numbers.
//!
//! # Failing fast
//!
//! A refused connection fails at once; a target that does not answer SYNs fails after
//! `connect_timeout`. The error names the address (`cannot connect to 127.0.0.1:9: ...`).

pub mod driver;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Url;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wire::otlp::{
    Encoding, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};

use crate::schedule::Signal;

/// The tenant header of Loki, Mimir and Tempo.
pub use wire::http::TENANT_HEADER;
// Content type of every body sent here.
use wire::http::PROTOBUF;
/// How much of a refusal's body goes into the error.
const BODY_SNIPPET: usize = 256;

/// How the senders behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Requests in flight per target (`host:port`) at most (at least 1).
    pub max_in_flight_per_target: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            max_in_flight_per_target: 64,
        }
    }
}

/// Why a request was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("no answer from {url} in time: {detail}")]
    Timeout { url: String, detail: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("request to {url} failed: {detail}")]
    Request { url: String, detail: String },
    #[error("cannot encode the payload: {0}")]
    Encode(#[from] wire::WireError),
    #[error("bad target URL {url}: {detail}")]
    Url { url: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl SendError {
    /// The key this error is counted under in `results.json`: the HTTP status (`"429"`,
    /// `"500"`) or the kind (`"connect"`, `"timeout"`, `"request"`, `"encode"`, `"url"`).
    pub fn kind(&self) -> String {
        match self {
            SendError::Connect { .. } => "connect".into(),
            SendError::Timeout { .. } => "timeout".into(),
            SendError::Status { status, .. } => status.to_string(),
            SendError::Request { .. } | SendError::Client(_) => "request".into(),
            SendError::Encode(_) => "encode".into(),
            SendError::Url { .. } => "url".into(),
        }
    }
}

/// How one request ended.
#[derive(Debug)]
pub struct Outcome {
    /// Items the request carried.
    pub items: u64,
    /// The 2xx status, or why it was not acknowledged.
    pub result: Result<u16, SendError>,
}

impl Outcome {
    pub fn acknowledged(&self) -> bool {
        self.result.is_ok()
    }

    /// `None` when acknowledged, else [`SendError::kind`].
    pub fn error_key(&self) -> Option<String> {
        self.result.as_ref().err().map(SendError::kind)
    }
}

/// Where a signal goes: the base URL (full URL for remote write) and the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub tenant: Option<String>,
}

/// A built payload of any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Loki(wire::loki::PushRequest),
    RemoteWrite(wire::remote_write::WriteRequest),
    OtlpTraces(ExportTraceServiceRequest),
    OtlpMetrics(ExportMetricsServiceRequest),
    OtlpLogs(ExportLogsServiceRequest),
}

impl Payload {
    /// Appends `other`'s streams, series or resources when both are the same kind of payload;
    /// gives `other` back otherwise.
    pub fn merge(&mut self, other: Payload) -> Result<(), Payload> {
        match (self, other) {
            (Payload::Loki(a), Payload::Loki(b)) => a.streams.extend(b.streams),
            (Payload::RemoteWrite(a), Payload::RemoteWrite(b)) => {
                a.timeseries.extend(b.timeseries);
                a.metadata.extend(b.metadata);
            }
            (Payload::OtlpTraces(a), Payload::OtlpTraces(b)) => {
                a.resource_spans.extend(b.resource_spans)
            }
            (Payload::OtlpMetrics(a), Payload::OtlpMetrics(b)) => {
                a.resource_metrics.extend(b.resource_metrics)
            }
            (Payload::OtlpLogs(a), Payload::OtlpLogs(b)) => a.resource_logs.extend(b.resource_logs),
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Which kind of payload, 0..5 (Loki, remote write, OTLP traces, metrics, logs).
    pub fn kind(&self) -> usize {
        match self {
            Payload::Loki(_) => 0,
            Payload::RemoteWrite(_) => 1,
            Payload::OtlpTraces(_) => 2,
            Payload::OtlpMetrics(_) => 3,
            Payload::OtlpLogs(_) => 4,
        }
    }

    pub fn signal(&self) -> Signal {
        match self {
            Payload::Loki(_) | Payload::OtlpLogs(_) => Signal::Logs,
            Payload::RemoteWrite(_) | Payload::OtlpMetrics(_) => Signal::Metrics,
            Payload::OtlpTraces(_) => Signal::Traces,
        }
    }

    /// Log entries or records, samples or data points, spans.
    pub fn items(&self) -> u64 {
        match self {
            Payload::Loki(r) => loki_items(r),
            Payload::RemoteWrite(r) => remote_write_items(r),
            Payload::OtlpTraces(r) => trace_items(r),
            Payload::OtlpMetrics(r) => metric_items(r),
            Payload::OtlpLogs(r) => log_items(r),
        }
    }

    /// The request for `target`.
    pub fn prepare(&self, target: &Target) -> Result<Prepared, SendError> {
        let tenant = target.tenant.as_deref();
        match self {
            Payload::Loki(r) => Prepared::loki(&target.url, tenant, r),
            Payload::RemoteWrite(r) => Ok(Prepared::remote_write(&target.url, tenant, r)),
            Payload::OtlpTraces(r) => Prepared::otlp(&target.url, tenant, r, trace_items(r)),
            Payload::OtlpMetrics(r) => Prepared::otlp(&target.url, tenant, r, metric_items(r)),
            Payload::OtlpLogs(r) => Prepared::otlp(&target.url, tenant, r, log_items(r)),
        }
    }
}

/// An encoded request, ready to go.
#[derive(Clone, Debug)]
pub struct Prepared {
    url: Url,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    items: u64,
}

impl Prepared {
    fn new(url: Url, tenant: Option<&str>, body: Vec<u8>, items: u64) -> Prepared {
        let mut headers = vec![("Content-Type", PROTOBUF.to_string())];
        if let Some(t) = tenant {
            headers.push((TENANT_HEADER, t.to_string()));
        }
        Prepared {
            url,
            headers,
            body,
            items,
        }
    }

    /// A Loki push to `{base}/loki/api/v1/push`.
    pub fn loki(
        base: &Url,
        tenant: Option<&str>,
        req: &wire::loki::PushRequest,
    ) -> Result<Prepared, SendError> {
        let url = join(base, "loki/api/v1/push")?;
        let body = wire::loki::encode_protobuf(req);
        Ok(Prepared::new(url, tenant, body, loki_items(req)))
    }

    /// A remote-write request to `url` (the full write URL).
    pub fn remote_write(
        url: &Url,
        tenant: Option<&str>,
        req: &wire::remote_write::WriteRequest,
    ) -> Prepared {
        let mut p = Prepared::new(
            url.clone(),
            tenant,
            wire::remote_write::encode(req),
            remote_write_items(req),
        );
        p.headers.push(("Content-Encoding", "snappy".into()));
        p.headers.push((
            "X-Prometheus-Remote-Write-Version",
            wire::remote_write::VERSION_HEADER_VALUE.into(),
        ));
        p
    }

    /// An OTLP/HTTP protobuf export to `{base}/v1/<signal>`.
    fn otlp<M: OtlpPath>(
        base: &Url,
        tenant: Option<&str>,
        msg: &M,
        items: u64,
    ) -> Result<Prepared, SendError> {
        let url = join(base, M::PATH)?;
        let body = wire::otlp::encode(msg, Encoding::Protobuf)?;
        Ok(Prepared::new(url, tenant, body, items))
    }

    /// Where it goes.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    /// The body's length as it goes on the wire (encoded and compressed).
    pub fn body_len(&self) -> u64 {
        self.body.len() as u64
    }
}

/// The OTLP/HTTP path of each export request.
trait OtlpPath: wire::otlp::OtlpMessage {
    const PATH: &'static str;
}
impl OtlpPath for ExportTraceServiceRequest {
    const PATH: &'static str = "v1/traces";
}
impl OtlpPath for ExportMetricsServiceRequest {
    const PATH: &'static str = "v1/metrics";
}
impl OtlpPath for ExportLogsServiceRequest {
    const PATH: &'static str = "v1/logs";
}

/// `base` + `/` + `path`, whether or not `base` ends in a slash.
fn join(base: &Url, path: &str) -> Result<Url, SendError> {
    let s = format!("{}/{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&s).map_err(|e| SendError::Url {
        url: s,
        detail: e.to_string(),
    })
}

/// `host:port` of a URL: the unit of the in-flight bound, and the address in connect errors.
fn authority(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// The right to have one request in flight to a target.
/// (Held for its `Drop`; `None` only if the semaphore were closed, which never happens.)
pub struct Permit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// The senders: one HTTP client and the per-target in-flight bounds. Clones share both.
#[derive(Clone)]
pub struct Senders {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    max_in_flight: usize,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Senders {
    pub fn new(cfg: &SenderConfig) -> Result<Senders, SendError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.max_in_flight_per_target)
            .no_proxy()
            .user_agent(concat!("loadgen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Client(error_chain(&e)))?;
        Ok(Senders {
            inner: Arc::new(Inner {
                client,
                max_in_flight: cfg.max_in_flight_per_target.max(1),
                limits: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Waits for room to send one more request to `url`'s target.
    pub async fn acquire(&self, url: &Url) -> Permit {
        let sem = self
            .inner
            .limits
            .lock()
            .entry(authority(url))
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.max_in_flight)))
            .clone();
        // The semaphore is never closed, so acquiring only waits.
        Permit(sem.acquire_owned().await.ok())
    }

    /// Sends `req`, holding `permit` until the outcome is known.
    pub async fn execute(&self, permit: Permit, req: Prepared) -> Outcome {
        let items = req.items;
        let result = self.post(req).await;
        drop(permit);
        Outcome { items, result }
    }

    /// Takes a permit for the request's target, then sends it.
    pub async fn send(&self, req: Result<Prepared, SendError>) -> Outcome {
        match req {
            Ok(req) => {
                let permit = self.acquire(&req.url).await;
                self.execute(permit, req).await
            }
            Err(e) => Outcome {
                items: 0,
                result: Err(e),
            },
        }
    }

    /// A Loki push to `{url}/loki/api/v1/push`.
    pub async fn send_loki(
        &self,
        url: &Url,
        tenant: Option<&str>,
        req: &wire::loki::PushRequest,
    ) -> Outcome {
        self.send(Prepared::loki(url, tenant, req)).await
    }

    /// A remote-write request to `url` (the full write URL).
    pub async fn send_remote_write(
        &self,
        url: &Url,
        tenant: Option<&str>,
        req: &wire::remote_write::WriteRequest,
    ) -> Outcome {
        self.send(Ok(Prepared::remote_write(url, tenant, req)))
            .await
    }

    /// OTLP/HTTP traces to `{url}/v1/traces`.
    pub async fn send_otlp_traces(&self, url: &Url, req: &ExportTraceServiceRequest) -> Outcome {
        self.send(Prepared::otlp(url, None, req, trace_items(req)))
            .await
    }

    /// OTLP/HTTP metrics to `{url}/v1/metrics`.
    pub async fn send_otlp_metrics(&self, url: &Url, req: &ExportMetricsServiceRequest) -> Outcome {
        self.send(Prepared::otlp(url, None, req, metric_items(req)))
            .await
    }

    /// OTLP/HTTP logs to `{url}/v1/logs`.
    pub async fn send_otlp_logs(&self, url: &Url, req: &ExportLogsServiceRequest) -> Outcome {
        self.send(Prepared::otlp(url, None, req, log_items(req)))
            .await
    }

    async fn post(&self, req: Prepared) -> Result<u16, SendError> {
        let mut rb = self.inner.client.post(req.url.clone()).body(req.body);
        for (name, value) in req.headers {
            rb = rb.header(name, value);
        }
        let resp = rb.send().await.map_err(|e| classify(&req.url, &e))?;
        let status = resp.status();
        // Read the body either way, so the connection can be reused.
        let body = resp.bytes().await.map_err(|e| classify(&req.url, &e))?;
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SNIPPET)])
                .trim()
                .to_string();
            Err(SendError::Status {
                url: req.url.to_string(),
                status: status.as_u16(),
                body: text,
            })
        }
    }
}

/// A `reqwest` error as a [`SendError`].
fn classify(url: &Url, e: &reqwest::Error) -> SendError {
    let detail = error_chain(e);
    if e.is_connect() {
        SendError::Connect {
            addr: authority(url),
            detail,
        }
    } else if e.is_timeout() {
        SendError::Timeout {
            url: url.to_string(),
            detail,
        }
    } else {
        SendError::Request {
            url: url.to_string(),
            detail,
        }
    }
}

/// An error and its sources, `: `-separated (reqwest's own message hides the root cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn loki_items(r: &wire::loki::PushRequest) -> u64 {
    r.streams.iter().map(|s| s.entries.len() as u64).sum()
}

fn remote_write_items(r: &wire::remote_write::WriteRequest) -> u64 {
    r.timeseries.iter().map(|t| t.samples.len() as u64).sum()
}

fn trace_items(r: &ExportTraceServiceRequest) -> u64 {
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len() as u64)
        .sum()
}

fn log_items(r: &ExportLogsServiceRequest) -> u64 {
    r.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len() as u64)
        .sum()
}

fn metric_items(r: &ExportMetricsServiceRequest) -> u64 {
    use wire::otlp::proto::metrics::v1::metric::Data;
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_or_without_a_slash() {
        let a = Url::parse("http://h:1/").unwrap();
        let b = Url::parse("http://h:1/otlp").unwrap();
        assert_eq!(
            join(&a, "v1/traces").unwrap().as_str(),
            "http://h:1/v1/traces"
        );
        assert_eq!(
            join(&b, "v1/traces").unwrap().as_str(),
            "http://h:1/otlp/v1/traces"
        );
        assert_eq!(
            authority(&Url::parse("https://x.example/").unwrap()),
            "x.example:443"
        );
    }

    #[test]
    fn error_keys() {
        let s = SendError::Status {
            url: "u".into(),
            status: 429,
            body: String::new(),
        };
        assert_eq!(s.kind(), "429");
        let c = SendError::Connect {
            addr: "127.0.0.1:9".into(),
            detail: "refused".into(),
        };
        assert_eq!(c.kind(), "connect");
        assert!(c.to_string().contains("127.0.0.1:9"));
    }
}
