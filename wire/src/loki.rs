//! Loki push API payloads.
//!
//! - protobuf (`logproto.PushRequest`, field numbers from Loki's `pkg/push/push.proto`) in the
//!   snappy block format: `Content-Type: application/x-protobuf`, what Promtail, Alloy and our
//!   collector send;
//! - JSON `{"streams":[{"stream":{..},"values":[["<ns>","line",{..metadata}]]}]}`, optionally
//!   gzip- or deflate-compressed (`Content-Encoding`).
//!
//! [`decode_http`] picks the decoder the way Loki's distributor does: JSON when the media type is
//! `application/json`, otherwise protobuf+snappy; gzip/deflate/snappy/identity content encodings,
//! anything else refused.

pub mod errors;

use std::collections::BTreeMap;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::WireError;
use crate::compression::{snappy_compress, snappy_decompress};

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<Stream>,
}

/// `logproto.StreamAdapter`: one stream, its labels in `{a="b"}` syntax.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stream {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<Entry>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// From nanoseconds since the Unix epoch.
    pub fn from_nanos(ns: i64) -> Self {
        Timestamp {
            seconds: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as i32,
        }
    }
    /// Nanoseconds since the Unix epoch (saturating).
    pub fn as_nanos(&self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(self.nanos as i64)
    }
}

impl Entry {
    /// A new entry at `ts_ns` nanoseconds since the epoch.
    pub fn new(ts_ns: i64, line: impl Into<String>) -> Self {
        Entry {
            timestamp: Some(Timestamp::from_nanos(ts_ns)),
            line: line.into(),
            structured_metadata: Vec::new(),
        }
    }
    /// The entry's time in nanoseconds since the epoch (0 when absent).
    pub fn timestamp_ns(&self) -> i64 {
        self.timestamp.map(|t| t.as_nanos()).unwrap_or(0)
    }
}

/// Encodes as protobuf in the snappy block format (the body of a protobuf push).
pub fn encode_protobuf(req: &PushRequest) -> Vec<u8> {
    snappy_compress(&prost::Message::encode_to_vec(req))
}

/// Decodes a protobuf push body (snappy block format), refusing more than `limit` bytes
/// decompressed.
pub fn decode_protobuf(body: &[u8], limit: usize) -> Result<PushRequest, WireError> {
    let raw = snappy_decompress(body, limit)?;
    Ok(<PushRequest as prost::Message>::decode(raw.as_slice())?)
}

/// Encodes as Loki's push JSON.
pub fn encode_json(req: &PushRequest) -> Result<Vec<u8>, WireError> {
    let streams = req
        .streams
        .iter()
        .map(|s| {
            let stream = crate::labels::parse_label_set(&s.labels)?
                .into_iter()
                .collect::<BTreeMap<_, _>>();
            Ok(JsonStream {
                stream,
                values: s.entries.iter().map(JsonEntry::from_entry).collect(),
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok(serde_json::to_vec(&JsonPush { streams })?)
}

/// Decodes Loki's push JSON. Stream labels become the `{a="b"}` string of a protobuf stream,
/// sorted by name, so both encodings give the same [`PushRequest`].
pub fn decode_json(body: &[u8]) -> Result<PushRequest, WireError> {
    let push: JsonPush = serde_json::from_slice(body)?;
    let streams = push
        .streams
        .into_iter()
        .map(|s| {
            let labels: Vec<(String, String)> = s.stream.into_iter().collect();
            Ok(Stream {
                labels: crate::labels::format_label_set(&labels),
                entries: s
                    .values
                    .into_iter()
                    .map(JsonEntry::into_entry)
                    .collect::<Result<_, WireError>>()?,
                hash: 0,
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok(PushRequest { streams })
}

/// Decodes a push body given its `Content-Type` and `Content-Encoding` headers, as Loki does.
pub fn decode_http(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<PushRequest, WireError> {
    push_payload(content_type, content_encoding, body, limit, &mut |_| {
        Ok::<(), WireError>(())
    })?
    .decode()
}

/// A push body with its content encoding (and, for protobuf, snappy) undone: what
/// [`PushPayload::decode`] reads and [`PushPayload::estimate`] sizes.
#[derive(Debug)]
pub enum PushPayload<'a> {
    Protobuf(Vec<u8>),
    Json(std::borrow::Cow<'a, [u8]>),
}

impl PushPayload<'_> {
    /// The decoded push.
    pub fn decode(&self) -> Result<PushRequest, WireError> {
        match self {
            PushPayload::Protobuf(raw) => Ok(<PushRequest as prost::Message>::decode(&raw[..])?),
            PushPayload::Json(raw) => decode_json(raw),
        }
    }

    /// The payload's bytes (decompressed).
    pub fn len(&self) -> usize {
        match self {
            PushPayload::Protobuf(raw) => raw.len(),
            PushPayload::Json(raw) => raw.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An upper bound on what [`PushPayload::decode`] allocates (see [`crate::budget`]).
    pub fn estimate(&self) -> Result<usize, crate::budget::ScanError> {
        use crate::budget::{PUSH_REQUEST, json_estimate, max_struct_size, protobuf_estimate};
        match self {
            PushPayload::Protobuf(raw) => protobuf_estimate(raw, &PUSH_REQUEST),
            PushPayload::Json(raw) => json_estimate(raw, max_struct_size(&PUSH_REQUEST)),
        }
    }
}

/// Undoes a push body's `Content-Encoding` (and snappy for protobuf), as Loki picks a decoder,
/// refusing more than `limit` bytes decompressed and asking `reserve` for every decompression buffer
/// before allocating it (snappy: its declared length, before decompressing).
pub fn push_payload<'a, E: From<WireError>>(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), E>,
) -> Result<PushPayload<'a>, E> {
    use std::borrow::Cow;
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let body: Cow<'a, [u8]> = match content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") | Some("snappy") => Cow::Borrowed(body),
        Some("gzip") => Cow::Owned(crate::compression::gzip_decompress_metered(
            body, limit, reserve,
        )?),
        Some("deflate") => Cow::Owned(crate::compression::deflate_decompress_metered(
            body, limit, reserve,
        )?),
        Some(other) => {
            return Err(WireError::Invalid {
                field: "Content-Encoding",
                reason: format!("Content-Encoding {other:?} not supported"),
            }
            .into());
        }
    };
    if media == "application/json" {
        if body.len() > limit {
            return Err(WireError::TooLarge {
                size: body.len(),
                limit,
            }
            .into());
        }
        return Ok(PushPayload::Json(body));
    }
    let size = crate::compression::snappy_decompressed_len(&body)?;
    if size > limit {
        return Err(WireError::TooLarge { size, limit }.into());
    }
    reserve(size)?;
    Ok(PushPayload::Protobuf(snappy_decompress(&body, limit)?))
}

#[derive(Serialize, Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Serialize, Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<JsonEntry>,
}

/// `["<ns as string>", "line"]` or `["<ns>", "line", {"key": "value"}]`.
struct JsonEntry {
    ts: String,
    line: String,
    metadata: Option<BTreeMap<String, String>>,
}

impl JsonEntry {
    fn from_entry(e: &Entry) -> Self {
        JsonEntry {
            ts: e.timestamp_ns().to_string(),
            line: e.line.clone(),
            metadata: (!e.structured_metadata.is_empty()).then(|| {
                e.structured_metadata
                    .iter()
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .collect()
            }),
        }
    }

    fn into_entry(self) -> Result<Entry, WireError> {
        let ns: i64 = self.ts.parse().map_err(|_| WireError::Timestamp {
            value: self.ts.clone(),
            reason: "expected nanoseconds since the Unix epoch as a string of digits".into(),
        })?;
        let mut e = Entry::new(ns, self.line);
        if let Some(md) = self.metadata {
            e.structured_metadata = md
                .into_iter()
                .map(|(name, value)| LabelPair { name, value })
                .collect();
        }
        Ok(e)
    }
}

impl Serialize for JsonEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = if self.metadata.is_some() { 3 } else { 2 };
        let mut seq = s.serialize_seq(Some(n))?;
        seq.serialize_element(&self.ts)?;
        seq.serialize_element(&self.line)?;
        if let Some(md) = &self.metadata {
            seq.serialize_element(md)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for JsonEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"an entry ["<unix epoch in nanoseconds>", "<log line>", {optional structured metadata}]"#)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonEntry, A::Error> {
                let ts: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let line: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let metadata: Option<BTreeMap<String, String>> = seq.next_element()?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(JsonEntry { ts, line, metadata })
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PushRequest {
        let mut e2 = Entry::new(1_700_000_000_000_000_001, "second \"quoted\"");
        e2.structured_metadata.push(LabelPair {
            name: "trace_id".into(),
            value: "abc".into(),
        });
        PushRequest {
            streams: vec![Stream {
                labels: r#"{job="pos", region="eu"}"#.into(),
                entries: vec![Entry::new(1_700_000_000_000_000_000, "first"), e2],
                hash: 0,
            }],
        }
    }

    #[test]
    fn push_payload_asks_before_decompressing() {
        let body = encode_protobuf(&sample());
        let declared = crate::compression::snappy_decompressed_len(&body).unwrap();
        let mut asked = Vec::new();
        let p = push_payload(
            Some(crate::http::PROTOBUF),
            None,
            &body,
            1 << 20,
            &mut |n| {
                asked.push(n);
                Ok::<(), WireError>(())
            },
        )
        .unwrap();
        assert_eq!((asked, p.len()), (vec![declared], declared));
        assert_eq!(p.decode().unwrap(), sample());
        assert!(p.estimate().unwrap() > 0);
        // A refusal stops it: nothing decompressed.
        let r = push_payload(
            Some(crate::http::PROTOBUF),
            None,
            &body,
            1 << 20,
            &mut |n| Err(WireError::TooLarge { size: n, limit: 0 }),
        );
        assert!(matches!(r, Err(WireError::TooLarge { limit: 0, .. })));
    }

    #[test]
    fn protobuf_round_trip() {
        let req = sample();
        assert_eq!(
            decode_protobuf(&encode_protobuf(&req), 1 << 20).unwrap(),
            req
        );
    }

    #[test]
    fn json_round_trip() {
        let req = sample();
        let json = encode_json(&req).unwrap();
        assert_eq!(decode_json(&json).unwrap(), req);
    }

    #[test]
    fn json_as_documented() {
        let body = br#"{"streams":[{"stream":{"region":"eu","job":"pos"},"values":[["1700000000000000000","hi"],["1700000000000000001","there",{"trace_id":"0242ac120002"}]]}]}"#;
        let req = decode_json(body).unwrap();
        assert_eq!(req.streams[0].labels, r#"{job="pos", region="eu"}"#);
        assert_eq!(
            req.streams[0].entries[1].structured_metadata[0].value,
            "0242ac120002"
        );
        assert_eq!(
            req.streams[0].entries[1].timestamp_ns(),
            1_700_000_000_000_000_001
        );
    }

    #[test]
    fn json_bad_timestamp_is_an_error() {
        let body = br#"{"streams":[{"stream":{"a":"b"},"values":[["yesterday","hi"]]}]}"#;
        assert!(matches!(
            decode_json(body),
            Err(WireError::Timestamp { .. })
        ));
        let body = br#"{"streams":[{"stream":{"a":"b"},"values":[[1,"hi"]]}]}"#;
        assert!(matches!(decode_json(body), Err(WireError::Json(_))));
    }

    #[test]
    fn http_dispatch() {
        let req = sample();
        let json = encode_json(&req).unwrap();
        let gz = crate::compression::gzip_compress(&json);
        assert_eq!(
            decode_http(Some("application/json"), None, &json, 1 << 20).unwrap(),
            req
        );
        assert_eq!(
            decode_http(
                Some("application/json; charset=utf-8"),
                Some("gzip"),
                &gz,
                1 << 20
            )
            .unwrap(),
            req
        );
        let pb = encode_protobuf(&req);
        assert_eq!(
            decode_http(Some("application/x-protobuf"), None, &pb, 1 << 20).unwrap(),
            req
        );
        assert_eq!(
            decode_http(None, Some("snappy"), &pb, 1 << 20).unwrap(),
            req
        );
        assert!(decode_http(Some("application/json"), Some("br"), &json, 1 << 20).is_err());
        assert!(decode_http(Some("text/plain"), None, &json, 1 << 20).is_err());
    }

    #[test]
    fn timestamp_nanos_round_trip_negative() {
        for ns in [-1_500_000_001i64, 0, 1, 1_999_999_999] {
            assert_eq!(Timestamp::from_nanos(ns).as_nanos(), ns);
        }
    }
}
