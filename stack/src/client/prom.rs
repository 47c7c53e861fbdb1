//! Prometheus client (being written).
