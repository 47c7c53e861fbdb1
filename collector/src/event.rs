//! The data that flows through the collector, one batch type per signal.
//!
//! - logs: [`LogRecord`]s, each with its stream [`Labels`], time, line, structured metadata and
//!   the fields parsing stages extracted (kept out of what is sent unless a stage promotes them);
//! - metrics: [`MetricSample`]s, labels including `__name__`, value, time in milliseconds;
//! - traces: OTLP `ResourceSpans`, as received.

use std::collections::BTreeMap;

pub use wire::Signal;
pub use wire::otlp::proto::trace::v1::ResourceSpans;

/// A label set kept sorted by name, names unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// From pairs in any order; a later duplicate name wins.
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the (reversed) later one comes first
        pairs.dedup_by(|b, a| a.0 == b.0);
        Labels(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Sets `name` to `value`, replacing any value it had.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => self.0[i].1 = value.into(),
            Err(i) => self.0.insert(i, (name, value.into())),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0.remove(i).1)
    }

    /// Keeps the labels for which `f` is true.
    pub fn retain(&mut self, mut f: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(k, v)| f(k, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }

    /// The `{a="b", c="d"}` form Loki's push API takes.
    pub fn to_loki_string(&self) -> String {
        wire::labels::format_label_set(&self.0)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels::new(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_sorted_and_unique() {
        let mut l = Labels::new(vec![
            ("b".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into()),
        ]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "2"), ("b", "3")]);
        l.insert("aa", "x");
        l.insert("a", "y");
        assert_eq!(l.get("a"), Some("y"));
        assert_eq!(
            l.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["a", "aa", "b"]
        );
        assert_eq!(l.remove("aa"), Some("x".into()));
        assert_eq!(l.to_loki_string(), r#"{a="y", b="3"}"#);
    }
}
