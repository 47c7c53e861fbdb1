//! The `prometheus_scrape` source against a small axum exposition server of the test's own (and
//! Debian's real `prometheus-node-exporter`, when installed): samples checked one by one,
//! honor_labels both ways, target and metric relabeling, dead and broken targets, staleness,
//! file_sd reloads. Every wait is bounded; intervals are 200ms.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use collector::event::{Labels, MetricBatch, MetricSample, Signal};
use collector::output::{Output, Target, WhenFull};
use collector::queue;
use collector::selfmon::{ComponentMetrics, Registry};
use collector::sources::{ListenAddrs, Outputs, SourceContext};
use parking_lot::Mutex;
use tokio::sync::watch;
use wire::remote_write::is_stale_nan;

/// The longest any test waits for something to arrive.
const WAIT: Duration = Duration::from_secs(15);

/// What the test server serves and what it saw.
#[derive(Default)]
struct Exporter {
    body: Mutex<String>,
    hits: AtomicU64,
    last_headers: Mutex<Option<HeaderMap>>,
}

async fn serve_metrics(
    State(e): State<Arc<Exporter>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> impl IntoResponse {
    e.hits.fetch_add(1, Ordering::SeqCst);
    *e.last_headers.lock() = Some(headers);
    let mut body = e.body.lock().clone();
    if let Some(q) = query {
        body.push_str(&format!("echo_query{{q=\"{q}\"}} 1\n"));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Starts an exporter serving `body` on `/metrics`; returns it and its `127.0.0.1:PORT`.
async fn exporter(body: &str) -> (Arc<Exporter>, String) {
    let e = Arc::new(Exporter::default());
    *e.body.lock() = body.to_string();
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(serve_metrics))
        .with_state(e.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (e, addr)
}

/// A running source and what it sends.
struct Running {
    rx: queue::Receiver<MetricBatch>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    registry: Arc<Registry>,
    /// Everything received so far.
    seen: Vec<MetricSample>,
}

fn start(name: &str, config: &str) -> Running {
    let table: toml::Table = toml::from_str(config).unwrap();
    let source = collector::sources::build("prometheus_scrape", table).unwrap();
    let registry = Registry::new();
    let metrics = ComponentMetrics::new(registry.clone(), name, "source");
    let (tx, rx) = queue::bounded(64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let ctx = SourceContext {
        name: name.to_string(),
        outputs: Outputs {
            logs: Output::new(Signal::Logs, vec![], metrics.clone()),
            metrics: Output::new(
                Signal::Metrics,
                vec![Target {
                    tx,
                    when_full: WhenFull::Block,
                    name: "test".into(),
                }],
                metrics.clone(),
            ),
            traces: Output::new(Signal::Traces, vec![], metrics.clone()),
        },
        shutdown: shutdown_rx,
        metrics,
        data_dir: std::env::temp_dir(),
        listen_addrs: ListenAddrs::default(),
        started: collector::sources::Started::new().0,
    };
    let task = tokio::spawn(async move {
        source.run(ctx).await.unwrap();
    });
    Running {
        rx,
        shutdown,
        task,
        registry,
        seen: Vec::new(),
    }
}

impl Running {
    /// Reads batches until `done` holds for one of them; returns that batch.
    async fn batch_where(
        &mut self,
        what: &str,
        done: impl Fn(&[MetricSample]) -> bool,
    ) -> MetricBatch {
        let wait = async {
            loop {
                let batch = self.rx.recv().await.expect("the source stopped sending");
                self.seen.extend(batch.iter().cloned());
                if done(&batch) {
                    return batch;
                }
            }
        };
        match tokio::time::timeout(WAIT, wait).await {
            Ok(b) => b,
            Err(_) => panic!("no batch with {what} within {WAIT:?}"),
        }
    }

    /// The next scrape's batch (one holding `up`) of the target with `instance`.
    async fn scrape_of(&mut self, instance: &str) -> MetricBatch {
        self.batch_where(&format!("up of {instance}"), |b| {
            b.iter().any(|s| {
                s.name() == Some("up")
                    && s.labels.get("instance") == Some(instance)
                    && !is_stale_nan(s.value)
            })
        })
        .await
    }

    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the source stops on shutdown")
            .unwrap();
    }
}

fn value(batch: &[MetricSample], name: &str) -> f64 {
    batch
        .iter()
        .find(|s| s.name() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {batch:?}"))
        .value
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

const BODY: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="get",path="/a\"b\\c\nd"} 10
http_requests_total{method="post",path="/"} 3
# TYPE temperature gauge
temperature -1.5
# TYPE latency histogram
latency_bucket{le="0.1"} 1
latency_bucket{le="+Inf"} 2
latency_sum 0.3
latency_count 2
with_ts 7 1700000000000
"#;

#[tokio::test]
async fn scrape_gets_every_sample_with_target_labels() {
    let (exp, addr) = exporter(BODY).await;
    let mut src = start(
        "scrape_test",
        &format!(
            r#"job_name = "app"
            scrape_interval = "200ms"
            targets = [{{ address = "{addr}", labels = {{ region = "eu" }} }}]"#
        ),
    );
    let batch = src.scrape_of(&addr).await;
    let ts = batch
        .iter()
        .find(|s| s.name() == Some("up"))
        .unwrap()
        .timestamp_ms;
    let base = [
        ("instance", addr.as_str()),
        ("job", "app"),
        ("region", "eu"),
    ];
    let with = |name: &str, extra: &[(&str, &str)]| {
        let mut l = labels(&base);
        l.insert("__name__", name);
        for (k, v) in extra {
            l.insert(*k, *v);
        }
        l
    };
    let expected: Vec<(Labels, f64, i64)> = vec![
        (
            with(
                "http_requests_total",
                &[("method", "get"), ("path", "/a\"b\\c\nd")],
            ),
            10.0,
            ts,
        ),
        (
            with("http_requests_total", &[("method", "post"), ("path", "/")]),
            3.0,
            ts,
        ),
        (with("temperature", &[]), -1.5, ts),
        (with("latency_bucket", &[("le", "0.1")]), 1.0, ts),
        (with("latency_bucket", &[("le", "+Inf")]), 2.0, ts),
        (with("latency_sum", &[]), 0.3, ts),
        (with("latency_count", &[]), 2.0, ts),
        (with("with_ts", &[]), 7.0, 1_700_000_000_000),
        (with("up", &[]), 1.0, ts),
        (with("scrape_samples_scraped", &[]), 8.0, ts),
        (with("scrape_samples_post_metric_relabeling", &[]), 8.0, ts),
        (with("scrape_series_added", &[]), 8.0, ts),
    ];
    for (l, v, t) in &expected {
        let got = batch
            .iter()
            .find(|s| &*s.labels == l)
            .unwrap_or_else(|| panic!("no sample {l:?} in {batch:?}"));
        assert_eq!((got.value, got.timestamp_ms), (*v, *t), "{l:?}");
    }
    let duration = value(&batch, "scrape_duration_seconds");
    assert!((0.0..1.0).contains(&duration), "{duration}");
    assert_eq!(batch.len(), expected.len() + 1, "{batch:?}");

    // What the target was asked with.
    let headers = exp.last_headers.lock().clone().unwrap();
    let accept = headers.get("accept").unwrap().to_str().unwrap();
    assert!(accept.contains("application/openmetrics-text") && accept.contains("version=0.0.4"));
    assert_eq!(
        headers
            .get("x-prometheus-scrape-timeout-seconds")
            .unwrap()
            .to_str()
            .unwrap(),
        "0.2"
    );

    // The second scrape adds no series.
    let batch = src.scrape_of(&addr).await;
    assert_eq!(value(&batch, "scrape_series_added"), 0.0);
    let sent = src.registry.counter_sum(
        "collector_sent_items_total",
        &[("component", "scrape_test")],
    );
    assert!(sent >= 26, "{sent}");
    src.stop().await;
}

#[tokio::test]
async fn scrape_honor_labels_both_ways() {
    let (_exp, addr) = exporter("m{job=\"inner\",instance=\"i\",x=\"1\"} 1\n").await;
    for honor in [false, true] {
        let mut src = start(
            "honor",
            &format!(
                r#"scrape_interval = "200ms"
                honor_labels = {honor}
                targets = [{{ address = "{addr}" }}]"#
            ),
        );
        let batch = src.scrape_of(&addr).await;
        let m = batch.iter().find(|s| s.name() == Some("m")).unwrap();
        let expected = if honor {
            labels(&[
                ("__name__", "m"),
                ("instance", "i"),
                ("job", "inner"),
                ("x", "1"),
            ])
        } else {
            labels(&[
                ("__name__", "m"),
                ("exported_instance", "i"),
                ("exported_job", "inner"),
                ("instance", &addr),
                ("job", "honor"),
                ("x", "1"),
            ])
        };
        assert_eq!(*m.labels, expected, "honor_labels = {honor}");
        src.stop().await;
    }
}

#[tokio::test]
async fn scrape_target_relabeling_drops_rewrites_address_and_params() {
    let (exp, addr) = exporter("m 1\n").await;
    let mut src = start(
        "relabel_targets",
        &format!(
            r#"scrape_interval = "200ms"
            targets = [
              {{ address = "placeholder.invalid:1", labels = {{ real = "{addr}" }} }},
              {{ address = "{addr}", labels = {{ drop_me = "yes" }} }},
            ]
            relabel_configs = [
              {{ source_labels = ["drop_me"], regex = "yes", action = "drop" }},
              {{ source_labels = ["__address__"], target_label = "__param_q" }},
              {{ source_labels = ["__address__"], target_label = "original" }},
              {{ source_labels = ["real"], target_label = "__address__" }},
              {{ regex = "real", action = "labeldrop" }},
            ]"#
        ),
    );
    for _ in 0..3 {
        let batch = src.scrape_of(&addr).await;
        let echo = batch
            .iter()
            .find(|s| s.name() == Some("echo_query"))
            .unwrap();
        assert_eq!(echo.labels.get("q"), Some("q=placeholder.invalid%3A1"));
        assert_eq!(echo.labels.get("original"), Some("placeholder.invalid:1"));
        assert_eq!(echo.labels.get("real"), None);
    }
    assert!(src.seen.iter().all(|s| s.labels.get("drop_me").is_none()));
    assert!(exp.hits.load(Ordering::SeqCst) >= 3);
    src.stop().await;
}

#[tokio::test]
async fn scrape_metric_relabeling_drops_and_counts() {
    let (_exp, addr) = exporter(BODY).await;
    let mut src = start(
        "relabel_metrics",
        &format!(
            r#"scrape_interval = "200ms"
            targets = [{{ address = "{addr}" }}]
            metric_relabel_configs = [
              {{ source_labels = ["__name__"], regex = "latency_.*|with_ts", action = "drop" }},
              {{ source_labels = ["method"], target_label = "verb", replacement = "HTTP_$1" }},
            ]"#
        ),
    );
    let batch = src.scrape_of(&addr).await;
    assert!(
        batch
            .iter()
            .all(|s| !s.name().unwrap().starts_with("latency"))
    );
    assert_eq!(value(&batch, "scrape_samples_scraped"), 8.0);
    assert_eq!(value(&batch, "scrape_samples_post_metric_relabeling"), 3.0);
    let get = batch
        .iter()
        .find(|s| s.labels.get("method") == Some("get"))
        .unwrap();
    assert_eq!(get.labels.get("verb"), Some("HTTP_get"));
    let dropped = src.registry.counter_sum(
        "collector_discarded_items_total",
        &[("component", "relabel_metrics"), ("reason", "relabel_drop")],
    );
    assert!(dropped >= 5, "{dropped}");
    src.stop().await;
}

#[tokio::test]
async fn scrape_dead_and_broken_targets_are_down_and_counted() {
    let dead = format!("127.0.0.1:{}", stack::local::free_port().unwrap());
    let (_exp, broken) = exporter("not { a valid body\n").await;
    let mut src = start(
        "down",
        &format!(
            r#"scrape_interval = "200ms"
            sample_limit = 100
            targets = [{{ address = "{dead}" }}, {{ address = "{broken}" }}]"#
        ),
    );
    for instance in [&dead, &broken] {
        let batch = src.scrape_of(instance).await;
        let up = batch
            .iter()
            .find(|s| s.name() == Some("up") && s.labels.get("instance") == Some(instance))
            .unwrap();
        assert_eq!(up.value, 0.0, "{instance}");
        assert_eq!(value(&batch, "scrape_samples_scraped"), 0.0);
    }
    let failures = |reason| {
        src.registry.counter_sum(
            "collector_scrape_failures_total",
            &[("component", "down"), ("reason", reason)],
        )
    };
    assert!(failures("http") >= 1);
    assert!(failures("parse") >= 1);
    src.stop().await;
}

#[tokio::test]
async fn scrape_sample_limit_fails_the_scrape() {
    let (_exp, addr) = exporter(BODY).await;
    let mut src = start(
        "limited",
        &format!(
            r#"scrape_interval = "200ms"
            sample_limit = 5
            targets = [{{ address = "{addr}" }}]"#
        ),
    );
    let batch = src.scrape_of(&addr).await;
    assert_eq!(value(&batch, "up"), 0.0);
    assert!(batch.iter().all(|s| s.name() != Some("temperature")));
    src.stop().await;
}

#[tokio::test]
async fn scrape_disappearing_series_get_stale_markers() {
    let (exp, addr) = exporter("a 1\nb 2\n").await;
    let mut src = start(
        "stale",
        &format!(
            r#"scrape_interval = "200ms"
            targets = [{{ address = "{addr}" }}]"#
        ),
    );
    src.scrape_of(&addr).await;
    *exp.body.lock() = "a 1\n".to_string();
    let batch = src
        .batch_where("a stale marker for b", |b| {
            b.iter()
                .any(|s| s.name() == Some("b") && is_stale_nan(s.value))
        })
        .await;
    assert!(
        batch
            .iter()
            .any(|s| s.name() == Some("a") && s.value == 1.0)
    );
    src.stop().await;
}

#[tokio::test]
async fn scrape_file_sd_targets_come_and_go() {
    let (exp, addr) = exporter("m 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    let mut src = start(
        "files",
        &format!(
            r#"scrape_interval = "200ms"
            file_sd = {{ files = ["{}"], refresh_interval = "100ms" }}"#,
            dir.path().join("*.json").display()
        ),
    );
    std::fs::write(
        &file,
        format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "core"}}}}]"#),
    )
    .unwrap();
    let batch = src.scrape_of(&addr).await;
    let m = batch.iter().find(|s| s.name() == Some("m")).unwrap();
    assert_eq!(m.labels.get("team"), Some("core"));
    assert_eq!(m.labels.get("job"), Some("files"));
    assert!(
        m.labels
            .iter()
            .all(|(k, _)| !k.starts_with("__") || k == "__name__")
    );

    std::fs::remove_file(&file).unwrap();
    src.batch_where("stale markers of the removed target", |b| {
        b.iter()
            .any(|s| s.name() == Some("up") && is_stale_nan(s.value))
    })
    .await;
    // The target's task is gone: the exporter is not asked again.
    let hits = exp.hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(exp.hits.load(Ordering::SeqCst), hits);
    src.stop().await;
}

#[tokio::test]
async fn scrape_node_exporter_samples_carry_target_labels() {
    let Some(node) =
        stack::local::node_exporter_or_skip("scrape_node_exporter_samples_carry_target_labels")
            .await
    else {
        return;
    };
    let target = node.target();
    let mut src = start(
        "node",
        &format!(
            r#"scrape_interval = "1s"
            targets = [{{ address = "{target}", labels = {{ region = "eu-west", node_type = "worker" }} }}]"#
        ),
    );
    // The exporter may be slow on a busy machine: wait for a scrape that worked.
    let batch = src
        .batch_where("up 1 of the node exporter", |b| {
            b.iter().any(|s| s.name() == Some("up") && s.value == 1.0)
        })
        .await;
    let node_samples: Vec<&MetricSample> = batch
        .iter()
        .filter(|s| s.name().is_some_and(|n| n.starts_with("node_")))
        .collect();
    assert!(node_samples.len() > 10, "{batch:?}");
    let want = BTreeMap::from([
        ("job", "node"),
        ("instance", target.as_str()),
        ("region", "eu-west"),
        ("node_type", "worker"),
    ]);
    for s in node_samples {
        for (k, v) in &want {
            assert_eq!(s.labels.get(k), Some(*v), "{s:?}");
        }
    }
    src.stop().await;
}
