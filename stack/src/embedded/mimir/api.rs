//! The Prometheus HTTP query API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`), GET and form-encoded POST, rendered exactly as Prometheus renders it:
//! values as Go's `strconv.FormatFloat(v, 'f', -1, 64)` strings (`NaN`, `+Inf`, `-Inf`),
//! timestamps as seconds with millisecond fractions, errors as
//! `{"status":"error","errorType":"bad_data","error":"..."}` with 400 (422 for execution errors).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use promql_parser::label::Matcher;
use promql_parser::parser::Expr;

use super::Mimir;
use super::promql::{self, Context, QueryError, QueryResult, RangeSeries, Sample};
use super::store::Labels;
use super::write::DEFAULT_TENANT;
use crate::embedded::http::ApiRequest;

/// Prometheus' `minTime`/`maxTime` for the series and labels APIs' defaults.
const MIN_TIME: i64 = i64::MIN / 2;
const MAX_TIME: i64 = i64::MAX / 2;

/// An API error: what Prometheus puts in `errorType` and the status it answers with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    Execution(String),
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Execution(m) => ApiError::Execution(m),
            other => ApiError::BadData(other.to_string()),
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadData(_) => StatusCode::BAD_REQUEST,
            ApiError::Execution(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn error_type(&self) -> &'static str {
        match self {
            ApiError::BadData(_) => "bad_data",
            ApiError::Execution(_) => "execution",
        }
    }
}

/// Query string and form body parameters, in order.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parameters from the URL query and a form-encoded body (both, as Go's `ParseForm`).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Self {
        let mut out: Vec<(String, String)> = Vec::new();
        out.extend(
            url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
        if let Some(q) = query {
            out.extend(
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        Params(out)
    }
    /// The first value of `name`, "" when absent (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn invalid_param(name: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::BadData(format!("invalid parameter \"{name}\": {e}"))
}

/// Prometheus' `parseTime`: float seconds or RFC 3339; milliseconds out.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        return Ok((secs as i64).saturating_mul(1000).saturating_add(ms as i64));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(dt.timestamp_millis());
    }
    // Prometheus' own spellings of its minimum and maximum times.
    match s {
        "0001-01-01T00:00:00Z" | "-292273086-05-16T16:47:06Z" => Ok(MIN_TIME),
        "292277025-08-18T07:12:54.999999999Z" => Ok(MAX_TIME),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// Prometheus' `parseDuration`: float seconds or a PromQL duration; nanoseconds out.
pub fn parse_duration_ns(s: &str) -> Result<i128, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ns as i128);
    }
    parse_prom_duration(s)
        .map(|ms| ms as i128 * 1_000_000)
        .ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// A Prometheus duration (`1h30m`, `5m`, `100ms`, `2d`...) in milliseconds: units from
/// largest to smallest, each at most once.
pub fn parse_prom_duration(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut min_rank = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let rank = if rest.starts_with("ms") {
            6
        } else {
            UNITS[..6].iter().position(|(u, _)| rest.starts_with(u))?
        };
        if rank < min_rank {
            return None;
        }
        min_rank = rank + 1;
        let (unit, mult) = UNITS[rank];
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` with Prometheus' spellings of the specials.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// Prometheus' `MarshalTimestamp`: seconds, then `.` and three digits of milliseconds if any.
pub fn format_timestamp(out: &mut String, t: i64) {
    let (neg, t) = if t < 0 {
        (true, t.unsigned_abs())
    } else {
        (false, t as u64)
    };
    if neg {
        out.push('-');
    }
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

fn write_metric(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, k);
        out.push(':');
        json_str(out, v);
    }
    out.push('}');
}

fn write_point(out: &mut String, t: i64, v: &str) {
    out.push('[');
    format_timestamp(out, t);
    out.push(',');
    json_str(out, v);
    out.push(']');
}

/// The `data` object of a query result.
pub fn render_result(r: &QueryResult) -> String {
    let mut out = String::new();
    match r {
        QueryResult::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            write_point(&mut out, *t, &format_value(*v));
        }
        QueryResult::String { t, v } => {
            out.push_str(r#"{"resultType":"string","result":"#);
            write_point(&mut out, *t, v);
        }
        QueryResult::Vector { t, samples } => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, Sample { metric, value }) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_metric(&mut out, metric);
                out.push_str(r#","value":"#);
                write_point(&mut out, *t, &format_value(*value));
                out.push('}');
            }
            out.push(']');
        }
        QueryResult::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, RangeSeries { metric, points }) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_metric(&mut out, metric);
                out.push_str(r#","values":["#);
                for (j, (t, v)) in points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(&mut out, *t, &format_value(*v));
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, wire::http::JSON)], body).into_response()
}

fn respond(r: Result<String, ApiError>) -> Response {
    match r {
        Ok(data) => json_response(
            StatusCode::OK,
            format!(r#"{{"status":"success","data":{data}}}"#),
        ),
        Err(e) => {
            let mut body = String::from(r#"{"status":"error","errorType":"#);
            json_str(&mut body, e.error_type());
            body.push_str(r#","error":"#);
            json_str(&mut body, &e.to_string());
            body.push('}');
            json_response(e.status(), body)
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Parses a query, turning a parser panic into a `bad_data` error.
fn parse_query(q: &str) -> Result<Expr, ApiError> {
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| promql::parse(q)));
    match parsed {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(invalid_param("query", "the query could not be parsed")),
    }
}

impl Mimir {
    fn context<'a>(
        &self,
        tenant: Option<&'a super::store::Tenant>,
        start: i64,
        end: i64,
    ) -> Context<'a> {
        Context {
            tenant,
            semantics: self.config.semantics,
            lookback_ms: self.config.lookback_ms,
            start,
            end,
        }
    }

    /// `GET|POST /api/v1/query`: the `data` JSON or the error.
    pub fn api_query(&self, tenant: &str, p: &Params) -> Result<String, ApiError> {
        let t = match p.get("time") {
            "" => now_ms(),
            s => parse_time(s).map_err(|e| invalid_param("time", e))?,
        };
        let expr = parse_query(p.get("query"))?;
        let store = self.store.read();
        let ctx = self.context(store.tenant(tenant), t, t);
        let r = promql::instant_query(&ctx, &expr, t)?;
        Ok(render_result(&r))
    }

    /// `GET|POST /api/v1/query_range`.
    pub fn api_query_range(&self, tenant: &str, p: &Params) -> Result<String, ApiError> {
        let start = parse_time(p.get("start")).map_err(|e| invalid_param("start", e))?;
        let end = parse_time(p.get("end")).map_err(|e| invalid_param("end", e))?;
        if end < start {
            return Err(ApiError::BadData(
                "end timestamp must not be before start time".to_string(),
            ));
        }
        let step_ns = parse_duration_ns(p.get("step")).map_err(|e| invalid_param("step", e))?;
        if step_ns <= 0 {
            return Err(ApiError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .to_string(),
            ));
        }
        if (end as i128 - start as i128) * 1_000_000 / step_ns > 11_000 {
            return Err(ApiError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .to_string(),
            ));
        }
        let step = i64::try_from(step_ns / 1_000_000)
            .unwrap_or(i64::MAX)
            .max(1);
        let expr = parse_query(p.get("query"))?;
        let store = self.store.read();
        let ctx = self.context(store.tenant(tenant), start, end);
        let r = promql::range_query(&ctx, &expr, start, end, step)?;
        Ok(render_result(&r))
    }

    fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
        let start = match p.get("start") {
            "" => MIN_TIME,
            s => parse_time(s).map_err(|e| invalid_param("start", e))?,
        };
        let end = match p.get("end") {
            "" => MAX_TIME,
            s => parse_time(s).map_err(|e| invalid_param("end", e))?,
        };
        Ok((start, end))
    }

    /// The label sets of the series matching any `match[]` selector in the time range.
    fn matching_series(
        &self,
        tenant: &str,
        p: &Params,
        required: bool,
    ) -> Result<Vec<Labels>, ApiError> {
        let (start, end) = Self::time_range(p)?;
        let selectors = p.all("match[]");
        if selectors.is_empty() && required {
            return Err(ApiError::BadData(
                "no match[] parameter provided".to_string(),
            ));
        }
        let mut sets: Vec<Vec<Matcher>> = Vec::new();
        for s in &selectors {
            sets.push(parse_selector(s)?);
        }
        let store = self.store.read();
        let Some(ten) = store.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let mut out: BTreeSet<Labels> = BTreeSet::new();
        if sets.is_empty() {
            for s in ten.all_series() {
                if !s.range(start, end).is_empty() {
                    out.insert((*s.labels).clone());
                }
            }
        }
        for m in &sets {
            for s in ten.select(m, start, end) {
                out.insert((*s.labels).clone());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// `GET|POST /api/v1/series`.
    pub fn api_series(&self, tenant: &str, p: &Params) -> Result<String, ApiError> {
        let series = self.matching_series(tenant, p, true)?;
        let mut out = String::from("[");
        for (i, l) in series.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_metric(&mut out, l);
        }
        out.push(']');
        Ok(out)
    }

    /// `GET|POST /api/v1/labels`.
    pub fn api_labels(&self, tenant: &str, p: &Params) -> Result<String, ApiError> {
        let names: BTreeSet<String> = self
            .matching_series(tenant, p, false)?
            .into_iter()
            .flat_map(|l| l.into_iter().map(|(k, _)| k))
            .collect();
        Ok(string_array(names))
    }

    /// `GET /api/v1/label/<name>/values`.
    pub fn api_label_values(
        &self,
        tenant: &str,
        name: &str,
        p: &Params,
    ) -> Result<String, ApiError> {
        if !wire::labels::is_valid_label_name(name) {
            return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
        }
        let values: BTreeSet<String> = self
            .matching_series(tenant, p, false)?
            .into_iter()
            .filter_map(|l| l.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
            .collect();
        Ok(string_array(values))
    }
}

fn string_array(items: BTreeSet<String>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(&mut out, s);
    }
    out.push(']');
    out
}

/// A `match[]` series selector as matchers.
fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    let bad = |e: &dyn std::fmt::Display| invalid_param("match[]", e);
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(s))
        .map_err(|_| bad(&"the selector could not be parsed"))?;
    match parsed.map_err(|e| bad(&e))? {
        Expr::VectorSelector(vs) if vs.matchers.or_matchers.is_empty() => {
            Ok(promql::eval::matchers(&vs))
        }
        _ => Err(bad(&"expected a series selector")),
    }
}

/// `/api/v1/query` handler.
pub async fn query(State(m): State<Arc<Mimir>>, r: ApiRequest) -> Response {
    crate::embedded::http::evaluate(move || respond(m.api_query(&tenant(&r), &Params::from(&r))))
        .await
}

/// `/api/v1/query_range` handler.
pub async fn query_range(State(m): State<Arc<Mimir>>, r: ApiRequest) -> Response {
    crate::embedded::http::evaluate(move || {
        respond(m.api_query_range(&tenant(&r), &Params::from(&r)))
    })
    .await
}

/// `/api/v1/series` handler.
pub async fn series(State(m): State<Arc<Mimir>>, r: ApiRequest) -> Response {
    respond(m.api_series(&tenant(&r), &Params::from(&r)))
}

/// `/api/v1/labels` handler.
pub async fn labels(State(m): State<Arc<Mimir>>, r: ApiRequest) -> Response {
    respond(m.api_labels(&tenant(&r), &Params::from(&r)))
}

/// `/api/v1/label/<name>/values` handler.
pub async fn label_values(
    State(m): State<Arc<Mimir>>,
    Path(name): Path<String>,
    r: ApiRequest,
) -> Response {
    // A GET: the query string only.
    let params = Params::parse(r.query.as_deref(), &[]);
    respond(m.api_label_values(&tenant(&r), &name, &params))
}

/// The tenant of a query, `anonymous` without one (as Mimir with multi-tenancy off).
fn tenant(r: &ApiRequest) -> String {
    r.tenant_or(DEFAULT_TENANT)
}

impl From<&ApiRequest> for Params {
    /// The form body, then the query string.
    fn from(r: &ApiRequest) -> Self {
        Params::parse(r.query.as_deref(), &r.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_timestamps_like_prometheus() {
        assert_eq!(format_value(1.5), "1.5");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        let mut s = String::new();
        format_timestamp(&mut s, 1_700_000_000_123);
        s.push(' ');
        format_timestamp(&mut s, 1_700_000_000_000);
        s.push(' ');
        format_timestamp(&mut s, 1_700_000_000_050);
        assert_eq!(s, "1700000000.123 1700000000 1700000000.050");
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert!(parse_time("x").is_err());
        assert_eq!(parse_duration_ns("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("100ms"), Ok(100_000_000));
        assert!(parse_duration_ns("30s1m").is_err());
        assert!(parse_duration_ns("abc").is_err());
        assert!(parse_duration_ns("").is_err());
    }

    #[test]
    fn params_from_query_and_body() {
        let p = Params::parse(Some("query=up&match[]=a"), b"match[]=b&time=5");
        assert_eq!(p.get("query"), "up");
        assert_eq!(p.get("time"), "5");
        assert_eq!(p.all("match[]").len(), 2);
        assert_eq!(p.get("nope"), "");
    }

    fn mimir_with_data() -> Arc<Mimir> {
        let m = Mimir::new(super::super::MimirConfig::default());
        let body = super::super::write::encode_series(&[
            (
                vec![("__name__", "up"), ("job", "a")],
                (0..20).map(|i| (i * 15_000, i as f64)).collect(),
            ),
            (
                vec![("__name__", "h_bucket"), ("le", "+Inf")],
                vec![(0, 1.0), (15_000, f64::NAN)],
            ),
        ]);
        assert!(m.ingest("anonymous", &body).error.is_none());
        m
    }

    /// PromQL-looking text: tokens glued together at random.
    fn promql_ish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let token = prop_oneof![
            Just("up".to_string()),
            Just("h_bucket".to_string()),
            Just("rate(".to_string()),
            Just("sum by (job) (".to_string()),
            Just("topk(".to_string()),
            Just("histogram_quantile(".to_string()),
            Just("[5m]".to_string()),
            Just("[1s:1s]".to_string()),
            Just(" offset -1y".to_string()),
            Just(" @ 1e18".to_string()),
            Just(")".to_string()),
            Just(",".to_string()),
            Just(" / on(job) ".to_string()),
            Just(" > bool ".to_string()),
            Just(" and ".to_string()),
            Just("{job=~\"(a\"}".to_string()),
            Just("-".to_string()),
            (-1e20f64..1e20).prop_map(|f| f.to_string()),
            "\\PC{0,4}",
        ];
        proptest::collection::vec(token, 0..8).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn query_handlers_never_panic(q in promql_ish(), t in "\\PC{0,12}", step in "\\PC{0,6}") {
            let m = mimir_with_data();
            let p = Params(vec![
                ("query".into(), q.clone()),
                ("time".into(), "100".into()),
                ("start".into(), "0".into()),
                ("end".into(), "300".into()),
                ("step".into(), "15".into()),
            ]);
            let _ = m.api_query("anonymous", &p);
            let _ = m.api_query_range("anonymous", &p);
            let odd = Params(vec![
                ("query".into(), q.clone()),
                ("time".into(), t.clone()),
                ("start".into(), t.clone()),
                ("end".into(), t),
                ("step".into(), step),
                ("match[]".into(), q),
            ]);
            let _ = m.api_query("anonymous", &odd);
            let _ = m.api_query_range("anonymous", &odd);
            let _ = m.api_series("anonymous", &odd);
            let _ = m.api_labels("anonymous", &odd);
        }

        #[test]
        fn ingest_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let m = mimir_with_data();
            let _ = m.ingest("anonymous", &body);
            let _ = m.ingest("anonymous", &wire::compression::snappy_compress(&body));
        }
    }
}
