//! Tempo: OTLP/HTTP push and the query API (`/api/traces/{id}`, `/api/search`, tags and tag
//! values), plus the response types of that API, which the embedded Tempo serialises too (one
//! definition of each JSON shape).
//!
//! Traces are fetched as protobuf (`Accept: application/protobuf`), which real Tempo and the
//! embedded one both serve: it avoids the differences between Tempo's JSON (base64 ids, enum
//! names) and the OTLP JSON mapping.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use wire::otlp::proto::common::v1::KeyValue;
use wire::otlp::proto::trace::v1::{ResourceSpans, TracesData};
use wire::otlp::{Encoding, ExportTraceServiceRequest, ExportTraceServiceResponse};

use super::{ClientError, Http, duration_param};
use crate::endpoints::Endpoints;

/// Tempo's `TraceByIDResponse` (the `/api/v2/traces/{id}` protobuf body). Its `Trace` is
/// `repeated ResourceSpans resourceSpans = 1`, byte for byte OTLP's `TracesData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub trace: Option<TracesData>,
}

/// `GET /api/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    #[serde(default)]
    pub traces: Vec<TraceSummary>,
    #[serde(default)]
    pub metrics: SearchMetrics,
}

/// One trace found by a search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_service_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_trace_name: String,
    #[serde(default, with = "u64_string")]
    pub start_time_unix_nano: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duration_ms: u64,
    /// The first span set (Tempo keeps this deprecated field next to `spanSets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_set: Option<SpanSet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub span_sets: Vec<SpanSet>,
    /// Spans and error spans per service over the whole trace (`service.name` of each span's
    /// resource).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_stats: BTreeMap<String, ServiceStats>,
}

/// A service's share of a trace, as Tempo's search reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStats {
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub span_count: u32,
    /// Spans with status `error`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub error_count: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// Spans of a trace that matched a TraceQL query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanSet {
    #[serde(default)]
    pub spans: Vec<SpanSummary>,
    #[serde(default)]
    pub matched: u32,
}

/// One matched span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanSummary {
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The span name, only when the query selected it (as Tempo).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, with = "u64_string")]
    pub start_time_unix_nano: u64,
    #[serde(default, with = "u64_string")]
    pub duration_nanos: u64,
    /// The attributes the query looked at, as OTLP key-values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<KeyValue>,
}

/// What a search inspected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchMetrics {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inspected_traces: u64,
    #[serde(default, with = "u64_string", skip_serializing_if = "is_zero")]
    pub inspected_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_blocks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub completed_jobs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_jobs: u64,
}

/// `GET /api/search/tags`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagNamesResponse {
    #[serde(default)]
    pub tag_names: Vec<String>,
}

/// `GET /api/v2/search/tags`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagScopesResponse {
    #[serde(default)]
    pub scopes: Vec<TagScope>,
}

/// The tag names of one scope (`resource`, `span`, `intrinsic`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagScope {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /api/search/tag/{name}/values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagValuesResponse {
    #[serde(default)]
    pub tag_values: Vec<String>,
}

/// `GET /api/v2/search/tag/{name}/values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypedTagValuesResponse {
    #[serde(default)]
    pub tag_values: Vec<TypedTagValue>,
}

/// A tag value and its TraceQL type (`string`, `int`, `float`, `bool`, `keyword`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TypedTagValue {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A `u64` written as a JSON string (as protobuf's JSON mapping writes 64-bit integers) and read
/// from a string or a number.
mod u64_string {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Num(u64),
            Str(String),
        }
        match Either::deserialize(d)? {
            Either::Num(n) => Ok(n),
            Either::Str(s) => s.parse().map_err(de::Error::custom),
        }
    }
}

/// The parameters of `GET /api/search`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// TraceQL (`q`).
    pub q: Option<String>,
    /// Tag search (`tags`, sent as logfmt).
    pub tags: Vec<(String, String)>,
    pub min_duration: Option<Duration>,
    pub max_duration: Option<Duration>,
    /// Unix seconds.
    pub start: Option<u64>,
    /// Unix seconds.
    pub end: Option<u64>,
    pub limit: Option<u32>,
    /// Spans per span set.
    pub spss: Option<u32>,
}

impl SearchQuery {
    /// A TraceQL search.
    pub fn traceql(q: impl Into<String>) -> Self {
        SearchQuery {
            q: Some(q.into()),
            ..Default::default()
        }
    }

    /// Adds a tag to a tag search.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Only traces within `[start, end]` (unix seconds).
    pub fn range(mut self, start: u64, end: u64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn min_duration(mut self, d: Duration) -> Self {
        self.min_duration = Some(d);
        self
    }

    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = Some(d);
        self
    }

    /// The tags in logfmt, values quoted when they need it.
    pub fn tags_logfmt(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| {
                if v.is_empty() || v.contains([' ', '"', '=', '\\']) {
                    format!("{k}={}", serde_json::Value::from(v.as_str()))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(q) = &self.q {
            p.push(("q", q.clone()));
        }
        if !self.tags.is_empty() {
            p.push(("tags", self.tags_logfmt()));
        }
        let mut opt = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                p.push((k, v));
            }
        };
        opt("minDuration", self.min_duration.map(duration_param));
        opt("maxDuration", self.max_duration.map(duration_param));
        opt("start", self.start.map(|s| s.to_string()));
        opt("end", self.end.map(|s| s.to_string()));
        opt("limit", self.limit.map(|s| s.to_string()));
        opt("spss", self.spss.map(|s| s.to_string()));
        p
    }
}

/// Tempo's OTLP/HTTP receiver and query API.
#[derive(Clone, Debug)]
pub struct TempoClient {
    http: Http,
}

impl TempoClient {
    pub fn new(endpoints: &Endpoints) -> Self {
        TempoClient {
            http: Http::new(endpoints),
        }
    }

    fn query_url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, ClientError> {
        self.http.url(&self.http.endpoints.tempo_query, path, query)
    }

    /// Pushes spans to `/v1/traces` in the given encoding; returns the receiver's response
    /// (partial success, if any).
    pub async fn push(
        &self,
        req: &ExportTraceServiceRequest,
        encoding: Encoding,
    ) -> Result<ExportTraceServiceResponse, ClientError> {
        let url = self
            .http
            .url(&self.http.endpoints.tempo_otlp_http, "v1/traces", &[])?;
        let body = wire::otlp::encode(req, encoding).map_err(|e| ClientError::Encode {
            url: super::redact(&url),
            reason: e.to_string(),
        })?;
        let reply = self
            .http
            .send(Method::POST, url, |rb| {
                rb.header(CONTENT_TYPE, encoding.content_type()).body(body)
            })
            .await?;
        if reply.body.is_empty() {
            return Ok(ExportTraceServiceResponse::default());
        }
        wire::otlp::decode(&reply.body, encoding).map_err(|e| reply.decode_error(e))
    }

    /// `GET /api/traces/{id}` as protobuf: the trace's `ResourceSpans`, `None` when Tempo
    /// answers 404.
    pub async fn trace_by_id(
        &self,
        trace_id: &str,
    ) -> Result<Option<Vec<ResourceSpans>>, ClientError> {
        let url = self.query_url(&format!("api/traces/{trace_id}"), &[])?;
        let Some(reply) = self.get_protobuf(url).await? else {
            return Ok(None);
        };
        let data: TracesData =
            prost::Message::decode(reply.body.as_ref()).map_err(|e| reply.decode_error(e))?;
        Ok(Some(data.resource_spans))
    }

    /// `GET /api/v2/traces/{id}` as protobuf; `None` on 404.
    pub async fn trace_by_id_v2(
        &self,
        trace_id: &str,
    ) -> Result<Option<Vec<ResourceSpans>>, ClientError> {
        let url = self.query_url(&format!("api/v2/traces/{trace_id}"), &[])?;
        let Some(reply) = self.get_protobuf(url).await? else {
            return Ok(None);
        };
        let resp: TraceByIdResponse =
            prost::Message::decode(reply.body.as_ref()).map_err(|e| reply.decode_error(e))?;
        Ok(Some(
            resp.trace.map(|t| t.resource_spans).unwrap_or_default(),
        ))
    }

    async fn get_protobuf(&self, url: url::Url) -> Result<Option<super::Reply>, ClientError> {
        match self
            .http
            .send(Method::GET, url, |rb| {
                rb.header(ACCEPT, "application/protobuf")
            })
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/search`.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResponse, ClientError> {
        let url = self.query_url("api/search", &query.params())?;
        self.http.get_json(url).await
    }

    /// `GET /api/search/tags`: tag names of every scope.
    pub async fn search_tags(&self) -> Result<Vec<String>, ClientError> {
        let url = self.query_url("api/search/tags", &[])?;
        Ok(self.http.get_json::<TagNamesResponse>(url).await?.tag_names)
    }

    /// `GET /api/v2/search/tags`: tag names per scope.
    pub async fn search_tags_v2(&self) -> Result<Vec<TagScope>, ClientError> {
        let url = self.query_url("api/v2/search/tags", &[])?;
        Ok(self.http.get_json::<TagScopesResponse>(url).await?.scopes)
    }

    /// `GET /api/search/tag/{tag}/values`.
    pub async fn tag_values(&self, tag: &str) -> Result<Vec<String>, ClientError> {
        let url = self.tag_url("search", tag, None)?;
        Ok(self
            .http
            .get_json::<TagValuesResponse>(url)
            .await?
            .tag_values)
    }

    /// `GET /api/v2/search/tag/{tag}/values` (`tag` is a TraceQL identifier such as
    /// `resource.service.name`), optionally filtered by a TraceQL query.
    pub async fn tag_values_v2(
        &self,
        tag: &str,
        q: Option<&str>,
    ) -> Result<Vec<TypedTagValue>, ClientError> {
        let url = self.tag_url("v2", tag, q)?;
        Ok(self
            .http
            .get_json::<TypedTagValuesResponse>(url)
            .await?
            .tag_values)
    }

    fn tag_url(&self, version: &str, tag: &str, q: Option<&str>) -> Result<url::Url, ClientError> {
        let query: Vec<(&str, String)> = q.map(|q| ("q", q.to_string())).into_iter().collect();
        let segments: &[&str] = match version {
            "v2" => &["api", "v2", "search", "tag", tag, "values"],
            _ => &["api", "search", "tag", tag, "values"],
        };
        self.http
            .url_segments(&self.http.endpoints.tempo_query, segments, &query)
    }

    /// `GET /ready`: `Ok` once Tempo answers 200.
    pub async fn ready(&self) -> Result<(), ClientError> {
        let url = self.query_url("ready", &[])?;
        self.http.get_ok(url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_search_response_parses() {
        let doc = r#"{
          "traces": [{
            "traceID": "2f3e0cee77ae5dc9c17ade3689eb2e54",
            "rootServiceName": "shop-backend",
            "rootTraceName": "update-billing",
            "startTimeUnixNano": "1684778327699392724",
            "durationMs": 557,
            "spanSets": [{
              "spans": [{
                "spanID": "563d623c76514f8e",
                "startTimeUnixNano": "1684778327735077898",
                "durationNanos": "446979497",
                "attributes": [{"key": "status", "value": {"stringValue": "error"}}]
              }],
              "matched": 1
            }]
          }],
          "metrics": {"inspectedTraces": 3100, "inspectedBytes": "3811736", "totalBlocks": 13}
        }"#;
        let r: SearchResponse = serde_json::from_str(doc).unwrap();
        let t = &r.traces[0];
        assert_eq!(t.start_time_unix_nano, 1_684_778_327_699_392_724);
        assert_eq!(t.duration_ms, 557);
        assert_eq!(t.span_sets[0].spans[0].duration_nanos, 446_979_497);
        assert_eq!(t.span_sets[0].spans[0].attributes[0].key, "status");
        assert_eq!(r.metrics.inspected_bytes, 3_811_736);
        // and back: 64-bit integers as strings
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["traces"][0]["startTimeUnixNano"], "1684778327699392724");
        assert_eq!(v["metrics"]["inspectedBytes"], "3811736");
    }

    #[test]
    fn tags_are_logfmt_with_quotes_when_needed() {
        let q = SearchQuery::default()
            .tag("service.name", "pos")
            .tag("http.url", "a b\"c");
        assert_eq!(q.tags_logfmt(), r#"service.name=pos http.url="a b\"c""#);
    }
}
