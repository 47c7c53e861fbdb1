//! Payload formats: what a device's generated signals become on the wire, the analog of
//! lading's `lading_payload`. A [`Payload`] is one request's worth of Loki push, remote write or
//! OTLP export; [`Payload::prepare`] encodes it for a [`Target`] into a [`Prepared`] request that
//! a transport ([`crate::send::Senders`], or the engine's fake in tests) posts.
//!
//! | payload | request |
//! |---|---|
//! | Loki push | `POST {url}/loki/api/v1/push`, protobuf + snappy block, `X-Scope-OrgID` |
//! | remote write 1.0 | `POST {url}` (the full write URL), protobuf + snappy, `Content-Encoding: snappy`, `X-Prometheus-Remote-Write-Version: 0.1.0` |
//! | OTLP traces, metrics, logs | `POST {url}/v1/traces` (`/v1/metrics`, `/v1/logs`), protobuf |
//!
//! Building payloads from generator output: [`log_payload`] (a log entry as a Loki push or OTLP
//! logs), and [`otlp`] for OTLP logs and metrics; the generators themselves live
//! in [`crate::generate`].

use reqwest::Url;
use wire::otlp::{
    Encoding, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};

use crate::generate::LogEntry;
use crate::schedule::Signal;
use crate::send::{SendError, Target};

pub mod otlp;

#[cfg(test)]
pub(crate) mod tests;

use wire::http::PROTOBUF;
/// The tenant header of Loki, Mimir and Tempo.
pub use wire::http::TENANT_HEADER;

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
    pub(crate) url: Url,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) items: u64,
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
        url: wire::redact::url(&s).into_owned(),
        detail: e.to_string(),
    })
}

/// A log entry as a Loki push, or as OTLP logs.
pub fn log_payload(entry: LogEntry, otlp: bool) -> Payload {
    if otlp {
        Payload::OtlpLogs(crate::payload::otlp::logs_request(std::slice::from_ref(
            &entry,
        )))
    } else {
        loki_push(entry)
    }
}

/// One log entry as a Loki push of one stream.
fn loki_push(entry: LogEntry) -> Payload {
    Payload::Loki(wire::loki::PushRequest {
        streams: vec![wire::loki::Stream {
            labels: wire::labels::format_label_set(&entry.labels),
            entries: vec![wire::loki::Entry::new(entry.timestamp_ns, entry.line)],
            hash: 0,
        }],
    })
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
