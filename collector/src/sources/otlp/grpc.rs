//! OTLP/gRPC: the logs, metrics and trace `Export` services on one listener.
//!
//! A refused payload is `INVALID_ARGUMENT`; a full downstream queue is `UNAVAILABLE` with a
//! `google.rpc.RetryInfo` detail, as the OTLP spec's "OTLP/gRPC Throttling" asks (clients retry
//! `UNAVAILABLE`, and honour the delay). Messages larger than `max_decompressed_bytes` are
//! refused by tonic with `RESOURCE_EXHAUSTED`.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Code, Request, Response, Status};
use wire::otlp::grpc::{
    LogsService, LogsServiceServer, MetricsService, MetricsServiceServer, TraceService,
    TraceServiceServer,
};
use wire::otlp::{
    ExportLogsServiceRequest, ExportLogsServiceResponse, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::http::{Export, Logs, Metrics, Traces};
use super::{
    ProtoAny, ProtoDuration, RETRY_INFO_TYPE_URL, Receiver, RetryInfo, RpcStatus, grpc_code,
};
use crate::sources::SourceError;
use crate::sources::http_common::{self, RETRY_AFTER_SECS, Refusal};

/// The gRPC status for a refusal; retryable ones carry `RetryInfo`.
pub fn status(r: &Refusal) -> Status {
    let code = grpc_code(r);
    let message = r.to_string();
    if !r.retryable() {
        return Status::new(Code::from_i32(code), message);
    }
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: RETRY_AFTER_SECS as i64,
            nanos: 0,
        }),
    };
    let details = RpcStatus {
        code,
        message: message.clone(),
        details: vec![ProtoAny {
            type_url: RETRY_INFO_TYPE_URL.into(),
            value: prost::Message::encode_to_vec(&retry),
        }],
    };
    Status::with_details(
        Code::from_i32(code),
        message,
        Bytes::from(prost::Message::encode_to_vec(&details)),
    )
}

/// The three services, over one shared [`Receiver`].
#[derive(Clone)]
pub struct Services(Arc<Receiver>);

fn export<E: Export>(rx: &Receiver, req: E::Request) -> Result<Response<E::Response>, Status> {
    E::ingest(rx, req)
        .map(|p| Response::new(E::response(p)))
        .map_err(|r| status(&r))
}

#[tonic::async_trait]
impl LogsService for Services {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        export::<Logs>(&self.0, request.into_inner())
    }
}

#[tonic::async_trait]
impl MetricsService for Services {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        export::<Metrics>(&self.0, request.into_inner())
    }
}

#[tonic::async_trait]
impl TraceService for Services {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        export::<Traces>(&self.0, request.into_inner())
    }
}

/// Serves the three services on `listener` until `shutdown` turns true, then lets in-flight
/// calls finish.
pub async fn serve(
    listener: TcpListener,
    rx: Arc<Receiver>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let max = rx.max_decompressed_bytes;
    let s = Services(rx);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(LogsServiceServer::new(s.clone()).max_decoding_message_size(max))
        .add_service(MetricsServiceServer::new(s.clone()).max_decoding_message_size(max))
        .add_service(TraceServiceServer::new(s).max_decoding_message_size(max))
        .serve_with_incoming_shutdown(incoming, http_common::stopped(shutdown))
        .await
        .map_err(|e| SourceError::Other(format!("OTLP/gRPC server: {e}")))
}
