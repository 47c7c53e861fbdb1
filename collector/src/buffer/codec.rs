//! How a batch is written into a disk buffer record and read back ([`Durable`]).
//!
//! Logs and metrics use a small length-prefixed format of their own (little-endian integers,
//! strings as a `u32` length and UTF-8 bytes), where an item whose labels equal the previous
//! item's says so in one byte instead of repeating them; traces are the OTLP protobuf
//! `ExportTraceServiceRequest`. A log record's extracted `fields` are not kept: no writer sends
//! them. Decoding never trusts a length: every read is checked against what is left, so a
//! damaged record is an error, never a panic or a huge allocation.

use prost::Message;

use crate::event::{
    LogBatch, LogRecord, MetricBatch, MetricSample, SharedLabels, Signal, TraceBatch,
};
use wire::Labels;
use wire::otlp::ExportTraceServiceRequest;

/// A record that does not decode.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("record ends early")]
    Truncated,
    #[error("record holds a string that is not UTF-8")]
    NotUtf8,
    #[error("record has {0} bytes after its last item")]
    Trailing(usize),
    #[error("record holds a bad marker byte {0}")]
    BadMarker(u8),
    #[error("trace record does not decode: {0}")]
    Protobuf(String),
}

/// A batch type a disk buffer can hold.
pub trait Durable: Sized {
    /// The signal these batches carry.
    const SIGNAL: Signal;
    /// Appends the batch's encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
}

/// The first byte of each item's labels: a new set follows, or the previous item's again.
const NEW_LABELS: u8 = 0;
const SAME_LABELS: u8 = 1;

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // A string over 4 GiB cannot be in a batch (bodies are bounded far below): truncation to
    // the prefix keeps the record decodable.
    let bytes = &s.as_bytes()[..s.len().min(u32::MAX as usize)];
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_pairs<'a>(out: &mut Vec<u8>, len: usize, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    put_u32(out, len);
    for (k, v) in pairs {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Writes `labels`, or a marker when they equal `prev`'s.
fn put_labels(out: &mut Vec<u8>, labels: &Labels, prev: Option<&Labels>) {
    if prev.is_some_and(|p| p == labels) {
        out.push(SAME_LABELS);
    } else {
        out.push(NEW_LABELS);
        put_pairs(out, labels.len(), labels.iter());
    }
}

/// A cursor over a record's bytes; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.0.len() {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, CodecError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| CodecError::Truncated)?;
        Ok(u32::from_le_bytes(b) as usize)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| CodecError::Truncated)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let n = self.u32()?;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| CodecError::NotUtf8)
    }

    /// A count of items that each take at least `min_bytes`: more than what is left can hold
    /// is a damaged record (and would be a huge allocation).
    fn count(&mut self, min_bytes: usize) -> Result<usize, CodecError> {
        let n = self.u32()?;
        if n.saturating_mul(min_bytes) > self.0.len() {
            return Err(CodecError::Truncated);
        }
        Ok(n)
    }

    fn pairs(&mut self) -> Result<Vec<(String, String)>, CodecError> {
        let n = self.count(8)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.string()?, self.string()?));
        }
        Ok(pairs)
    }

    /// A label set: new, or the previous item's (a run of equal labels shares one set, as the
    /// sources made it).
    fn labels(&mut self, prev: Option<&SharedLabels>) -> Result<SharedLabels, CodecError> {
        match self.u8()? {
            NEW_LABELS => Ok(SharedLabels::new(Labels::new(self.pairs()?))),
            SAME_LABELS => prev.cloned().ok_or(CodecError::BadMarker(SAME_LABELS)),
            other => Err(CodecError::BadMarker(other)),
        }
    }

    fn finish(self) -> Result<(), CodecError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(CodecError::Trailing(n)),
        }
    }
}

impl Durable for LogBatch {
    const SIGNAL: Signal = Signal::Logs;

    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.len());
        let mut prev: Option<&Labels> = None;
        for r in self {
            put_labels(out, &r.labels, prev);
            prev = Some(&r.labels);
            out.extend_from_slice(&r.timestamp_ns.to_le_bytes());
            put_str(out, &r.line);
            put_pairs(
                out,
                r.structured_metadata.len(),
                r.structured_metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader(bytes);
        // An entry takes at least a marker, a time, an empty line and no metadata.
        let n = r.count(1 + 8 + 4 + 4)?;
        let mut batch: LogBatch = Vec::with_capacity(n);
        for _ in 0..n {
            let labels = r.labels(batch.last().map(|p: &LogRecord| &p.labels))?;
            let timestamp_ns = r.u64()? as i64;
            let line = r.string()?;
            let structured_metadata = r.pairs()?;
            batch.push(LogRecord {
                labels,
                timestamp_ns,
                line,
                structured_metadata,
                ..Default::default()
            });
        }
        r.finish()?;
        Ok(batch)
    }
}

impl Durable for MetricBatch {
    const SIGNAL: Signal = Signal::Metrics;

    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.len());
        let mut prev: Option<&Labels> = None;
        for s in self {
            put_labels(out, &s.labels, prev);
            prev = Some(&s.labels);
            out.extend_from_slice(&s.value.to_bits().to_le_bytes());
            out.extend_from_slice(&s.timestamp_ms.to_le_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader(bytes);
        let n = r.count(1 + 8 + 8)?;
        let mut batch: MetricBatch = Vec::with_capacity(n);
        for _ in 0..n {
            let labels = r.labels(batch.last().map(|p: &MetricSample| &p.labels))?;
            let value = f64::from_bits(r.u64()?);
            let timestamp_ms = r.u64()? as i64;
            batch.push(MetricSample {
                labels,
                value,
                timestamp_ms,
            });
        }
        r.finish()?;
        Ok(batch)
    }
}

impl Durable for TraceBatch {
    const SIGNAL: Signal = Signal::Traces;

    fn encode(&self, out: &mut Vec<u8>) {
        let req = ExportTraceServiceRequest {
            resource_spans: self.clone(),
        };
        // Writing into a Vec cannot run out of room.
        let _ = req.encode(out);
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        ExportTraceServiceRequest::decode(bytes)
            .map(|r| r.resource_spans)
            .map_err(|e| CodecError::Protobuf(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn labels() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[a-z_]{1,8}", ".{0,12}"), 0..4).prop_map(Labels::new)
    }

    fn log() -> impl Strategy<Value = LogRecord> {
        (
            labels(),
            any::<i64>(),
            ".{0,40}",
            proptest::collection::vec(("[a-z]{1,6}", ".{0,8}"), 0..3),
        )
            .prop_map(
                |(labels, timestamp_ns, line, structured_metadata)| LogRecord {
                    labels: labels.into(),
                    timestamp_ns,
                    line,
                    structured_metadata,
                    ..Default::default()
                },
            )
    }

    fn sample() -> impl Strategy<Value = MetricSample> {
        (labels(), any::<f64>(), any::<i64>()).prop_map(|(labels, value, timestamp_ms)| {
            MetricSample {
                labels: labels.into(),
                value,
                timestamp_ms,
            }
        })
    }

    fn round_trip<T: Durable>(batch: &T) -> Result<T, CodecError> {
        let mut out = Vec::new();
        batch.encode(&mut out);
        T::decode(&out)
    }

    proptest! {
        #[test]
        fn logs_round_trip(batch in proptest::collection::vec(log(), 0..20), dup in 0usize..20) {
            let mut batch = batch;
            // Runs of equal labels take the short path.
            if batch.len() > 1 {
                let l = batch[0].labels.clone();
                for r in batch.iter_mut().take(dup) { r.labels = l.clone(); }
            }
            prop_assert_eq!(round_trip(&batch)?, batch);
        }

        #[test]
        fn metrics_round_trip(batch in proptest::collection::vec(sample(), 0..20)) {
            let back = round_trip(&batch)?;
            prop_assert_eq!(back.len(), batch.len());
            for (a, b) in back.iter().zip(&batch) {
                prop_assert_eq!(&a.labels, &b.labels);
                prop_assert_eq!(a.value.to_bits(), b.value.to_bits());
                prop_assert_eq!(a.timestamp_ms, b.timestamp_ms);
            }
        }

        /// A damaged or cut record is an error, never a panic or a huge allocation.
        #[test]
        fn damaged_records_are_errors(
            batch in proptest::collection::vec(log(), 1..10),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut out = Vec::new();
            batch.encode(&mut out);
            let cut_at = cut.index(out.len());
            prop_assert!(LogBatch::decode(&out[..cut_at]).is_err());
            let mut flipped = out.clone();
            let i = flip.index(flipped.len());
            flipped[i] = byte;
            let _ = LogBatch::decode(&flipped);
            let _ = MetricBatch::decode(&flipped);
            let _ = TraceBatch::decode(&flipped);
        }
    }

    #[test]
    fn traces_round_trip() {
        let batch: TraceBatch = vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "checkout".into(),
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }];
        assert_eq!(round_trip(&batch).unwrap(), batch);
    }

    #[test]
    fn a_huge_count_in_a_small_record_is_refused_before_allocating() {
        let mut out = Vec::new();
        put_u32(&mut out, u32::MAX as usize);
        assert_eq!(LogBatch::decode(&out), Err(CodecError::Truncated));
        assert_eq!(MetricBatch::decode(&out), Err(CodecError::Truncated));
    }
}
