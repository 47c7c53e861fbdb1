//! What the writers share about talking to a backend: the client settings (`url`, `tenant_id`,
//! `basic_auth`, `bearer_token`, `headers`, `timeout`, `tls`), an HTTP client (reqwest with
//! rustls) that POSTs a body and classifies the answer into an [`Attempt`], and helpers for the
//! gRPC writer (credentials as metadata).
//!
//! Classification (Prometheus remote write 1.0, Loki, OTLP/HTTP agree on it): 2xx sent; 429 and
//! 5xx retried (a 429's or 503's `Retry-After` honoured); connection errors retried; any other
//! status dropped, counted as `http_<status>`, with the backend's reason logged, unless the
//! writer's [`PartialParser`] reads from the answer that only part of the request was refused
//! (the rest stored): then [`Attempt::Partial`]. Credentials never reach
//! logs or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use super::retry::{Attempt, Split};
use crate::sources::BuildError;

/// The `User-Agent` every writer sends.
pub const USER_AGENT: &str = concat!("collector/", env!("CARGO_PKG_VERSION"));

pub use wire::http::{Auth, TENANT_HEADER};

/// How much of a refusal's body is logged.
const BODY_IN_LOGS: usize = 512;

/// Where and how a writer connects.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub url: String,
    /// Sent as `X-Scope-OrgID` (gRPC: `x-scope-orgid`).
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Extra headers on every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Bound on each attempt.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub tls: TlsConfig,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &redact(&self.url))
            .field("tenant_id", &self.tenant_id)
            .field("basic_auth", &self.basic_auth)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl ClientConfig {
    /// The keys this struct reads from a writer's table.
    pub const KEYS: &'static [&'static str] = &[
        "url",
        "tenant_id",
        "basic_auth",
        "bearer_token",
        "headers",
        "timeout",
        "tls",
    ];

    /// The credentials, checked: at most one kind.
    pub fn auth(&self) -> Result<Auth, BuildError> {
        match (&self.basic_auth, &self.bearer_token) {
            (Some(_), Some(_)) => Err(BuildError::Invalid {
                key: "basic_auth".into(),
                reason: "set either basic_auth or bearer_token, not both".into(),
            }),
            (Some(b), None) => Ok(Auth::Basic {
                username: b.username.clone(),
                password: b.password.clone(),
            }),
            (None, Some(t)) => Ok(Auth::Bearer(t.clone())),
            (None, None) => Ok(Auth::None),
        }
    }

    /// The `Authorization` header value, if any.
    pub fn authorization(&self) -> Result<Option<String>, BuildError> {
        Ok(self.auth()?.authorization())
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `basic_auth = { username, password }`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BasicAuth({}:***)", self.username)
    }
}

/// `tls = { ca_file, cert_file, key_file, insecure_skip_verify }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CAs to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate (chain) presented to a server that asks for one (mTLS); with
    /// `key_file`.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    /// Accept any certificate (testing only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.insecure_skip_verify
    }
}

/// Moves `keys` out of `table` into a table of their own, so that shared settings and a
/// writer's own settings can each be parsed with unknown keys refused.
pub fn take_keys(table: &mut toml::Table, keys: &[&str]) -> toml::Table {
    keys.iter()
        .filter_map(|k| table.remove(*k).map(|v| (k.to_string(), v)))
        .collect()
}

/// A URL as it may appear in logs: password and secret query parameters masked
/// ([`wire::redact`]), as it was written otherwise.
pub fn redact(url: &str) -> String {
    wire::redact::url(url).into_owned()
}

/// A body cut to what a log line should hold.
pub fn truncate(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= BODY_IN_LOGS {
        return text.trim().to_string();
    }
    let mut end = BODY_IN_LOGS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], body.len())
}

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::Utc::now();
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

/// Reads a refusal (a 4xx other than 429: its headers and whole body) for how much of the
/// request the backend stored anyway; `None` when it does not say (then all of it is counted
/// as refused).
pub type PartialParser = fn(&HeaderMap, &[u8]) -> Option<Split>;

/// POSTs bodies to one URL with the writer's headers and credentials.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    partial: Option<PartialParser>,
}

impl HttpClient {
    /// A client for `url` (already completed by the writer, e.g. with `/v1/traces`), sending
    /// `fixed` headers (content type, encoding, ...) besides the configured ones.
    pub fn new(
        cfg: &ClientConfig,
        url: &str,
        fixed: &[(&'static str, &'static str)],
    ) -> Result<Self, BuildError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| BuildError::Invalid {
            key: "url".into(),
            reason: format!("{:?} is not a URL: {e}", redact(url)),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(BuildError::Invalid {
                key: "url".into(),
                reason: format!("scheme {:?} is not http or https", parsed.scheme()),
            });
        }
        let mut headers = HeaderMap::new();
        for (k, v) in fixed {
            headers.insert(*k, HeaderValue::from_static(v));
        }
        for (k, v) in &cfg.headers {
            let invalid = |reason: String| BuildError::Invalid {
                key: format!("headers.{k}"),
                reason,
            };
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| invalid(e.to_string()))?;
            let mut value = HeaderValue::from_str(v).map_err(|e| invalid(e.to_string()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(a) = cfg.authorization()? {
            let mut value = HeaderValue::from_str(&a).map_err(|e| BuildError::Invalid {
                key: "basic_auth".into(),
                reason: e.to_string(),
            })?;
            value.set_sensitive(true);
            // Appended, as reqwest's `basic_auth`/`bearer_auth` did: a configured
            // `Authorization` header is not silently replaced.
            headers.append(AUTHORIZATION, value);
        }
        if let Some(t) = &cfg.tenant_id {
            let value = HeaderValue::from_str(t).map_err(|e| BuildError::Invalid {
                key: "tenant_id".into(),
                reason: e.to_string(),
            })?;
            headers.insert(TENANT_HEADER, value);
        }
        // No redirects: a push answered 3xx is a misconfigured URL, dropped and logged.
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout);
        if let Some(path) = &cfg.tls.ca_file {
            let pem = std::fs::read(path).map_err(|e| BuildError::Invalid {
                key: "tls.ca_file".into(),
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| BuildError::Invalid {
                    key: "tls.ca_file".into(),
                    reason: format!("{} holds no usable PEM certificate: {e}", path.display()),
                })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        match (&cfg.tls.cert_file, &cfg.tls.key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                let read = |key: &str, path: &std::path::Path| {
                    std::fs::read(path).map_err(|e| BuildError::Invalid {
                        key: key.into(),
                        reason: format!("cannot read {}: {e}", path.display()),
                    })
                };
                let mut pem = read("tls.cert_file", cert)?;
                pem.push(b'\n');
                pem.extend(read("tls.key_file", key)?);
                let identity =
                    reqwest::Identity::from_pem(&pem).map_err(|e| BuildError::Invalid {
                        key: "tls.cert_file".into(),
                        reason: format!(
                            "{} and {} are not a PEM certificate and its key: {e}",
                            cert.display(),
                            key.display()
                        ),
                    })?;
                builder = builder.identity(identity);
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(BuildError::Invalid {
                    key: "tls.cert_file".into(),
                    reason: "cert_file and key_file go together".into(),
                });
            }
        }
        if cfg.tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| BuildError::Invalid {
            key: "tls".into(),
            reason: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(HttpClient {
            client,
            url: parsed,
            headers,
            partial: None,
        })
    }

    /// Reads refusals with `parser` for partial ones.
    pub fn with_partial(mut self, parser: PartialParser) -> Self {
        self.partial = Some(parser);
        self
    }

    /// POSTs `body` once. `Ok` holds a 2xx answer's body; `Err` what else came of it.
    pub async fn post(&self, body: Bytes) -> Result<Bytes, Attempt> {
        let resp = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| Attempt::Retry {
                outcome: "error",
                reason: e.without_url().to_string(),
                retry_after: None,
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let headers =
            (!status.is_success() && self.partial.is_some()).then(|| resp.headers().clone());
        let body = resp.bytes().await;
        if status.is_success() {
            // The backend acknowledged; a body we could not read changes nothing.
            return Ok(body.unwrap_or_default());
        }
        let body = body.unwrap_or_default();
        let said = truncate(&body);
        let code = status.as_u16();
        Err(if code == 429 || status.is_server_error() {
            Attempt::Retry {
                outcome: if code == 429 { "4xx" } else { "5xx" },
                reason: format!("HTTP {code}: {said}"),
                retry_after: if code == 429 || code == 503 {
                    retry_after
                } else {
                    None
                },
            }
        } else if let Some(split) = self
            .partial
            .zip(headers)
            .filter(|_| status.is_client_error())
            .and_then(|(parse, h)| parse(&h, &body))
        {
            Attempt::Partial {
                split,
                reason: format!("http_{code}"),
                message: said,
            }
        } else {
            Attempt::Drop {
                outcome: if status.is_client_error() {
                    "4xx"
                } else {
                    "other"
                },
                reason: format!("http_{code}"),
                message: said,
            }
        })
    }

    /// [`HttpClient::post`] for backends whose 2xx body carries nothing.
    pub async fn post_simple(&self, body: Bytes) -> Attempt {
        match self.post(body).await {
            Ok(_) => Attempt::Ok { rejected: 0 },
            Err(a) => a,
        }
    }

    /// The headers sent (tests check them).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// The content type of protobuf bodies.
pub const PROTOBUF: (&str, &str) = ("content-type", wire::http::PROTOBUF);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_seconds_or_date() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "a date in the past means now"
        );
        assert!(parse_retry_after("soon").is_none());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let cfg: ClientConfig = toml::from_str(
            r#"
            url = "http://user:pw@example.com/push"
            bearer_token = "tok3n"
            headers = { "X-Api-Key" = "k3y" }
            "#,
        )
        .unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("tok3n") && !dbg.contains("k3y") && !dbg.contains("pw"));
        let both: ClientConfig = toml::from_str(
            r#"
            url = "http://example.com"
            bearer_token = "t"
            basic_auth = { username = "u", password = "p" }
            "#,
        )
        .unwrap();
        assert!(both.auth().is_err());
    }

    #[test]
    fn bad_headers_and_urls_are_build_errors() {
        let cfg: ClientConfig =
            toml::from_str("url = \"http://x\"\nheaders = { \"bad name\" = \"v\" }").unwrap();
        assert!(matches!(
            HttpClient::new(&cfg, &cfg.url, &[]),
            Err(BuildError::Invalid { key, .. }) if key == "headers.bad name"
        ));
        let cfg: ClientConfig = toml::from_str("url = \"ftp://x\"").unwrap();
        assert!(HttpClient::new(&cfg, &cfg.url, &[]).is_err());
        let cfg: ClientConfig =
            toml::from_str("url = \"https://x\"\ntls = { ca_file = \"/nonexistent.pem\" }")
                .unwrap();
        assert!(matches!(
            HttpClient::new(&cfg, &cfg.url, &[]),
            Err(BuildError::Invalid { key, .. }) if key == "tls.ca_file"
        ));
    }
}
