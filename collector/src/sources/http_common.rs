//! HTTP plumbing the network receivers share (`otlp`, `loki_push`, `remote_write`): binding and
//! recording the listen address, serving until shutdown, reading a bounded body, `gzip`
//! content encoding, handing a batch to an [`Output`] without waiting, and the refusals every
//! receiver answers with (status code, `Retry-After`, the `discarded{reason}` they count).
//!
//! Accounting: a receiver counts `received` for every item it decoded and `discarded{reason}`
//! for every item it refused, so `received = sent + discarded`. A request refused before its
//! items are known (too large, wrong media type, undecodable) counts as one item, received and
//! discarded, so such refusals still show on the dashboards.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{ListenAddrs, SourceError};
use crate::event::{Items, Signal};
use crate::output::{Output, TrySendError};
use crate::selfmon::ComponentMetrics;

/// What a refused client is asked to wait before retrying (`Retry-After`, gRPC `RetryInfo`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// Default bound on a request body as received (before decompression): 20 MiB, as the
/// OpenTelemetry Collector's OTLP receiver.
pub fn default_max_body_bytes() -> usize {
    20 << 20
}

/// Default bound on a body after decompression.
pub fn default_max_decompressed_bytes() -> usize {
    wire::DEFAULT_MAX_DECOMPRESSED
}

/// Why a receiver refused (part of) a request.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The body, as received or decompressed, is over its bound (413).
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// A `Content-Type` the endpoint does not take (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The bytes could not be decoded (400, `decode_error`).
    #[error("{0}")]
    Decode(String),
    /// Decoded, but not acceptable (400, `invalid`).
    #[error("{0}")]
    Invalid(String),
    /// A downstream queue is full (429, `backpressure`).
    #[error("downstream {0} is full, retry later")]
    Backpressure(String),
    /// The collector is stopping (503, `shutting_down`).
    #[error("the collector is shutting down")]
    ShuttingDown,
}

impl From<wire::WireError> for Refusal {
    /// A body over the decompression bound is 413 like one over the body bound; anything else
    /// wrong with the bytes is a decode error (400).
    fn from(e: wire::WireError) -> Self {
        match e {
            wire::WireError::TooLarge { limit, .. } => Refusal::TooLarge { limit },
            e => Refusal::Decode(e.to_string()),
        }
    }
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Decode(_) | Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
            Refusal::Backpressure(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `reason` of the `discarded` count.
    /// Every [`Refusal::reason`], so the self-metrics can show each at 0 from the start.
    pub const REASONS: [&'static str; 6] = [
        "too_large",
        "unsupported_media_type",
        "decode_error",
        "invalid",
        "backpressure",
        "shutting_down",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "too_large",
            Refusal::UnsupportedMediaType(_) => "unsupported_media_type",
            Refusal::Decode(_) => "decode_error",
            Refusal::Invalid(_) => "invalid",
            Refusal::Backpressure(_) => "backpressure",
            Refusal::ShuttingDown => "shutting_down",
        }
    }

    /// Should the client come back later (429/503 with `Retry-After`)?
    pub fn retryable(&self) -> bool {
        matches!(self, Refusal::Backpressure(_) | Refusal::ShuttingDown)
    }

    /// Counts `items` as received and discarded for this reason.
    pub fn count(&self, metrics: &ComponentMetrics, signal: Signal, items: u64) {
        metrics.received(signal).add(items);
        metrics.discarded(signal, self.reason()).add(items);
    }

    /// The response with a body the caller encoded (`Retry-After` added when retryable).
    pub fn respond_with(&self, content_type: &'static str, body: Vec<u8>) -> Response {
        let mut resp = (
            self.status(),
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response();
        if self.retryable() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }

    /// The response with the reason as plain text (Loki and Prometheus answer so).
    pub fn respond_text(&self) -> Response {
        self.respond_with(wire::http::TEXT_PLAIN, format!("{self}\n").into_bytes())
    }
}

/// Hands `batch` to `out` if every blocking downstream has room now. Counts `items` received;
/// a refusal also counts them discarded (`backpressure`, `shutting_down`), and the batch is
/// dropped: the client keeps it and retries, nothing is buffered here.
pub fn offer<T: Clone + Items>(
    out: &Output<T>,
    batch: T,
    metrics: &ComponentMetrics,
    signal: Signal,
) -> Result<(), Refusal> {
    let n = batch.items() as u64;
    let refusal = match out.try_send(batch) {
        Ok(()) => {
            metrics.received(signal).add(n);
            return Ok(());
        }
        Err(TrySendError::Full(name, _)) => Refusal::Backpressure(name),
        Err(TrySendError::Closed(_)) => Refusal::ShuttingDown,
    };
    refusal.count(metrics, signal, n);
    Err(refusal)
}

/// The tail every push endpoint shares: counts a request that did not decode as one refused
/// item, converts (a conversion refusing `n` items counts them), then [`offer`]s the batch.
/// Answers 204 on success, else the refusal as text.
pub fn push_response<R, T: Clone + Items>(
    decoded: Result<R, Refusal>,
    convert: impl FnOnce(R) -> Result<T, (Refusal, u64)>,
    out: &Output<T>,
    metrics: &ComponentMetrics,
    signal: Signal,
) -> Response {
    let result = decoded
        .map_err(|r| (r, 1))
        .and_then(convert)
        .map_err(|(r, n)| {
            r.count(metrics, signal, n);
            r
        })
        .and_then(|batch| offer(out, batch, metrics, signal));
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.respond_text(),
    }
}

/// Binds `addr` and records the bound address under `key` (port 0 picks a free port).
pub async fn bind(addr: &str, key: &str, addrs: &ListenAddrs) -> Result<TcpListener, SourceError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SourceError::Bind {
            addr: addr.to_string(),
            error: source,
        })?;
    let bound: SocketAddr = listener.local_addr()?;
    addrs.record(key, bound);
    tracing::info!(component = key, address = %bound, "listening");
    Ok(listener)
}

/// Resolves when `shutdown` turns true (or its sender is gone).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets in-flight requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped(shutdown))
        .await
        .map_err(SourceError::Io)
}

/// A header as a string, if present and valid.
pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads a body of at most `limit` bytes (a `Content-Length` over it is refused unread).
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Refusal> {
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Refusal::TooLarge { limit });
    }
    // `to_bytes` fails when the limit is hit or the connection breaks; both end the request.
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Refusal::TooLarge { limit })
}

/// Undoes `Content-Encoding: gzip` (or none/`identity`), refusing output over `limit` bytes;
/// other encodings are refused.
pub fn decode_content_encoding(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, Refusal> {
    let encoding = header_str(headers, header::CONTENT_ENCODING)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => Ok(wire::compression::gzip_decompress(&body, limit)?.into()),
        other => Err(Refusal::Decode(format!(
            "unsupported Content-Encoding {other:?} (supported: gzip, identity)"
        ))),
    }
}

/// `GET /ready`: 200 while serving.
pub async fn ready() -> &'static str {
    "ready\n"
}

#[cfg(test)]
mod receiver_tests {
    use super::*;

    #[test]
    fn refusals_map_to_status_and_reason() {
        let r = Refusal::Backpressure("w".into());
        let resp = r.respond_text();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(r.reason(), "backpressure");
        let d = Refusal::Decode("bad".into()).respond_text();
        assert_eq!(d.status(), StatusCode::BAD_REQUEST);
        assert!(d.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn content_encoding_gzip_identity_and_unknown() {
        let mut h = HeaderMap::new();
        let raw = Bytes::from_static(b"hello");
        assert_eq!(decode_content_encoding(&h, raw.clone(), 100).unwrap(), raw);
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let gz = Bytes::from(wire::compression::gzip_compress(b"hello"));
        assert_eq!(decode_content_encoding(&h, gz, 100).unwrap(), raw);
        assert!(matches!(
            decode_content_encoding(&h, raw.clone(), 100),
            Err(Refusal::Decode(_))
        ));
        let big = Bytes::from(wire::compression::gzip_compress(&[0u8; 1000]));
        assert!(matches!(
            decode_content_encoding(&h, big, 100),
            Err(Refusal::TooLarge { limit: 100 })
        ));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(matches!(
            decode_content_encoding(&h, raw, 100),
            Err(Refusal::Decode(_))
        ));
    }
}
