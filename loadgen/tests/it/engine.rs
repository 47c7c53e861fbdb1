//! The open-loop engine against real endpoints: the embedded stack (acknowledged pushes of every
//! payload kind, and a short driven run), an axum endpoint that refuses (errors counted per
//! status, never acknowledged), an endpoint that counts concurrency (the in-flight bound), and a
//! closed port (a fast error naming the address).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use loadgen::schedule::{Arrival, ScheduleSpec, Signal, StreamSpec};
use loadgen::send::driver::{DriveConfig, Lane, drive};
use loadgen::send::{Payload, SendError, SenderConfig, Senders, Target};
use reqwest::Url;
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::now_ns;
use wire::loki::{Entry, PushRequest, Stream};
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wire::otlp::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use wire::otlp::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};
use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest};

fn resource(device: u64) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("dev-{device}"))),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Two log entries of device `d`.
fn loki(d: u64) -> PushRequest {
    let t = now_ns();
    PushRequest {
        streams: vec![Stream {
            labels: format!("{{device=\"dev-{d}\"}}"),
            entries: vec![Entry::new(t, "hello"), Entry::new(t + 1, "world")],
            hash: 0,
        }],
    }
}

/// Three samples of device `d` (one series each).
fn remote_write(d: u64) -> WriteRequest {
    let ms = now_ns() / 1_000_000;
    WriteRequest {
        timeseries: (0..3)
            .map(|i| TimeSeries {
                labels: vec![
                    Label::new("__name__", format!("loadgen_test_{i}")),
                    Label::new("device", format!("dev-{d}")),
                ],
                samples: vec![Sample {
                    value: i as f64,
                    timestamp: ms,
                }],
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

/// One span of device `d`, trace `seq`.
fn traces(d: u64, seq: u64) -> ExportTraceServiceRequest {
    let t = now_ns() as u64;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(d),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: loadgen::canary::trace_id(0, d, seq).to_vec(),
                    span_id: vec![1; 8],
                    name: "checkout".into(),
                    start_time_unix_nano: t - 1_000_000,
                    end_time_unix_nano: t,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn otlp_metrics() -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        time_unix_nano: now_ns() as u64,
        value: Some(number_data_point::Value::AsDouble(1.0)),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(1),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "g".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![point.clone(), point],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn otlp_logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(1),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 4],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn senders(max_in_flight: usize) -> Senders {
    Senders::new(&SenderConfig {
        max_in_flight_per_target: max_in_flight,
        ..SenderConfig::default()
    })
    .unwrap()
}

fn spec(signals: &[Signal], devices: u64, rate: f64, secs: u64) -> ScheduleSpec {
    ScheduleSpec {
        streams: signals
            .iter()
            .flat_map(|&s| StreamSpec::for_devices(0..devices, s, rate, Arrival::Poisson))
            .collect(),
        duration: Duration::from_secs(secs),
        warmup: Duration::ZERO,
        ramp: Duration::ZERO,
        rate_multiplier: 1.0,
    }
}

fn target(url: &Url) -> Target {
    Target {
        url: url.clone(),
        tenant: None,
    }
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
    let s = senders(4);

    let o = s.send_loki(&ep.loki, ep.tenant.as_deref(), &loki(1)).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 2);
    let o = s
        .send_remote_write(&ep.prometheus_write, ep.tenant.as_deref(), &remote_write(1))
        .await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 3);
    let o = s.send_otlp_traces(&ep.tempo_otlp_http, &traces(1, 1)).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 1);
}

#[tokio::test]
async fn a_driven_run_against_the_embedded_stack_is_all_acknowledged() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ep = stack.endpoints().clone();
    let mut lanes: BTreeMap<Signal, Lane> = BTreeMap::new();
    lanes.insert(
        Signal::Logs,
        Lane {
            target: target(&ep.loki),
            make: Box::new(|e| Payload::Loki(loki(e.device))),
        },
    );
    lanes.insert(
        Signal::Metrics,
        Lane {
            target: target(&ep.prometheus_write),
            make: Box::new(|e| Payload::RemoteWrite(remote_write(e.device))),
        },
    );
    let mut seq = 0;
    lanes.insert(
        Signal::Traces,
        Lane {
            target: target(&ep.tempo_otlp_http),
            make: Box::new(move |e| {
                seq += 1;
                Payload::OtlpTraces(traces(e.device, seq))
            }),
        },
    );
    let mut spec = spec(&Signal::ALL, 20, 2.0, 2);
    spec.warmup = Duration::from_millis(500);
    let cfg = DriveConfig {
        spec,
        seed: 5,
        interval: Duration::from_millis(500),
    };
    let report = drive(&cfg, lanes, &senders(8)).await.unwrap();
    for s in Signal::ALL {
        let t = &report.signals[s.as_str()];
        assert!(t.sent > 0, "{s:?}");
        assert!(t.warmup_sent > 0, "{s:?}");
        assert_eq!(t.acknowledged, t.sent, "{s:?}: {:?}", t.errors);
        assert!(t.errors.is_empty());
        assert!(t.items_per_second > 0.0);
    }
    let sent: u64 = report.intervals.iter().map(|i| i.sent["logs"]).sum();
    assert_eq!(sent, report.signals["logs"].sent);
}

#[tokio::test]
async fn refusals_are_counted_per_status_and_never_acknowledged() {
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
    let o = s.send_loki(&url, Some("t1"), &loki(1)).await;
    match &o.result {
        Err(SendError::Status { status, body, .. }) => {
            assert_eq!(*status, 500);
            assert_eq!(body, "boom");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.error_key().as_deref(), Some("500"));

    let mut lanes: BTreeMap<Signal, Lane> = BTreeMap::new();
    lanes.insert(
        Signal::Logs,
        Lane {
            target: target(&url),
            make: Box::new(|e| Payload::Loki(loki(e.device))),
        },
    );
    lanes.insert(
        Signal::Traces,
        Lane {
            target: target(&url),
            make: Box::new(|e| Payload::OtlpTraces(traces(e.device, 1))),
        },
    );
    let cfg = DriveConfig {
        spec: spec(&[Signal::Logs, Signal::Traces], 10, 3.0, 1),
        seed: 2,
        interval: Duration::from_secs(1),
    };
    let r = drive(&cfg, lanes, &s).await.unwrap();
    let (logs, traces) = (&r.signals["logs"], &r.signals["traces"]);
    assert!(logs.sent > 0 && traces.sent > 0);
    assert_eq!(logs.acknowledged + traces.acknowledged, 0);
    assert_eq!(
        logs.errors,
        BTreeMap::from([("500".to_string(), logs.sent)])
    );
    assert_eq!(
        traces.errors,
        BTreeMap::from([("429".to_string(), traces.sent)])
    );
    let errors: u64 = r.intervals.iter().map(|i| i.errors["logs"]).sum();
    assert_eq!(errors, logs.sent);
}

#[tokio::test]
async fn otlp_metrics_and_logs_go_to_their_paths_as_protobuf() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let record = |path: &'static str, seen: Arc<parking_lot::Mutex<Vec<String>>>| {
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
    let o = s.send_otlp_metrics(&url, &otlp_metrics()).await;
    assert!(o.acknowledged(), "{:?}", o.result);
    assert_eq!(o.items, 2);
    let o = s.send_otlp_logs(&url, &otlp_logs()).await;
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
    let mut lanes = BTreeMap::new();
    lanes.insert(
        Signal::Logs,
        Lane {
            target: target(&url),
            make: Box::new(|e| Payload::Loki(loki(e.device))),
        },
    );
    // ~200 requests in 1 s against 50 ms each: unbounded, ~10 would be in flight at once.
    let cfg = DriveConfig {
        spec: spec(&[Signal::Logs], 100, 2.0, 1),
        seed: 3,
        interval: Duration::from_secs(1),
    };
    let r = drive(&cfg, lanes, &senders(2)).await.unwrap();
    assert_eq!(r.signals["logs"].acknowledged, r.signals["logs"].sent);
    assert!(
        max.load(Ordering::SeqCst) <= 2,
        "{}",
        max.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn an_unreachable_target_fails_with_its_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/")).unwrap();
    let o = senders(1).send_loki(&url, None, &loki(1)).await;
    let err = o.result.unwrap_err();
    assert_eq!(err.kind(), "connect");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert_eq!(o.items, 2);
}

#[tokio::test]
async fn a_lane_is_required_for_every_signal_scheduled() {
    let cfg = DriveConfig {
        spec: spec(&[Signal::Metrics], 1, 1.0, 1),
        seed: 1,
        interval: Duration::from_secs(1),
    };
    assert!(drive(&cfg, BTreeMap::new(), &senders(1)).await.is_err());
}
