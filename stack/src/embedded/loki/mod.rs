//! Embedded Loki (stub, filled in by its own change).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use super::EmbeddedConfig;

/// Settings of the embedded Loki.
#[derive(Clone, Debug)]
pub struct LokiConfig {
    pub retention_bytes: usize,
}

impl From<&EmbeddedConfig> for LokiConfig {
    fn from(c: &EmbeddedConfig) -> Self {
        LokiConfig {
            retention_bytes: c.retention_bytes,
        }
    }
}

/// The embedded Loki's state.
pub struct Loki {
    pub config: LokiConfig,
}

impl Loki {
    pub fn new(config: LokiConfig) -> Arc<Self> {
        Arc::new(Loki { config })
    }
}

/// The HTTP API.
pub fn router(_state: Arc<Loki>) -> Router {
    Router::new().route("/ready", get(|| async { "ready" }))
}
