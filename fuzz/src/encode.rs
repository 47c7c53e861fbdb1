//! `x-fuzz-encode: 1` (see [`crate::input`]): a plain message made into the body a client sends,
//! as the request's headers say, per receiver.

use std::io::Write;

use crate::input::Request;

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub fn media(content_type: Option<&str>) -> String {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn encoding(value: Option<&str>) -> String {
    value
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The `Content-Encoding` applied (gzip, deflate; anything else left as is).
pub fn content_encoding(req: &Request, body: Vec<u8>) -> Vec<u8> {
    match encoding(req.header("content-encoding")).as_str() {
        "gzip" => wire::compression::gzip_compress(&body),
        "deflate" => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = z.write_all(&body);
            z.finish().unwrap_or_default()
        }
        _ => body,
    }
}

/// A Loki push body: snappy unless JSON, then the content encoding.
pub fn loki(req: &Request) -> Vec<u8> {
    let body = if media(req.header("content-type")) == "application/json" {
        req.body.to_vec()
    } else {
        wire::compression::snappy_compress(req.body)
    };
    content_encoding(req, body)
}

/// A remote write body: snappy.
pub fn remote_write(req: &Request) -> Vec<u8> {
    wire::compression::snappy_compress(req.body)
}

/// An OTLP/HTTP body: the content encoding.
pub fn otlp_http(req: &Request) -> Vec<u8> {
    content_encoding(req, req.body.to_vec())
}

/// A unary gRPC request body: the message compressed as `grpc-encoding` says (gzip, zstd; the
/// compressed-flag set), in one length-prefixed frame.
pub fn grpc(req: &Request) -> Vec<u8> {
    let (flag, message) = match encoding(req.header("grpc-encoding")).as_str() {
        "gzip" => (1, wire::compression::gzip_compress(req.body)),
        "zstd" => (1, zstd::encode_all(req.body, 3).unwrap_or_default()),
        _ => (0, req.body.to_vec()),
    };
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(flag);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(&message);
    out
}
