//! Remote write: `POST /api/v1/push` (Mimir, 200 on success) and `POST /api/v1/write`
//! (Prometheus' receiver, 204 on success), protobuf in snappy block format.
//!
//! `/api/v1/push` validates as Mimir's distributor and ingester do: a series with unsorted or
//! duplicate label names, no or an invalid metric name, an invalid (legacy, non-UTF-8-era)
//! label name, more label names than `max_label_names_per_series` (30; 80 for `*_info`), a label
//! name or value longer than `max_label_name_length` (1024) or `max_label_value_length` (2048),
//! or a sample more than `creation_grace_period` (10m) ahead of the clock (or, when set, older
//! than `past_grace_period`) is refused whole with 400 and Mimir's message (with its
//! `err-mimir-...` id); labels with empty values are dropped first (Prometheus treats them as
//! absent). The store then refuses a new series past `max_global_series_per_user` (150000) of
//! its tenant, a sample older than the series' newest as out of order (or, with an out-of-order
//! window, too old beyond it), one with the same timestamp and other value as a duplicate; all
//! 400. As in Mimir, the valid series and samples of a partly bad request are ingested; the
//! answer names the store's (Mimir's ingester's) first error if there is one, else the first
//! validation error. Limits: [`crate::embedded::limits::MimirLimits`].
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
use crate::embedded::limits::MimirLimits;

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

/// Prometheus' `labels.Labels.String()` (what current Mimir prints as `series` in its messages:
/// `{__name__="up", a="b"}`), cut after 200 characters (Go's `%.200s`); true when it was longer.
fn labels_string_200(labels: &[Label]) -> (String, bool) {
    let mut out = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&l.name);
        out.push('=');
        wire::labels::write_quoted(&mut out, &l.value);
        if out.chars().count() > 200 {
            break;
        }
    }
    out.push('}');
    let long = out.chars().count() > 200;
    (trunc200(&out), long)
}

/// Mimir's `MessageWithPerTenantLimitConfig`: the message, its error id and the flag to change.
fn with_limit_flag(message: &str, id: &str, flag: &str) -> String {
    format!(
        "{message} (err-mimir-{id}). To adjust the related per-tenant limit, configure -{flag}, or contact your service administrator."
    )
}

/// Mimir's distributor's label checks (`validateLabels`), in its order: metric name, number of
/// labels, then per label its name, name length, value length and duplicates; what the store
/// needs beyond them (sorted names) last. Labels with empty values are already dropped.
pub fn validate_labels(labels: &[Label], limits: &MimirLimits) -> Result<(), WriteError> {
    let Some(name) = labels.iter().find(|l| l.name == "__name__") else {
        return Err(series_error(&SeriesProblem::MissingMetricName, labels));
    };
    let name = name.value.as_str();
    if !wire::labels::is_valid_metric_name(name) {
        return Err(series_error(
            &SeriesProblem::InvalidMetricName(name.to_string()),
            labels,
        ));
    }
    let n = labels.len();
    let max = limits.max_label_names_per_series;
    if max > 0 && n > max {
        let info = name.ends_with("_info");
        let info_max = limits.max_label_names_per_info_series;
        if !info || (info_max > 0 && n > info_max) {
            let (series, long) = labels_string_200(labels);
            let ellipsis = if long { "\u{2026}" } else { "" };
            let (what, limit, id, flag, reason) = if info {
                (
                    "received an info series whose number of labels exceeds the limit",
                    info_max,
                    "max-label-names-per-info-series",
                    "validation.max-label-names-per-info-series",
                    "max_label_names_per_info_series",
                )
            } else {
                (
                    "received a series whose number of labels exceeds the limit",
                    max,
                    "max-label-names-per-series",
                    "validation.max-label-names-per-series",
                    "max_label_names_per_series",
                )
            };
            return Err(WriteError::Series {
                message: with_limit_flag(
                    &format!("{what} (actual: {n}, limit: {limit}) series: '{series}{ellipsis}'"),
                    id,
                    flag,
                ),
                reason,
            });
        }
    }
    let mut last: Option<&str> = None;
    for l in labels {
        if l.name != "__name__" && !wire::labels::is_valid_label_name(&l.name) {
            return Err(series_error(
                &SeriesProblem::InvalidLabelName(l.name.clone()),
                labels,
            ));
        }
        if limits.max_label_name_length > 0 && l.name.len() > limits.max_label_name_length {
            let (series, _) = labels_string_200(labels);
            return Err(WriteError::Series {
                message: with_limit_flag(
                    &format!(
                        "received a series whose label name length exceeds the limit, label: '{}' series: '{series}'",
                        trunc200(&l.name)
                    ),
                    "label-name-too-long",
                    "validation.max-length-label-name",
                ),
                reason: "label_name_too_long",
            });
        }
        if limits.max_label_value_length > 0 && l.value.len() > limits.max_label_value_length {
            let (series, _) = labels_string_200(labels);
            return Err(WriteError::Series {
                message: with_limit_flag(
                    &format!(
                        "received a series whose label value length of {} exceeds the limit of {}, label: '{}', value: '{}' (truncated) series: '{series}'",
                        l.value.len(),
                        limits.max_label_value_length,
                        l.name,
                        trunc200(&l.value)
                    ),
                    "label-value-too-long",
                    "validation.max-length-label-value",
                ),
                reason: "label_value_too_long",
            });
        }
        if last == Some(l.name.as_str()) {
            return Err(series_error(
                &SeriesProblem::DuplicateLabel(l.name.clone()),
                labels,
            ));
        }
        last = Some(&l.name);
    }
    check_series(labels).map_err(|p| series_error(&p, labels))
}

/// Mimir's distributor's sample checks (`validateSample`): the first sample more than
/// `creation_grace_period` ahead of `now_ms`, or (with a `past_grace_period`) older than now
/// minus it and the out-of-order window, refuses the whole series.
pub fn validate_samples(
    labels: &[Label],
    samples: &[wire::remote_write::Sample],
    limits: &MimirLimits,
    window_ms: i64,
    now_ms: i64,
) -> Result<(), WriteError> {
    use crate::embedded::limits::millis;
    let newest = now_ms.saturating_add(millis(limits.creation_grace_period));
    let oldest = (!limits.past_grace_period.is_zero()).then(|| {
        now_ms
            .saturating_sub(millis(limits.past_grace_period))
            .saturating_sub(window_ms)
    });
    let name = || {
        labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| trunc200(&l.value))
            .unwrap_or_default()
    };
    for s in samples {
        if s.timestamp > newest {
            return Err(WriteError::Series {
                message: with_limit_flag(
                    &format!(
                        "received a sample whose timestamp is too far in the future, timestamp: {} series: '{}'",
                        s.timestamp,
                        name()
                    ),
                    "too-far-in-future",
                    "validation.create-grace-period",
                ),
                reason: "too_far_in_future",
            });
        }
        if oldest.is_some_and(|o| s.timestamp < o) {
            return Err(WriteError::Series {
                message: with_limit_flag(
                    &format!(
                        "received a sample whose timestamp is too far in the past, timestamp: {} series: '{}'",
                        s.timestamp,
                        name()
                    ),
                    "too-far-in-past",
                    "validation.past-grace-period",
                ),
                reason: "too_far_in_past",
            });
        }
    }
    Ok(())
}

/// Mimir's ingester's answer to a new series over `max_global_series_per_user`.
pub fn series_limit_error(limit: usize) -> WriteError {
    WriteError::Sample {
        message: with_limit_flag(
            &format!("per-user series limit of {limit} exceeded"),
            "max-series-per-user",
            "ingester.max-global-series-per-user",
        ),
        reason: "per_user_series_limit",
    }
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
        let window = self.config.out_of_order_window_ms;
        let limits = &self.config.limits;
        let now_ms = chrono::Utc::now().timestamp_millis();
        // Mimir's distributor: each series is validated whole; a refused one is dropped and the
        // first refusal kept for the answer.
        let mut discards: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut validation_error: Option<WriteError> = None;
        let mut valid = Vec::with_capacity(req.timeseries.len());
        for ts in req.timeseries {
            let checked = validate_labels(&ts.labels, limits)
                .and_then(|()| validate_samples(&ts.labels, &ts.samples, limits, window, now_ms));
            match checked {
                Ok(()) => valid.push(ts),
                Err(err) => {
                    if let WriteError::Series { reason, .. } = &err {
                        *discards.entry(reason).or_default() += ts.samples.len() as u64;
                    }
                    validation_error.get_or_insert(err);
                }
            }
        }
        self.count_discards(tenant, std::mem::take(&mut discards));
        let samples: u64 = valid.iter().map(|ts| ts.samples.len() as u64).sum();
        if samples == 0 && req.metadata.is_empty() {
            return WriteOutcome {
                ingested: 0,
                error: validation_error,
            };
        }
        let exemplars: u64 = valid.iter().map(|ts| ts.exemplars.len() as u64).sum();
        if let Err(refused) = self.rate_limit(tenant, samples, exemplars, req.metadata.len()) {
            return refused;
        }
        // Mimir's ingester: the series limit, then each sample; its first error wins over the
        // distributor's.
        let series_limit = limits.max_global_series_per_user;
        let mut out = WriteOutcome::default();
        let mut ingester_error: Option<WriteError> = None;
        {
            let mut store = self.store.write();
            for ts in valid {
                let labels: Labels = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                if !store.admits_series(tenant, &labels, series_limit) {
                    let err = series_limit_error(series_limit);
                    *discards.entry("per_user_series_limit").or_default() +=
                        ts.samples.len() as u64;
                    ingester_error.get_or_insert(err);
                    continue;
                }
                for s in &ts.samples {
                    match store.append_within(tenant, &labels, s.timestamp, s.value, window) {
                        Ok(()) => out.ingested += 1,
                        Err(e) => {
                            let err = sample_error(e, s.timestamp, &labels, window);
                            if let WriteError::Sample { reason, .. } = &err {
                                *discards.entry(reason).or_default() += 1;
                            }
                            ingester_error.get_or_insert(err);
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
        out.error = ingester_error.or(validation_error);
        out
    }

    /// Mimir's distributor: after validation, the valid series' samples and exemplars plus the
    /// metadata count against the tenant's `ingestion_rate`; over it, all of them are discarded
    /// (`reason="rate_limited"`) and the push refused.
    fn rate_limit(
        &self,
        tenant: &str,
        samples: u64,
        exemplars: u64,
        metadata: usize,
    ) -> Result<(), WriteOutcome> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let items = samples + exemplars + metadata as u64;
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

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs.iter().map(|(k, v)| Label::new(*k, *v)).collect()
    }

    fn refusal(r: Result<(), WriteError>) -> (String, &'static str) {
        match r {
            Err(WriteError::Series { message, reason }) => (message, reason),
            other => panic!("not a series refusal: {other:?}"),
        }
    }

    #[test]
    fn label_limits_in_mimirs_order_with_its_messages() {
        let lim = MimirLimits {
            max_label_names_per_series: 3,
            max_label_names_per_info_series: 4,
            // `__name__` is a label name too: 8 bytes.
            max_label_name_length: 8,
            // `x_info` is a label value too: 6 bytes.
            max_label_value_length: 6,
            ..MimirLimits::default()
        };
        assert!(validate_labels(&labels(&[("__name__", "up"), ("a", "1")]), &lim).is_ok());
        let (m, r) = refusal(validate_labels(
            &labels(&[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")]),
            &lim,
        ));
        assert_eq!(r, "max_label_names_per_series");
        assert_eq!(
            m,
            r#"received a series whose number of labels exceeds the limit (actual: 4, limit: 3) series: '{__name__="up", a="1", b="2", c="3"}' (err-mimir-max-label-names-per-series). To adjust the related per-tenant limit, configure -validation.max-label-names-per-series, or contact your service administrator."#
        );
        // *_info series have their own limit.
        let info = [("__name__", "x_info"), ("a", "1"), ("b", "2"), ("c", "3")];
        assert!(validate_labels(&labels(&info), &lim).is_ok());
        let mut five = info.to_vec();
        five.push(("d", "4"));
        let (m, r) = refusal(validate_labels(&labels(&five), &lim));
        assert_eq!(r, "max_label_names_per_info_series");
        assert!(m.starts_with("received an info series whose number of labels exceeds the limit (actual: 5, limit: 4)"), "{m}");
        // The count comes before an invalid label name, as in Mimir.
        let (_, r) = refusal(validate_labels(
            &labels(&[("__name__", "up"), ("a-b", "1"), ("c", "1"), ("d", "1")]),
            &lim,
        ));
        assert_eq!(r, "max_label_names_per_series");
        let (m, r) = refusal(validate_labels(
            &labels(&[("__name__", "up"), ("abcdefghi", "1")]),
            &lim,
        ));
        assert_eq!(r, "label_name_too_long");
        assert_eq!(
            m,
            r#"received a series whose label name length exceeds the limit, label: 'abcdefghi' series: '{__name__="up", abcdefghi="1"}' (err-mimir-label-name-too-long). To adjust the related per-tenant limit, configure -validation.max-length-label-name, or contact your service administrator."#
        );
        let (m, r) = refusal(validate_labels(
            &labels(&[("__name__", "up"), ("a", "1234567")]),
            &lim,
        ));
        assert_eq!(r, "label_value_too_long");
        assert_eq!(
            m,
            r#"received a series whose label value length of 7 exceeds the limit of 6, label: 'a', value: '1234567' (truncated) series: '{__name__="up", a="1234567"}' (err-mimir-label-value-too-long). To adjust the related per-tenant limit, configure -validation.max-length-label-value, or contact your service administrator."#
        );
        // The metric name is a label value too.
        let (_, r) = refusal(validate_labels(&labels(&[("__name__", "longname")]), &lim));
        assert_eq!(r, "label_value_too_long");
        // The checks that were there before keep their messages.
        let (_, r) = refusal(validate_labels(&labels(&[("a", "1")]), &lim));
        assert_eq!(r, "missing_metric_name");
        let (_, r) = refusal(validate_labels(
            &labels(&[("__name__", "up"), ("a", "1"), ("a", "2")]),
            &lim,
        ));
        assert_eq!(r, "duplicate_label_names");
        let (_, r) = refusal(validate_labels(
            &labels(&[("__name__", "up"), ("b", "1"), ("a", "2")]),
            &lim,
        ));
        assert_eq!(r, "labels_not_sorted");
        // 0 turns a check off.
        let off = MimirLimits {
            max_label_names_per_series: 0,
            max_label_name_length: 0,
            max_label_value_length: 0,
            ..MimirLimits::default()
        };
        let long = "x".repeat(5000);
        let mut many = vec![("__name__", "up")];
        let names: Vec<String> = (0..100).map(|i| format!("l{i:03}")).collect();
        many.extend(names.iter().map(|n| (n.as_str(), long.as_str())));
        assert!(validate_labels(&labels(&many), &off).is_ok());
    }

    #[test]
    fn the_series_in_messages_is_cut_at_200_characters_with_an_ellipsis() {
        let names: Vec<String> = (0..100).map(|i| format!("label{i:03}")).collect();
        let mut pairs = vec![("__name__", "up")];
        pairs.extend(names.iter().map(|n| (n.as_str(), "v")));
        let (s, long) = labels_string_200(&labels(&pairs));
        assert!(long);
        assert_eq!(s.chars().count(), 200);
        assert!(s.starts_with(r#"{__name__="up", label000="v", "#));
        let (s, long) = labels_string_200(&labels(&[("__name__", "up")]));
        assert_eq!((s.as_str(), long), (r#"{__name__="up"}"#, false));
    }

    #[test]
    fn samples_beyond_the_grace_periods_refuse_the_series() {
        let now = 1_700_000_000_000;
        let l = labels(&[("__name__", "up")]);
        let at = |t: i64| wire::remote_write::Sample {
            value: 1.0,
            timestamp: t,
        };
        let lim = MimirLimits::default();
        assert!(validate_samples(&l, &[at(now + 600_000)], &lim, 0, now).is_ok());
        let (m, r) = refusal(validate_samples(&l, &[at(now), at(i64::MAX)], &lim, 0, now));
        assert_eq!(r, "too_far_in_future");
        assert_eq!(
            m,
            "received a sample whose timestamp is too far in the future, timestamp: 9223372036854775807 series: 'up' (err-mimir-too-far-in-future). To adjust the related per-tenant limit, configure -validation.create-grace-period, or contact your service administrator."
        );
        // No past bound by default; with one, the out-of-order window widens it.
        assert!(validate_samples(&l, &[at(0)], &lim, 0, now).is_ok());
        let past = MimirLimits {
            past_grace_period: std::time::Duration::from_secs(3600),
            ..lim
        };
        let (m, r) = refusal(validate_samples(&l, &[at(now - 3_700_000)], &past, 0, now));
        assert_eq!(r, "too_far_in_past");
        assert!(
            m.contains("(err-mimir-too-far-in-past)")
                && m.contains("-validation.past-grace-period"),
            "{m}"
        );
        assert!(validate_samples(&l, &[at(now - 3_700_000)], &past, 600_000, now).is_ok());
        assert_eq!(
            series_limit_error(150_000).to_string(),
            "per-user series limit of 150000 exceeded (err-mimir-max-series-per-user). To adjust the related per-tenant limit, configure -ingester.max-global-series-per-user, or contact your service administrator."
        );
    }

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
