//! The central gateway through the runtime, over real sockets: OTLP logs, metrics and traces and
//! Loki pushes come in, stages stamp node metadata from the environment, writers send each signal
//! to the embedded stack, and everything is read back through the query APIs. Then overload: a
//! backend that hangs fills the bounded queues and the receiver answers 429 instead of growing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use collector::config::Config;
use collector::runtime::Collector;
use collector::sources::otlp::test_data;
use stack::client::loki::RangeOptions;
use stack::client::{LokiClient, PromClient, TempoClient};
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::{eventually, now_ns};
use wire::otlp::proto::metrics::v1::metric;

/// Moves the test data's 2023 times to a minute ago (real backends refuse week-old data).
fn shift(t: &mut u64, by: u64) {
    if *t != 0 {
        *t += by;
    }
}

fn gateway_config(stack: &EmbeddedStack, data_dir: &std::path::Path) -> String {
    let e = stack.endpoints();
    format!(
        r#"
data_dir = "{data}"
[server]
address = "127.0.0.1:0"

[sources.otlp]
type = "otlp"
http_address = "127.0.0.1:0"
grpc_address = "127.0.0.1:0"

[sources.pos_push]
type = "loki_push"
address = "127.0.0.1:0"
use_incoming_timestamp = true

[process.log_meta]
inputs = ["otlp", "pos_push"]
[[process.log_meta.stages]]
type = "logs.static_labels"
values = {{ region = "${{REGION}}", location = "${{LOCATION}}" }}

[process.metric_meta]
inputs = ["otlp"]
[[process.metric_meta.stages]]
type = "metrics.static_labels"
values = {{ region = "${{REGION}}", location = "${{LOCATION}}" }}

[process.trace_meta]
inputs = ["otlp"]
[[process.trace_meta.stages]]
type = "traces.resource_attributes"
values = {{ region = "${{REGION}}" }}

[writers.loki]
type = "loki"
inputs = ["log_meta"]
url = "{loki}loki/api/v1/push"
batch_wait = "50ms"

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["metric_meta"]
url = "{mimir}"
batch_wait = "50ms"

[writers.tempo]
type = "otlp"
protocol = "http"
inputs = ["trace_meta"]
url = "{tempo}"
batch_wait = "50ms"
"#,
        data = data_dir.display(),
        loki = e.loki,
        mimir = e.prometheus_write,
        tempo = e.tempo_otlp_http.as_str().trim_end_matches('/'),
    )
}

fn env(name: &str) -> Option<String> {
    match name {
        "REGION" => Some("eu-west".into()),
        "LOCATION" => Some("store-101".into()),
        _ => None,
    }
}

#[tokio::test]
async fn otlp_and_loki_push_reach_every_backend_with_node_labels() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = Config::parse(&gateway_config(&stack, data.path()), "gateway.toml", &env).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();
    let otlp = collector
        .listen_addrs()
        .wait_for("otlp", Duration::from_secs(10))
        .await
        .unwrap();
    let push = collector
        .listen_addrs()
        .wait_for("pos_push", Duration::from_secs(10))
        .await
        .unwrap();
    let by = now_ns() as u64 - 60_000_000_000 - test_data::T0;

    let mut logs = test_data::logs_request();
    for r in logs
        .resource_logs
        .iter_mut()
        .flat_map(|r| r.scope_logs.iter_mut())
        .flat_map(|s| s.log_records.iter_mut())
    {
        shift(&mut r.time_unix_nano, by);
        shift(&mut r.observed_time_unix_nano, by);
    }
    let mut metrics = test_data::metrics_request();
    for m in metrics
        .resource_metrics
        .iter_mut()
        .flat_map(|r| r.scope_metrics.iter_mut())
        .flat_map(|s| s.metrics.iter_mut())
    {
        match m.data.as_mut() {
            Some(metric::Data::Gauge(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| shift(&mut p.time_unix_nano, by)),
            Some(metric::Data::Sum(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| shift(&mut p.time_unix_nano, by)),
            Some(metric::Data::Histogram(h)) => h
                .data_points
                .iter_mut()
                .for_each(|p| shift(&mut p.time_unix_nano, by)),
            Some(metric::Data::Summary(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| shift(&mut p.time_unix_nano, by)),
            _ => {}
        }
    }
    let mut traces = test_data::traces_request();
    for s in traces
        .resource_spans
        .iter_mut()
        .flat_map(|r| r.scope_spans.iter_mut())
        .flat_map(|s| s.spans.iter_mut())
    {
        shift(&mut s.start_time_unix_nano, by);
        shift(&mut s.end_time_unix_nano, by);
    }
    let http = reqwest::Client::new();
    for (path, body) in [
        ("logs", prost::Message::encode_to_vec(&logs)),
        ("metrics", prost::Message::encode_to_vec(&metrics)),
        ("traces", prost::Message::encode_to_vec(&traces)),
    ] {
        let r = http
            .post(format!("http://{otlp}/v1/{path}"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "/v1/{path}");
    }
    // A POS pushing its JSON log straight to the Loki push API of the gateway.
    let ts = (now_ns() - 30_000_000_000).to_string();
    let body = serde_json::json!({"streams": [{"stream": {"job": "pos", "device": "pos-001"},
        "values": [[ts, "{\"level\":\"info\",\"msg\":\"receipt printed\"}"]]}]});
    let r = http
        .post(format!("http://{push}/loki/api/v1/push"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Logs in Loki, with the OTLP mapping's labels and the node's.
    let loki = LokiClient::new(stack.endpoints());
    let window = RangeOptions {
        start_ns: now_ns() - 3_600_000_000_000,
        end_ns: now_ns(),
        limit: Some(100),
        ..RangeOptions::default()
    };
    let res = eventually("OTLP logs in Loki", || {
        let (loki, window) = (loki.clone(), window);
        async move {
            let r = loki
                .query_range(
                    r#"{service_name="pos-checkout", region="eu-west"}"#,
                    &window,
                )
                .await
                .ok()?;
            (!r.lines().is_empty()).then_some(r)
        }
    })
    .await;
    assert!(
        res.lines().contains(&"checkout completed"),
        "{:?}",
        res.lines()
    );
    let stream = &res.streams().unwrap()[0];
    assert_eq!(
        stream.labels.get("location").map(String::as_str),
        Some("store-101")
    );
    let pos = eventually("pushed log in Loki", || {
        let (loki, window) = (loki.clone(), window);
        async move {
            let r = loki
                .query_range(
                    r#"{job="pos", location="store-101"} | json | level="info""#,
                    &window,
                )
                .await
                .ok()?;
            (!r.lines().is_empty()).then_some(r)
        }
    })
    .await;
    assert_eq!(
        pos.lines(),
        vec![r#"{"level":"info","msg":"receipt printed"}"#]
    );

    // Metrics in Mimir, with job/instance from the resource and the node's labels.
    let prom = PromClient::new(stack.endpoints());
    let series = eventually("OTLP metrics in Mimir", || {
        let prom = prom.clone();
        async move {
            let r = prom
                .query("{region=\"eu-west\", location=\"store-101\"}", None)
                .await
                .ok()?;
            let v = r.vector()?.to_vec();
            (!v.is_empty()).then_some(v)
        }
    })
    .await;
    assert!(
        series
            .iter()
            .all(|s| s.metric.get("instance").map(String::as_str) == Some("till-07")),
        "{series:?}"
    );

    // The trace in Tempo, with the node's region on its resource.
    let tempo = TempoClient::new(stack.endpoints());
    let id = hex::encode(test_data::TRACE_ID);
    let trace = eventually("trace in Tempo", || {
        let (tempo, id) = (tempo.clone(), id.clone());
        async move { tempo.trace_by_id(&id).await.ok().flatten() }
    })
    .await;
    let attrs = &trace[0].resource.as_ref().unwrap().attributes;
    assert!(attrs.iter().any(|kv| kv.key == "region"), "{attrs:?}");
    assert_eq!(
        trace
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum::<usize>(),
        2
    );

    let reg = collector.registry().clone();
    collector.shutdown().await;
    for c in ["log_meta", "metric_meta", "trace_meta"] {
        let got = reg.counter_sum("collector_received_items_total", &[("component", c)]);
        let out = reg.counter_sum("collector_sent_items_total", &[("component", c)])
            + reg.counter_sum("collector_discarded_items_total", &[("component", c)]);
        assert!(
            got > 0 && got == out,
            "{c}: received {got}, sent + discarded {out}"
        );
    }
}

#[tokio::test]
async fn a_hanging_backend_turns_into_429_not_memory() {
    // A "Loki" that accepts connections and never answers.
    let app = axum::Router::new().route(
        "/loki/api/v1/push",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            ""
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
data_dir = "{data}"
[server]
enabled = false
[sources.push]
type = "loki_push"
address = "127.0.0.1:0"
[writers.loki]
type = "loki"
inputs = ["push"]
url = "http://{hang}/loki/api/v1/push"
queue_capacity = 1
batch_wait = "10ms"
batch_size = 100
timeout = "30s"
drain_timeout = "500ms"
"#,
        data = data.path().display()
    );
    let cfg = Config::parse(&config, "gateway.toml", &|_| None).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();
    let push = collector
        .listen_addrs()
        .wait_for("push", Duration::from_secs(10))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..200 {
        let ts = (now_ns() - 1_000_000_000).to_string();
        let body = serde_json::json!({"streams": [{"stream": {"job": "pos"},
            "values": [[ts, format!("line {i} {}", "x".repeat(200))]]}]});
        let r = http
            .post(format!("http://{push}/loki/api/v1/push"))
            .json(&body)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "never pushed back: {statuses:?}"
    );
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 204),
        "{statuses:?}"
    );
    let reg = collector.registry().clone();
    collector.shutdown().await;
    let c = |name: &str, comp: &str| reg.counter_sum(name, &[("component", comp)]);
    let accepted = c("collector_sent_items_total", "push");
    assert_eq!(
        accepted as usize,
        statuses.len() - 1,
        "every 204 was passed on"
    );
    assert!(
        c("collector_discarded_items_total", "push") >= 1,
        "the 429 is counted"
    );
    // What the hanging backend never acknowledged is counted by the writer, not lost silently.
    assert_eq!(c("collector_sent_items_total", "loki"), 0);
    assert_eq!(c("collector_discarded_items_total", "loki"), accepted);
}
