//! Writers: where data leaves the collector. Each batches (by size and wait), sends with retries
//! per the backend's spec (5xx, 429, connection errors and timeouts retried with capped
//! exponential backoff and jitter, without a count bound unless `max_retries` is set; other 4xx
//! dropped and counted with the reason, per item when the backend says how much of a request it
//! stored), and reads from a queue bounded in bytes (its input), so memory stays bounded and a
//! backend outage turns into backpressure upstream rather than loss.
//!
//! | type | module | signal | backend |
//! |---|---|---|---|
//! | `loki` | [`loki`] | logs | Loki push API, protobuf+snappy (`url` = full push URL) |
//! | `prometheus_remote_write` | [`prometheus`] | metrics | remote write 1.0, Mimir/Prometheus (`url` = full push URL) |
//! | `otlp` | [`otlp`] | traces | OTLP gRPC (`url`) or HTTP (`{url}/v1/traces`), Tempo |
//!
//! Keys every writer takes ([`http::ClientConfig`], [`retry::RetryConfig`], `batch_wait`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | (required) | where to send |
//! | `tenant_id` | none | `X-Scope-OrgID` (gRPC: `x-scope-orgid` metadata) |
//! | `basic_auth = { username, password }` / `bearer_token` | none | credentials (never logged) |
//! | `headers` | `{}` | extra headers (gRPC: metadata) |
//! | `timeout` | `10s` | bound on each attempt; a timeout is retried |
//! | `tls = { ca_file, insecure_skip_verify }` | system roots | rustls settings (HTTP only) |
//! | `batch_wait` | `1s` | longest a partial batch waits |
//! | `min_backoff`, `max_backoff` | `500ms`, `30s` | retry backoff (and the cap on `Retry-After`) |
//! | `max_retries` | unset: unbounded | retries of one request before its batch is given up (`retries_exhausted`) |
//!
//! Their own keys: `loki`: `batch_size` (bytes, 1 MiB); `prometheus_remote_write`:
//! `max_samples_per_send` (2000), `shards` (1); `otlp`: `protocol` (`grpc`|`http`),
//! `batch_size` (spans, 8192). The shared machinery: [`batcher`] (queue, batching, shards,
//! shutdown drain), [`retry`] (backoff, classification), [`http`] (client, credentials).

use std::time::Duration;

use tokio::sync::watch;

use crate::BoxFuture;
use crate::event::{LogBatch, MetricBatch, Signal, TraceBatch};
use crate::selfmon::ComponentMetrics;
use crate::sources::BuildError;

pub mod batcher;
pub mod http;
pub mod loki;
pub mod otlp;
pub mod prometheus;
pub mod retry;

/// What a running writer is given.
pub struct WriterContext<T> {
    pub name: String,
    /// The writer's bounded queue (its gauges are kept by the queue itself).
    pub input: crate::queue::Receiver<T>,
    /// Turns true when the collector stops: drain `input` (bounded by `drain_timeout`), return.
    pub shutdown: watch::Receiver<bool>,
    pub metrics: ComponentMetrics,
    pub drain_timeout: Duration,
    /// `input` is fed from a disk buffer: what is left unsent at shutdown stays there (and is
    /// not counted as discarded).
    pub durable: bool,
}

/// A running writer of batches of type `T`.
pub trait Writer<T>: Send {
    fn run(self: Box<Self>, ctx: WriterContext<T>) -> BoxFuture<Result<(), WriterError>>;
}

/// A built writer of any signal.
pub enum AnyWriter {
    Logs(Box<dyn Writer<LogBatch>>),
    Metrics(Box<dyn Writer<MetricBatch>>),
    Traces(Box<dyn Writer<TraceBatch>>),
}

impl AnyWriter {
    pub fn signal(&self) -> Signal {
        match self {
            AnyWriter::Logs(_) => Signal::Logs,
            AnyWriter::Metrics(_) => Signal::Metrics,
            AnyWriter::Traces(_) => Signal::Traces,
        }
    }
}

/// Why a writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("{0}")]
    Other(String),
}

/// Builds a writer of type `kind` from its settings (the table without the common keys).
pub fn build(kind: &str, table: toml::Table) -> Result<AnyWriter, BuildError> {
    Ok(match kind {
        "loki" => AnyWriter::Logs(Box::new(loki::build(table)?)),
        "prometheus_remote_write" => AnyWriter::Metrics(Box::new(prometheus::build(table)?)),
        "otlp" => AnyWriter::Traces(Box::new(otlp::build(table)?)),
        _ => return Err(BuildError::UnknownType(kind.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_kind_and_refuses_unknown_ones() {
        let t = |s: &str| -> toml::Table { toml::from_str(s).unwrap() };
        assert_eq!(
            build("loki", t("url = \"http://l/loki/api/v1/push\""))
                .map(|w| w.signal())
                .ok(),
            Some(Signal::Logs)
        );
        assert_eq!(
            build(
                "prometheus_remote_write",
                t("url = \"http://m/api/v1/push\"")
            )
            .map(|w| w.signal())
            .ok(),
            Some(Signal::Metrics)
        );
        assert_eq!(
            build("otlp", t("url = \"http://t:4317\""))
                .map(|w| w.signal())
                .ok(),
            Some(Signal::Traces)
        );
        assert!(matches!(
            build("kafka", t("")),
            Err(BuildError::UnknownType(_))
        ));
        assert!(matches!(build("loki", t("")), Err(BuildError::Config(_))));
    }
}
