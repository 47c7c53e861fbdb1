//! An HTTP proxy that routes requests by path prefix to upstream servers and fails scripted
//! requests: "answer the next 3 pushes to `/loki/api/v1/push` with 500", or every one for the
//! next 10 s (an outage). Scenarios put it in
//! front of the stack (a backend outage) or in front of a collector's receivers (one base URL
//! for Loki push, remote write and OTLP, as loadgen's collector target expects).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use url::Url;

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
}

/// One route: requests whose path starts with `prefix` go to `upstream` (its path, then the
/// request's path and query).
#[derive(Clone, Debug)]
pub struct Route {
    pub prefix: String,
    pub upstream: Url,
}

/// What the proxy counted, per route prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub forwarded: u64,
    pub injected: u64,
    /// Requests no route matched (answered 404).
    pub unrouted: u64,
}

#[derive(Default)]
struct Script {
    /// Statuses to answer the next requests of a prefix with, in order.
    faults: Vec<(String, VecDeque<u16>)>,
    /// Outages: every request of a prefix until the instant is answered with the status.
    outages: Vec<(String, std::time::Instant, u16)>,
    tallies: std::collections::BTreeMap<String, Tally>,
}

struct Shared {
    routes: Vec<Route>,
    script: Mutex<Script>,
    http: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1, port 0.
    pub async fn start(routes: Vec<Route>) -> Result<FaultProxy, ProxyError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            routes,
            script: Mutex::new(Script::default()),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fault proxy stopped");
            }
        });
        Ok(FaultProxy { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The next `n` requests under `prefix` are answered with `status`, not forwarded.
    pub fn fail_next(&self, prefix: &str, n: usize, status: u16) {
        let mut s = self.shared.script.lock();
        let q = std::iter::repeat_n(status, n).collect();
        s.faults.push((prefix.to_string(), q));
    }

    /// Every request under `prefix` for the next `window` is answered with `status`, not
    /// forwarded: a backend outage.
    pub fn fail_for(&self, prefix: &str, window: std::time::Duration, status: u16) {
        let until = std::time::Instant::now() + window;
        self.shared
            .script
            .lock()
            .outages
            .push((prefix.to_string(), until, status));
    }

    /// How long the latest outage under `prefix` still lasts, if one is on.
    pub fn outage_left(&self, prefix: &str) -> Option<std::time::Duration> {
        let now = std::time::Instant::now();
        self.shared
            .script
            .lock()
            .outages
            .iter()
            .filter(|(p, until, _)| p == prefix && now < *until)
            .map(|(_, until, _)| *until - now)
            .max()
    }

    /// What happened under `prefix` so far.
    pub fn tally(&self, prefix: &str) -> Tally {
        self.shared
            .script
            .lock()
            .tallies
            .get(prefix)
            .cloned()
            .unwrap_or_default()
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let Some(route) = shared
        .routes
        .iter()
        .filter(|r| path.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len())
    else {
        shared
            .script
            .lock()
            .tallies
            .entry(String::new())
            .or_default()
            .unrouted += 1;
        return (
            StatusCode::NOT_FOUND,
            format!("fault proxy: no route for {path}\n"),
        )
            .into_response();
    };
    // A scripted failure?
    let injected = {
        let mut s = shared.script.lock();
        let now = std::time::Instant::now();
        let down = s
            .outages
            .iter()
            .find(|(p, until, _)| path.starts_with(p.as_str()) && now < *until)
            .map(|(_, _, status)| *status);
        let hit = down.or_else(|| {
            s.faults
                .iter_mut()
                .filter(|(p, q)| path.starts_with(p.as_str()) && !q.is_empty())
                .find_map(|(_, q)| q.pop_front())
        });
        let t = s.tallies.entry(route.prefix.clone()).or_default();
        match hit {
            Some(_) => t.injected += 1,
            None => t.forwarded += 1,
        }
        hit
    };
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, "fault proxy: injected failure\n").into_response();
    }
    let mut target = route.upstream.clone();
    let joined = format!("{}{}", route.upstream.path().trim_end_matches('/'), path);
    target.set_path(&joined);
    target.set_query(uri.query());
    let mut rb = shared.http.request(method, target.as_str());
    for (k, v) in &headers {
        if k != axum::http::header::HOST && k != axum::http::header::CONTENT_LENGTH {
            rb = rb.header(k, v);
        }
    }
    match rb.body(body).send().await {
        Ok(resp) => {
            let status = resp.status();
            let mut out = Response::builder().status(status.as_u16());
            for (k, v) in resp.headers() {
                if k != reqwest::header::TRANSFER_ENCODING && k != reqwest::header::CONTENT_LENGTH {
                    out = out.header(k.as_str(), v.as_bytes());
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            out.body(Body::from(bytes))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("fault proxy: upstream {target}: {}\n", e.without_url()),
        )
            .into_response(),
    }
}
