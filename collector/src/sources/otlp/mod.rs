//! `otlp`: the OTLP receiver, over HTTP and gRPC, for logs, metrics and traces.
//!
//! ```toml
//! [sources.otlp_in]
//! type = "otlp"
//! http_address = "127.0.0.1:4318"     # default; OTLP/HTTP
//! grpc_address = "127.0.0.1:4317"     # default; OTLP/gRPC
//! http_enabled = true                 # either listener can be turned off
//! grpc_enabled = true
//! max_body_bytes = 20971520           # a body as received (413 over it)
//! max_decompressed_bytes = 104857600  # after gzip (413 over it); the largest gRPC message
//! max_decoded_bytes = 67108864        # decompressed bytes + estimated decoded heap (413 over it)
//! max_inflight_bytes = 134217728      # all requests at once (429 / RESOURCE_EXHAUSTED over it)
//! body_read_timeout = "30s"           # a body (gRPC: message) not in whole by then: 408
//! add_unit_suffixes = true            # metric names get _seconds, _bytes, ...
//! promote_resource_attributes = []    # resource attributes copied onto every series
//! delta_max_series = 100000           # delta series made cumulative at most (see [`delta`])
//! delta_max_stale = "5m"              # a delta series not updated for this long is forgotten
//! log_index_attributes = [...]        # resource attributes that become log stream labels
//! tls = { cert_file = "tls.crt", key_file = "tls.key" }   # optional, both listeners; client_ca_file for mTLS
//! auth = { htpasswd_file = "htpasswd" }   # optional, both listeners: 401 / UNAUTHENTICATED without credentials
//! ```
//!
//! OTLP/HTTP (`POST /v1/logs`, `/v1/metrics`, `/v1/traces`), per the OTLP specification:
//! - `Content-Type: application/x-protobuf` or `application/json`, anything else 415;
//!   `Content-Encoding: gzip` or none (another encoding: 400 naming the supported ones);
//! - 200 with an `Export*ServiceResponse` in the request's encoding, with `partial_success`
//!   when some items could not be converted (see [`logs`] and [`metrics`]);
//! - 400 with a `google.rpc.Status` for a body that cannot be decoded, 413 over
//!   `max_body_bytes` (or `max_decompressed_bytes` after gzip, or `max_decoded_bytes` by the
//!   decoded-size estimate of [`wire::budget`], checked before decoding, or by the bound on
//!   the converted batch, checked before converting); 408 for a body not in whole within
//!   `body_read_timeout` (`DEADLINE_EXCEEDED` on gRPC);
//! - 429 with `Retry-After` when the receiver's `max_inflight_bytes` is taken by other requests
//!   (bodies, decompressed bytes and decoded estimates are charged as they appear; see
//!   [`http_common`]); decompression and decoding run on the blocking pool;
//! - 429 with `Retry-After` when a downstream queue is full (nothing is buffered here: the
//!   client keeps the data and retries), 503 with `Retry-After` while shutting down.
//!
//! OTLP/gRPC (the three `Export` services; requests compressed with gzip or zstd accepted):
//! `INVALID_ARGUMENT` for a refused payload, and, as the
//! spec's "OTLP/gRPC Throttling" says, `UNAVAILABLE` with a `google.rpc.RetryInfo` detail when a
//! downstream queue is full. Traces pass through as received (`ResourceSpans`).
//!
//! Accounting (`received = sent + discarded`): spans for traces, log records for logs, and for
//! metrics the samples the conversion produced plus one per rejected data point. Items that
//! could not be converted count as `discarded{reason="invalid"}`, delta points the running
//! totals refused with their own reason (`delta_series_limit`, `delta_out_of_order`,
//! `delta_older_start`); see [`http_common`] for the rest.

pub mod delta;
pub mod grpc;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod test_data;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value as Json;
use wire::otlp::proto::common::v1::AnyValue;
use wire::otlp::proto::common::v1::any_value::Value;
use wire::otlp::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};

use super::http_common::{self, Refusal};
use super::{BuildError, Source, SourceContext, SourceError};
use crate::BoxFuture;
use crate::event::{Items, Signal};
use crate::selfmon::ComponentMetrics;

/// The settings of an `otlp` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    #[serde(default = "default_http_address")]
    pub http_address: String,
    #[serde(default = "default_grpc_address")]
    pub grpc_address: String,
    #[serde(default = "yes")]
    pub http_enabled: bool,
    #[serde(default = "yes")]
    pub grpc_enabled: bool,
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
    #[serde(default = "yes")]
    pub add_unit_suffixes: bool,
    #[serde(default)]
    pub promote_resource_attributes: Vec<String>,
    #[serde(default = "default_index")]
    pub log_index_attributes: Vec<String>,
    #[serde(default = "default_delta_max_series")]
    pub delta_max_series: usize,
    #[serde(
        default = "default_delta_max_stale",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub delta_max_stale: std::time::Duration,
    /// TLS on both listeners (see [`http_common::Door`]).
    #[serde(default)]
    pub tls: Option<access::TlsSettings>,
    /// Who may export, over HTTP and gRPC (see [`http_common::Door`]).
    #[serde(default)]
    pub auth: Option<access::AuthSettings>,
}

fn default_delta_max_series() -> usize {
    delta::DEFAULT_MAX_SERIES
}
fn default_delta_max_stale() -> std::time::Duration {
    delta::DEFAULT_MAX_STALE
}

fn default_http_address() -> String {
    "127.0.0.1:4318".into()
}
fn default_grpc_address() -> String {
    "127.0.0.1:4317".into()
}
fn yes() -> bool {
    true
}
fn default_index() -> Vec<String> {
    logs::DEFAULT_INDEX_ATTRIBUTES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Builds an `otlp` source.
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let config: OtlpConfig = BuildError::parse(table)?;
    if !config.http_enabled && !config.grpc_enabled {
        return Err(BuildError::Invalid {
            key: "http_enabled".into(),
            reason: "at least one of http_enabled and grpc_enabled must be true".into(),
        });
    }
    let door = http_common::Door::build(config.tls.as_ref(), config.auth.as_ref())?;
    Ok(Box::new(OtlpSource { config, door }))
}

/// A built `otlp` source.
pub struct OtlpSource {
    config: OtlpConfig,
    door: http_common::Door,
}

impl Source for OtlpSource {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn declare(&self, metrics: &ComponentMetrics) {
        for signal in Signal::ALL {
            metrics.declare(signal, &http_common::Refusal::REASONS);
        }
        let delta: Vec<&str> = delta::DeltaRefusal::ALL
            .iter()
            .map(|r| r.reason())
            .collect();
        metrics.declare(Signal::Metrics, &delta);
        self.door.declare(metrics);
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(async move {
            let c = self.config;
            let door = self.door;
            let tls = door.tls(&ctx.metrics);
            let gate = door.gate(&ctx.metrics);
            let http_listener = match c.http_enabled {
                true => {
                    Some(http_common::bind(&c.http_address, &ctx.name, &ctx.listen_addrs).await?)
                }
                false => None,
            };
            let grpc_key = format!("{}.grpc", ctx.name);
            let grpc_listener = match c.grpc_enabled {
                true => {
                    Some(http_common::bind(&c.grpc_address, &grpc_key, &ctx.listen_addrs).await?)
                }
                false => None,
            };
            let receiver = Receiver::new(c, ctx.outputs, ctx.metrics);
            let http = async {
                match http_listener {
                    Some(l) => {
                        let router =
                            door.protect(http::router(receiver.clone()), &receiver.metrics);
                        http_common::serve(l, router, tls.clone(), ctx.shutdown.clone()).await
                    }
                    None => Ok(()),
                }
            };
            let grpc = async {
                match grpc_listener {
                    Some(l) => {
                        let (tls, gate) = (tls.clone(), gate.clone());
                        grpc::serve(l, receiver.clone(), tls, gate, ctx.shutdown.clone()).await
                    }
                    None => Ok(()),
                }
            };
            let (h, g) = tokio::join!(http, grpc);
            h.and(g)
        })
    }
}

/// What the HTTP and gRPC front ends share: conversion and hand-off.
pub struct Receiver {
    outputs: super::Outputs,
    metrics: ComponentMetrics,
    max_body_bytes: usize,
    body_read_timeout: std::time::Duration,
    max_decompressed_bytes: usize,
    max_decoded_bytes: usize,
    /// Shared by the HTTP and gRPC listeners.
    budget: Arc<http_common::InflightBudget>,
    metric_options: metrics::MetricOptions,
    log_index: Vec<String>,
    deltas: delta::Deltas,
}

/// Items accepted with some rejected: the `partial_success` of an export response.
#[derive(Debug, Default, PartialEq)]
pub struct PartialSuccess {
    pub rejected: i64,
    pub message: String,
}

/// A conversion's output: the batch, and the items that could not be converted.
#[derive(Debug)]
pub struct Converted<T> {
    pub batch: T,
    pub rejected: u64,
    /// The first reason, as the partial success' `error_message`.
    pub error: Option<String>,
    /// The part of `rejected` counted under another reason than `invalid`.
    pub reasons: Vec<(&'static str, u64)>,
}

impl<T: Default> Default for Converted<T> {
    fn default() -> Self {
        Converted {
            batch: T::default(),
            rejected: 0,
            error: None,
            reasons: Vec::new(),
        }
    }
}

impl<T> Converted<T> {
    pub fn reject(&mut self, why: String) {
        self.reject_n(1, why);
    }

    pub fn reject_n(&mut self, n: u64, why: String) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        self.error.get_or_insert(why);
    }

    /// Rejects `n` items counted as `discarded{reason}`.
    pub fn reject_because(&mut self, reason: &'static str, n: u64, why: String) {
        if n == 0 {
            return;
        }
        self.reject_n(n, why);
        match self.reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += n,
            None => self.reasons.push((reason, n)),
        }
    }
}

impl Receiver {
    /// The receiver of `config` (its addresses unused), with its own in-flight budget: what
    /// [`Source::run`] serves with [`http::router`] and [`grpc::serve`], and what the fuzz
    /// targets (`fuzz/`) drive in process through [`http::router`] and [`grpc::server`].
    pub fn new(
        config: OtlpConfig,
        outputs: super::Outputs,
        metrics: ComponentMetrics,
    ) -> Arc<Self> {
        let c = config;
        Arc::new(Receiver {
            budget: http_common::InflightBudget::new(c.max_inflight_bytes, &metrics),
            max_decoded_bytes: c.max_decoded_bytes,
            outputs,
            metrics,
            max_body_bytes: c.max_body_bytes,
            body_read_timeout: c.body_read_timeout,
            max_decompressed_bytes: c.max_decompressed_bytes,
            metric_options: metrics::MetricOptions {
                add_unit_suffixes: c.add_unit_suffixes,
                promote_resource_attributes: c.promote_resource_attributes,
            },
            log_index: c.log_index_attributes,
            deltas: delta::Deltas::new(c.delta_max_series, c.delta_max_stale),
        })
    }

    /// Counts the rejected part of a conversion and hands the rest on.
    fn deliver<T: Clone + Items>(
        &self,
        signal: Signal,
        converted: Converted<T>,
        out: &crate::output::Output<T>,
    ) -> Result<PartialSuccess, Refusal> {
        let partial = PartialSuccess {
            rejected: converted.rejected as i64,
            message: converted.error.unwrap_or_default(),
        };
        // Items that could not be converted: received, and discarded as invalid (or why).
        self.metrics.received(signal).add(converted.rejected);
        let mut invalid = converted.rejected;
        for (reason, n) in &converted.reasons {
            self.metrics.discarded(signal, reason).add(*n);
            invalid -= n;
        }
        self.metrics.discarded(signal, "invalid").add(invalid);
        http_common::offer(out, converted.batch, &self.metrics, signal)?;
        Ok(partial)
    }

    pub fn logs(&self, req: ExportLogsServiceRequest) -> Result<PartialSuccess, Refusal> {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let converted = logs::convert(req, &self.log_index, now);
        self.deliver(Signal::Logs, converted, &self.outputs.logs)
    }

    pub fn metrics(&self, req: ExportMetricsServiceRequest) -> Result<PartialSuccess, Refusal> {
        let converted = metrics::convert_with(req, &self.metric_options, &self.deltas);
        self.deliver(Signal::Metrics, converted, &self.outputs.metrics)
    }

    pub fn traces(&self, req: ExportTraceServiceRequest) -> Result<PartialSuccess, Refusal> {
        let converted = Converted {
            batch: req.resource_spans,
            ..Default::default()
        };
        self.deliver(Signal::Traces, converted, &self.outputs.traces)
    }
}

pub use wire::otlp::rpc::code;

/// The gRPC code a refusal maps to (also the `code` of an OTLP/HTTP error body).
pub fn grpc_code(r: &Refusal) -> i32 {
    match r {
        Refusal::TooLarge { .. } | Refusal::Oversized { .. } => code::RESOURCE_EXHAUSTED,
        // Retryable: sent with RetryInfo, like a full queue.
        Refusal::Busy { .. } => code::RESOURCE_EXHAUSTED,
        // The message did not arrive within body_read_timeout.
        Refusal::Timeout { .. } => code::DEADLINE_EXCEEDED,
        Refusal::UnsupportedMediaType(_) | Refusal::Decode(_) | Refusal::Invalid(_) => {
            code::INVALID_ARGUMENT
        }
        // Overload: RESOURCE_EXHAUSTED with RetryInfo, which the OTLP spec defines as the
        // recoverable kind clients retry (a too-large message has no RetryInfo: not retried).
        Refusal::Backpressure(_) => code::RESOURCE_EXHAUSTED,
        Refusal::ShuttingDown | Refusal::NotStored(_) => code::UNAVAILABLE,
    }
}

/// The `google.rpc` messages the receivers answer with, under the names this module has always
/// given them.
pub use wire::otlp::rpc::{
    Any as ProtoAny, Duration as ProtoDuration, RETRY_INFO_TYPE_URL, RetryInfo, Status as RpcStatus,
};

/// A label name from an attribute key (as Prometheus' and Loki's OTLP translation make one).
pub use wire::labels::sanitize_label_name as label_name;

/// An attribute value or log body as text: strings as they are, other scalars printed, maps and
/// arrays as JSON, bytes as base64.
pub fn any_to_string(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => base64(b),
        Some(Value::StringValueStrindex(_)) => String::new(),
        Some(Value::ArrayValue(_) | Value::KvlistValue(_)) => any_to_json(v).to_string(),
    }
}

fn any_to_json(v: &AnyValue) -> Json {
    match &v.value {
        None | Some(Value::StringValueStrindex(_)) => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s.clone()),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(d.to_string())),
        Some(Value::BytesValue(b)) => Json::String(base64(b)),
        Some(Value::ArrayValue(a)) => Json::Array(a.values.iter().map(any_to_json).collect()),
        Some(Value::KvlistValue(kv)) => Json::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map(any_to_json).unwrap_or(Json::Null);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

/// Standard base64 with padding, as the OTLP JSON mapping writes bytes.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod receiver_tests {
    use super::*;

    #[test]
    fn label_names_and_values() {
        assert_eq!(label_name("service.name"), "service_name");
        assert_eq!(label_name("http.status-code"), "http_status_code");
        assert_eq!(label_name("9lives"), "key_9lives");
        for (bytes, text) in [(&b"Man"[..], "TWFu"), (b"Ma", "TWE="), (b"M", "TQ==")] {
            let v = AnyValue {
                value: Some(Value::BytesValue(bytes.to_vec())),
            };
            assert_eq!(any_to_string(&v), text);
        }
        let v = AnyValue {
            value: Some(Value::DoubleValue(1.5)),
        };
        assert_eq!(any_to_string(&v), "1.5");
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let c: OtlpConfig = BuildError::parse(toml::Table::new()).unwrap();
        assert_eq!(c.http_address, "127.0.0.1:4318");
        assert_eq!(c.grpc_address, "127.0.0.1:4317");
        assert!(c.log_index_attributes.contains(&"service.name".to_string()));
        let mut t = toml::Table::new();
        t.insert("bogus".into(), toml::Value::Boolean(true));
        assert!(build(t).is_err());
        let t: toml::Table = toml::from_str("http_enabled = false\ngrpc_enabled = false").unwrap();
        assert!(matches!(build(t), Err(BuildError::Invalid { .. })));
    }
}
