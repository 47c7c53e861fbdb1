//! The embedded Tempo over real sockets: OTLP/HTTP (protobuf, JSON, gzip) and OTLP/gRPC in,
//! trace by id (v1, v2), search, tags and tag values out, through [`TempoClient`] and raw HTTP
//! for the shapes and the error paths.

// Test code through and through (clippy.toml only exempts `#[test]` fns, not helpers).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use prost::Message as _;
use reqwest::StatusCode;
use stack::client::tempo::{SearchQuery, TempoClient, TypedTagValue};
use stack::{EmbeddedConfig, EmbeddedStack, Endpoints};
use wire::otlp::grpc::TraceServiceClient;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use wire::otlp::{Encoding, ExportTraceServiceRequest};

/// 2023-11-14T22:13:20Z, in seconds.
const T0: u64 = 1_700_000_000;
const SEC: u64 = 1_000_000_000;

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn str_kv(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

/// A span of trace `trace` starting `offset_s` seconds after T0, lasting `ms` milliseconds.
fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, offset_s: u64, ms: u64) -> Span {
    let start = (T0 + offset_s) * SEC;
    Span {
        trace_id: trace_id(trace).to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * 1_000_000,
        ..Default::default()
    }
}

fn trace_id(n: u8) -> [u8; 16] {
    let mut id = [0xab; 16];
    id[15] = n;
    id
}

fn hex_id(n: u8) -> String {
    hex::encode(trace_id(n))
}

fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![str_kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn span_names(batches: &[ResourceSpans]) -> Vec<String> {
    let mut names: Vec<String> = batches
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect();
    names.sort();
    names
}

async fn start() -> EmbeddedStack {
    EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap()
}

fn otlp_url(stack: &EmbeddedStack) -> String {
    format!("http://{}/v1/traces", stack.addrs().otlp_http)
}

fn query_url(stack: &EmbeddedStack, path: &str) -> String {
    format!("http://{}{path}", stack.addrs().tempo)
}

async fn post_otlp(
    stack: &EmbeddedStack,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .post(otlp_url(stack))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        rb = rb.header("content-encoding", e);
    }
    rb.send().await.unwrap()
}

/// The `google.rpc.Status` of an OTLP/HTTP error, decoded as the OTLP spec says.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A shop: trace 1 (pos, error, 250ms, at T0), trace 2 (web, GET, 20ms, at T0+100s).
async fn seed(client: &TempoClient) {
    let mut root = span(1, 1, None, "checkout", 0, 250);
    root.attributes = vec![kv("http.status_code", Value::IntValue(500))];
    root.status = Some(Status {
        code: 2,
        message: "payment failed".into(),
    });
    let child = span(1, 2, Some(1), "charge", 0, 100);
    client
        .push(&export("pos", vec![root, child]), Encoding::Protobuf)
        .await
        .unwrap();
    let mut web = span(2, 3, None, "browse", 100, 20);
    web.attributes = vec![str_kv("http.method", "GET")];
    client
        .push(&export("web", vec![web]), Encoding::Json)
        .await
        .unwrap();
}

#[tokio::test]
async fn tempo_push_http_and_read_back_by_id() {
    let stack = start().await;
    let client = TempoClient::new(stack.endpoints());
    client.ready().await.unwrap();
    seed(&client).await;

    let t1 = client.trace_by_id(&hex_id(1)).await.unwrap().unwrap();
    assert_eq!(span_names(&t1), ["charge", "checkout"]);
    let t2 = client.trace_by_id_v2(&hex_id(2)).await.unwrap().unwrap();
    assert_eq!(span_names(&t2), ["browse"]);
    assert!(client.trace_by_id(&hex_id(9)).await.unwrap().is_none());

    // v1 JSON, as Tempo writes it
    let v: serde_json::Value =
        reqwest::get(query_url(&stack, &format!("/api/traces/{}", hex_id(1))))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let spans = &v["batches"][0]["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().unwrap().len(), 2);
    assert_eq!(spans[0]["kind"], "SPAN_KIND_SERVER");
    assert_eq!(spans[0]["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(spans[0]["traceId"], "q6urq6urq6urq6urq6urAQ==");
    assert_eq!(
        v["batches"][0]["resource"]["attributes"][0]["value"]["stringValue"],
        "pos"
    );

    // v2 JSON
    let v: serde_json::Value =
        reqwest::get(query_url(&stack, &format!("/api/v2/traces/{}", hex_id(2))))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        v["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
        "browse"
    );

    // short ids are left-padded: 0x...01 is not trace 1, so 404
    let r = reqwest::get(query_url(&stack, "/api/traces/1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // start/end outside the trace: not found
    let r = reqwest::get(query_url(
        &stack,
        &format!(
            "/api/traces/{}?start={}&end={}",
            hex_id(1),
            T0 + 500,
            T0 + 600
        ),
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reqwest::get(query_url(
        &stack,
        &format!(
            "/api/traces/{}?start={}&end={}",
            hex_id(1),
            T0 - 10,
            T0 + 10
        ),
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn tempo_success_bodies_follow_the_request_encoding() {
    let stack = start().await;
    let body = export("a", vec![span(1, 1, None, "x", 0, 1)]);
    let r = post_otlp(
        &stack,
        "application/json",
        None,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    // Tempo's receiver (the Collector's, pdata) always writes the empty partial success.
    assert_eq!(r.text().await.unwrap(), r#"{"partialSuccess":{}}"#);

    let r = post_otlp(
        &stack,
        "application/x-protobuf",
        Some("gzip"),
        wire::compression::gzip_compress(&body.encode_to_vec()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    assert_eq!(r.bytes().await.unwrap().as_ref(), [0x0a, 0x00]);
}

#[tokio::test]
async fn tempo_push_grpc_with_tenant_and_refusals() {
    let stack = start().await;
    let mut grpc = TraceServiceClient::connect(format!("http://{}", stack.addrs().otlp_grpc))
        .await
        .unwrap();
    let mut req = tonic::Request::new(export("grpc-svc", vec![span(7, 1, None, "rpc", 0, 5)]));
    req.metadata_mut()
        .insert("x-scope-orgid", "team-a".parse().unwrap());
    grpc.export(req).await.unwrap();

    let mut bad = span(8, 1, None, "bad", 0, 5);
    bad.trace_id = vec![1; 8];
    let err = grpc
        .export(export("grpc-svc", vec![bad]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "trace ids must be 128 bit, received 64 bits");

    // the trace is in team-a only
    let mut endpoints: Endpoints = stack.endpoints().clone();
    endpoints.tenant = Some("team-a".into());
    let team_a = TempoClient::new(&endpoints);
    let t = team_a.trace_by_id(&hex_id(7)).await.unwrap().unwrap();
    assert_eq!(span_names(&t), ["rpc"]);
    let default = TempoClient::new(stack.endpoints());
    assert!(default.trace_by_id(&hex_id(7)).await.unwrap().is_none());
    assert!(
        default
            .search(&SearchQuery::default())
            .await
            .unwrap()
            .traces
            .is_empty()
    );

    // grpc keeps serving after a refusal
    grpc.export(export("grpc-svc", vec![span(9, 1, None, "again", 0, 5)]))
        .await
        .unwrap();
    assert!(default.trace_by_id(&hex_id(9)).await.unwrap().is_some());
}

#[tokio::test]
async fn tempo_grpc_accepts_gzip_and_zstd_compressed_exports() {
    let stack = start().await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", stack.addrs().otlp_grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let query = TempoClient::new(stack.endpoints());
    for (n, encoding) in [
        (21, tonic::codec::CompressionEncoding::Gzip),
        (22, tonic::codec::CompressionEncoding::Zstd),
    ] {
        let mut grpc = TraceServiceClient::new(channel.clone()).send_compressed(encoding);
        // Big enough that compression really happens (tonic compresses every message it is
        // told to, but a repetitive attribute makes the gain visible in the frame).
        let mut s = span(n, 1, None, "compressed", 0, 5);
        s.attributes = vec![str_kv("padding", &"x".repeat(4096))];
        grpc.export(export("zipped", vec![s])).await.unwrap();
        let t = query.trace_by_id(&hex_id(n)).await.unwrap();
        assert_eq!(
            span_names(&t.unwrap_or_else(|| panic!("{encoding:?}: trace missing"))),
            ["compressed"]
        );
    }
}

#[tokio::test]
async fn tempo_search_by_tags_traceql_time_and_duration() {
    let stack = start().await;
    let client = TempoClient::new(stack.endpoints());
    seed(&client).await;
    let ids = |r: stack::client::tempo::SearchResponse| -> Vec<String> {
        r.traces.into_iter().map(|t| t.trace_id).collect()
    };

    // everything, most recent first
    let all = client.search(&SearchQuery::default()).await.unwrap();
    assert_eq!(ids(all.clone()), [hex_id(2), hex_id(1)]);
    let t1 = &all.traces[1];
    assert_eq!(t1.root_service_name, "pos");
    assert_eq!(t1.root_trace_name, "checkout");
    assert_eq!(t1.duration_ms, 250);
    assert_eq!(t1.start_time_unix_nano, T0 * SEC);

    let tags = SearchQuery::default().tag("service.name", "pos");
    assert_eq!(ids(client.search(&tags).await.unwrap()), [hex_id(1)]);
    let tags = SearchQuery::default().tag("http.method", "GET").limit(5);
    assert_eq!(ids(client.search(&tags).await.unwrap()), [hex_id(2)]);

    let q = SearchQuery::traceql(r#"{ resource.service.name = "pos" && status = error }"#);
    let r = client.search(&q).await.unwrap();
    assert_eq!(ids(r.clone()), [hex_id(1)]);
    let set = &r.traces[0].span_sets[0];
    assert_eq!(set.matched, 1);
    // As Tempo: the span name only when the query selected it; the attributes it selected.
    assert_eq!(set.spans[0].name, "");
    let keys: Vec<&str> = set.spans[0]
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys, ["service.name", "status"]);
    assert_eq!(r.traces[0].span_set.as_ref(), Some(set));
    // serviceStats over the whole trace: both spans of pos, one in error.
    let stats = &r.traces[0].service_stats;
    assert_eq!(stats.len(), 1);
    assert_eq!((stats["pos"].span_count, stats["pos"].error_count), (2, 1));
    let raw: serde_json::Value = reqwest::get(query_url(
        &stack,
        "/api/search?q=%7B%20name%20%3D%20%22browse%22%20%7D",
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let t = &raw["traces"][0];
    assert_eq!(
        t["serviceStats"],
        serde_json::json!({"web": {"spanCount": 1}})
    );
    assert_eq!(t["spanSets"][0]["spans"][0]["name"], "browse");

    for (q, want) in [
        ("{ }", vec![hex_id(2), hex_id(1)]),
        (r#"{ span.http.method = "GET" }"#, vec![hex_id(2)]),
        (r#"{ .service.name = "web" }"#, vec![hex_id(2)]),
        (r#"{ name = "charge" }"#, vec![hex_id(1)]),
        ("{ duration > 200ms }", vec![hex_id(1)]),
        ("{ span.http.status_code >= 500 }", vec![hex_id(1)]),
        ("{ kind = client }", vec![]),
    ] {
        assert_eq!(
            ids(client.search(&SearchQuery::traceql(q)).await.unwrap()),
            want,
            "{q}"
        );
    }

    let q = SearchQuery::default().range(T0 + 50, T0 + 200);
    assert_eq!(ids(client.search(&q).await.unwrap()), [hex_id(2)]);
    let q = SearchQuery::default().min_duration(Duration::from_millis(100));
    assert_eq!(ids(client.search(&q).await.unwrap()), [hex_id(1)]);
    let q = SearchQuery::default().max_duration(Duration::from_millis(100));
    assert_eq!(ids(client.search(&q).await.unwrap()), [hex_id(2)]);
    assert_eq!(
        ids(client
            .search(&SearchQuery::default().limit(1))
            .await
            .unwrap()),
        [hex_id(2)]
    );
}

#[tokio::test]
async fn tempo_tags_and_tag_values() {
    let stack = start().await;
    let client = TempoClient::new(stack.endpoints());
    seed(&client).await;

    assert_eq!(
        client.search_tags().await.unwrap(),
        ["http.method", "http.status_code", "service.name"]
    );
    let scopes = client.search_tags_v2().await.unwrap();
    let names: Vec<&str> = scopes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["resource", "span", "intrinsic"]);
    assert!(scopes[2].tags.contains(&"status".to_string()));
    // Tempo 2.10 lists 25 intrinsics (GetVirtualIntrinsicValues).
    assert_eq!(scopes[2].tags.len(), 25);
    assert!(scopes[2].tags.contains(&"event:name".to_string()));

    assert_eq!(
        client.tag_values("service.name").await.unwrap(),
        ["pos", "web"]
    );
    assert_eq!(
        client.tag_values("http.status_code").await.unwrap(),
        ["500"]
    );
    assert!(client.tag_values("nope").await.unwrap().is_empty());

    let typed = |kind: &str, value: &str| TypedTagValue {
        kind: kind.into(),
        value: value.into(),
    };
    assert_eq!(
        client
            .tag_values_v2("resource.service.name", None)
            .await
            .unwrap(),
        [typed("string", "pos"), typed("string", "web")]
    );
    assert_eq!(
        client
            .tag_values_v2(".service.name", Some(r#"{ span.http.method = "GET" }"#))
            .await
            .unwrap(),
        [typed("string", "web")]
    );
    assert_eq!(
        client
            .tag_values_v2("span.http.status_code", None)
            .await
            .unwrap(),
        [typed("int", "500")]
    );
    assert_eq!(
        client.tag_values_v2("status", None).await.unwrap(),
        [typed("keyword", "error"), typed("keyword", "unset")]
    );
    let err = client
        .tag_values_v2("service.name", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
}

#[tokio::test]
async fn tempo_bad_input_gets_4xx_and_the_server_keeps_serving() {
    let stack = EmbeddedStack::start(EmbeddedConfig {
        max_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await
    .unwrap();

    // garbage protobuf: 400 with a protobuf google.rpc.Status
    let r = post_otlp(&stack, "application/x-protobuf", None, vec![0xff; 32]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let status = RpcStatus::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(!status.message.is_empty());

    // garbage JSON: 400 with a JSON google.rpc.Status
    let r = post_otlp(&stack, "application/json", None, b"{not json".to_vec()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], 3);
    assert!(v["message"].as_str().unwrap().contains("json"), "{v}");

    // gzip that is not gzip, and an unknown encoding
    let r = post_otlp(
        &stack,
        "application/x-protobuf",
        Some("gzip"),
        b"nope".to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post_otlp(&stack, "application/x-protobuf", Some("br"), vec![]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // wrong content type, and none
    let r = post_otlp(&stack, "text/plain", None, b"x".to_vec()).await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = reqwest::Client::new()
        .post(otlp_url(&stack))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // too large
    let r = post_otlp(&stack, "application/x-protobuf", None, vec![0; 65 * 1024]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // invalid ids: the whole export is refused, with Tempo's message
    let mut zero = span(1, 1, None, "zero", 0, 1);
    zero.trace_id = vec![0; 16];
    let good = span(2, 1, None, "good", 0, 1);
    let body = export("svc", vec![good, zero]);
    let r = post_otlp(
        &stack,
        "application/json",
        None,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["message"], "trace ids must be 128 bit, received 128 bits");
    let mut bad_span = span(3, 1, None, "bad span", 0, 1);
    bad_span.span_id = vec![1; 4];
    let r = post_otlp(
        &stack,
        "application/x-protobuf",
        None,
        export("svc", vec![bad_span]).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // other paths on the receiver
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", stack.addrs().otlp_http))
        .header("content-type", "application/x-protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // query API: bad ids, unknown trace, bad params, unsupported TraceQL
    for (path, want) in [
        ("/api/traces/xyz", StatusCode::BAD_REQUEST),
        (
            &format!("/api/traces/{}", "1".repeat(33)),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/traces/0", StatusCode::BAD_REQUEST),
        ("/api/v2/traces/zz", StatusCode::BAD_REQUEST),
        (&format!("/api/traces/{}", hex_id(2)), StatusCode::NOT_FOUND),
        (
            &format!("/api/v2/traces/{}", hex_id(2)),
            StatusCode::NOT_FOUND,
        ),
        ("/api/search?limit=abc", StatusCode::BAD_REQUEST),
        ("/api/search?minDuration=10", StatusCode::BAD_REQUEST),
        ("/api/search?start=10&end=5", StatusCode::BAD_REQUEST),
        ("/api/search/tags?scope=nope", StatusCode::BAD_REQUEST),
        ("/api/nope", StatusCode::NOT_FOUND),
    ] {
        let r = reqwest::get(query_url(&stack, path)).await.unwrap();
        assert_eq!(r.status(), want, "{path}");
    }
    let client = TempoClient::new(stack.endpoints());
    let err = client
        .search(&SearchQuery::traceql("{ .a = 1 } | count() > 2"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    let msg = err.to_string();
    assert!(
        msg.contains("not supported by the embedded Tempo: pipelines"),
        "{msg}"
    );
    assert!(
        msg.contains("/api/search?q="),
        "the message shows the request: {msg}"
    );
    // Not TraceQL at all: Tempo's words.
    let r = reqwest::get(query_url(&stack, "/api/search?q=%7B%20foo%20%3D%201%20%7D"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(
        body.starts_with("invalid TraceQL query: parse error at line 1, col 3: "),
        "{body}"
    );

    // still serving
    client.ready().await.unwrap();
    let echo = reqwest::get(query_url(&stack, "/api/echo")).await.unwrap();
    assert_eq!(echo.text().await.unwrap(), "echo");
    client
        .push(
            &export("svc", vec![span(4, 1, None, "after", 0, 1)]),
            Encoding::Protobuf,
        )
        .await
        .unwrap();
    assert!(client.trace_by_id(&hex_id(4)).await.unwrap().is_some());
    let metrics = testkit::get_text(query_url(&stack, "/metrics")).await;
    assert!(
        metrics.contains("tempo_embedded_refused_exports_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tempo_embedded_ingested_spans_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tempo_retention_evicts_oldest_and_counts_it() {
    let one = export("svc", vec![span(1, 1, None, "x", 0, 1)]).encoded_len();
    let stack = EmbeddedStack::start(EmbeddedConfig {
        retention_bytes: one * 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = TempoClient::new(stack.endpoints());
    for t in 1..=6 {
        client
            .push(
                &export("svc", vec![span(t, 1, None, "x", u64::from(t), 1)]),
                Encoding::Protobuf,
            )
            .await
            .unwrap();
    }
    assert!(client.trace_by_id(&hex_id(1)).await.unwrap().is_none());
    assert!(client.trace_by_id(&hex_id(6)).await.unwrap().is_some());
    assert!(stack.tempo.evicted_traces() >= 3);
    let metrics = testkit::get_text(query_url(&stack, "/metrics")).await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tempo_embedded_evicted_traces_total "))
        .unwrap();
    assert_eq!(
        line,
        format!(
            "tempo_embedded_evicted_traces_total {}",
            stack.tempo.evicted_traces()
        )
    );
    stack.shutdown().await;
}

/// The OTLP/JSON example of the OTLP specification (uppercase hex ids, 64-bit integers as
/// strings, kind as a number), plus an int attribute.
const OTLP_JSON_EXAMPLE: &str = r#"{
  "resourceSpans": [{
    "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "my.service" } }] },
    "scopeSpans": [{
      "scope": { "name": "my.library", "version": "1.0.0" },
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [
          { "key": "my.span.attr", "value": { "stringValue": "some value" } },
          { "key": "http.status_code", "value": { "intValue": "500" } }
        ]
      }]
    }]
  }]
}"#;

#[tokio::test]
async fn tempo_the_spec_json_example_is_accepted_and_searchable() {
    let stack = start().await;
    let r = post_otlp(
        &stack,
        "application/json",
        None,
        OTLP_JSON_EXAMPLE.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let client = TempoClient::new(stack.endpoints());
    let t = client
        .trace_by_id("5b8efff798038103d269b633813fc60c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(span_names(&t), ["I'm a server span"]);
    let r = client
        .search(&SearchQuery::traceql("{ span.http.status_code = 500 }"))
        .await
        .unwrap();
    assert_eq!(r.traces.len(), 1);
    // the root span (no parent) has not been received
    assert_eq!(
        r.traces[0].root_service_name,
        "<root span not yet received>"
    );
    assert_eq!(r.traces[0].duration_ms, 1000);
}

#[tokio::test]
async fn tempo_grpc_messages_over_the_limit_are_refused_and_serving_goes_on() {
    let stack = EmbeddedStack::start(EmbeddedConfig {
        max_decompressed_bytes: 4 * 1024,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut grpc = TraceServiceClient::connect(format!("http://{}", stack.addrs().otlp_grpc))
        .await
        .unwrap();
    let mut big = span(1, 1, None, "big", 0, 1);
    big.attributes = vec![str_kv("blob", &"x".repeat(8 * 1024))];
    let err = grpc.export(export("svc", vec![big])).await.unwrap_err();
    // tonic says OUT_OF_RANGE where Go gRPC (real Tempo) says RESOURCE_EXHAUSTED
    assert!(
        matches!(
            err.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{err:?}"
    );
    grpc.export(export("svc", vec![span(2, 1, None, "small", 0, 1)]))
        .await
        .unwrap();
    let client = TempoClient::new(stack.endpoints());
    assert!(client.trace_by_id(&hex_id(1)).await.unwrap().is_none());
    assert!(client.trace_by_id(&hex_id(2)).await.unwrap().is_some());
    stack.shutdown().await;
}
