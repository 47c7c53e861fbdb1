//! Prometheus' HTTP API (as Prometheus and Mimir serve it under `prometheus_query`) and remote
//! write 1.0 (to `prometheus_write`).
//!
//! Query results are typed: [`QueryResult`] is a vector, matrix, scalar or string, with sample
//! values parsed from their JSON strings, including `NaN`, `+Inf` and `-Inf`. Native histogram
//! samples are not modelled (a series carrying only histograms has no samples here). Loki's
//! metric queries answer in the same shapes and reuse these types.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use wire::remote_write::WriteRequest;

use super::{ClientError, Http, Reply, duration_param};
use crate::endpoints::Endpoints;

/// A label set.
pub type Labels = BTreeMap<String, String>;

/// One sample: unix time in seconds and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub timestamp: f64,
    pub value: f64,
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub metric: Labels,
    pub sample: Sample,
}

/// One series of a range matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub metric: Labels,
    pub samples: Vec<Sample>,
}

/// The `data` of a query response.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
    Scalar(Sample),
    String { timestamp: f64, value: String },
}

impl QueryResult {
    /// The instant vector, if this is one.
    pub fn vector(&self) -> Option<&[InstantSample]> {
        match self {
            QueryResult::Vector(v) => Some(v),
            _ => None,
        }
    }

    /// The matrix, if this is one.
    pub fn matrix(&self) -> Option<&[RangeSeries]> {
        match self {
            QueryResult::Matrix(m) => Some(m),
            _ => None,
        }
    }

    /// The scalar, if this is one.
    pub fn scalar(&self) -> Option<Sample> {
        match self {
            QueryResult::Scalar(s) => Some(*s),
            _ => None,
        }
    }
}

/// Parses a sample value as Prometheus writes it (`"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
pub fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("sample value {s:?}: {e}")),
    }
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

fn sample((timestamp, v): (f64, String)) -> Result<Sample, String> {
    Ok(Sample {
        timestamp,
        value: parse_value(&v)?,
    })
}

/// Turns `data.result` into a [`QueryResult`] according to `data.resultType`.
pub(crate) fn parse_result(result_type: &str, result: Json) -> Result<QueryResult, String> {
    let json_err = |e: serde_json::Error| format!("{result_type} result: {e}");
    Ok(match result_type {
        "vector" => {
            let raw: Vec<RawSeries> = serde_json::from_value(result).map_err(json_err)?;
            QueryResult::Vector(
                raw.into_iter()
                    .filter_map(|s| s.value.map(|v| (s.metric, v)))
                    .map(|(metric, v)| {
                        Ok(InstantSample {
                            metric,
                            sample: sample(v)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        "matrix" => {
            let raw: Vec<RawSeries> = serde_json::from_value(result).map_err(json_err)?;
            QueryResult::Matrix(
                raw.into_iter()
                    .map(|s| {
                        Ok(RangeSeries {
                            metric: s.metric,
                            samples: s
                                .values
                                .into_iter()
                                .map(sample)
                                .collect::<Result<_, String>>()?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        "scalar" => QueryResult::Scalar(sample(serde_json::from_value(result).map_err(json_err)?)?),
        "string" => {
            let (timestamp, value): (f64, String) =
                serde_json::from_value(result).map_err(json_err)?;
            QueryResult::String { timestamp, value }
        }
        other => return Err(format!("unknown resultType {other:?}")),
    })
}

/// The envelope of every Prometheus (and Loki) JSON API response.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

/// `data` of a query response.
#[derive(Deserialize)]
pub(crate) struct RawData {
    #[serde(rename = "resultType")]
    pub result_type: String,
    #[serde(default)]
    pub result: Json,
}

/// Reads the `data` of a successful envelope, failing on `"status":"error"` or a missing `data`.
pub(crate) fn envelope_data<T: DeserializeOwned>(reply: &Reply) -> Result<T, ClientError> {
    let env: Envelope<T> = reply.json()?;
    match (env.status.as_str(), env.data) {
        ("success", Some(d)) => Ok(d),
        (status, _) => Err(reply.decode_error(format!(
            "status {status:?}, errorType {:?}, error {:?}",
            env.error_type.unwrap_or_default(),
            env.error.unwrap_or_default()
        ))),
    }
}

/// A time as a query parameter: unix seconds with up to nanosecond decimals.
pub(crate) fn seconds_param(unix_seconds: f64) -> String {
    format!("{unix_seconds}")
}

/// Prometheus' and Mimir's query API and remote write.
#[derive(Clone, Debug)]
pub struct PromClient {
    http: Http,
}

impl PromClient {
    pub fn new(endpoints: &Endpoints) -> Self {
        PromClient {
            http: Http::new(endpoints),
        }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, ClientError> {
        self.http
            .url(&self.http.endpoints.prometheus_query, path, query)
    }

    async fn get_data<T: DeserializeOwned>(&self, url: url::Url) -> Result<T, ClientError> {
        let reply = self.http.send(Method::GET, url, |rb| rb).await?;
        envelope_data(&reply)
    }

    async fn query_result(&self, url: url::Url) -> Result<QueryResult, ClientError> {
        let reply = self.http.send(Method::GET, url, |rb| rb).await?;
        let data: RawData = envelope_data(&reply)?;
        parse_result(&data.result_type, data.result).map_err(|e| reply.decode_error(e))
    }

    /// Sends a remote-write 1.0 request (snappy-compressed protobuf).
    pub async fn remote_write(&self, req: &WriteRequest) -> Result<(), ClientError> {
        let url = self.http.endpoints.prometheus_write.clone();
        let body = wire::remote_write::encode(req);
        self.http
            .send(Method::POST, url, |rb| {
                rb.header(CONTENT_TYPE, "application/x-protobuf")
                    .header(CONTENT_ENCODING, "snappy")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body)
            })
            .await
            .map(|_| ())
    }

    /// `GET /api/v1/query` at `time` (unix seconds), or now.
    pub async fn query(&self, query: &str, time: Option<f64>) -> Result<QueryResult, ClientError> {
        let mut params = vec![("query", query.to_string())];
        if let Some(t) = time {
            params.push(("time", seconds_param(t)));
        }
        self.query_result(self.url("api/v1/query", &params)?).await
    }

    /// `GET /api/v1/query_range` (unix seconds).
    pub async fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<QueryResult, ClientError> {
        let params = [
            ("query", query.to_string()),
            ("start", seconds_param(start)),
            ("end", seconds_param(end)),
            ("step", duration_param(step)),
        ];
        self.query_result(self.url("api/v1/query_range", &params)?)
            .await
    }

    /// `GET /api/v1/series` for the given selectors, optionally within `[start, end]`.
    pub async fn series(
        &self,
        matchers: &[&str],
        range: Option<(f64, f64)>,
    ) -> Result<Vec<Labels>, ClientError> {
        let params = match_params(matchers, range);
        self.get_data(self.url("api/v1/series", &params)?).await
    }

    /// `GET /api/v1/labels`.
    pub async fn labels(&self) -> Result<Vec<String>, ClientError> {
        self.get_data(self.url("api/v1/labels", &[])?).await
    }

    /// `GET /api/v1/label/{name}/values`.
    pub async fn label_values(&self, name: &str) -> Result<Vec<String>, ClientError> {
        let url = self.http.url_segments(
            &self.http.endpoints.prometheus_query,
            &["api", "v1", "label", name, "values"],
            &[],
        )?;
        self.get_data(url).await
    }

    /// `Ok` once the query API answers `query=1`: the one probe Prometheus and Mimir (whose
    /// `/ready` is not under the query base URL) both serve.
    pub async fn ready(&self) -> Result<(), ClientError> {
        self.query("1", None).await.map(|_| ())
    }
}

/// `match[]` parameters and an optional range, as `/series` takes them (Prometheus and Loki).
pub(crate) fn match_params(
    matchers: &[&str],
    range: Option<(f64, f64)>,
) -> Vec<(&'static str, String)> {
    let mut params: Vec<(&str, String)> = matchers
        .iter()
        .map(|m| ("match[]", m.to_string()))
        .collect();
    if let Some((start, end)) = range {
        params.push(("start", seconds_param(start)));
        params.push(("end", seconds_param(end)));
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_value("1e3"), Ok(1000.0));
        assert!(parse_value("one").is_err());
    }

    #[test]
    fn result_types() {
        let v = parse_result(
            "vector",
            serde_json::json!([{"metric": {"a": "b"}, "value": [1.5, "-Inf"]}]),
        )
        .unwrap();
        assert_eq!(v.vector().unwrap()[0].sample.value, f64::NEG_INFINITY);
        let s = parse_result("scalar", serde_json::json!([2, "3"])).unwrap();
        assert_eq!(
            s.scalar(),
            Some(Sample {
                timestamp: 2.0,
                value: 3.0
            })
        );
        let st = parse_result("string", serde_json::json!([2, "x"])).unwrap();
        assert_eq!(
            st,
            QueryResult::String {
                timestamp: 2.0,
                value: "x".into()
            }
        );
        assert!(parse_result("streams", serde_json::json!([])).is_err());
        assert!(parse_result("matrix", serde_json::json!([{"values": [[1, "x"]]}])).is_err());
    }
}
