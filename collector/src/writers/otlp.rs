//! `otlp`: exports spans with OTLP to Tempo (or any OTLP receiver), like Alloy's
//! `otelcol.exporter.otlp` / `otelcol.exporter.otlphttp`.
//!
//! - `protocol = "grpc"` (default): `TraceService/Export` over tonic to `url`
//!   (`http://tempo:4317`); the tenant goes as `x-scope-orgid` metadata, credentials as
//!   `authorization`, `headers` as metadata. Per the OTLP spec, CANCELLED, DEADLINE_EXCEEDED,
//!   ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS and RESOURCE_EXHAUSTED are retried (after a
//!   `google.rpc.RetryInfo` delay when the status carries one, up to `max_backoff`); every
//!   other code (INVALID_ARGUMENT, ...) drops the batch, counted as `grpc_<code>`. TLS is not
//!   available over gRPC (the build has no tonic TLS): an `https` URL or `tls` is refused.
//! - `protocol = "http"`: protobuf POSTed to `{url}/v1/traces`, classified like the other HTTP
//!   writers.
//!
//! `compression = "gzip"` (default, as the OpenTelemetry Collector's `otlp` and `otlphttp`
//! exporters) or `"none"`: over gRPC the message is sent gzip-compressed (`grpc-encoding: gzip`),
//! over HTTP the body with `Content-Encoding: gzip`.
//!
//! `batch_size` counts spans (default 8192). A partial success's `rejected_spans` are counted
//! as `discarded{reason="rejected"}`.

use std::sync::OnceLock;

use bytes::Bytes;
use serde::Deserialize;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};
use wire::otlp::grpc::TraceServiceClient;
use wire::otlp::{Encoding, ExportTraceServiceRequest, ExportTraceServiceResponse};

use super::batcher::{Engine, Sink, parse_config};
use super::http::{HttpClient, PROTOBUF};
use super::retry::Attempt;
use crate::event::{ResourceSpans, Signal};
use crate::sources::BuildError;

/// `grpc` or `http`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Grpc,
    Http,
}

/// How export bodies are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

/// The writer's own keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OtlpConfig {
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    compression: Compression,
    /// Spans per export.
    #[serde(default = "default_batch_size")]
    batch_size: usize,
}

fn default_batch_size() -> usize {
    8192
}

enum Transport {
    Http(Box<HttpClient>),
    Grpc(Box<GrpcTransport>),
}

struct GrpcTransport {
    endpoint: Endpoint,
    /// Made on first use: a channel needs a running runtime.
    client: OnceLock<TraceServiceClient<Channel>>,
    metadata: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
}

/// Encodes and exports batches of `ResourceSpans`.
pub struct OtlpSink {
    transport: Transport,
    compression: Compression,
}

/// An encoded export.
pub enum Payload {
    Http(Bytes),
    Grpc(ExportTraceServiceRequest),
}

/// Builds the writer from its settings.
pub fn build(table: toml::Table) -> Result<Engine<OtlpSink>, BuildError> {
    let (common, own): (_, OtlpConfig) = parse_config(table)?;
    let c = &common.client;
    let transport = match own.protocol {
        Protocol::Http => {
            let url = format!("{}/v1/traces", c.url.trim_end_matches('/'));
            let fixed: &[_] = match own.compression {
                Compression::Gzip => &[PROTOBUF, ("content-encoding", wire::http::GZIP)],
                Compression::None => &[PROTOBUF],
            };
            Transport::Http(Box::new(HttpClient::new(c, &url, fixed)?))
        }
        Protocol::Grpc => {
            if c.tls.is_set() || !c.url.starts_with("http://") {
                return Err(BuildError::Invalid {
                    key: "url".into(),
                    reason:
                        "gRPC needs an http:// URL (TLS is only available with protocol = \"http\")"
                            .into(),
                });
            }
            let endpoint = Endpoint::from_shared(c.url.clone())
                .map_err(|e| BuildError::Invalid {
                    key: "url".into(),
                    reason: e.to_string(),
                })?
                .timeout(c.timeout)
                .connect_timeout(c.timeout)
                .user_agent(super::http::USER_AGENT)
                .map_err(|e| BuildError::Invalid {
                    key: "url".into(),
                    reason: e.to_string(),
                })?;
            let mut pairs: Vec<(String, String)> = c
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            if let Some(t) = &c.tenant_id {
                pairs.push((wire::http::TENANT_METADATA.into(), t.clone()));
            }
            if let Some(a) = c.authorization()? {
                pairs.push(("authorization".into(), a));
            }
            let metadata = pairs
                .into_iter()
                .map(|(k, v)| {
                    let invalid = |reason: String| BuildError::Invalid {
                        key: format!("headers.{k}"),
                        reason,
                    };
                    let key = AsciiMetadataKey::from_bytes(k.as_bytes())
                        .map_err(|e| invalid(e.to_string()))?;
                    let value =
                        AsciiMetadataValue::try_from(v).map_err(|e| invalid(e.to_string()))?;
                    Ok((key, value))
                })
                .collect::<Result<_, BuildError>>()?;
            Transport::Grpc(Box::new(GrpcTransport {
                endpoint,
                client: OnceLock::new(),
                metadata,
            }))
        }
    };
    let sink = OtlpSink {
        transport,
        compression: own.compression,
    };
    Ok(Engine::new(sink, own.batch_size, &common))
}

fn rejected(resp: &ExportTraceServiceResponse) -> u64 {
    resp.partial_success
        .as_ref()
        .map(|p| u64::try_from(p.rejected_spans).unwrap_or(0))
        .unwrap_or(0)
}

/// The `google.rpc.RetryInfo` delay a status' details carry, if any (the OTLP spec: a throttled
/// client SHOULD wait that long).
pub fn retry_delay(status: &tonic::Status) -> Option<std::time::Duration> {
    use wire::otlp::rpc;
    let details: rpc::Status = prost::Message::decode(status.details()).ok()?;
    let info = details
        .details
        .iter()
        .find(|a| a.type_url == rpc::RETRY_INFO_TYPE_URL)?;
    let d = <rpc::RetryInfo as prost::Message>::decode(info.value.as_slice())
        .ok()?
        .retry_delay?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(
        std::time::Duration::new(secs, 0)
            .saturating_add(std::time::Duration::from_nanos(u64::from(nanos))),
    )
}

/// The OTLP spec's reading of a gRPC status.
pub fn classify(status: &tonic::Status) -> Attempt {
    use tonic::Code;
    let code = status.code();
    let name = match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    };
    let retryable = matches!(
        code,
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
    );
    let message = super::http::truncate(status.message().as_bytes());
    if retryable {
        Attempt::Retry {
            outcome: match code {
                Code::ResourceExhausted => "4xx",
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => "error",
                _ => "5xx",
            },
            reason: format!("gRPC {name}: {message}"),
            retry_after: retry_delay(status),
        }
    } else {
        Attempt::Drop {
            outcome: match code {
                Code::Internal | Code::Unknown | Code::Unimplemented => "5xx",
                _ => "4xx",
            },
            reason: format!("grpc_{name}"),
            message,
        }
    }
}

impl OtlpSink {
    async fn export(&self, payload: &Payload) -> Attempt {
        match (&self.transport, payload) {
            (Transport::Http(http), Payload::Http(body)) => match http.post(body.clone()).await {
                Ok(body) if body.is_empty() => Attempt::Ok { rejected: 0 },
                Ok(body) => Attempt::Ok {
                    rejected: wire::otlp::decode::<ExportTraceServiceResponse>(
                        &body,
                        Encoding::Protobuf,
                    )
                    .map(|r| rejected(&r))
                    .unwrap_or(0),
                },
                Err(a) => a,
            },
            (Transport::Grpc(g), Payload::Grpc(req)) => {
                let mut c = g
                    .client
                    .get_or_init(|| {
                        let client = TraceServiceClient::new(g.endpoint.connect_lazy());
                        match self.compression {
                            Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
                            Compression::None => client,
                        }
                    })
                    .clone();
                let mut request = tonic::Request::new(req.clone());
                for (k, v) in &g.metadata {
                    request.metadata_mut().insert(k.clone(), v.clone());
                }
                match c.export(request).await {
                    Ok(resp) => Attempt::Ok {
                        rejected: rejected(resp.get_ref()),
                    },
                    Err(status) => classify(&status),
                }
            }
            // `encode` makes the payload that matches the transport.
            _ => Attempt::Drop {
                outcome: "error",
                reason: "encode_mismatch".into(),
                message: "payload does not match the transport".into(),
            },
        }
    }
}

impl Sink for OtlpSink {
    type Item = ResourceSpans;
    type Payload = Payload;
    const SIGNAL: Signal = Signal::Traces;

    fn count(rs: &ResourceSpans) -> u64 {
        rs.scope_spans.iter().map(|ss| ss.spans.len() as u64).sum()
    }

    fn size_bytes(rs: &ResourceSpans) -> usize {
        crate::event::resource_spans_size(rs)
    }

    fn weight(&self, rs: &ResourceSpans) -> usize {
        rs.scope_spans.iter().map(|ss| ss.spans.len()).sum()
    }

    fn encode(&self, items: Vec<ResourceSpans>) -> Payload {
        let req = ExportTraceServiceRequest {
            resource_spans: items,
        };
        match self.transport {
            Transport::Http(_) => {
                let body = prost::Message::encode_to_vec(&req);
                Payload::Http(Bytes::from(match self.compression {
                    Compression::Gzip => wire::compression::gzip_compress(&body),
                    Compression::None => body,
                }))
            }
            Transport::Grpc(_) => Payload::Grpc(req),
        }
    }

    fn send(&self, payload: &Payload) -> impl Future<Output = Attempt> + Send {
        self.export(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_follow_the_otlp_spec() {
        assert!(matches!(
            classify(&tonic::Status::unavailable("down")),
            Attempt::Retry { .. }
        ));
        assert!(matches!(
            classify(&tonic::Status::resource_exhausted("slow down")),
            Attempt::Retry { .. }
        ));
        match classify(&tonic::Status::invalid_argument("bad span")) {
            Attempt::Drop {
                reason, message, ..
            } => {
                assert_eq!(reason, "grpc_invalid_argument");
                assert_eq!(message, "bad span");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_info_is_honoured() {
        use wire::otlp::rpc;
        let info = rpc::RetryInfo {
            retry_delay: Some(rpc::Duration {
                seconds: 2,
                nanos: 500_000_000,
            }),
        };
        let details = rpc::Status {
            code: 8,
            message: "slow down".into(),
            details: vec![rpc::Any {
                type_url: rpc::RETRY_INFO_TYPE_URL.into(),
                value: prost::Message::encode_to_vec(&info),
            }],
        };
        let status = tonic::Status::with_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            Bytes::from(prost::Message::encode_to_vec(&details)),
        );
        match classify(&status) {
            Attempt::Retry { retry_after, .. } => {
                assert_eq!(retry_after, Some(std::time::Duration::from_millis(2500)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(retry_delay(&tonic::Status::unavailable("down")), None);
    }

    #[test]
    fn config_is_checked() {
        let t: toml::Table =
            toml::from_str("url = \"https://tempo:4317\"\nprotocol = \"grpc\"").unwrap();
        assert!(build(t).is_err());
        let t: toml::Table =
            toml::from_str("url = \"http://tempo:4317\"\nprotocol = \"smoke\"").unwrap();
        assert!(build(t).is_err());
        let t: toml::Table = toml::from_str(
            "url = \"http://tempo:4317\"\ntenant_id = \"t\"\nbasic_auth = { username = \"u\", password = \"p\" }",
        )
        .unwrap();
        assert!(build(t).is_ok());
    }
}
