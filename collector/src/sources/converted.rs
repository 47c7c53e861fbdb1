//! Upper bounds on the heap a decoded request takes once converted into a batch, computed from
//! the decoded request before converting it, without allocating.
//!
//! Why: conversion copies what a request shares onto every item. A remote-write series' labels
//! go onto each of its samples, an OTLP resource's attributes onto each log record (as
//! structured metadata) or data point (promoted labels, `job`, `instance`): a 1 MiB label set
//! over 100 000 empty samples is a few MiB on the wire and 100 GiB converted. A Loki stream's
//! labels are shared by its entries (`SharedLabels`), counted once per stream. The receivers
//! charge these bounds to the request's in-flight budget (and refuse one over
//! `max_decoded_bytes`, 413) before converting
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

/// A pair made of an attribute (name sanitized: at most a `key_` prefix longer), its slot
/// counted twice (pair vectors grow by `push`, or by an insert after a clone).
fn attribute(kv: &KeyValue) -> usize {
    pair(
        kv.key.len().saturating_add(4),
        value_text(kv.value.as_ref()),
    )
    .saturating_add(size_of::<(String, String)>())
}

fn attributes(kvs: &[KeyValue]) -> usize {
    kvs.iter().map(attribute).fold(0, usize::saturating_add)
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
/// line and metadata, holding its stream's labels (parsed from the label string: at most one
/// pair per `=`, the text no longer than the string, plus the static labels), made once per
/// stream and shared.
pub fn loki_push(
    req: &wire::loki::PushRequest,
    static_labels: &std::collections::BTreeMap<String, String>,
) -> usize {
    let statics = label_set(static_labels.iter().map(|(n, v)| (&**n, &**v)));
    req.streams.iter().fold(0usize, |acc, s| {
        // Every pair has its `=` (values may hold more: an upper bound).
        let pairs = s.labels.bytes().filter(|b| *b == b'=').count() + static_labels.len();
        // The stream's label set, made once and shared by its entries (`SharedLabels`: each
        // entry holds a reference, inside its `LogRecord`); the `Arc`'s counts rounded up.
        let labels = pairs
            .saturating_mul(size_of::<(String, String)>())
            .saturating_mul(2)
            .saturating_add(s.labels.len())
            .saturating_add(statics)
            .saturating_add(64);
        let acc = acc.saturating_add(labels);
        s.entries.iter().fold(acc, |acc, e| {
            let md = e
                .structured_metadata
                .iter()
                .map(|p| pair(p.name.len(), p.value.len()))
                .fold(0, usize::saturating_add);
            acc.saturating_add(size_of::<LogRecord>())
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
            let shared = resource.saturating_add(scope);
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

/// Per sample beyond the attributes and the name's text: the `__name__` pair and `le` or
/// `quantile` (each slot twice).
const SAMPLE_FIXED: usize = 2 * (2 * size_of::<(String, String)>() + 32);

/// The resource attributes [`super::otlp::metrics`] makes `job` and `instance` of.
const IDENTIFYING: [&str; 3] = ["service.namespace", "service.name", "service.instance.id"];

/// OTLP metrics as [`super::otlp::metrics`] converts them: each sample a [`MetricSample`] with
/// its point's attributes, the resource's attributes in `promote` or identifying (`job`,
/// `instance`), its metric's name; per resource its `target_info` samples (one per 2.5 minutes
/// of its points' span, at most 102, kept twice: in the batch and in the set that drops
/// repeats) with every resource attribute.
pub fn otlp_metrics(req: &ExportMetricsServiceRequest, promote: &[String]) -> usize {
    use wire::otlp::proto::metrics::v1::metric::Data;
    req.resource_metrics.iter().fold(0usize, |acc, rm| {
        let attrs = rm
            .resource
            .as_ref()
            .map(|r| &r.attributes[..])
            .unwrap_or_default();
        let promoted = attrs
            .iter()
            .filter(|kv| IDENTIFYING.contains(&kv.key.as_str()) || promote.contains(&kv.key))
            .map(attribute)
            .fold(0, usize::saturating_add);
        // (samples, attributes, time) per point.
        let mut points: Vec<(usize, usize, u64)> = Vec::new();
        let mut names = 0usize;
        for m in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
            let before = points.len();
            match &m.data {
                Some(Data::Gauge(g)) => number_points(&mut points, &g.data_points),
                Some(Data::Sum(s)) => number_points(&mut points, &s.data_points),
                Some(Data::Histogram(h)) => points.extend(h.data_points.iter().map(|p| {
                    let buckets = p.bucket_counts.len().max(p.explicit_bounds.len() + 1);
                    let samples = buckets.saturating_add(3);
                    (samples, attributes(&p.attributes), p.time_unix_nano)
                })),
                Some(Data::Summary(s)) => points.extend(s.data_points.iter().map(|p| {
                    let samples = p.quantile_values.len().saturating_add(2);
                    (samples, attributes(&p.attributes), p.time_unix_nano)
                })),
                Some(Data::ExponentialHistogram(_)) | None => {}
            }
            // The name, with its suffixes, on each of the metric's samples.
            let name = m.name.len().saturating_add(m.unit.len()).saturating_add(16);
            let samples: usize = points[before..].iter().map(|p| p.0).sum();
            names = names.saturating_add(name.saturating_mul(samples));
        }
        let per_sample = size_of::<MetricSample>()
            .saturating_add(promoted)
            .saturating_add(SAMPLE_FIXED);
        let acc = points.iter().fold(acc.saturating_add(names), |acc, p| {
            acc.saturating_add(per_sample.saturating_add(p.1).saturating_mul(p.0))
        });
        let times = points.iter().map(|p| p.2).filter(|t| *t > 0);
        let span_ms = match (times.clone().min(), times.max()) {
            (Some(a), Some(b)) => (b - a) / 1_000_000,
            _ => return acc,
        };
        let steps = (span_ms / 150_000).min(100) as usize + 2;
        let target_info = size_of::<MetricSample>()
            .saturating_add(attributes(attrs))
            .saturating_add(SAMPLE_FIXED)
            .saturating_mul(2 * steps);
        acc.saturating_add(target_info)
    })
}

fn number_points(
    out: &mut Vec<(usize, usize, u64)>,
    points: &[wire::otlp::proto::metrics::v1::NumberDataPoint],
) {
    out.extend(
        points
            .iter()
            .map(|p| (1, attributes(&p.attributes), p.time_unix_nano)),
    );
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

        use wire::loki::{Entry, LabelPair, PushRequest, Stream};
        let config: super::super::loki_push::LokiPushConfig =
            toml::from_str("labels = { source = \"pos\" }").unwrap();
        let mut entry = Entry::new(1, "checkout completed");
        entry.structured_metadata.push(LabelPair {
            name: "trace_id".into(),
            value: "5b8efff798038103d269b633813fc60c".into(),
        });
        let req = PushRequest {
            streams: vec![Stream {
                labels: r#"{app="checkout", env="prod", big="a=b=c"}"#.into(),
                entries: vec![entry; 500],
                hash: 0,
            }],
        };
        let bound = loki_push(&req, &config.labels);
        let batch = super::super::loki_push::convert(req, &config, 0).unwrap();
        assert!(
            bound >= batch.size_bytes(),
            "{bound} < {}",
            batch.size_bytes()
        );
        // Both count a stream's labels once (shared by its entries).
        assert!(
            bound <= 2 * batch.size_bytes(),
            "{bound} vs {}",
            batch.size_bytes()
        );

        let req = super::super::otlp::test_data::logs_request();
        let bound = otlp_logs(&req);
        let batch = super::super::otlp::logs::convert(req, &[], 0).batch;
        assert!(
            bound >= batch.size_bytes(),
            "{bound} < {}",
            batch.size_bytes()
        );

        let req = super::super::otlp::test_data::metrics_request();
        let opts = super::super::otlp::metrics::MetricOptions {
            add_unit_suffixes: true,
            promote_resource_attributes: vec![],
        };
        let bound = otlp_metrics(&req, &[]);
        let batch = super::super::otlp::metrics::convert(req, &opts).batch;
        assert!(
            bound >= batch.size_bytes(),
            "{bound} < {}",
            batch.size_bytes()
        );
    }

    fn kv(key: String, value: &str) -> KeyValue {
        KeyValue {
            key,
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    /// A realistic export (30 resource attributes, as a Kubernetes resource detector gives,
    /// 1000 records or points with 5 attributes each): the bound holds, and is not so loose
    /// that it refuses what the budget should admit.
    #[test]
    fn bounds_are_within_a_few_times_realistic_batches() {
        use wire::otlp::proto::logs::v1::{LogRecord as Record, ResourceLogs, ScopeLogs};
        use wire::otlp::proto::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics};
        use wire::otlp::proto::metrics::v1::{ScopeMetrics, metric, number_data_point};
        let resource = Some(wire::otlp::proto::resource::v1::Resource {
            attributes: (0..30)
                .map(|i| kv(format!("k8s.attribute.{i}"), "checkout-7d9f8b6c5-x2x9z"))
                .chain([kv("service.name".into(), "checkout")])
                .collect(),
            ..Default::default()
        });
        let attrs = || (0..5).map(|i| kv(format!("attr.{i}"), "value")).collect();
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource.clone(),
                scope_logs: vec![ScopeLogs {
                    log_records: (0..1000)
                        .map(|i| Record {
                            time_unix_nano: 1_700_000_000_000_000_000 + i,
                            body: Some(AnyValue {
                                value: Some(Value::StringValue(format!("line {i}"))),
                            }),
                            attributes: attrs(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bound = otlp_logs(&logs);
        let real = super::super::otlp::logs::convert(logs, &[], 0)
            .batch
            .size_bytes();
        eprintln!("OTLP logs: bound {bound}, converted {real}");
        assert!(bound >= real && bound <= 3 * real, "{bound} vs {real}");
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource,
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "pos.checkout.duration".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: (0..1000)
                                .map(|i| NumberDataPoint {
                                    attributes: attrs(),
                                    time_unix_nano: 1_700_000_000_000_000_000 + i,
                                    value: Some(number_data_point::Value::AsDouble(1.0)),
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let opts = super::super::otlp::metrics::MetricOptions {
            add_unit_suffixes: true,
            promote_resource_attributes: vec![],
        };
        let bound = otlp_metrics(&metrics, &[]);
        let real = super::super::otlp::metrics::convert(metrics, &opts)
            .batch
            .size_bytes();
        eprintln!("OTLP metrics: bound {bound}, converted {real}");
        assert!(bound >= real && bound <= 3 * real, "{bound} vs {real}");
    }
}
