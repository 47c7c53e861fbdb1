//! Embedded Mimir: Prometheus remote write in, the Prometheus query API out, as real Mimir (and
//! Prometheus) answer them.
//!
//! | module | what |
//! |---|---|
//! | [`write`] | `POST /api/v1/push` (200, Mimir's validation and messages) and `/api/v1/write` (204, Prometheus') |
//! | [`store`] | per-tenant series index, postings and samples, bounded by `retention_bytes` |
//! | [`promql`] | the PromQL subset, evaluated with Prometheus' semantics |
//! | [`api`] | `/api/v1/{query,query_range,series,labels,label/<name>/values}`, also under `/prometheus` |
//!
//! Tenants come from `X-Scope-OrgID` ("anonymous" without it). `/metrics` exposes Mimir's
//! `cortex_discarded_samples_total{reason,user}` plus ingested samples, in-memory series and
//! evictions.

pub mod api;
pub mod promql;
pub mod store;
pub mod write;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use parking_lot::{Mutex, RwLock};

use super::EmbeddedConfig;
use super::metrics::{Counter, single_samples};
pub use promql::Semantics;
use wire::exposition::{Format, MetricFamily, MetricKind};

/// Settings of the embedded Mimir.
#[derive(Clone, Debug)]
pub struct MimirConfig {
    /// Bytes of samples and series kept before the oldest are evicted.
    pub retention_bytes: usize,
    /// Largest request body (as sent); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest decompressed remote-write body; larger gets 400.
    pub max_decompressed_bytes: usize,
    /// Which Prometheus version's PromQL rules to follow where 2.x and 3.x differ.
    pub semantics: Semantics,
    /// The lookback delta of instant vector selectors (Prometheus' default: 5m).
    pub lookback_ms: i64,
    /// Mimir's `out_of_order_time_window` (Prometheus' `out_of_order_time_window`), in ms:
    /// samples up to this much older than the tenant's newest are accepted out of order. Both
    /// servers default to 0, which refuses every out-of-order sample.
    pub out_of_order_window_ms: i64,
    /// Mimir's `ingestion_rate` and `ingestion_burst_size` (samples, exemplars and metadata per
    /// second): a push over it is refused whole with 429 (none by default; `/api/v1/write`,
    /// Prometheus' receiver, has no such limit).
    pub ingestion_rate: Option<super::limits::RateLimit>,
    /// Mimir's validation and series limits on `/api/v1/push` (label count and lengths,
    /// `creation_grace_period`, `max_global_series_per_user`); Mimir's defaults unless changed.
    /// Prometheus' `/api/v1/write` has none of them.
    pub limits: super::limits::MimirLimits,
}

impl From<&EmbeddedConfig> for MimirConfig {
    fn from(c: &EmbeddedConfig) -> Self {
        MimirConfig {
            retention_bytes: c.retention_bytes,
            max_body_bytes: c.max_body_bytes,
            max_decompressed_bytes: c.max_decompressed_bytes,
            semantics: c.promql_semantics,
            lookback_ms: promql::DEFAULT_LOOKBACK_MS,
            out_of_order_window_ms: c.out_of_order_window.as_millis().min(i64::MAX as u128) as i64,
            ingestion_rate: c.limits.mimir_samples,
            limits: c.mimir_limits,
        }
    }
}

impl Default for MimirConfig {
    fn default() -> Self {
        MimirConfig::from(&EmbeddedConfig::default())
    }
}

/// Counters shown on `/metrics`.
#[derive(Debug, Default)]
pub struct MimirMetrics {
    pub ingested_samples: Counter,
    pub evicted_samples: Counter,
    pub evicted_series: Counter,
    /// Discarded samples by (reason, user).
    pub discarded: Mutex<BTreeMap<(String, String), u64>>,
}

/// The embedded Mimir's state.
pub struct Mimir {
    pub config: MimirConfig,
    pub store: RwLock<store::Store>,
    pub metrics: MimirMetrics,
    limiter: Option<super::limits::TenantLimiter>,
}

impl Mimir {
    /// Samples evicted so far to stay within `retention_bytes`.
    pub fn evicted_samples(&self) -> u64 {
        self.metrics.evicted_samples.get()
    }

    pub fn new(config: MimirConfig) -> Arc<Self> {
        Arc::new(Mimir {
            limiter: super::limits::limiter(config.ingestion_rate),
            config,
            store: RwLock::new(store::Store::default()),
            metrics: MimirMetrics::default(),
        })
    }

    /// The text exposition of `/metrics`.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        let (series, samples, bytes) = {
            let s = self.store.read();
            (s.series_count(), s.sample_count(), s.bytes())
        };
        let mut families: Vec<MetricFamily> = single_samples([
            (
                "cortex_ingester_ingested_samples_total",
                MetricKind::Counter,
                "The total number of samples ingested.",
                m.ingested_samples.get() as f64,
            ),
            (
                "cortex_ingester_memory_series",
                MetricKind::Gauge,
                "The current number of series in memory.",
                series as f64,
            ),
            (
                "mimir_embedded_samples",
                MetricKind::Gauge,
                "Samples held in memory by the embedded Mimir.",
                samples as f64,
            ),
            (
                "mimir_embedded_bytes",
                MetricKind::Gauge,
                "Estimated bytes held by the embedded Mimir (bounded by retention_bytes).",
                bytes as f64,
            ),
            (
                "mimir_embedded_evicted_samples_total",
                MetricKind::Counter,
                "Samples evicted to stay within retention_bytes.",
                m.evicted_samples.get() as f64,
            ),
            (
                "mimir_embedded_evicted_series_total",
                MetricKind::Counter,
                "Series evicted to stay within retention_bytes.",
                m.evicted_series.get() as f64,
            ),
        ])
        .collect();
        let mut discarded =
            MetricFamily::new("cortex_discarded_samples_total", MetricKind::Counter)
                .with_help("The total number of samples that were discarded.");
        for ((reason, user), n) in m.discarded.lock().iter() {
            discarded.push(&[("reason", reason), ("user", user)], *n as f64);
        }
        families.push(discarded);
        wire::exposition::encode(&families)
    }
}

/// The HTTP API.
pub fn router(state: Arc<Mimir>) -> Router {
    let limit = state.config.max_body_bytes;
    let mut r = Router::new()
        .route("/api/v1/push", post(write::push))
        .route("/api/v1/write", post(write::write))
        .route("/ready", get(|| async { "ready" }))
        .route(
            "/-/ready",
            get(|| async { "Prometheus Server is Ready.\n" }),
        )
        .route(
            "/-/healthy",
            get(|| async { "Prometheus Server is Healthy.\n" }),
        )
        .route(
            "/metrics",
            get(
                |axum::extract::State(m): axum::extract::State<Arc<Mimir>>| async move {
                    (
                        [(header::CONTENT_TYPE, Format::PrometheusText.content_type())],
                        m.render_metrics(),
                    )
                },
            ),
        );
    for prefix in ["", "/prometheus"] {
        r = r
            .route(
                &format!("{prefix}/api/v1/query"),
                get(api::query).post(api::query),
            )
            .route(
                &format!("{prefix}/api/v1/query_range"),
                get(api::query_range).post(api::query_range),
            )
            .route(
                &format!("{prefix}/api/v1/series"),
                get(api::series).post(api::series),
            )
            .route(
                &format!("{prefix}/api/v1/labels"),
                get(api::labels).post(api::labels),
            )
            .route(
                &format!("{prefix}/api/v1/label/{{name}}/values"),
                get(api::label_values),
            );
    }
    r.fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n").into_response() })
        .layer(super::http::body_limit(limit))
        .with_state(state)
}
