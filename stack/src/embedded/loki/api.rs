//! Loki's HTTP API: push, the query endpoints, labels, series, `/ready`, `/metrics`.
//!
//! Parameters are read as Loki's `pkg/loghttp` reads them, from the query string and (for POST)
//! a form body: times as integer seconds (up to 10 digits), integer nanoseconds, float seconds
//! (rounded to the millisecond) or RFC3339(Nano); `since`; `limit` (100), `direction`
//! (backward), `step` (float seconds or a duration; default `max(floor(range/250s), 1)` seconds).
//! Metric range queries are evaluated at multiples of the step, from the start rounded down to
//! the end rounded up, as Loki's query frontend aligns them ([`align_to_step`]).
//! Errors are plain text with Go's `http.Error` trailing newline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::logql::eval::{self, Direction, Processed};
use super::logql::{self, Expr, ParseError};
use super::store::Labels;
use super::{DEFAULT_TENANT, Loki, LokiError, now_ns};
use crate::embedded::http::{ApiRequest, body_limit, header as header_str};
use wire::exposition::Format;

const HOUR_NS: i64 = 3_600_000_000_000;
const MAX_POINTS: i64 = 11_000;

/// The router of the embedded Loki.
pub fn router(state: Arc<Loki>) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/api/prom/push", post(push))
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/query", get(query).post(query))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(body_limit(max_body))
        .with_state(state)
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        match self {
            LokiError::RateLimited {
                message,
                retry_after_s,
            } => crate::embedded::limits::with_retry_after(
                text(StatusCode::TOO_MANY_REQUESTS, message),
                retry_after_s,
            ),
            LokiError::StreamLimit(message) => text(StatusCode::TOO_MANY_REQUESTS, message),
            other => text(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

/// A plain-text response as Go's `http.Error` writes it.
fn text(status: StatusCode, msg: String) -> Response {
    let mut r = (status, format!("{msg}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(wire::http::TEXT_PLAIN),
    );
    r
}

/// Counts the request by route and status, then answers.
fn finish(loki: &Loki, route: &'static str, result: Result<Response, LokiError>) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    loki.count_request(route, response.status().as_u16());
    response
}

fn tenant(headers: &HeaderMap) -> String {
    crate::embedded::http::tenant_or(headers, DEFAULT_TENANT)
}

async fn push(State(loki): State<Arc<Loki>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let req = wire::loki::decode_http(
            header_str(&headers, "content-type"),
            header_str(&headers, "content-encoding"),
            &body,
            loki.config.max_decompressed_bytes,
        )?;
        loki.ingest(&tenant(&headers), req)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })();
    finish(&loki, "push", result)
}

async fn ready(State(loki): State<Arc<Loki>>) -> Response {
    finish(&loki, "ready", Ok(text(StatusCode::OK, "ready".into())))
}

async fn metrics(State(loki): State<Arc<Loki>>) -> Response {
    let mut r = loki.render_metrics().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(Format::PrometheusText.content_type()),
    );
    finish(&loki, "metrics", Ok(r))
}

async fn not_found(State(loki): State<Arc<Loki>>) -> Response {
    finish(
        &loki,
        "other",
        Ok(text(StatusCode::NOT_FOUND, "404 page not found".into())),
    )
}

/// Request parameters: the form body (POST) then the query string, as Go's `r.Form`.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(r: &ApiRequest) -> Params {
        let mut v = Vec::new();
        let is_form = header_str(&r.headers, "content-type")
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            v.extend(url::form_urlencoded::parse(&r.body).into_owned());
        }
        if let Some(q) = &r.query {
            v.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(v)
    }

    /// The first value, `None` when absent or empty.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn time(&self, key: &str, default: i64) -> Result<i64, LokiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_time(v),
        }
    }

    fn limit(&self) -> Result<usize, LokiError> {
        let Some(v) = self.get("limit") else {
            return Ok(100);
        };
        let n: i64 = v.parse().map_err(|_| {
            LokiError::BadRequest(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
        })?;
        if n <= 0 {
            return Err(LokiError::BadRequest(
                "limit must be a positive value".into(),
            ));
        }
        Ok(n as usize)
    }

    fn direction(&self) -> Result<Direction, LokiError> {
        match self
            .get("direction")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("BACKWARD") => Ok(Direction::Backward),
            Some("FORWARD") => Ok(Direction::Forward),
            Some(_) => Err(LokiError::BadRequest(format!(
                "invalid direction '{}'",
                self.get("direction").unwrap_or_default()
            ))),
        }
    }

    /// `start`/`end`/`since`, defaults `end = now`, `start = end - since` (`since` 1h unless given).
    fn bounds(&self, default_since: i64) -> Result<(i64, i64), LokiError> {
        let end = self.time("end", now_ns())?;
        let since = match self.get("since") {
            Some(v) => parse_seconds_or_duration(v)?,
            None => default_since,
        };
        let start = self.time("start", end.saturating_sub(since))?;
        Ok((start, end))
    }
}

/// A time parameter as Loki's `parseTimestamp` reads it; nanoseconds since the epoch.
pub fn parse_time(v: &str) -> Result<i64, LokiError> {
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        return Ok((secs as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ms as i64 * 1_000_000));
    }
    match v.parse::<i64>() {
        Ok(n) if v.len() <= 10 => Ok(n.saturating_mul(1_000_000_000)),
        Ok(n) => Ok(n),
        Err(_) => chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| {
                LokiError::BadRequest(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
            }),
    }
}

/// `step` or `since`: float seconds or a duration; nanoseconds.
pub fn parse_seconds_or_duration(v: &str) -> Result<i64, LokiError> {
    if let Ok(f) = v.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(LokiError::BadRequest(format!(
                "cannot parse {v:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok(ns as i64);
    }
    logql::parse_duration(v)
        .ok_or_else(|| LokiError::BadRequest(format!("cannot parse {v:?} to a valid duration")))
}

/// The evaluation range of a metric range query as Loki's query frontend sets it (the
/// `metricQuerySplitter` of `split_queries_by_interval`, on by default): start rounded down and
/// end rounded up to multiples of the step, so every evaluation timestamp is a multiple of it.
pub fn align_to_step(start: i64, end: i64, step: i64) -> (i64, i64) {
    if step <= 0 {
        return (start, end);
    }
    let up = match end.rem_euclid(step) {
        0 => end,
        m => end.saturating_add(step - m),
    };
    (start - start.rem_euclid(step), up)
}

/// Loki's default step: `max(floor(range in seconds / 250), 1)` seconds.
pub fn default_step(start: i64, end: i64) -> i64 {
    let secs = (end.saturating_sub(start) as f64 / 1e9 / 250.0)
        .floor()
        .max(1.0);
    secs as i64 * 1_000_000_000
}

fn parse_query(p: &Params) -> Result<Expr, LokiError> {
    Ok(logql::parse(p.get("query").unwrap_or_default())?)
}

async fn query_range(State(loki): State<Arc<Loki>>, r: ApiRequest) -> Response {
    crate::embedded::http::evaluate(move || query_range_now(&loki, &r)).await
}

fn query_range_now(loki: &Arc<Loki>, r: &ApiRequest) -> Response {
    let result = (|| {
        let p = Params::new(r);
        let started = Instant::now();
        let (start, end) = p.bounds(HOUR_NS)?;
        let limit = p.limit()?;
        let direction = p.direction()?;
        if end < start {
            return Err(LokiError::BadRequest(
                "end timestamp must not be before or equal to start time".into(),
            ));
        }
        let step = match p.get("step") {
            Some(v) => parse_seconds_or_duration(v)?,
            None => default_step(start, end),
        };
        if step <= 0 {
            return Err(LokiError::BadRequest(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end.saturating_sub(start) / step > MAX_POINTS {
            return Err(LokiError::BadRequest(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        if p.get("interval").is_some() {
            return Err(ParseError::Unsupported("the interval parameter".into()).into());
        }
        let expr = parse_query(&p)?;
        let tenant = loki.tenant(&tenant(&r.headers));
        let tenant = tenant.as_ref().map(|t| t.lock());
        let mut processed = Processed::default();
        let (result_type, result, returned) = match &expr {
            Expr::Log(log) => {
                check_entries_limit(loki, limit)?;
                let streams = match &tenant {
                    Some(t) => eval::eval_log(t, log, start, end, limit, direction, &mut processed),
                    None => Vec::new(),
                };
                let n = streams.iter().map(|s| s.1.len()).sum();
                ("streams", streams_json(streams), n)
            }
            Expr::Metric(m) => {
                let (start, end) = align_to_step(start, end, step);
                let matrix =
                    eval::eval_metric(tenant.as_deref(), m, start, end, step, &mut processed)
                        .map_err(|e| LokiError::BadRequest(e.to_string()))?;
                let n = matrix.iter().map(|s| s.1.len()).sum();
                let series: Vec<Value> = matrix
                    .into_iter()
                    .map(|(labels, points)| {
                        json!({
                            "metric": labels_json(&labels),
                            "values": points.iter().map(|(t, v)| json!([ts_json(*t), value_string(*v)])).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                ("matrix", Value::Array(series), n)
            }
        };
        Ok(success(
            result_type,
            result,
            stats(processed, returned, started),
        ))
    })();
    finish(loki, "query_range", result)
}

async fn query(State(loki): State<Arc<Loki>>, r: ApiRequest) -> Response {
    crate::embedded::http::evaluate(move || query_now(&loki, &r)).await
}

fn query_now(loki: &Arc<Loki>, r: &ApiRequest) -> Response {
    let result = (|| {
        let p = Params::new(r);
        let started = Instant::now();
        let t = p.time("time", now_ns())?;
        p.limit()?;
        p.direction()?;
        let Expr::Metric(m) = parse_query(&p)? else {
            return Err(LokiError::BadRequest(
                "log queries are not supported as an instant query type, please change your query to a range query type".into(),
            ));
        };
        let tenant = loki.tenant(&tenant(&r.headers));
        let tenant = tenant.as_ref().map(|t| t.lock());
        let mut processed = Processed::default();
        let matrix = eval::eval_metric(tenant.as_deref(), &m, t, t, 1, &mut processed)
            .map_err(|e| LokiError::BadRequest(e.to_string()))?;
        let n = matrix.len();
        let vector: Vec<Value> = matrix
            .into_iter()
            .filter_map(|(labels, points)| {
                let (ts, v) = points.first()?;
                Some(json!({"metric": labels_json(&labels), "value": [ts_json(*ts), value_string(*v)]}))
            })
            .collect();
        Ok(success(
            "vector",
            Value::Array(vector),
            stats(processed, n, started),
        ))
    })();
    finish(loki, "query", result)
}

fn check_entries_limit(loki: &Loki, limit: usize) -> Result<(), LokiError> {
    let max = loki.config.max_entries_limit_per_query;
    if max > 0 && limit > max {
        return Err(LokiError::BadRequest(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
        )));
    }
    Ok(())
}

/// Label sets of the tenant's streams matching `selectors` (any group; all streams when empty)
/// with data in `[start, end]`.
fn stream_label_sets(
    loki: &Loki,
    headers: &HeaderMap,
    selectors: &[Vec<logql::Matcher>],
    start: i64,
    end: i64,
) -> BTreeSet<Labels> {
    let Some(t) = loki.tenant(&tenant(headers)) else {
        return BTreeSet::new();
    };
    let t = t.lock();
    t.streams
        .values()
        .filter(|s| {
            (selectors.is_empty() || selectors.iter().any(|m| eval::selects(m, &s.labels)))
                && s.has_data_in(start, end)
        })
        .map(|s| s.labels.clone())
        .collect()
}

fn optional_selector(p: &Params) -> Result<Vec<Vec<logql::Matcher>>, LokiError> {
    match p.get("query") {
        None => Ok(Vec::new()),
        Some(q) => Ok(vec![logql::parser::parse_selector(q)?]),
    }
}

async fn labels(State(loki): State<Arc<Loki>>, r: ApiRequest) -> Response {
    let result = (|| {
        let p = Params::new(&r);
        let (start, end) = p.bounds(6 * HOUR_NS)?;
        let selectors = optional_selector(&p)?;
        let names: BTreeSet<String> = stream_label_sets(&loki, &r.headers, &selectors, start, end)
            .into_iter()
            .flat_map(|l| l.into_iter().map(|(k, _)| k))
            .collect();
        Ok(axum::Json(json!({"status": "success", "data": names})).into_response())
    })();
    finish(&loki, "labels", result)
}

async fn label_values(
    State(loki): State<Arc<Loki>>,
    Path(name): Path<String>,
    r: ApiRequest,
) -> Response {
    let result = (|| {
        let p = Params::new(&r);
        let (start, end) = p.bounds(6 * HOUR_NS)?;
        let selectors = optional_selector(&p)?;
        let values: BTreeSet<String> = stream_label_sets(&loki, &r.headers, &selectors, start, end)
            .into_iter()
            .filter_map(|l| l.into_iter().find(|(k, _)| *k == name).map(|(_, v)| v))
            .collect();
        Ok(axum::Json(json!({"status": "success", "data": values})).into_response())
    })();
    finish(&loki, "label_values", result)
}

async fn series(State(loki): State<Arc<Loki>>, r: ApiRequest) -> Response {
    let result = (|| {
        let p = Params::new(&r);
        let (start, end) = p.bounds(6 * HOUR_NS)?;
        let groups = p.all("match[]");
        let groups = if groups.is_empty() {
            p.all("match")
        } else {
            groups
        };
        if groups.is_empty() {
            return Err(LokiError::BadRequest("0 matcher groups supplied".into()));
        }
        let selectors = groups
            .into_iter()
            .map(logql::parser::parse_selector)
            .collect::<Result<Vec<_>, ParseError>>()?;
        let data: Vec<Value> = stream_label_sets(&loki, &r.headers, &selectors, start, end)
            .iter()
            .map(labels_json)
            .collect();
        Ok(axum::Json(json!({"status": "success", "data": data})).into_response())
    })();
    finish(&loki, "series", result)
}

fn success(result_type: &str, result: Value, stats: Value) -> Response {
    axum::Json(json!({
        "status": "success",
        "data": {"resultType": result_type, "result": result, "stats": stats},
    }))
    .into_response()
}

fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn streams_json(streams: eval::LogResult) -> Value {
    Value::Array(
        streams
            .into_iter()
            .map(|(labels, entries)| {
                json!({
                    "stream": labels_json(&labels),
                    "values": entries.into_iter().map(|(ts, line)| json!([ts.to_string(), line])).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// A sample time as Prometheus and Loki write it: seconds, millisecond precision, a plain
/// integer when whole.
fn ts_json(ns: i64) -> Value {
    let ms = ns.div_euclid(1_000_000);
    if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        Value::from(ms as f64 / 1000.0)
    }
}

/// A sample value as Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
fn value_string(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn stats(p: Processed, returned: usize, started: Instant) -> Value {
    let secs = started.elapsed().as_secs_f64();
    let per_sec = |n: u64| {
        if secs > 0.0 {
            (n as f64 / secs) as u64
        } else {
            0
        }
    };
    let counts = json!({
        "totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0,
        "queryReferencedStructured": false,
        "chunk": {
            "headChunkBytes": p.bytes, "headChunkLines": p.lines,
            "decompressedBytes": 0, "decompressedLines": 0, "compressedBytes": 0,
            "totalDuplicates": 0, "postFilterLines": p.post_filter_lines,
            "headChunkStructuredMetadataBytes": 0, "decompressedStructuredMetadataBytes": 0,
        },
    });
    let mut by_type = BTreeMap::new();
    by_type.insert("store", counts.clone());
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_sec(p.bytes),
            "linesProcessedPerSecond": per_sec(p.lines),
            "totalBytesProcessed": p.bytes,
            "totalLinesProcessed": p.lines,
            "totalStructuredMetadataBytesProcessed": 0,
            "totalPostFilterLines": p.post_filter_lines,
            "execTime": secs,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": returned,
            "splits": 0,
            "shards": 0,
        },
        "querier": by_type,
        "ingester": {
            "totalReached": 1, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": p.post_filter_lines,
            "store": counts,
        },
        "cache": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_loki_reads_them() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(
            parse_time("1700000000000000001").unwrap(),
            1_700_000_000_000_000_001
        );
        assert_eq!(
            parse_time("1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_time("1700000000.0004").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.000000001Z").unwrap(),
            1_700_000_000_000_000_001
        );
        assert_eq!(
            parse_time("yesterday").unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"yesterday\": invalid syntax"
        );
    }

    #[test]
    fn metric_ranges_align_to_the_step() {
        let s = 1_000_000_000;
        assert_eq!(align_to_step(61 * s, 179 * s, 60 * s), (60 * s, 180 * s));
        assert_eq!(align_to_step(120 * s, 180 * s, 60 * s), (120 * s, 180 * s));
        assert_eq!(align_to_step(7, 7, 0), (7, 7));
    }

    #[test]
    fn steps_and_formatting() {
        assert_eq!(parse_seconds_or_duration("15s").unwrap(), 15_000_000_000);
        assert_eq!(parse_seconds_or_duration("0.5").unwrap(), 500_000_000);
        assert!(parse_seconds_or_duration("soon").is_err());
        assert_eq!(default_step(0, HOUR_NS), 14_000_000_000);
        assert_eq!(default_step(0, 1), 1_000_000_000);
        assert_eq!(ts_json(1_700_000_000_000_000_000), json!(1700000000));
        assert_eq!(ts_json(1_700_000_000_500_000_000), json!(1700000000.5));
        assert_eq!(value_string(0.1), "0.1");
        assert_eq!(value_string(3.0), "3");
        assert_eq!(value_string(f64::INFINITY), "+Inf");
    }
}
