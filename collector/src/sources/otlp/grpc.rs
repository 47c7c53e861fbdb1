//! OTLP/gRPC: the logs, metrics and trace `Export` services on one listener.
//!
//! A payload that does not decode is `INVALID_ARGUMENT` (and counted as `decode_error`): the
//! services take the message bytes through a raw codec and decode them here, since tonic's prost
//! codec would answer `INTERNAL` without the receiver seeing it. A full downstream queue is
//! `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` detail: the OTLP spec's signal that the
//! exhaustion is recoverable, so clients retry after the delay ("OTLP/gRPC Throttling"); a
//! shutting-down receiver answers `UNAVAILABLE`.
//!
//! Memory: the request message is read, and decompressed, here, not by tonic: tonic's
//! `max_decoding_message_size` bounds the compressed frame and, separately, the decompressed
//! output, but it reserves the declared frame length before the bytes arrive, grows its
//! decompression buffer outside any budget, on the async workers, and answers without the
//! receiver counting anything. So the frame is read as it arrives within `body_read_timeout`
//! (`DEADLINE_EXCEEDED`, `timeout`), every chunk and the decompressed message (sized by a counting pass first) charged to the in-flight budget; a message over `max_decompressed_bytes` (or
//! `max_decoded_bytes`), compressed or not, is `RESOURCE_EXHAUSTED` (`too_large`) the moment it
//! passes it, as is one whose decoded-size estimate takes it over `max_decoded_bytes`; one that
//! finds the in-flight budget taken is `RESOURCE_EXHAUSTED` with `RetryInfo` (`inflight_limit`).
//! tonic then sees an empty uncompressed message, the real one travels in the request's
//! extensions (`Admitted`). Decompression and decoding run on the blocking pool.
//!
//! Request compression: `gzip` (the default of the OpenTelemetry Collector's, Alloy's and the
//! SDKs' OTLP/gRPC exporters) and `zstd` (window at most 8 MiB, charged before decompressing)
//! are accepted; another `grpc-encoding` is `UNIMPLEMENTED`, as gRPC specifies (answered by
//! tonic). Responses go uncompressed (they are a few bytes).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
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
/// and leave the refusal uncounted; within the receiver's bounds: the message (already charged
/// to `charge` as it was read) and its decoded-size estimate are charged to the in-flight
/// budget before decoding (a message over `max_decoded_bytes` is `RESOURCE_EXHAUSTED` without
/// `RetryInfo`, a taken budget the same with it). Runs on the blocking pool.
fn export_bytes<E: Export>(
    rx: &Receiver,
    raw: Bytes,
    mut charge: http_common::Charge,
) -> Result<Response<E::Response>, Status> {
    let refuse = |r: Refusal| {
        r.count(&rx.metrics, E::SIGNAL, 1);
        status(&r)
    };
    let estimate = wire::budget::protobuf_estimate(&raw, E::SCHEMA);
    http_common::admit_decode(&mut charge, rx.max_decoded_bytes, raw.len(), estimate)
        .map_err(refuse)?;
    let raw_len = raw.len();
    let req = <E::Request as prost::Message>::decode(raw)
        .map_err(|e| refuse(Refusal::Decode(format!("protobuf: {e}"))))?;
    // The message bytes are gone once decoded.
    charge.release(raw_len);
    http_common::admit_converted(
        &mut charge,
        rx.max_decoded_bytes,
        E::converted_size(rx, &req),
    )
    .map_err(refuse)?;
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
        let admitted = request
            .extensions()
            .get::<Admitted>()
            .and_then(|a| a.0.lock().take());
        Box::pin(async move {
            let Some((raw, charge)) = admitted else {
                return Err(Status::internal("the request message was not read"));
            };
            let rx2 = rx.clone();
            match http_common::blocking(move || export_bytes::<E>(&rx2, raw, charge)).await {
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
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec::<E::Response>(PhantomData));
            let Some(compression) = request_compression(req.headers()) else {
                // An encoding we do not take: tonic answers UNIMPLEMENTED, unread.
                return Ok(grpc.unary(Unary::<E>(rx, PhantomData), req).await);
            };
            let (mut parts, body) = req.into_parts();
            let mut charge = rx.budget.charge();
            let message = read_message(&rx, &parts.headers, body, compression, &mut charge).await;
            let message = match message {
                Ok(m) => m,
                Err(r) => {
                    r.count(&rx.metrics, E::SIGNAL, 1);
                    return Ok(status(&r).into_http());
                }
            };
            parts.headers.remove(GRPC_ENCODING);
            parts
                .extensions
                .insert(Admitted(Arc::new(Mutex::new(Some((message, charge))))));
            let empty = http_body_util::Full::new(Bytes::from_static(&[0; 5]));
            let req = http::Request::from_parts(parts, empty);
            Ok(grpc.unary(Unary::<E>(rx, PhantomData), req).await)
        })
    }
}

const GRPC_ENCODING: &str = "grpc-encoding";

/// A request message read and charged by [`read_message`], handed to the service past tonic
/// (which decodes an empty message in its place).
#[derive(Clone)]
struct Admitted(Arc<Mutex<Option<(Bytes, http_common::Charge)>>>);

/// The request's `grpc-encoding` if we take it (`Some(None)`: uncompressed), `None` if not.
fn request_compression(headers: &http::HeaderMap) -> Option<Option<CompressionEncoding>> {
    match headers.get(GRPC_ENCODING).map(|v| v.to_str()) {
        None => Some(None),
        Some(Ok(v)) => match v.trim().to_ascii_lowercase().as_str() {
            "identity" => Some(None),
            "gzip" => Some(Some(CompressionEncoding::Gzip)),
            "zstd" => Some(Some(CompressionEncoding::Zstd)),
            _ => None,
        },
        Some(Err(_)) => None,
    }
}

/// Reads one length-prefixed gRPC message (a unary request) within `body_read_timeout`,
/// charging it as it arrives, and decompresses it on the blocking pool, charging the output
/// before allocating it: at most `max_decompressed_bytes` (and `max_decoded_bytes`) either way.
async fn read_message<B>(
    rx: &Arc<Receiver>,
    headers: &http::HeaderMap,
    body: B,
    compression: Option<CompressionEncoding>,
    charge: &mut http_common::Charge,
) -> Result<Bytes, Refusal>
where
    B: Body,
    B::Error: Into<StdError>,
{
    let max = rx.max_decompressed_bytes.min(rx.max_decoded_bytes);
    let limits = http_common::BodyLimits {
        max_bytes: max.saturating_add(FRAME_HEADER),
        timeout: rx.body_read_timeout,
    };
    let frame = http_common::read_body_charged(headers, body, limits, charge).await?;
    let (compressed, message) = unframe(&frame)?;
    drop(frame);
    let Some(compressed_len) = compressed.then_some(message.len()) else {
        return Ok(message);
    };
    let Some(encoding) = compression else {
        return Err(Refusal::Decode(
            "compressed-flag set but no grpc-encoding".into(),
        ));
    };
    let mut held = std::mem::replace(charge, rx.budget.charge());
    let out = http_common::blocking(move || {
        let out = decompress(encoding, &message, max, &mut held);
        drop(message);
        // The compressed frame is gone: what stays held is the decompressed message.
        held.release(compressed_len.saturating_add(FRAME_HEADER));
        out.map(|m| (m, held))
    })
    .await??;
    *charge = out.1;
    Ok(out.0)
}

const FRAME_HEADER: usize = 5;

/// The compressed flag and the message of a gRPC frame holding exactly one message.
fn unframe(frame: &Bytes) -> Result<(bool, Bytes), Refusal> {
    let bad = |why: &str| Refusal::Decode(format!("gRPC framing: {why}"));
    let (Some(&flag), Some(len)) = (frame.first(), frame.get(1..FRAME_HEADER)) else {
        return Err(bad("no request message"));
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let end = FRAME_HEADER.saturating_add(len);
    if frame.len() < end {
        return Err(bad("message shorter than its length prefix"));
    }
    if frame.len() > end {
        return Err(bad("more than one message in a unary call"));
    }
    match flag {
        0 | 1 => Ok((flag == 1, frame.slice(FRAME_HEADER..end))),
        f => Err(bad(&format!("invalid compressed-flag {f}"))),
    }
}

/// Decompresses `message` into at most `limit` bytes, charging `charge` for the output before
/// allocating it ([`wire::compression::read_metered`]; for zstd, the decoder's window before
/// starting).
fn decompress(
    encoding: CompressionEncoding,
    message: &[u8],
    limit: usize,
    charge: &mut http_common::Charge,
) -> Result<Bytes, Refusal> {
    let mut reserve = |n: usize| charge.grow(n);
    let out = match encoding {
        CompressionEncoding::Zstd => {
            let window_log = zstd_window_log(message)?;
            reserve((1usize << window_log).saturating_add(ZSTD_CONTEXT))?;
            let open = || {
                let mut d = zstd::stream::read::Decoder::new(message)?;
                d.window_log_max(window_log)?;
                Ok(d)
            };
            wire::compression::read_metered(open, limit, &mut reserve, |e| {
                wire::WireError::Gzip(format!("zstd: {e}"))
            })?
        }
        _ => wire::compression::gzip_decompress_metered(message, limit, &mut reserve)?,
    };
    Ok(out.into())
}

/// Largest zstd window a request may use: 8 MiB, what the zstd format asks every decoder to
/// support (and more than the exporters' default levels use).
const ZSTD_MAX_WINDOW_LOG: u32 = 23;
/// A zstd decoding context beside its window (its tables and block buffers), rounded up.
const ZSTD_CONTEXT: usize = 512 << 10;

/// The window (log2, rounded up) the first zstd frame of `message` declares: what the decoder
/// will allocate; later frames are held to it by `window_log_max`. Over 8 MiB is refused.
fn zstd_window_log(message: &[u8]) -> Result<u32, Refusal> {
    let bad = || Refusal::Decode("zstd: not a zstd frame header".into());
    if message.get(..4) != Some(&[0x28, 0xb5, 0x2f, 0xfd][..]) {
        return Err(bad());
    }
    let descriptor = *message.get(4).ok_or_else(bad)?;
    let single_segment = descriptor & 0x20 != 0;
    let window: u64 = if single_segment {
        // No window descriptor: the window is the content size.
        let dict_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
        let fcs_len = [1, 2, 4, 8][usize::from(descriptor >> 6)];
        let at = 5 + dict_len;
        let fcs = message.get(at..at + fcs_len).ok_or_else(bad)?;
        let mut v = [0u8; 8];
        v[..fcs_len].copy_from_slice(fcs);
        let size = u64::from_le_bytes(v);
        if fcs_len == 2 { size + 256 } else { size }
    } else {
        let w = *message.get(5).ok_or_else(bad)?;
        let base = 1u64 << (10 + u32::from(w >> 3));
        base + base / 8 * u64::from(w & 7)
    };
    let log = (64 - window.saturating_sub(1).leading_zeros()).max(10);
    if log > ZSTD_MAX_WINDOW_LOG {
        return Err(Refusal::Decode(format!(
            "zstd: window of {window} bytes, over the 8 MiB this receiver takes"
        )));
    }
    Ok(log)
}

/// The `Export` service of `E` over `rx`, a tower `Service` of HTTP/2 requests: what [`serve`]
/// serves, and what the fuzz targets (`fuzz/`) call in process, without a socket.
pub fn server<E: Export>(rx: &Arc<Receiver>) -> ExportServer<E> {
    ExportServer {
        rx: rx.clone(),
        _export: PhantomData,
    }
}

/// Serves the three services on `listener` until `shutdown` turns true, then lets in-flight
/// calls finish. With TLS or auth they are served as routes behind the gate by
/// [`access::serve`] (a refused call gets `UNAUTHENTICATED`); without, by tonic's server.
pub async fn serve(
    listener: TcpListener,
    rx: Arc<Receiver>,
    tls: Option<access::ServerTls>,
    gate: Option<access::Gate>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    if tls.is_some() || gate.is_some() {
        let routes = tonic::service::Routes::new(server::<Logs>(&rx))
            .add_service(server::<Metrics>(&rx))
            .add_service(server::<Traces>(&rx));
        let router = routes.into_axum_router();
        let router = match gate {
            Some(gate) => gate.protect(router),
            None => router,
        };
        return access::serve(listener, router, tls, http_common::stopped(shutdown))
            .await
            .map_err(SourceError::Io);
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(server::<Logs>(&rx))
        .add_service(server::<Metrics>(&rx))
        .add_service(server::<Traces>(&rx))
        .serve_with_incoming_shutdown(incoming, http_common::stopped(shutdown))
        .await
        .map_err(|e| SourceError::Other(format!("OTLP/gRPC server: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, message: &[u8]) -> Bytes {
        let mut f = vec![flag];
        f.extend_from_slice(&(message.len() as u32).to_be_bytes());
        f.extend_from_slice(message);
        f.into()
    }

    #[test]
    fn unframe_takes_exactly_one_message() {
        assert_eq!(
            unframe(&frame(1, b"abc")).unwrap(),
            (true, Bytes::from_static(b"abc"))
        );
        assert_eq!(unframe(&frame(0, b"")).unwrap(), (false, Bytes::new()));
        let mut two = frame(0, b"a").to_vec();
        two.extend_from_slice(&frame(0, b"b"));
        for bad in [
            Bytes::new(),
            Bytes::from_static(&[0, 0, 0]),
            frame(0, b"abc").slice(..6),
            two.into(),
            frame(2, b"a"),
        ] {
            assert_eq!(unframe(&bad).unwrap_err().reason(), "decode_error");
        }
    }

    #[test]
    fn zstd_window_is_read_from_the_frame_header_and_bounded() {
        let small = zstd::encode_all(&b"hello"[..], 3).unwrap();
        assert!(zstd_window_log(&small).unwrap() <= 10 + 1);
        let big = zstd::encode_all(&vec![7u8; 4 << 20][..], 3).unwrap();
        let log = zstd_window_log(&big).unwrap();
        assert!((10..=ZSTD_MAX_WINDOW_LOG).contains(&log), "{log}");
        // A window descriptor of 2^(10+20) = 1 GiB: refused before any allocation.
        let huge = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3];
        assert_eq!(zstd_window_log(&huge).unwrap_err().reason(), "decode_error");
        assert!(zstd_window_log(b"not zstd").is_err());
    }

    #[test]
    fn decompression_charges_the_output_and_refuses_past_the_limit() {
        let registry = crate::selfmon::Registry::new();
        let m = crate::selfmon::ComponentMetrics::new(registry, "rx", "source");
        let budget = http_common::InflightBudget::new(64 << 20, &m);
        let data = [0x0a, 0x00].repeat(1 << 20);
        for (enc, packed) in [
            (
                CompressionEncoding::Gzip,
                wire::compression::gzip_compress(&data),
            ),
            (
                CompressionEncoding::Zstd,
                zstd::encode_all(&data[..], 3).unwrap(),
            ),
        ] {
            let mut charge = budget.charge();
            let out = decompress(enc, &packed, 4 << 20, &mut charge).unwrap();
            assert_eq!(out.len(), data.len());
            assert!(charge.held() >= data.len(), "{enc}: {}", charge.held());
            let mut charge = budget.charge();
            let r = decompress(enc, &packed, 1 << 20, &mut charge).unwrap_err();
            assert_eq!(r.reason(), "too_large", "{enc}");
        }
        assert_eq!(budget.used(), 0);
    }
}
