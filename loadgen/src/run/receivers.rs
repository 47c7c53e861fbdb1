//! Where a running collector receives each signal (`--collector`, `--collector-loki-url`,
//! `--collector-write-url`, `--collector-otlp-url`).
//!
//! A collector listens on one port per receiver, so one base URL cannot name them all.
//! `--collector http://HOST` takes the shipped gateway's ports on HOST
//! (`collector/examples/gateway.toml`): the Loki push API on 3500, Prometheus remote write on
//! 19291, OTLP/HTTP on 4318. Each receiver's own flag overrides its default, for Alloy, the
//! OpenTelemetry Collector, Vector or a gateway on other ports (`deploy/peers/`).

use reqwest::Url;

/// The shipped gateway's Loki push port.
pub const GATEWAY_LOKI_PORT: u16 = 3500;
/// The shipped gateway's remote-write port.
pub const GATEWAY_REMOTE_WRITE_PORT: u16 = 19291;
/// The shipped gateway's OTLP/HTTP port.
pub const GATEWAY_OTLP_HTTP_PORT: u16 = 4318;

/// The receivers of a running collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receivers {
    /// Loki push base URL (`/loki/api/v1/push` is appended).
    pub loki: Url,
    /// The full remote-write URL.
    pub remote_write: Url,
    /// OTLP/HTTP base URL (`/v1/traces`, `/v1/logs`, `/v1/metrics` are appended).
    pub otlp: Url,
}

/// The receiver URLs as given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverFlags {
    /// `--collector`: the collector's host, as `http://HOST` (no port).
    pub host: Option<Url>,
    /// `--collector-loki-url`: a Loki push base, or the full push URL.
    pub loki: Option<Url>,
    /// `--collector-write-url`: the full remote-write URL.
    pub remote_write: Option<Url>,
    /// `--collector-otlp-url`: the OTLP/HTTP base.
    pub otlp: Option<Url>,
}

/// A URL as errors show it: credentials masked.
fn shown(url: &Url) -> std::borrow::Cow<'_, str> {
    wire::redact::url(url.as_str())
}

/// Receiver flags that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiverError {
    #[error(
        "--collector {}: give the collector's host without a port (http://HOST); its receivers are taken at the shipped gateway's ports (Loki push {GATEWAY_LOKI_PORT}, remote write {GATEWAY_REMOTE_WRITE_PORT}, OTLP/HTTP {GATEWAY_OTLP_HTTP_PORT}). For other ports name each receiver: --collector-loki-url, --collector-write-url, --collector-otlp-url",
        shown(.0)
    )]
    PortInHost(Url),
    #[error(
        "--collector {}: a path cannot be shared by receivers on different ports; name each receiver with --collector-loki-url, --collector-write-url, --collector-otlp-url",
        shown(.0)
    )]
    PathInHost(Url),
    #[error(
        "without --collector HOST, every receiver needs its URL: missing {0} (or give --collector http://HOST for the shipped gateway's ports)"
    )]
    Missing(&'static str),
    #[error("{flag} {}: only http and https URLs are supported", shown(url))]
    Scheme { flag: &'static str, url: Url },
}

impl ReceiverFlags {
    /// Whether any receiver flag was given (the run then goes through a running collector).
    pub fn given(&self) -> bool {
        self.host.is_some()
            || self.loki.is_some()
            || self.remote_write.is_some()
            || self.otlp.is_some()
    }

    /// The receivers: each given URL, the rest at the gateway's ports on the host.
    pub fn resolve(&self) -> Result<Receivers, ReceiverError> {
        if let Some(h) = &self.host {
            if h.port().is_some() {
                return Err(ReceiverError::PortInHost(h.clone()));
            }
            if !matches!(h.path(), "" | "/") {
                return Err(ReceiverError::PathInHost(h.clone()));
            }
        }
        for (flag, url) in [
            ("--collector", &self.host),
            ("--collector-loki-url", &self.loki),
            ("--collector-write-url", &self.remote_write),
            ("--collector-otlp-url", &self.otlp),
        ] {
            if let Some(u) = url
                && !matches!(u.scheme(), "http" | "https")
            {
                return Err(ReceiverError::Scheme {
                    flag,
                    url: u.clone(),
                });
            }
        }
        let at = |port: u16, path: &str, flag: &'static str| -> Result<Url, ReceiverError> {
            let mut u = self.host.clone().ok_or(ReceiverError::Missing(flag))?;
            u.set_port(Some(port))
                .map_err(|()| ReceiverError::PortInHost(u.clone()))?;
            u.set_path(path);
            Ok(u)
        };
        let loki = match &self.loki {
            Some(u) => push_base(u),
            None => at(GATEWAY_LOKI_PORT, "/", "--collector-loki-url")?,
        };
        let remote_write = match &self.remote_write {
            Some(u) => u.clone(),
            None => at(
                GATEWAY_REMOTE_WRITE_PORT,
                "/api/v1/write",
                "--collector-write-url",
            )?,
        };
        let otlp = match &self.otlp {
            Some(u) => u.clone(),
            None => at(GATEWAY_OTLP_HTTP_PORT, "/", "--collector-otlp-url")?,
        };
        Ok(Receivers {
            loki,
            remote_write,
            otlp,
        })
    }
}

/// A Loki push URL as the base the push path is appended to: a full push URL loses its
/// `/loki/api/v1/push`.
fn push_base(u: &Url) -> Url {
    let mut base = u.clone();
    let path = u.path().trim_end_matches('/');
    if let Some(prefix) = path.strip_suffix("/loki/api/v1/push") {
        base.set_path(if prefix.is_empty() { "/" } else { prefix });
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_host_takes_the_gateway_ports() {
        let r = ReceiverFlags {
            host: Some(url("http://gw.example")),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(r.loki.as_str(), "http://gw.example:3500/");
        assert_eq!(
            r.remote_write.as_str(),
            "http://gw.example:19291/api/v1/write"
        );
        assert_eq!(r.otlp.as_str(), "http://gw.example:4318/");
    }

    #[test]
    fn each_receiver_can_be_named() {
        let r = ReceiverFlags {
            host: Some(url("http://127.0.0.1")),
            loki: Some(url("http://127.0.0.1:3100/loki/api/v1/push")),
            remote_write: Some(url("http://127.0.0.1:9999/api/v1/metrics/write")),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(r.loki.as_str(), "http://127.0.0.1:3100/");
        assert_eq!(
            r.remote_write.as_str(),
            "http://127.0.0.1:9999/api/v1/metrics/write"
        );
        assert_eq!(r.otlp.as_str(), "http://127.0.0.1:4318/");
        let all = ReceiverFlags {
            loki: Some(url("http://h:1/gw")),
            remote_write: Some(url("http://h:2/w")),
            otlp: Some(url("http://h:3/otlp")),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(all.loki.as_str(), "http://h:1/gw");
    }

    #[test]
    fn mistakes_are_named() {
        let e = ReceiverFlags {
            host: Some(url("http://127.0.0.1:4318")),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("without a port"), "{e}");
        let e = ReceiverFlags {
            loki: Some(url("http://h:1/")),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(e, ReceiverError::Missing("--collector-write-url"));
        let e = ReceiverFlags {
            host: Some(url("ftp://h")),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(e, ReceiverError::Scheme { .. }));
    }
}
