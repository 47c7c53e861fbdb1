//! `loki_push`: a receiver for Loki's push API, like Alloy's `loki.source.api`.
//!
//! ```toml
//! [sources.loki_in]
//! type = "loki_push"
//! address = "127.0.0.1:3100"          # default
//! labels = { source = "pos" }         # static labels set on every stream (they win)
//! use_incoming_timestamp = false      # default: entries get the time they were received
//! max_body_bytes = 20971520
//! max_decompressed_bytes = 104857600
//! max_decoded_bytes = 67108864        # decompressed bytes + estimated decoded heap, per request
//! max_inflight_bytes = 134217728      # all requests at once (bodies, decompressed, decoded)
//! body_read_timeout = "30s"           # a body (gRPC: message) not in whole by then: 408
//! tls = { cert_file = "tls.crt", key_file = "tls.key" }   # optional; client_ca_file for mTLS
//! auth = { htpasswd_file = "htpasswd" }                   # optional; 401 without credentials
//! ```
//!
//! `POST /loki/api/v1/push`: protobuf + snappy (`application/x-protobuf`, what Promtail and
//! Alloy send), JSON (`application/json`), `Content-Encoding: gzip`/`deflate` (decoded by
//! `wire::loki::decode_http`, the way Loki's distributor picks a decoder). 204 on success;
//! 400 with the reason for an undecodable body or a stream whose labels do not parse or are
//! empty (the whole push is refused, as Loki does); 413 over `max_body_bytes`
//! (or `max_decompressed_bytes` once decompressed, or `max_decoded_bytes` by the decoded-size
//! estimate of [`wire::budget`], before decoding, or by the bound on the converted batch, before
//! converting: a stream's labels are copied onto each entry); 408 for a body not in whole
//! within `body_read_timeout`; 429 with `Retry-After` when a downstream
//! queue is full or the receiver's `max_inflight_bytes` is taken by other requests (see
//! [`http_common`]). Decompression and decoding run on the blocking pool. `GET /ready` answers
//! 200.

use std::collections::BTreeMap;
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
use crate::event::{Labels, LogBatch, LogRecord, SharedLabels, Signal};
use crate::selfmon::ComponentMetrics;

/// The settings of a `loki_push` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiPushConfig {
    #[serde(default = "default_address")]
    pub address: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub use_incoming_timestamp: bool,
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
    /// Who may push (see [`http_common::Door`]).
    #[serde(default)]
    pub auth: Option<access::AuthSettings>,
}

fn default_address() -> String {
    "127.0.0.1:3100".into()
}

/// Builds a `loki_push` source.
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let config: LokiPushConfig = BuildError::parse(table)?;
    if let Some(bad) = config
        .labels
        .keys()
        .find(|k| !wire::labels::is_valid_label_name(k))
    {
        return Err(BuildError::Invalid {
            key: "labels".into(),
            reason: format!("{bad:?} is not a valid label name"),
        });
    }
    let door = http_common::Door::build(config.tls.as_ref(), config.auth.as_ref())?;
    Ok(Box::new(LokiPushSource { config, door }))
}

/// A built `loki_push` source.
pub struct LokiPushSource {
    config: LokiPushConfig,
    door: http_common::Door,
}

struct PushState {
    out: crate::output::Output<LogBatch>,
    metrics: ComponentMetrics,
    config: LokiPushConfig,
    budget: Arc<http_common::InflightBudget>,
}

impl Source for LokiPushSource {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Logs]
    }

    fn declare(&self, metrics: &ComponentMetrics) {
        metrics.declare(Signal::Logs, &super::http_common::Refusal::REASONS);
        self.door.declare(metrics);
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(async move {
            let listener =
                http_common::bind(&self.config.address, &ctx.name, &ctx.listen_addrs).await?;
            let tls = self.door.tls(&ctx.metrics);
            let gate_metrics = ctx.metrics.clone();
            let router = router(self.config, ctx.outputs.logs, ctx.metrics);
            let router = self.door.protect(router, &gate_metrics);
            http_common::serve(listener, router, tls, ctx.shutdown).await
        })
    }
}

/// The receiver's routes with their own in-flight budget, not bound to any listener: what
/// [`Source::run`] serves, and what the fuzz targets (`fuzz/`) drive in process.
pub fn router(
    config: LokiPushConfig,
    out: crate::output::Output<LogBatch>,
    metrics: ComponentMetrics,
) -> Router {
    let state = Arc::new(PushState {
        budget: http_common::InflightBudget::new(config.max_inflight_bytes, &metrics),
        out,
        metrics,
        config,
    });
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/ready", get(http_common::ready))
        .with_state(state)
}

async fn push(State(st): State<Arc<PushState>>, headers: HeaderMap, body: Body) -> Response {
    let mut charge = st.budget.charge();
    let limits = http_common::BodyLimits {
        max_bytes: st.config.max_body_bytes,
        timeout: st.config.body_read_timeout,
    };
    let raw = http_common::read_body_charged(&headers, body, limits, &mut charge).await;
    let st2 = st.clone();
    let done = http_common::blocking(move || {
        let decoded = raw.and_then(|raw| decode_charged(&headers, &raw, &st2.config, &mut charge));
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        http_common::push_response(
            decoded,
            |req| convert(req, &st2.config, now),
            &st2.out,
            &st2.metrics,
            Signal::Logs,
        )
    })
    .await;
    done.unwrap_or_else(|r| {
        r.count(&st.metrics, Signal::Logs, 1);
        r.respond_text()
    })
}

/// Decompresses and decodes a push within the request's bounds, charging `charge` for every
/// decompression buffer, before decoding the decoded-size estimate, before converting the bound
/// on the converted batch ([`super::converted`]).
pub fn decode_charged(
    headers: &HeaderMap,
    raw: &[u8],
    config: &LokiPushConfig,
    charge: &mut http_common::Charge,
) -> Result<wire::loki::PushRequest, Refusal> {
    let payload = wire::loki::push_payload(
        http_common::header_str(headers, header::CONTENT_TYPE),
        http_common::header_str(headers, header::CONTENT_ENCODING),
        raw,
        config.max_decompressed_bytes.min(config.max_decoded_bytes),
        &mut |n| charge.grow(n),
    )?;
    http_common::admit_decode(
        charge,
        config.max_decoded_bytes,
        payload.len(),
        payload.estimate(),
    )?;
    let req = payload.decode()?;
    // Decompressed bytes are gone once decoded (a JSON body read as is stays with the caller).
    if !matches!(
        payload,
        wire::loki::PushPayload::Json(std::borrow::Cow::Borrowed(_))
    ) {
        charge.release(payload.len());
    }
    drop(payload);
    let converted = super::converted::loki_push(&req, &config.labels);
    http_common::admit_converted(charge, config.max_decoded_bytes, converted)?;
    Ok(req)
}

/// Decodes a push body as Loki does (what the property tests feed arbitrary bytes).
pub fn decode(
    headers: &HeaderMap,
    raw: &[u8],
    limit: usize,
) -> Result<wire::loki::PushRequest, Refusal> {
    wire::loki::decode_http(
        http_common::header_str(headers, header::CONTENT_TYPE),
        http_common::header_str(headers, header::CONTENT_ENCODING),
        raw,
        limit,
    )
    .map_err(Refusal::from)
}

/// Turns a push into records; a stream with bad or no labels refuses the whole push (with the
/// number of entries refused). A stream's labels are parsed once and shared by its entries
/// ([`SharedLabels`]); lines and structured metadata are moved, not copied.
pub fn convert(
    req: wire::loki::PushRequest,
    config: &LokiPushConfig,
    now_ns: i64,
) -> Result<LogBatch, (Refusal, u64)> {
    let total = req
        .streams
        .iter()
        .map(|s| s.entries.len() as u64)
        .sum::<u64>();
    let mut batch = Vec::with_capacity(total as usize);
    for s in req.streams {
        let mut labels = match wire::labels::parse_label_set(&s.labels) {
            Ok(l) => Labels::new(l),
            Err(e) => {
                let why = format!("stream {:?}: {e}", s.labels);
                return Err((Refusal::Invalid(why), total));
            }
        };
        for (k, v) in &config.labels {
            labels.insert(k.clone(), v.clone());
        }
        labels.retain(|_, v| !v.is_empty());
        if labels.is_empty() {
            let why = format!("stream {:?}: at least one label pair is required", s.labels);
            return Err((Refusal::Invalid(why), total));
        }
        let labels = SharedLabels::new(labels);
        for e in s.entries {
            batch.push(LogRecord {
                labels: labels.clone(),
                timestamp_ns: if config.use_incoming_timestamp {
                    e.timestamp_ns()
                } else {
                    now_ns
                },
                line: e.line,
                structured_metadata: e
                    .structured_metadata
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect(),
                fields: Default::default(),
            });
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod receiver_tests {
    use super::*;
    use axum::http::StatusCode;
    use wire::loki::{Entry, LabelPair, PushRequest, Stream};

    fn config(toml_src: &str) -> LokiPushConfig {
        BuildError::parse(toml::from_str(toml_src).unwrap()).unwrap()
    }

    fn push_req(labels: &str) -> PushRequest {
        let mut e = Entry::new(1_700_000_000_000_000_000, "checkout completed till=07");
        e.structured_metadata.push(LabelPair {
            name: "trace_id".into(),
            value: "5b8efff798038103d269b633813fc60c".into(),
        });
        PushRequest {
            streams: vec![Stream {
                labels: labels.into(),
                entries: vec![e],
                hash: 0,
            }],
        }
    }

    #[test]
    fn static_labels_and_timestamps() {
        let c = config("labels = { source = \"pos\", app = \"override\" }");
        let b = convert(push_req(r#"{app="checkout", env="prod"}"#), &c, 7).unwrap();
        assert_eq!(
            b[0].labels.to_loki_string(),
            r#"{app="override", env="prod", source="pos"}"#
        );
        assert_eq!(b[0].timestamp_ns, 7);
        assert_eq!(b[0].structured_metadata[0].0, "trace_id");
        let c = config("use_incoming_timestamp = true");
        let b = convert(push_req(r#"{app="checkout"}"#), &c, 7).unwrap();
        assert_eq!(b[0].timestamp_ns, 1_700_000_000_000_000_000);
    }

    #[test]
    fn a_streams_entries_share_one_label_set() {
        let mut req = push_req(r#"{app="checkout", env="prod"}"#);
        let e = req.streams[0].entries[0].clone();
        req.streams[0].entries.push(e);
        let mut other = req.streams[0].clone();
        other.labels = r#"{app="other"}"#.into();
        req.streams.push(other);
        let b = convert(req, &config(""), 0).unwrap();
        assert_eq!(b.len(), 4);
        assert!(SharedLabels::ptr_eq(&b[0].labels, &b[1].labels));
        assert!(SharedLabels::ptr_eq(&b[2].labels, &b[3].labels));
        assert!(!SharedLabels::ptr_eq(&b[1].labels, &b[2].labels));
        assert_eq!(b[3].labels.get("app"), Some("other"));
        assert_eq!(b[1].line, "checkout completed till=07");
    }

    #[test]
    fn bad_or_empty_labels_refuse_the_push() {
        let c = config("");
        let (r, n) = convert(push_req("{app=checkout}"), &c, 0).unwrap_err();
        assert_eq!((r.status(), n), (StatusCode::BAD_REQUEST, 1));
        let (r, _) = convert(push_req("{}"), &c, 0).unwrap_err();
        assert!(r.to_string().contains("at least one label"), "{r}");
        // Static labels make an empty stream acceptable.
        let c = config("labels = { source = \"pos\" }");
        assert!(convert(push_req("{}"), &c, 0).is_ok());
    }

    #[test]
    fn config_refuses_unknown_keys_and_bad_label_names() {
        assert!(build(toml::from_str("adress = \"x\"").unwrap()).is_err());
        let err = build(toml::from_str("labels = { \"a-b\" = \"x\" }").unwrap())
            .err()
            .unwrap();
        assert!(matches!(err, BuildError::Invalid { .. }));
    }
}
