//! Decoded-size estimates: an upper bound on what decoding a payload will allocate, computed
//! before decoding it, without allocating.
//!
//! Why: the decompressed-size bound alone does not bound memory. Protobuf turns a 2-byte empty
//! message (`0a 00`) into a Rust struct of 50–200 bytes in a `Vec` that doubles as it grows, so
//! 100 MiB of wire can decode into gigabytes (a 4.9 MB snappy remote write of empty series took
//! 3.7 GiB). JSON is worse: `{},` is three bytes.
//!
//! - [`protobuf_estimate`] walks the protobuf wire format with a [`Schema`] (the message's field
//!   numbers, which fields are messages, strings or repeated scalars, and `size_of` each Rust
//!   struct), counting per message instance how many elements each repeated field gets. Every
//!   `Vec` is charged the capacity prost's one-at-a-time `push` can reach
//!   (`max(min_cap, n.next_power_of_two())` elements), every string or bytes field
//!   `max(8, len)`, plus the largest transient copy (the old buffer while a `Vec` grows, the
//!   temporary a string is copied through). A non-repeated message field that occurs more than
//!   once in a message (prost merges the occurrences, concatenating their repeated fields: a
//!   hostile client's way to double a `Vec`) has every `Vec` under it charged three times
//!   (`MERGED_FACTOR`). The schemas for remote write, Loki push and the
//!   three OTLP export requests are here ([`WRITE_REQUEST`], [`PUSH_REQUEST`],
//!   [`EXPORT_LOGS`], [`EXPORT_METRICS`], [`EXPORT_TRACES`]).
//! - [`json_estimate`] has no schema: it charges every JSON object as if it were the largest
//!   struct of the message (twice, for `Vec` growth) plus a `serde_json` map node, every array a
//!   minimum-capacity `Vec`, every value a `serde_json::Value`, every string twice its length.
//!   That covers both the typed parse and the `serde_json::Value` path the OTLP decoder falls
//!   back to.
//!
//! Both are property-tested against the real allocation peak of prost/serde decoding (a counting
//! allocator in the tests) and never panic on arbitrary bytes. An estimate is an over-estimate
//! by design (a realistic remote write estimates at about twice what prost allocates); the
//! receivers refuse a payload whose estimate is over their budget before decoding it.

use std::mem::size_of;

/// Why a payload could not be scanned (it would not decode either).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("protobuf: truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("protobuf: nested deeper than {MAX_DEPTH} messages")]
    TooDeep,
    #[error("json: nested deeper than {MAX_DEPTH} levels")]
    JsonTooDeep,
}

/// Deepest nesting scanned (prost's own recursion limit is 100).
pub const MAX_DEPTH: usize = 100;

/// A protobuf message as it decodes: its Rust struct's size and the fields that allocate.
/// Scalar fields (ints, doubles, bools, enums) are part of the struct and need no entry; fields
/// not listed are skipped, as prost skips unknown fields.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    /// `size_of` the Rust struct.
    pub size: usize,
    pub fields: &'static [Field],
}

/// One allocating field of a [`Schema`].
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub tag: u32,
    pub kind: Kind,
}

/// What a field allocates when decoded.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A message: inline in its parent when not repeated (only its own fields allocate), an
    /// element of a `Vec` when repeated.
    Message {
        schema: &'static Schema,
        repeated: bool,
    },
    /// `string` or `bytes` (a `Vec<String>` when repeated).
    Bytes { repeated: bool },
    /// A repeated scalar, packed or not: `elem` bytes in memory, at least `min_wire` bytes on
    /// the wire each (1 for varints, 4 or 8 for fixed).
    RepeatedScalar { elem: usize, min_wire: usize },
}

const fn msg(tag: u32, schema: &'static Schema) -> Field {
    Field {
        tag,
        kind: Kind::Message {
            schema,
            repeated: false,
        },
    }
}
const fn msgs(tag: u32, schema: &'static Schema) -> Field {
    Field {
        tag,
        kind: Kind::Message {
            schema,
            repeated: true,
        },
    }
}
const fn string(tag: u32) -> Field {
    Field {
        tag,
        kind: Kind::Bytes { repeated: false },
    }
}
const fn strings(tag: u32) -> Field {
    Field {
        tag,
        kind: Kind::Bytes { repeated: true },
    }
}
const fn scalars(tag: u32, elem: usize, min_wire: usize) -> Field {
    Field {
        tag,
        kind: Kind::RepeatedScalar { elem, min_wire },
    }
}

// ---- schemas ------------------------------------------------------------------------------------

mod rw {
    use super::*;
    use crate::remote_write as t;
    pub static LABEL: Schema = Schema {
        name: "Label",
        size: size_of::<t::Label>(),
        fields: &[string(1), string(2)],
    };
    pub static SAMPLE: Schema = Schema {
        name: "Sample",
        size: size_of::<t::Sample>(),
        fields: &[],
    };
    pub static EXEMPLAR: Schema = Schema {
        name: "Exemplar",
        size: size_of::<t::Exemplar>(),
        fields: &[msgs(1, &LABEL)],
    };
    pub static TIME_SERIES: Schema = Schema {
        name: "TimeSeries",
        size: size_of::<t::TimeSeries>(),
        fields: &[msgs(1, &LABEL), msgs(2, &SAMPLE), msgs(3, &EXEMPLAR)],
    };
    pub static METADATA: Schema = Schema {
        name: "MetricMetadata",
        size: size_of::<t::MetricMetadata>(),
        fields: &[string(2), string(4), string(5)],
    };
}

/// `prometheus.WriteRequest` ([`crate::remote_write::WriteRequest`]).
pub static WRITE_REQUEST: Schema = Schema {
    name: "WriteRequest",
    size: size_of::<crate::remote_write::WriteRequest>(),
    fields: &[msgs(1, &rw::TIME_SERIES), msgs(3, &rw::METADATA)],
};

mod loki {
    use super::*;
    use crate::loki as t;
    pub static LABEL_PAIR: Schema = Schema {
        name: "LabelPair",
        size: size_of::<t::LabelPair>(),
        fields: &[string(1), string(2)],
    };
    pub static TIMESTAMP: Schema = Schema {
        name: "Timestamp",
        size: size_of::<t::Timestamp>(),
        fields: &[],
    };
    pub static ENTRY: Schema = Schema {
        name: "Entry",
        size: size_of::<t::Entry>(),
        fields: &[msg(1, &TIMESTAMP), string(2), msgs(3, &LABEL_PAIR)],
    };
    pub static STREAM: Schema = Schema {
        name: "Stream",
        size: size_of::<t::Stream>(),
        fields: &[string(1), msgs(2, &ENTRY)],
    };
}

/// `logproto.PushRequest` ([`crate::loki::PushRequest`]).
pub static PUSH_REQUEST: Schema = Schema {
    name: "PushRequest",
    size: size_of::<crate::loki::PushRequest>(),
    fields: &[msgs(1, &loki::STREAM)],
};

mod otlp {
    use super::*;
    use crate::otlp::proto::common::v1 as c;
    use crate::otlp::proto::logs::v1 as l;
    use crate::otlp::proto::metrics::v1 as m;
    use crate::otlp::proto::resource::v1 as r;
    use crate::otlp::proto::trace::v1 as t;

    pub static ANY_VALUE: Schema = Schema {
        name: "AnyValue",
        size: size_of::<c::AnyValue>(),
        fields: &[
            string(1),
            msg(5, &ARRAY_VALUE),
            msg(6, &KEY_VALUE_LIST),
            string(7),
        ],
    };
    pub static ARRAY_VALUE: Schema = Schema {
        name: "ArrayValue",
        size: size_of::<c::ArrayValue>(),
        fields: &[msgs(1, &ANY_VALUE)],
    };
    pub static KEY_VALUE_LIST: Schema = Schema {
        name: "KeyValueList",
        size: size_of::<c::KeyValueList>(),
        fields: &[msgs(1, &KEY_VALUE)],
    };
    pub static KEY_VALUE: Schema = Schema {
        name: "KeyValue",
        size: size_of::<c::KeyValue>(),
        fields: &[string(1), msg(2, &ANY_VALUE)],
    };
    pub static SCOPE: Schema = Schema {
        name: "InstrumentationScope",
        size: size_of::<c::InstrumentationScope>(),
        fields: &[string(1), string(2), msgs(3, &KEY_VALUE)],
    };
    pub static ENTITY_REF: Schema = Schema {
        name: "EntityRef",
        size: size_of::<c::EntityRef>(),
        fields: &[string(1), string(2), strings(3), strings(4)],
    };
    pub static RESOURCE: Schema = Schema {
        name: "Resource",
        size: size_of::<r::Resource>(),
        fields: &[msgs(1, &KEY_VALUE), msgs(3, &ENTITY_REF)],
    };

    // traces
    pub static EVENT: Schema = Schema {
        name: "Span.Event",
        size: size_of::<t::span::Event>(),
        fields: &[string(2), msgs(3, &KEY_VALUE)],
    };
    pub static LINK: Schema = Schema {
        name: "Span.Link",
        size: size_of::<t::span::Link>(),
        fields: &[string(1), string(2), string(3), msgs(4, &KEY_VALUE)],
    };
    pub static STATUS: Schema = Schema {
        name: "Status",
        size: size_of::<t::Status>(),
        fields: &[string(2)],
    };
    pub static SPAN: Schema = Schema {
        name: "Span",
        size: size_of::<t::Span>(),
        fields: &[
            string(1),
            string(2),
            string(3),
            string(4),
            string(5),
            msgs(9, &KEY_VALUE),
            msgs(11, &EVENT),
            msgs(13, &LINK),
            msg(15, &STATUS),
        ],
    };
    pub static SCOPE_SPANS: Schema = Schema {
        name: "ScopeSpans",
        size: size_of::<t::ScopeSpans>(),
        fields: &[msg(1, &SCOPE), msgs(2, &SPAN), string(3)],
    };
    pub static RESOURCE_SPANS: Schema = Schema {
        name: "ResourceSpans",
        size: size_of::<t::ResourceSpans>(),
        fields: &[msg(1, &RESOURCE), msgs(2, &SCOPE_SPANS), string(3)],
    };

    // logs
    pub static LOG_RECORD: Schema = Schema {
        name: "LogRecord",
        size: size_of::<l::LogRecord>(),
        fields: &[
            string(3),
            msg(5, &ANY_VALUE),
            msgs(6, &KEY_VALUE),
            string(9),
            string(10),
            string(12),
        ],
    };
    pub static SCOPE_LOGS: Schema = Schema {
        name: "ScopeLogs",
        size: size_of::<l::ScopeLogs>(),
        fields: &[msg(1, &SCOPE), msgs(2, &LOG_RECORD), string(3)],
    };
    pub static RESOURCE_LOGS: Schema = Schema {
        name: "ResourceLogs",
        size: size_of::<l::ResourceLogs>(),
        fields: &[msg(1, &RESOURCE), msgs(2, &SCOPE_LOGS), string(3)],
    };

    // metrics
    pub static EXEMPLAR: Schema = Schema {
        name: "Exemplar",
        size: size_of::<m::Exemplar>(),
        fields: &[msgs(7, &KEY_VALUE), string(4), string(5)],
    };
    pub static NUMBER_POINT: Schema = Schema {
        name: "NumberDataPoint",
        size: size_of::<m::NumberDataPoint>(),
        fields: &[msgs(7, &KEY_VALUE), msgs(5, &EXEMPLAR)],
    };
    pub static HISTOGRAM_POINT: Schema = Schema {
        name: "HistogramDataPoint",
        size: size_of::<m::HistogramDataPoint>(),
        fields: &[
            msgs(9, &KEY_VALUE),
            scalars(6, 8, 8),
            scalars(7, 8, 8),
            msgs(8, &EXEMPLAR),
        ],
    };
    pub static BUCKETS: Schema = Schema {
        name: "ExponentialHistogramDataPoint.Buckets",
        size: size_of::<m::exponential_histogram_data_point::Buckets>(),
        fields: &[scalars(2, 8, 1)],
    };
    pub static EXP_HISTOGRAM_POINT: Schema = Schema {
        name: "ExponentialHistogramDataPoint",
        size: size_of::<m::ExponentialHistogramDataPoint>(),
        fields: &[
            msgs(1, &KEY_VALUE),
            msg(8, &BUCKETS),
            msg(9, &BUCKETS),
            msgs(11, &EXEMPLAR),
        ],
    };
    pub static QUANTILE: Schema = Schema {
        name: "SummaryDataPoint.ValueAtQuantile",
        size: size_of::<m::summary_data_point::ValueAtQuantile>(),
        fields: &[],
    };
    pub static SUMMARY_POINT: Schema = Schema {
        name: "SummaryDataPoint",
        size: size_of::<m::SummaryDataPoint>(),
        fields: &[msgs(7, &KEY_VALUE), msgs(6, &QUANTILE)],
    };
    pub static GAUGE: Schema = Schema {
        name: "Gauge",
        size: size_of::<m::Gauge>(),
        fields: &[msgs(1, &NUMBER_POINT)],
    };
    pub static SUM: Schema = Schema {
        name: "Sum",
        size: size_of::<m::Sum>(),
        fields: &[msgs(1, &NUMBER_POINT)],
    };
    pub static HISTOGRAM: Schema = Schema {
        name: "Histogram",
        size: size_of::<m::Histogram>(),
        fields: &[msgs(1, &HISTOGRAM_POINT)],
    };
    pub static EXP_HISTOGRAM: Schema = Schema {
        name: "ExponentialHistogram",
        size: size_of::<m::ExponentialHistogram>(),
        fields: &[msgs(1, &EXP_HISTOGRAM_POINT)],
    };
    pub static SUMMARY: Schema = Schema {
        name: "Summary",
        size: size_of::<m::Summary>(),
        fields: &[msgs(1, &SUMMARY_POINT)],
    };
    pub static METRIC: Schema = Schema {
        name: "Metric",
        size: size_of::<m::Metric>(),
        fields: &[
            string(1),
            string(2),
            string(3),
            msgs(12, &KEY_VALUE),
            msg(5, &GAUGE),
            msg(7, &SUM),
            msg(9, &HISTOGRAM),
            msg(10, &EXP_HISTOGRAM),
            msg(11, &SUMMARY),
        ],
    };
    pub static SCOPE_METRICS: Schema = Schema {
        name: "ScopeMetrics",
        size: size_of::<m::ScopeMetrics>(),
        fields: &[msg(1, &SCOPE), msgs(2, &METRIC), string(3)],
    };
    pub static RESOURCE_METRICS: Schema = Schema {
        name: "ResourceMetrics",
        size: size_of::<m::ResourceMetrics>(),
        fields: &[msg(1, &RESOURCE), msgs(2, &SCOPE_METRICS), string(3)],
    };
}

/// `ExportLogsServiceRequest`.
pub static EXPORT_LOGS: Schema = Schema {
    name: "ExportLogsServiceRequest",
    size: size_of::<crate::otlp::ExportLogsServiceRequest>(),
    fields: &[msgs(1, &otlp::RESOURCE_LOGS)],
};

/// `ExportMetricsServiceRequest`.
pub static EXPORT_METRICS: Schema = Schema {
    name: "ExportMetricsServiceRequest",
    size: size_of::<crate::otlp::ExportMetricsServiceRequest>(),
    fields: &[msgs(1, &otlp::RESOURCE_METRICS)],
};

/// `ExportTraceServiceRequest`.
pub static EXPORT_TRACES: Schema = Schema {
    name: "ExportTraceServiceRequest",
    size: size_of::<crate::otlp::ExportTraceServiceRequest>(),
    fields: &[msgs(1, &otlp::RESOURCE_SPANS)],
};

/// The largest struct reachable from `schema` (what [`json_estimate`] charges per object).
pub fn max_struct_size(schema: &'static Schema) -> usize {
    fn walk(s: &'static Schema, seen: &mut Vec<&'static str>, max: &mut usize) {
        if seen.contains(&s.name) {
            return;
        }
        seen.push(s.name);
        *max = (*max).max(s.size);
        for f in s.fields {
            if let Kind::Message { schema, .. } = f.kind {
                walk(schema, seen, max);
            }
        }
    }
    let mut max = 0;
    walk(schema, &mut Vec::new(), &mut max);
    max
}

// ---- protobuf -----------------------------------------------------------------------------------

/// Most fields a [`Schema`] may list (per-instance counts live in a fixed array).
const MAX_FIELDS: usize = 16;

/// The smallest capacity `Vec` gives a non-empty buffer of `elem`-byte elements.
fn min_cap(elem: usize) -> usize {
    match elem {
        1 => 8,
        0..=1024 => 4,
        _ => 1,
    }
}

/// The bytes a `Vec` of `n` elements of `elem` bytes, filled by `push`, can have allocated.
fn vec_bytes(n: usize, elem: usize) -> usize {
    if n == 0 {
        return 0;
    }
    n.checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .max(min_cap(elem))
        .saturating_mul(elem)
}

/// A running estimate: the heap held at the end, and the largest transient on top of it.
#[derive(Default)]
struct Tally {
    held: usize,
    transient: usize,
}

impl Tally {
    fn hold(&mut self, n: usize) {
        self.held = self.held.saturating_add(n);
    }
    fn transient(&mut self, n: usize) {
        self.transient = self.transient.max(n);
    }
    fn string(&mut self, len: usize) {
        // `max(8, len)` kept; the temporary `Bytes` it is copied through, freed right after.
        self.hold(len.max(8));
        self.transient(len);
    }
}

/// An upper bound on the heap bytes prost allocates decoding `buf` as `schema` (the decoded
/// value itself included). An error means prost would refuse the bytes too (or they nest
/// deeper than [`MAX_DEPTH`]); no allocation, no panic, time linear in `buf.len()` (times the
/// nesting depth at worst).
pub fn protobuf_estimate(buf: &[u8], schema: &'static Schema) -> Result<usize, ScanError> {
    let mut t = Tally::default();
    t.hold(schema.size);
    scan_message(buf, 0, schema, 0, false, &mut t)?;
    Ok(t.held.saturating_add(t.transient))
}

/// What a `Vec` of a message instance that prost merges with others is charged, per wire
/// instance: a non-repeated message field seen more than once is merged into one value (the
/// protobuf rule), its repeated fields concatenated, so the `Vec`s it holds get the elements of
/// every occurrence. For counts `n_i` merged into `N = Σ n_i`, the `Vec` reaches
/// `vec_bytes(N) <= 2 Σ vec_bytes(n_i)`, plus the old buffer while it grows (half of that):
/// three times what each occurrence's own `Vec` is charged bounds it, at any depth.
const MERGED_FACTOR: usize = 3;

#[inline]
fn varint(buf: &[u8], pos: &mut usize, base: usize) -> Result<u64, ScanError> {
    // Most varints on the wire (keys, lengths of labels) are one byte.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Ok(u64::from(b));
    }
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos).ok_or(ScanError::Malformed(base + *pos))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(ScanError::Malformed(base + *pos))
}

fn skip(buf: &[u8], pos: &mut usize, n: usize, base: usize) -> Result<(), ScanError> {
    let end = pos
        .checked_add(n)
        .filter(|e| *e <= buf.len())
        .ok_or(ScanError::Malformed(base + *pos))?;
    *pos = end;
    Ok(())
}

/// One field of a message on the wire.
struct WireField {
    tag: u64,
    /// Wire type: 0 varint, 1 fixed64, 2 length-delimited, 3 group, 5 fixed32.
    wire_type: u64,
    /// The payload of a length-delimited field (from `start` in the message).
    start: usize,
    len: usize,
}

/// Reads the field at `*pos` and moves past it (a group to its end).
fn next_field(
    buf: &[u8],
    pos: &mut usize,
    base: usize,
    depth: usize,
) -> Result<WireField, ScanError> {
    let key = varint(buf, pos, base)?;
    let tag = key >> 3;
    if tag == 0 || tag > u64::from(u32::MAX >> 3) {
        return Err(ScanError::Malformed(base + *pos));
    }
    let mut f = WireField {
        tag,
        wire_type: key & 7,
        start: *pos,
        len: 0,
    };
    match f.wire_type {
        0 => {
            varint(buf, pos, base)?;
        }
        1 => skip(buf, pos, 8, base)?,
        5 => skip(buf, pos, 4, base)?,
        2 => {
            let len = varint(buf, pos, base)?;
            let len = usize::try_from(len).map_err(|_| ScanError::Malformed(base + *pos))?;
            f.start = *pos;
            f.len = len;
            skip(buf, pos, len, base)?;
        }
        3 => skip_group(buf, pos, tag, depth, base)?,
        _ => return Err(ScanError::Malformed(base + *pos)),
    }
    Ok(f)
}

/// The index in `schema.fields` of the field with `tag`, if listed.
fn field_index(schema: &Schema, tag: u64) -> Option<usize> {
    schema
        .fields
        .iter()
        .take(MAX_FIELDS)
        .position(|f| u64::from(f.tag) == tag)
}

/// The non-repeated message fields of this instance that occur more than once (bit `i` for
/// `schema.fields[i]`): prost merges their occurrences.
fn merged_fields(
    buf: &[u8],
    base: usize,
    schema: &'static Schema,
    depth: usize,
) -> Result<u32, ScanError> {
    let (mut seen, mut twice) = (0u32, 0u32);
    // Only singular message fields merge: a schema without one (remote write's) needs no pass.
    let singular = |k: &Kind| {
        matches!(
            k,
            Kind::Message {
                repeated: false,
                ..
            }
        )
    };
    if !schema.fields.iter().any(|f| singular(&f.kind)) {
        return Ok(0);
    }
    let mut pos = 0;
    while pos < buf.len() {
        let f = next_field(buf, &mut pos, base, depth)?;
        if let Some(i) = field_index(schema, f.tag)
            && f.wire_type == 2
            && singular(&schema.fields[i].kind)
        {
            twice |= seen & (1 << i);
            seen |= 1 << i;
        }
    }
    Ok(twice)
}

/// `base` is the offset of `buf` in the whole payload (for error positions); `merged`: this
/// instance is merged with others into one value (see [`MERGED_FACTOR`]).
fn scan_message(
    buf: &[u8],
    base: usize,
    schema: &'static Schema,
    depth: usize,
    merged: bool,
    t: &mut Tally,
) -> Result<(), ScanError> {
    if depth >= MAX_DEPTH {
        return Err(ScanError::TooDeep);
    }
    let twice = merged_fields(buf, base, schema, depth)?;
    // Elements per repeated field of this instance (by index in `schema.fields`).
    let mut counts = [0usize; MAX_FIELDS];
    let mut pos = 0;
    while pos < buf.len() {
        let f = next_field(buf, &mut pos, base, depth)?;
        let Some(i) = field_index(schema, f.tag) else {
            continue;
        };
        match (f.wire_type, schema.fields[i].kind) {
            (0 | 1 | 5, Kind::RepeatedScalar { .. }) => counts[i] += 1,
            (2, Kind::Message { schema, repeated }) => {
                // Elements of a repeated field are values of their own; a non-repeated field
                // is merged when its parent is or when it occurs twice here.
                let merged_child = !repeated && (merged || twice & (1 << i) != 0);
                if repeated {
                    counts[i] += 1;
                }
                let payload = &buf[f.start..f.start + f.len];
                scan_message(payload, base + f.start, schema, depth + 1, merged_child, t)?;
            }
            (2, Kind::Bytes { repeated }) => {
                if repeated {
                    counts[i] += 1;
                }
                t.string(f.len);
            }
            (2, Kind::RepeatedScalar { min_wire, .. }) => counts[i] += f.len / min_wire.max(1),
            _ => {}
        }
    }
    for (i, f) in schema.fields.iter().take(MAX_FIELDS).enumerate() {
        let elem = match f.kind {
            Kind::Message {
                schema,
                repeated: true,
            } => schema.size,
            Kind::Bytes { repeated: true } => size_of::<String>(),
            Kind::RepeatedScalar { elem, .. } => elem,
            _ => continue,
        };
        let bytes = vec_bytes(counts[i], elem);
        if merged {
            t.hold(bytes.saturating_mul(MERGED_FACTOR));
        } else {
            t.hold(bytes);
            // While the last growth copies, the old buffer (half the new one) is alive too.
            t.transient(bytes / 2);
        }
    }
    Ok(())
}

/// Skips an (unknown, deprecated) group up to its end-group key.
fn skip_group(
    buf: &[u8],
    pos: &mut usize,
    tag: u64,
    depth: usize,
    base: usize,
) -> Result<(), ScanError> {
    if depth >= MAX_DEPTH {
        return Err(ScanError::TooDeep);
    }
    loop {
        let key = varint(buf, pos, base)?;
        let inner = key >> 3;
        match key & 7 {
            0 => {
                varint(buf, pos, base)?;
            }
            1 => skip(buf, pos, 8, base)?,
            5 => skip(buf, pos, 4, base)?,
            2 => {
                let len = varint(buf, pos, base)?;
                let len = usize::try_from(len).map_err(|_| ScanError::Malformed(base + *pos))?;
                skip(buf, pos, len, base)?;
            }
            3 => skip_group(buf, pos, inner, depth + 1, base)?,
            4 if inner == tag => return Ok(()),
            _ => return Err(ScanError::Malformed(base + *pos)),
        }
    }
}

// ---- JSON ---------------------------------------------------------------------------------------

/// Bytes charged per JSON object beyond the struct: a `serde_json::Map` leaf node
/// (11 entries of `(String, Value)` plus links).
const JSON_MAP_NODE: usize = 11 * (size_of::<String>() + 32) + 96;
/// Per object entry (`"key": value`): its share of map nodes as they split.
const JSON_ENTRY: usize = 2 * (size_of::<String>() + 32) + 16;
/// Per value: a `serde_json::Value` in a growing `Vec` or map, twice.
const JSON_VALUE: usize = 4 * 32;

/// An upper bound on the heap bytes decoding the JSON `buf` takes, for a message whose largest
/// struct is `max_struct` bytes (see the module docs). Linear, allocation-free, never panics;
/// malformed JSON is estimated as far as it goes (the decoder will refuse it).
pub fn json_estimate(buf: &[u8], max_struct: usize) -> Result<usize, ScanError> {
    // The struct in a `Vec` that doubles; the parse through `serde_json::Value`, when the OTLP
    // decoder falls back to it, after the typed one is dropped.
    let per_object = max_struct
        .saturating_mul(2)
        .saturating_add(JSON_MAP_NODE)
        .saturating_add(JSON_VALUE);
    let per_array = min_cap(max_struct)
        .saturating_mul(max_struct.max(32))
        .saturating_mul(2)
        .saturating_add(JSON_VALUE);
    let mut total: usize = max_struct.saturating_mul(2);
    let mut depth = 0usize;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        match b {
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH * 2 {
                    return Err(ScanError::JsonTooDeep);
                }
                total = total.saturating_add(if b == b'{' { per_object } else { per_array });
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b':' => {
                total = total.saturating_add(JSON_ENTRY);
                i += 1;
            }
            b'"' => {
                // A string: its bytes up to the closing quote (escapes only shrink it).
                let start = i;
                i += 1;
                while i < buf.len() && buf[i] != b'"' {
                    i += if buf[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                let len = i.min(buf.len()) - start;
                // Kept as a `Value` string or key and as the typed field, each `max(8, len)`,
                // plus the hex/base64 decoding of ids and bytes (no longer than the text).
                total = total
                    .saturating_add(len.max(8).saturating_mul(3))
                    .saturating_add(JSON_VALUE);
            }
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            _ => {
                // A number or literal: one value, then skip to the next delimiter.
                total = total.saturating_add(JSON_VALUE);
                while i < buf.len() && !b"{}[]:,\" \t\n\r".contains(&buf[i]) {
                    i += 1;
                }
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
