//! Embedded Tempo: OTLP receivers over HTTP (`POST /v1/traces`, like port 4318) and gRPC (like
//! 4317), and the query API (like port 3200) with Tempo's paths, status codes and JSON shapes.
//!
//! | module | what it holds |
//! |---|---|
//! | [`store`] | traces per (tenant, trace id), bounded by `retention_bytes` |
//! | [`receiver`] | OTLP/HTTP (protobuf, JSON, gzip) and OTLP/gRPC |
//! | [`api`] | `/api/traces/{id}`, `/api/v2/traces/{id}`, search, tags, tag values, `/ready`, `/metrics` |
//! | [`search`] | tag search, TraceQL search, tag names and values |
//! | [`traceql`] | the supported TraceQL subset |
//!
//! Tenancy follows `X-Scope-OrgID` (gRPC metadata `x-scope-orgid`); without it data goes to
//! Tempo's default tenant, `single-tenant`.

pub mod api;
pub mod receiver;
pub mod search;
pub mod store;
pub mod traceql;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use wire::otlp::ExportTraceServiceRequest;

use super::EmbeddedConfig;
use super::metrics::{Counter, single_samples};
pub use receiver::spawn_grpc;
use store::{IngestError, Store};
use wire::exposition::{MetricFamily, MetricKind};

/// Tempo's tenant when a request names none.
pub const DEFAULT_TENANT: &str = "single-tenant";

/// Settings of the embedded Tempo.
#[derive(Clone, Debug)]
pub struct TempoConfig {
    /// Encoded bytes of spans kept before the oldest traces are evicted.
    pub retention_bytes: usize,
    /// Largest OTLP/HTTP body accepted as sent; larger gets 413.
    pub max_body_bytes: usize,
    /// Largest decompressed OTLP/HTTP body; larger gets 400.
    pub max_decompressed_bytes: usize,
    /// Largest gRPC message decoded; larger is refused (tonic answers `OUT_OF_RANGE`, where
    /// Tempo's Go gRPC server answers `RESOURCE_EXHAUSTED`).
    pub max_grpc_message_bytes: usize,
    /// Tempo's `ingestion_rate_limit_bytes` and `ingestion_burst_size_bytes`: an export over it
    /// is refused whole (429 over HTTP, `RESOURCE_EXHAUSTED` over gRPC); none by default.
    pub ingestion_rate: Option<super::limits::RateLimit>,
}

impl From<&EmbeddedConfig> for TempoConfig {
    fn from(c: &EmbeddedConfig) -> Self {
        TempoConfig {
            retention_bytes: c.retention_bytes,
            max_body_bytes: c.max_body_bytes,
            max_decompressed_bytes: c.max_decompressed_bytes,
            max_grpc_message_bytes: c.max_decompressed_bytes,
            ingestion_rate: c.limits.tempo_bytes,
        }
    }
}

impl Default for TempoConfig {
    fn default() -> Self {
        TempoConfig::from(&EmbeddedConfig::default())
    }
}

/// Counters shown on `/metrics`.
#[derive(Debug, Default)]
struct TempoMetrics {
    spans: Counter,
    bytes: Counter,
    evicted: Counter,
    refused: Counter,
    /// Spans and bytes received per tenant.
    per_tenant: Mutex<BTreeMap<String, (u64, u64)>>,
}

/// What an accepted export added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub spans: usize,
    pub bytes: usize,
    pub evicted: usize,
}

/// The embedded Tempo's state.
pub struct Tempo {
    pub config: TempoConfig,
    store: RwLock<Store>,
    metrics: TempoMetrics,
    limiter: Option<super::limits::TenantLimiter>,
}

impl Tempo {
    pub fn new(config: TempoConfig) -> Arc<Self> {
        Arc::new(Tempo {
            limiter: super::limits::limiter(config.ingestion_rate),
            store: RwLock::new(Store::new(config.retention_bytes)),
            config,
            metrics: TempoMetrics::default(),
        })
    }

    /// Stores an export for a tenant; refuses all of it when any span id is invalid, as Tempo's
    /// distributor does.
    pub fn ingest(
        &self,
        tenant: &str,
        req: ExportTraceServiceRequest,
    ) -> Result<Ingested, IngestError> {
        let spans = match store::validate(&req) {
            Ok(n) => n,
            Err(e) => {
                self.metrics.refused.inc();
                return Err(e);
            }
        };
        // Tempo's distributor: the encoded size of the resource spans against the tenant's
        // byte rate, the whole export refused over it.
        if let Some(limiter) = &self.limiter {
            let bytes: u64 = req
                .resource_spans
                .iter()
                .map(|rs| prost::Message::encoded_len(rs) as u64)
                .sum();
            if let Err(refused) = limiter.allow(tenant, bytes) {
                self.metrics.refused.inc();
                return Err(IngestError::RateLimited {
                    message: super::limits::tempo_message(refused.limit, bytes),
                    retry_after_s: refused.retry_after_s,
                });
            }
        }
        let parts = store::split_by_trace(req);
        let written = self.store.write().write(tenant, parts);
        self.metrics.spans.add(spans as u64);
        self.metrics.bytes.add(written.bytes as u64);
        self.metrics.evicted.add(written.evicted as u64);
        {
            let mut per = self.metrics.per_tenant.lock();
            let e = per.entry(tenant.to_string()).or_default();
            e.0 += spans as u64;
            e.1 += written.bytes as u64;
        }
        Ok(Ingested {
            spans,
            bytes: written.bytes,
            evicted: written.evicted,
        })
    }

    /// Read access to the traces.
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read()
    }

    /// Traces evicted so far.
    pub fn evicted_traces(&self) -> u64 {
        self.metrics.evicted.get()
    }

    /// The Prometheus text exposition of this server's own metrics.
    pub fn render_metrics(&self) -> String {
        let (traces, bytes) = {
            let s = self.store.read();
            (s.len(), s.bytes())
        };
        let m = &self.metrics;
        let mut families: Vec<MetricFamily> = single_samples([
            (
                "tempo_embedded_ingested_spans_total",
                MetricKind::Counter,
                "Spans accepted.",
                m.spans.get() as f64,
            ),
            (
                "tempo_embedded_ingested_bytes_total",
                MetricKind::Counter,
                "Encoded bytes of spans accepted.",
                m.bytes.get() as f64,
            ),
            (
                "tempo_embedded_evicted_traces_total",
                MetricKind::Counter,
                "Traces evicted to stay within retention_bytes.",
                m.evicted.get() as f64,
            ),
            (
                "tempo_embedded_refused_exports_total",
                MetricKind::Counter,
                "Exports refused for invalid trace or span ids.",
                m.refused.get() as f64,
            ),
            (
                "tempo_embedded_traces",
                MetricKind::Gauge,
                "Traces kept.",
                traces as f64,
            ),
            (
                "tempo_embedded_stored_bytes",
                MetricKind::Gauge,
                "Encoded bytes of spans kept.",
                bytes as f64,
            ),
        ])
        .collect();
        let per = m.per_tenant.lock();
        for (name, help, pick) in [
            (
                "tempo_distributor_spans_received_total",
                "The total number of spans received per tenant.",
                (|v: &(u64, u64)| v.0) as fn(&(u64, u64)) -> u64,
            ),
            (
                "tempo_distributor_bytes_received_total",
                "The total number of proto bytes received per tenant.",
                |v: &(u64, u64)| v.1,
            ),
        ] {
            let mut family = MetricFamily::new(name, MetricKind::Counter).with_help(help);
            for (tenant, v) in per.iter() {
                family.push(&[("tenant", tenant)], pick(v) as f64);
            }
            families.push(family);
        }
        wire::exposition::encode(&families)
    }
}

/// Why a tenant header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant ID is too long: max 150 characters")]
    TooLong,
    #[error("tenant ID contains unsupported character '{0}'")]
    BadChar(char),
    #[error("tenant ID is '.' or '..'")]
    Dots,
}

/// The tenant of a request from its `X-Scope-OrgID` value, checked with the rules Tempo
/// (dskit) applies; absent or empty means [`DEFAULT_TENANT`].
pub fn tenant_from(value: Option<&str>) -> Result<String, TenantError> {
    let t = value.map(str::trim).unwrap_or_default();
    if t.is_empty() {
        return Ok(DEFAULT_TENANT.to_string());
    }
    if t.len() > 150 {
        return Err(TenantError::TooLong);
    }
    if t == "." || t == ".." {
        return Err(TenantError::Dots);
    }
    if let Some(c) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
    {
        return Err(TenantError::BadChar(c));
    }
    Ok(t.to_string())
}

/// The query API (Tempo's port 3200).
pub fn router(state: Arc<Tempo>) -> Router {
    api::router(state)
}

/// The OTLP/HTTP receiver (`POST /v1/traces`, Tempo's port 4318).
pub fn otlp_http_router(state: Arc<Tempo>) -> Router {
    receiver::http_router(state)
}

#[cfg(test)]
mod tests {
    use super::store::tests::{export, span};
    use super::*;

    #[test]
    fn tenants() {
        assert_eq!(tenant_from(None).unwrap(), "single-tenant");
        assert_eq!(tenant_from(Some("")).unwrap(), "single-tenant");
        assert_eq!(tenant_from(Some("team-a")).unwrap(), "team-a");
        assert_eq!(tenant_from(Some("a b")), Err(TenantError::BadChar(' ')));
        assert_eq!(
            tenant_from(Some(&"x".repeat(151))),
            Err(TenantError::TooLong)
        );
    }

    #[test]
    fn ingest_counts_and_metrics() {
        let t = Tempo::new(TempoConfig::default());
        let got = t
            .ingest(
                "a",
                export("svc", vec![span(1, 1, None, "x"), span(1, 2, Some(1), "y")]),
            )
            .unwrap();
        assert_eq!(got.spans, 2);
        let mut bad = span(2, 1, None, "x");
        bad.trace_id.clear();
        assert!(t.ingest("a", export("svc", vec![bad])).is_err());
        let m = t.render_metrics();
        assert!(m.contains("tempo_embedded_ingested_spans_total 2\n"), "{m}");
        assert!(m.contains("tempo_embedded_traces 1\n"));
        assert!(m.contains("tempo_embedded_refused_exports_total 1\n"));
        assert!(m.contains("tempo_distributor_spans_received_total{tenant=\"a\"} 2\n"));
        assert!(m.contains("tempo_embedded_evicted_traces_total 0\n"));
    }
}
