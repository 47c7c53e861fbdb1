//! Faults on demand over real sockets: an outage refuses every push with 503 and stores none of
//! it until cleared; an error rate faults exactly every Nth request; throttled requests carry
//! `Retry-After` (gRPC: `RESOURCE_EXHAUSTED` with `RetryInfo`); the `/stack/faults` admin
//! endpoint round-trips its JSON, refuses a bad body with 400 and a reason, and is the same
//! state on every port and in the [`stack::embedded::faults::Faults`] handle; `stack serve
//! --fault` sets faults at start; every faulted request is counted on `/metrics`.

// Test code through and through (clippy.toml only exempts `#[test]` fns, not helpers).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use prost::Message as _;
use serde_json::{Value, json};
use stack::embedded::faults::{Api, Fault, Rate};
use stack::{EmbeddedConfig, EmbeddedStack};
use wire::loki::{Entry, PushRequest, Stream};
use wire::otlp::ExportTraceServiceRequest;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::ingest_limits::{metric, post};

async fn start() -> EmbeddedStack {
    EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap()
}

/// A Loki push of one line, distinct per `i`, as JSON.
fn loki_push(i: i64) -> Vec<u8> {
    let now = wire::time::now_ns();
    wire::loki::encode_json(&PushRequest {
        streams: vec![Stream {
            labels: "{job=\"faults\"}".into(),
            entries: vec![Entry::new(now - 1_000_000_000 + i, format!("line {i}"))],
            hash: 0,
        }],
    })
    .unwrap()
}

fn export(id: u8) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![id; 16],
                    span_id: vec![id; 8],
                    name: "checkout".into(),
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn admin(
    method: reqwest::Method,
    base: SocketAddr,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut req =
        reqwest::Client::new().request(method, format!("http://{base}/stack/faults{path}"));
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn an_outage_refuses_every_push_and_stores_nothing_until_cleared() {
    let stack = start().await;
    let a = stack.addrs();
    let faults = stack.faults();
    faults.set(Api::LokiPush, Fault::outage());
    let loki = format!("http://{}/loki/api/v1/push", a.loki);
    for i in 0..3 {
        let (status, retry, body) =
            post(loki.clone(), "fake", "application/json", loki_push(i)).await;
        assert_eq!(status, 503, "{body}");
        assert!(retry.is_none());
        assert!(
            body.contains("loki_push is in an injected outage"),
            "{body}"
        );
    }
    let entries = "loki_embedded_ingested_entries_total";
    // A client sending large bodies on one connection gets every answer (the body is drained).
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let big = client
            .post(&loki)
            .header("Content-Type", "application/json")
            .body(vec![b' '; 4 << 20])
            .send()
            .await
            .unwrap();
        assert_eq!(big.status(), 503);
    }
    assert_eq!(metric(a.loki, entries).await, 0.0);
    let refused = "stack_embedded_faulted_requests_total{api=\"loki_push\",fault=\"outage\"}";
    assert_eq!(metric(a.loki, refused).await, 6.0);
    assert_eq!(faults.refused(Api::LokiPush), 6);
    // Queries and the other APIs are not affected.
    let ready = reqwest::get(format!("http://{}/loki/api/v1/labels", a.loki))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Mimir and Tempo through the admin endpoint (on any port), gRPC included.
    let body = r#"{"mimir_write": {"outage": true}, "tempo_otlp_http": {"outage": "1h"},
        "tempo_otlp_grpc": {"outage": true}}"#;
    let (status, text) = admin(reqwest::Method::PUT, a.tempo, "", Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let mimir = format!("http://{}/api/v1/push", a.mimir);
    let now = wire::time::now_ns() / 1_000_000;
    let series = stack::embedded::mimir::write::encode_series(&[(
        vec![("__name__", "up")],
        vec![(now - 100, 1.0)],
    )]);
    let (status, _, _) = post(mimir.clone(), "t", "application/x-protobuf", series.clone()).await;
    assert_eq!(status, 503);
    assert_eq!(stack.mimir.store.read().sample_count(), 0);
    let otlp = format!("http://{}/v1/traces", a.otlp_http);
    let (status, _, body) = post(
        otlp.clone(),
        "t",
        "application/json",
        serde_json::to_vec(&export(1)).unwrap(),
    )
    .await;
    assert_eq!(status, 503);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["code"], 14,
        "UNAVAILABLE as a google.rpc.Status: {body}"
    );
    let mut grpc = wire::otlp::grpc::TraceServiceClient::connect(format!("http://{}", a.otlp_grpc))
        .await
        .unwrap();
    let err = grpc.export(export(2)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let spans = "tempo_embedded_ingested_spans_total";
    assert_eq!(metric(a.tempo, spans).await, 0.0);

    // Cleared (one API by path, then all): pushes are stored again.
    let (status, _) = admin(reqwest::Method::DELETE, a.loki, "/loki_push", None).await;
    assert_eq!(status, 200);
    let (status, _, body) = post(loki, "fake", "application/json", loki_push(9)).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(metric(a.loki, entries).await, 1.0);
    let (status, text) = admin(reqwest::Method::DELETE, a.mimir, "", None).await;
    assert_eq!((status, text.trim()), (200, "{}"));
    let (status, _, _) = post(mimir, "t", "application/x-protobuf", series).await;
    assert_eq!(status, 200);
    assert_eq!(stack.mimir.store.read().sample_count(), 1);
    let (status, _, _) = post(
        otlp,
        "t",
        "application/x-protobuf",
        export(3).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    grpc.export(export(4)).await.unwrap();
    assert_eq!(metric(a.tempo, spans).await, 2.0);
}

#[tokio::test]
async fn an_error_rate_faults_exactly_every_nth_request() {
    let stack = start().await;
    let a = stack.addrs();
    let body = r#"{"loki_push": {"error_rate": 0.1, "status": 500}}"#;
    let (status, text) = admin(reqwest::Method::PUT, a.loki, "", Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let url = format!("http://{}/loki/api/v1/push", a.loki);
    let mut failed = Vec::new();
    for i in 1..=50 {
        let (status, _, body) = post(url.clone(), "fake", "application/json", loki_push(i)).await;
        match status {
            204 => {}
            500 => failed.push(i),
            other => panic!("push {i}: {other} {body}"),
        }
    }
    assert_eq!(failed, [10, 20, 30, 40, 50]);
    let entries = "loki_embedded_ingested_entries_total";
    assert_eq!(metric(a.loki, entries).await, 45.0);
    let errors = "stack_embedded_faulted_requests_total{api=\"loki_push\",fault=\"error\"}";
    assert_eq!(metric(a.loki, errors).await, 5.0);
}

#[tokio::test]
async fn throttled_requests_carry_retry_after() {
    let stack = start().await;
    let a = stack.addrs();
    let faults = stack.faults();
    let throttle = Fault {
        throttle_rate: Rate::new(0.5).unwrap(),
        retry_after_s: 7,
        ..Fault::default()
    };
    faults.set(Api::MimirWrite, throttle);
    faults.set(Api::TempoOtlpHttp, throttle);
    faults.set(Api::TempoOtlpGrpc, throttle);

    let now = wire::time::now_ns() / 1_000_000;
    let url = format!("http://{}/api/v1/push", a.mimir);
    let mut got = Vec::new();
    for i in 0..4 {
        let series = stack::embedded::mimir::write::encode_series(&[(
            vec![("__name__", "up")],
            vec![(now - 100 + i, 1.0)],
        )]);
        let (status, retry, _) = post(url.clone(), "t", "application/x-protobuf", series).await;
        got.push((status, retry));
    }
    let throttled = (429, Some("7".to_string()));
    assert_eq!(
        got,
        [(200, None), throttled.clone(), (200, None), throttled]
    );
    assert_eq!(stack.mimir.store.read().sample_count(), 2);

    let otlp = format!("http://{}/v1/traces", a.otlp_http);
    let (status, _, _) = post(
        otlp.clone(),
        "t",
        "application/x-protobuf",
        export(1).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, retry, body) = post(
        otlp,
        "t",
        "application/json",
        serde_json::to_vec(&export(2)).unwrap(),
    )
    .await;
    assert_eq!((status, retry.as_deref()), (429, Some("7")));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["code"], 8,
        "RESOURCE_EXHAUSTED as a google.rpc.Status: {body}"
    );

    let mut grpc = wire::otlp::grpc::TraceServiceClient::connect(format!("http://{}", a.otlp_grpc))
        .await
        .unwrap();
    grpc.export(export(3)).await.unwrap();
    let err = grpc.export(export(4)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    let details = wire::otlp::rpc::Status::decode(err.details()).unwrap();
    assert_eq!(
        details.details[0].type_url,
        wire::otlp::rpc::RETRY_INFO_TYPE_URL
    );
    let info = wire::otlp::rpc::RetryInfo::decode(details.details[0].value.as_slice()).unwrap();
    assert_eq!(info.retry_delay.unwrap().seconds, 7);
    let throttles =
        "stack_embedded_faulted_requests_total{api=\"tempo_otlp_grpc\",fault=\"throttle\"}";
    assert_eq!(metric(a.tempo, throttles).await, 1.0);
}

#[tokio::test]
async fn the_admin_endpoint_round_trips_json_and_refuses_bad_bodies() {
    let stack = start().await;
    let a = stack.addrs();
    let set = json!({
        "loki_push": {"error_rate": 0.25, "status": 502, "latency": "1ms..3ms"},
        "tempo_query": {"outage": true, "throttle_rate": 0.5, "retry_after": 3}
    });
    let (status, text) = admin(reqwest::Method::PUT, a.loki, "", Some(&set.to_string())).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), set);
    // The same state on every port, and in the handle.
    for port in [a.mimir, a.tempo, a.otlp_http] {
        let (status, text) = admin(reqwest::Method::GET, port, "", None).await;
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), set);
    }
    assert_eq!(
        stack.faults().get(Api::LokiPush).error_rate,
        Rate::new(0.25).unwrap()
    );
    // The latency was taken, and counted.
    let url = format!("http://{}/loki/api/v1/push", a.loki);
    post(url, "fake", "application/json", loki_push(1)).await;
    let delayed = "stack_embedded_delayed_requests_total{api=\"loki_push\"}";
    assert_eq!(metric(a.loki, delayed).await, 1.0);

    // Bad bodies: 400 with the reason, nothing changed.
    let before = admin(reqwest::Method::GET, a.loki, "", None).await.1;
    for (body, reason) in [
        ("{not json", "invalid JSON body"),
        ("[1, 2]", "must be a JSON object of API name to fault"),
        (r#"{"loki": {"outage": true}}"#, "unknown API \"loki\""),
        (
            r#"{"loki_push": {"error_rate": 3}}"#,
            "loki_push.error_rate: must be a number from 0 to 1, got 3",
        ),
        (
            r#"{"loki_query": {"outage": true}, "mimir_query": {"latency": "forever"}}"#,
            "mimir_query.latency",
        ),
    ] {
        let (status, text) = admin(reqwest::Method::PUT, a.tempo, "", Some(body)).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(reason), "{body}: {text}");
    }
    assert_eq!(
        admin(reqwest::Method::GET, a.loki, "", None).await.1,
        before
    );
    // One API by path; a timed outage reads back as the time left.
    let (status, text) = admin(
        reqwest::Method::PUT,
        a.mimir,
        "/mimir_write",
        Some(r#"{"outage": "30s"}"#),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let left: Value = serde_json::from_str(&text).unwrap();
    let left = humantime::parse_duration(left["outage"].as_str().unwrap()).unwrap();
    assert!(left > std::time::Duration::ZERO && left <= std::time::Duration::from_secs(30));

    let (status, text) = admin(reqwest::Method::PUT, a.loki, "/nope", Some("{}")).await;
    assert_eq!(status, 404);
    assert!(text.contains("unknown API \"nope\""), "{text}");

    // Cleared one by null, all by DELETE.
    let (status, text) = admin(
        reqwest::Method::PUT,
        a.loki,
        "",
        Some(r#"{"loki_push": null}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!text.contains("loki_push"), "{text}");
    let (status, text) = admin(reqwest::Method::DELETE, a.loki, "", None).await;
    assert_eq!((status, text.trim()), (200, "{}"));
    assert!(stack.faults().all().is_empty());
}

#[tokio::test]
async fn stack_serve_sets_faults_from_its_flags() {
    let served = crate::serve_cli::serve(&["--fault", "loki_push=error_rate:0.5,status:500"]);
    let loki: SocketAddr = served.endpoints["addrs"]["loki"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, text) = admin(reqwest::Method::GET, loki, "", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"loki_push": {"error_rate": 0.5, "status": 500}})
    );
    let url = format!("http://{loki}/loki/api/v1/push");
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            post(url.clone(), "fake", "application/json", loki_push(i))
                .await
                .0,
        );
    }
    assert_eq!(statuses, [204, 500, 204, 500]);

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args([
            "serve",
            "--ephemeral",
            "--fault",
            "mimir_write=throttle_rate:0.5,retry_after:-1",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("mimir_write.retry_after: must be whole seconds"),
        "{stderr}"
    );
}
