//! Remote write: `POST /api/v1/push` (Mimir, 200 on success) and `POST /api/v1/write`
//! (Prometheus' receiver, 204 on success), protobuf in snappy block format.
//!
//! `/api/v1/push` validates as Mimir's distributor and ingester do: a series with unsorted or
//! duplicate label names, no or an invalid metric name, or an invalid (legacy, non-UTF-8-era)
//! label name is refused with 400 and Mimir's message (with its `err-mimir-...` id); labels with
//! empty values are dropped first (Prometheus treats them as absent). A sample older than the
//! series' newest is out of order (or, with an out-of-order window, too old beyond it), one with
//! the same timestamp and other value a duplicate; all 400. As in Mimir, the valid series and
//! samples of a partly bad request are ingested and the first error is returned.
//!
//! `/api/v1/write` validates as Prometheus 3's remote-write receiver (storage/remote/
//! write_handler.go) does: label names are UTF-8 (`bad-name` is fine); a series without a metric
//! name, with an empty label name or duplicate names is skipped silently (still 204); a sample
//! the TSDB refuses (out of order, too old, duplicate, more than 10 minutes in the future) fails
//! the whole request (rolled back: nothing of it is stored) with 400 and the TSDB's error text.
//! Prometheus 2.x answered 500 for a too-old sample (its handler compared the wrapped error with
//! `==`); 3.x answers 400, which is what this does.
//!
//! Every refused sample is counted in `cortex_discarded_samples_total{reason,user}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wire::remote_write::{Label, SeriesProblem, check_series};

use super::Mimir;
use super::store::{AppendError, Labels};

/// The tenant used without a tenant header.
pub const DEFAULT_TENANT: &str = "anonymous";

/// Why (part of) a write request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Decode(String),
    #[error("{message}")]
    Series {
        message: String,
        reason: &'static str,
    },
    #[error("{message}")]
    Sample {
        message: String,
        reason: &'static str,
    },
    /// Over the tenant's `ingestion_rate`: 429 with `Retry-After`, nothing stored.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
}

/// What one write request did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WriteOutcome {
    pub ingested: u64,
    /// The first problem met, if any (the rest of the request was still ingested).
    pub error: Option<WriteError>,
}

/// The tenant of a request.
pub fn tenant(headers: &HeaderMap) -> String {
    crate::embedded::http::tenant_or(headers, DEFAULT_TENANT)
}

/// `model.Metric.String()` as Mimir prints a series in its messages: `name{a="b", c="d"}`.
pub fn metric_string(labels: &[Label]) -> String {
    let mut name = "";
    let mut rest: BTreeMap<&str, &str> = BTreeMap::new();
    for l in labels {
        if l.name == "__name__" {
            name = &l.value;
        } else {
            rest.insert(&l.name, &l.value);
        }
    }
    if rest.is_empty() {
        return if name.is_empty() {
            "{}".to_string()
        } else {
            name.to_string()
        };
    }
    let pairs: Vec<(String, String)> = rest
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    format!("{name}{}", wire::labels::format_label_set(&pairs))
}

/// Go's `%.200s`: at most 200 characters.
fn trunc200(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Mimir's message and discard reason for a series problem.
pub fn series_error(p: &SeriesProblem, labels: &[Label]) -> WriteError {
    let series = trunc200(&metric_string(labels));
    let (message, reason) = match p {
        SeriesProblem::MissingMetricName => (
            "received series has no metric name (err-mimir-missing-metric-name)".to_string(),
            "missing_metric_name",
        ),
        SeriesProblem::InvalidMetricName(n) => (
            format!(
                "received a series with invalid metric name: '{}' (err-mimir-metric-name-invalid)",
                trunc200(n)
            ),
            "metric_name_invalid",
        ),
        SeriesProblem::InvalidLabelName(n) => (
            format!(
                "received a series with an invalid label: '{}' series: '{series}' (err-mimir-label-invalid)",
                trunc200(n)
            ),
            "label_invalid",
        ),
        SeriesProblem::DuplicateLabel(n) => (
            format!(
                "received a series with duplicate label name, label: '{}' series: '{series}' (err-mimir-duplicate-label-names)",
                trunc200(n)
            ),
            "duplicate_label_names",
        ),
        SeriesProblem::LabelsNotSorted(n) => (
            format!(
                "received a series where the label names are not sorted, label: '{}' series: '{series}' (err-mimir-labels-not-sorted)",
                trunc200(n)
            ),
            "labels_not_sorted",
        ),
        SeriesProblem::EmptyLabelValue(n) => (
            format!(
                "received a series with an invalid label: '{}' series: '{series}' (err-mimir-label-invalid)",
                trunc200(n)
            ),
            "label_invalid",
        ),
    };
    WriteError::Series { message, reason }
}

/// Go's `time.RFC3339Nano` of a millisecond timestamp (trailing zeros of the fraction trimmed).
pub fn rfc3339_millis(t: i64) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp_millis(t) else {
        return t.to_string();
    };
    let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let ms = t.rem_euclid(1000);
    if ms == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{ms:03}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

/// Prometheus' `model.Duration` spelling (`10m`, `1h30m`, `0s`).
pub fn model_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (unit, mult, exact) in [
        ("y", 365 * 86_400_000, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, true),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && rest % mult != 0 {
            continue;
        }
        let n = rest / mult;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            rest -= n * mult;
        }
    }
    out
}

/// Mimir's message and discard reason for a refused sample.
fn sample_error(e: AppendError, t: i64, labels: &Labels, window_ms: i64) -> WriteError {
    let too_old;
    let (what, id, reason) = match e {
        AppendError::OutOfOrder => (
            "the sample has been rejected because another sample with a more recent timestamp has already been ingested and out-of-order samples are not allowed",
            "sample-out-of-order",
            "sample-out-of-order",
        ),
        AppendError::TooOld => {
            too_old = format!(
                "the sample has been rejected because another sample with a more recent timestamp has already been ingested and this sample is beyond the out-of-order time window of {}",
                model_duration(window_ms)
            );
            (
                too_old.as_str(),
                "sample-timestamp-too-old",
                "sample-too-old",
            )
        }
        AppendError::DuplicateTimestamp(_) => (
            "the sample has been rejected because another sample with the same timestamp, but a different value, has already been ingested",
            "sample-duplicate-timestamp",
            "new-value-for-timestamp",
        ),
    };
    WriteError::Sample {
        message: format!(
            "{what} (err-mimir-{id}). The affected sample has timestamp {} and is from series {}",
            rfc3339_millis(t),
            super::promql::format_labels(labels)
        ),
        reason,
    }
}

impl Mimir {
    /// A remote-write body decoded within the size budget, or the outcome that refuses it.
    fn decode(&self, body: &[u8]) -> Result<wire::remote_write::WriteRequest, WriteOutcome> {
        wire::remote_write::decode(body, self.config.max_decompressed_bytes).map_err(|e| {
            WriteOutcome {
                ingested: 0,
                error: Some(WriteError::Decode(e.to_string())),
            }
        })
    }

    /// Decodes, validates and ingests one remote-write body for `tenant`.
    pub fn ingest(&self, tenant: &str, body: &[u8]) -> WriteOutcome {
        let mut req = match self.decode(body) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        for ts in &mut req.timeseries {
            ts.labels.retain(|l| !l.value.is_empty());
        }
        if let Err(refused) = self.rate_limit(tenant, &req) {
            return refused;
        }
        let window = self.config.out_of_order_window_ms;
        let mut out = WriteOutcome::default();
        let mut discards: BTreeMap<&'static str, u64> = BTreeMap::new();
        {
            let mut store = self.store.write();
            for ts in req.timeseries {
                if let Err(p) = check_series(&ts.labels) {
                    let err = series_error(&p, &ts.labels);
                    if let WriteError::Series { reason, .. } = &err {
                        *discards.entry(reason).or_default() += ts.samples.len() as u64;
                    }
                    out.error.get_or_insert(err);
                    continue;
                }
                let labels: Labels = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                for s in &ts.samples {
                    match store.append_within(tenant, &labels, s.timestamp, s.value, window) {
                        Ok(()) => out.ingested += 1,
                        Err(e) => {
                            let err = sample_error(e, s.timestamp, &labels, window);
                            if let WriteError::Sample { reason, .. } = &err {
                                *discards.entry(reason).or_default() += 1;
                            }
                            out.error.get_or_insert(err);
                        }
                    }
                }
                store.drop_if_empty(tenant, &labels);
            }
            let ev = store.evict_to(self.config.retention_bytes);
            self.metrics.evicted_samples.add(ev.samples);
            self.metrics.evicted_series.add(ev.series);
        }
        self.metrics.ingested_samples.add(out.ingested);
        self.count_discards(tenant, discards);
        out
    }

    /// Mimir's distributor: after validation, the valid series' samples and exemplars plus the
    /// metadata count against the tenant's `ingestion_rate`; over it, all of them are discarded
    /// (`reason="rate_limited"`) and the push refused.
    fn rate_limit(
        &self,
        tenant: &str,
        req: &wire::remote_write::WriteRequest,
    ) -> Result<(), WriteOutcome> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let (samples, exemplars) = req
            .timeseries
            .iter()
            .filter(|ts| check_series(&ts.labels).is_ok())
            .fold((0u64, 0u64), |(s, e), ts| {
                (s + ts.samples.len() as u64, e + ts.exemplars.len() as u64)
            });
        let items = samples + exemplars + req.metadata.len() as u64;
        limiter.allow(tenant, items).map_err(|refused| {
            self.count_discards(tenant, BTreeMap::from([("rate_limited", samples)]));
            WriteOutcome {
                ingested: 0,
                error: Some(WriteError::RateLimited {
                    message: crate::embedded::limits::mimir_message(refused.limit),
                    retry_after_s: refused.retry_after_s,
                }),
            }
        })
    }

    fn count_discards(&self, tenant: &str, discards: BTreeMap<&'static str, u64>) {
        if discards.is_empty() {
            return;
        }
        let mut d = self.metrics.discarded.lock();
        for (reason, n) in discards {
            *d.entry((reason.to_string(), tenant.to_string()))
                .or_default() += n;
        }
    }

    /// Decodes and ingests one remote-write body for `tenant` as Prometheus 3's receiver does:
    /// series with invalid labels skipped, then all samples or none.
    pub fn ingest_prometheus(&self, tenant: &str, body: &[u8]) -> WriteOutcome {
        let req = match self.decode(body) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        let window = self.config.out_of_order_window_ms;
        let mut discards: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut series: Vec<(Labels, Vec<(i64, f64)>)> = Vec::with_capacity(req.timeseries.len());
        for ts in req.timeseries {
            let mut labels: Labels = ts
                .labels
                .into_iter()
                .filter(|l| !l.value.is_empty())
                .map(|l| (l.name, l.value))
                .collect();
            labels.sort();
            let valid = labels.iter().any(|(k, _)| k == "__name__")
                && labels.iter().all(|(k, _)| !k.is_empty())
                && labels.windows(2).all(|w| w[0].0 != w[1].0);
            if !valid {
                // Prometheus counts these in prometheus_api_remote_write_invalid_labels_samples_total.
                *discards.entry("invalid_labels").or_default() += ts.samples.len() as u64;
                continue;
            }
            let samples = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
            series.push((labels, samples));
        }
        let total: u64 = series.iter().map(|(_, s)| s.len() as u64).sum();
        let max_t = chrono::Utc::now().timestamp_millis() + PROMETHEUS_MAX_AHEAD_MS;
        let mut out = WriteOutcome::default();
        {
            let mut store = self.store.write();
            let refused = match series
                .iter()
                .flat_map(|(l, s)| s.iter().map(move |x| (l, x)))
                .find(|(_, x)| x.0 > max_t)
            {
                Some(_) => Some((
                    "out of bounds: timestamp is too far in the future".to_string(),
                    "sample-too-far-in-future",
                )),
                None => store
                    .check_all(
                        tenant,
                        series.iter().map(|(l, s)| (l, s.as_slice())),
                        window,
                    )
                    .err()
                    .map(|(e, _, t, v)| prometheus_sample_error(e, t, v)),
            };
            if let Some((message, reason)) = refused {
                // Rolled back: every sample of the request is dropped.
                *discards.entry(reason).or_default() += total;
                out.error = Some(WriteError::Sample { message, reason });
            } else {
                for (labels, samples) in &series {
                    for &(t, v) in samples {
                        // check_all accepted each of them in this order.
                        if store.append_within(tenant, labels, t, v, window).is_ok() {
                            out.ingested += 1;
                        }
                    }
                }
                let ev = store.evict_to(self.config.retention_bytes);
                self.metrics.evicted_samples.add(ev.samples);
                self.metrics.evicted_series.add(ev.series);
            }
        }
        self.metrics.ingested_samples.add(out.ingested);
        self.count_discards(tenant, discards);
        out
    }
}

/// Prometheus' `maxAheadTime`: samples further in the future are out of bounds.
const PROMETHEUS_MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// The TSDB's error text (Prometheus answers it as the 400 body) and a discard reason.
fn prometheus_sample_error(e: AppendError, t: i64, v: f64) -> (String, &'static str) {
    match e {
        AppendError::OutOfOrder => ("out of order sample".into(), "sample-out-of-order"),
        AppendError::TooOld => ("too old sample".into(), "sample-too-old"),
        AppendError::DuplicateTimestamp(existing) => (
            format!(
                "duplicate sample for timestamp {t}; overrides not allowed: existing {}, new value {}",
                go_g(existing),
                go_g(v)
            ),
            "new-value-for-timestamp",
        ),
    }
}

/// Go's `%g` of a float64 (shortest digits; exponent form below 1e-4 or from 1e6).
fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        // Rust's `{:e}` gives `1e6`; Go writes `1e+06`, with at least two exponent digits.
        let s = format!("{v:e}");
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        format!("{mant}e{sign}{digits:0>2}")
    } else {
        format!("{v}")
    }
}

fn respond(out: WriteOutcome, ok: StatusCode) -> Response {
    match out.error {
        None => ok.into_response(),
        Some(WriteError::RateLimited {
            message,
            retry_after_s,
        }) => crate::embedded::limits::with_retry_after(
            (StatusCode::TOO_MANY_REQUESTS, format!("{message}\n")).into_response(),
            retry_after_s,
        ),
        Some(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// `POST /api/v1/push`: Mimir's endpoint, 200 on success.
pub async fn push(State(m): State<Arc<Mimir>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(m.ingest(&tenant(&headers), &body), StatusCode::OK)
}

/// `POST /api/v1/write`: Prometheus' receiver endpoint, 204 on success.
pub async fn write(State(m): State<Arc<Mimir>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(
        m.ingest_prometheus(&tenant(&headers), &body),
        StatusCode::NO_CONTENT,
    )
}

/// One series to send: labels in sending order and samples as (ms, value).
pub type SeriesSpec<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// A remote-write body (protobuf + snappy) for `series`, each given by its labels in the order
/// to send them (so tests can send them unsorted) and its samples as (ms, value).
pub fn encode_series(series: &[SeriesSpec<'_>]) -> Vec<u8> {
    let req = wire::remote_write::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| wire::remote_write::TimeSeries {
                labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| wire::remote_write::Sample { value, timestamp })
                    .collect(),
                exemplars: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    wire::remote_write::encode(&req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(rfc3339_millis(1_543_969), "1970-01-01T00:25:43.969Z");
        assert_eq!(rfc3339_millis(1_960), "1970-01-01T00:00:01.96Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00Z");
        let l = vec![
            Label::new("__name__", "up"),
            Label::new("b", "2"),
            Label::new("a", "1"),
        ];
        assert_eq!(metric_string(&l), r#"up{a="1", b="2"}"#);
        assert_eq!(metric_string(&[Label::new("a", "1")]), r#"{a="1"}"#);
        assert_eq!(metric_string(&[Label::new("__name__", "up")]), "up");
        assert_eq!(model_duration(600_000), "10m");
        assert_eq!(model_duration(5_400_000), "1h30m");
        assert_eq!(model_duration(0), "0s");
        assert_eq!(model_duration(7 * 86_400_000), "1w");
        assert_eq!(go_g(1.0), "1");
        assert_eq!(go_g(0.5), "0.5");
        assert_eq!(go_g(1e6), "1e+06");
        assert_eq!(go_g(123_456.0), "123456");
        assert_eq!(go_g(1.25e7), "1.25e+07");
        assert_eq!(go_g(1.5e-5), "1.5e-05");
    }
}
