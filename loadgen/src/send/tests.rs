//! The transport over real sockets: every payload kind acknowledged by the embedded stack,
//! refusals kept with their status and body, OTLP paths and content type, the in-flight bound
//! per target, and a closed port failing fast with its address. (Moved from the engine's old
//! integration tests; the timing of sends is tested in `engine/tests.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use stack::{EmbeddedConfig, EmbeddedStack};

use super::*;
use crate::payload::Payload;
use crate::payload::tests::{loki, otlp_logs, otlp_metrics, remote_write, traces};

fn senders(max_in_flight: usize) -> Senders {
    Senders::new(&SenderConfig {
        max_in_flight_per_target: max_in_flight,
        ..SenderConfig::default()
    })
    .unwrap()
}

fn target(url: &Url, tenant: Option<&str>) -> Target {
    Target {
        url: url.clone(),
        tenant: tenant.map(str::to_string),
    }
}

async fn send(s: &Senders, payload: &Payload, target: &Target) -> Outcome {
    s.send(payload.prepare(target)).await
}

/// A server on a free port; returns its base URL.
async fn serve(app: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Url::parse(&format!("http://{addr}/")).unwrap()
}

#[tokio::test]
async fn every_payload_kind_is_acknowledged_by_the_embedded_stack() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ep = stack.endpoints().clone();
    let tenant = ep.tenant.as_deref();
    let s = senders(4);

    let o = send(&s, &Payload::Loki(loki(1)), &target(&ep.loki, tenant)).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 2);
    let rw = Payload::RemoteWrite(remote_write(1));
    let o = send(&s, &rw, &target(&ep.prometheus_write, tenant)).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 3);
    let t = Payload::OtlpTraces(traces(1, 1));
    let o = send(&s, &t, &target(&ep.tempo_otlp_http, None)).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 1);
}

#[tokio::test]
async fn refusals_keep_their_status_and_body_and_are_never_acknowledged() {
    let app = Router::new()
        .route(
            "/loki/api/v1/push",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/v1/traces",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        );
    let url = serve(app).await;
    let s = senders(4);
    let o = send(&s, &Payload::Loki(loki(1)), &target(&url, Some("t1"))).await;
    match &o.result {
        Err(SendError::Status { status, body, .. }) => {
            assert_eq!(*status, 500);
            assert_eq!(body, "boom");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.error_key().as_deref(), Some("500"));
    assert!(!o.acknowledged());
    let o = send(&s, &Payload::OtlpTraces(traces(1, 1)), &target(&url, None)).await;
    assert_eq!(o.error_key().as_deref(), Some("429"));
    assert_eq!(o.items, 1);
}

#[tokio::test]
async fn otlp_metrics_and_logs_go_to_their_paths_as_protobuf() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = |path: &'static str, seen: Arc<Mutex<Vec<String>>>| {
        post(move |h: HeaderMap| async move {
            let ct = h["content-type"].to_str().unwrap().to_string();
            seen.lock().push(format!("{path} {ct}"));
            StatusCode::OK
        })
    };
    let app = Router::new()
        .route("/otlp/v1/metrics", record("metrics", seen.clone()))
        .route("/otlp/v1/logs", record("logs", seen.clone()));
    let url = serve(app).await.join("otlp").unwrap();
    let s = senders(2);
    let o = send(
        &s,
        &Payload::OtlpMetrics(otlp_metrics()),
        &target(&url, None),
    )
    .await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 2);
    let o = send(&s, &Payload::OtlpLogs(otlp_logs()), &target(&url, None)).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 4);
    assert_eq!(
        *seen.lock(),
        [
            "metrics application/x-protobuf",
            "logs application/x-protobuf"
        ]
    );
}

#[tokio::test]
async fn in_flight_requests_per_target_are_bounded() {
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (now.clone(), max.clone());
    let app = Router::new().route(
        "/loki/api/v1/push",
        post(move || {
            let (n, m) = (n.clone(), m.clone());
            async move {
                let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(cur, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let url = serve(app).await;
    let s = senders(2);
    // Twenty at once; unbounded, all twenty would be in flight together.
    let mut tasks = tokio::task::JoinSet::new();
    for d in 0..20 {
        let (s, t) = (s.clone(), target(&url, None));
        tasks.spawn(async move { send(&s, &Payload::Loki(loki(d)), &t).await });
    }
    while let Some(o) = tasks.join_next().await {
        let o = o.unwrap();
        assert!(o.acknowledged(), "{:?}", o.result);
    }
    let max = max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max}");
}

#[tokio::test]
async fn an_unreachable_target_fails_with_its_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/")).unwrap();
    let o = send(&senders(1), &Payload::Loki(loki(1)), &target(&url, None)).await;
    assert_eq!(o.items, 2);
    let err = o.result.unwrap_err();
    assert_eq!(err.kind(), "connect");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn authority_is_host_and_port() {
    assert_eq!(
        authority(&Url::parse("https://x.example/").unwrap()),
        "x.example:443"
    );
}

#[test]
fn error_keys() {
    let s = SendError::Status {
        url: "u".into(),
        status: 429,
        body: String::new(),
    };
    assert_eq!(s.kind(), "429");
    let c = SendError::Connect {
        addr: "127.0.0.1:9".into(),
        detail: "refused".into(),
    };
    assert_eq!(c.kind(), "connect");
    assert!(c.to_string().contains("127.0.0.1:9"));
}
