//! Embedded Tempo (stub, filled in by its own change).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use super::EmbeddedConfig;

/// Settings of the embedded Tempo.
#[derive(Clone, Debug)]
pub struct TempoConfig {
    pub retention_bytes: usize,
}

impl From<&EmbeddedConfig> for TempoConfig {
    fn from(c: &EmbeddedConfig) -> Self {
        TempoConfig {
            retention_bytes: c.retention_bytes,
        }
    }
}

/// The embedded Tempo's state.
pub struct Tempo {
    pub config: TempoConfig,
}

impl Tempo {
    pub fn new(config: TempoConfig) -> Arc<Self> {
        Arc::new(Tempo { config })
    }
}

/// The HTTP API.
pub fn router(_state: Arc<Tempo>) -> Router {
    Router::new().route("/ready", get(|| async { "ready" }))
}

/// The OTLP/HTTP receiver (`POST /v1/traces`).
pub fn otlp_http_router(_state: Arc<Tempo>) -> Router {
    Router::new()
}

/// Serves the OTLP/gRPC receiver until `shutdown` turns true.
pub fn spawn_grpc(
    _listener: tokio::net::TcpListener,
    _state: Arc<Tempo>,
    _shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {})
}
