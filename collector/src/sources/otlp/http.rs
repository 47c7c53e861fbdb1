//! OTLP/HTTP: `POST /v1/logs`, `/v1/metrics`, `/v1/traces` (and `GET /ready`). See the module
//! docs of [`super`] for the status codes.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wire::otlp::proto::collector::logs::v1::ExportLogsPartialSuccess;
use wire::otlp::proto::collector::metrics::v1::ExportMetricsPartialSuccess;
use wire::otlp::proto::collector::trace::v1::ExportTracePartialSuccess;
use wire::otlp::{
    Encoding, ExportLogsServiceRequest, ExportLogsServiceResponse, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse, ExportTraceServiceRequest, ExportTraceServiceResponse,
    OtlpMessage,
};

use super::{PartialSuccess, Receiver, RpcStatus, grpc_code};
use crate::sources::http_common::{self, Refusal};
use wire::Signal;

/// The body of a 415, as the OpenTelemetry Collector's OTLP receiver words it.
const UNSUPPORTED_MEDIA_TYPE: &str =
    "415 unsupported media type, supported: [application/json, application/x-protobuf]";

/// One OTLP signal's export: its messages, and how a partial success is written.
pub trait Export: 'static {
    type Request: OtlpMessage;
    /// The request's shape for the decoded-size estimate ([`wire::budget`]).
    const SCHEMA: &'static wire::budget::Schema;
    type Response: OtlpMessage;
    const SIGNAL: Signal;
    /// The gRPC service name (`/<name>/Export`).
    const GRPC_SERVICE: &'static str;
    fn ingest(rx: &Receiver, req: Self::Request) -> Result<PartialSuccess, Refusal>;
    fn response(p: PartialSuccess) -> Self::Response;
    /// A bound on the batch [`Export::ingest`] converts `req` into ([`crate::sources::converted`]).
    fn converted_size(rx: &Receiver, req: &Self::Request) -> usize;
}

pub struct Logs;
pub struct Metrics;
pub struct Traces;

impl Export for Logs {
    const SCHEMA: &'static wire::budget::Schema = &wire::budget::EXPORT_LOGS;
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    fn ingest(rx: &Receiver, req: Self::Request) -> Result<PartialSuccess, Refusal> {
        rx.logs(req)
    }
    fn converted_size(_: &Receiver, req: &Self::Request) -> usize {
        crate::sources::converted::otlp_logs(req)
    }
    fn response(p: PartialSuccess) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (p != PartialSuccess::default()).then_some(ExportLogsPartialSuccess {
                rejected_log_records: p.rejected,
                error_message: p.message,
            }),
        }
    }
}

impl Export for Metrics {
    const SCHEMA: &'static wire::budget::Schema = &wire::budget::EXPORT_METRICS;
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    fn ingest(rx: &Receiver, req: Self::Request) -> Result<PartialSuccess, Refusal> {
        rx.metrics(req)
    }
    fn converted_size(rx: &Receiver, req: &Self::Request) -> usize {
        let promote = &rx.metric_options.promote_resource_attributes;
        crate::sources::converted::otlp_metrics(req, promote)
    }
    fn response(p: PartialSuccess) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (p != PartialSuccess::default()).then_some(
                ExportMetricsPartialSuccess {
                    rejected_data_points: p.rejected,
                    error_message: p.message,
                },
            ),
        }
    }
}

impl Export for Traces {
    const SCHEMA: &'static wire::budget::Schema = &wire::budget::EXPORT_TRACES;
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    fn ingest(rx: &Receiver, req: Self::Request) -> Result<PartialSuccess, Refusal> {
        rx.traces(req)
    }
    /// Spans pass through as decoded.
    fn converted_size(_: &Receiver, _: &Self::Request) -> usize {
        0
    }
    fn response(p: PartialSuccess) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (p != PartialSuccess::default()).then_some(
                ExportTracePartialSuccess {
                    rejected_spans: p.rejected,
                    error_message: p.message,
                },
            ),
        }
    }
}

/// The OTLP/HTTP router.
pub fn router(rx: Arc<Receiver>) -> Router {
    Router::new()
        .route("/v1/logs", post(export::<Logs>))
        .route("/v1/metrics", post(export::<Metrics>))
        .route("/v1/traces", post(export::<Traces>))
        .route("/ready", get(http_common::ready))
        .with_state(rx)
}

/// An error response: `google.rpc.Status` in the request's encoding.
fn refused(r: &Refusal, encoding: Encoding) -> Response {
    let status = RpcStatus {
        code: grpc_code(r),
        message: r.to_string(),
        details: vec![],
    };
    let body = match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(&status),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    };
    r.respond_with(encoding.content_type(), body)
}

async fn export<E: Export>(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(encoding) = http_common::header_str(&headers, header::CONTENT_TYPE)
        .and_then(Encoding::from_content_type)
    else {
        let r = Refusal::UnsupportedMediaType(UNSUPPORTED_MEDIA_TYPE.into());
        r.count(&rx.metrics, E::SIGNAL, 1);
        return r.respond_text();
    };
    let mut charge = rx.budget.charge();
    let limits = http_common::BodyLimits {
        max_bytes: rx.max_body_bytes,
        timeout: rx.body_read_timeout,
    };
    let raw = http_common::read_body_charged(&headers, body, limits, &mut charge).await;
    let rx2 = rx.clone();
    let done = http_common::blocking(move || {
        let req = match raw
            .and_then(|raw| decode_charged::<E>(&rx2, &headers, raw, encoding, &mut charge))
        {
            Ok(req) => req,
            Err(r) => {
                r.count(&rx2.metrics, E::SIGNAL, 1);
                return refused(&r, encoding);
            }
        };
        let resp = respond::<E>(&rx2, req, encoding);
        drop(charge);
        resp
    })
    .await;
    done.unwrap_or_else(|r| {
        r.count(&rx.metrics, E::SIGNAL, 1);
        refused(&r, encoding)
    })
}

/// Converts and hands on a decoded request; the export response (or the refusal).
fn respond<E: Export>(rx: &Receiver, req: E::Request, encoding: Encoding) -> Response {
    match E::ingest(rx, req) {
        Ok(partial) => match wire::otlp::encode(&E::response(partial), encoding) {
            Ok(body) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                body,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        Err(r) => refused(&r, encoding),
    }
}

/// Decompresses and decodes a request body within the receiver's bounds, charging `charge` for
/// the decompression buffer, before decoding the decoded-size estimate, before converting the
/// bound on the converted batch (nothing counted: the caller does).
fn decode_charged<E: Export>(
    rx: &Receiver,
    headers: &HeaderMap,
    raw: bytes::Bytes,
    encoding: Encoding,
    charge: &mut http_common::Charge,
) -> Result<E::Request, Refusal> {
    let limit = rx.max_decompressed_bytes.min(rx.max_decoded_bytes);
    let raw =
        http_common::decode_content_encoding_metered(headers, raw, limit, &mut |n| charge.grow(n))?;
    let estimate = match encoding {
        Encoding::Protobuf => wire::budget::protobuf_estimate(&raw, E::SCHEMA),
        Encoding::Json => {
            wire::budget::json_estimate(&raw, wire::budget::max_struct_size(E::SCHEMA))
        }
    };
    http_common::admit_decode(charge, rx.max_decoded_bytes, raw.len(), estimate)?;
    let req = decode_bytes::<E>(&raw, encoding)?;
    // The (decompressed) body is gone once decoded.
    charge.release(raw.len());
    drop(raw);
    http_common::admit_converted(charge, rx.max_decoded_bytes, E::converted_size(rx, &req))?;
    Ok(req)
}

/// Decodes an uncompressed body (what the property tests feed arbitrary bytes).
pub fn decode_bytes<E: Export>(raw: &[u8], encoding: Encoding) -> Result<E::Request, Refusal> {
    wire::otlp::decode::<E::Request>(raw, encoding).map_err(Refusal::from)
}
