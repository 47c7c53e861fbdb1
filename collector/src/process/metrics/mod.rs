//! Metric stages. (`metrics.relabel`, with the Prometheus relabel engine, lives beside these.)

pub mod static_labels;
