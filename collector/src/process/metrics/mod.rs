//! Stages on metric batches.
//!
//! | type | module | what it does |
//! |---|---|---|
//! | `relabel` | [`relabel`] | Prometheus `relabel_config` rules on every sample's labels |

pub mod relabel;
