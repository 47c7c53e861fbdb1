//! Logs and metrics as OTLP export requests, so a device can deliver them over OTLP/HTTP to the
//! collector's `otlp` source (traces already go that way). Pure conversions, no I/O: the
//! caller encodes the request (`prost::Message::encode_to_vec`) and posts it to `/v1/logs` or
//! `/v1/metrics`.
//!
//! The conversions are built so that the collector's OTLP translation (Prometheus' OTLP
//! receiver rules for metrics, Loki's OTLP ingestion rules for logs) gives back what the push
//! path delivers, with the source configured as
//!
//! ```toml
//! promote_resource_attributes = ["region", "location", "node_type", "device", "brand", "problem_mode"]
//! log_index_attributes = ["region", "location", "node_type", "device", "brand", "problem_mode", "service.name"]
//! ```
//!
//! ([`LABEL_ATTRIBUTES`], and [`LOG_INDEX_ATTRIBUTES`] for the logs).
//!
//! **Metrics** ([`metrics_request`]): the series are exactly the scrape's remote-write series
//! ([`Scrape::series`]): same names, labels, values and timestamps.
//! - The resource holds `resource_labels` (the device's labels) as string attributes, and
//!   nothing else: no `service.name`, since Prometheus' translation turns it into a `job` label
//!   (and `service.instance.id` into `instance`) that the remote-write series do not have. A
//!   data point's attributes are its sample's labels less the resource's (same name and value).
//! - Counters (`_total` samples of a counter family) are monotonic cumulative sums named without
//!   the `_total`, which the translation adds back (it also drops a `total` word itself, so
//!   sending it would still give one `_total`, never `_total_total`); gauges are gauges;
//!   histograms (`_bucket{le}`, `_sum`, `_count`) are explicit-bucket histograms, cumulative,
//!   with the bounds of the finite `le`s and per-bucket (not cumulative) counts.
//! - No unit is sent: the names already end with their Prometheus unit, so the name is the same
//!   whether the source has `add_unit_suffixes` on or off.
//! - Whatever does not fit those shapes (untyped and summary families, a counter sample without
//!   `_total`, `_created`, an incomplete histogram) goes as one gauge per sample name, which the
//!   translation gives back unchanged.
//! - Time: the sample's own timestamp, else the scrape's (ms → ns). `start_time_unix_nano` is
//!   left 0 ("unknown", which OTLP allows): the counters start with the loadgen process, which a
//!   [`Scrape`] does not know, and a made-up start would be wrong for Prometheus'
//!   created-timestamp handling.
//!
//! **Logs** ([`logs_request`]): entries with the same labels share one `ResourceLogs`; the
//! resource is [`device_resource`]: one string attribute per label plus `service.name` = the
//! `node_type` label (the name the POS traces already use for the `pos` service). Each record
//! has the line as a string body and `time_unix_nano` = `observed_time_unix_nano` = the entry's
//! time. Loki's OTLP ingestion always gives a stream a `service_name` label, so through the
//! collector the stream labels are the entry's labels plus `service_name`: the node type with
//! [`LOG_INDEX_ATTRIBUTES`], `unknown_service` with [`LABEL_ATTRIBUTES`] alone (`service_name`
//! is then structured metadata). Line and time are kept. The scope (`scope_name`,
//! `scope_version`) and `observed_timestamp` become structured metadata, which Loki's query
//! results show beside the stream labels (so entries of one stream with different times come
//! back as separate result streams; `/series` shows the one stream).
//!
//! Limits of the metric mapping (Prometheus' translation is lossy, not this side): a name with
//! `__`, a leading or trailing `_`, or (for a counter) the word `total` before `_total` would
//! not come back unchanged; the device families have none.

use std::collections::BTreeMap;

use wire::exposition::{ExpoSample, MetricFamily, MetricKind};
use wire::otlp::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use wire::otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wire::otlp::proto::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::{ExportLogsServiceRequest, ExportMetricsServiceRequest};

use crate::generate::{LogEntry, Scrape};

/// The device labels, which become resource attributes.
pub const LABEL_ATTRIBUTES: [&str; 6] = [
    "region",
    "location",
    "node_type",
    "device",
    "brand",
    "problem_mode",
];

/// The `log_index_attributes` that make a log stream's labels the device's labels plus
/// `service_name` = the node type.
pub const LOG_INDEX_ATTRIBUTES: [&str; 7] = [
    "region",
    "location",
    "node_type",
    "device",
    "brand",
    "problem_mode",
    "service.name",
];

/// The instrumentation scope of everything loadgen sends.
fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "loadgen".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The resource of a device's logs: one string attribute per label (`region`, `location`,
/// `node_type`, `device`, `brand`, `problem_mode`) plus `service.name` = the `node_type` label
/// (left out when there is no such label).
pub fn device_resource(labels: &[(String, String)]) -> Resource {
    let mut attributes: Vec<KeyValue> = labels.iter().map(|(k, v)| str_kv(k, v)).collect();
    if let Some((_, node_type)) = labels.iter().find(|(k, _)| k == "node_type") {
        attributes.push(str_kv("service.name", node_type));
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

/// Log entries as one export request: entries with the same labels grouped into one
/// `ResourceLogs` (resource [`device_resource`]), in order of first appearance; body = the line
/// (a string), `time_unix_nano` = `observed_time_unix_nano` = `timestamp_ns` (0, "unknown",
/// for a time before the epoch).
pub fn logs_request(entries: &[LogEntry]) -> ExportLogsServiceRequest {
    let mut order: Vec<Vec<(String, String)>> = Vec::new();
    let mut groups: BTreeMap<Vec<(String, String)>, Vec<LogRecord>> = BTreeMap::new();
    for e in entries {
        let mut key = e.labels.clone();
        key.sort();
        let ts = u64::try_from(e.timestamp_ns).unwrap_or(0);
        let record = LogRecord {
            time_unix_nano: ts,
            observed_time_unix_nano: ts,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(e.line.clone())),
            }),
            ..Default::default()
        };
        match groups.get_mut(&key) {
            Some(records) => records.push(record),
            None => {
                order.push(key.clone());
                groups.insert(key, vec![record]);
            }
        }
    }
    let resource_logs = order
        .into_iter()
        .map(|labels| {
            let log_records = groups.remove(&labels).unwrap_or_default();
            ResourceLogs {
                resource: Some(device_resource(&labels)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

/// One scrape as one export request: one resource (`resource_labels` as string attributes, no
/// `service.name`; see the module docs), one scope, a metric per family (and per sample name for
/// what goes as gauges). `resource_labels` should be labels every sample carries (the device's):
/// the collector promotes them onto every series.
pub fn metrics_request(
    scrape: &Scrape,
    resource_labels: &[(String, String)],
) -> ExportMetricsServiceRequest {
    let conv = Conv {
        resource: resource_labels,
        scrape_ns: ms_to_ns(scrape.timestamp_ms),
    };
    let mut metrics = Vec::new();
    for f in &scrape.families {
        match f.kind {
            MetricKind::Counter => conv.counter(f, &mut metrics),
            MetricKind::Histogram => conv.histogram(f, &mut metrics),
            _ => conv.gauges(f, f.samples.iter(), &mut metrics),
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource_labels.iter().map(|(k, v)| str_kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

/// The per-scrape context of a metrics conversion.
struct Conv<'a> {
    resource: &'a [(String, String)],
    scrape_ns: u64,
}

impl Conv<'_> {
    /// A sample's labels less the resource's and less `skip`.
    fn attributes(&self, labels: &[(String, String)], skip: Option<&str>) -> Vec<KeyValue> {
        labels
            .iter()
            .filter(|(k, v)| {
                Some(k.as_str()) != skip && !self.resource.iter().any(|(rk, rv)| rk == k && rv == v)
            })
            .map(|(k, v)| str_kv(k, v))
            .collect()
    }

    fn time(&self, s: &ExpoSample) -> u64 {
        s.timestamp_ms.map_or(self.scrape_ns, ms_to_ns)
    }

    fn number_point(&self, s: &ExpoSample) -> NumberDataPoint {
        NumberDataPoint {
            attributes: self.attributes(&s.labels, None),
            time_unix_nano: self.time(s),
            value: Some(number_data_point::Value::AsDouble(s.value)),
            ..Default::default()
        }
    }

    fn metric(f: &MetricFamily, name: &str, data: metric::Data) -> Metric {
        Metric {
            name: name.to_string(),
            description: f.help.clone().unwrap_or_default(),
            data: Some(data),
            ..Default::default()
        }
    }

    /// One gauge per sample name, in order of first appearance.
    fn gauges<'s>(
        &self,
        f: &MetricFamily,
        samples: impl Iterator<Item = &'s ExpoSample>,
        out: &mut Vec<Metric>,
    ) {
        let mut by_name: Vec<(&str, Vec<NumberDataPoint>)> = Vec::new();
        for s in samples {
            let p = self.number_point(s);
            match by_name.iter_mut().find(|(n, _)| *n == s.name) {
                Some((_, points)) => points.push(p),
                None => by_name.push((&s.name, vec![p])),
            }
        }
        for (name, data_points) in by_name {
            out.push(Self::metric(
                f,
                name,
                metric::Data::Gauge(Gauge { data_points }),
            ));
        }
    }

    /// `_total` samples as monotonic cumulative sums named without `_total`; the rest as gauges.
    fn counter(&self, f: &MetricFamily, out: &mut Vec<Metric>) {
        let mut sums: Vec<(&str, Vec<NumberDataPoint>)> = Vec::new();
        let mut rest = Vec::new();
        for s in &f.samples {
            match s.name.strip_suffix("_total").filter(|n| !n.is_empty()) {
                Some(base) => {
                    let p = self.number_point(s);
                    match sums.iter_mut().find(|(n, _)| *n == base) {
                        Some((_, points)) => points.push(p),
                        None => sums.push((base, vec![p])),
                    }
                }
                None => rest.push(s),
            }
        }
        for (name, data_points) in sums {
            let sum = Sum {
                data_points,
                aggregation_temporality: CUMULATIVE,
                is_monotonic: true,
            };
            out.push(Self::metric(f, name, metric::Data::Sum(sum)));
        }
        self.gauges(f, rest.into_iter(), out);
    }

    /// `<family>_bucket{le}`, `_sum` and `_count` as one histogram point per label set; samples
    /// that do not make a complete point go as gauges.
    fn histogram(&self, f: &MetricFamily, out: &mut Vec<Metric>) {
        let bucket = format!("{}_bucket", f.name);
        let sum = format!("{}_sum", f.name);
        let count = format!("{}_count", f.name);
        let mut points: Vec<(Vec<(String, String)>, HistParts<'_>)> = Vec::new();
        let mut rest = Vec::new();
        for s in &f.samples {
            let part = if s.name == bucket {
                s.label("le").map(|_| Part::Bucket)
            } else if s.name == sum {
                Some(Part::Sum)
            } else if s.name == count {
                Some(Part::Count)
            } else {
                None
            };
            let Some(part) = part else {
                rest.push(s);
                continue;
            };
            let mut key: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            key.sort();
            let i = match points.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    points.push((key, HistParts::default()));
                    points.len() - 1
                }
            };
            let Some((_, parts)) = points.get_mut(i) else {
                continue;
            };
            // A second `_sum` or `_count` of the same point (not valid exposition) stays a gauge.
            let slot = match part {
                Part::Bucket => {
                    parts.buckets.push(s);
                    continue;
                }
                Part::Sum => &mut parts.sum,
                Part::Count => &mut parts.count,
            };
            match slot {
                Some(_) => rest.push(s),
                None => *slot = Some(s),
            }
        }
        let mut data_points = Vec::new();
        for (_, parts) in points {
            match self.histogram_point(&parts) {
                Some(p) => data_points.push(p),
                None => rest.extend(parts.all()),
            }
        }
        if !data_points.is_empty() {
            let h = Histogram {
                data_points,
                aggregation_temporality: CUMULATIVE,
            };
            out.push(Self::metric(f, &f.name, metric::Data::Histogram(h)));
        }
        self.gauges(f, rest.into_iter(), out);
    }

    /// `None` unless the samples make a point the translation gives back as they are: a `+Inf`
    /// bucket equal to the count, parseable bounds in increasing order with the `le` strings as
    /// Prometheus prints them, non-decreasing integer cumulative counts, one timestamp.
    fn histogram_point(&self, parts: &HistParts<'_>) -> Option<HistogramDataPoint> {
        let count = parts.count?;
        let mut buckets: Vec<(f64, &ExpoSample)> = parts
            .buckets
            .iter()
            .map(|s| {
                let le = s.label("le")?;
                let b: f64 = match le {
                    "+Inf" => f64::INFINITY,
                    _ => le.parse().ok().filter(|b: &f64| b.is_finite())?,
                };
                // The translation prints bounds Rust's way; only those come back the same.
                (b.is_infinite() || b.to_string() == le).then_some((b, *s))
            })
            .collect::<Option<_>>()?;
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if buckets.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        let (inf, finite) = buckets.split_last()?;
        if inf.0 != f64::INFINITY || inf.1.value != count.value {
            return None;
        }
        let time = self.time(count);
        if parts.all().any(|s| self.time(s) != time) {
            return None;
        }
        let whole =
            |v: f64| (v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53)).then_some(v as u64);
        let total = whole(count.value)?;
        let mut bucket_counts = Vec::with_capacity(buckets.len());
        let mut previous = 0u64;
        for (_, s) in finite {
            let c = whole(s.value)?;
            bucket_counts.push(c.checked_sub(previous)?);
            previous = c;
        }
        bucket_counts.push(total.checked_sub(previous)?);
        Some(HistogramDataPoint {
            attributes: self.attributes(&count.labels, None),
            time_unix_nano: time,
            count: total,
            sum: parts.sum.map(|s| s.value),
            bucket_counts,
            explicit_bounds: finite.iter().map(|(b, _)| *b).collect(),
            ..Default::default()
        })
    }
}

enum Part {
    Bucket,
    Sum,
    Count,
}

/// The samples of one histogram point.
#[derive(Default)]
struct HistParts<'a> {
    buckets: Vec<&'a ExpoSample>,
    sum: Option<&'a ExpoSample>,
    count: Option<&'a ExpoSample>,
}

impl<'a> HistParts<'a> {
    fn all(&self) -> impl Iterator<Item = &'a ExpoSample> + '_ {
        self.buckets
            .iter()
            .copied()
            .chain(self.sum)
            .chain(self.count)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
