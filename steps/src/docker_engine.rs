//! A Docker Engine API on a unix socket, with the documented shapes the collector's `docker`
//! source reads: `/containers/json`, `/containers/{id}/json`, `/containers/{id}/logs`
//! (multiplexed stdout/stderr frames, RFC 3339 timestamps, `since` inclusive; the stream ends
//! after the lines so far, as when a container stops, and the source follows again) and
//! `/events`. Containers carry Docker Compose's labels. Scenarios tagged `@docker` use the real
//! engine instead.

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
    labels: HashMap<String, String>,
    /// (timestamp ns, stream 1 stdout | 2 stderr, line)
    entries: Vec<(i64, u8, String)>,
}

/// A running fake engine; stops when dropped.
pub struct FakeDockerEngine {
    socket: PathBuf,
    containers: Arc<Mutex<Vec<Container>>>,
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

type Shared = Arc<Mutex<Vec<Container>>>;

impl FakeDockerEngine {
    /// Serves on `socket`.
    pub fn start(socket: &Path) -> Result<FakeDockerEngine, EngineError> {
        let containers: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/containers/json", get(list))
            .route("/containers/{id}/json", get(inspect))
            .route("/containers/{id}/logs", get(logs))
            .route("/events", get(|| async { "" }))
            .with_state(containers.clone());
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
            containers,
            task,
        })
    }

    /// `unix://<socket>`, the source's `host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs a container of a Compose service.
    pub fn run(&self, id: &str, name: &str, service: &str, project: &str) {
        self.containers.lock().push(Container {
            id: id.into(),
            name: name.into(),
            labels: [
                ("com.docker.compose.service", service),
                ("com.docker.compose.project", project),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            entries: vec![],
        });
    }

    /// The container `name` writes `line` to stdout (1) or stderr (2), now.
    pub fn log(&self, name: &str, stream: u8, line: &str) {
        let mut cs = self.containers.lock();
        if let Some(c) = cs.iter_mut().find(|c| c.name == name) {
            let ts = crate::query::now_ns();
            c.entries.push((ts, stream, line.into()));
        }
    }
}

async fn list(State(cs): State<Shared>) -> Json<serde_json::Value> {
    let cs = cs.lock();
    Json(json!(
        cs.iter()
            .map(
                |c| json!({"Id": c.id, "Names": [format!("/{}", c.name)], "Image": "shop/web:1",
                "Labels": c.labels, "State": "running", "Status": "Up 1 second"})
            )
            .collect::<Vec<_>>()
    ))
}

async fn inspect(State(cs): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let cs = cs.lock();
    match cs.iter().find(|c| c.id == id) {
        Some(c) => Json(json!({"Id": c.id, "Name": format!("/{}", c.name),
            "Config": {"Tty": false, "Labels": c.labels}, "State": {"Running": true}}))
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

async fn logs(
    State(cs): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = q.get("since").map(|s| parse_since(s)).unwrap_or(0);
    let cs = cs.lock();
    let Some(c) = cs.iter().find(|c| c.id == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut body = Vec::new();
    for (ts, stream, line) in c.entries.iter().filter(|(ts, _, _)| *ts >= since) {
        let t = chrono::DateTime::from_timestamp_nanos(*ts)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let payload = format!("{t} {line}\n");
        body.push(*stream);
        body.extend_from_slice(&[0, 0, 0]);
        body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        body.extend_from_slice(payload.as_bytes());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/vnd.docker.multiplexed-stream",
        )],
        body,
    )
        .into_response()
}
