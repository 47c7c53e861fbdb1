//! OTLP logs, metrics and traces, in protobuf and in the OTLP/HTTP JSON mapping (lowerCamelCase
//! field names, 64-bit integers as strings, trace and span ids as hex), built on the generated
//! types of `opentelemetry-proto`. The gRPC service types are re-exported from [`grpc`].
//!
//! # Where `opentelemetry-proto` 0.33's serde departs from the OTLP/JSON spec, and what we do
//!
//! Checked against the spec (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>)
//! and the proto3 JSON mapping it builds on; the tests here and in `tests/it/otlp_json.rs` pin each
//! point. Correct as is: trace/span ids as hex (either case on input; base64 ids are refused),
//! lowerCamelCase names, `fixed64`/`int64` data fields written as strings and read from strings
//! or numbers, enums written as integers, unknown fields ignored, `bytesValue` as base64.
//! Not correct, and fixed here by [`encode`]/[`decode`] rewriting the `serde_json::Value` around
//! the crate's serde:
//!
//! - **Output `null`s.** Absent messages and optional doubles (`resource`, `scope`, `status`, a
//!   `KeyValue`'s `value`, `partialSuccess`, a histogram's `sum`/`min`/`max`) are printed as
//!   `null`. Receivers may refuse that; we omit them.
//! - **Non-finite doubles.** serde_json prints NaN and ±Infinity as `null`, so the value is lost;
//!   on input the strings `"NaN"`, `"Infinity"`, `"-Infinity"` are refused for `doubleValue` and
//!   `sum`/`min`/`max`. We write and read the proto3 JSON strings for every double field (through
//!   finite stand-in values while the message is a `serde_json::Value`, which cannot hold
//!   non-finite numbers).
//! - **Silent loss in flattened oneofs.** Whatever the crate cannot read inside a metric's data
//!   (`gauge`, `histogram`, ...) or a point's `asDouble`/`asInt` (`"NaN"`, `"1.5"`, `"junk"`)
//!   becomes "absent" with no error: the metric or the value just disappears. We read such
//!   messages through the rewriting path, where these are converted or refused.
//! - **Response counters.** `rejectedSpans`/`rejectedLogRecords`/`rejectedDataPoints` are int64
//!   but printed as numbers; we print them as strings.
//! - **Valid proto3 JSON input the crate refuses:** `null` for any field (repeated ones too), enum
//!   value names (`"SPAN_KIND_SERVER"`) besides integers, 32-bit integers and doubles given as
//!   strings, and objects without fields the crate wrongly requires (`key` of a `KeyValue`,
//!   `values` of `arrayValue`/`kvlistValue`, the fields of `entityRefs`). We accept them.
//!
//! Empty strings, zeros and empty lists are still written out (`"traceState":""`); proto3 JSON
//! allows either.

use serde_json::Value;

/// The generated message types (common, resource, trace, logs, metrics).
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

use crate::WireError;

/// gRPC service clients and servers (tonic) for the three OTLP export services.
pub mod grpc {
    pub use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    pub use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
        LogsService, LogsServiceServer,
    };
    pub use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    pub use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    pub use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    pub use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
}

/// The `google.rpc` messages OTLP answers with: [`rpc::Status`] is the body of an OTLP/HTTP
/// error and the details of a gRPC one; [`rpc::RetryInfo`] tells a throttled client when to
/// retry.
pub mod rpc {
    /// `google.rpc.Status`. In JSON only `code` and `message` are written (and read): the
    /// details are `Any`s, which the JSON mapping cannot express without their types.
    #[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        #[serde(default)]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        #[serde(skip)]
        pub details: Vec<Any>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.rpc.RetryInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<Duration>,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    /// The `type_url` of a [`RetryInfo`] packed in an [`Any`].
    pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

    /// gRPC status codes OTLP receivers answer with.
    pub mod code {
        pub const INVALID_ARGUMENT: i32 = 3;
        pub const DEADLINE_EXCEEDED: i32 = 4;
        pub const RESOURCE_EXHAUSTED: i32 = 8;
        pub const UNAVAILABLE: i32 = 14;
    }
}

/// How an OTLP/HTTP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// From a `Content-Type` header value; `None` for a type OTLP/HTTP does not define.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct
            .split(';')
            .next()
            .map(|m| m.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("application/x-protobuf") | Some("application/protobuf") => {
                Some(Encoding::Protobuf)
            }
            Some("application/json") => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` header value for this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => crate::http::PROTOBUF,
            Encoding::Json => crate::http::JSON,
        }
    }
}

/// A message this module encodes and decodes: the three export requests and their responses.
pub trait OtlpMessage:
    prost::Message + Default + Clone + serde::Serialize + serde::de::DeserializeOwned
{
    /// Calls `f` on every `double` field of the message (how the JSON mapping reaches NaN and
    /// the infinities, which serde_json cannot hold).
    fn for_each_double(&mut self, f: &mut dyn FnMut(&mut f64));

    /// Could the crate's own serde have dropped something silently? It reads a flattened oneof
    /// it cannot parse (a metric's `gauge`/`sum`/`histogram`/... with e.g. `"explicitBounds":
    /// ["NaN"]`, a data point's `asDouble: "NaN"` or `asInt: "junk"`) as "absent" instead of
    /// failing, so a metrics message with a metric, data point or exemplar without its oneof is
    /// read again the careful way.
    fn maybe_lossy_json(&self) -> bool {
        false
    }
}

/// Encodes an OTLP message, in JSON without `null`s and with non-finite doubles as the proto3
/// JSON strings (see the module docs).
pub fn encode<M: OtlpMessage>(msg: &M, encoding: Encoding) -> Result<Vec<u8>, WireError> {
    Ok(match encoding {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&to_json_value(msg)?)?,
    })
}

/// Decodes an OTLP message, in JSON leniently as the proto3 JSON mapping allows (see the module
/// docs).
pub fn decode<M: OtlpMessage>(body: &[u8], encoding: Encoding) -> Result<M, WireError> {
    match encoding {
        Encoding::Protobuf => Ok(M::decode(body)?),
        Encoding::Json => {
            // Fast path: the crate's serde reads spec-conforming JSON right (and refuses what it
            // cannot read, except the case `maybe_lossy_json` catches). Only bodies it refuses or
            // may have misread pay for the `Value` rewriting, which is about twice as slow.
            // The first parse is dropped before the second starts: the two are never alive
            // together (what `crate::budget::json_estimate` counts on).
            if let Ok(m) = serde_json::from_slice::<M>(body) {
                if !m.maybe_lossy_json() {
                    return Ok(m);
                }
                drop(m);
            }
            from_json_value(serde_json::from_slice(body)?)
        }
    }
}

/// The OTLP/JSON form of a message as a `serde_json::Value` (what [`encode`] writes).
pub fn to_json_value<M: OtlpMessage>(msg: &M) -> Result<Value, WireError> {
    let mut v = serde_json::to_value(msg)?;
    if has_null_double(&v) {
        // Some double was NaN or infinite and came out as `null`: redo with finite stand-ins and
        // put the proto3 JSON strings in their place.
        let mut m = msg.clone();
        m.for_each_double(&mut |d| {
            if let Some(bits) = sentinel_for(*d) {
                *d = f64::from_bits(bits);
            }
        });
        v = serde_json::to_value(&m)?;
        sentinels_to_strings(&mut v);
    }
    tidy_output(&mut v);
    Ok(v)
}

/// Reads a message from its OTLP/JSON form (what [`decode`] does after parsing the bytes).
pub fn from_json_value<M: OtlpMessage>(mut v: Value) -> Result<M, WireError> {
    let mut specials = false;
    normalize_input(&mut v, &mut specials)?;
    let mut m: M = serde_json::from_value(v)?;
    if specials {
        m.for_each_double(&mut |d| {
            if let Some(x) = special_for(*d) {
                *d = x;
            }
        });
    }
    Ok(m)
}

// ---- non-finite doubles -------------------------------------------------------------------------

/// Finite stand-ins for NaN, +Infinity and -Infinity while a message is a `serde_json::Value`
/// (which cannot hold non-finite numbers): the largest finite magnitudes with odd low bits, values
/// no instrument reports. A real value with exactly these bits would be read as the special.
const SENTINELS: [(u64, &str, f64); 3] = [
    (0x7fef_ffff_ffff_f0a1, "NaN", f64::NAN),
    (0x7fef_ffff_ffff_f0a2, "Infinity", f64::INFINITY),
    (0xffef_ffff_ffff_f0a3, "-Infinity", f64::NEG_INFINITY),
];

fn sentinel_for(d: f64) -> Option<u64> {
    if d.is_nan() {
        Some(SENTINELS[0].0)
    } else if d == f64::INFINITY {
        Some(SENTINELS[1].0)
    } else if d == f64::NEG_INFINITY {
        Some(SENTINELS[2].0)
    } else {
        None
    }
}

fn special_for(d: f64) -> Option<f64> {
    SENTINELS
        .iter()
        .find(|(bits, _, _)| d.to_bits() == *bits)
        .map(|(_, _, x)| *x)
}

/// Keys whose values are (non-repeated) doubles somewhere in OTLP. `quantile` and `value` of a
/// summary's `quantileValues` are left out: the crate already writes and reads them as strings
/// when non-finite.
const DOUBLE_KEYS: [&str; 6] = [
    "doubleValue",
    "asDouble",
    "sum",
    "min",
    "max",
    "zeroThreshold",
];

fn has_null_double(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| {
            (x.is_null() && DOUBLE_KEYS.contains(&k.as_str()))
                || (k == "explicitBounds"
                    && x.as_array().is_some_and(|a| a.iter().any(Value::is_null)))
                || has_null_double(x)
        }),
        Value::Array(a) => a.iter().any(has_null_double),
        _ => false,
    }
}

fn sentinels_to_strings(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(d) = n.as_f64()
                && let Some((_, s, _)) = SENTINELS.iter().find(|(b, _, _)| d.to_bits() == *b)
            {
                *v = Value::String((*s).to_string());
            }
        }
        Value::Object(m) => m.values_mut().for_each(sentinels_to_strings),
        Value::Array(a) => a.iter_mut().for_each(sentinels_to_strings),
        _ => {}
    }
}

// ---- output: drop nulls, int64 as strings --------------------------------------------------------

fn tidy_output(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for (k, x) in m.iter_mut() {
                if matches!(
                    k.as_str(),
                    "rejectedSpans" | "rejectedLogRecords" | "rejectedDataPoints"
                ) && let Value::Number(n) = x
                {
                    *x = Value::String(n.to_string());
                }
                tidy_output(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(tidy_output),
        _ => {}
    }
}

// ---- input: what proto3 JSON allows and the crate refuses -------------------------------------------

/// 32-bit integer fields (and the int64 response counters the crate reads only as numbers).
const INT_KEYS: [&str; 14] = [
    "droppedAttributesCount",
    "droppedEventsCount",
    "droppedLinksCount",
    "flags",
    "kind",
    "code",
    "severityNumber",
    "aggregationTemporality",
    "scale",
    "offset",
    "keyStrindex",
    "rejectedSpans",
    "rejectedLogRecords",
    "rejectedDataPoints",
];

fn normalize_input(v: &mut Value, specials: &mut bool) -> Result<(), WireError> {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for (k, x) in m.iter_mut() {
                normalize_field(k, x, specials)?;
                normalize_input(x, specials)?;
            }
        }
        Value::Array(a) => {
            for x in a {
                normalize_input(x, specials)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn normalize_field(key: &str, x: &mut Value, specials: &mut bool) -> Result<(), WireError> {
    if let Some(field) = DOUBLE_KEYS.iter().copied().find(|k| *k == key) {
        if let Value::String(s) = x {
            *x = double_from_str(field, s, specials)?;
        }
    } else if key == "explicitBounds" {
        if let Value::Array(a) = x {
            for e in a.iter_mut() {
                if let Value::String(s) = e {
                    *e = double_from_str("explicitBounds", s, specials)?;
                }
            }
        }
    } else if key == "asInt" {
        // Flattened: the crate would read junk as "no value" instead of failing.
        if let Value::String(s) = x {
            let n: i64 = s.parse().map_err(|_| WireError::Invalid {
                field: "asInt",
                reason: format!("{s:?} is not an integer"),
            })?;
            *x = Value::from(n);
        }
    } else if INT_KEYS.contains(&key) {
        if let Value::String(s) = x {
            *x = Value::from(int_from_str(key, s)?);
        }
    } else if key == "arrayValue" || key == "kvlistValue" {
        if let Value::Object(m) = x {
            let values = m
                .entry("values")
                .or_insert_with(|| Value::Array(Vec::new()));
            if key == "kvlistValue" {
                ensure_keys(values);
            }
        }
    } else if matches!(key, "attributes" | "filteredAttributes" | "metadata") {
        ensure_keys(x);
    } else if key == "entityRefs"
        && let Value::Array(a) = x
    {
        for e in a.iter_mut() {
            if let Value::Object(m) = e {
                for (k, default) in [
                    ("schemaUrl", Value::from("")),
                    ("type", Value::from("")),
                    ("idKeys", Value::Array(Vec::new())),
                    ("descriptionKeys", Value::Array(Vec::new())),
                ] {
                    m.entry(k).or_insert(default);
                }
            }
        }
    }
    Ok(())
}

/// Gives every `KeyValue` object of a list a `key` (the crate requires one; proto3 does not).
fn ensure_keys(list: &mut Value) {
    if let Value::Array(a) = list {
        for e in a.iter_mut() {
            if let Value::Object(m) = e {
                m.entry("key").or_insert_with(|| Value::from(""));
            }
        }
    }
}

fn double_from_str(field: &'static str, s: &str, specials: &mut bool) -> Result<Value, WireError> {
    let bits = match s {
        "NaN" => SENTINELS[0].0,
        "Infinity" => SENTINELS[1].0,
        "-Infinity" => SENTINELS[2].0,
        _ => {
            return s
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| WireError::Invalid {
                    field,
                    reason: format!("{s:?} is not a number"),
                });
        }
    };
    *specials = true;
    serde_json::Number::from_f64(f64::from_bits(bits))
        .map(Value::Number)
        .ok_or_else(|| WireError::Invalid {
            field,
            reason: "internal: sentinel is not finite".into(),
        })
}

fn int_from_str(key: &str, s: &str) -> Result<i64, WireError> {
    use proto::logs::v1::SeverityNumber;
    use proto::metrics::v1::AggregationTemporality;
    use proto::trace::v1::{span::SpanKind, status::StatusCode};
    let named = match key {
        "kind" => SpanKind::from_str_name(s).map(|e| e as i32),
        "code" => StatusCode::from_str_name(s).map(|e| e as i32),
        "severityNumber" => SeverityNumber::from_str_name(s).map(|e| e as i32),
        "aggregationTemporality" => AggregationTemporality::from_str_name(s).map(|e| e as i32),
        _ => None,
    };
    if let Some(n) = named {
        return Ok(i64::from(n));
    }
    s.parse::<i64>().map_err(|_| WireError::Invalid {
        field: "OTLP JSON integer",
        reason: format!("{key}: {s:?} is neither an integer nor an enum value name"),
    })
}

// ---- the double fields of each message -----------------------------------------------------------

type F<'a> = &'a mut dyn FnMut(&mut f64);

fn any_value(v: &mut proto::common::v1::AnyValue, f: F) {
    use proto::common::v1::any_value::Value as V;
    match &mut v.value {
        Some(V::DoubleValue(d)) => f(d),
        Some(V::ArrayValue(a)) => a.values.iter_mut().for_each(|x| any_value(x, f)),
        Some(V::KvlistValue(l)) => key_values(&mut l.values, f),
        _ => {}
    }
}

fn key_values(kvs: &mut [proto::common::v1::KeyValue], f: F) {
    for kv in kvs {
        if let Some(v) = &mut kv.value {
            any_value(v, f);
        }
    }
}

fn resource_and_scope(
    r: &mut Option<proto::resource::v1::Resource>,
    s: Option<&mut proto::common::v1::InstrumentationScope>,
    f: F,
) {
    if let Some(r) = r {
        key_values(&mut r.attributes, f);
    }
    if let Some(s) = s {
        key_values(&mut s.attributes, f);
    }
}

impl OtlpMessage for ExportTraceServiceRequest {
    fn for_each_double(&mut self, f: &mut dyn FnMut(&mut f64)) {
        for rs in &mut self.resource_spans {
            resource_and_scope(&mut rs.resource, None, f);
            for ss in &mut rs.scope_spans {
                resource_and_scope(&mut None, ss.scope.as_mut(), f);
                for span in &mut ss.spans {
                    key_values(&mut span.attributes, f);
                    for e in &mut span.events {
                        key_values(&mut e.attributes, f);
                    }
                    for l in &mut span.links {
                        key_values(&mut l.attributes, f);
                    }
                }
            }
        }
    }
}

impl OtlpMessage for ExportLogsServiceRequest {
    fn for_each_double(&mut self, f: &mut dyn FnMut(&mut f64)) {
        for rl in &mut self.resource_logs {
            resource_and_scope(&mut rl.resource, None, f);
            for sl in &mut rl.scope_logs {
                resource_and_scope(&mut None, sl.scope.as_mut(), f);
                for r in &mut sl.log_records {
                    if let Some(b) = &mut r.body {
                        any_value(b, f);
                    }
                    key_values(&mut r.attributes, f);
                }
            }
        }
    }
}

impl OtlpMessage for ExportMetricsServiceRequest {
    fn maybe_lossy_json(&self) -> bool {
        use proto::metrics::v1::metric::Data;
        let exemplars = |es: &[proto::metrics::v1::Exemplar]| es.iter().any(|e| e.value.is_none());
        self.resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .any(|m| match &m.data {
                Some(Data::Gauge(g)) => g
                    .data_points
                    .iter()
                    .any(|p| p.value.is_none() || exemplars(&p.exemplars)),
                Some(Data::Sum(s)) => s
                    .data_points
                    .iter()
                    .any(|p| p.value.is_none() || exemplars(&p.exemplars)),
                Some(Data::Histogram(h)) => h.data_points.iter().any(|p| exemplars(&p.exemplars)),
                Some(Data::ExponentialHistogram(h)) => {
                    h.data_points.iter().any(|p| exemplars(&p.exemplars))
                }
                Some(Data::Summary(_)) => false,
                // `data` is flattened too: a gauge/sum/histogram it could not read is dropped.
                None => true,
            })
    }

    fn for_each_double(&mut self, f: &mut dyn FnMut(&mut f64)) {
        use proto::metrics::v1::{exemplar, metric::Data, number_data_point};
        let exemplars = |es: &mut [proto::metrics::v1::Exemplar], f: F| {
            for e in es {
                key_values(&mut e.filtered_attributes, f);
                if let Some(exemplar::Value::AsDouble(d)) = &mut e.value {
                    f(d);
                }
            }
        };
        let opt = |d: &mut Option<f64>, f: F| {
            if let Some(d) = d {
                f(d);
            }
        };
        for rm in &mut self.resource_metrics {
            resource_and_scope(&mut rm.resource, None, f);
            for sm in &mut rm.scope_metrics {
                resource_and_scope(&mut None, sm.scope.as_mut(), f);
                for m in &mut sm.metrics {
                    key_values(&mut m.metadata, f);
                    let points = match &mut m.data {
                        Some(Data::Gauge(g)) => Some(&mut g.data_points),
                        Some(Data::Sum(s)) => Some(&mut s.data_points),
                        _ => None,
                    };
                    for p in points.into_iter().flatten() {
                        key_values(&mut p.attributes, f);
                        exemplars(&mut p.exemplars, f);
                        if let Some(number_data_point::Value::AsDouble(d)) = &mut p.value {
                            f(d);
                        }
                    }
                    match &mut m.data {
                        Some(Data::Histogram(h)) => {
                            for p in &mut h.data_points {
                                key_values(&mut p.attributes, f);
                                exemplars(&mut p.exemplars, f);
                                opt(&mut p.sum, f);
                                opt(&mut p.min, f);
                                opt(&mut p.max, f);
                                for d in &mut p.explicit_bounds {
                                    f(d);
                                }
                            }
                        }
                        Some(Data::ExponentialHistogram(h)) => {
                            for p in &mut h.data_points {
                                key_values(&mut p.attributes, f);
                                exemplars(&mut p.exemplars, f);
                                opt(&mut p.sum, f);
                                opt(&mut p.min, f);
                                opt(&mut p.max, f);
                                f(&mut p.zero_threshold);
                            }
                        }
                        Some(Data::Summary(s)) => {
                            for p in &mut s.data_points {
                                key_values(&mut p.attributes, f);
                                f(&mut p.sum);
                                for q in &mut p.quantile_values {
                                    f(&mut q.quantile);
                                    f(&mut q.value);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

macro_rules! no_doubles {
    ($($t:ty),*) => {$(
        impl OtlpMessage for $t {
            fn for_each_double(&mut self, _f: &mut dyn FnMut(&mut f64)) {}
        }
    )*};
}
no_doubles!(
    ExportTraceServiceResponse,
    ExportLogsServiceResponse,
    ExportMetricsServiceResponse
);

// ---- trace and span ids -----------------------------------------------------------------------------

/// Why a trace or span id in hex was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be {expected} hex digits, got {got}")]
    Length {
        kind: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{kind} {input:?} is not hex")]
    NotHex { kind: &'static str, input: String },
}

/// A trace id (16 bytes) as 32 lowercase hex digits, as OTLP/JSON and Tempo print it.
pub fn trace_id_to_hex(id: &[u8]) -> String {
    hex::encode(id)
}

/// A span id (8 bytes) as 16 lowercase hex digits.
pub fn span_id_to_hex(id: &[u8]) -> String {
    hex::encode(id)
}

/// A trace id from 32 hex digits (either case).
pub fn trace_id_from_hex(s: &str) -> Result<[u8; 16], IdError> {
    id_from_hex("trace id", s)
}

/// A span id from 16 hex digits (either case).
pub fn span_id_from_hex(s: &str) -> Result<[u8; 8], IdError> {
    id_from_hex("span id", s)
}

fn id_from_hex<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N], IdError> {
    if s.len() != 2 * N {
        return Err(IdError::Length {
            kind,
            expected: 2 * N,
            got: s.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| IdError::NotHex {
        kind,
        input: s.to_string(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::common::v1::{AnyValue, KeyValue, any_value};
    use proto::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, metric, number_data_point,
    };
    use proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn json<M: OtlpMessage>(m: &M) -> Value {
        serde_json::from_slice(&encode(m, Encoding::Json).unwrap()).unwrap()
    }

    fn span_request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
                        kind: 2,
                        start_time_unix_nano: 1_544_712_660_000_000_000,
                        attributes: vec![
                            KeyValue {
                                key: "n".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::IntValue(-7)),
                                }),
                                key_strindex: 0,
                            },
                            KeyValue {
                                key: "nan".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::DoubleValue(f64::NAN)),
                                }),
                                key_strindex: 0,
                            },
                            KeyValue {
                                key: "none".into(),
                                value: None,
                                key_strindex: 0,
                            },
                        ],
                        status: Some(Status {
                            message: String::new(),
                            code: 2,
                        }),
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn json_output_follows_the_spec() {
        let v = json(&span_request());
        let rs = &v["resourceSpans"][0];
        assert!(rs.get("resource").is_none(), "no null resource: {rs}");
        assert!(rs["scopeSpans"][0].get("scope").is_none(), "no null scope");
        let span = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["spanId"], "0102030405060708");
        assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["attributes"][0]["value"]["intValue"], "-7");
        assert_eq!(span["attributes"][1]["value"]["doubleValue"], "NaN");
        assert_eq!(span["attributes"][2], serde_json::json!({"key": "none"}));
        let text = String::from_utf8(encode(&span_request(), Encoding::Json).unwrap()).unwrap();
        assert!(!text.contains("null"), "{text}");
    }

    #[test]
    fn json_round_trip_keeps_non_finite_doubles() {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "g".into(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![
                                    NumberDataPoint {
                                        value: Some(number_data_point::Value::AsDouble(
                                            f64::NEG_INFINITY,
                                        )),
                                        ..Default::default()
                                    },
                                    NumberDataPoint {
                                        value: Some(number_data_point::Value::AsInt(-5)),
                                        ..Default::default()
                                    },
                                ],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "h".into(),
                            data: Some(metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    count: 3,
                                    sum: Some(f64::NAN),
                                    bucket_counts: vec![1, 2],
                                    explicit_bounds: vec![f64::INFINITY],
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let v = json(&req);
        let ms = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        assert_eq!(ms[0]["gauge"]["dataPoints"][0]["asDouble"], "-Infinity");
        assert_eq!(ms[0]["gauge"]["dataPoints"][1]["asInt"], "-5");
        let hp = &ms[1]["histogram"]["dataPoints"][0];
        assert_eq!(hp["sum"], "NaN");
        assert_eq!(hp["explicitBounds"][0], "Infinity");
        assert_eq!(hp["count"], "3");
        assert_eq!(hp["bucketCounts"], serde_json::json!(["1", "2"]));
        assert!(hp.get("min").is_none());

        let back: ExportMetricsServiceRequest =
            decode(&encode(&req, Encoding::Json).unwrap(), Encoding::Json).unwrap();
        let Some(metric::Data::Gauge(g)) =
            &back.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!("gauge expected")
        };
        assert_eq!(
            g.data_points[0].value,
            Some(number_data_point::Value::AsDouble(f64::NEG_INFINITY))
        );
        let Some(metric::Data::Histogram(h)) =
            &back.resource_metrics[0].scope_metrics[0].metrics[1].data
        else {
            panic!("histogram expected")
        };
        assert!(h.data_points[0].sum.is_some_and(f64::is_nan));
        assert_eq!(h.data_points[0].explicit_bounds, vec![f64::INFINITY]);
    }

    #[test]
    fn json_input_is_as_lenient_as_proto3_allows() {
        let body = br#"{"resourceSpans":[{"resource":null,"unknownField":{"x":[1]},"scopeSpans":[{"spans":[{
            "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
            "kind":"SPAN_KIND_SERVER","startTimeUnixNano":1544712660000000000,"endTimeUnixNano":"1544712661000000000",
            "droppedAttributesCount":"3","events":null,
            "status":{"code":"STATUS_CODE_ERROR"},
            "attributes":[{"value":{"intValue":3}},{"key":"d","value":{"doubleValue":"Infinity"}},
                          {"key":"a","value":{"arrayValue":{}}},{"key":"k","value":{"kvlistValue":{"values":[{"value":{"stringValue":"v"}}]}}}]
        }]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(body, Encoding::Json).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            trace_id_to_hex(&span.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(span_id_to_hex(&span.span_id), "eee19b7ec3c1b174");
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.dropped_attributes_count, 3);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert_eq!(span.attributes[0].key, "");
        assert_eq!(
            span.attributes[1].value,
            Some(AnyValue {
                value: Some(any_value::Value::DoubleValue(f64::INFINITY))
            })
        );

        let bad = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asDouble":"lots"}]}}]}]}]}"#;
        assert!(decode::<ExportMetricsServiceRequest>(bad, Encoding::Json).is_err());
        let bad = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"asInt":"12x"}]}}]}]}]}"#;
        assert!(decode::<ExportMetricsServiceRequest>(bad, Encoding::Json).is_err());
        let nan = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asDouble":"NaN"},{"asDouble":"2.5"},{}]}}]}]}]}"#;
        let m: ExportMetricsServiceRequest = decode(nan, Encoding::Json).unwrap();
        let Some(metric::Data::Gauge(g)) = &m.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!("gauge expected")
        };
        assert!(matches!(
            g.data_points[0].value,
            Some(number_data_point::Value::AsDouble(d)) if d.is_nan()
        ));
        assert_eq!(
            g.data_points[1].value,
            Some(number_data_point::Value::AsDouble(2.5))
        );
        assert_eq!(g.data_points[2].value, None);
        let b64 = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA=="}]}]}]}"#;
        assert!(decode::<ExportTraceServiceRequest>(b64, Encoding::Json).is_err());
        let kind = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SERVER"}]}]}]}"#;
        assert!(decode::<ExportTraceServiceRequest>(kind, Encoding::Json).is_err());
    }

    #[test]
    fn response_counters_are_strings() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let r = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 5,
                error_message: "x".into(),
            }),
        };
        let v = json(&r);
        assert_eq!(v["partialSuccess"]["rejectedSpans"], "5");
        let back: ExportTraceServiceResponse =
            decode(&encode(&r, Encoding::Json).unwrap(), Encoding::Json).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            json(&ExportTraceServiceResponse::default()),
            serde_json::json!({})
        );
    }

    #[test]
    fn ids_from_hex() {
        assert_eq!(
            trace_id_from_hex("5B8EFFF798038103D269B633813FC60C").unwrap()[0],
            0x5b
        );
        assert_eq!(span_id_from_hex("eee19b7ec3c1b174").unwrap()[7], 0x74);
        assert_eq!(
            span_id_from_hex("eee19b7ec3c1b1"),
            Err(IdError::Length {
                kind: "span id",
                expected: 16,
                got: 14
            })
        );
        assert!(matches!(
            trace_id_from_hex("zz8efff798038103d269b633813fc60c"),
            Err(IdError::NotHex { .. })
        ));
        assert!(matches!(
            trace_id_from_hex("é8efff798038103d269b633813fc60"),
            Err(IdError::NotHex { .. } | IdError::Length { .. })
        ));
        let id = [7u8; 16];
        assert_eq!(trace_id_from_hex(&trace_id_to_hex(&id)).unwrap(), id);
    }
}
