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

/// How many items a batch holds (what the self-metrics count), and about how much memory it
/// takes (what bounds the queues, `queue_max_bytes`).
pub trait Items {
    fn items(&self) -> usize;
    /// An estimate of the bytes the batch holds: its items' inline size plus what they own on
    /// the heap (strings, label vectors, maps), by capacity. An estimate, not an allocator
    /// count: allocator overhead is left out, map nodes are counted per entry.
    fn size_bytes(&self) -> usize;
}

/// Heap bytes a `String` owns.
fn string_heap(s: &String) -> usize {
    s.capacity()
}

/// Heap bytes a vector of name/value pairs owns, the pairs' strings included.
fn pairs_heap(capacity: usize, pairs: &[(String, String)]) -> usize {
    capacity * std::mem::size_of::<(String, String)>()
        + pairs
            .iter()
            .map(|(k, v)| string_heap(k) + string_heap(v))
            .sum::<usize>()
}

/// Heap bytes a label set owns.
fn labels_heap(labels: &Labels) -> usize {
    let pairs = labels.as_slice();
    pairs_heap(pairs.len(), pairs)
}

/// What a `BTreeMap` node costs per entry besides the entry, roughly (keys and values sit in
/// nodes of 11 with parent/child links).
const MAP_ENTRY_OVERHEAD: usize = 16;

impl LogRecord {
    /// Inline size plus the heap the record owns.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + labels_heap(&self.labels)
            + string_heap(&self.line)
            + pairs_heap(
                self.structured_metadata.capacity(),
                &self.structured_metadata,
            )
            + self
                .fields
                .iter()
                .map(|(k, v)| {
                    2 * std::mem::size_of::<String>()
                        + MAP_ENTRY_OVERHEAD
                        + string_heap(k)
                        + string_heap(v)
                })
                .sum::<usize>()
    }
}

impl MetricSample {
    /// Inline size plus the heap the sample owns (its labels).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + labels_heap(&self.labels)
    }
}

/// The heap a decoded OTLP message takes, from its encoded length: every string and bytes field
/// is its payload plus a 24-byte header, every nested message its inline struct (spans are ~200
/// bytes inline against tens of bytes encoded), so the encoded length is scaled up.
const OTLP_DECODED_PER_ENCODED: usize = 3;

/// Inline size plus the heap one `ResourceSpans` owns, estimated from its encoded length.
pub fn resource_spans_size(rs: &ResourceSpans) -> usize {
    use prost::Message;
    let spans: usize = rs.scope_spans.iter().map(|ss| ss.spans.len()).sum();
    std::mem::size_of::<ResourceSpans>()
        + spans * std::mem::size_of::<wire::otlp::proto::trace::v1::Span>()
        + rs.encoded_len() * OTLP_DECODED_PER_ENCODED
}

impl Items for LogBatch {
    fn items(&self) -> usize {
        self.len()
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.capacity() - self.len()) * std::mem::size_of::<LogRecord>()
            + self.iter().map(LogRecord::size_bytes).sum::<usize>()
    }
}

impl Items for MetricBatch {
    fn items(&self) -> usize {
        self.len()
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.capacity() - self.len()) * std::mem::size_of::<MetricSample>()
            + self.iter().map(MetricSample::size_bytes).sum::<usize>()
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

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.capacity() - self.len()) * std::mem::size_of::<ResourceSpans>()
            + self.iter().map(resource_spans_size).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_grow_with_what_items_own() {
        let small = LogRecord {
            line: "x".into(),
            ..Default::default()
        };
        let big = LogRecord {
            labels: Labels::from_iter([("app", "a".repeat(100))]),
            line: "y".repeat(10_000),
            structured_metadata: vec![("k".into(), "v".repeat(500))],
            fields: [("f".to_string(), "z".repeat(300))].into_iter().collect(),
            ..Default::default()
        };
        assert!(big.size_bytes() >= small.size_bytes() + 10_000 + 100 + 500 + 300);
        let batch: LogBatch = vec![small.clone(), big.clone()];
        assert!(batch.size_bytes() >= small.size_bytes() + big.size_bytes());
        let s = MetricSample {
            labels: Labels::from_iter([("__name__", "up"), ("job", "node")]),
            value: 1.0,
            timestamp_ms: 0,
        };
        assert!(s.size_bytes() > std::mem::size_of::<MetricSample>() + 10);
        let spans: TraceBatch = vec![ResourceSpans::default()];
        assert!(spans.size_bytes() >= std::mem::size_of::<ResourceSpans>());
    }
}
