//! `remote_write`: a Prometheus remote write 1.0 receiver.
//!
//! ```toml
//! [sources.rw_in]
//! type = "remote_write"
//! address = "127.0.0.1:19291"         # default (Thanos Receive's port: clear of Prometheus'
//!                                     # 9090 and Mimir's 9009, which the backends use)
//! max_body_bytes = 20971520
//! max_decompressed_bytes = 104857600
//! max_decoded_bytes = 67108864        # decompressed bytes + estimated decoded heap, per request
//! max_inflight_bytes = 134217728      # all requests at once (bodies, decompressed, decoded)
//! body_read_timeout = "30s"           # a body (gRPC: message) not in whole by then: 408
//! tls = { cert_file = "tls.crt", key_file = "tls.key" }   # optional; client_ca_file for mTLS
//! auth = { bearer_tokens_file = "tokens" }                # optional; 401 without credentials
//! ```
//!
//! `POST /api/v1/write` (Prometheus) and `/api/v1/push` (Mimir): `prometheus.WriteRequest` as
//! protobuf in the snappy block format. 204 on success; 415 for a `Content-Type` other than
//! protobuf or a `Content-Encoding` other than snappy; 400 with the reason for a body that does
//! not decode or a series whose labels break the remote-write rules
//! (`wire::remote_write::check_series`: sorted, unique, legal names, a `__name__`) — the whole
//! request is refused then, nothing forwarded; 413 over `max_body_bytes`
//! (or `max_decompressed_bytes` by the snappy header, before decompressing, or
//! `max_decoded_bytes` by the decoded-size estimate of [`wire::budget`], before decoding: 100 MiB
//! of empty series would decode into gigabytes; or by the bound on the converted batch, before
//! converting: a series' labels are copied onto each of its samples); 408 for a body not in
//! whole within `body_read_timeout`; 429 with `Retry-After` when a downstream queue
//! is full or the receiver's `max_inflight_bytes` is taken by other requests (see
//! [`http_common`]). Decompression and decoding run on the blocking pool. Staleness markers pass through bit for bit;
//! exemplars, metadata and native histograms are not forwarded.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::http_common::{self, Refusal};
use super::{BuildError, Source, SourceContext, SourceError};
use crate::BoxFuture;
use crate::event::{Labels, MetricBatch, MetricSample, SharedLabels, Signal};
use crate::selfmon::ComponentMetrics;

/// The settings of a `remote_write` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    #[serde(default = "default_address")]
    pub address: String,
    #[serde(default = "http_common::default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "http_common::default_max_decompressed_bytes")]
    pub max_decompressed_bytes: usize,
    #[serde(default = "http_common::default_max_decoded_bytes")]
    pub max_decoded_bytes: usize,
    #[serde(default = "http_common::default_max_inflight_bytes")]
    pub max_inflight_bytes: usize,
    #[serde(
        default = "http_common::default_body_read_timeout",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub body_read_timeout: std::time::Duration,
    /// TLS on the listener (see [`http_common::Door`]).
    #[serde(default)]
    pub tls: Option<access::TlsSettings>,
    /// Who may write (see [`http_common::Door`]).
    #[serde(default)]
    pub auth: Option<access::AuthSettings>,
}

fn default_address() -> String {
    "127.0.0.1:19291".into()
}

/// Builds a `remote_write` source.
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let config: RemoteWriteConfig = BuildError::parse(table)?;
    let door = http_common::Door::build(config.tls.as_ref(), config.auth.as_ref())?;
    Ok(Box::new(RemoteWriteSource { config, door }))
}

/// A built `remote_write` source.
pub struct RemoteWriteSource {
    config: RemoteWriteConfig,
    door: http_common::Door,
}

struct RwState {
    out: crate::output::Output<MetricBatch>,
    metrics: ComponentMetrics,
    config: RemoteWriteConfig,
    budget: Arc<http_common::InflightBudget>,
}

impl Source for RemoteWriteSource {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Metrics]
    }

    fn declare(&self, metrics: &ComponentMetrics) {
        metrics.declare(Signal::Metrics, &super::http_common::Refusal::REASONS);
        self.door.declare(metrics);
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(async move {
            let listener =
                http_common::bind(&self.config.address, &ctx.name, &ctx.listen_addrs).await?;
            let tls = self.door.tls(&ctx.metrics);
            let gate_metrics = ctx.metrics.clone();
            let router = router(self.config, ctx.outputs.metrics, ctx.metrics);
            let router = self.door.protect(router, &gate_metrics);
            http_common::serve(listener, router, tls, ctx.shutdown).await
        })
    }
}

/// The receiver's routes with their own in-flight budget, not bound to any listener: what
/// [`Source::run`] serves, and what the fuzz targets (`fuzz/`) drive in process.
pub fn router(
    config: RemoteWriteConfig,
    out: crate::output::Output<MetricBatch>,
    metrics: ComponentMetrics,
) -> Router {
    let state = Arc::new(RwState {
        budget: http_common::InflightBudget::new(config.max_inflight_bytes, &metrics),
        out,
        metrics,
        config,
    });
    Router::new()
        .route("/api/v1/write", post(write))
        .route("/api/v1/push", post(write))
        .route("/ready", get(http_common::ready))
        .with_state(state)
}

async fn write(State(st): State<Arc<RwState>>, headers: HeaderMap, body: Body) -> Response {
    let mut charge = st.budget.charge();
    let raw = match check_headers(&headers) {
        Ok(()) => {
            let limits = http_common::BodyLimits {
                max_bytes: st.config.max_body_bytes,
                timeout: st.config.body_read_timeout,
            };
            http_common::read_body_charged(&headers, body, limits, &mut charge).await
        }
        Err(r) => Err(r),
    };
    let st2 = st.clone();
    let done = http_common::blocking(move || {
        let decoded = raw.and_then(|raw| decode_charged(&raw, &st2.config, &mut charge));
        http_common::push_response(decoded, convert, &st2.out, &st2.metrics, Signal::Metrics)
    })
    .await;
    done.unwrap_or_else(|r| {
        r.count(&st.metrics, Signal::Metrics, 1);
        r.respond_text()
    })
}

/// Decompresses and decodes a body within the request's bounds, charging `charge`: the
/// snappy header's length before decompressing, the decoded-size estimate before decoding, the
/// bound on the converted batch ([`super::converted`]) before converting.
pub fn decode_charged(
    raw: &[u8],
    config: &RemoteWriteConfig,
    charge: &mut http_common::Charge,
) -> Result<wire::remote_write::WriteRequest, Refusal> {
    let limit = config.max_decompressed_bytes.min(config.max_decoded_bytes);
    let size = wire::compression::snappy_decompressed_len(raw)?;
    if size > limit {
        return Err(Refusal::TooLarge { limit });
    }
    charge.grow(size)?;
    let payload = wire::compression::snappy_decompress(raw, limit)?;
    let estimate = wire::budget::protobuf_estimate(&payload, &wire::budget::WRITE_REQUEST);
    http_common::admit_decode(charge, config.max_decoded_bytes, payload.len(), estimate)?;
    let req = <wire::remote_write::WriteRequest as prost::Message>::decode(&payload[..])
        .map_err(|e| Refusal::from(wire::WireError::from(e)))?;
    // The decompressed bytes are gone once decoded.
    charge.release(payload.len());
    drop(payload);
    let converted = super::converted::remote_write(&req);
    http_common::admit_converted(charge, config.max_decoded_bytes, converted)?;
    Ok(req)
}

/// Remote write 1.0 is protobuf in snappy; other types and encodings are refused with 415.
fn check_headers(headers: &HeaderMap) -> Result<(), Refusal> {
    if let Some(ct) = http_common::header_str(headers, header::CONTENT_TYPE) {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case(wire::http::PROTOBUF) {
            return Err(Refusal::UnsupportedMediaType(format!(
                "unsupported Content-Type {ct:?}, want {}",
                wire::http::PROTOBUF
            )));
        }
    }
    if let Some(ce) = http_common::header_str(headers, header::CONTENT_ENCODING)
        && !ce.trim().eq_ignore_ascii_case(wire::http::SNAPPY)
    {
        return Err(Refusal::UnsupportedMediaType(format!(
            "unsupported Content-Encoding {ce:?}, want snappy"
        )));
    }
    Ok(())
}

/// Decodes a snappy protobuf body (what the property tests feed arbitrary bytes).
pub fn decode(raw: &[u8], limit: usize) -> Result<wire::remote_write::WriteRequest, Refusal> {
    wire::remote_write::decode(raw, limit).map_err(Refusal::from)
}

/// One [`MetricSample`] per sample, the samples of a series sharing its label set; the first
/// series breaking the label rules refuses the whole request (with the number of samples
/// refused).
pub fn convert(req: wire::remote_write::WriteRequest) -> Result<MetricBatch, (Refusal, u64)> {
    let total: u64 = req.timeseries.iter().map(|t| t.samples.len() as u64).sum();
    let mut batch = Vec::with_capacity(total as usize);
    for ts in req.timeseries {
        if let Err(problem) = wire::remote_write::check_series(&ts.labels) {
            return Err((Refusal::Invalid(problem.to_string()), total.max(1)));
        }
        let labels = SharedLabels::new(Labels::new(
            ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
        ));
        for s in ts.samples {
            batch.push(MetricSample {
                labels: labels.clone(),
                value: s.value,
                timestamp_ms: s.timestamp,
            });
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod receiver_tests {
    use super::*;
    use axum::http::StatusCode;
    use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest, stale_nan};

    fn req(labels: &[(&str, &str)]) -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
                samples: vec![
                    Sample {
                        value: 3.0,
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
        }
    }

    #[test]
    fn samples_keep_labels_and_stale_markers() {
        let b = convert(req(&[("__name__", "pos_checkouts_total"), ("till", "07")])).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].name(), Some("pos_checkouts_total"));
        assert_eq!(b[0].labels.get("till"), Some("07"));
        assert!(wire::remote_write::is_stale_nan(b[1].value));
    }

    #[test]
    fn bad_series_refuse_the_request() {
        let (r, n) = convert(req(&[("till", "07")])).unwrap_err();
        assert_eq!((r.status(), n), (StatusCode::BAD_REQUEST, 2));
        assert!(r.to_string().contains("no metric name"), "{r}");
        let (r, _) = convert(req(&[("__name__", "x"), ("b", "1"), ("a", "2")])).unwrap_err();
        assert!(r.to_string().contains("not sorted"), "{r}");
    }

    #[test]
    fn headers_other_than_snappy_protobuf_are_415() {
        let mut h = HeaderMap::new();
        assert!(check_headers(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let r = check_headers(&h).unwrap_err();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        h.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert!(check_headers(&h).is_err());
    }
}
