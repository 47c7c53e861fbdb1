//! `loki`: pushes log records to Loki's push API (`url` is the full push URL, e.g.
//! `http://loki:3100/loki/api/v1/push`), as protobuf in the snappy block format with
//! `Content-Type: application/x-protobuf`, like Alloy's `loki.write`.
//!
//! Records are grouped into streams by their labels (`{a="b"}` form), entries in time order within
//! each stream, structured metadata kept. `batch_size` is in bytes (lines plus structured
//! metadata, default 1 MiB); the shared keys are described in [`super`].
//!
//! Partial refusals: Loki stores what it can of a push and answers 400 for the rest.
//! - Its ingesters say how many entries of a stream they refused (`pkg/ingester/stream.go`:
//!   "... total ignored: N out of M for stream: {...}", older versions "total ignored: N out
//!   of M"): the N of every such line are counted as refused (`http_400`), the other entries
//!   as sent.
//! - Its distributor (2.9 and later) lists its validation errors grouped by message,
//!   `N errors like: <message>` ([`wire::loki::errors`]). When every one is an entry-level
//!   error (line too long, timestamp too old or too new, structured metadata refused), their
//!   count is refused and the rest sent.
//! - Any other 400 (a stream-level error such as a label too long, which refuses a stream of
//!   unstated size; an unknown body) is counted as refused whole: the writer cannot know what
//!   was stored, and does not claim it was.
//!
//! Loki before 2.9 answered only the last validation error, without a count: there one error
//! is read as one entry, which undercounts when several entries were invalid.

use bytes::Bytes;
use serde::Deserialize;

use super::batcher::{Engine, Sink, parse_config};
use super::http::{HttpClient, PROTOBUF};
use super::retry::{Attempt, Split};
use crate::event::{LogRecord, Signal};
use crate::sources::BuildError;

/// The `loki` writer's own keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LokiConfig {
    /// Bytes of lines and metadata per push.
    #[serde(default = "default_batch_size")]
    batch_size: usize,
}

fn default_batch_size() -> usize {
    1 << 20
}

/// Encodes and pushes batches of log records.
pub struct LokiSink {
    http: HttpClient,
}

/// Builds the writer from its settings.
pub fn build(table: toml::Table) -> Result<Engine<LokiSink>, BuildError> {
    let (common, own): (_, LokiConfig) = parse_config(table)?;
    let http = HttpClient::new(&common.client, &common.client.url, &[PROTOBUF])?
        .with_partial(|_, body| refused(body).map(Split::Refused));
    Ok(Engine::new(LokiSink { http }, own.batch_size, &common))
}

/// The entries a Loki 400 says it refused (see the module's docs); `None` when it does not say.
pub fn refused(body: &[u8]) -> Option<u64> {
    ignored(body).or_else(|| wire::loki::errors::refused_entries(body))
}

/// The entries a Loki ingester's 400 says it refused: the sum of every "total ignored: N out
/// of M"; `None` when it does not say.
pub fn ignored(body: &[u8]) -> Option<u64> {
    const MARK: &str = "total ignored: ";
    let text = String::from_utf8_lossy(body);
    let mut total: Option<u64> = None;
    for (at, _) in text.match_indices(MARK) {
        let rest = &text[at + MARK.len()..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after = &rest[digits..];
        if let (Ok(n), true) = (rest[..digits].parse::<u64>(), after.starts_with(" out of ")) {
            total = Some(total.unwrap_or(0).saturating_add(n));
        }
    }
    total
}

/// The records grouped into streams: each stream's labels in `{a="b"}` form and the indexes of
/// its records, streams in label order, entries in time order (equal times in arrival order).
/// Records are grouped by their shared label set first (a pointer per entry, no string hashed or
/// formatted per entry), then sets with equal content merged; each set is formatted once.
fn streams(records: &[LogRecord]) -> Vec<(String, Vec<usize>)> {
    let mut by_set: crate::event::FnvMap<usize, usize> = Default::default();
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut last: Option<(usize, usize)> = None; // (set id, group), for runs of one stream
    for (i, r) in records.iter().enumerate() {
        let id = r.labels.id();
        let g = match last {
            Some((lid, g)) if lid == id => g,
            _ => *by_set.entry(id).or_insert_with(|| {
                groups.push((r.labels.to_loki_string(), Vec::new()));
                groups.len() - 1
            }),
        };
        last = Some((id, g));
        groups[g].1.push(i);
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, Vec<usize>)> = Vec::with_capacity(groups.len());
    for (labels, idx) in groups {
        match merged.last_mut() {
            Some((l, m)) if *l == labels => m.extend(idx),
            _ => merged.push((labels, idx)),
        }
    }
    for (_, idx) in &mut merged {
        idx.sort_unstable_by_key(|&i| (records[i].timestamp_ns, i));
    }
    merged
}

/// Groups records into streams (by labels, in label order), entries sorted by time: the request
/// [`encode_push`] writes (kept for tests and callers that want the message).
pub fn push_request(records: Vec<LogRecord>) -> wire::loki::PushRequest {
    let groups = streams(&records);
    let mut records: Vec<Option<LogRecord>> = records.into_iter().map(Some).collect();
    wire::loki::PushRequest {
        streams: groups
            .into_iter()
            .map(|(labels, idx)| wire::loki::Stream {
                labels,
                entries: idx
                    .into_iter()
                    .filter_map(|i| records[i].take())
                    .map(|r| {
                        let mut entry = wire::loki::Entry::new(r.timestamp_ns, r.line);
                        entry.structured_metadata = r
                            .structured_metadata
                            .into_iter()
                            .map(|(name, value)| wire::loki::LabelPair { name, value })
                            .collect();
                        entry
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    }
}

/// Protobuf writing for `logproto.PushRequest`, straight from the records (no intermediate
/// message, no copy of lines): the bytes prost writes for [`push_request`]'s message.
mod proto {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

    use crate::event::LogRecord;

    fn bytes_len(tag: u32, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            key_len(tag) + encoded_len_varint(len as u64) + len
        }
    }

    fn message_len(tag: u32, len: usize) -> usize {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }

    fn put_bytes(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
        if !b.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(b.len() as u64, buf);
            buf.extend_from_slice(b);
        }
    }

    fn put_message_header(buf: &mut Vec<u8>, tag: u32, len: usize) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
    }

    /// (seconds, nanos) of `google.protobuf.Timestamp`.
    fn timestamp(ns: i64) -> (i64, i32) {
        let t = wire::loki::Timestamp::from_nanos(ns);
        (t.seconds, t.nanos)
    }

    fn timestamp_len(ns: i64) -> usize {
        let (s, n) = timestamp(ns);
        let mut len = 0;
        if s != 0 {
            len += key_len(1) + encoded_len_varint(s as u64);
        }
        if n != 0 {
            len += key_len(2) + encoded_len_varint(n as i64 as u64);
        }
        len
    }

    fn pair_len(name: &str, value: &str) -> usize {
        bytes_len(1, name.len()) + bytes_len(2, value.len())
    }

    fn entry_len(r: &LogRecord) -> usize {
        message_len(1, timestamp_len(r.timestamp_ns))
            + bytes_len(2, r.line.len())
            + r.structured_metadata
                .iter()
                .map(|(k, v)| message_len(3, pair_len(k, v)))
                .sum::<usize>()
    }

    fn put_entry(buf: &mut Vec<u8>, r: &LogRecord) {
        put_message_header(buf, 1, timestamp_len(r.timestamp_ns));
        let (s, n) = timestamp(r.timestamp_ns);
        if s != 0 {
            encode_key(1, WireType::Varint, buf);
            encode_varint(s as u64, buf);
        }
        if n != 0 {
            encode_key(2, WireType::Varint, buf);
            encode_varint(n as i64 as u64, buf);
        }
        put_bytes(buf, 2, r.line.as_bytes());
        for (k, v) in &r.structured_metadata {
            put_message_header(buf, 3, pair_len(k, v));
            put_bytes(buf, 1, k.as_bytes());
            put_bytes(buf, 2, v.as_bytes());
        }
    }

    /// Appends the `PushRequest` of `streams` (labels, record indexes) to `buf`.
    pub(super) fn put_push(
        buf: &mut Vec<u8>,
        records: &[LogRecord],
        streams: &[(String, Vec<usize>)],
    ) {
        for (labels, idx) in streams {
            let entries: usize = idx
                .iter()
                .map(|&i| message_len(2, entry_len(&records[i])))
                .sum();
            put_message_header(buf, 1, bytes_len(1, labels.len()) + entries);
            put_bytes(buf, 1, labels.as_bytes());
            for &i in idx {
                let r = &records[i];
                put_message_header(buf, 2, entry_len(r));
                put_entry(buf, r);
            }
        }
    }
}

/// Per-thread buffers the writer encodes into, kept between pushes: the protobuf (reused, its
/// capacity kept) and the snappy compressor (its hash table). Only the compressed body, which
/// the retries hold, is allocated per push.
struct EncodeBuffers {
    proto: Vec<u8>,
    snappy: wire::compression::SnappyCompressor,
}

/// Most of the protobuf buffer kept between pushes (a batch is ~1 MiB by default).
const MAX_KEPT_BUFFER: usize = 16 << 20;

thread_local! {
    static BUFFERS: std::cell::RefCell<EncodeBuffers> = std::cell::RefCell::new(EncodeBuffers {
        proto: Vec::new(),
        snappy: Default::default(),
    });
}

/// The push body of `records`: protobuf of [`push_request`]'s message, snappy-compressed.
pub fn encode_push(records: &[LogRecord]) -> Vec<u8> {
    let streams = streams(records);
    BUFFERS.with(|b| {
        let mut b = b.borrow_mut();
        let b = &mut *b;
        b.proto.clear();
        proto::put_push(&mut b.proto, records, &streams);
        let out = b.snappy.compress(&b.proto);
        if b.proto.capacity() > MAX_KEPT_BUFFER {
            b.proto = Vec::new();
        }
        out
    })
}

impl Sink for LokiSink {
    type Item = LogRecord;
    type Payload = Bytes;
    const SIGNAL: Signal = Signal::Logs;

    fn count(_: &LogRecord) -> u64 {
        1
    }

    fn size_bytes(r: &LogRecord) -> usize {
        r.size_bytes()
    }

    fn weight(&self, r: &LogRecord) -> usize {
        r.line.len()
            + r.structured_metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    fn encode(&self, items: Vec<LogRecord>) -> Bytes {
        Bytes::from(encode_push(&items))
    }

    fn send(&self, payload: &Bytes) -> impl Future<Output = Attempt> + Send {
        self.http.post_simple(payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Labels;

    fn rec(app: &str, ts: i64, line: &str) -> LogRecord {
        LogRecord {
            labels: Labels::from_iter([("app", app)]).into(),
            timestamp_ns: ts,
            line: line.into(),
            structured_metadata: vec![("trace_id".into(), "abc".into())],
            ..Default::default()
        }
    }

    #[test]
    fn groups_by_stream_and_sorts_by_time() {
        let req = push_request(vec![
            rec("b", 3, "b3"),
            rec("a", 2, "a2"),
            rec("b", 1, "b1"),
            rec("a", 1, "a1"),
        ]);
        assert_eq!(req.streams.len(), 2);
        assert_eq!(req.streams[0].labels, r#"{app="a"}"#);
        let lines: Vec<_> = req.streams[1]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["b1", "b3"]);
        assert_eq!(
            req.streams[0].entries[0].structured_metadata[0].name,
            "trace_id"
        );
        let body = wire::loki::encode_protobuf(&req);
        assert_eq!(wire::loki::decode_protobuf(&body, 1 << 20).unwrap(), req);
    }

    #[test]
    fn direct_encoding_is_what_prost_writes() {
        let shared = crate::event::SharedLabels::from_iter([("app", "a")]);
        let mut recs = vec![
            rec("b", 3, "b3"),
            rec("a", 2, "a2"),
            rec("b", -1_500_000_000, ""),
            rec("a", 0, "a0"),
        ];
        for (i, ts) in [(0, 7), (1, 2), (2, 2)] {
            let mut r = rec("a", ts, &format!("shared{i}"));
            r.labels = shared.clone();
            r.structured_metadata.push(("empty".into(), String::new()));
            recs.push(r);
        }
        let body = encode_push(&recs);
        let decoded = wire::loki::decode_protobuf(&body, 1 << 20).unwrap();
        let req = push_request(recs);
        assert_eq!(decoded, req);
        assert_eq!(
            wire::compression::snappy_decompress(&body, 1 << 20).unwrap(),
            prost::Message::encode_to_vec(&req)
        );
        // Two sets with equal labels are one stream, equal times in arrival order.
        assert_eq!(req.streams.len(), 2);
        let a: Vec<_> = req.streams[0]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(a, ["a0", "a2", "shared1", "shared2", "shared0"]);
    }

    #[test]
    fn reads_how_many_entries_a_400_refused() {
        let new = "entry with timestamp 2024-01-01 ignored, reason: 'entry too far behind',\n\
                   user 'fake', total ignored: 1 out of 101 for stream: {app=\"a\"}";
        assert_eq!(ignored(new.as_bytes()), Some(1));
        let two = "total ignored: 2 out of 5\ntotal ignored: 3 out of 3";
        assert_eq!(ignored(two.as_bytes()), Some(5));
        assert_eq!(ignored(b"line too long"), None);
        assert_eq!(ignored(b"total ignored: many"), None);
        let long = "max entry size '5' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '7' bytes";
        assert_eq!(refused(long.as_bytes()), Some(1));
        assert_eq!(
            refused(format!("3 errors like: {long}").as_bytes()),
            Some(3)
        );
        assert_eq!(refused(new.as_bytes()), Some(1));
        assert_eq!(
            refused(b"stream '{a=\"b\"}' has label value too long: 'xxxxxx'"),
            None
        );
    }

    #[test]
    fn config_is_checked() {
        let t: toml::Table = toml::from_str(
            "url = \"http://x/loki/api/v1/push\"\nbatch_size = 100\ntenant_id = \"t\"",
        )
        .unwrap();
        let e = build(t).unwrap();
        assert_eq!(e.sink().http.headers()["x-scope-orgid"], "t");
        let t: toml::Table = toml::from_str("url = \"http://x\"\nshards = 2").unwrap();
        assert!(build(t).is_err());
    }
}
