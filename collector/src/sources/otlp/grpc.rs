//! OTLP/gRPC: the logs, metrics and trace `Export` services on one listener.
//!
//! A payload that does not decode is `INVALID_ARGUMENT` (and counted as `decode_error`): the
//! services take the message bytes through a raw codec and decode them here, since tonic's prost
//! codec would answer `INTERNAL` without the receiver seeing it. A full downstream queue is
//! `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` detail: the OTLP spec's signal that the
//! exhaustion is recoverable, so clients retry after the delay ("OTLP/gRPC Throttling"); a
//! shutting-down receiver answers `UNAVAILABLE`. Messages larger than
//! `max_decompressed_bytes` (or `max_decoded_bytes`) are refused by tonic (`OUT_OF_RANGE`); a message whose decoded-size
//! estimate takes it over `max_decoded_bytes` is `RESOURCE_EXHAUSTED` (`too_large`), one that
//! finds the in-flight budget taken `RESOURCE_EXHAUSTED` with `RetryInfo` (`inflight_limit`).
//! Decoding runs on the blocking pool.
//!
//! Request compression: `gzip` (the default of the OpenTelemetry Collector's, Alloy's and the
//! SDKs' OTLP/gRPC exporters) and `zstd` are accepted; another `grpc-encoding` is
//! `UNIMPLEMENTED`, as gRPC specifies. Responses go uncompressed (they are a few bytes).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

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

fn export<E: Export>(rx: &Receiver, req: E::Request) -> Result<Response<E::Response>, Status> {
    E::ingest(rx, req)
        .map(|p| Response::new(E::response(p)))
        .map_err(|r| status(&r))
}

/// Decodes the request bytes here rather than in tonic's codec, which would answer `INTERNAL`
/// and leave the refusal uncounted; within the receiver's bounds: the message and its
/// decoded-size estimate are charged to the in-flight budget before decoding (a message over
/// `max_decoded_bytes` is `RESOURCE_EXHAUSTED` without `RetryInfo`, a taken budget the same with
/// it). Runs on the blocking pool.
fn export_bytes<E: Export>(rx: &Receiver, raw: Bytes) -> Result<Response<E::Response>, Status> {
    let refuse = |r: Refusal| {
        r.count(&rx.metrics, E::SIGNAL, 1);
        status(&r)
    };
    let mut charge = rx.budget.charge();
    charge.grow(raw.len()).map_err(refuse)?;
    let estimate = wire::budget::protobuf_estimate(&raw, E::SCHEMA);
    http_common::admit_decode(&mut charge, rx.max_decoded_bytes, raw.len(), estimate)
        .map_err(refuse)?;
    let req = <E::Request as prost::Message>::decode(raw)
        .map_err(|e| refuse(Refusal::Decode(format!("protobuf: {e}"))))?;
    let out = export::<E>(rx, req);
    drop(charge);
    out
}

/// A codec that hands the request's bytes over undecoded and encodes the response with prost.
struct RawCodec<M>(PhantomData<fn() -> M>);

impl<M: prost::Message + Send + 'static> Codec for RawCodec<M> {
    type Encode = M;
    type Decode = Bytes;
    type Encoder = ProstEncoder<M>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

struct ProstEncoder<M>(PhantomData<fn() -> M>);

impl<M: prost::Message> Encoder for ProstEncoder<M> {
    type Item = M;
    type Error = Status;

    fn encode(&mut self, item: M, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One OTLP export service (`/<service>/Export`) over the shared [`Receiver`].
pub struct ExportServer<E> {
    rx: Arc<Receiver>,
    _export: PhantomData<fn() -> E>,
}

impl<E> Clone for ExportServer<E> {
    fn clone(&self) -> Self {
        ExportServer {
            rx: self.rx.clone(),
            _export: PhantomData,
        }
    }
}

impl<E: Export> NamedService for ExportServer<E> {
    const NAME: &'static str = E::GRPC_SERVICE;
}

struct Unary<E>(Arc<Receiver>, PhantomData<fn() -> E>);

impl<E: Export> UnaryService<Bytes> for Unary<E> {
    type Response = E::Response;
    type Future = BoxFuture<Response<E::Response>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let rx = self.0.clone();
        let raw = request.into_inner();
        Box::pin(async move {
            let rx2 = rx.clone();
            match http_common::blocking(move || export_bytes::<E>(&rx2, raw)).await {
                Ok(out) => out,
                Err(r) => {
                    r.count(&rx.metrics, E::SIGNAL, 1);
                    Err(status(&r))
                }
            }
        })
    }
}

impl<E, B> Service<http::Request<B>> for ExportServer<E>
where
    E: Export + 'static,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rx = self.rx.clone();
        let method = req
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(E::GRPC_SERVICE));
        if method != Some("/Export") {
            let status = Status::unimplemented(format!("no method {}", req.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // A message over max_decoded_bytes could never be admitted: tonic need not take it in.
        let max = rx.max_decompressed_bytes.min(rx.max_decoded_bytes);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec::<E::Response>(PhantomData))
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(Unary::<E>(rx, PhantomData), req).await)
        })
    }
}

fn server<E: Export>(rx: &Arc<Receiver>) -> ExportServer<E> {
    ExportServer {
        rx: rx.clone(),
        _export: PhantomData,
    }
}

/// Serves the three services on `listener` until `shutdown` turns true, then lets in-flight
/// calls finish.
pub async fn serve(
    listener: TcpListener,
    rx: Arc<Receiver>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(server::<Logs>(&rx))
        .add_service(server::<Metrics>(&rx))
        .add_service(server::<Traces>(&rx))
        .serve_with_incoming_shutdown(incoming, http_common::stopped(shutdown))
        .await
        .map_err(|e| SourceError::Other(format!("OTLP/gRPC server: {e}")))
}
