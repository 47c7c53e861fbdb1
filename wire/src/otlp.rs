//! OTLP logs, metrics and traces, in protobuf and in the OTLP/HTTP JSON mapping (lowerCamelCase
//! field names, 64-bit integers as strings, trace and span ids as hex), built on the generated
//! types of `opentelemetry-proto`. The gRPC service types are re-exported from [`grpc`].

/// The generated message types (common, resource, trace, logs, metrics).
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

use crate::WireError;

/// gRPC service clients and servers (tonic) for the three OTLP export services.
pub mod grpc {
    pub use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    pub use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
        LogsService, LogsServiceServer,
    };
    pub use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    pub use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    pub use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    pub use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
}

/// How an OTLP/HTTP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// From a `Content-Type` header value; `None` for a type OTLP/HTTP does not define.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct
            .split(';')
            .next()
            .map(|m| m.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("application/x-protobuf") | Some("application/protobuf") => {
                Some(Encoding::Protobuf)
            }
            Some("application/json") => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` header value for this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Encodes any OTLP message.
pub fn encode<M: prost::Message + serde::Serialize>(
    msg: &M,
    encoding: Encoding,
) -> Result<Vec<u8>, WireError> {
    Ok(match encoding {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg)?,
    })
}

/// Decodes any OTLP message.
pub fn decode<M: prost::Message + Default + serde::de::DeserializeOwned>(
    body: &[u8],
    encoding: Encoding,
) -> Result<M, WireError> {
    Ok(match encoding {
        Encoding::Protobuf => M::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    })
}
