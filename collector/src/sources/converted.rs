//! Upper bounds on the heap a decoded request takes once converted into a batch, computed from
//! the decoded request before converting it, without allocating.
//!
//! Why: conversion copies what a request shares onto every item. A remote-write series' labels
//! go onto each of its samples, a Loki stream's labels onto each entry, an OTLP resource's
//! attributes onto each log record (as structured metadata) or data point (promoted labels,
//! `job`, `instance`): a 1 MiB label set over 100 000 empty samples is a few MiB on the wire
//! and 100 GiB converted. The receivers charge these bounds to the request's in-flight budget
//! (and refuse one over `max_decoded_bytes`, 413) before converting
//! ([`super::http_common::admit_converted`]). Traces pass through as decoded: nothing to add.
//!
//! The bounds count, per item, its struct in the batch's `Vec` and every string and pair it
//! owns, with pair vectors that grow by `push` counted twice (their spare capacity); attribute
//! values rendered as text count their longest rendering (JSON of arrays and maps escapes a
//! byte into at most six).

use std::mem::size_of;

use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use wire::otlp::{ExportLogsServiceRequest, ExportMetricsServiceRequest};

use crate::event::{LogRecord, MetricSample};

/// One label or metadata pair in a `Vec<(String, String)>` with its strings.
fn pair(name: usize, value: usize) -> usize {
    size_of::<(String, String)>()
        .saturating_add(name)
        .saturating_add(value)
}

/// The longest text [`super::otlp::any_to_string`] makes of `v`.
fn value_text(v: Option<&AnyValue>) -> usize {
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_)) => 0,
        Some(Value::StringValue(s)) => s.len(),
        Some(Value::BoolValue(_)) => 5,
        Some(Value::IntValue(_)) => 20,
        Some(Value::DoubleValue(_)) => 32,
        Some(Value::BytesValue(b)) => b.len().div_ceil(3).saturating_mul(4),
        Some(Value::ArrayValue(_) | Value::KvlistValue(_)) => {
            // JSON: every wire byte at most six characters (`\u0000`), plus brackets.
            let len = v.map(prost::Message::encoded_len).unwrap_or_default();
            len.saturating_mul(6).saturating_add(16)
        }
    }
}

/// A pair made of an attribute (name sanitized: at most a `key_` prefix longer).
fn attribute(kv: &KeyValue) -> usize {
    pair(
        kv.key.len().saturating_add(4),
        value_text(kv.value.as_ref()),
    )
}

fn attributes(kvs: &[KeyValue]) -> usize {
    kvs.iter()
        .map(attribute)
        .fold(0, usize::saturating_add)
        .saturating_mul(2)
}

/// A label set of `labels` (name, value) pairs, as `Labels` holds it.
fn label_set<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    labels
        .map(|(n, v)| pair(n.len(), v.len()))
        .fold(0, usize::saturating_add)
}

/// A remote write as [`super::remote_write::convert`] makes it: each sample a
/// [`MetricSample`] with its series' labels.
pub fn remote_write(req: &wire::remote_write::WriteRequest) -> usize {
    req.timeseries.iter().fold(0usize, |acc, ts| {
        let labels = label_set(ts.labels.iter().map(|l| (&*l.name, &*l.value)));
        let per_sample = size_of::<MetricSample>().saturating_add(labels);
        // The series' own label set, then one per sample.
        acc.saturating_add(labels)
            .saturating_add(per_sample.saturating_mul(ts.samples.len()))
    })
}

/// A Loki push as [`super::loki_push::convert`] makes it: each entry a [`LogRecord`] with its
/// stream's labels (parsed from the label string: at most one pair per four characters, the
/// text no longer than the string) plus the static labels, its line and metadata.
pub fn loki_push(
    req: &wire::loki::PushRequest,
    static_labels: &std::collections::BTreeMap<String, String>,
) -> usize {
    let statics = label_set(static_labels.iter().map(|(n, v)| (&**n, &**v)));
    req.streams.iter().fold(0usize, |acc, s| {
        let pairs = s.labels.len() / 4 + 1 + static_labels.len();
        let labels = pairs
            .saturating_mul(size_of::<(String, String)>())
            .saturating_mul(2)
            .saturating_add(s.labels.len())
            .saturating_add(statics);
        s.entries.iter().fold(acc, |acc, e| {
            let md = e
                .structured_metadata
                .iter()
                .map(|p| pair(p.name.len(), p.value.len()))
                .fold(0, usize::saturating_add);
            acc.saturating_add(size_of::<LogRecord>())
                .saturating_add(labels)
                .saturating_add(e.line.len())
                .saturating_add(md)
        })
    })
}

/// What [`super::otlp::logs::convert`] gives every record besides its attributes and body: ids
/// in hex, severity, flags, observed time, scope name and version.
const LOG_RECORD_FIXED: usize = 8 * (size_of::<(String, String)>() + 24 + 32);

/// OTLP logs as [`super::otlp::logs::convert`] makes them: each record a [`LogRecord`] with its
/// resource's attributes (as stream labels or structured metadata), its scope's, its own, and
/// its body as the line.
pub fn otlp_logs(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs.iter().fold(0usize, |acc, rl| {
        let resource = rl
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default()
            .saturating_add(pair(16, 16)); // service_name="unknown_service"
        rl.scope_logs.iter().fold(acc, |acc, sl| {
            let scope = sl
                .scope
                .as_ref()
                .map(|s| {
                    attributes(&s.attributes)
                        .saturating_add(pair(16, s.name.len()))
                        .saturating_add(pair(16, s.version.len()))
                })
                .unwrap_or_default();
            let shared = resource.saturating_add(scope.saturating_mul(2));
            sl.log_records.iter().fold(acc, |acc, r| {
                acc.saturating_add(size_of::<LogRecord>())
                    .saturating_add(shared)
                    .saturating_add(attributes(&r.attributes))
                    .saturating_add(value_text(r.body.as_ref()))
                    .saturating_add(r.severity_text.len())
                    .saturating_add(LOG_RECORD_FIXED)
            })
        })
    })
}

/// Per sample: the metric name (sanitized, a unit suffix and `_bucket`/`_total` added), `le`
/// or `quantile`, `job` and `instance` beyond the attributes.
const SAMPLE_FIXED: usize = 4 * (size_of::<(String, String)>() + 64);

/// OTLP metrics as [`super::otlp::metrics`] converts them: each sample a [`MetricSample`] with
/// its point's attributes, its resource's attributes (an upper bound on the promoted ones,
/// `job` and `instance`), its metric's name; per resource up to 102 `target_info` samples with
/// every resource attribute.
pub fn otlp_metrics(req: &ExportMetricsServiceRequest) -> usize {
    use wire::otlp::proto::metrics::v1::metric::Data;
    const TARGET_INFO_SAMPLES: usize = 102;
    req.resource_metrics.iter().fold(0usize, |acc, rm| {
        let resource = rm
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let target_info = size_of::<MetricSample>()
            .saturating_add(resource)
            .saturating_add(SAMPLE_FIXED)
            .saturating_mul(TARGET_INFO_SAMPLES);
        let acc = acc.saturating_add(target_info);
        let metrics = rm.scope_metrics.iter().flat_map(|sm| &sm.metrics);
        metrics.fold(acc, |acc, m| {
            let per_sample = size_of::<MetricSample>()
                .saturating_add(resource)
                .saturating_add(SAMPLE_FIXED)
                .saturating_add(m.name.len().saturating_add(m.unit.len()).saturating_mul(2));
            // (samples, attributes) per point.
            let points: Vec<(usize, usize)> = match &m.data {
                Some(Data::Gauge(g)) => number_points(&g.data_points),
                Some(Data::Sum(s)) => number_points(&s.data_points),
                Some(Data::Histogram(h)) => h
                    .data_points
                    .iter()
                    .map(|p| {
                        let buckets = p.bucket_counts.len().max(p.explicit_bounds.len() + 1);
                        (buckets.saturating_add(3), attributes(&p.attributes))
                    })
                    .collect(),
                Some(Data::Summary(s)) => s
                    .data_points
                    .iter()
                    .map(|p| {
                        let n = p.quantile_values.len().saturating_add(2);
                        (n, attributes(&p.attributes))
                    })
                    .collect(),
                Some(Data::ExponentialHistogram(_)) | None => Vec::new(),
            };
            points.into_iter().fold(acc, |acc, (samples, attrs)| {
                acc.saturating_add(per_sample.saturating_add(attrs).saturating_mul(samples))
            })
        })
    })
}

fn number_points(
    points: &[wire::otlp::proto::metrics::v1::NumberDataPoint],
) -> Vec<(usize, usize)> {
    points
        .iter()
        .map(|p| (1, attributes(&p.attributes)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Items;

    /// The bound is at least what conversion makes (measured by the batch's own `size_bytes`),
    /// on the test data and on the shape that amplifies: shared labels over many items.
    #[test]
    fn bounds_cover_the_converted_batches() {
        use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest};
        let big = "v".repeat(10_000);
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "up"), Label::new("big", &big)],
                samples: vec![Sample::default(); 1000],
                exemplars: vec![],
            }],
            metadata: vec![],
        };
        let bound = remote_write(&req);
        let batch = super::super::remote_write::convert(req).unwrap();
        assert!(
            bound >= batch.size_bytes(),
            "{bound} < {}",
            batch.size_bytes()
        );
        assert!(bound > 1000 * 10_000);

        let req = super::super::otlp::test_data::logs_request();
        let bound = otlp_logs(&req);
        let batch = super::super::otlp::logs::convert(req, &[], 0).batch;
        assert!(
            bound >= batch.size_bytes(),
            "{bound} < {}",
            batch.size_bytes()
        );

        let req = super::super::otlp::test_data::metrics_request();
        assert!(otlp_metrics(&req) > 0);
    }
}
