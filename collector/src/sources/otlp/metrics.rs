//! OTLP metrics → [`MetricSample`]s, after the OpenTelemetry "Prometheus and OpenMetrics
//! compatibility" rules (what Prometheus' and Mimir's OTLP endpoints do):
//!
//! - names: characters outside `[a-zA-Z0-9_:]` become `_`, runs of `_` collapse
//!   (`http.server.request.duration` → `http_server_request_duration`); with
//!   `add_unit_suffixes` the unit is appended unless already there (`s` → `_seconds`, `By` →
//!   `_bytes`, `By/s` → `_bytes_per_second`, `{requests}` dropped), gauges with unit `1` get
//!   `_ratio`;
//! - monotonic cumulative sums are counters and get `_total`; non-monotonic sums are gauges;
//! - histograms → `_bucket{le}` (cumulative, `+Inf` = count), `_sum` (when set), `_count`;
//! - summaries → `{quantile}` samples, `_sum`, `_count`;
//! - labels: the point's attributes (names sanitized like the metric name, a leading digit
//!   prefixed with `key_`), the resource attributes listed in `promote_resource_attributes`,
//!   `job` = `service.namespace/service.name` (or `service.name`), `instance` =
//!   `service.instance.id`;
//! - time in milliseconds; a point flagged "no recorded value" becomes the staleness marker.
//!
//! Rejected, and reported as a partial success: delta temporality (Prometheus has no
//! representation for it), exponential histograms, points without a value or time, histogram
//! points whose bucket counts do not match their bounds, names that sanitize to nothing.

use wire::otlp::ExportMetricsServiceRequest;
use wire::otlp::proto::common::v1::KeyValue;
use wire::otlp::proto::metrics::v1::metric::Data;
use wire::otlp::proto::metrics::v1::number_data_point::Value;
use wire::otlp::proto::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};

use super::{Converted, any_to_string, label_name};
use crate::event::{Labels, MetricBatch, MetricSample};

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

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

/// Converts an export request. `rejected` counts OTLP data points.
pub fn convert(req: ExportMetricsServiceRequest, opts: &MetricOptions) -> Converted<MetricBatch> {
    let mut out = Converted::<MetricBatch>::default();
    for rm in req.resource_metrics {
        let attrs = rm.resource.map(|r| r.attributes).unwrap_or_default();
        let base = resource_labels(&attrs, opts);
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let Some(data) = m.data else { continue };
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
                let delta = AggregationTemporality::Delta as i32;
                match data {
                    Data::Gauge(g) => number_points(&mut out, &name, &base, g.data_points),
                    Data::Sum(s) if s.aggregation_temporality == delta => out.reject_n(
                        points,
                        format!("{}: delta temporality is not supported", m.name),
                    ),
                    Data::Sum(s) => number_points(&mut out, &name, &base, s.data_points),
                    Data::Histogram(h) if h.aggregation_temporality == delta => out.reject_n(
                        points,
                        format!("{}: delta temporality is not supported", m.name),
                    ),
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
    }
    out
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
            labels,
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
    use crate::sources::otlp::test_data::metrics_request;

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
        let got = convert(metrics_request(), &opts());
        assert_eq!(got.rejected, 2, "{:?}", got.error); // the delta sum and the exponential histogram
        assert!(got.error.unwrap().contains("delta temporality"));
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
        let got = convert(req, &opts());
        // delta sum + exponential histogram + histogram + gauge without value + without time
        assert_eq!(got.rejected, 5);
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
