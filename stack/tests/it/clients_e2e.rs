//! The typed clients against the embedded stack over real sockets: what every test and verifier
//! will do. Push through each write API, read back through each query API, with tenants kept
//! apart, and failures that show the query sent and what came back.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use stack::client::loki::RangeOptions;
use stack::client::{LokiClient, PromClient, TempoClient};
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::now_ns;
use wire::loki::{Entry, PushRequest, Stream};
use wire::otlp::Encoding;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest};

#[tokio::test]
async fn loki_client_round_trip_with_tenants() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let mut a = stack.endpoints().clone();
    a.tenant = Some("store-a".into());
    let mut b = stack.endpoints().clone();
    b.tenant = Some("store-b".into());
    let (la, lb) = (LokiClient::new(&a), LokiClient::new(&b));
    la.ready().await.unwrap();

    let t = now_ns() - 60_000_000_000;
    let req = PushRequest {
        streams: vec![Stream {
            labels: r#"{node_type="pos", region="eu-west", device="pos-001"}"#.into(),
            entries: (0..5)
                .map(|i| {
                    Entry::new(
                        t + i * 1_000_000,
                        format!(r#"{{"level":"info","seq":{i}}}"#),
                    )
                })
                .collect(),
            hash: 0,
        }],
    };
    la.push(&req).await.unwrap();
    lb.push_json(&req).await.unwrap();

    let opts = RangeOptions {
        start_ns: t - 1_000_000_000,
        end_ns: t + 1_000_000_000,
        limit: Some(100),
        ..RangeOptions::default()
    };
    let res = la
        .query_range(r#"{node_type="pos"} | json | seq >= 3"#, &opts)
        .await
        .unwrap();
    // `| json` makes each seq value a stream of its own (Loki orders streams by labels).
    let mut lines = res.lines();
    lines.sort();
    assert_eq!(
        lines,
        vec![r#"{"level":"info","seq":3}"#, r#"{"level":"info","seq":4}"#]
    );
    let count = la
        .query_range(
            r#"sum by (region) (count_over_time({node_type="pos"}[1m]))"#,
            &opts,
        )
        .await
        .unwrap();
    assert!(count.metric().is_some(), "{count:?}");
    assert!(la.labels().await.unwrap().contains(&"device".to_string()));

    // Tenant b has its own copy; an unknown tenant sees nothing.
    assert_eq!(
        lb.query_range(r#"{device="pos-001"}"#, &opts)
            .await
            .unwrap()
            .lines()
            .len(),
        5
    );
    let mut c = stack.endpoints().clone();
    c.tenant = Some("nobody".into());
    let none = LokiClient::new(&c)
        .query_range(r#"{device="pos-001"}"#, &opts)
        .await
        .unwrap();
    assert!(none.lines().is_empty());

    // A failure says what was asked and what came back.
    let err = la
        .query_range("{node_type=}", &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("400"), "{err}");
    assert!(
        err.contains("query_range") && err.contains("node_type"),
        "{err}"
    );
    assert!(err.contains("parse error"), "{err}");
}

#[tokio::test]
async fn prom_client_round_trip() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let prom = PromClient::new(stack.endpoints());
    prom.ready().await.unwrap();
    let t_ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let series = |device: &str, values: &[f64]| TimeSeries {
        labels: vec![
            Label::new("__name__", "pos_transactions_total"),
            Label::new("device", device),
            Label::new("region", "eu-west"),
        ],
        samples: values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                value: *v,
                timestamp: t_ms + i as i64 * 15_000,
            })
            .collect(),
        exemplars: vec![],
    };
    prom.remote_write(&WriteRequest {
        timeseries: vec![
            series("pos-001", &[10.0, 20.0, 30.0]),
            series("pos-002", &[5.0, 5.0, 8.0]),
        ],
        metadata: vec![],
    })
    .await
    .unwrap();
    let at = (t_ms + 30_000) as f64 / 1000.0;
    let res = prom
        .query("sum by (region) (pos_transactions_total)", Some(at))
        .await
        .unwrap();
    let v = res.vector().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].metric.get("region").map(String::as_str),
        Some("eu-west")
    );
    assert_eq!(v[0].sample.value, 38.0);
    let m = prom
        .query_range(
            "pos_transactions_total{device=\"pos-001\"}",
            at - 30.0,
            at,
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    let values: Vec<f64> = m.matrix().unwrap()[0]
        .samples
        .iter()
        .map(|s| s.value)
        .collect();
    assert_eq!(values, vec![10.0, 20.0, 30.0]);
    assert_eq!(
        prom.label_values("device").await.unwrap(),
        vec!["pos-001".to_string(), "pos-002".to_string()]
    );
    // Bad input through the client: the 400 and Mimir's reason reach the caller.
    let mut bad = series("pos-003", &[1.0]);
    bad.labels.reverse();
    let err = prom
        .remote_write(&WriteRequest {
            timeseries: vec![bad],
            metadata: vec![],
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("400") && err.contains("not sorted"), "{err}");
}

#[tokio::test]
async fn tempo_client_round_trip_both_encodings() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let tempo = TempoClient::new(stack.endpoints());
    tempo.ready().await.unwrap();
    let now = now_ns() as u64;
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let trace = |id: u8| wire::otlp::ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "pos"), attr("region", "eu-west")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![id; 16],
                    span_id: vec![id; 8],
                    name: "checkout".into(),
                    start_time_unix_nano: now - 2_000_000_000,
                    end_time_unix_nano: now - 1_000_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    tempo.push(&trace(0x11), Encoding::Protobuf).await.unwrap();
    tempo.push(&trace(0x22), Encoding::Json).await.unwrap();
    for id in [0x11u8, 0x22] {
        let hex = hex::encode([id; 16]);
        let got = tempo.trace_by_id(&hex).await.unwrap().expect("trace found");
        assert_eq!(got[0].scope_spans[0].spans[0].name, "checkout");
        assert!(tempo.trace_by_id_v2(&hex).await.unwrap().is_some());
    }
    assert!(
        tempo
            .trace_by_id(&hex::encode([0x33u8; 16]))
            .await
            .unwrap()
            .is_none()
    );
}
