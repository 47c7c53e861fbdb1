//! The data that flows through the collector, one batch type per signal.
//!
//! - logs: [`LogRecord`]s, each with its stream [`Labels`], time, line, structured metadata and
//!   the fields parsing stages extracted (kept out of what is sent unless a stage promotes them);
//! - metrics: [`MetricSample`]s, labels including `__name__`, value, time in milliseconds;
//! - traces: OTLP `ResourceSpans`, as received.

use std::collections::BTreeMap;

pub use wire::otlp::proto::trace::v1::ResourceSpans;
pub use wire::{Labels, Signal};

/// One log entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    /// Stream labels (indexed by Loki).
    pub labels: Labels,
    /// Nanoseconds since the epoch.
    pub timestamp_ns: i64,
    pub line: String,
    /// Loki structured metadata (sent, not indexed).
    pub structured_metadata: Vec<(String, String)>,
    /// Fields extracted by parsing stages; not sent unless a stage promotes them.
    pub fields: BTreeMap<String, String>,
}

/// One sample of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSample {
    /// Series labels, `__name__` included.
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
}

impl MetricSample {
    pub fn name(&self) -> Option<&str> {
        self.labels.get("__name__")
    }
}

pub type LogBatch = Vec<LogRecord>;
pub type MetricBatch = Vec<MetricSample>;
pub type TraceBatch = Vec<ResourceSpans>;

/// How many items a batch holds (what the self-metrics count).
pub trait Items {
    fn items(&self) -> usize;
}

impl Items for LogBatch {
    fn items(&self) -> usize {
        self.len()
    }
}

impl Items for MetricBatch {
    fn items(&self) -> usize {
        self.len()
    }
}

impl Items for TraceBatch {
    /// Spans, as the OTLP receivers count them.
    fn items(&self) -> usize {
        self.iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .map(|ss| ss.spans.len())
            .sum()
    }
}
