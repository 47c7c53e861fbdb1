//! The embedded stack's per-tenant ingestion rate limits over real sockets: under the limit every
//! push is stored; over it Loki, Mimir and Tempo answer 429 with their servers' wording and a
//! `Retry-After`, store nothing of the refused push, and other tenants keep their own budget;
//! `stack serve` takes the limits as flags named after the servers' settings.

// Test code through and through (clippy.toml only exempts `#[test]` fns, not helpers).
#![allow(clippy::unwrap_used)]

use prost::Message as _;
use stack::embedded::limits::{IngestLimits, RateLimit};
use stack::embedded::mimir::write::encode_series;
use stack::{EmbeddedConfig, EmbeddedStack};
use wire::loki::{Entry, PushRequest, Stream};
use wire::otlp::ExportTraceServiceRequest;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A rate so slow that the bucket does not refill measurably during a test: only the burst
/// counts, so the outcomes do not depend on timing.
const SLOW: f64 = 1e-3;

async fn start(limits: IngestLimits) -> EmbeddedStack {
    EmbeddedStack::start(EmbeddedConfig {
        limits,
        // Loki counts structured metadata too, `detected_level` among it: off, so that a push
        // weighs its lines' bytes only.
        loki_discover_log_levels: false,
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap()
}

pub(crate) async fn post(
    url: String,
    tenant: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry, r.text().await.unwrap())
}

/// The value of an unlabelled sample on a server's `/metrics`.
pub(crate) async fn metric(base: std::net::SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn mimir_refuses_a_push_over_the_sample_rate_and_stores_none_of_it() {
    let stack = start(IngestLimits {
        mimir_samples: RateLimit::new(SLOW, 10.0),
        ..IngestLimits::default()
    })
    .await;
    let now = wire::time::now_ns() / 1_000_000;
    let samples = |n: i64| (0..n).map(|i| (now - 1000 + i, i as f64)).collect();
    let url = format!("http://{}/api/v1/push", stack.addrs().mimir);
    let under = encode_series(&[(vec![("__name__", "up"), ("job", "a")], samples(6))]);
    let (status, _, _) = post(url.clone(), "t1", "application/x-protobuf", under).await;
    assert_eq!(status, 200);
    assert_eq!(stack.mimir.store.read().sample_count(), 6);

    // 5 more than the 4 left in the bucket: refused whole.
    let over = encode_series(&[(vec![("__name__", "up"), ("job", "b")], samples(5))]);
    let (status, retry, body) =
        post(url.clone(), "t1", "application/x-protobuf", over.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.starts_with("the request has been rejected because the tenant exceeded the ingestion rate limit, set to 0.001 items/s with a maximum allowed burst of 10. This limit is applied on the total number of samples, exemplars and metadata received across all distributors (err-mimir-tenant-max-ingestion-rate)"),
        "{body}"
    );
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(
        stack.mimir.store.read().sample_count(),
        6,
        "nothing of the refused push stored"
    );

    // Another tenant has its own bucket.
    let (status, _, _) = post(url, "t2", "application/x-protobuf", over).await;
    assert_eq!(status, 200);
    assert_eq!(stack.mimir.store.read().sample_count(), 11);
}

#[tokio::test]
async fn loki_refuses_a_push_over_the_byte_rate_with_lokis_message() {
    let stack = start(IngestLimits {
        loki_bytes: RateLimit::new(SLOW, 100.0),
        ..IngestLimits::default()
    })
    .await;
    let now = wire::time::now_ns();
    let push = |job: &str, lines: &[&str]| PushRequest {
        streams: vec![Stream {
            labels: format!("{{job=\"{job}\"}}"),
            entries: lines
                .iter()
                .enumerate()
                .map(|(i, l)| Entry::new(now - 1_000_000 + i as i64, l.to_string()))
                .collect(),
            hash: 0,
        }],
    };
    let url = format!("http://{}/loki/api/v1/push", stack.addrs().loki);
    let ten = "0123456789";
    let under = wire::loki::encode_json(&push("a", &[ten; 9])).unwrap();
    let (status, _, body) = post(url.clone(), "fake", "application/json", under).await;
    assert_eq!(status, 204, "{body}");
    let lines = "loki_embedded_ingested_entries_total";
    assert_eq!(metric(stack.addrs().loki, lines).await, 9.0);

    let over = wire::loki::encode_json(&push("b", &[ten, ten])).unwrap();
    let (status, retry, body) = post(url, "fake", "application/json", over).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        "Ingestion rate limit exceeded for user fake (limit: 0 bytes/sec) while attempting to ingest '2' lines totaling '20' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\n"
    );
    assert!(retry.is_some());
    assert_eq!(metric(stack.addrs().loki, lines).await, 9.0);
}

#[tokio::test]
async fn tempo_refuses_an_export_over_the_byte_rate_over_http_and_grpc() {
    let span = |id: u8| Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        name: "checkout".into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    };
    let export = |id: u8| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(id)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let size = export(1).resource_spans[0].encoded_len() as f64;
    // Room for exactly two exports.
    let stack = start(IngestLimits {
        tempo_bytes: RateLimit::new(SLOW, 2.0 * size),
        ..IngestLimits::default()
    })
    .await;
    let url = format!("http://{}/v1/traces", stack.addrs().otlp_http);
    for id in 1..=2 {
        let (status, _, _) = post(
            url.clone(),
            "t",
            "application/x-protobuf",
            export(id).encode_to_vec(),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, retry, body) = post(
        url,
        "t",
        "application/json",
        serde_json::to_vec(&export(3)).unwrap(),
    )
    .await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], 8, "RESOURCE_EXHAUSTED: {body}");
    assert_eq!(
        body["message"],
        format!("RATE_LIMITED: ingestion rate limit (0 bytes) exceeded while adding {size} bytes")
    );

    let mut grpc = wire::otlp::grpc::TraceServiceClient::connect(format!(
        "http://{}",
        stack.addrs().otlp_grpc
    ))
    .await
    .unwrap();
    let mut req = tonic::Request::new(export(4));
    req.metadata_mut()
        .insert(wire::http::TENANT_METADATA, "t".parse().unwrap());
    let err = grpc.export(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(
        err.message().starts_with("RATE_LIMITED:"),
        "{}",
        err.message()
    );
    let spans = "tempo_embedded_ingested_spans_total";
    assert_eq!(metric(stack.addrs().tempo, spans).await, 2.0);
}

#[tokio::test]
async fn stack_serve_takes_the_limits_as_the_servers_name_them() {
    let served = crate::serve_cli::serve(&[
        "--mimir-ingestion-rate",
        "0.001",
        "--mimir-ingestion-burst-size",
        "3",
    ]);
    let mimir = served.endpoints["addrs"]["mimir"].as_str().unwrap();
    let now = wire::time::now_ns() / 1_000_000;
    let push = |n: i64| {
        encode_series(&[(
            vec![("__name__", "up")],
            (0..n).map(|i| (now - 100 + i, 1.0)).collect(),
        )])
    };
    let url = format!("http://{mimir}/api/v1/push");
    let (status, _, _) = post(url.clone(), "t", "application/x-protobuf", push(3)).await;
    assert_eq!(status, 200);
    let (status, retry, body) = post(url, "t", "application/x-protobuf", push(1)).await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
    assert!(
        body.contains("set to 0.001 items/s with a maximum allowed burst of 3."),
        "{body}"
    );

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args([
            "serve",
            "--ephemeral",
            "--tempo-ingestion-rate-limit-bytes",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("Tempo ingestion_rate_limit_bytes: the rate must be above 0"),
        "{stderr}"
    );
}
