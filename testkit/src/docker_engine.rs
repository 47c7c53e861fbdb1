//! A Docker Engine API on a unix socket, with the documented shapes the collector's `docker`
//! source reads: `/containers/json`, `/containers/{id}/json`, `/containers/{id}/logs`
//! (multiplexed stdout/stderr frames, or the raw stream of a TTY container; RFC 3339 timestamps
//! with nanoseconds, `since` inclusive; the stream ends after the lines so far, as when a
//! container stops, and the source follows again) and `/events`. Containers may carry Docker
//! Compose's labels. It records every logs request, so a test can see where the source asked to
//! resume. Used by the collector's `docker` source tests and the `@docker`-less scenarios;
//! scenarios tagged `@docker` use the real engine instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::json;

/// Why the engine cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: String,
        source: std::io::Error,
    },
}

struct Container {
    id: String,
    name: String,
    /// A TTY container's logs are one raw stream, not multiplexed frames.
    tty: bool,
    labels: HashMap<String, String>,
    /// (timestamp ns, stream 1 stdout | 2 stderr, line)
    entries: Vec<(i64, u8, String)>,
}

/// A running fake engine; stops when dropped.
pub struct FakeDockerEngine {
    socket: PathBuf,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeDockerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDockerEngine")
            .field("socket", &self.socket)
            .finish()
    }
}

impl Drop for FakeDockerEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `/containers/{id}/logs` request, as the source sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogsRequest {
    pub id: String,
    /// `since`, as sent (empty when absent).
    pub since: String,
    /// `follow` and `timestamps`, as sent: the source needs both to be `1`.
    pub follow: Option<String>,
    pub timestamps: Option<String>,
}

#[derive(Default)]
struct Engine {
    containers: Vec<Container>,
    requests: Vec<LogsRequest>,
}

type Shared = Arc<Mutex<Engine>>;

impl FakeDockerEngine {
    /// Serves on `socket`.
    pub fn start(socket: &Path) -> Result<FakeDockerEngine, EngineError> {
        let state: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/containers/json", get(list))
            .route("/containers/{id}/json", get(inspect))
            .route("/containers/{id}/logs", get(logs))
            .route("/events", get(|| async { "" }))
            .with_state(state.clone());
        let listener =
            tokio::net::UnixListener::bind(socket).map_err(|source| EngineError::Bind {
                path: socket.display().to_string(),
                source,
            })?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeDockerEngine {
            socket: socket.to_path_buf(),
            state,
            task,
        })
    }

    /// `unix://<socket>`, the source's `host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs a container of a Compose service.
    pub fn run(&self, id: &str, name: &str, service: &str, project: &str) {
        self.add(
            id,
            name,
            false,
            &[
                ("com.docker.compose.service", service),
                ("com.docker.compose.project", project),
            ],
        );
    }

    /// Runs a container with these labels; `tty` as `docker run -t`.
    pub fn add(&self, id: &str, name: &str, tty: bool, labels: &[(&str, &str)]) {
        self.state.lock().containers.push(Container {
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

    /// The container `name` writes `line` to stdout (1) or stderr (2), now.
    pub fn log(&self, name: &str, stream: u8, line: &str) {
        let mut state = self.state.lock();
        if let Some(c) = state.containers.iter_mut().find(|c| c.name == name) {
            c.entries.push((crate::now_ns(), stream, line.into()));
        }
    }

    /// The container with id `id` wrote `line` to stdout (1) or stderr (2) at `ts` (Unix ns).
    pub fn log_at(&self, id: &str, ts: i64, stream: u8, line: &str) {
        let mut state = self.state.lock();
        if let Some(c) = state.containers.iter_mut().find(|c| c.id == id) {
            c.entries.push((ts, stream, line.into()));
        }
    }

    /// Every logs request so far, oldest first.
    pub fn logs_requests(&self) -> Vec<LogsRequest> {
        self.state.lock().requests.clone()
    }

    /// Forgets the logs requests so far.
    pub fn clear_logs_requests(&self) {
        self.state.lock().requests.clear();
    }
}

async fn list(State(state): State<Shared>) -> Json<serde_json::Value> {
    let state = state.lock();
    Json(json!(
        state
            .containers
            .iter()
            .map(
                |c| json!({"Id": c.id, "Names": [format!("/{}", c.name)], "Image": "shop/web:1",
                "Labels": c.labels, "State": "running", "Status": "Up 1 second"})
            )
            .collect::<Vec<_>>()
    ))
}

async fn inspect(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let state = state.lock();
    match state.containers.iter().find(|c| c.id == id) {
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

/// `since` as Docker sends it: seconds with optional nanoseconds.
fn parse_since(s: &str) -> i64 {
    let (secs, nanos) = s.split_once('.').unwrap_or((s, "0"));
    let secs = secs.parse::<i64>().unwrap_or(0);
    let nanos = format!("{nanos:0<9}")
        .get(..9)
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The logs so far (`since` inclusive), then the end of the stream, as when a container stops;
/// the source follows again on its next listing.
async fn logs(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let request = LogsRequest {
        id: id.clone(),
        since: q.get("since").cloned().unwrap_or_default(),
        follow: q.get("follow").cloned(),
        timestamps: q.get("timestamps").cloned(),
    };
    let since = parse_since(&request.since);
    let mut state = state.lock();
    state.requests.push(request);
    let Some(c) = state.containers.iter().find(|c| c.id == id) else {
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
