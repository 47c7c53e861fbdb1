//! What the embedded HTTP servers share: serving a router with graceful shutdown, the
//! request-body limit that turns an oversized body into a 413, reading request headers (the
//! tenant among them), and running query evaluation apart from ingestion ([`evaluate`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::HeaderMap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs one query's evaluation (CPU work, holding a store's lock) on the blocking pool, at most
/// [`query_slots`] at a time across the process. Real Loki, Mimir and Tempo evaluate queries in
/// queriers apart from the distributors and ingesters that take writes; evaluated on the async
/// workers instead, a few dashboard refreshes occupied every worker of a 2-core machine and
/// stalled ingestion until the writers got 429s. Queries now queue behind each other (their
/// wait counts in their latency, as behind a querier's `max_concurrent`), and writes go on.
/// A panic in `f` is answered with a 500.
pub async fn evaluate(
    f: impl FnOnce() -> axum::response::Response + Send + 'static,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| tokio::sync::Semaphore::new(query_slots()));
    // The semaphore is never closed, so acquiring only waits.
    let _permit = slots.acquire().await;
    match tokio::task::spawn_blocking(f).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "embedded query evaluation panicked");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "query evaluation failed (panicked); see the stack's log",
            )
                .into_response()
        }
    }
}

/// How many queries evaluate at once: half the cores (at least one), leaving the rest to
/// ingestion.
pub fn query_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Serves `router` on `listener`, behind the [`Door`](super::door::Door) (TLS, auth), until
/// `shutdown` turns true.
pub fn spawn_http(
    listener: TcpListener,
    router: Router,
    door: &super::door::Door,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let router = door.protect(router);
    let tls = door.tls.clone();
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = access::serve(listener, router, tls, stop).await {
            tracing::error!(error = %e, "embedded HTTP server failed");
        }
    })
}

/// `response` (a `/metrics` exposition of this process) with `families` written after it; a
/// response that is not a success is left as it is.
pub async fn append_exposition(
    response: axum::response::Response,
    families: &[wire::exposition::MetricFamily],
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if !response.status().is_success() || families.is_empty() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The server's own exposition: small, and produced by this process.
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "metrics body unreadable\n",
        )
            .into_response();
    };
    let mut text = bytes.to_vec();
    text.extend_from_slice(wire::exposition::encode(families).as_bytes());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(text))
}

/// The body-size layer: a body over `max` bytes is answered with 413 before it is read whole.
pub fn body_limit(max: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(max)
}

/// The tenant a request names in `X-Scope-OrgID`, trimmed; `default` without one (what Loki and
/// Mimir do with multi-tenancy off: `fake`, `anonymous`).
pub fn tenant_or(headers: &HeaderMap, default: &str) -> String {
    match header(headers, wire::http::TENANT_HEADER).map(str::trim) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => default.to_string(),
    }
}

/// What a query handler of the embedded Loki and Mimir reads from its request: the headers (the
/// tenant among them), the raw query string and the body (a POSTed form), taken in one extractor
/// so that every handler starts the same way. A body over the limit is refused (413) before the
/// handler runs, as with a `Bytes` argument.
pub struct ApiRequest {
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
}

impl ApiRequest {
    /// The tenant, or `default` without one (see [`tenant_or`]).
    pub fn tenant_or(&self, default: &str) -> String {
        tenant_or(&self.headers, default)
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiRequest {
    type Rejection = BytesRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let query = req.uri().query().map(str::to_owned);
        let body = Bytes::from_request(req, state).await?;
        Ok(ApiRequest {
            headers,
            query,
            body,
        })
    }
}

/// Reads a header as a string, if present and valid.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
