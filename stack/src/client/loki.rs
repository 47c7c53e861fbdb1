//! Loki's push and query API: push in protobuf+snappy or JSON, `query`, `query_range`, `labels`,
//! `label/{name}/values`, `series`, `/ready`.
//!
//! Log queries answer [`LokiResult::Streams`] (labels and `(timestamp ns, line)` entries); metric
//! queries answer Prometheus' shapes, reused from [`super::prom`].

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value as Json;
use wire::loki::PushRequest;

use super::prom::{self, Labels, QueryResult, RawData, envelope_data, match_params};
use super::{ClientError, Http, duration_param};
use crate::endpoints::Endpoints;

/// One log stream of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiStream {
    pub labels: Labels,
    /// `(timestamp in ns, line)`, in the order Loki returned them.
    pub entries: Vec<(i64, String)>,
}

/// The `data` of a Loki query response.
#[derive(Debug, Clone, PartialEq)]
pub enum LokiResult {
    Streams(Vec<LokiStream>),
    /// A metric query: vector, matrix or scalar.
    Metric(QueryResult),
}

impl LokiResult {
    /// The streams, if this is a log query result.
    pub fn streams(&self) -> Option<&[LokiStream]> {
        match self {
            LokiResult::Streams(s) => Some(s),
            LokiResult::Metric(_) => None,
        }
    }

    /// The metric result, if this is one.
    pub fn metric(&self) -> Option<&QueryResult> {
        match self {
            LokiResult::Metric(m) => Some(m),
            LokiResult::Streams(_) => None,
        }
    }

    /// Every line of every stream, in result order.
    pub fn lines(&self) -> Vec<&str> {
        self.streams()
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.entries.iter().map(|(_, l)| l.as_str()))
            .collect()
    }
}

#[derive(Deserialize)]
struct RawStream {
    #[serde(default)]
    stream: Labels,
    #[serde(default)]
    values: Vec<Vec<Json>>,
}

fn parse_streams(result: Json) -> Result<Vec<LokiStream>, String> {
    let raw: Vec<RawStream> =
        serde_json::from_value(result).map_err(|e| format!("streams result: {e}"))?;
    raw.into_iter()
        .map(|s| {
            let entries = s
                .values
                .into_iter()
                .map(|v| match v.as_slice() {
                    // A third element (structured metadata, parsed labels) may follow.
                    [Json::String(ts), Json::String(line), ..] => ts
                        .parse::<i64>()
                        .map(|ts| (ts, line.clone()))
                        .map_err(|e| format!("entry timestamp {ts:?}: {e}")),
                    other => Err(format!("entry {other:?} is not [\"<ns>\", \"<line>\"]")),
                })
                .collect::<Result<_, String>>()?;
            Ok(LokiStream {
                labels: s.stream,
                entries,
            })
        })
        .collect()
}

fn parse_result(data: RawData) -> Result<LokiResult, String> {
    match data.result_type.as_str() {
        "streams" => parse_streams(data.result).map(LokiResult::Streams),
        t => prom::parse_result(t, data.result).map(LokiResult::Metric),
    }
}

/// Order of entries in a log query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// The parameters of `query_range` beyond the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RangeOptions {
    /// Unix nanoseconds.
    pub start_ns: i64,
    /// Unix nanoseconds.
    pub end_ns: i64,
    pub limit: Option<u32>,
    pub step: Option<Duration>,
    pub direction: Option<Direction>,
}

/// Loki's push and query API.
#[derive(Clone, Debug)]
pub struct LokiClient {
    http: Http,
}

impl LokiClient {
    pub fn new(endpoints: &Endpoints) -> Self {
        LokiClient {
            http: Http::new(endpoints),
        }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, ClientError> {
        self.http.url(&self.http.endpoints.loki, path, query)
    }

    async fn post_push(&self, content_type: &str, body: Vec<u8>) -> Result<(), ClientError> {
        let url = self.url("loki/api/v1/push", &[])?;
        self.http
            .send(Method::POST, url, |rb| {
                rb.header(CONTENT_TYPE, content_type).body(body)
            })
            .await
            .map(|_| ())
    }

    /// Pushes as protobuf in the snappy block format (what Promtail and Alloy send).
    pub async fn push(&self, req: &PushRequest) -> Result<(), ClientError> {
        self.post_push("application/x-protobuf", wire::loki::encode_protobuf(req))
            .await
    }

    /// Pushes as JSON.
    pub async fn push_json(&self, req: &PushRequest) -> Result<(), ClientError> {
        let body = wire::loki::encode_json(req).map_err(|e| ClientError::Encode {
            url: self.http.endpoints.loki.to_string(),
            reason: e.to_string(),
        })?;
        self.post_push("application/json", body).await
    }

    async fn query_result(&self, url: url::Url) -> Result<LokiResult, ClientError> {
        let reply = self.http.send(Method::GET, url, |rb| rb).await?;
        let data: RawData = envelope_data(&reply)?;
        parse_result(data).map_err(|e| reply.decode_error(e))
    }

    /// `GET /loki/api/v1/query_range`.
    pub async fn query_range(
        &self,
        query: &str,
        opts: &RangeOptions,
    ) -> Result<LokiResult, ClientError> {
        let mut params = vec![
            ("query", query.to_string()),
            ("start", opts.start_ns.to_string()),
            ("end", opts.end_ns.to_string()),
        ];
        if let Some(l) = opts.limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(s) = opts.step {
            params.push(("step", duration_param(s)));
        }
        if let Some(d) = opts.direction {
            let d = match d {
                Direction::Forward => "forward",
                Direction::Backward => "backward",
            };
            params.push(("direction", d.to_string()));
        }
        self.query_result(self.url("loki/api/v1/query_range", &params)?)
            .await
    }

    /// `GET /loki/api/v1/query` (instant) at `time_ns`, or now.
    pub async fn query(
        &self,
        query: &str,
        time_ns: Option<i64>,
        limit: Option<u32>,
    ) -> Result<LokiResult, ClientError> {
        let mut params = vec![("query", query.to_string())];
        if let Some(t) = time_ns {
            params.push(("time", t.to_string()));
        }
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        self.query_result(self.url("loki/api/v1/query", &params)?)
            .await
    }

    async fn get_data<T: serde::de::DeserializeOwned>(
        &self,
        url: url::Url,
    ) -> Result<T, ClientError> {
        let reply = self.http.send(Method::GET, url, |rb| rb).await?;
        envelope_data(&reply)
    }

    /// `GET /loki/api/v1/labels`. An empty result comes back as `data` absent in old Lokis.
    pub async fn labels(&self) -> Result<Vec<String>, ClientError> {
        self.get_data::<Option<Vec<String>>>(self.url("loki/api/v1/labels", &[])?)
            .await
            .map(Option::unwrap_or_default)
    }

    /// `GET /loki/api/v1/label/{name}/values`.
    pub async fn label_values(&self, name: &str) -> Result<Vec<String>, ClientError> {
        let url = self.http.url_segments(
            &self.http.endpoints.loki,
            &["loki", "api", "v1", "label", name, "values"],
            &[],
        )?;
        self.get_data::<Option<Vec<String>>>(url)
            .await
            .map(Option::unwrap_or_default)
    }

    /// `GET /loki/api/v1/series` for stream selectors, optionally within `[start, end]` (unix
    /// seconds).
    pub async fn series(
        &self,
        matchers: &[&str],
        range: Option<(f64, f64)>,
    ) -> Result<Vec<Labels>, ClientError> {
        let params = match_params(matchers, range);
        self.get_data::<Option<Vec<BTreeMap<String, String>>>>(
            self.url("loki/api/v1/series", &params)?,
        )
        .await
        .map(Option::unwrap_or_default)
    }

    /// `GET /ready`: `Ok` once Loki answers 200.
    pub async fn ready(&self) -> Result<(), ClientError> {
        self.http.get_ok(self.url("ready", &[])?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_with_and_without_metadata() {
        let s = parse_streams(serde_json::json!([{
            "stream": {"job": "a"},
            "values": [["2", "two"], ["1", "one", {"trace_id": "x"}]]
        }]))
        .unwrap();
        assert_eq!(
            s[0].entries,
            [(2, "two".to_string()), (1, "one".to_string())]
        );
        assert!(parse_streams(serde_json::json!([{"values": [[1, "x"]]}])).is_err());
        assert!(parse_streams(serde_json::json!([{"values": [["x", "y"]]}])).is_err());
    }
}
