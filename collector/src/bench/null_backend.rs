//! The backend `collector bench` writes to: Loki push, remote write and OTLP/HTTP traces
//! endpoints that read each body whole and acknowledge it (204, or 200 with an empty
//! `ExportTraceServiceResponse`) without decoding it, so the bench measures the collector, not
//! a backend. It counts requests and body bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the null backend took.
#[derive(Default)]
pub struct Taken {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// A running null backend; stops when dropped.
pub struct NullBackend {
    pub addr: SocketAddr,
    pub taken: Arc<Taken>,
    _stop: oneshot::Sender<()>,
}

impl NullBackend {
    pub async fn start() -> std::io::Result<NullBackend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let taken = Arc::new(Taken::default());
        let app = Router::new()
            .route("/loki/api/v1/push", post(no_content))
            .route("/api/v1/push", post(no_content))
            .route("/v1/traces", post(otlp_ok))
            .with_state(taken.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(NullBackend {
            addr,
            taken,
            _stop: stop,
        })
    }
}

fn take(taken: &Taken, body: &Bytes) {
    taken.requests.fetch_add(1, Ordering::Relaxed);
    taken.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
}

async fn no_content(State(taken): State<Arc<Taken>>, body: Bytes) -> StatusCode {
    take(&taken, &body);
    StatusCode::NO_CONTENT
}

async fn otlp_ok(State(taken): State<Arc<Taken>>, body: Bytes) -> impl IntoResponse {
    take(&taken, &body);
    // An empty message is a valid, empty `ExportTraceServiceResponse` (no partial success).
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
}
