//! Embedded Mimir (stub, filled in by its own change).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use super::EmbeddedConfig;

/// Settings of the embedded Mimir.
#[derive(Clone, Debug)]
pub struct MimirConfig {
    pub retention_bytes: usize,
}

impl From<&EmbeddedConfig> for MimirConfig {
    fn from(c: &EmbeddedConfig) -> Self {
        MimirConfig {
            retention_bytes: c.retention_bytes,
        }
    }
}

/// The embedded Mimir's state.
pub struct Mimir {
    pub config: MimirConfig,
}

impl Mimir {
    pub fn new(config: MimirConfig) -> Arc<Self> {
        Arc::new(Mimir { config })
    }
}

/// The HTTP API.
pub fn router(_state: Arc<Mimir>) -> Router {
    Router::new().route("/ready", get(|| async { "ready" }))
}
