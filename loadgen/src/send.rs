//! The transport: prepared requests ([`crate::payload::Prepared`]) to their targets over one
//! shared `reqwest` client, each ending in an [`Outcome`] (the status, or why there was none,
//! and the items it carried) that the engine hands to the [`crate::recorder::Recorder`] with the
//! event's *intended* time. What goes in a request is [`crate::payload`]'s business; when it is
//! sent is the engine's ([`crate::engine`]).
//!
//! # In-flight bound
//!
//! Each target (`host:port`) has a semaphore of `max_in_flight_per_target` permits: a request
//! holds one ([`Permit`]) from before it is sent until its outcome is known, so the generator
//! never holds an unbounded number of requests. The engine takes the permit *before* it spawns
//! the request, so when a target is saturated the schedule falls behind rather than queueing
//! without bound — and since latency is measured from the intended time, that wait is in the
//! numbers.
//!
//! # Failing fast
//!
//! A refused connection fails at once; a target that does not answer SYNs fails after
//! `connect_timeout`. The error names the address (`cannot connect to 127.0.0.1:9: ...`).

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Url;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::payload::Prepared;
/// How much of a refusal's body goes into the error.
const BODY_SNIPPET: usize = 256;

/// How the senders behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Requests in flight per target (`host:port`) at most (at least 1).
    pub max_in_flight_per_target: usize,
    /// PEM CA certificates trusted besides the system's, for https targets (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            max_in_flight_per_target: 64,
            ca_file: None,
        }
    }
}

/// Why a request was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("no answer from {url} in time: {detail}")]
    Timeout { url: String, detail: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("request to {url} failed: {detail}")]
    Request { url: String, detail: String },
    #[error("cannot encode the payload: {0}")]
    Encode(#[from] wire::WireError),
    #[error("bad target URL {url}: {detail}")]
    Url { url: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl SendError {
    /// The key this error is counted under in `results.json`: the HTTP status (`"429"`,
    /// `"500"`) or the kind (`"connect"`, `"timeout"`, `"request"`, `"encode"`, `"url"`).
    pub fn kind(&self) -> String {
        match self {
            SendError::Connect { .. } => "connect".into(),
            SendError::Timeout { .. } => "timeout".into(),
            SendError::Status { status, .. } => status.to_string(),
            SendError::Request { .. } | SendError::Client(_) => "request".into(),
            SendError::Encode(_) => "encode".into(),
            SendError::Url { .. } => "url".into(),
        }
    }
}

/// How one request ended.
#[derive(Debug)]
pub struct Outcome {
    /// Items the request carried.
    pub items: u64,
    /// The 2xx status, or why it was not acknowledged.
    pub result: Result<u16, SendError>,
}

impl Outcome {
    pub fn acknowledged(&self) -> bool {
        self.result.is_ok()
    }

    /// `None` when acknowledged, else [`SendError::kind`].
    pub fn error_key(&self) -> Option<String> {
        self.result.as_ref().err().map(SendError::kind)
    }
}

/// Where a signal goes: the base URL (full URL for remote write) and the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub tenant: Option<String>,
}

/// `host:port` of a URL: the unit of the in-flight bound, and the address in connect errors.
fn authority(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// The right to have one request in flight to a target.
/// (Held for its `Drop`; `None` only if the semaphore were closed, which never happens.)
pub struct Permit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// The per-target in-flight bounds: one semaphore of `max` permits per `host:port`. Clones
/// share the semaphores.
#[derive(Clone)]
pub struct InFlight {
    max: usize,
    limits: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl InFlight {
    /// At most `max` requests (at least 1) in flight per target.
    pub fn new(max: usize) -> InFlight {
        InFlight {
            max: max.max(1),
            limits: Arc::default(),
        }
    }

    /// Waits for room to send one more request to `url`'s target.
    pub async fn acquire(&self, url: &Url) -> Permit {
        let sem = self
            .limits
            .lock()
            .entry(authority(url))
            .or_insert_with(|| Arc::new(Semaphore::new(self.max)))
            .clone();
        // The semaphore is never closed, so acquiring only waits.
        Permit(sem.acquire_owned().await.ok())
    }
}

/// The senders: one HTTP client and the per-target in-flight bounds. Clones share both.
#[derive(Clone)]
pub struct Senders {
    client: reqwest::Client,
    in_flight: InFlight,
}

impl Senders {
    pub fn new(cfg: &SenderConfig) -> Result<Senders, SendError> {
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.max_in_flight_per_target)
            .no_proxy()
            .user_agent(concat!("loadgen/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_file {
            let certs = access::tls::read_certificates(path)
                .map_err(|e| SendError::Client(format!("--ca-file {e}")))?;
            for der in &certs {
                let cert = reqwest::Certificate::from_der(der)
                    .map_err(|e| SendError::Client(format!("--ca-file {}: {e}", path.display())))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| SendError::Client(error_chain(&e)))?;
        Ok(Senders {
            client,
            in_flight: InFlight::new(cfg.max_in_flight_per_target),
        })
    }

    /// Waits for room to send one more request to `url`'s target.
    pub async fn acquire(&self, url: &Url) -> Permit {
        self.in_flight.acquire(url).await
    }

    /// Sends `req`, holding `permit` until the outcome is known.
    pub async fn execute(&self, permit: Permit, req: Prepared) -> Outcome {
        let items = req.items;
        let result = self.post(req).await;
        drop(permit);
        Outcome { items, result }
    }

    /// Takes a permit for the request's target, then sends it.
    pub async fn send(&self, req: Result<Prepared, SendError>) -> Outcome {
        match req {
            Ok(req) => {
                let permit = self.acquire(&req.url).await;
                self.execute(permit, req).await
            }
            Err(e) => Outcome {
                items: 0,
                result: Err(e),
            },
        }
    }

    async fn post(&self, req: Prepared) -> Result<u16, SendError> {
        let mut rb = self.client.post(req.url.clone()).body(req.body);
        for (name, value) in req.headers {
            rb = rb.header(name, value);
        }
        let resp = rb.send().await.map_err(|e| classify(&req.url, &e))?;
        let status = resp.status();
        // Read the body either way, so the connection can be reused.
        let body = resp.bytes().await.map_err(|e| classify(&req.url, &e))?;
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SNIPPET)])
                .trim()
                .to_string();
            Err(SendError::Status {
                url: shown(&req.url),
                status: status.as_u16(),
                // A proxy's error page may quote the URL asked for.
                body: wire::redact::text(&text).into_owned(),
            })
        }
    }
}

/// A URL as errors show it: credentials masked ([`wire::redact`]).
fn shown(url: &Url) -> String {
    wire::redact::url(url.as_str()).into_owned()
}

/// A `reqwest` error as a [`SendError`].
fn classify(url: &Url, e: &reqwest::Error) -> SendError {
    // reqwest's message names the URL, query included.
    let detail = wire::redact::text(&error_chain(e)).into_owned();
    if e.is_connect() {
        SendError::Connect {
            addr: authority(url),
            detail,
        }
    } else if e.is_timeout() {
        SendError::Timeout {
            url: shown(url),
            detail,
        }
    } else {
        SendError::Request {
            url: shown(url),
            detail,
        }
    }
}

/// An error and its sources, `: `-separated (reqwest's own message hides the root cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
