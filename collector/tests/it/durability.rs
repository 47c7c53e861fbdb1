//! Crashes of the real `collector` binary (`kill -9`), against a recording Loki that can be
//! down:
//! - with a disk buffer, every push the receiver answered 2xx reaches Loki after a restart;
//! - a file tail re-reads after a crash at most what its checkpoint allows, and each re-read
//!   line has the time it had the first time (so Loki keeps one of the two).
//!
//! Waits are bounded only so that a bug cannot hang the suite.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use parking_lot::Mutex;

/// A Loki that answers 503 while `down`, and records (line, time) otherwise.
#[derive(Default)]
struct Loki {
    down: AtomicBool,
    entries: Mutex<Vec<(String, i64)>>,
}

async fn push(State(l): State<Arc<Loki>>, body: Bytes) -> impl IntoResponse {
    if l.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let req = wire::loki::decode_protobuf(&body, 1 << 26).unwrap();
    l.entries
        .lock()
        .extend(req.streams.into_iter().flat_map(|s| {
            s.entries
                .into_iter()
                .map(|e| (e.timestamp_ns(), e.line))
                .map(|(t, l)| (l, t))
        }));
    StatusCode::NO_CONTENT.into_response()
}

async fn loki() -> (String, Arc<Loki>) {
    let l = Arc::new(Loki::default());
    let app = axum::Router::new()
        .route("/loki/api/v1/push", axum::routing::post(push))
        .with_state(l.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/loki/api/v1/push"), l)
}

/// A port free now (the collector binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill_9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Waits until `ready` answers 200 (bounded).
async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_a_disk_buffer_loses_nothing_acknowledged() {
    let (url, loki) = loki().await;
    loki.down.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = free_port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
[server]
address = "127.0.0.1:{server}"
[sources.push]
type = "loki_push"
address = "127.0.0.1:{port}"
[writers.loki]
type = "loki"
inputs = ["push"]
url = "{url}"
batch_wait = "50ms"
min_backoff = "50ms"
max_backoff = "200ms"
buffer = {{ type = "disk", max_size = "16MiB", fsync = "never" }}
"#,
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut first = run(&config);
    let push_url = format!("http://127.0.0.1:{port}/loki/api/v1/push");
    wait_ready(&format!("http://127.0.0.1:{server}/-/ready")).await;
    // Pushes while Loki is down: each 204 means "on disk".
    let client = reqwest::Client::new();
    let mut acked = BTreeSet::new();
    for req in 0..40 {
        let lines: Vec<String> = (0..25).map(|i| format!("req {req} line {i}")).collect();
        let values: Vec<_> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                serde_json::json!([
                    (1_700_000_000_000_000_000i64 + req * 100 + i as i64).to_string(),
                    l
                ])
            })
            .collect();
        let body = serde_json::json!({"streams": [{"stream": {"job": "pos"}, "values": values}]});
        let r = client.post(&push_url).json(&body).send().await.unwrap();
        if r.status() == StatusCode::NO_CONTENT {
            acked.extend(lines);
        }
    }
    assert_eq!(
        acked.len(),
        40 * 25,
        "a disk buffer with room takes every push"
    );
    kill_9(&mut first);
    assert!(loki.entries.lock().is_empty(), "Loki was down throughout");

    // Loki is back; the restarted collector replays the buffer.
    loki.down.store(false, Ordering::SeqCst);
    let mut second = run(&config);
    wait_until("every acknowledged line in Loki", || {
        let got: BTreeSet<String> = loki.entries.lock().iter().map(|e| e.0.clone()).collect();
        acked.is_subset(&got)
    })
    .await;
    // And what was delivered is not replayed again by a third run.
    tokio::time::sleep(Duration::from_millis(600)).await; // the ledger is written every 200 ms
    kill_9(&mut second);
    let before = loki.entries.lock().len();
    let mut third = run(&config);
    wait_ready(&format!("http://127.0.0.1:{server}/-/ready")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill_9(&mut third);
    assert_eq!(
        loki.entries.lock().len(),
        before,
        "delivered records are not sent again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_tail_re_reads_at_most_its_checkpoint_after_kill_9_with_the_same_times() {
    let (url, loki) = loki().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
[server]
enabled = false
[sources.tail]
type = "file"
paths = ["{log}"]
sync_period = "500ms"
poll_interval = "50ms"
[writers.loki]
type = "loki"
inputs = ["tail"]
url = "{url}"
batch_wait = "50ms"
"#,
            data = dir.path().join("data").display(),
            log = log.display()
        ),
    )
    .unwrap();
    let mut f = std::fs::File::create(&log).unwrap();
    let total = 6000;
    let mut child = run(&config);
    // Lines written over ~1.5 s while the collector reads them; kill -9 in the middle.
    for i in 0..total {
        writeln!(f, "line {i:05}").unwrap();
        if i % 200 == 199 {
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if i == total / 2 {
            wait_until("some lines delivered", || !loki.entries.lock().is_empty()).await;
            kill_9(&mut child);
            child = run(&config);
        }
    }
    f.flush().unwrap();
    wait_until("every line delivered", || {
        let got: BTreeSet<String> = loki.entries.lock().iter().map(|e| e.0.clone()).collect();
        got.len() == total
    })
    .await;
    kill_9(&mut child);
    let entries = loki.entries.lock().clone();
    let mut times: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for (line, ts) in &entries {
        times.entry(line).or_default().insert(*ts);
    }
    // Nothing lost; every re-read line carries the time it had: equal (line, time) pairs,
    // which Loki keeps once.
    assert_eq!(times.len(), total);
    let retimed: Vec<_> = times.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(
        retimed.is_empty(),
        "re-read with a new time: {:?}",
        &retimed[..retimed.len().min(5)]
    );
    // Time order is file order.
    let ordered: Vec<i64> = times.values().map(|t| *t.iter().next().unwrap()).collect();
    assert!(
        ordered.windows(2).all(|w| w[0] <= w[1]),
        "times follow the file"
    );
    let duplicates = entries.len() - total;
    eprintln!("re-read after kill -9: {duplicates} of {total} lines");
    assert!(
        duplicates < total / 2,
        "{duplicates} lines re-read: more than a checkpoint's worth"
    );
}
