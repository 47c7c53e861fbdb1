//! Prometheus remote write 1.0 (`prometheus.WriteRequest`, field numbers from Prometheus'
//! `prompb/remote.proto` and `prompb/types.proto`) in the snappy block format, as sent with
//! `Content-Type: application/x-protobuf`, `Content-Encoding: snappy` and
//! `X-Prometheus-Remote-Write-Version: 0.1.0`.
//!
//! Series rules the receivers enforce (Mimir, Prometheus): labels sorted by name with no
//! duplicates, a `__name__`, legal names; see [`check_series`]. A sample whose value has the bits
//! of [`STALE_NAN_BITS`] is a staleness marker, not a number.

use crate::WireError;
use crate::compression::{snappy_compress, snappy_decompress};

/// The header value remote write 1.0 senders put in `X-Prometheus-Remote-Write-Version`.
pub const VERSION_HEADER_VALUE: &str = "0.1.0";

/// The staleness marker: a NaN with this exact bit pattern (Prometheus `value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as an `f64`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Is `v` the staleness marker (and not just any NaN)?
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries` (native histograms, field 4, are not modelled and are skipped when
/// decoding).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: value and timestamp in milliseconds since the epoch.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `prometheus.MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    Gaugehistogram = 4,
    Summary = 5,
    Info = 6,
    Stateset = 7,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl TimeSeries {
    /// The value of `__name__`, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.as_str())
    }

    /// Sorts the labels by name (what a sender must do before sending).
    pub fn sort_labels(&mut self) {
        self.labels.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// Encodes as protobuf in the snappy block format.
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    snappy_compress(&prost::Message::encode_to_vec(req))
}

/// Decodes a snappy-compressed protobuf body, refusing more than `limit` bytes decompressed.
pub fn decode(body: &[u8], limit: usize) -> Result<WriteRequest, WireError> {
    let raw = snappy_decompress(body, limit)?;
    Ok(<WriteRequest as prost::Message>::decode(raw.as_slice())?)
}

/// Writes a `WriteRequest` protobuf series by series into one buffer, straight from borrowed
/// label pairs and samples: what a sender that holds its own label sets uses instead of
/// building [`TimeSeries`] messages (a copy of every label string) only to encode them. The
/// bytes decode as the [`WriteRequest`] of those series; every field is written, so values keep
/// their bits (staleness markers, `-0.0`) and a zero timestamp stays a zero timestamp.
#[derive(Debug, Default)]
pub struct RequestEncoder {
    buf: Vec<u8>,
}

/// Protobuf tags: field number << 3 | wire type (0 varint, 1 fixed 64-bit, 2 length-delimited).
const TAG_TIMESERIES: u8 = 1 << 3 | 2;
const TAG_LABELS: u8 = 1 << 3 | 2;
const TAG_SAMPLES: u8 = 2 << 3 | 2;
const TAG_NAME: u8 = 1 << 3 | 2;
const TAG_VALUE: u8 = 2 << 3 | 2;
const TAG_SAMPLE_VALUE: u8 = 1 << 3 | 1;
const TAG_SAMPLE_TIMESTAMP: u8 = 2 << 3;

impl RequestEncoder {
    /// An encoder whose buffer starts with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        RequestEncoder {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Appends one series: its labels as given (a sender keeps them sorted by name), its
    /// samples in the order given.
    pub fn series<'a, I>(&mut self, labels: I, samples: &[Sample])
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: Clone,
    {
        use prost::encoding::{encode_varint, encoded_len_varint};
        let field = |len: usize| 1 + encoded_len_varint(len as u64) + len;
        let label_len = |name: &str, value: &str| field(name.len()) + field(value.len());
        let sample_len = |s: &Sample| 1 + 8 + 1 + encoded_len_varint(s.timestamp as u64);
        let labels = labels.into_iter();
        let len = labels
            .clone()
            .map(|(n, v)| field(label_len(n, v)))
            .sum::<usize>()
            + samples.iter().map(|s| field(sample_len(s))).sum::<usize>();
        let buf = &mut self.buf;
        buf.reserve(field(len));
        buf.push(TAG_TIMESERIES);
        encode_varint(len as u64, buf);
        for (name, value) in labels {
            buf.push(TAG_LABELS);
            encode_varint(label_len(name, value) as u64, buf);
            for (tag, s) in [(TAG_NAME, name), (TAG_VALUE, value)] {
                buf.push(tag);
                encode_varint(s.len() as u64, buf);
                buf.extend_from_slice(s.as_bytes());
            }
        }
        for s in samples {
            buf.push(TAG_SAMPLES);
            encode_varint(sample_len(s) as u64, buf);
            buf.push(TAG_SAMPLE_VALUE);
            buf.extend_from_slice(&s.value.to_bits().to_le_bytes());
            buf.push(TAG_SAMPLE_TIMESTAMP);
            encode_varint(s.timestamp as u64, buf);
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing written yet?
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The request as protobuf.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// The request as protobuf in the snappy block format (a remote-write body).
    pub fn finish_snappy(self) -> Vec<u8> {
        snappy_compress(&self.buf)
    }
}

/// What is wrong with a series' labels, per the rules remote-write receivers enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesProblem {
    #[error("received series has no metric name")]
    MissingMetricName,
    #[error("received a series with invalid metric name: '{0}'")]
    InvalidMetricName(String),
    #[error("received a series with an invalid label: '{0}'")]
    InvalidLabelName(String),
    #[error("received a series with an empty value for label '{0}'")]
    EmptyLabelValue(String),
    #[error("received a series with duplicate label name, label: '{0}'")]
    DuplicateLabel(String),
    #[error("received a series where the label names are not sorted, label: '{0}'")]
    LabelsNotSorted(String),
}

/// Checks a series' labels: sorted by name, no duplicates, a legal `__name__`, legal label names,
/// no empty values.
pub fn check_series(labels: &[Label]) -> Result<(), SeriesProblem> {
    let mut name = None;
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            let prev = &labels[i - 1].name;
            if *prev == l.name {
                return Err(SeriesProblem::DuplicateLabel(l.name.clone()));
            }
            if *prev > l.name {
                return Err(SeriesProblem::LabelsNotSorted(l.name.clone()));
            }
        }
        if l.name == "__name__" {
            name = Some(l.value.as_str());
        } else if !crate::labels::is_valid_label_name(&l.name) {
            return Err(SeriesProblem::InvalidLabelName(l.name.clone()));
        } else if l.value.is_empty() {
            return Err(SeriesProblem::EmptyLabelValue(l.name.clone()));
        }
    }
    match name {
        None => Err(SeriesProblem::MissingMetricName),
        Some(n) if !crate::labels::is_valid_metric_name(n) => {
            Err(SeriesProblem::InvalidMetricName(n.to_string()))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)]) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
            samples: vec![
                Sample {
                    value: 1.5,
                    timestamp: 1_700_000_000_000,
                },
                Sample {
                    value: stale_nan(),
                    timestamp: 1_700_000_015_000,
                },
            ],
            exemplars: vec![],
        }
    }

    #[test]
    fn round_trip_keeps_stale_marker_bits() {
        let req = WriteRequest {
            timeseries: vec![series(&[("__name__", "up"), ("job", "node")])],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Gauge as i32,
                metric_family_name: "up".into(),
                help: "target up".into(),
                unit: String::new(),
            }],
        };
        let back = decode(&encode(&req), 1 << 20).unwrap();
        assert!(is_stale_nan(back.timeseries[0].samples[1].value));
        assert!(!is_stale_nan(f64::NAN));
        assert_eq!(back.timeseries[0].labels, req.timeseries[0].labels);
        assert_eq!(back.metadata, req.metadata);
    }

    #[test]
    fn series_rules() {
        assert_eq!(
            check_series(&series(&[("__name__", "up"), ("a", "b")]).labels),
            Ok(())
        );
        assert_eq!(
            check_series(&series(&[("a", "b")]).labels),
            Err(SeriesProblem::MissingMetricName)
        );
        assert_eq!(
            check_series(&series(&[("__name__", "up"), ("b", "1"), ("a", "2")]).labels),
            Err(SeriesProblem::LabelsNotSorted("a".into()))
        );
        assert_eq!(
            check_series(&series(&[("__name__", "up"), ("a", "1"), ("a", "2")]).labels),
            Err(SeriesProblem::DuplicateLabel("a".into()))
        );
        assert_eq!(
            check_series(&series(&[("__name__", "1up")]).labels),
            Err(SeriesProblem::InvalidMetricName("1up".into()))
        );
    }

    #[test]
    fn request_encoder_writes_what_prost_reads() {
        let mut enc = RequestEncoder::default();
        let samples = [
            Sample {
                value: stale_nan(),
                timestamp: 0,
            },
            Sample {
                value: -0.0,
                timestamp: -5,
            },
        ];
        enc.series([("__name__", "up"), ("job", "")], &samples);
        enc.series([("__name__", "x")], &[]);
        let back = decode(&enc.finish_snappy(), 1 << 20).unwrap();
        assert_eq!(back.timeseries.len(), 2);
        let ts = &back.timeseries[0];
        assert_eq!(
            ts.labels,
            [Label::new("__name__", "up"), Label::new("job", "")]
        );
        assert!(is_stale_nan(ts.samples[0].value));
        assert_eq!(ts.samples[1].value.to_bits(), (-0.0f64).to_bits());
        assert_eq!(ts.samples[1].timestamp, -5);
        assert!(back.timeseries[1].samples.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"\xff\xff\xff\xff\xff", 1 << 20).is_err());
        assert!(decode(&snappy_compress(b"\x0a\xff\xff"), 1 << 20).is_err());
    }
}
