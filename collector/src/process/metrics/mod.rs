//! Stages on metric batches.
//!
//! | type | module | what it does |
//! |---|---|---|
//! | `metrics.relabel` | [`relabel`] | Prometheus `relabel_config` rules on every sample's labels |
//! | `metrics.static_labels` | [`static_labels`] | fixed series labels (existing ones kept unless `override`) |

pub mod relabel;
pub mod static_labels;
