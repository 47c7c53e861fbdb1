//! HTTP plumbing the network receivers share (`otlp`, `loki_push`, `remote_write`): binding and
//! recording the listen address, serving until shutdown, reading a bounded body, `gzip`
//! content encoding, handing a batch to an [`Output`] (waiting briefly for room), and the refusals every
//! receiver answers with (status code, `Retry-After`, the `discarded{reason}` they count).
//!
//! Memory: every request's bytes are charged to its receiver's [`InflightBudget`] as they
//! appear — the body chunk by chunk as it arrives (a declared `Content-Length` is not charged
//! before its bytes come), the decompressed body (sized by a counting pass before it is
//! allocated, [`wire::compression::read_metered`]), then the decoded message's estimated heap
//! ([`wire::budget`]) before it is decoded, then a bound on the batch it converts into
//! ([`super::converted`], [`admit_converted`]) before converting; the decompressed bytes are
//! given back once decoded. A body must arrive whole within `body_read_timeout` (408,
//! `timeout`, its charge given back), so a client that trickles bytes cannot hold budget; one
//! passing `max_body_bytes` is 413 the moment it does. A request whose decompressed bytes plus
//! estimate, or whose converted batch, exceed `max_decoded_bytes` is refused with 413
//! (`too_large`); one that would
//! take the receiver over `max_inflight_bytes` while others hold it with 429 and `Retry-After`
//! (`inflight_limit`). Decompression and decoding run on the blocking pool ([`blocking`]), so a
//! large body does not hold up small requests on the async workers.
//!
//! Accounting: a receiver counts `received` for every item it decoded and `discarded{reason}`
//! for every item it refused, so `received = sent + discarded`. A request refused before its
//! items are known (too large, wrong media type, undecodable) counts as one item, received and
//! discarded, so such refusals still show on the dashboards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{ListenAddrs, SourceError};
use crate::ack::{Ack, Acks, Outcome, Until};
use crate::event::{Items, Signal};
use crate::output::{Output, TrySendError};
use crate::selfmon::{ComponentMetrics, Gauge};

/// How long [`offer`] waits for room in a full downstream queue before the 429: a writer that
/// is keeping up frees room within milliseconds, and a client told to come back in a whole
/// second (`Retry-After` has no finer unit) would leave the pipeline idle meanwhile.
pub const FULL_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
const FULL_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// How long a receiver waits for its batch to be written to the disk buffers (when a writer
/// keeps one) before it answers 503: a disk buffer that is full waits for deliveries to free
/// room, and the client keeps its data meanwhile.
pub const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a refused client is asked to wait before retrying (`Retry-After`, gRPC `RetryInfo`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// Default bound on a request body as received (before decompression): 20 MiB, as the
/// OpenTelemetry Collector's OTLP receiver.
pub fn default_max_body_bytes() -> usize {
    20 << 20
}

/// Default bound on the time a request body may take to arrive: 30 s, the
/// `http_server_read_timeout` Loki and Tempo keep from dskit (Go's `http.Server.ReadTimeout`,
/// for the whole request; Mimir raises it).
pub fn default_body_read_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

/// Default bound on a body after decompression.
pub fn default_max_decompressed_bytes() -> usize {
    wire::DEFAULT_MAX_DECOMPRESSED
}

/// Default bound on what one request may take to decode: its decompressed bytes plus the
/// estimated heap of the decoded message (64 MiB).
pub fn default_max_decoded_bytes() -> usize {
    64 << 20
}

/// Default bound on the bytes all of a receiver's requests hold at once: bodies as read,
/// decompressed bytes and decoded estimates (128 MiB: two requests at `max_decoded_bytes`).
pub fn default_max_inflight_bytes() -> usize {
    128 << 20
}

/// Why a receiver refused (part of) a request.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The body, as received or decompressed, is over its bound (413).
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Decoding would take more than a bound (413, `too_large`): `what` names it.
    #[error("request needs {size} bytes to decode, over {what} = {limit}")]
    Oversized {
        size: usize,
        limit: usize,
        what: &'static str,
    },
    /// The body did not arrive whole within `body_read_timeout` (408, `timeout`).
    #[error("request body not received within body_read_timeout = {}", humantime::format_duration(*after))]
    Timeout { after: std::time::Duration },
    /// The receiver's in-flight budget is taken by other requests (429, `inflight_limit`).
    #[error("receiver busy: {limit} bytes of requests already being decoded, retry later")]
    Busy { limit: usize },
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
    /// Handed on, but not written to a disk buffer within [`ACK_WAIT`], or given up there
    /// (503): the client retries; what was written meanwhile is sent twice at worst. Counted
    /// where it happened, not here.
    #[error("not stored yet: {0}; retry")]
    NotStored(&'static str),
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
            Refusal::TooLarge { .. } | Refusal::Oversized { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Refusal::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Decode(_) | Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
            Refusal::Backpressure(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::ShuttingDown | Refusal::NotStored(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `reason` of the `discarded` count.
    /// Every [`Refusal::reason`], so the self-metrics can show each at 0 from the start.
    pub const REASONS: [&'static str; 8] = [
        "too_large",
        "timeout",
        "inflight_limit",
        "unsupported_media_type",
        "decode_error",
        "invalid",
        "backpressure",
        "shutting_down",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } | Refusal::Oversized { .. } => "too_large",
            Refusal::Timeout { .. } => "timeout",
            Refusal::Busy { .. } => "inflight_limit",
            Refusal::UnsupportedMediaType(_) => "unsupported_media_type",
            Refusal::Decode(_) => "decode_error",
            Refusal::Invalid(_) => "invalid",
            Refusal::Backpressure(_) => "backpressure",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::NotStored(_) => "not_stored",
        }
    }

    /// Should the client come back later (429/503 with `Retry-After`)?
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Refusal::Backpressure(_)
                | Refusal::ShuttingDown
                | Refusal::Busy { .. }
                | Refusal::NotStored(_)
        )
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

/// Hands `batch` to `out` once every blocking downstream has room, waiting at most
/// [`FULL_WAIT`] (sleeping: call it on the blocking pool, as the receivers do). Counts `items` received;
/// a refusal also counts them discarded (`backpressure`, `shutting_down`), and the batch is
/// dropped: the client keeps it and retries, nothing is buffered here.
///
/// When a writer keeps a disk buffer ([`Output::is_acknowledged`]) it then waits, at most
/// [`ACK_WAIT`], until the batch is written there ([`crate::ack`]), so the 2xx means "on disk".
pub fn offer<T: Clone + Items>(
    out: &Output<T>,
    batch: T,
    metrics: &ComponentMetrics,
    signal: Signal,
) -> Result<(), Refusal> {
    let n = batch.items() as u64;
    let give_up = std::time::Instant::now() + FULL_WAIT;
    let bytes = batch.size_bytes();
    let mut batch = batch;
    let (acks, wait) = if out.is_acknowledged() {
        let (ack, wait) = Ack::waited(Until::Taken);
        (Acks::one(ack), Some(wait))
    } else {
        (Acks::none(), None)
    };
    let refusal = loop {
        match out.try_send_acked(batch, bytes, &acks) {
            Ok(()) => {
                metrics.received(signal).add(n);
                drop(acks);
                return match wait.map(|w| w.wait(ACK_WAIT)) {
                    None | Some(Some(Outcome::Done)) => Ok(()),
                    Some(Some(Outcome::Abandoned)) => {
                        Err(Refusal::NotStored("the collector stopped first"))
                    }
                    Some(None) => Err(Refusal::NotStored("the disk buffer is full or slow")),
                };
            }
            Err(TrySendError::Full(_, back)) if std::time::Instant::now() < give_up => {
                batch = back;
                std::thread::sleep(FULL_POLL);
            }
            Err(TrySendError::Full(name, _)) => break Refusal::Backpressure(name),
            Err(TrySendError::Closed(_)) => break Refusal::ShuttingDown,
        }
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

/// Serves `router` on `listener` (in TLS when the receiver's [`Door`] has it) until `shutdown`
/// turns true, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<access::ServerTls>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    access::serve(listener, router, tls, stopped(shutdown))
        .await
        .map_err(SourceError::Io)
}

/// What a receiver's clients pass through: TLS and authentication, each optional, built (files
/// read) when the config is checked. Every receiver takes the same two keys:
///
/// ```toml
/// tls = { cert_file = "/etc/collector/tls.crt", key_file = "/etc/collector/tls.key" }  # + client_ca_file for mTLS
/// auth = { htpasswd_file = "/etc/collector/htpasswd", bearer_tokens_file = "/run/secrets/tokens" }
/// ```
///
/// See [`access::tls`] and [`access::auth`] for every key.
#[derive(Clone, Default)]
pub struct Door {
    pub tls: Option<access::ServerTls>,
    pub auth: Option<Arc<access::Authenticator>>,
}

impl Door {
    /// Reads the certificate, key, htpasswd and token files the settings name; a mistake
    /// names the key and the file.
    pub fn build(
        tls: Option<&access::TlsSettings>,
        auth: Option<&access::AuthSettings>,
    ) -> Result<Door, super::BuildError> {
        let tls = tls.map(access::ServerTls::new).transpose().map_err(|e| {
            super::BuildError::Invalid {
                key: "tls".into(),
                reason: e.to_string(),
            }
        })?;
        let auth = auth
            .map(access::Authenticator::new)
            .transpose()
            .map_err(|e| match e {
                access::AuthError::Invalid { key, reason } => {
                    super::BuildError::Invalid { key, reason }
                }
                other => super::BuildError::Invalid {
                    key: "auth".into(),
                    reason: other.to_string(),
                },
            })?
            .map(Arc::new);
        Ok(Door { tls, auth })
    }

    /// The TLS to serve with, its failed handshakes counted in `metrics`.
    pub fn tls(&self, metrics: &ComponentMetrics) -> Option<access::ServerTls> {
        let failures = metrics.tls_handshake_failures();
        self.tls
            .clone()
            .map(|t| t.on_failed_handshake(move || failures.inc()))
    }

    /// The gate requests pass (when auth is configured), refusals counted in `metrics` by
    /// reason.
    pub fn gate(&self, metrics: &ComponentMetrics) -> Option<access::Gate> {
        let auth = self.auth.clone()?;
        Some(access::Gate::new(
            auth,
            Arc::new(AuthCounter(metrics.clone())),
            &["/ready"],
        ))
    }

    /// `router` behind the gate, when auth is configured; `/ready` stays open to probes.
    pub fn protect(&self, router: Router, metrics: &ComponentMetrics) -> Router {
        match self.gate(metrics) {
            Some(gate) => gate.protect(router),
            None => router,
        }
    }

    /// Makes the auth and TLS failure counters exist at 0 where they can happen.
    pub fn declare(&self, metrics: &ComponentMetrics) {
        if self.auth.is_some() {
            for r in access::DeniedReason::ALL {
                metrics.auth_failures(r.as_str());
            }
        }
        if self.tls.is_some() {
            metrics.tls_handshake_failures();
        }
    }
}

/// Counts a receiver's auth refusals.
struct AuthCounter(ComponentMetrics);

impl access::Observer for AuthCounter {
    fn denied(&self, reason: access::DeniedReason) {
        self.0.auth_failures(reason.as_str()).inc();
    }
}

/// A header as a string, if present and valid.
pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The bytes a receiver's requests hold at once, bounded by `max_inflight_bytes`; shown as
/// `collector_receiver_inflight_bytes` and its high-water mark
/// `collector_receiver_inflight_bytes_max`.
pub struct InflightBudget {
    limit: usize,
    used: AtomicUsize,
    high: AtomicUsize,
    gauge: Gauge,
    gauge_max: Gauge,
}

impl InflightBudget {
    pub fn new(limit: usize, metrics: &ComponentMetrics) -> Arc<Self> {
        Arc::new(InflightBudget {
            limit,
            used: AtomicUsize::new(0),
            high: AtomicUsize::new(0),
            gauge: metrics.inflight_bytes(),
            gauge_max: metrics.inflight_bytes_max(),
        })
    }

    /// An empty charge, for one request to grow.
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most bytes ever held at once.
    pub fn high_water(&self) -> usize {
        self.high.load(Ordering::Acquire)
    }

    /// Sets the gauges from the counts as they are now (not from a value one thread computed:
    /// two racing updates could otherwise leave the older one showing).
    fn publish(&self) {
        self.gauge
            .set(gauge_value(self.used.load(Ordering::Acquire)));
        self.gauge_max
            .set(gauge_value(self.high.load(Ordering::Acquire)));
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One request's share of an [`InflightBudget`], given back when dropped.
pub struct Charge {
    budget: Arc<InflightBudget>,
    held: usize,
}

impl Charge {
    /// Takes `n` more bytes: 413 when this request alone would exceed the budget (it can never
    /// fit), 429 ([`Refusal::Busy`]) when other requests hold too much of it now.
    pub fn grow(&mut self, n: usize) -> Result<(), Refusal> {
        let b = &self.budget;
        let total = self.held.saturating_add(n);
        if total > b.limit {
            return Err(Refusal::Oversized {
                size: total,
                limit: b.limit,
                what: "max_inflight_bytes",
            });
        }
        let mut cur = b.used.load(Ordering::Acquire);
        loop {
            let next = match cur.checked_add(n).filter(|next| *next <= b.limit) {
                Some(next) => next,
                None => return Err(Refusal::Busy { limit: b.limit }),
            };
            match b
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.held = total;
                    b.high.fetch_max(next, Ordering::AcqRel);
                    b.publish();
                    return Ok(());
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back `n` of the bytes held (a buffer the request no longer has).
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.held);
        if n > 0 {
            self.held -= n;
            self.budget.used.fetch_sub(n, Ordering::AcqRel);
            self.budget.publish();
        }
    }

    /// Bytes this request holds.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.held > 0 {
            self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
            self.budget.publish();
        }
    }
}

/// Admits decoding `payload_len` decompressed bytes estimated to allocate `estimate` more: 413
/// when the two exceed `max_decoded`, else the estimate is charged (429 when the budget is
/// taken). A payload the scan finds malformed is a decode error (400).
pub fn admit_decode(
    charge: &mut Charge,
    max_decoded: usize,
    payload_len: usize,
    estimate: Result<usize, wire::budget::ScanError>,
) -> Result<(), Refusal> {
    let estimate = estimate.map_err(|e| Refusal::Decode(e.to_string()))?;
    let size = payload_len.saturating_add(estimate);
    if size > max_decoded {
        return Err(Refusal::Oversized {
            size,
            limit: max_decoded,
            what: "max_decoded_bytes",
        });
    }
    charge.grow(estimate)
}

/// Admits converting a decoded request into a batch bounded at `converted` bytes
/// ([`super::converted`]): 413 when that alone exceeds `max_decoded`, else charged (429 when
/// the budget is taken).
pub fn admit_converted(
    charge: &mut Charge,
    max_decoded: usize,
    converted: usize,
) -> Result<(), Refusal> {
    if converted > max_decoded {
        return Err(Refusal::Oversized {
            size: converted,
            limit: max_decoded,
            what: "max_decoded_bytes (converted)",
        });
    }
    charge.grow(converted)
}

/// Runs `f` (decompression, decoding, conversion) on the blocking pool, off the async workers.
/// A panic in `f` is carried on; a task the runtime dropped (shutdown) is 503.
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Refusal::ShuttingDown),
    }
}

/// How a body is read: at most `max_bytes`, whole within `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: std::time::Duration,
}

/// Reads a body of at most `limits.max_bytes`, charging every chunk to `charge` as it arrives:
/// a declared `Content-Length` over the bound is refused unread (413), a body passing it is 413
/// the moment it does, one not complete within `limits.timeout` is 408 (`Refusal::Timeout`).
/// Chunks are joined at the end (the copy charged while both exist); a broken connection is a
/// decode error (nobody reads the answer).
pub async fn read_body_charged<B>(
    headers: &HeaderMap,
    body: B,
    limits: BodyLimits,
    charge: &mut Charge,
) -> Result<Bytes, Refusal>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = limits.max_bytes;
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Refusal::TooLarge { limit });
    }
    let read = collect_charged(body, limit, charge);
    tokio::time::timeout(limits.timeout, read)
        .await
        .unwrap_or(Err(Refusal::Timeout {
            after: limits.timeout,
        }))
}

async fn collect_charged<B>(body: B, limit: usize, charge: &mut Charge) -> Result<Bytes, Refusal>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use bytes::Buf;
    use http_body_util::BodyExt;
    let mut body = std::pin::pin!(body);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Refusal::Decode(format!("reading the body: {}", e.into())))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        let n = data.remaining();
        if n == 0 {
            continue;
        }
        if len.saturating_add(n) > limit {
            return Err(Refusal::TooLarge { limit });
        }
        // The chunk and its entry in `chunks` (a client sending one-byte chunks must not hold
        // 32 bytes of list per byte charged).
        charge.grow(n.saturating_add(CHUNK_ENTRY))?;
        len += n;
        chunks.push(data.copy_to_bytes(n));
    }
    let entries = chunks.len().saturating_mul(CHUNK_ENTRY);
    if chunks.len() <= 1 {
        charge.release(entries);
        return Ok(chunks.pop().unwrap_or_default());
    }
    charge.grow(len)?;
    let mut whole = bytes::BytesMut::with_capacity(len);
    for c in chunks {
        whole.extend_from_slice(&c);
    }
    // The chunks and their list are gone: the joined copy stays.
    charge.release(len.saturating_add(entries));
    Ok(whole.freeze())
}

/// What one chunk's entry in the list of a body being read takes: a `Bytes`, twice (the list
/// doubles as it grows).
const CHUNK_ENTRY: usize = 2 * std::mem::size_of::<Bytes>();

/// Undoes `Content-Encoding: gzip` (or none/`identity`), refusing output over `limit` bytes;
/// other encodings are refused.
pub fn decode_content_encoding(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, Refusal> {
    decode_content_encoding_metered(headers, body, limit, &mut |_| Ok(()))
}

/// [`decode_content_encoding`], asking `reserve` for the output before allocating it.
pub fn decode_content_encoding_metered(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), Refusal>,
) -> Result<Bytes, Refusal> {
    let encoding = header_str(headers, header::CONTENT_ENCODING)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => Ok(wire::compression::gzip_decompress_metered(&body, limit, reserve)?.into()),
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
    fn inflight_budget_charges_refuses_and_releases() {
        let registry = crate::selfmon::Registry::new();
        let m = ComponentMetrics::new(registry, "rx", "source");
        let budget = InflightBudget::new(100, &m);
        let mut a = budget.charge();
        a.grow(60).unwrap();
        let mut b = budget.charge();
        // Fits alone, not beside `a`: 429, and `b` holds nothing.
        let r = b.grow(50).unwrap_err();
        assert_eq!(
            (r.status(), r.reason()),
            (StatusCode::TOO_MANY_REQUESTS, "inflight_limit")
        );
        assert!(r.retryable());
        assert_eq!(b.held(), 0);
        // Could never fit: 413.
        let r = b.grow(101).unwrap_err();
        assert_eq!(
            (r.status(), r.reason()),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        b.grow(40).unwrap();
        assert_eq!((budget.used(), budget.high_water()), (100, 100));
        // A buffer given back: released now, never more than held.
        b.release(30);
        assert_eq!((b.held(), budget.used()), (10, 70));
        b.release(1000);
        assert_eq!((b.held(), budget.used()), (0, 60));
        b.grow(40).unwrap();
        assert_eq!(m.inflight_bytes().get(), 100);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert_eq!(
            (m.inflight_bytes().get(), m.inflight_bytes_max().get()),
            (0, 100)
        );
    }

    /// A body of `.0` one-byte chunks.
    struct Drip(usize);

    impl hyper::body::Body for Drip {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(None);
            }
            self.0 -= 1;
            let frame = hyper::body::Frame::data(Bytes::from_static(b"x"));
            std::task::Poll::Ready(Some(Ok(frame)))
        }
    }

    /// One-byte chunks are charged with their place in the list of chunks (given back once
    /// joined), so a dripping client reaches the budget long before its bytes would.
    #[tokio::test]
    async fn body_chunks_are_charged_with_their_list() {
        let m = ComponentMetrics::new(crate::selfmon::Registry::new(), "rx", "source");
        let budget = InflightBudget::new(100_000, &m);
        let limits = BodyLimits {
            max_bytes: 1 << 20,
            timeout: std::time::Duration::from_secs(60),
        };
        let mut c = budget.charge();
        let body = read_body_charged(&HeaderMap::new(), Drip(1000), limits, &mut c)
            .await
            .unwrap();
        assert_eq!((body.len(), c.held()), (1000, 1000));
        assert!(budget.high_water() >= 1000 * (1 + CHUNK_ENTRY));
        drop(c);
        let mut c = budget.charge();
        let r = read_body_charged(&HeaderMap::new(), Drip(10_000), limits, &mut c)
            .await
            .unwrap_err();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn admit_refuses_over_the_decoded_bound() {
        let m = ComponentMetrics::new(crate::selfmon::Registry::new(), "rx", "source");
        let budget = InflightBudget::new(1000, &m);
        let mut c = budget.charge();
        let r = admit_decode(&mut c, 100, 60, Ok(50)).unwrap_err();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.to_string().contains("max_decoded_bytes"), "{r}");
        admit_decode(&mut c, 100, 50, Ok(50)).unwrap();
        assert_eq!(c.held(), 50);
        let bad = Err(wire::budget::ScanError::TooDeep);
        assert_eq!(
            admit_decode(&mut c, 100, 1, bad).unwrap_err().reason(),
            "decode_error"
        );
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
