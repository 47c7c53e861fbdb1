//! The estimates against the real allocation peak of decoding (a counting global allocator in
//! this test binary, per thread), on bomb shapes, random messages and arbitrary bytes.

use proptest::prelude::*;

use super::*;
use crate::otlp::proto::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use crate::otlp::{Encoding, ExportLogsServiceRequest, ExportMetricsServiceRequest};
use crate::otlp::{ExportTraceServiceRequest, OtlpMessage};
use crate::remote_write::{Exemplar, Label, MetricMetadata, Sample, TimeSeries, WriteRequest};

/// The heap peak on this thread while `f` runs (`allocation-counter` installs itself as the
/// test binary's allocator), its result included (dropped after the measurement).
fn peak_of<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    match out {
        Some(r) => (info.bytes_max as usize, r),
        None => unreachable!("measure runs the closure"),
    }
}

fn check_protobuf<M: prost::Message + Default>(bytes: &[u8], schema: &'static Schema) {
    let (peak, decoded) = peak_of(|| M::decode(bytes));
    let est = protobuf_estimate(bytes, schema);
    if decoded.is_ok() {
        let est = est.expect("prost decoded what the scan refused");
        assert!(est >= peak, "{}: estimate {est} < peak {peak}", schema.name);
    }
}

fn check_json<M: OtlpMessage>(bytes: &[u8], schema: &'static Schema) {
    let (peak, decoded) = peak_of(|| crate::otlp::decode::<M>(bytes, Encoding::Json));
    let est = json_estimate(bytes, max_struct_size(schema)).unwrap();
    if let Err(e) = &decoded {
        assert!(
            !bytes.starts_with(b"{\""),
            "{} JSON did not decode: {e}",
            schema.name
        );
    }
    if decoded.is_ok() {
        assert!(
            est >= peak,
            "{} JSON: estimate {est} < peak {peak}",
            schema.name
        );
    }
}

#[test]
fn empty_series_bomb_is_seen_before_decoding() {
    // 1 MiB of `0a 00`: 512 Ki empty series.
    let wire = [0x0a, 0x00].repeat(512 << 10);
    let est = protobuf_estimate(&wire, &WRITE_REQUEST).unwrap();
    let (peak, r) = peak_of(|| <WriteRequest as prost::Message>::decode(&wire[..]));
    assert_eq!(r.unwrap().timeseries.len(), 512 << 10);
    assert!(est >= peak, "estimate {est} < peak {peak}");
    // The blow-up the issue measured: tens of bytes of heap per wire byte.
    assert!(
        peak > 20 * wire.len(),
        "peak {peak} for {} wire bytes",
        wire.len()
    );
    assert!(est < 3 * peak, "estimate {est} far over peak {peak}");
}

#[test]
fn empty_resource_bombs_in_otlp() {
    let wire = [0x0a, 0x00].repeat(64 << 10);
    check_protobuf::<ExportMetricsServiceRequest>(&wire, &EXPORT_METRICS);
    check_protobuf::<ExportLogsServiceRequest>(&wire, &EXPORT_LOGS);
    check_protobuf::<ExportTraceServiceRequest>(&wire, &EXPORT_TRACES);
    let est = protobuf_estimate(&wire, &EXPORT_METRICS).unwrap();
    assert!(est > 50 * wire.len());
    // JSON: `{},` three bytes each.
    let mut json = br#"{"resourceMetrics":["#.to_vec();
    json.extend(b"{},".repeat(20_000));
    json.extend(br#"{}]}"#);
    check_json::<ExportMetricsServiceRequest>(&json, &EXPORT_METRICS);
    let mut json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":["#.to_vec();
    json.extend(b"{},".repeat(20_000));
    json.extend(br#"{}]}]}]}"#);
    check_json::<ExportTraceServiceRequest>(&json, &EXPORT_TRACES);
}

/// A remote write as Prometheus sends one (series of 10 labels, a sample each), and OTLP gauges
/// with attributes: the estimate is a bound, but not a wild one (a loose one refuses good
/// requests).
#[test]
fn realistic_requests_estimate_within_a_few_times_their_peak() {
    let series = (0..2000)
        .map(|i| TimeSeries {
            labels: (0..10)
                .map(|l| Label::new(format!("label_{l}"), format!("value-{i}-{l}")))
                .collect(),
            samples: vec![Sample {
                value: 1.0,
                timestamp: 1_700_000_000_000,
            }],
            exemplars: vec![],
        })
        .collect();
    let req = WriteRequest {
        timeseries: series,
        metadata: vec![],
    };
    let pb = prost::Message::encode_to_vec(&req);
    let (peak, _) = peak_of(|| <WriteRequest as prost::Message>::decode(&pb[..]));
    let est = protobuf_estimate(&pb, &WRITE_REQUEST).unwrap();
    eprintln!(
        "remote write: {} wire bytes, peak {peak}, estimate {est}",
        pb.len()
    );
    assert!(est >= peak && est <= 4 * peak, "{est} vs {peak}");

    use crate::otlp::proto::metrics::v1::*;
    let points = (0..500)
        .map(|i| NumberDataPoint {
            attributes: (0..5)
                .map(|a| KeyValue {
                    key: format!("attr.{a}"),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!("v{i}"))),
                    }),
                    ..Default::default()
                })
                .collect(),
            value: Some(number_data_point::Value::AsDouble(1.5)),
            time_unix_nano: 1,
            ..Default::default()
        })
        .collect();
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "pos.checkout.duration".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let pb = prost::Message::encode_to_vec(&req);
    let (peak, _) = peak_of(|| <ExportMetricsServiceRequest as prost::Message>::decode(&pb[..]));
    let est = protobuf_estimate(&pb, &EXPORT_METRICS).unwrap();
    eprintln!(
        "OTLP protobuf: {} wire bytes, peak {peak}, estimate {est}",
        pb.len()
    );
    assert!(est >= peak && est <= 4 * peak, "{est} vs {peak}");
    let json = crate::otlp::encode(&req, Encoding::Json).unwrap();
    let (peak, _) =
        peak_of(|| crate::otlp::decode::<ExportMetricsServiceRequest>(&json, Encoding::Json));
    let est = json_estimate(&json, max_struct_size(&EXPORT_METRICS)).unwrap();
    // What a hostile client can force: the parse through `serde_json::Value`.
    let (slow, _) = peak_of(|| {
        serde_json::from_slice(&json)
            .map_err(crate::WireError::from)
            .and_then(crate::otlp::from_json_value::<ExportMetricsServiceRequest>)
    });
    eprintln!(
        "OTLP JSON: {} bytes, peak {peak} ({slow} via Value), estimate {est}",
        json.len()
    );
    assert!(est >= slow.max(peak) && est <= 4 * slow, "{est} vs {slow}");
}

#[test]
fn json_fallback_path_is_bounded_too() {
    // Metrics without data make the OTLP decoder parse again through `serde_json::Value` (see
    // `wire::otlp::decode`), with the first parse still alive; nulls make the first parse fail.
    let mut json = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":["#.to_vec();
    json.extend(br#"{"name":"a","unit":"s"},"#.repeat(5_000));
    json.extend(br#"{"name":"a"}]}]}]}"#);
    check_json::<ExportMetricsServiceRequest>(&json, &EXPORT_METRICS);
    let mut json = br#"{"resourceLogs":["#.to_vec();
    json.extend(
        br#"{"resource":null,"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]},"#
            .repeat(3_000),
    );
    json.extend(br#"{}]}"#);
    check_json::<ExportLogsServiceRequest>(&json, &EXPORT_LOGS);
}

#[test]
fn malformed_and_deep_input_is_refused_not_panicking() {
    assert!(protobuf_estimate(&[0x0a, 0x05, 0x00], &WRITE_REQUEST).is_err());
    assert!(protobuf_estimate(&[0xff; 11], &WRITE_REQUEST).is_err());
    assert!(protobuf_estimate(&[0x00], &WRITE_REQUEST).is_err());
    // AnyValue → ArrayValue → AnyValue … 200 deep.
    let mut v: Vec<u8> = Vec::new();
    for _ in 0..200 {
        let mut inner = vec![0x0a];
        push_len(&mut inner, v.len());
        inner.extend(&v);
        let mut any = vec![0x2a];
        push_len(&mut any, inner.len());
        any.extend(inner);
        v = any;
    }
    assert_eq!(
        protobuf_estimate(&v, &otlp::ANY_VALUE),
        Err(ScanError::TooDeep)
    );
    assert!(json_estimate(&b"[".repeat(1000), 100).is_err());
    assert!(json_estimate(b"\"unterminated \\", 100).is_ok());
}

/// `bytes` as field `tag` (length-delimited).
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![(tag << 3) | 2];
    push_len(&mut v, bytes.len());
    v.extend_from_slice(bytes);
    v
}

/// Each of `parts` as field `tag`: one non-repeated field occurring `parts.len()` times.
fn occurrences(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    parts.iter().flat_map(|p| field(tag, p)).collect()
}

fn resource_with(attributes: usize) -> Vec<u8> {
    prost::Message::encode_to_vec(&crate::otlp::proto::resource::v1::Resource {
        attributes: vec![KeyValue::default(); attributes],
        ..Default::default()
    })
}

/// A non-repeated message field repeated on the wire is merged by prost (the protobuf rule):
/// its repeated fields concatenate into one `Vec`, up to twice what the occurrences need one by
/// one (1024 attributes, then 1: a `Vec` of 2048).
#[test]
fn repeated_singular_submessage_is_bounded() {
    let resource = occurrences(1, &[resource_with(1024), resource_with(1)]);
    let wire = field(1, &resource);
    check_protobuf::<ExportLogsServiceRequest>(&wire, &EXPORT_LOGS);
    // Merged twice over: the resource of a resource-logs occurring twice, each with two.
    let resource = occurrences(1, &[resource_with(512), resource_with(1)]);
    let rl = occurrences(1, &[resource.clone(), resource]);
    check_protobuf::<ExportLogsServiceRequest>(&field(1, &rl), &EXPORT_LOGS);
}

fn push_len(v: &mut Vec<u8>, mut n: usize) {
    loop {
        if n < 0x80 {
            v.push(n as u8);
            return;
        }
        v.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
}

#[test]
fn schemas_stay_within_the_field_array() {
    for s in [
        &EXPORT_LOGS,
        &EXPORT_METRICS,
        &EXPORT_TRACES,
        &WRITE_REQUEST,
        &PUSH_REQUEST,
    ] {
        let mut stack = vec![s];
        let mut seen = Vec::new();
        while let Some(s) = stack.pop() {
            if seen.contains(&s.name) {
                continue;
            }
            seen.push(s.name);
            assert!(s.fields.len() <= MAX_FIELDS, "{}", s.name);
            for f in s.fields {
                if let Kind::Message { schema, .. } = f.kind {
                    stack.push(schema);
                }
            }
        }
    }
}

// ---- random messages ----------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    "[a-z_]{0,12}"
}

fn label() -> impl Strategy<Value = Label> {
    (text(), text()).prop_map(|(n, v)| Label::new(n, v))
}

fn write_request() -> impl Strategy<Value = WriteRequest> {
    let sample =
        (any::<f64>(), any::<i64>()).prop_map(|(value, timestamp)| Sample { value, timestamp });
    let exemplar =
        (prop::collection::vec(label(), 0..3), any::<f64>()).prop_map(|(labels, value)| Exemplar {
            labels,
            value,
            timestamp: 1,
        });
    let series = (
        prop::collection::vec(label(), 0..12),
        prop::collection::vec(sample, 0..9),
        prop::collection::vec(exemplar, 0..2),
    )
        .prop_map(|(labels, samples, exemplars)| TimeSeries {
            labels,
            samples,
            exemplars,
        });
    let meta = (text(), text()).prop_map(|(n, h)| MetricMetadata {
        r#type: 1,
        metric_family_name: n,
        help: h,
        unit: String::new(),
    });
    (
        prop::collection::vec(series, 0..40),
        prop::collection::vec(meta, 0..3),
    )
        .prop_map(|(timeseries, metadata)| WriteRequest {
            timeseries,
            metadata,
        })
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        text().prop_map(any_value::Value::StringValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(any_value::Value::BytesValue),
    ]
    .prop_map(|v| AnyValue { value: Some(v) });
    leaf.prop_recursive(3, 20, 5, |inner| {
        prop::collection::vec(inner, 0..5).prop_map(|values| AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
        })
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        (text(), any_value()).prop_map(|(key, v)| KeyValue {
            key,
            value: Some(v),
            ..Default::default()
        }),
        0..6,
    )
}

fn resource() -> impl Strategy<Value = Option<crate::otlp::proto::resource::v1::Resource>> {
    attributes().prop_map(|attributes| {
        Some(crate::otlp::proto::resource::v1::Resource {
            attributes,
            ..Default::default()
        })
    })
}

fn metrics_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    use crate::otlp::proto::metrics::v1::*;
    let number = || {
        (attributes(), any::<f64>()).prop_map(|(attributes, v)| NumberDataPoint {
            attributes,
            value: Some(number_data_point::Value::AsDouble(v)),
            time_unix_nano: 1,
            ..Default::default()
        })
    };
    let hist = (attributes(), prop::collection::vec(any::<u64>(), 0..12)).prop_map(
        |(attributes, bucket_counts)| HistogramDataPoint {
            attributes,
            explicit_bounds: bucket_counts.iter().map(|b| *b as f64).collect(),
            bucket_counts,
            ..Default::default()
        },
    );
    let exp = (attributes(), prop::collection::vec(0u64..1000, 0..12)).prop_map(
        |(attributes, bucket_counts)| ExponentialHistogramDataPoint {
            attributes,
            positive: Some(exponential_histogram_data_point::Buckets {
                offset: 0,
                bucket_counts,
            }),
            ..Default::default()
        },
    );
    let data = prop_oneof![
        prop::collection::vec(number(), 0..5)
            .prop_map(|data_points| metric::Data::Gauge(Gauge { data_points })),
        prop::collection::vec(number(), 0..5).prop_map(|data_points| metric::Data::Sum(Sum {
            data_points,
            ..Default::default()
        })),
        prop::collection::vec(hist, 0..4).prop_map(|data_points| metric::Data::Histogram(
            Histogram {
                data_points,
                ..Default::default()
            }
        )),
        prop::collection::vec(exp, 0..4).prop_map(|data_points| {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points,
                ..Default::default()
            })
        }),
    ];
    let metric = (text(), text(), data).prop_map(|(name, unit, data)| Metric {
        name,
        unit,
        data: Some(data),
        ..Default::default()
    });
    let scope = prop::collection::vec(metric, 0..6).prop_map(|metrics| ScopeMetrics {
        metrics,
        ..Default::default()
    });
    let rm =
        (resource(), prop::collection::vec(scope, 0..3)).prop_map(|(resource, scope_metrics)| {
            ResourceMetrics {
                resource,
                scope_metrics,
                ..Default::default()
            }
        });
    prop::collection::vec(rm, 0..4)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

fn logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    use crate::otlp::proto::logs::v1::*;
    let record =
        (attributes(), any_value(), text()).prop_map(|(attributes, body, sev)| LogRecord {
            attributes,
            body: Some(body),
            severity_text: sev,
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            time_unix_nano: 5,
            ..Default::default()
        });
    let scope = prop::collection::vec(record, 0..8).prop_map(|log_records| ScopeLogs {
        log_records,
        ..Default::default()
    });
    let rl = (resource(), prop::collection::vec(scope, 0..3)).prop_map(|(resource, scope_logs)| {
        ResourceLogs {
            resource,
            scope_logs,
            ..Default::default()
        }
    });
    prop::collection::vec(rl, 0..4)
        .prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

fn traces_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    use crate::otlp::proto::trace::v1::*;
    let event = (text(), attributes()).prop_map(|(name, attributes)| span::Event {
        name,
        attributes,
        ..Default::default()
    });
    let link = attributes().prop_map(|attributes| span::Link {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        attributes,
        ..Default::default()
    });
    let span = (
        text(),
        attributes(),
        prop::collection::vec(event, 0..3),
        prop::collection::vec(link, 0..2),
    )
        .prop_map(|(name, attributes, events, links)| Span {
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            name,
            attributes,
            events,
            links,
            status: Some(Status {
                message: "m".into(),
                code: 1,
            }),
            ..Default::default()
        });
    let scope = prop::collection::vec(span, 0..8).prop_map(|spans| ScopeSpans {
        spans,
        ..Default::default()
    });
    let rs =
        (resource(), prop::collection::vec(scope, 0..3)).prop_map(|(resource, scope_spans)| {
            ResourceSpans {
                resource,
                scope_spans,
                ..Default::default()
            }
        });
    prop::collection::vec(rs, 0..4)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn loki_request() -> impl Strategy<Value = crate::loki::PushRequest> {
    use crate::loki::{Entry, LabelPair, PushRequest, Stream};
    let entry = (
        any::<i64>(),
        text(),
        prop::collection::vec((text(), text()), 0..3),
    )
        .prop_map(|(ts, line, md)| {
            let mut e = Entry::new(ts.max(0), line);
            e.structured_metadata = md
                .into_iter()
                .map(|(name, value)| LabelPair { name, value })
                .collect();
            e
        });
    let stream =
        ("[a-z]{1,8}", prop::collection::vec(entry, 0..20)).prop_map(|(v, entries)| Stream {
            labels: format!("{{app=\"{v}\"}}"),
            entries,
            hash: 0,
        });
    prop::collection::vec(stream, 0..5).prop_map(|streams| PushRequest { streams })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn estimate_bounds_remote_write(req in write_request()) {
        check_protobuf::<WriteRequest>(&prost::Message::encode_to_vec(&req), &WRITE_REQUEST);
    }

    #[test]
    fn estimate_bounds_loki(req in loki_request()) {
        let pb = prost::Message::encode_to_vec(&req);
        check_protobuf::<crate::loki::PushRequest>(&pb, &PUSH_REQUEST);
        let json = crate::loki::encode_json(&req).unwrap();
        let (peak, r) = peak_of(|| crate::loki::decode_json(&json));
        r.unwrap();
        let est = json_estimate(&json, max_struct_size(&PUSH_REQUEST)).unwrap();
        prop_assert!(est >= peak, "Loki JSON: estimate {} < peak {}", est, peak);
    }

    #[test]
    fn estimate_bounds_otlp_metrics(req in metrics_request()) {
        check_protobuf::<ExportMetricsServiceRequest>(&prost::Message::encode_to_vec(&req), &EXPORT_METRICS);
        check_json::<ExportMetricsServiceRequest>(&crate::otlp::encode(&req, Encoding::Json).unwrap(), &EXPORT_METRICS);
    }

    #[test]
    fn estimate_bounds_otlp_logs(req in logs_request()) {
        check_protobuf::<ExportLogsServiceRequest>(&prost::Message::encode_to_vec(&req), &EXPORT_LOGS);
        check_json::<ExportLogsServiceRequest>(&crate::otlp::encode(&req, Encoding::Json).unwrap(), &EXPORT_LOGS);
    }

    #[test]
    fn estimate_bounds_otlp_traces(req in traces_request()) {
        check_protobuf::<ExportTraceServiceRequest>(&prost::Message::encode_to_vec(&req), &EXPORT_TRACES);
        check_json::<ExportTraceServiceRequest>(&crate::otlp::encode(&req, Encoding::Json).unwrap(), &EXPORT_TRACES);
    }

    /// Non-repeated message fields occurring several times, at several depths: a resource's
    /// attributes, a metric's gauge points, exponential histogram buckets, a key-value list.
    #[test]
    fn estimate_bounds_merged_singular_fields(
        resources in prop::collection::vec(0usize..70, 1..5),
        gauges in prop::collection::vec(0usize..70, 1..4),
        buckets in prop::collection::vec(prop::collection::vec(0u64..1000, 0..70), 1..4),
        kvlists in prop::collection::vec(0usize..40, 1..4),
        outer in 1usize..3,
    ) {
        use crate::otlp::proto::common::v1::KeyValueList;
        use crate::otlp::proto::metrics::v1::{exponential_histogram_data_point::Buckets, *};
        // ResourceLogs { resource × n } (× `outer` ResourceLogs occurrences of ScopeLogs…) …
        let parts: Vec<_> = resources.iter().map(|n| resource_with(*n)).collect();
        let rl = occurrences(1, &parts);
        let rl = occurrences(1, &vec![rl; outer]);
        check_protobuf::<ExportLogsServiceRequest>(&field(1, &rl), &EXPORT_LOGS);
        // Metric { gauge × n }.
        let parts: Vec<_> = gauges.iter().map(|n| prost::Message::encode_to_vec(&Gauge { data_points: vec![NumberDataPoint::default(); *n] })).collect();
        let metric = occurrences(5, &parts);
        let sm = field(2, &metric);
        let rm = field(2, &sm);
        check_protobuf::<ExportMetricsServiceRequest>(&field(1, &rm), &EXPORT_METRICS);
        // ExponentialHistogramDataPoint { positive × n } (packed bucket counts).
        let parts: Vec<_> = buckets.iter().map(|b| prost::Message::encode_to_vec(&Buckets { offset: 0, bucket_counts: b.clone() })).collect();
        let point = occurrences(8, &parts);
        let metric = field(10, &field(1, &point));
        let rm = field(2, &field(2, &metric));
        check_protobuf::<ExportMetricsServiceRequest>(&field(1, &rm), &EXPORT_METRICS);
        // AnyValue { kvlist_value × n } as a log body.
        let parts: Vec<_> = kvlists.iter().map(|n| prost::Message::encode_to_vec(&KeyValueList { values: vec![KeyValue::default(); *n] })).collect();
        let record = field(5, &occurrences(6, &parts));
        let rl = field(2, &field(2, &record));
        check_protobuf::<ExportLogsServiceRequest>(&field(1, &rl), &EXPORT_LOGS);
    }

    /// Arbitrary bytes, and valid messages with bytes flipped: no panic, and whatever prost
    /// decodes the scan accepts and bounds.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512),
                                   req in write_request(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        check_protobuf::<WriteRequest>(&bytes, &WRITE_REQUEST);
        check_protobuf::<ExportMetricsServiceRequest>(&bytes, &EXPORT_METRICS);
        check_protobuf::<ExportLogsServiceRequest>(&bytes, &EXPORT_LOGS);
        check_protobuf::<ExportTraceServiceRequest>(&bytes, &EXPORT_TRACES);
        check_protobuf::<crate::loki::PushRequest>(&bytes, &PUSH_REQUEST);
        let _ = json_estimate(&bytes, 100);
        let mut pb = prost::Message::encode_to_vec(&req);
        if !pb.is_empty() {
            for (at, b) in flips {
                let n = pb.len();
                pb[at % n] = b;
            }
        }
        check_protobuf::<WriteRequest>(&pb, &WRITE_REQUEST);
    }
}
