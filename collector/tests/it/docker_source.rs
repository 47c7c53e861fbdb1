//! The `docker` source against testkit's fake Docker Engine API served on a unix socket in a
//! temp dir: the documented shapes of `/containers/json`, `/containers/{id}/json`,
//! `/containers/{id}/logs` (multiplexed frames or the raw TTY stream, RFC 3339 timestamps with
//! nanoseconds, `since` inclusive) and `/events`.
#![allow(clippy::unwrap_used)]

use crate::tailing_harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use collector::event::LogRecord;
use collector::sources::docker::api::{Client, since_param};
use parking_lot::Mutex;
use tailing_harness::{PATIENCE, start};
use testkit::docker_engine::{FakeDockerEngine, LogsRequest};

/// 2024-05-01T10:00:00Z in nanoseconds.
const T0: i64 = 1_714_557_600_000_000_000;

fn settings(socket: &Path) -> String {
    format!(
        "host = \"unix://{}\"\nrefresh_interval = \"20ms\"\nsync_period = \"20ms\"\nlabels = {{ job = \"docker\" }}",
        socket.display()
    )
}

/// (container_name, stream, line) of each record, sorted within each container by arrival.
fn summary(records: &[LogRecord]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.labels.get("container_name").unwrap_or("").to_string(),
                r.labels.get("stream").unwrap_or("").to_string(),
                r.line.clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0)); // stable: keeps each container's order
    out
}

/// The source follows each container's logs with timestamps (it resumes by them).
fn follows_with_timestamps(r: &LogsRequest) -> bool {
    r.follow.as_deref() == Some("1") && r.timestamps.as_deref() == Some("1")
}

fn row(c: &str, s: &str, l: &str) -> (String, String, String) {
    (c.into(), s.into(), l.into())
}

#[tokio::test]
async fn docker_follows_containers_with_labels_and_restarts_from_the_saved_position() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let engine = FakeDockerEngine::start(&socket).unwrap();
    let web = "a1b2c3";
    engine.add(
        web,
        "shop-web-1",
        false,
        &[
            ("com.docker.compose.service", "web"),
            ("com.docker.compose.project", "shop"),
        ],
    );
    engine.add("d4e5f6", "console", true, &[]);
    // Lines 3 and 4 share a timestamp, as lines written in the same nanosecond can.
    engine.log_at(web, T0 + 1, 1, "out one");
    engine.log_at(web, T0 + 2, 2, "err one");
    engine.log_at(web, T0 + 3, 1, "out two");
    engine.log_at(web, T0 + 3, 2, "err two");
    engine.log_at("d4e5f6", T0 + 1, 1, "tty one\r");
    engine.log_at("d4e5f6", T0 + 2, 1, "tty two");

    let data = tempfile::tempdir().unwrap();
    let mut src = start("docker", "containers", &settings(&socket), data.path());
    let mut got = src.take(6).await;
    // The streams end and are followed again every 20ms: that must not repeat lines.
    while engine.logs_requests().len() < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    got.extend(src.stop().await);
    let requests = engine.logs_requests();
    assert!(requests.iter().all(follows_with_timestamps), "{requests:?}");
    assert_eq!(
        summary(&got),
        vec![
            row("console", "stdout", "tty one"),
            row("console", "stdout", "tty two"),
            row("shop-web-1", "stdout", "out one"),
            row("shop-web-1", "stderr", "err one"),
            row("shop-web-1", "stdout", "out two"),
            row("shop-web-1", "stderr", "err two"),
        ]
    );
    let first = got.iter().find(|r| r.line == "out one").unwrap();
    assert_eq!(first.timestamp_ns, T0 + 1);
    let l = &first.labels;
    assert_eq!(l.get("container_id"), Some(web));
    assert_eq!(l.get("compose_service"), Some("web"));
    assert_eq!(l.get("compose_project"), Some("shop"));
    assert_eq!(l.get("job"), Some("docker"));
    assert!(
        engine
            .logs_requests()
            .iter()
            .any(|r| r.id == web && r.since == since_param(T0 + 3))
    );

    // Stopped: more lines, one more at the very timestamp of the last accepted ones.
    engine.log_at(web, T0 + 3, 1, "out three");
    engine.log_at(web, T0 + 4, 2, "err three");
    engine.log_at("d4e5f6", T0 + 3, 1, "tty three");
    engine.clear_logs_requests();

    let mut src = start("docker", "containers", &settings(&socket), data.path());
    let mut got = src.take(3).await;
    got.extend(src.stop().await);
    assert_eq!(
        summary(&got),
        vec![
            row("console", "stdout", "tty three"),
            row("shop-web-1", "stdout", "out three"),
            row("shop-web-1", "stderr", "err three"),
        ]
    );
    // The second run asked for the logs from the saved position, not from the start.
    let since = engine.logs_requests();
    assert_eq!(
        since.iter().find(|r| r.id == web).unwrap().since,
        since_param(T0 + 3)
    );
    assert!(since.iter().all(follows_with_timestamps), "{since:?}");

    let positions: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.path().join("containers.positions.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        positions["containers"][web]["last_ns"].as_i64(),
        Some(T0 + 4)
    );
}

/// Collects what `tracing` writes, for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

#[tokio::test]
async fn docker_a_missing_socket_is_a_clear_error_then_retried_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let socket: PathBuf = dir.path().join("docker.sock");
    let expected = format!(
        "no Docker socket at {}: is the Docker engine running?",
        socket.display()
    );
    let err = Client::new(socket.clone())
        .list_running()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, expected);

    // The test runtime has one thread, so the source's logs go to this subscriber.
    let logs = Captured::default();
    let writer = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(_guard);

    let data = tempfile::tempdir().unwrap();
    let mut src = start("docker", "containers", &settings(&socket), data.path());
    let deadline = std::time::Instant::now() + PATIENCE;
    while !logs.text().contains(&expected) {
        assert!(std::time::Instant::now() < deadline, "{}", logs.text());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The engine comes up: the source connects on its own.
    let engine = FakeDockerEngine::start(&socket).unwrap();
    engine.add("abc123", "late", false, &[]);
    engine.log_at("abc123", T0, 1, "finally");
    assert_eq!(src.take_lines(1).await, vec!["finally"]);
    let requests = engine.logs_requests();
    assert!(requests.iter().all(follows_with_timestamps), "{requests:?}");
    src.stop().await;
    let text = logs.text();
    assert_eq!(text.matches(&expected).count(), 1, "{text}");
    assert!(text.contains("connected to the Docker engine"), "{text}");
}
