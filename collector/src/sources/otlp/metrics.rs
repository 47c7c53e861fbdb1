//! OTLP metrics → [`MetricSample`]s, after the OpenTelemetry "Prometheus and OpenMetrics
//! compatibility" rules (what Prometheus' and Mimir's OTLP endpoints do):
//!
//! - names: characters outside `[a-zA-Z0-9_:]` become `_`, runs of `_` collapse
//!   (`http.server.request.duration` → `http_server_request_duration`); with
//!   `add_unit_suffixes` the unit is appended unless already there (`s` → `_seconds`, `By` →
//!   `_bytes`, `By/s` → `_bytes_per_second`, `{requests}` dropped), gauges with unit `1` get
//!   `_ratio`;
//! - monotonic sums are counters and get `_total`; non-monotonic sums are gauges;
//! - delta sums and histograms are made cumulative per series (see [`super::delta`]), as the
//!   OpenTelemetry Collector's `deltatocumulative` processor does;
//! - histograms → `_bucket{le}` (cumulative, `+Inf` = count), `_sum` (when set), `_count`;
//! - summaries → `{quantile}` samples, `_sum`, `_count`;
//! - labels: the point's attributes (names sanitized like the metric name, a leading digit
//!   prefixed with `key_`), the resource attributes listed in `promote_resource_attributes`
//!   (where the point has no label of that name), `job` = `service.namespace/service.name` (or
//!   `service.name`), `instance` = `service.instance.id`;
//! - `target_info`, as Prometheus' OTLP receiver makes it (`addResourceTargetInfo`): per
//!   resource with at least one data point, a gauge of value 1 labelled with the resource's
//!   attributes other than `service.name`, `service.namespace`, `service.instance.id`
//!   (sanitized; names colliding after sanitizing have their values joined with `;` in key
//!   order) plus `job`/`instance`; none when the resource has no other attribute or has neither
//!   `job` nor `instance`. Samples at the resource's earliest point time, every 2.5 minutes (half
//!   the default lookback) after it (at most 100; Prometheus has no bound), and at its latest;
//! - time in milliseconds; a point flagged "no recorded value" becomes the staleness marker.
//!
//! Rejected, and reported as a partial success: exponential histograms, points without a value
//! or time, histogram points whose bucket counts do not match their bounds, names that
//! sanitize to nothing, and delta points the running totals refuse (counted with their own
//! reason, see [`DeltaRefusal`]).

use std::collections::HashSet;

use wire::otlp::ExportMetricsServiceRequest;
use wire::otlp::proto::common::v1::{InstrumentationScope, KeyValue};
use wire::otlp::proto::metrics::v1::metric::Data;
use wire::otlp::proto::metrics::v1::number_data_point::Value;
use wire::otlp::proto::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};

use super::delta::{Acc, DeltaRefusal, Deltas};
use super::{Converted, any_to_string, label_name};
use crate::event::{Labels, MetricBatch, MetricSample};

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// The resource attributes Prometheus maps to `job` and `instance` (not on `target_info`).
const IDENTIFYING: [&str; 3] = ["service.namespace", "service.name", "service.instance.id"];

/// Between two `target_info` samples: half of Prometheus' default 5-minute lookback delta.
const TARGET_INFO_INTERVAL_MS: i64 = 150_000;

/// At most this many `target_info` samples before the latest one (about 4 hours of points in
/// one export): Prometheus has no bound, but a client's bogus old timestamp must not make
/// millions of samples.
const MAX_TARGET_INFO_STEPS: i64 = 100;

/// How metric names and labels are made.
#[derive(Clone, Debug, Default)]
pub struct MetricOptions {
    pub add_unit_suffixes: bool,
    /// Resource attributes copied onto every series (names sanitized).
    pub promote_resource_attributes: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

/// Converts one export request on its own: delta series start with it (see [`convert_with`]).
pub fn convert(req: ExportMetricsServiceRequest, opts: &MetricOptions) -> Converted<MetricBatch> {
    convert_with(req, opts, &Deltas::default())
}

/// Converts an export request, delta points through the running totals `deltas`. `rejected`
/// counts OTLP data points.
pub fn convert_with(
    req: ExportMetricsServiceRequest,
    opts: &MetricOptions,
    deltas: &Deltas,
) -> Converted<MetricBatch> {
    let mut out = Converted::<MetricBatch>::default();
    let mut target_infos = HashSet::new();
    for rm in req.resource_metrics {
        let attrs = rm.resource.map(|r| r.attributes).unwrap_or_default();
        let base = resource_labels(&attrs, opts);
        let resource_key = attributes_key(&attrs);
        let mut span = TimeSpan::default();
        for sm in rm.scope_metrics {
            let scope_key = scope_key(sm.scope.as_ref());
            for m in sm.metrics {
                let Some(mut data) = m.data else { continue };
                span.add(&data);
                let points = data_points(&data);
                let kind = match &data {
                    Data::Gauge(_) => Kind::Gauge,
                    Data::Sum(s) if s.is_monotonic => Kind::Counter,
                    Data::Sum(_) => Kind::Gauge,
                    Data::Histogram(_) | Data::ExponentialHistogram(_) => Kind::Histogram,
                    Data::Summary(_) => Kind::Summary,
                };
                let Some(name) = metric_name(&m.name, &m.unit, kind, opts.add_unit_suffixes) else {
                    out.reject_n(points, format!("metric name {:?} is not usable", m.name));
                    continue;
                };
                let series = Series {
                    key: format!(
                        "{resource_key}\u{0}{scope_key}\u{0}{}\u{0}{}\u{0}{}",
                        m.name, m.unit, kind as u8
                    ),
                    metric: &m.name,
                    deltas,
                };
                series.to_cumulative(&mut data, &mut out);
                match data {
                    Data::Gauge(g) => number_points(&mut out, &name, &base, g.data_points),
                    Data::Sum(s) => number_points(&mut out, &name, &base, s.data_points),
                    Data::Histogram(h) => {
                        for p in h.data_points {
                            if let Err(e) = histogram_point(&mut out.batch, &name, &base, p) {
                                out.reject(format!("{}: {e}", m.name));
                            }
                        }
                    }
                    Data::ExponentialHistogram(_) => out.reject_n(
                        points,
                        format!("{}: exponential histograms are not supported", m.name),
                    ),
                    Data::Summary(s) => {
                        for p in s.data_points {
                            if let Err(e) = summary_point(&mut out.batch, &name, &base, p) {
                                out.reject(format!("{}: {e}", m.name));
                            }
                        }
                    }
                }
            }
        }
        target_info(&mut out.batch, &mut target_infos, &attrs, &base, span);
    }
    out
}

/// The earliest and latest point time of a resource, in nanoseconds.
#[derive(Clone, Copy, Default)]
struct TimeSpan(Option<(u64, u64)>);

impl TimeSpan {
    fn add(&mut self, d: &Data) {
        let times: Vec<u64> = match d {
            Data::Gauge(g) => g.data_points.iter().map(|p| p.time_unix_nano).collect(),
            Data::Sum(s) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
            Data::Histogram(h) => h.data_points.iter().map(|p| p.time_unix_nano).collect(),
            Data::ExponentialHistogram(h) => {
                h.data_points.iter().map(|p| p.time_unix_nano).collect()
            }
            Data::Summary(s) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        };
        // Points without a time are rejected, so they do not stretch the span.
        for t in times.into_iter().filter(|t| *t != 0) {
            self.0 = Some(match self.0 {
                None => (t, t),
                Some((lo, hi)) => (lo.min(t), hi.max(t)),
            });
        }
    }
}

/// A resource's `target_info` samples (see the module docs); `seen` drops a labelset and
/// timestamp already written for another resource of the same request, as Prometheus does.
fn target_info(
    batch: &mut MetricBatch,
    seen: &mut HashSet<(Labels, i64)>,
    attrs: &[KeyValue],
    base: &ResourceLabels,
    span: TimeSpan,
) {
    let Some((earliest, latest)) = span.0 else {
        return;
    };
    if attrs
        .iter()
        .all(|kv| IDENTIFYING.contains(&kv.key.as_str()))
        || base.ids.is_empty()
    {
        return;
    }
    let mut sorted: Vec<(&str, String)> = attrs
        .iter()
        .filter(|kv| !IDENTIFYING.contains(&kv.key.as_str()))
        .map(|kv| {
            let v = kv.value.as_ref().map(any_to_string).unwrap_or_default();
            (kv.key.as_str(), v)
        })
        .collect();
    sorted.sort();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in sorted {
        let name = label_name(k);
        match pairs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) if !existing.is_empty() => {
                existing.push(';');
                existing.push_str(&v);
            }
            Some((_, existing)) => *existing = v,
            None => pairs.push((name, v)),
        }
    }
    pairs.retain(|(k, v)| !k.is_empty() && !v.is_empty());
    pairs.extend(base.ids.iter().cloned());
    pairs.push(("__name__".into(), "target_info".into()));
    let labels = Labels::new(pairs);
    let (earliest, latest) = ((earliest / 1_000_000) as i64, (latest / 1_000_000) as i64);
    let mut times: Vec<i64> = (0..MAX_TARGET_INFO_STEPS)
        .map(|i| earliest + i * TARGET_INFO_INTERVAL_MS)
        .take_while(|t| *t < latest)
        .collect();
    times.push(latest);
    for ts in times {
        if seen.insert((labels.clone(), ts)) {
            batch.push(MetricSample {
                labels: labels.clone().into(),
                value: 1.0,
                timestamp_ms: ts,
            });
        }
    }
}

/// Attributes as a key part: sorted by key, typed values printed.
fn attributes_key(attrs: &[KeyValue]) -> String {
    let mut pairs: Vec<(&str, String)> = attrs
        .iter()
        .map(|kv| {
            let v = kv
                .value
                .as_ref()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            (kv.key.as_str(), v)
        })
        .collect();
    pairs.sort();
    let mut key = String::new();
    for (k, v) in pairs {
        key.push_str(k);
        key.push('\u{1}');
        key.push_str(&v);
        key.push('\u{2}');
    }
    key
}

fn scope_key(scope: Option<&InstrumentationScope>) -> String {
    scope
        .map(|s| {
            format!(
                "{}\u{1}{}\u{1}{}",
                s.name,
                s.version,
                attributes_key(&s.attributes)
            )
        })
        .unwrap_or_default()
}

/// One metric's series in the running totals.
struct Series<'a> {
    /// Resource, scope and metric; a point's attributes complete it.
    key: String,
    metric: &'a str,
    deltas: &'a Deltas,
}

impl Series<'_> {
    /// Replaces delta sums' and histograms' points by their series' cumulative state, removing
    /// (and rejecting with their reason) those the running totals refuse. Points that are
    /// malformed or carry no value are left for the conversion to reject or mark stale.
    fn to_cumulative(&self, data: &mut Data, out: &mut Converted<MetricBatch>) {
        let delta = AggregationTemporality::Delta as i32;
        let mut refused = Vec::new();
        match data {
            Data::Sum(s) if s.aggregation_temporality == delta => {
                s.data_points.retain_mut(|p| {
                    let v = match p.value {
                        Some(Value::AsDouble(v)) => v,
                        Some(Value::AsInt(v)) => v as f64,
                        None => return true,
                    };
                    if p.time_unix_nano == 0 || p.flags & NO_RECORDED_VALUE != 0 {
                        return true;
                    }
                    let key = self.point_key(&p.attributes);
                    match self.deltas.add(
                        key,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        Acc::Sum(v),
                    ) {
                        Ok((start, Acc::Sum(total))) => {
                            p.start_time_unix_nano = start;
                            p.value = Some(Value::AsDouble(total));
                            true
                        }
                        Ok(_) => true,
                        Err(r) => {
                            refused.push(r);
                            false
                        }
                    }
                });
                s.aggregation_temporality = AggregationTemporality::Cumulative as i32;
            }
            Data::Histogram(h) if h.aggregation_temporality == delta => {
                h.data_points.retain_mut(|p| {
                    let malformed = !p.bucket_counts.is_empty()
                        && p.bucket_counts.len() != p.explicit_bounds.len() + 1;
                    if malformed || p.time_unix_nano == 0 || p.flags & NO_RECORDED_VALUE != 0 {
                        return true;
                    }
                    let acc = Acc::Histogram {
                        bounds: p.explicit_bounds.clone(),
                        buckets: p.bucket_counts.clone(),
                        count: p.count,
                        sum: p.sum,
                    };
                    let key = self.point_key(&p.attributes);
                    match self
                        .deltas
                        .add(key, p.start_time_unix_nano, p.time_unix_nano, acc)
                    {
                        Ok((
                            start,
                            Acc::Histogram {
                                bounds,
                                buckets,
                                count,
                                sum,
                            },
                        )) => {
                            p.start_time_unix_nano = start;
                            p.explicit_bounds = bounds;
                            p.bucket_counts = buckets;
                            p.count = count;
                            p.sum = sum;
                            true
                        }
                        Ok(_) => true,
                        Err(r) => {
                            refused.push(r);
                            false
                        }
                    }
                });
                h.aggregation_temporality = AggregationTemporality::Cumulative as i32;
            }
            _ => {}
        }
        for r in DeltaRefusal::ALL {
            let n = refused.iter().filter(|x| **x == r).count() as u64;
            if n == 0 {
                continue;
            }
            if r == DeltaRefusal::Limit {
                tracing::warn!(
                    metric = self.metric,
                    points = n,
                    "delta points dropped: too many delta series tracked; raise delta_max_series"
                );
            }
            out.reject_because(r.reason(), n, format!("{}: {}", self.metric, r.describe()));
        }
    }

    fn point_key(&self, attrs: &[KeyValue]) -> String {
        format!("{}\u{0}{}", self.key, attributes_key(attrs))
    }
}

fn data_points(d: &Data) -> u64 {
    (match d {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(h) => h.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    }) as u64
}

/// What a resource contributes to its series' labels.
struct ResourceLabels {
    /// `promote_resource_attributes`, sanitized; a point's own attributes win over them.
    promoted: Vec<(String, String)>,
    /// `job` and `instance`, which win over everything.
    ids: Vec<(String, String)>,
}

fn resource_labels(attrs: &[KeyValue], opts: &MetricOptions) -> ResourceLabels {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref())
            .map(any_to_string)
            .filter(|v| !v.is_empty())
    };
    let promoted = opts
        .promote_resource_attributes
        .iter()
        .filter_map(|k| get(k).map(|v| (label_name(k), v)))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let mut ids = Vec::new();
    if let Some(service) = get("service.name") {
        let job = match get("service.namespace") {
            Some(ns) => format!("{ns}/{service}"),
            None => service,
        };
        ids.push(("job".into(), job));
    }
    if let Some(instance) = get("service.instance.id") {
        ids.push(("instance".into(), instance));
    }
    ResourceLabels { promoted, ids }
}

/// Where the samples of one data point go: its labels (without `__name__`), time, and whether it
/// carries "no recorded value" (every sample is then the staleness marker).
struct Point<'a> {
    batch: &'a mut MetricBatch,
    labels: Labels,
    ts: i64,
    stale: bool,
}

impl<'a> Point<'a> {
    fn new(
        batch: &'a mut MetricBatch,
        base: &ResourceLabels,
        attrs: &[KeyValue],
        time_unix_nano: u64,
        flags: u32,
    ) -> Result<Self, String> {
        if time_unix_nano == 0 {
            return Err("data point without time_unix_nano".into());
        }
        let own = attrs
            .iter()
            .map(|kv| {
                let v = kv.value.as_ref().map(any_to_string).unwrap_or_default();
                (label_name(&kv.key), v)
            })
            .filter(|(k, v)| !k.is_empty() && !v.is_empty());
        // Later pairs win: promoted < the point's own < job/instance.
        let pairs = base
            .promoted
            .iter()
            .cloned()
            .chain(own)
            .chain(base.ids.iter().cloned())
            .collect();
        Ok(Point {
            batch,
            labels: Labels::new(pairs),
            ts: (time_unix_nano / 1_000_000) as i64,
            stale: flags & NO_RECORDED_VALUE != 0,
        })
    }

    fn sample(&mut self, name: &str, extra: Option<(&str, String)>, value: f64) {
        let mut labels = self.labels.clone();
        if let Some((k, v)) = extra {
            labels.insert(k, v);
        }
        labels.insert("__name__", name);
        self.batch.push(MetricSample {
            labels: labels.into(),
            value: if self.stale {
                wire::remote_write::stale_nan()
            } else {
                value
            },
            timestamp_ms: self.ts,
        });
    }
}

fn number_points(
    out: &mut Converted<MetricBatch>,
    name: &str,
    base: &ResourceLabels,
    points: Vec<NumberDataPoint>,
) {
    for p in points {
        let value = match p.value {
            Some(Value::AsDouble(v)) => Some(v),
            Some(Value::AsInt(v)) => Some(v as f64),
            None if p.flags & NO_RECORDED_VALUE != 0 => Some(f64::NAN),
            None => None,
        };
        let point = Point::new(
            &mut out.batch,
            base,
            &p.attributes,
            p.time_unix_nano,
            p.flags,
        );
        match (value, point) {
            (Some(v), Ok(mut point)) => point.sample(name, None, v),
            (None, _) => out.reject(format!("{name}: data point without a value")),
            (_, Err(e)) => out.reject(format!("{name}: {e}")),
        }
    }
}

/// Prometheus' float formatting for `le` and `quantile`.
fn format_bound(b: f64) -> String {
    if b == f64::INFINITY {
        "+Inf".into()
    } else if b == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        b.to_string()
    }
}

fn histogram_point(
    batch: &mut MetricBatch,
    name: &str,
    base: &ResourceLabels,
    p: HistogramDataPoint,
) -> Result<(), String> {
    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} bounds",
            p.bucket_counts.len(),
            p.explicit_bounds.len()
        ));
    }
    let mut point = Point::new(batch, base, &p.attributes, p.time_unix_nano, p.flags)?;
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (count, bound) in p.bucket_counts.iter().zip(&p.explicit_bounds) {
        cumulative = cumulative.saturating_add(*count);
        let le = Some(("le", format_bound(*bound)));
        point.sample(&bucket, le, cumulative as f64);
    }
    point.sample(&bucket, Some(("le", "+Inf".into())), p.count as f64);
    if let Some(sum) = p.sum {
        point.sample(&format!("{name}_sum"), None, sum);
    }
    point.sample(&format!("{name}_count"), None, p.count as f64);
    Ok(())
}

fn summary_point(
    batch: &mut MetricBatch,
    name: &str,
    base: &ResourceLabels,
    p: SummaryDataPoint,
) -> Result<(), String> {
    let mut point = Point::new(batch, base, &p.attributes, p.time_unix_nano, p.flags)?;
    for q in &p.quantile_values {
        point.sample(name, Some(("quantile", format_bound(q.quantile))), q.value);
    }
    point.sample(&format!("{name}_sum"), None, p.sum);
    point.sample(&format!("{name}_count"), None, p.count as f64);
    Ok(())
}

/// The Prometheus word for an OTLP (UCUM) unit, or the unit sanitized when it has none.
fn unit_word(unit: &str) -> Option<String> {
    let word = match unit {
        "" => return None,
        u if u.starts_with('{') => return None,
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => return None,
        other => {
            let s: String = other
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            return (!s.is_empty()).then_some(s);
        }
    };
    Some(word.to_string())
}

/// The `per` part of a unit like `By/s`.
fn per_unit_word(unit: &str) -> Option<String> {
    let word = match unit {
        "" => return None,
        u if u.starts_with('{') => return None,
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return unit_word(other),
    };
    Some(word.to_string())
}

/// The Prometheus name of an OTLP metric, `None` when nothing usable is left.
fn metric_name(name: &str, unit: &str, kind: Kind, add_suffixes: bool) -> Option<String> {
    let mut tokens: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return None;
    }
    if add_suffixes {
        let (main, per) = match unit.split_once('/') {
            Some((m, p)) => (m.trim(), Some(p.trim())),
            None => (unit.trim(), None),
        };
        if let Some(w) = unit_word(main)
            && !tokens.contains(&w)
        {
            tokens.push(w);
        }
        if let Some(w) = per.and_then(per_unit_word)
            && !tokens.contains(&w)
        {
            tokens.push("per".into());
            tokens.push(w);
        }
        if kind == Kind::Gauge && unit == "1" && !tokens.iter().any(|t| t == "ratio") {
            tokens.push("ratio".into());
        }
    }
    if kind == Kind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    wire::labels::is_valid_metric_name(&out).then_some(out)
}

#[cfg(test)]
mod receiver_tests {
    use super::*;
    use crate::sources::otlp::test_data::{T0, metrics_request};

    fn opts() -> MetricOptions {
        MetricOptions {
            add_unit_suffixes: true,
            promote_resource_attributes: vec!["deployment.environment".into()],
        }
    }

    fn find<'a>(b: &'a MetricBatch, name: &str, extra: &[(&str, &str)]) -> &'a MetricSample {
        b.iter()
            .find(|s| {
                s.name() == Some(name) && extra.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no {name} {extra:?} in {b:#?}"))
    }

    #[test]
    fn names_follow_the_prometheus_rules() {
        assert_eq!(
            metric_name("http.server.request.duration", "s", Kind::Histogram, true).unwrap(),
            "http_server_request_duration_seconds"
        );
        assert_eq!(
            metric_name("pos.checkout.count", "{checkouts}", Kind::Counter, true).unwrap(),
            "pos_checkout_count_total"
        );
        assert_eq!(
            metric_name("requests_total", "1", Kind::Counter, true).unwrap(),
            "requests_total"
        );
        assert_eq!(
            metric_name("net.io", "By/s", Kind::Gauge, true).unwrap(),
            "net_io_bytes_per_second"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", Kind::Gauge, true).unwrap(),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", Kind::Gauge, false).unwrap(),
            "cpu_utilization"
        );
        assert_eq!(
            metric_name("latency_seconds", "s", Kind::Gauge, true).unwrap(),
            "latency_seconds"
        );
        assert_eq!(
            metric_name("2xx..responses", "", Kind::Gauge, true).unwrap(),
            "_2xx_responses"
        );
        assert_eq!(metric_name("..", "", Kind::Gauge, true), None);
    }

    #[test]
    fn sums_histograms_summaries_and_resource_labels() {
        let got = convert_with(metrics_request(), &opts(), &Deltas::default());
        assert_eq!(got.rejected, 1, "{:?}", got.error); // the exponential histogram
        assert!(got.error.unwrap().contains("exponential"));
        let b = &got.batch;
        let c = find(
            b,
            "pos_checkout_transactions_total",
            &[("payment_method", "card")],
        );
        assert_eq!(c.value, 17.0);
        assert_eq!(c.timestamp_ms, 1_700_000_000_000);
        assert_eq!(c.labels.get("job"), Some("retail/pos-checkout"));
        assert_eq!(c.labels.get("instance"), Some("till-07"));
        assert_eq!(c.labels.get("deployment_environment"), Some("prod"));
        assert_eq!(c.labels.get("store_id"), Some("1042"));
        // Buckets are cumulative, +Inf is the count.
        let h = "pos_checkout_duration_seconds";
        assert_eq!(find(b, &format!("{h}_bucket"), &[("le", "0.1")]).value, 2.0);
        assert_eq!(find(b, &format!("{h}_bucket"), &[("le", "0.5")]).value, 7.0);
        assert_eq!(
            find(b, &format!("{h}_bucket"), &[("le", "+Inf")]).value,
            8.0
        );
        assert_eq!(find(b, &format!("{h}_sum"), &[]).value, 2.4);
        assert_eq!(find(b, &format!("{h}_count"), &[]).value, 8.0);
        // A non-monotonic sum is a gauge; "no recorded value" is the stale marker.
        let g = find(b, "pos_till_open_baskets", &[]);
        assert!(wire::remote_write::is_stale_nan(g.value));
        // Summary quantiles.
        assert_eq!(
            find(b, "pos_receipt_print_seconds", &[("quantile", "0.99")]).value,
            0.8
        );
        assert_eq!(find(b, "pos_receipt_print_seconds_count", &[]).value, 30.0);
        // The delta sum, made cumulative: its first point is its first total.
        assert_eq!(find(b, "pos_scanner_reads_total", &[]).value, 3.0);
        // target_info: the resource's other attributes, and job/instance.
        let info: Vec<_> = b
            .iter()
            .filter(|s| s.name() == Some("target_info"))
            .collect();
        assert_eq!(info.len(), 1, "{info:#?}");
        let want = Labels::from_iter([
            ("__name__", "target_info"),
            ("deployment_environment", "prod"),
            ("host_name", "till-07"),
            ("instance", "till-07"),
            ("job", "retail/pos-checkout"),
        ]);
        assert_eq!(*info[0].labels, want);
        assert_eq!(
            (info[0].value, info[0].timestamp_ms),
            (1.0, 1_700_000_000_000)
        );
    }

    /// One resource's metrics with the given attributes and one gauge point per time (ms).
    fn resource_request(attrs: Vec<KeyValue>, times_ms: &[u64]) -> ExportMetricsServiceRequest {
        use wire::otlp::proto::metrics::v1::{Gauge, Metric, ResourceMetrics, ScopeMetrics};
        use wire::otlp::proto::resource::v1::Resource;
        let points = times_ms
            .iter()
            .map(|t| NumberDataPoint {
                time_unix_nano: t * 1_000_000,
                value: Some(Value::AsDouble(1.0)),
                ..Default::default()
            })
            .collect();
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "up".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: points,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn target_infos(req: ExportMetricsServiceRequest) -> Vec<MetricSample> {
        convert_with(req, &opts(), &Deltas::default())
            .batch
            .into_iter()
            .filter(|s| s.name() == Some("target_info"))
            .collect()
    }

    #[test]
    fn target_info_follows_prometheus_rules() {
        use crate::sources::otlp::test_data::kv;
        // Only identifying attributes: no target_info (job/instance are on the metrics).
        let ids = vec![kv("service.name", "pos"), kv("service.instance.id", "t1")];
        assert!(target_infos(resource_request(ids.clone(), &[1000])).is_empty());
        // Other attributes but neither job nor instance: none either (loadgen's resources).
        let anon = vec![kv("device.id", "d1")];
        assert!(target_infos(resource_request(anon, &[1000])).is_empty());
        // No data point: none.
        let mut with_host = ids.clone();
        with_host.push(kv("host.name", "h"));
        assert!(target_infos(resource_request(with_host.clone(), &[])).is_empty());
        // Names that collide once sanitized: values joined with ';' in key order.
        let mut collide = with_host.clone();
        collide.push(kv("host-name", "x"));
        let got = target_infos(resource_request(collide, &[1000]));
        assert_eq!(got[0].labels.get("host_name"), Some("x;h"));
        assert_eq!(got[0].labels.get("job"), Some("pos"));
        assert_eq!(got[0].labels.get("service_name"), None);
        // From the earliest to the latest point, every 2.5 minutes, and the latest.
        let got = target_infos(resource_request(with_host.clone(), &[400_000, 1000, 5000]));
        let times: Vec<i64> = got.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(times, [1000, 151_000, 301_000, 400_000]);
        // Two resources with the same labels in one request: each timestamp once.
        let mut req = resource_request(with_host.clone(), &[1000]);
        req.resource_metrics
            .extend(resource_request(with_host, &[1000]).resource_metrics);
        assert_eq!(target_infos(req).len(), 1);
    }

    /// A delta monotonic sum with the given points (start, time, value) per request.
    fn delta_sum(points: &[(u64, u64, f64)], attrs: Vec<KeyValue>) -> ExportMetricsServiceRequest {
        let mut req = resource_request(attrs, &[]);
        let m = &mut req.resource_metrics[0].scope_metrics[0].metrics[0];
        m.name = "pos.scans".into();
        m.data = Some(Data::Sum(wire::otlp::proto::metrics::v1::Sum {
            data_points: points
                .iter()
                .map(|(start, t, v)| NumberDataPoint {
                    start_time_unix_nano: *start,
                    time_unix_nano: *t,
                    value: Some(Value::AsInt(*v as i64)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }));
        req
    }

    #[test]
    fn delta_sums_become_cumulative_across_requests_and_refusals_are_counted() {
        use crate::sources::otlp::test_data::kv;
        let d = Deltas::new(1, std::time::Duration::from_secs(3600));
        let a = || vec![kv("device.id", "a")];
        let total = |c: &Converted<MetricBatch>| find(&c.batch, "pos_scans_total", &[]).value;
        let first = convert_with(delta_sum(&[(T0, T0 + 1, 2.0)], a()), &opts(), &d);
        assert_eq!(total(&first), 2.0);
        let second = convert_with(delta_sum(&[(T0 + 1, T0 + 2, 5.0)], a()), &opts(), &d);
        assert_eq!(total(&second), 7.0);
        assert_eq!(second.batch[0].timestamp_ms, ((T0 + 2) / 1_000_000) as i64);
        // Out of order: dropped with its reason, never silently.
        let late = convert_with(delta_sum(&[(T0 + 1, T0 + 2, 1.0)], a()), &opts(), &d);
        assert_eq!(late.rejected, 1);
        assert_eq!(late.reasons, [("delta_out_of_order", 1)]);
        // A second series past the cap of 1.
        let b = vec![kv("device.id", "b")];
        let over = convert_with(delta_sum(&[(T0, T0 + 1, 1.0)], b), &opts(), &d);
        assert_eq!(over.reasons, [("delta_series_limit", 1)]);
        assert!(over.error.unwrap().contains("pos.scans"));
    }

    #[test]
    fn delta_histograms_become_cumulative() {
        let d = Deltas::default();
        let mut req = metrics_request();
        let metrics = &mut req.resource_metrics[0].scope_metrics[0].metrics;
        if let Some(Data::Histogram(h)) = &mut metrics[1].data {
            h.aggregation_temporality = AggregationTemporality::Delta as i32;
        }
        let bucket = "pos_checkout_duration_seconds_bucket";
        let first = convert_with(req.clone(), &opts(), &d);
        assert_eq!(find(&first.batch, bucket, &[("le", "0.5")]).value, 7.0);
        // The same delta again, later: everything doubles.
        let metrics = &mut req.resource_metrics[0].scope_metrics[0].metrics;
        if let Some(Data::Histogram(h)) = &mut metrics[1].data {
            h.data_points[0].time_unix_nano += 1_000_000_000;
        }
        let second = convert_with(req, &opts(), &d);
        assert_eq!(find(&second.batch, bucket, &[("le", "0.5")]).value, 14.0);
        assert_eq!(find(&second.batch, bucket, &[("le", "+Inf")]).value, 16.0);
        let sum = find(&second.batch, "pos_checkout_duration_seconds_sum", &[]).value;
        assert!((sum - 4.8).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn malformed_points_are_rejected_one_by_one() {
        use wire::otlp::proto::metrics::v1::metric::Data;
        let mut req = metrics_request();
        let metrics = &mut req.resource_metrics[0].scope_metrics[0].metrics;
        if let Some(Data::Histogram(h)) = &mut metrics[1].data {
            h.data_points[0].bucket_counts.push(1); // 4 counts for 2 bounds
        }
        if let Some(Data::Gauge(g)) = &mut metrics[6].data {
            let mut no_value = g.data_points[0].clone();
            no_value.value = None;
            let mut no_time = g.data_points[0].clone();
            no_time.time_unix_nano = 0;
            g.data_points.extend([no_value, no_time]);
        }
        let got = convert_with(req, &opts(), &Deltas::default());
        // exponential histogram + histogram + gauge without value + without time
        assert_eq!(got.rejected, 4);
        assert!(
            !got.batch
                .iter()
                .any(|s| s.name() == Some("pos_checkout_duration_seconds_count"))
        );
        let floats: Vec<_> = got
            .batch
            .iter()
            .filter(|s| s.name() == Some("pos_cash_drawer_float"))
            .collect();
        assert_eq!(floats.len(), 1);
        assert_eq!(floats[0].value, 250.0);
    }
}
