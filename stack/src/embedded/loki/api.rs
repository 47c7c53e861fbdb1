//! placeholder
use std::sync::Arc;
pub fn router(_s: Arc<super::Loki>) -> axum::Router { axum::Router::new() }
