//! The `docker` source against a fake Docker Engine API served on a unix socket in a temp dir:
//! the documented shapes of `/containers/json`, `/containers/{id}/json`,
//! `/containers/{id}/logs` (multiplexed frames or the raw TTY stream, RFC 3339 timestamps with
//! nanoseconds, `since` inclusive) and `/events`.
#![allow(clippy::unwrap_used)]

mod tailing_harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use collector::event::LogRecord;
use collector::sources::docker::api::{Client, since_param};
use parking_lot::Mutex;
use serde_json::json;
use tailing_harness::{PATIENCE, start};

/// 2024-05-01T10:00:00Z in nanoseconds.
const T0: i64 = 1_714_557_600_000_000_000;

struct FakeContainer {
    id: String,
    name: String,
    tty: bool,
    labels: HashMap<String, String>,
    /// (timestamp ns, stream 1|2, line)
    entries: Vec<(i64, u8, String)>,
}

#[derive(Clone, Default)]
struct Engine {
    containers: Arc<Mutex<Vec<FakeContainer>>>,
    /// The `since` of every logs request, by container id.
    since: Arc<Mutex<Vec<(String, String)>>>,
}

impl Engine {
    fn add(&self, id: &str, name: &str, tty: bool, labels: &[(&str, &str)]) {
        self.containers.lock().push(FakeContainer {
            id: id.into(),
            name: name.into(),
            tty,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            entries: vec![],
        });
    }

    fn log(&self, id: &str, ts: i64, stream: u8, line: &str) {
        let mut cs = self.containers.lock();
        let c = cs.iter_mut().find(|c| c.id == id).unwrap();
        c.entries.push((ts, stream, line.into()));
    }

    /// Serves the API on a unix socket at `path`.
    fn serve(&self, path: &Path) {
        let app = axum::Router::new()
            .route("/containers/json", get(list))
            .route("/containers/{id}/json", get(inspect))
            .route("/containers/{id}/logs", get(logs))
            .route("/events", get(|| async { "" }))
            .with_state(self.clone());
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
}

async fn list(State(e): State<Engine>) -> Json<serde_json::Value> {
    let cs = e.containers.lock();
    Json(json!(
        cs.iter()
            .map(
                |c| json!({"Id": c.id, "Names": [format!("/{}", c.name)], "Image": "img",
                "Labels": c.labels, "State": "running", "Status": "Up 1 second"})
            )
            .collect::<Vec<_>>()
    ))
}

async fn inspect(State(e): State<Engine>, UrlPath(id): UrlPath<String>) -> Response {
    let cs = e.containers.lock();
    match cs.iter().find(|c| c.id == id) {
        Some(c) => Json(json!({"Id": c.id, "Name": format!("/{}", c.name),
            "Config": {"Tty": c.tty, "Labels": c.labels}, "State": {"Running": true}}))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": format!("No such container: {id}")})),
        )
            .into_response(),
    }
}

fn parse_since(s: &str) -> i64 {
    let (secs, nanos) = s.split_once('.').unwrap_or((s, "0"));
    secs.parse::<i64>().unwrap() * 1_000_000_000 + format!("{nanos:0<9}").parse::<i64>().unwrap()
}

/// The logs so far (`since` inclusive), then the end of the stream, as when a container stops;
/// the source follows again on its next listing.
async fn logs(
    State(e): State<Engine>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q.get("timestamps").map(String::as_str), Some("1"));
    assert_eq!(q.get("follow").map(String::as_str), Some("1"));
    let since = q.get("since").cloned().unwrap_or_default();
    e.since.lock().push((id.clone(), since.clone()));
    let since = parse_since(&since);
    let cs = e.containers.lock();
    let Some(c) = cs.iter().find(|c| c.id == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut body = Vec::new();
    for (ts, stream, line) in c.entries.iter().filter(|(ts, _, _)| *ts >= since) {
        let t = chrono::DateTime::from_timestamp_nanos(*ts)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let payload = format!("{t} {line}\n");
        if !c.tty {
            body.push(*stream);
            body.extend_from_slice(&[0, 0, 0]);
            body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        }
        body.extend_from_slice(payload.as_bytes());
    }
    let content_type = if c.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

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

fn row(c: &str, s: &str, l: &str) -> (String, String, String) {
    (c.into(), s.into(), l.into())
}

#[tokio::test]
async fn docker_follows_containers_with_labels_and_restarts_from_the_saved_position() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let engine = Engine::default();
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
    engine.log(web, T0 + 1, 1, "out one");
    engine.log(web, T0 + 2, 2, "err one");
    engine.log(web, T0 + 3, 1, "out two");
    engine.log(web, T0 + 3, 2, "err two");
    engine.log("d4e5f6", T0 + 1, 1, "tty one\r");
    engine.log("d4e5f6", T0 + 2, 1, "tty two");
    engine.serve(&socket);

    let data = tempfile::tempdir().unwrap();
    let mut src = start("docker", "containers", &settings(&socket), data.path());
    let mut got = src.take(6).await;
    // The streams end and are followed again every 20ms: that must not repeat lines.
    while engine.since.lock().len() < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    got.extend(src.stop().await);
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
            .since
            .lock()
            .contains(&(web.to_string(), since_param(T0 + 3)))
    );

    // Stopped: more lines, one more at the very timestamp of the last accepted ones.
    engine.log(web, T0 + 3, 1, "out three");
    engine.log(web, T0 + 4, 2, "err three");
    engine.log("d4e5f6", T0 + 3, 1, "tty three");
    engine.since.lock().clear();

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
    let since = engine.since.lock().clone();
    assert_eq!(
        since.iter().find(|(id, _)| id == web).unwrap().1,
        since_param(T0 + 3)
    );

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
    let engine = Engine::default();
    engine.add("abc123", "late", false, &[]);
    engine.log("abc123", T0, 1, "finally");
    engine.serve(&socket);
    assert_eq!(src.take_lines(1).await, vec!["finally"]);
    src.stop().await;
    let text = logs.text();
    assert_eq!(text.matches(&expected).count(), 1, "{text}");
    assert!(text.contains("connected to the Docker engine"), "{text}");
}
