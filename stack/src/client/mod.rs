//! Typed clients for the query APIs of Loki ([`LokiClient`]), Prometheus/Mimir ([`PromClient`])
//! and Tempo ([`TempoClient`]), built from [`Endpoints`] so the same test runs against the
//! embedded stack and against real servers. Every request carries the tenant and credentials
//! ([`Endpoints::decorate`]); all clients share one `reqwest::Client` (one connection pool).
//!
//! Every failure is a [`ClientError`] whose message says what was sent (method, URL with its
//! query) and what came back (status, body), without credentials: test failure messages are
//! built from it.

pub mod loki;
pub mod prom;
pub mod tempo;

pub use loki::LokiClient;
pub use prom::PromClient;
use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::endpoints::Endpoints;

pub use tempo::TempoClient;

/// How much of a response body an error message keeps.
const BODY_IN_ERRORS: usize = 2048;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL could not be built from the endpoint.
    #[error("cannot build a URL from {base} and {path:?}: {reason}")]
    Url {
        base: String,
        path: String,
        reason: String,
    },
    /// The request could not be encoded.
    #[error("cannot encode the request to {url}: {reason}")]
    Encode { url: String, reason: String },
    /// No response (connection refused, timeout, ...).
    #[error("{method} {url}: {reason}")]
    Transport {
        method: Method,
        url: String,
        reason: String,
    },
    /// A response with a status other than 2xx.
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        body: String,
    },
    /// A 2xx response whose body is not what the API documents.
    #[error("{method} {url}: HTTP {status}, cannot decode the body ({reason}): {body}")]
    Decode {
        method: Method,
        url: String,
        status: StatusCode,
        reason: String,
        body: String,
    },
}

impl ClientError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } | ClientError::Decode { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// The `reqwest::Client` every client of this module shares.
pub fn shared_http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("stack-client/", env!("CARGO_PKG_VERSION")))
                .build()
                // Building fails only when the TLS backend cannot initialise; a default client
                // then fails each request with a transport error that says so.
                .unwrap_or_default()
        })
        .clone()
}

/// A client that also trusts the CA certificates in `ca_file` (one per file, shared). A file
/// that cannot be read or holds no certificate gives a client that trusts only the system's:
/// its requests then fail with the certificate error, which names the cause.
pub fn http_client_trusting(ca_file: &std::path::Path) -> reqwest::Client {
    static CLIENTS: OnceLock<parking_lot::Mutex<HashMap<std::path::PathBuf, reqwest::Client>>> =
        OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    let mut clients = clients.lock();
    if let Some(c) = clients.get(ca_file) {
        return c.clone();
    }
    let mut builder =
        reqwest::Client::builder().user_agent(concat!("stack-client/", env!("CARGO_PKG_VERSION")));
    match access::tls::read_certificates(ca_file) {
        Ok(certs) => {
            for c in certs
                .iter()
                .filter_map(|c| reqwest::Certificate::from_der(c).ok())
            {
                builder = builder.add_root_certificate(c);
            }
        }
        Err(e) => tracing::warn!(error = %e, "CA file not used"),
    }
    let client = builder.build().unwrap_or_default();
    clients.insert(ca_file.to_path_buf(), client.clone());
    client
}

/// A URL as it may appear in messages: password and secret query parameters masked
/// ([`wire::redact`]).
fn redact(url: &Url) -> String {
    wire::redact::url(url.as_str()).into_owned()
}

/// A body as errors quote it: cut, and with the URLs it may quote (a proxy's error page)
/// redacted.
fn truncate(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = wire::redact::text(&text);
    if text.len() <= BODY_IN_ERRORS {
        return text.into_owned();
    }
    let mut end = BODY_IN_ERRORS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], body.len())
}

/// A 2xx response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub method: Method,
    pub url: Url,
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Reply {
    /// Decodes the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(e))
    }

    /// An error saying the body could not be decoded.
    pub fn decode_error(&self, reason: impl ToString) -> ClientError {
        ClientError::Decode {
            method: self.method.clone(),
            url: redact(&self.url),
            status: self.status,
            reason: reason.to_string(),
            body: truncate(&self.body),
        }
    }
}

/// What the three clients share: endpoints (tenant, credentials) and the HTTP client.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub endpoints: Endpoints,
}

impl Http {
    pub fn new(endpoints: &Endpoints) -> Self {
        let client = match &endpoints.ca_file {
            None => shared_http_client(),
            Some(ca) => http_client_trusting(ca),
        };
        Http {
            client,
            endpoints: endpoints.clone(),
        }
    }

    /// `base` joined with a relative `path` (the base's own path is kept) and query parameters.
    pub fn url(
        &self,
        base: &Url,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Url, ClientError> {
        let err = |reason: String| ClientError::Url {
            base: redact(base),
            path: path.to_string(),
            reason,
        };
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let mut url = base
            .join(path.trim_start_matches('/'))
            .map_err(|e| err(e.to_string()))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// `base` followed by path segments, each percent-encoded (label names, tag names), and
    /// query parameters.
    pub fn url_segments(
        &self,
        base: &Url,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Url, ClientError> {
        let mut url = self.url(base, "", query)?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Url {
                base: redact(base),
                path: segments.join("/"),
                reason: "the base URL cannot have a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request, reads the body, and turns anything but 2xx into [`ClientError::Status`].
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Reply, ClientError> {
        let transport = |e: reqwest::Error| ClientError::Transport {
            method: method.clone(),
            url: redact(&url),
            reason: e.without_url().to_string(),
        };
        let rb = self
            .endpoints
            .decorate(self.client.request(method.clone(), url.clone()));
        let resp = build(rb).send().await.map_err(transport)?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ClientError::Status {
                method,
                url: redact(&url),
                status,
                body: truncate(&body),
            });
        }
        Ok(Reply {
            method,
            url,
            status,
            content_type,
            body,
        })
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        self.send(Method::GET, url, |rb| rb).await?.json()
    }

    /// GET, expecting any 2xx (readiness probes).
    pub async fn get_ok(&self, url: Url) -> Result<(), ClientError> {
        self.send(Method::GET, url, |rb| rb).await.map(|_| ())
    }
}

/// A duration as Prometheus, Loki and Tempo accept it in query parameters (`1.5s` style).
pub(crate) fn duration_param(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        let u = Url::parse("http://127.0.0.1:9/").unwrap();
        Endpoints {
            loki: u.clone(),
            prometheus_write: u.clone(),
            prometheus_query: u.clone(),
            tempo_otlp_http: u.clone(),
            tempo_otlp_grpc: None,
            tempo_query: u,
            grafana: None,
            tenant: None,
            auth: crate::Auth::None,
            ca_file: None,
        }
    }

    #[test]
    fn url_keeps_the_base_path_and_encodes_the_query() {
        let http = Http::new(&endpoints());
        let base = Url::parse("http://u:secret@127.0.0.1:9/prometheus").unwrap();
        let url = http
            .url(&base, "/api/v1/query", &[("query", "up{a=\"b c\"}".into())])
            .unwrap();
        assert_eq!(url.path(), "/prometheus/api/v1/query");
        assert!(
            url.query()
                .unwrap()
                .starts_with("query=up%7Ba%3D%22b+c%22%7D")
        );
        assert!(!redact(&url).contains("secret"));
    }

    #[test]
    fn long_bodies_are_truncated_on_a_char_boundary() {
        let body = "é".repeat(BODY_IN_ERRORS);
        let t = truncate(body.as_bytes());
        assert!(t.ends_with(&format!("... ({} bytes)", body.len())));
    }
}
