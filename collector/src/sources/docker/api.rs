//! A small Docker Engine API client: HTTP/1.1 (hyper) over the engine's unix socket, one
//! connection per request, with the few response shapes the `docker` source reads
//! (`GET /containers/json`, `GET /containers/{id}/json`, `GET /containers/{id}/logs`,
//! `GET /events`). Paths are unversioned, which the engine serves as its current version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Bodies of JSON answers are read up to this size.
const MAX_JSON_BODY: usize = 16 << 20;

/// A request to the engine failed (causes in the messages, not also `source()`: printed once).
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("no Docker socket at {}: is the Docker engine running?", path.display())]
    NoSocket { path: PathBuf },
    #[error("cannot connect to the Docker socket at {}: {error}", path.display())]
    Connect {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("Docker API {what}: {error}")]
    Http { what: String, error: hyper::Error },
    #[error("Docker API {what}: invalid request: {reason}")]
    Request { what: String, reason: String },
    #[error("Docker API {what} answered {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("Docker API {what}: cannot read the answer: {reason}")]
    Body { what: String, reason: String },
    #[error("Docker API {what} answered unexpected JSON: {error}")]
    Decode {
        what: String,
        error: serde_json::Error,
    },
}

/// One entry of `GET /containers/json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
}

/// What the source reads of `GET /containers/{id}/json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
}

/// One object of the `GET /events` stream.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "Action", default)]
    pub action: String,
}

/// The engine at a unix socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `GET path_and_query`; a non-2xx answer is an error naming the request.
    pub async fn get(&self, path_and_query: &str) -> Result<Response<Incoming>, DockerError> {
        let what = || {
            path_and_query
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let stream = match tokio::net::UnixStream::connect(&self.socket).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DockerError::NoSocket {
                    path: self.socket.clone(),
                });
            }
            Err(source) => {
                return Err(DockerError::Connect {
                    path: self.socket.clone(),
                    error: source,
                });
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| DockerError::Http {
                what: what(),
                error: source,
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "Docker API connection ended");
            }
        });
        let req = Request::get(path_and_query)
            .header(hyper::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| DockerError::Request {
                what: what(),
                reason: e.to_string(),
            })?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|source| DockerError::Http {
                what: what(),
                error: source,
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = read_body(resp.into_body(), 64 * 1024, &what())
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            return Err(DockerError::Status {
                what: what(),
                status,
                body,
            });
        }
        Ok(resp)
    }

    /// `GET` and decode a JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, DockerError> {
        let what = path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let resp = self.get(path_and_query).await?;
        let body = read_body(resp.into_body(), MAX_JSON_BODY, &what).await?;
        serde_json::from_slice(&body).map_err(|source| DockerError::Decode {
            what,
            error: source,
        })
    }

    /// Running containers.
    pub async fn list_running(&self) -> Result<Vec<ContainerSummary>, DockerError> {
        self.get_json("/containers/json").await
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerInspect, DockerError> {
        self.get_json(&format!("/containers/{id}/json")).await
    }

    /// Follows a container's stdout and stderr with timestamps, from `since` (Docker's
    /// `seconds.nanoseconds`, inclusive). The body is multiplexed frames, or the raw stream
    /// for a TTY container.
    pub async fn follow_logs(
        &self,
        id: &str,
        since: &str,
    ) -> Result<Response<Incoming>, DockerError> {
        self.get(&format!(
            "/containers/{id}/logs?follow=1&stdout=1&stderr=1&timestamps=1&since={since}"
        ))
        .await
    }

    /// The stream of container start events (newline-delimited JSON objects).
    pub async fn container_starts(&self) -> Result<Response<Incoming>, DockerError> {
        let filters = r#"{"type":["container"],"event":["start"]}"#;
        let q: String = url::form_urlencoded::byte_serialize(filters.as_bytes()).collect();
        self.get(&format!("/events?filters={q}")).await
    }
}

async fn read_body(body: Incoming, limit: usize, what: &str) -> Result<Bytes, DockerError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| DockerError::Body {
            what: what.to_string(),
            reason: e.to_string(),
        })
}

/// `unix:///path` → `/path`.
pub fn socket_path(host: &str) -> Option<PathBuf> {
    host.strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
}

/// Docker's `since`: `seconds.nanoseconds` since the epoch.
pub fn since_param(ns: i64) -> String {
    format!(
        "{}.{:09}",
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_since() {
        assert_eq!(
            socket_path("unix:///var/run/docker.sock"),
            Some(PathBuf::from("/var/run/docker.sock"))
        );
        assert_eq!(socket_path("tcp://1.2.3.4:2375"), None);
        assert_eq!(
            since_param(1_700_000_000_000_000_001),
            "1700000000.000000001"
        );
        assert_eq!(since_param(0), "0.000000000");
    }

    #[test]
    fn decodes_documented_shapes() {
        let list: Vec<ContainerSummary> = serde_json::from_str(
            r#"[{"Id":"abc","Names":["/web"],"Image":"nginx","Labels":null,"State":"running"}]"#,
        )
        .unwrap();
        assert_eq!(list[0].names, vec!["/web"]);
        let i: ContainerInspect = serde_json::from_str(
            r#"{"Id":"abc","Name":"/web","Config":{"Tty":true,"Labels":{"a":"b"}},"State":{"Running":true}}"#,
        )
        .unwrap();
        assert!(i.config.unwrap().tty);
    }
}
