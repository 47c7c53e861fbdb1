//! The query API on Tempo's HTTP port (3200): the routes, parameters, status codes and JSON
//! shapes of Tempo's query frontend.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/traces/{id}` | `{"batches":[ResourceSpans...]}`; `tempopb.Trace` protobuf with `Accept: application/protobuf` |
//! | `GET /api/v2/traces/{id}` | `{"trace":{"resourceSpans":[...]},"metrics":{}}`; `TraceByIDResponse` protobuf |
//! | `GET /api/search` | `{"traces":[...],"metrics":{...}}` |
//! | `GET /api/search/tags`, `/api/v2/search/tags` | `{"tagNames":[...]}`, `{"scopes":[{"name","tags"}]}` |
//! | `GET /api/search/tag/{tag}/values`, `/api/v2/...` | `{"tagValues":[...]}`, typed `{"type","value"}` |
//! | `GET /api/echo`, `/ready`, `/metrics` | `echo`, `ready`, the text exposition |
//!
//! Trace JSON is written the way Tempo writes it (gogo `jsonpb`): ids in base64, span kinds and
//! status codes as enum names, 64-bit integers as strings, default values (an empty status
//! message, an unset status code) left out. A trace comes back the way Tempo's vParquet4 blocks
//! give it back ([`tempo_order`]): the attributes Tempo keeps in dedicated columns move behind
//! the others, in the columns' order, and every span has a status. Trace ids in paths are hex, up to 32
//! digits, left-padded with zeros. An unknown trace is 404; a bad id or parameter 400 with the
//! reason in a plain-text body.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query as QueryParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prost::Message as _;
use serde_json::{Value as Json, json};
use wire::otlp::proto::common::v1::{KeyValue, any_value::Value as AnyValue};
use wire::otlp::proto::trace::v1::{
    ResourceSpans, Status, TracesData, span::SpanKind, status::StatusCode as OtlpStatus,
};

use super::search::{self, ParamError, Scopes, SearchParams, TimeRange};
use super::store::{StoredTrace, TraceId};
use super::traceql::{Field, Query};
use super::{Tempo, TenantError, tenant_from};
use crate::client::tempo::{
    TagNamesResponse, TagScopesResponse, TagValuesResponse, TraceByIdResponse,
    TypedTagValuesResponse,
};
use crate::embedded::http::header as header_str;
use wire::http::TENANT_HEADER;

/// Why a query was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("trace not found")]
    TraceNotFound,
    #[error("invalid trace id: {0}")]
    BadTraceId(String),
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("{0}")]
    BadRequest(String),
    #[error("cannot encode the response: {0}")]
    Encode(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::TraceNotFound => StatusCode::NOT_FOUND,
            ApiError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

type Params = QueryParams<HashMap<String, String>>;

/// The query router.
pub fn router(state: Arc<Tempo>) -> Router {
    Router::new()
        .route("/api/traces/{id}", get(trace_v1))
        .route("/api/v2/traces/{id}", get(trace_v2))
        .route("/api/search", get(search_traces))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{tag}/values", get(values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(values_v2))
        .route("/api/echo", get(|| async { "echo" }))
        .route("/ready", get(|| async { "ready" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .with_state(state)
}

fn tenant(headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(tenant_from(header_str(headers, TENANT_HEADER))?)
}

/// The tenant of a request, checked as Tempo checks `X-Scope-OrgID`: a handler that takes it
/// refuses a bad one (400) before it runs.
struct Tenant(String);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        tenant(&parts.headers).map(Tenant)
    }
}

/// Parses a hex trace id of up to 32 digits, left-padding it with zeros as Tempo does.
pub fn parse_trace_id(s: &str) -> Result<TraceId, ApiError> {
    let bad = |why: &str| ApiError::BadTraceId(format!("{s:?}: {why}"));
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.len() > 32 {
        return Err(bad("trace IDs can't be larger than 128 bits"));
    }
    let bytes = hex::decode(format!("{s:0>32}")).map_err(|_| bad("not hexadecimal"))?;
    let id: TraceId = bytes.try_into().map_err(|_| bad("not 128 bits"))?;
    if id == [0; 16] {
        return Err(bad("trace IDs can't be zero"));
    }
    Ok(id)
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains("application/protobuf"))
}

/// Looks a trace up for the two trace-by-id routes and hands its batches to `render`.
fn with_trace(
    tempo: &Tempo,
    id: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    render: impl FnOnce(&StoredTrace, bool) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let id = parse_trace_id(id)?;
    let tenant = tenant(headers)?;
    let range = TimeRange::parse(params)?;
    let store = tempo.store();
    let trace = store
        .get(&tenant, &id)
        .filter(|t| range.contains(t))
        .ok_or(ApiError::TraceNotFound)?;
    render(trace, wants_protobuf(headers))
}

fn protobuf(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/protobuf")], body).into_response()
}

async fn trace_v1(
    State(tempo): State<Arc<Tempo>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    QueryParams(params): Params,
) -> Result<Response, ApiError> {
    with_trace(&tempo, &id, &headers, &params, |t, proto| {
        if proto {
            return Ok(protobuf(traces_data(t).encode_to_vec()));
        }
        Ok(axum::Json(json!({ "batches": tempo_json(&tempo_order(&t.batches))? })).into_response())
    })
}

async fn trace_v2(
    State(tempo): State<Arc<Tempo>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    QueryParams(params): Params,
) -> Result<Response, ApiError> {
    with_trace(&tempo, &id, &headers, &params, |t, proto| {
        if proto {
            let resp = TraceByIdResponse {
                trace: Some(traces_data(t)),
            };
            return Ok(protobuf(resp.encode_to_vec()));
        }
        Ok(axum::Json(json!({
            "trace": { "resourceSpans": tempo_json(&tempo_order(&t.batches))? },
            "metrics": {},
        }))
        .into_response())
    })
}

fn traces_data(t: &StoredTrace) -> TracesData {
    TracesData {
        resource_spans: tempo_order(&t.batches),
    }
}

/// Resource attributes vParquet4 stores in dedicated columns (string values only), in the order
/// `ParquetTraceToTempopbTrace` appends them after the generic ones.
const DEDICATED_RESOURCE: [&str; 9] = [
    "service.name",
    "cluster",
    "namespace",
    "pod",
    "container",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
];

/// A trace as Tempo returns it after storing it in vParquet4 (tempodb/encoding/vparquet4/
/// schema.go): generic attributes in sent order, then the dedicated columns (`service.name`,
/// `cluster`, ..., `k8s.container.name` of a resource; `http.method`, `http.url` (strings) and
/// `http.status_code` (an int) of a span); every span with a status, empty when none was sent.
pub fn tempo_order(batches: &[ResourceSpans]) -> Vec<ResourceSpans> {
    fn is_str(kv: &KeyValue) -> bool {
        matches!(
            kv.value.as_ref().and_then(|v| v.value.as_ref()),
            Some(AnyValue::StringValue(_))
        )
    }
    fn is_int(kv: &KeyValue) -> bool {
        matches!(
            kv.value.as_ref().and_then(|v| v.value.as_ref()),
            Some(AnyValue::IntValue(_))
        )
    }
    /// Generic attributes first, then each dedicated one in `order`.
    fn reorder(attrs: &mut Vec<KeyValue>, dedicated: impl Fn(&KeyValue) -> Option<usize>) {
        let (mut special, generic): (Vec<KeyValue>, Vec<KeyValue>) =
            attrs.drain(..).partition(|kv| dedicated(kv).is_some());
        special.sort_by_key(|kv| dedicated(kv));
        attrs.extend(generic);
        attrs.extend(special);
    }
    let mut out = batches.to_vec();
    for rs in &mut out {
        if let Some(r) = rs.resource.as_mut() {
            reorder(&mut r.attributes, |kv| {
                DEDICATED_RESOURCE
                    .iter()
                    .position(|k| *k == kv.key)
                    .filter(|_| is_str(kv))
            });
        }
        for span in rs.scope_spans.iter_mut().flat_map(|ss| ss.spans.iter_mut()) {
            reorder(&mut span.attributes, |kv| match kv.key.as_str() {
                "http.method" if is_str(kv) => Some(0),
                "http.url" if is_str(kv) => Some(1),
                "http.status_code" if is_int(kv) => Some(2),
                _ => None,
            });
            span.status.get_or_insert_with(Status::default);
        }
    }
    out
}

/// `ResourceSpans` as Tempo's JSON: the OTLP JSON mapping with ids in base64 and enums by name.
pub fn tempo_json(batches: &[ResourceSpans]) -> Result<Json, ApiError> {
    let mut v = serde_json::to_value(batches).map_err(|e| ApiError::Encode(e.to_string()))?;
    tempo_style(&mut v);
    Ok(v)
}

fn tempo_style(v: &mut Json) {
    match v {
        Json::Array(items) => items.iter_mut().for_each(tempo_style),
        Json::Object(map) => {
            map.retain(|k, v| !is_default(k, v));
            for (k, val) in map.iter_mut() {
                match (k.as_str(), &mut *val) {
                    ("traceId" | "spanId" | "parentSpanId", Json::String(h)) => {
                        if let Ok(bytes) = hex::decode(h.as_str()) {
                            *h = base64(&bytes);
                        }
                    }
                    ("kind", Json::Number(n)) => {
                        if let Some(k) = n
                            .as_i64()
                            .and_then(|n| SpanKind::try_from(i32::try_from(n).ok()?).ok())
                        {
                            *val = Json::from(k.as_str_name());
                        }
                    }
                    ("status", Json::Object(status)) => {
                        // jsonpb leaves out an empty message and the unset (0) code.
                        status.retain(|k, v| !is_default(k, v));
                        if let Some(code) = status.get_mut("code")
                            && let Some(c) = code
                                .as_i64()
                                .and_then(|n| OtlpStatus::try_from(i32::try_from(n).ok()?).ok())
                        {
                            *code = Json::from(c.as_str_name());
                        }
                    }
                    _ => tempo_style(val),
                }
            }
        }
        _ => {}
    }
}

/// Would `jsonpb` leave this field out? It omits zero scalars, empty strings and empty
/// repeated fields, but never the value a `oneof` (an `AnyValue`) holds.
fn is_default(key: &str, v: &Json) -> bool {
    const ONEOF: [&str; 5] = [
        "stringValue",
        "intValue",
        "doubleValue",
        "boolValue",
        "bytesValue",
    ];
    match v {
        Json::Null => true,
        Json::Array(a) => a.is_empty(),
        _ if ONEOF.contains(&key) => false,
        Json::String(s) => s.is_empty() || s == "0",
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::Bool(b) => !b,
        Json::Object(_) => false,
    }
}

/// Standard base64 with padding, as Tempo's JSON (gogo `jsonpb`) writes bytes.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn search_traces(
    State(tempo): State<Arc<Tempo>>,
    QueryParams(params): Params,
    Tenant(tenant): Tenant,
) -> Result<Response, ApiError> {
    let p = SearchParams::parse(&params)?;
    Ok(crate::embedded::http::evaluate(move || {
        axum::Json(search::search(&tempo.store(), &tenant, &p)).into_response()
    })
    .await)
}

async fn tags_v1(
    State(tempo): State<Arc<Tempo>>,
    QueryParams(params): Params,
    Tenant(tenant): Tenant,
) -> Result<Response, ApiError> {
    let scopes = Scopes::parse(&params, false)?;
    let range = TimeRange::parse(&params)?;
    let mut tag_names: Vec<String> = search::tag_scopes(&tempo.store(), &tenant, range, scopes)
        .into_iter()
        .flat_map(|s| s.tags)
        .collect();
    tag_names.sort();
    tag_names.dedup();
    Ok(axum::Json(TagNamesResponse { tag_names }).into_response())
}

async fn tags_v2(
    State(tempo): State<Arc<Tempo>>,
    QueryParams(params): Params,
    Tenant(tenant): Tenant,
) -> Result<Response, ApiError> {
    let scopes = Scopes::parse(&params, true)?;
    let range = TimeRange::parse(&params)?;
    let scopes = search::tag_scopes(&tempo.store(), &tenant, range, scopes);
    Ok(axum::Json(TagScopesResponse { scopes }).into_response())
}

async fn values_v1(
    State(tempo): State<Arc<Tempo>>,
    Path(tag): Path<String>,
    QueryParams(params): Params,
    Tenant(tenant): Tenant,
) -> Result<Response, ApiError> {
    let range = TimeRange::parse(&params)?;
    let tag_values = search::tag_values(&tempo.store(), &tenant, range, &tag);
    Ok(axum::Json(TagValuesResponse { tag_values }).into_response())
}

async fn values_v2(
    State(tempo): State<Arc<Tempo>>,
    Path(tag): Path<String>,
    QueryParams(params): Params,
    Tenant(tenant): Tenant,
) -> Result<Response, ApiError> {
    let range = TimeRange::parse(&params)?;
    let field = Field::parse(&tag).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "tag name is not valid intrinsic or scoped attribute: {tag}"
        ))
    })?;
    // Like Tempo, a filter that does not parse is ignored rather than refused.
    let filter = params
        .get("q")
        .and_then(|q| Query::parse(q).ok())
        .unwrap_or_default();
    let tag_values = search::typed_tag_values(&tempo.store(), &tenant, range, &field, &filter);
    Ok(axum::Json(TypedTagValuesResponse { tag_values }).into_response())
}

async fn metrics(State(tempo): State<Arc<Tempo>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            wire::exposition::Format::PrometheusText.content_type(),
        )],
        tempo.render_metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids() {
        assert_eq!(parse_trace_id("1").unwrap()[15], 1);
        let full = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            hex::encode(parse_trace_id(full).unwrap()),
            full.to_lowercase()
        );
        for bad in ["", "0", "00000", "xyz", &"1".repeat(33), "12 4"] {
            assert!(
                matches!(parse_trace_id(bad), Err(ApiError::BadTraceId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_is_written_like_tempo() {
        use super::super::store::tests::{export, span};
        let mut s = span(1, 2, None, "a");
        s.kind = 2;
        s.status = Some(wire::otlp::proto::trace::v1::Status {
            code: 2,
            message: "x".into(),
        });
        let batches = export("svc", vec![s]).resource_spans;
        let v = tempo_json(&batches).unwrap();
        let span = &v[0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "AQEBAQEBAQEBAQEBAQEBAQ==");
        assert_eq!(span["spanId"], "AgICAgICAgI=");
        assert_eq!(span["kind"], "SPAN_KIND_SERVER");
        assert_eq!(span["status"]["code"], "STATUS_CODE_ERROR");
        assert_eq!(span["startTimeUnixNano"], "1000000000");
        // defaults are left out, as jsonpb does, but not the values of attributes
        for absent in [
            "parentSpanId",
            "traceState",
            "droppedAttributesCount",
            "events",
            "flags",
        ] {
            assert!(span.get(absent).is_none(), "{absent}: {span}");
        }
        let zero = tempo_style_of(json!({"key": "k", "value": {"intValue": "0"}}));
        assert_eq!(zero["value"]["intValue"], "0");
        let empty = tempo_style_of(json!({"value": {"stringValue": ""}}));
        assert_eq!(empty["value"]["stringValue"], "");
    }

    #[test]
    fn attributes_in_vparquet4_order_and_defaults_left_out() {
        use super::super::store::tests::{export, span};
        let kv = |k: &str, v: AnyValue| KeyValue {
            key: k.into(),
            value: Some(wire::otlp::proto::common::v1::AnyValue { value: Some(v) }),
            ..Default::default()
        };
        let s = |v: &str| AnyValue::StringValue(v.into());
        let mut sp = span(1, 2, None, "a");
        sp.attributes = vec![
            kv("http.status_code", AnyValue::IntValue(200)),
            kv("http.method", s("GET")),
            kv("zone", s("eu")),
            kv("http.url", AnyValue::IntValue(1)),
        ];
        let mut batches = export("svc", vec![sp]).resource_spans;
        let res = batches[0].resource.as_mut().unwrap();
        res.attributes.extend([
            kv("k8s.pod.name", s("p")),
            kv("host.name", s("h")),
            kv("cluster", s("c")),
            kv("pod", AnyValue::IntValue(3)),
        ]);
        let v = tempo_json(&tempo_order(&batches)).unwrap();
        let keys = |a: &Json| -> Vec<String> {
            a.as_array()
                .unwrap()
                .iter()
                .map(|kv| kv["key"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            keys(&v[0]["resource"]["attributes"]),
            [
                "host.name",
                "pod",
                "service.name",
                "cluster",
                "k8s.pod.name"
            ]
        );
        let span = &v[0]["scopeSpans"][0]["spans"][0];
        assert_eq!(
            keys(&span["attributes"]),
            ["zone", "http.url", "http.method", "http.status_code"]
        );
        // no status sent: an empty one, as Tempo's parquet round trip gives
        assert_eq!(span["status"], json!({}));
        let st = tempo_style_of(json!({"status": {"code": 0, "message": ""}}));
        assert_eq!(st, json!({"status": {}}));
    }

    fn tempo_style_of(mut v: Json) -> Json {
        tempo_style(&mut v);
        v
    }
}
