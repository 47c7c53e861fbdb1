//! A backend outage through the whole runtime (Loki push receiver → loki writer → a fake Loki
//! that answers 503 while it is "down"): nothing a receiver acknowledged is lost to the outage,
//! and a queue bounded in bytes turns a stopped backend into 429s, its bytes gauge never above
//! the bound. Asserted on the collector's self-metrics and on what the backend stored; waits are
//! bounded only so that a bug cannot hang the suite.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use collector::config::Config;
use collector::runtime::Collector;
use collector::selfmon::{ComponentMetrics, Registry};
use parking_lot::Mutex;
use testkit::now_ns;

/// A Loki that answers 503 while `down`, and stores pushes otherwise.
#[derive(Default)]
struct FakeLoki {
    down: AtomicBool,
    refused: AtomicUsize,
    lines: Mutex<Vec<String>>,
}

async fn push(State(f): State<Arc<FakeLoki>>, body: Bytes) -> impl IntoResponse {
    if f.down.load(Ordering::SeqCst) {
        f.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "ingester unavailable").into_response();
    }
    let req = wire::loki::decode_protobuf(&body, 1 << 26).unwrap();
    f.lines.lock().extend(
        req.streams
            .into_iter()
            .flat_map(|s| s.entries.into_iter().map(|e| e.line)),
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn fake_loki() -> (String, Arc<FakeLoki>) {
    let f = Arc::new(FakeLoki::default());
    let app = axum::Router::new()
        .route("/loki/api/v1/push", axum::routing::post(push))
        .with_state(f.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/loki/api/v1/push"), f)
}

/// A collector: Loki push receiver straight into a loki writer with `writer` keys.
async fn start(url: &str, writer: &str, data: &std::path::Path) -> (Collector, String) {
    start_with(url, "", "push", writer, data).await
}

/// The same with `middle` components between, the writer reading `input`.
async fn start_with(
    url: &str,
    middle: &str,
    input: &str,
    writer: &str,
    data: &std::path::Path,
) -> (Collector, String) {
    let config = format!(
        r#"
data_dir = "{data}"
[server]
enabled = false
[sources.push]
type = "loki_push"
address = "127.0.0.1:0"
{middle}
[writers.loki]
type = "loki"
inputs = ["{input}"]
url = "{url}"
batch_wait = "10ms"
min_backoff = "10ms"
max_backoff = "100ms"
timeout = "2s"
drain_timeout = "2s"
{writer}
"#,
        data = data.display()
    );
    let cfg = Config::parse(&config, "outage.toml", &|_| None).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();
    let addr = collector
        .listen_addrs()
        .wait_for("push", Duration::from_secs(10))
        .await
        .unwrap();
    (collector, format!("http://{addr}/loki/api/v1/push"))
}

/// Pushes one stream of `lines`; the status.
async fn push_lines(http: &reqwest::Client, url: &str, lines: &[String]) -> reqwest::Response {
    let ts = (now_ns() - 1_000_000_000).to_string();
    let values: Vec<_> = lines.iter().map(|l| serde_json::json!([ts, l])).collect();
    let body = serde_json::json!({"streams": [{"stream": {"job": "pos"}, "values": values}]});
    http.post(url).json(&body).send().await.unwrap()
}

fn writer_metrics(reg: &Arc<Registry>) -> ComponentMetrics {
    ComponentMetrics::new(reg.clone(), "loki", "writer")
}

/// An outage far longer than what ten retries at this backoff cover (≤ 1 s): every line the
/// receiver answered 204 for arrives once the backend is back; none is given up.
#[tokio::test]
async fn an_outage_loses_nothing_that_was_acknowledged() {
    let (url, loki) = fake_loki().await;
    loki.down.store(true, Ordering::SeqCst);
    let data = tempfile::tempdir().unwrap();
    let (collector, push_url) = start(&url, "queue_max_bytes = \"256KiB\"", data.path()).await;
    let http = reqwest::Client::new();
    let mut acked = BTreeSet::new();
    let mut pushed_back = 0;
    // Push for the outage's length: the writer retries, its queue fills, the receiver pushes back.
    let outage_ends = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut i = 0;
    while tokio::time::Instant::now() < outage_ends {
        let lines: Vec<String> = (0..10).map(|j| format!("push {i} line {j}")).collect();
        let r = push_lines(&http, &push_url, &lines).await;
        match r.status().as_u16() {
            204 => acked.extend(lines),
            429 => pushed_back += 1,
            other => panic!("unexpected {other}"),
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m = writer_metrics(collector.registry());
    assert!(
        m.retries().get() > 10,
        "the outage outlasted ten retries: {}",
        m.retries().get()
    );
    assert!(loki.refused.load(Ordering::SeqCst) > 0);
    loki.down.store(false, Ordering::SeqCst);
    let want = acked.len();
    for _ in 0..1500 {
        if loki.lines.lock().len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got: BTreeSet<String> = loki.lines.lock().iter().cloned().collect();
    let missing: Vec<_> = acked.difference(&got).take(5).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let reg = collector.registry().clone();
    collector.shutdown().await;
    let c = |name: &str, filter: &[(&str, &str)]| reg.counter_sum(name, filter);
    assert_eq!(
        c(
            "collector_discarded_items_total",
            &[("component", "loki"), ("reason", "retries_exhausted")]
        ),
        0
    );
    assert_eq!(
        c("collector_discarded_items_total", &[("component", "loki")]),
        0
    );
    assert_eq!(
        c("collector_sent_items_total", &[("component", "loki")]),
        want as u64
    );
    // What the receiver pushed back on it counted (refused, not lost silently).
    assert_eq!(
        c("collector_sent_items_total", &[("component", "push")]),
        want as u64
    );
    let _ = pushed_back;
}

/// A stopped backend and a small `queue_max_bytes`: pushes get 429 with Retry-After before the
/// queue holds more than its bound, and the gauges say how full it is while it is full.
#[tokio::test]
async fn a_stopped_backend_turns_into_429_within_the_queue_bytes() {
    const BOUND: i64 = 64 * 1024;
    let (url, loki) = fake_loki().await;
    loki.down.store(true, Ordering::SeqCst);
    let data = tempfile::tempdir().unwrap();
    let (collector, push_url) = start(
        &url,
        &format!("queue_max_bytes = {BOUND}\nbatch_size = 4096"),
        data.path(),
    )
    .await;
    let m = writer_metrics(collector.registry());
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..2000 {
        // ~4 KB of lines a push.
        let lines: Vec<String> = (0..4)
            .map(|j| format!("push {i} line {j} {}", "x".repeat(1000)))
            .collect();
        let r = push_lines(&http, &push_url, &lines).await;
        let status = r.status().as_u16();
        statuses.push(status);
        let bytes = m.queue_bytes().get();
        assert!(bytes <= BOUND, "queue at {bytes} bytes, above {BOUND}");
        if status == 429 {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
        assert_eq!(status, 204);
    }
    assert_eq!(statuses.last(), Some(&429), "never pushed back");
    // Full, and the gauges say so (no receive is needed to update them).
    assert!(
        m.queue_bytes().get() > BOUND / 2,
        "{}",
        m.queue_bytes().get()
    );
    assert!(m.queue_depth().get() > 0);
    let reg = collector.registry().clone();
    collector.shutdown().await;
    let accepted = reg.counter_sum("collector_sent_items_total", &[("component", "push")]);
    assert_eq!(accepted as usize, (statuses.len() - 1) * 4);
    // The stop drains within drain_timeout and counts what the dead backend never took.
    assert_eq!(
        reg.counter_sum(
            "collector_discarded_items_total",
            &[("component", "loki"), ("reason", "shutdown")]
        ),
        accepted
    );
    assert_eq!(m.queue_bytes().get(), 0);
}

/// A stop while the backend is down, with a process component between receiver and writer:
/// both queues full, the drain deadline passes, and every acknowledged line is counted as
/// `shutdown` by one of them (none vanishes with a queue).
#[tokio::test]
async fn a_stop_with_the_backend_down_counts_every_acknowledged_line() {
    let (url, loki) = fake_loki().await;
    loki.down.store(true, Ordering::SeqCst);
    let data = tempfile::tempdir().unwrap();
    let middle = r#"
[process.tag]
inputs = ["push"]
queue_max_bytes = "32KiB"
[[process.tag.stages]]
type = "logs.static_labels"
values = { region = "eu" }
"#;
    let (collector, push_url) = start_with(
        &url,
        middle,
        "tag",
        "queue_max_bytes = \"32KiB\"\nbatch_size = 2048",
        data.path(),
    )
    .await;
    let http = reqwest::Client::new();
    let mut acked = 0u64;
    for i in 0..2000 {
        let lines: Vec<String> = (0..4)
            .map(|j| format!("push {i} line {j} {}", "y".repeat(500)))
            .collect();
        match push_lines(&http, &push_url, &lines).await.status().as_u16() {
            204 => acked += 4,
            429 => break,
            other => panic!("unexpected {other}"),
        }
    }
    let tag = ComponentMetrics::new(collector.registry().clone(), "tag", "process");
    assert!(tag.queue_depth().get() > 0, "the process queue filled too");
    let reg = collector.registry().clone();
    collector.shutdown().await;
    let c = |comp: &str, reason: &str| {
        reg.counter_sum(
            "collector_discarded_items_total",
            &[("component", comp), ("reason", reason)],
        )
    };
    assert_eq!(
        reg.counter_sum("collector_sent_items_total", &[("component", "push")]),
        acked
    );
    assert_eq!(c("tag", "shutdown") + c("loki", "shutdown"), acked);
    assert_eq!(
        reg.counter_sum("collector_sent_items_total", &[("component", "loki")]),
        0
    );
}
