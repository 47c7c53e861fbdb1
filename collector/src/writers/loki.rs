//! `loki`: pushes log records to Loki's push API (`url` is the full push URL, e.g.
//! `http://loki:3100/loki/api/v1/push`), as protobuf in the snappy block format with
//! `Content-Type: application/x-protobuf`, like Alloy's `loki.write`.
//!
//! Records are grouped into streams by their labels (`{a="b"}` form), entries in time order within
//! each stream, structured metadata kept. `batch_size` is in bytes (lines plus structured
//! metadata, default 1 MiB); the shared keys are described in [`super`].
//!
//! Partial refusals: Loki stores what it can of a push and answers 400 for the rest; its
//! ingesters say how many entries of a stream they refused (`pkg/ingester/stream.go`:
//! "... total ignored: N out of M for stream: {...}", older versions "total ignored: N out of
//! M"). The N of every such line in the answer are counted as refused (`http_400`), the other
//! entries as sent. A 400 without that line (the distributor's validation errors: line too
//! long, too old, ... which give no count) is counted as refused whole: the writer cannot know
//! what was stored, and does not claim it was.

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
        .with_partial(|_, body| ignored(body).map(Split::Refused));
    Ok(Engine::new(LokiSink { http }, own.batch_size, &common))
}

/// The entries a Loki 400 says it refused: the sum of every "total ignored: N out of M";
/// `None` when it does not say.
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

/// Groups records into streams (by labels, in label order), entries sorted by time.
pub fn push_request(records: Vec<LogRecord>) -> wire::loki::PushRequest {
    let mut streams: std::collections::BTreeMap<String, Vec<(i64, wire::loki::Entry)>> =
        Default::default();
    for r in records {
        let mut entry = wire::loki::Entry::new(r.timestamp_ns, r.line);
        entry.structured_metadata = r
            .structured_metadata
            .into_iter()
            .map(|(name, value)| wire::loki::LabelPair { name, value })
            .collect();
        streams
            .entry(r.labels.to_loki_string())
            .or_default()
            .push((r.timestamp_ns, entry));
    }
    wire::loki::PushRequest {
        streams: streams
            .into_iter()
            .map(|(labels, mut entries)| {
                entries.sort_by_key(|(ts, _)| *ts); // stable: equal times keep arrival order
                wire::loki::Stream {
                    labels,
                    entries: entries.into_iter().map(|(_, e)| e).collect(),
                    hash: 0,
                }
            })
            .collect(),
    }
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
        Bytes::from(wire::loki::encode_protobuf(&push_request(items)))
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
            labels: Labels::from_iter([("app", app)]),
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
    fn reads_how_many_entries_a_400_refused() {
        let new = "entry with timestamp 2024-01-01 ignored, reason: 'entry too far behind',\n\
                   user 'fake', total ignored: 1 out of 101 for stream: {app=\"a\"}";
        assert_eq!(ignored(new.as_bytes()), Some(1));
        let two = "total ignored: 2 out of 5\ntotal ignored: 3 out of 3";
        assert_eq!(ignored(two.as_bytes()), Some(5));
        assert_eq!(ignored(b"line too long"), None);
        assert_eq!(ignored(b"total ignored: many"), None);
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
