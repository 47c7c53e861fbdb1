//! The OTLP receivers, as the OTLP specification and Tempo's distributor define them.
//!
//! OTLP/HTTP, `POST /v1/traces`:
//! - `Content-Type: application/x-protobuf` or `application/json`, anything else 415;
//! - `Content-Encoding: gzip` (or none/`identity`); another encoding or a bad gzip stream 400;
//! - a body over `max_body_bytes` 413, decompressed over `max_decompressed_bytes` 400;
//! - success 200 with an `ExportTraceServiceResponse` (`{"partialSuccess":{}}` in JSON), a
//!   refused payload 400 with a `google.rpc.Status`, both in the request's encoding.
//!
//! Tempo refuses a whole export when one span has an invalid trace or span id, so there is no
//! partial success here: an export is either stored whole or refused with 400 /
//! `INVALID_ARGUMENT`.
//!
//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, tenant from the
//! `x-scope-orgid` metadata, messages up to `max_grpc_message_bytes` (decompressed), requests
//! compressed with `gzip` or `zstd` (`grpc-encoding`) or not at all.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use wire::otlp::grpc::{TraceService, TraceServiceServer};
use wire::otlp::{Encoding, ExportTraceServiceRequest, ExportTraceServiceResponse};

use super::{Tempo, tenant_from};
use crate::embedded::faults::{self, Api, Faults};
use crate::embedded::http::{body_limit, header};
use wire::http::TENANT_HEADER;

// `google.rpc.Status` is the body of an OTLP/HTTP error; details are never sent.
use super::store::IngestError;
use wire::otlp::rpc::Status as RpcStatus;
use wire::otlp::rpc::code::{INVALID_ARGUMENT, RESOURCE_EXHAUSTED};

/// The body of a 415, as the OpenTelemetry Collector's OTLP receiver words it.
const UNSUPPORTED_MEDIA_TYPE: &str =
    "415 unsupported media type, supported: [application/json, application/x-protobuf]";

/// The OTLP/HTTP router.
pub fn http_router(state: Arc<Tempo>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/traces", post(export_http))
        .layer(body_limit(limit))
        .with_state(state)
}

/// A response body in the request's encoding. Only for the small messages this receiver writes
/// itself (`google.rpc.Status`, an empty export response), which have no fields the OTLP JSON
/// fix-ups in `wire::otlp` are about.
fn encoded<M: prost::Message + serde::Serialize>(
    status: StatusCode,
    msg: &M,
    encoding: Encoding,
) -> Response {
    let body = match encoding {
        Encoding::Protobuf => Ok(msg.encode_to_vec()),
        Encoding::Json => serde_json::to_vec(msg),
    };
    match body {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, encoding.content_type())],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn bad_request(message: impl ToString, encoding: Encoding) -> Response {
    let status = RpcStatus {
        code: INVALID_ARGUMENT,
        message: message.to_string(),
        details: vec![],
    };
    encoded(StatusCode::BAD_REQUEST, &status, encoding)
}

async fn export_http(State(tempo): State<Arc<Tempo>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(encoding) =
        header(&headers, header::CONTENT_TYPE.as_str()).and_then(Encoding::from_content_type)
    else {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_MEDIA_TYPE).into_response();
    };
    let tenant = match tenant_from(header(&headers, TENANT_HEADER)) {
        Ok(t) => t,
        Err(e) => return bad_request(e, encoding),
    };
    let content_encoding = header(&headers, header::CONTENT_ENCODING.as_str())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw = match content_encoding.as_str() {
        "" | "identity" => body.to_vec(),
        "gzip" => {
            match wire::compression::gzip_decompress(&body, tempo.config.max_decompressed_bytes) {
                Ok(b) => b,
                Err(e) => return bad_request(e, encoding),
            }
        }
        other => return bad_request(format!("unsupported Content-Encoding {other:?}"), encoding),
    };
    let req: ExportTraceServiceRequest = match wire::otlp::decode(&raw, encoding) {
        Ok(r) => r,
        Err(e) => return bad_request(e, encoding),
    };
    match tempo.ingest(&tenant, req) {
        // The Collector's receiver (pdata) always writes the non-nullable `partial_success`,
        // empty: `{"partialSuccess":{}}` in JSON, an empty field 1 in protobuf.
        Ok(_) => match encoding {
            Encoding::Json => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                r#"{"partialSuccess":{}}"#,
            )
                .into_response(),
            Encoding::Protobuf => encoded(StatusCode::OK, &export_response(), encoding),
        },
        // The Collector's OTLP receiver (Tempo's) answers `RESOURCE_EXHAUSTED` with 429.
        Err(IngestError::RateLimited {
            message,
            retry_after_s,
        }) => {
            let status = RpcStatus {
                code: RESOURCE_EXHAUSTED,
                message,
                details: vec![],
            };
            crate::embedded::limits::with_retry_after(
                encoded(StatusCode::TOO_MANY_REQUESTS, &status, encoding),
                retry_after_s,
            )
        }
        Err(e) => bad_request(e, encoding),
    }
}

/// A successful export's answer, as the Collector's receiver (pdata) encodes it: with an empty
/// `partial_success`.
fn export_response() -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: Some(Default::default()),
    }
}

/// The gRPC `TraceService`, with the faults set on it.
struct GrpcReceiver(Arc<Tempo>, Faults);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let verdict = self.1.check(Api::TempoOtlpGrpc).await;
        if let Some(refused) = faults::grpc_status(Api::TempoOtlpGrpc, verdict) {
            return Err(refused);
        }
        let tenant = tenant_from(
            request
                .metadata()
                .get(wire::http::TENANT_METADATA)
                .and_then(|v| v.to_str().ok()),
        )
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        self.0
            .ingest(&tenant, request.into_inner())
            .map_err(|e| match e {
                IngestError::RateLimited { message, .. } => {
                    tonic::Status::resource_exhausted(message)
                }
                other => tonic::Status::invalid_argument(other.to_string()),
            })?;
        Ok(tonic::Response::new(export_response()))
    }
}

/// Serves the OTLP/gRPC receiver, with `faults` applied to its calls, on `listener` until `shutdown` turns true, then lets in-flight
/// calls finish.
pub fn spawn_grpc(
    listener: TcpListener,
    state: Arc<Tempo>,
    faults: Faults,
    door: &crate::embedded::door::Door,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let door = door.clone();
    tokio::spawn(async move {
        let max = state.config.max_grpc_message_bytes;
        // Tempo's OTLP receiver (the Collector's configgrpc) decodes gzip- and zstd-compressed
        // requests; OTel SDKs and the Collector's exporter send gzip by default.
        let service = TraceServiceServer::new(GrpcReceiver(state, faults))
            .max_decoding_message_size(max)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if door.tls.is_some() || door.has_auth() {
            // Served as routes behind the door: a refused call gets UNAUTHENTICATED.
            let router = door.protect(tonic::service::Routes::new(service).into_axum_router());
            if let Err(e) = access::serve(listener, router, door.tls.clone(), stop).await {
                tracing::error!(error = %e, "embedded Tempo OTLP/gRPC server failed");
            }
            return;
        }
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop)
            .await
        {
            tracing::error!(error = %e, "embedded Tempo OTLP/gRPC server failed");
        }
    })
}
