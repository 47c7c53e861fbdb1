//! Property tests of every decoder in the crate: arbitrary bytes never make one panic (they
//! return an error or a value), and encode -> decode gives back what was encoded, for Loki push
//! (protobuf and JSON), remote write, OTLP (traces, logs, metrics; protobuf and JSON), the text
//! exposition format and label sets.
//!
//! Floats are compared by bits (NaN != NaN, and a stale marker is one NaN among many); OTLP
//! messages by their protobuf encoding, which is exactly their field values.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

use wire::compression::{gzip_compress, gzip_decompress, snappy_compress, snappy_decompress};
use wire::exposition::{self, Exemplar, ExpoSample, MetricFamily, MetricKind};
use wire::labels::{format_label_set, parse_label_set};
use wire::otlp::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use wire::otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wire::otlp::proto::metrics::v1::{
    Exemplar as OtlpExemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use wire::otlp::{
    self, Encoding, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, OtlpMessage,
};
use wire::{loki, remote_write};

const LIMIT: usize = 1 << 20;

// ---- strategies ------------------------------------------------------------------------------------

fn label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
}

/// Any string, with the characters that need escaping made likely.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,24}", "[a-z\"\\\\\n\t\r #{}=,]{0,16}", any::<String>(),]
}

/// Any f64, specials and odd NaN payloads included.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(remote_write::stale_nan()),
    ]
}

// ---- never panic ----------------------------------------------------------------------------------

proptest! {
    #[test]
    fn decoders_never_panic_on_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = snappy_decompress(&bytes, LIMIT);
        let _ = gzip_decompress(&bytes, LIMIT);
        let _ = loki::decode_protobuf(&bytes, LIMIT);
        let _ = loki::decode_json(&bytes);
        let _ = remote_write::decode(&bytes, LIMIT);
        let _ = otlp::decode::<ExportTraceServiceRequest>(&bytes, Encoding::Protobuf);
        let _ = otlp::decode::<ExportLogsServiceRequest>(&bytes, Encoding::Protobuf);
        let _ = otlp::decode::<ExportMetricsServiceRequest>(&bytes, Encoding::Protobuf);
        let _ = otlp::decode::<ExportTraceServiceRequest>(&bytes, Encoding::Json);
        let _ = otlp::decode::<ExportLogsServiceRequest>(&bytes, Encoding::Json);
        let _ = otlp::decode::<ExportMetricsServiceRequest>(&bytes, Encoding::Json);
        // Valid compression around garbage reaches the protobuf decoders behind it.
        let snappy = snappy_compress(&bytes);
        let _ = loki::decode_protobuf(&snappy, LIMIT);
        let _ = remote_write::decode(&snappy, LIMIT);
        let _ = gzip_decompress(&gzip_compress(&bytes), LIMIT);
    }

    #[test]
    fn loki_http_never_panics(
        ct in option::of(prop_oneof![
            Just("application/json".to_string()),
            Just("application/x-protobuf".to_string()),
            Just("application/json; charset=utf-8".to_string()),
            ".{0,30}",
        ]),
        ce in option::of(prop_oneof![
            Just("gzip".to_string()),
            Just("deflate".to_string()),
            Just("snappy".to_string()),
            Just("identity".to_string()),
            ".{0,12}",
        ]),
        bytes in vec(any::<u8>(), 0..256),
        wrap in 0u8..3,
    ) {
        let body = match wrap {
            0 => bytes,
            1 => gzip_compress(&bytes),
            _ => snappy_compress(&bytes),
        };
        let _ = loki::decode_http(ct.as_deref(), ce.as_deref(), &body, LIMIT);
        let _ = loki::decode_http(ct.as_deref(), ce.as_deref(), &body, 8);
    }

    #[test]
    fn text_decoders_never_panic(s in any::<String>()) {
        let _ = exposition::parse(&s);
        let _ = exposition::parse_as(&s, exposition::Format::OpenMetrics);
        let _ = exposition::Format::from_content_type(&s);
        let _ = parse_label_set(&s);
        let _ = otlp::trace_id_from_hex(&s);
        let _ = otlp::span_id_from_hex(&s);
        let _ = loki::decode_json(s.as_bytes());
    }

    /// Strings made of the format's own tokens get much further into the parsers than random
    /// text does.
    #[test]
    fn text_decoders_never_panic_on_near_misses(parts in vec(prop_oneof![
        Just("# HELP "), Just("# TYPE "), Just("# UNIT "), Just("# EOF"), Just("\n"), Just(" "),
        Just("m"), Just("m_total"), Just("m_bucket"), Just("_sum"), Just("{"), Just("}"),
        Just("le"), Just("="), Just("\""), Just("\\"), Just(","), Just("1"), Just("-"), Just("."),
        Just("e5"), Just("NaN"), Just("+Inf"), Just("counter"), Just("histogram"), Just(" # "),
        Just("\\x4"), Just("\\u12"), Just("`"), Just("é"),
    ], 0..40)) {
        let s: String = parts.concat();
        let _ = exposition::parse(&s);
        let _ = exposition::parse_as(&s, exposition::Format::OpenMetrics);
        let _ = parse_label_set(&s);
    }

    /// JSON that is valid but shaped almost like OTLP: the Value rewriting must not panic either.
    #[test]
    fn otlp_json_never_panics_on_near_misses(v in json_value()) {
        let body = serde_json::to_vec(&serde_json::json!({
            "resourceSpans": [{"scopeSpans": [{"spans": [v.clone()]}]}],
            "resourceLogs": [{"scopeLogs": [{"logRecords": [v.clone()]}]}],
            "resourceMetrics": [{"scopeMetrics": [{"metrics": [v]}]}],
        })).unwrap();
        let _ = otlp::decode::<ExportTraceServiceRequest>(&body, Encoding::Json);
        let _ = otlp::decode::<ExportLogsServiceRequest>(&body, Encoding::Json);
        let _ = otlp::decode::<ExportMetricsServiceRequest>(&body, Encoding::Json);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("traceId"),
        Just("kind"),
        Just("code"),
        Just("asDouble"),
        Just("sum"),
        Just("gauge"),
        Just("histogram"),
        Just("dataPoints"),
        Just("explicitBounds"),
        Just("attributes"),
        Just("value"),
        Just("key"),
        Just("arrayValue"),
        Just("kvlistValue"),
        Just("values"),
        Just("doubleValue"),
        Just("intValue"),
        Just("entityRefs"),
        Just("flags"),
        Just("severityNumber"),
        Just("status"),
        Just("body"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("NaN".to_string()),
            Just("-Infinity".to_string()),
            Just("SPAN_KIND_CLIENT".to_string()),
            "[0-9a-f]{0,6}",
            ".{0,6}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((key.clone(), inner), 0..5).prop_map(|kvs| {
                Value::Object(kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

// ---- Loki -------------------------------------------------------------------------------------------

fn loki_entry_pb() -> impl Strategy<Value = loki::Entry> {
    (
        option::of((any::<i64>(), any::<i32>())),
        text(),
        vec((text(), text()), 0..3),
    )
        .prop_map(|(ts, line, md)| loki::Entry {
            timestamp: ts.map(|(seconds, nanos)| loki::Timestamp { seconds, nanos }),
            line,
            structured_metadata: md
                .into_iter()
                .map(|(name, value)| loki::LabelPair { name, value })
                .collect(),
        })
}

fn loki_request_pb() -> impl Strategy<Value = loki::PushRequest> {
    vec((text(), vec(loki_entry_pb(), 0..5), any::<u64>()), 0..4).prop_map(|streams| {
        loki::PushRequest {
            streams: streams
                .into_iter()
                .map(|(labels, entries, hash)| loki::Stream {
                    labels,
                    entries,
                    hash,
                })
                .collect(),
        }
    })
}

/// What the JSON form can carry: label sets as Loki prints them, timestamps as nanoseconds,
/// metadata as a map (sorted, unique names), no hash.
fn loki_request_json() -> impl Strategy<Value = loki::PushRequest> {
    let entry =
        (any::<i64>(), text(), btree_map(label_name(), text(), 0..3)).prop_map(|(ns, line, md)| {
            let mut e = loki::Entry::new(ns, line);
            e.structured_metadata = md
                .into_iter()
                .map(|(name, value)| loki::LabelPair { name, value })
                .collect();
            e
        });
    vec(
        (btree_map(label_name(), text(), 0..4), vec(entry, 0..5)),
        0..4,
    )
    .prop_map(|streams| loki::PushRequest {
        streams: streams
            .into_iter()
            .map(|(labels, entries)| loki::Stream {
                labels: format_label_set(&labels.into_iter().collect::<Vec<_>>()),
                entries,
                hash: 0,
            })
            .collect(),
    })
}

proptest! {
    #[test]
    fn loki_protobuf_round_trip(req in loki_request_pb()) {
        let body = loki::encode_protobuf(&req);
        prop_assert_eq!(loki::decode_protobuf(&body, LIMIT).unwrap(), req.clone());
        prop_assert_eq!(
            loki::decode_http(Some("application/x-protobuf"), Some("snappy"), &body, LIMIT).unwrap(),
            req
        );
    }

    #[test]
    fn loki_json_round_trip(req in loki_request_json()) {
        let body = loki::encode_json(&req).unwrap();
        prop_assert_eq!(loki::decode_json(&body).unwrap(), req.clone());
        let gz = gzip_compress(&body);
        prop_assert_eq!(
            loki::decode_http(Some("application/json"), Some("gzip"), &gz, LIMIT).unwrap(),
            req
        );
    }

    #[test]
    fn labels_round_trip(labels in btree_map(label_name(), text(), 0..6)) {
        let labels: Vec<(String, String)> = labels.into_iter().collect();
        prop_assert_eq!(parse_label_set(&format_label_set(&labels)).unwrap(), labels);
    }
}

// ---- remote write ---------------------------------------------------------------------------------

fn rw_labels() -> impl Strategy<Value = Vec<remote_write::Label>> {
    vec((text(), text()), 0..5).prop_map(|ls| {
        ls.into_iter()
            .map(|(n, v)| remote_write::Label::new(n, v))
            .collect()
    })
}

fn rw_request() -> impl Strategy<Value = remote_write::WriteRequest> {
    let sample = (any_f64(), any::<i64>())
        .prop_map(|(value, timestamp)| remote_write::Sample { value, timestamp });
    let exemplar = (rw_labels(), any_f64(), any::<i64>()).prop_map(|(labels, value, timestamp)| {
        remote_write::Exemplar {
            labels,
            value,
            timestamp,
        }
    });
    let series = (rw_labels(), vec(sample, 0..6), vec(exemplar, 0..2)).prop_map(
        |(labels, samples, exemplars)| remote_write::TimeSeries {
            labels,
            samples,
            exemplars,
        },
    );
    let metadata = (0i32..8, text(), text(), text()).prop_map(|(t, name, help, unit)| {
        remote_write::MetricMetadata {
            r#type: t,
            metric_family_name: name,
            help,
            unit,
        }
    });
    (vec(series, 0..5), vec(metadata, 0..3)).prop_map(|(timeseries, metadata)| {
        remote_write::WriteRequest {
            timeseries,
            metadata,
        }
    })
}

fn pos_zero(v: f64) -> f64 {
    if v == 0.0 { 0.0 } else { v }
}

proptest! {
    #[test]
    fn remote_write_round_trip(req in rw_request()) {
        let back = remote_write::decode(&remote_write::encode(&req), LIMIT).unwrap();
        prop_assert_eq!(back.timeseries.len(), req.timeseries.len());
        for (a, b) in req.timeseries.iter().zip(&back.timeseries) {
            prop_assert_eq!(&a.labels, &b.labels);
            // proto3 leaves out a field equal to its default, and -0.0 == 0.0: a negative zero
            // comes back positive (as with Prometheus' own gogo-protobuf code).
            let bits = |s: &[remote_write::Sample]| -> Vec<(u64, i64)> {
                s.iter().map(|x| (pos_zero(x.value).to_bits(), x.timestamp)).collect()
            };
            prop_assert_eq!(bits(&a.samples), bits(&b.samples));
            prop_assert_eq!(a.exemplars.len(), b.exemplars.len());
            for (x, y) in a.exemplars.iter().zip(&b.exemplars) {
                prop_assert_eq!(&x.labels, &y.labels);
                prop_assert_eq!((pos_zero(x.value).to_bits(), x.timestamp), (y.value.to_bits(), y.timestamp));
            }
            prop_assert_eq!(
                a.samples.iter().any(|s| remote_write::is_stale_nan(s.value)),
                b.samples.iter().any(|s| remote_write::is_stale_nan(s.value))
            );
        }
        prop_assert_eq!(back.metadata, req.metadata);
    }
}

proptest! {
    /// The hand-written encoder a sender uses writes what prost reads back, bit for bit (it
    /// writes every field, so even -0.0 survives), and the same bytes prost would write up to
    /// the fields proto3 leaves out.
    #[test]
    fn request_encoder_round_trip(req in rw_request()) {
        let mut enc = remote_write::RequestEncoder::default();
        for ts in &req.timeseries {
            enc.series(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())), &ts.samples);
        }
        let back = remote_write::decode(&enc.finish_snappy(), LIMIT).unwrap();
        prop_assert_eq!(back.timeseries.len(), req.timeseries.len());
        for (a, b) in req.timeseries.iter().zip(&back.timeseries) {
            prop_assert_eq!(&a.labels, &b.labels);
            let bits = |s: &[remote_write::Sample]| -> Vec<(u64, i64)> {
                s.iter().map(|x| (x.value.to_bits(), x.timestamp)).collect()
            };
            prop_assert_eq!(bits(&a.samples), bits(&b.samples));
            prop_assert!(b.exemplars.is_empty());
        }
        prop_assert!(back.metadata.is_empty());
    }
}

// ---- OTLP ------------------------------------------------------------------------------------------

fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        text().prop_map(V::StringValue),
        any::<bool>().prop_map(V::BoolValue),
        any::<i64>().prop_map(V::IntValue),
        any_f64().prop_map(V::DoubleValue),
        vec(any::<u8>(), 0..12).prop_map(V::BytesValue),
    ];
    // `StringValueStrindex` (profiles only) is left out: the crate serializes it but its
    // deserializer ignores it.
    let leaf = option::weighted(0.95, leaf).prop_map(|value| AnyValue { value });
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                value: Some(V::ArrayValue(ArrayValue { values }))
            }),
            vec((text(), inner), 0..3).prop_map(|kvs| AnyValue {
                value: Some(V::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, v)| KeyValue {
                            key,
                            value: Some(v),
                            key_strindex: 0,
                        })
                        .collect(),
                }))
            }),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec((text(), option::weighted(0.9, any_value())), 0..3).prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value,
                key_strindex: 0,
            })
            .collect()
    })
}

fn id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 16..=16),
        vec(any::<u8>(), 8..=8),
        vec(any::<u8>(), 0..20),
    ]
}

fn resource() -> impl Strategy<Value = Option<Resource>> {
    option::of(
        (attributes(), any::<u32>()).prop_map(|(attributes, d)| Resource {
            attributes,
            dropped_attributes_count: d,
            entity_refs: vec![],
        }),
    )
}

fn scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    option::of(
        (text(), text(), attributes()).prop_map(|(name, version, attributes)| {
            InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count: 0,
            }
        }),
    )
}

fn span() -> impl Strategy<Value = Span> {
    let event =
        (any::<u64>(), text(), attributes()).prop_map(|(t, name, attributes)| span::Event {
            time_unix_nano: t,
            name,
            attributes,
            dropped_attributes_count: 0,
        });
    let link =
        (id(), id(), text(), any::<u32>()).prop_map(|(trace_id, span_id, ts, flags)| span::Link {
            trace_id,
            span_id,
            trace_state: ts,
            attributes: vec![],
            dropped_attributes_count: 0,
            flags,
        });
    (
        (
            id(),
            id(),
            id(),
            text(),
            0i32..6,
            any::<u64>(),
            any::<u64>(),
        ),
        (
            attributes(),
            vec(event, 0..2),
            vec(link, 0..2),
            option::of((text(), 0i32..3)),
            any::<u32>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (trace_id, span_id, parent_span_id, name, kind, start, end),
                (attributes, events, links, status, flags, dropped),
            )| Span {
                trace_id,
                span_id,
                trace_state: String::new(),
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: dropped,
                events,
                dropped_events_count: 0,
                links,
                dropped_links_count: 0,
                status: status.map(|(message, code)| Status { message, code }),
            },
        )
}

fn traces() -> impl Strategy<Value = ExportTraceServiceRequest> {
    vec((resource(), vec((scope(), vec(span(), 0..3)), 0..2)), 0..2).prop_map(|rs| {
        ExportTraceServiceRequest {
            resource_spans: rs
                .into_iter()
                .map(|(resource, ss)| ResourceSpans {
                    resource,
                    scope_spans: ss
                        .into_iter()
                        .map(|(scope, spans)| ScopeSpans {
                            scope,
                            spans,
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        }
    })
}

fn logs() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let record = (
        (any::<u64>(), any::<u64>(), 0i32..25, text()),
        (
            option::of(any_value()),
            attributes(),
            any::<u32>(),
            id(),
            id(),
            text(),
        ),
    )
        .prop_map(
            |((t, ot, sev, sev_text), (body, attributes, flags, trace_id, span_id, event_name))| {
                LogRecord {
                    time_unix_nano: t,
                    observed_time_unix_nano: ot,
                    severity_number: sev,
                    severity_text: sev_text,
                    body,
                    attributes,
                    dropped_attributes_count: 0,
                    flags,
                    trace_id,
                    span_id,
                    event_name,
                }
            },
        );
    vec((resource(), vec((scope(), vec(record, 0..3)), 0..2)), 0..2).prop_map(|rl| {
        ExportLogsServiceRequest {
            resource_logs: rl
                .into_iter()
                .map(|(resource, sl)| ResourceLogs {
                    resource,
                    scope_logs: sl
                        .into_iter()
                        .map(|(scope, log_records)| ScopeLogs {
                            scope,
                            log_records,
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        }
    })
}

fn metrics() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let exemplar = (
        any::<u64>(),
        id(),
        id(),
        prop_oneof![
            any_f64().prop_map(exemplar::Value::AsDouble),
            any::<i64>().prop_map(exemplar::Value::AsInt),
        ],
    )
        .prop_map(|(t, span_id, trace_id, v)| OtlpExemplar {
            filtered_attributes: vec![],
            time_unix_nano: t,
            span_id,
            trace_id,
            value: Some(v),
        });
    let number = (
        attributes(),
        any::<u64>(),
        any::<u64>(),
        option::of(prop_oneof![
            any_f64().prop_map(number_data_point::Value::AsDouble),
            any::<i64>().prop_map(number_data_point::Value::AsInt),
        ]),
        vec(exemplar, 0..2),
        any::<u32>(),
    )
        .prop_map(
            |(attributes, s, t, value, exemplars, flags)| NumberDataPoint {
                attributes,
                start_time_unix_nano: s,
                time_unix_nano: t,
                exemplars,
                flags,
                value,
            },
        )
        .boxed();
    let hist = (
        any::<u64>(),
        option::of(any_f64()),
        vec(any::<u64>(), 0..4),
        vec(any_f64(), 0..3),
        option::of(any_f64()),
        option::of(any_f64()),
    )
        .prop_map(|(count, sum, bucket_counts, explicit_bounds, min, max)| {
            HistogramDataPoint {
                count,
                sum,
                bucket_counts,
                explicit_bounds,
                min,
                max,
                ..Default::default()
            }
        });
    let exp = (
        (
            any::<u64>(),
            option::of(any_f64()),
            any::<i32>(),
            any::<u64>(),
        ),
        (
            option::of((any::<i32>(), vec(any::<u64>(), 0..3))),
            any_f64(),
        ),
    )
        .prop_map(|((count, sum, scale, zero_count), (pos, zero_threshold))| {
            ExponentialHistogramDataPoint {
                count,
                sum,
                scale,
                zero_count,
                positive: pos.map(|(offset, bucket_counts)| Buckets {
                    offset,
                    bucket_counts,
                }),
                zero_threshold,
                ..Default::default()
            }
        });
    let summary = (any::<u64>(), any_f64(), vec((any_f64(), any_f64()), 0..3)).prop_map(
        |(count, sum, qs)| SummaryDataPoint {
            count,
            sum,
            quantile_values: qs
                .into_iter()
                .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            ..Default::default()
        },
    );
    let data = prop_oneof![
        vec(number.clone(), 0..3)
            .prop_map(|data_points| metric::Data::Gauge(Gauge { data_points })),
        (vec(number, 0..3), 0i32..3, any::<bool>()).prop_map(|(data_points, t, m)| {
            metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: t,
                is_monotonic: m,
            })
        }),
        (vec(hist, 0..2), 0i32..3).prop_map(|(data_points, t)| {
            metric::Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        (vec(exp, 0..2), 0i32..3).prop_map(|(data_points, t)| {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        vec(summary, 0..2).prop_map(|data_points| metric::Data::Summary(Summary { data_points })),
    ];
    let metric = (
        text(),
        text(),
        text(),
        attributes(),
        option::weighted(0.9, data),
    )
        .prop_map(|(name, description, unit, metadata, data)| Metric {
            name,
            description,
            unit,
            metadata,
            data,
        });
    vec((resource(), vec((scope(), vec(metric, 0..3)), 0..2)), 0..2).prop_map(|rm| {
        ExportMetricsServiceRequest {
            resource_metrics: rm
                .into_iter()
                .map(|(resource, sm)| ResourceMetrics {
                    resource,
                    scope_metrics: sm
                        .into_iter()
                        .map(|(scope, metrics)| ScopeMetrics {
                            scope,
                            metrics,
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        }
    })
}

/// Protobuf and JSON both give back the message; compared through the protobuf encoding so that
/// NaNs compare by bits. JSON keeps NaN's meaning but not its payload, so NaNs are made canonical
/// before the JSON comparison.
fn otlp_round_trip<M: OtlpMessage>(m: &M) -> Result<(), TestCaseError> {
    let pb = otlp::encode(m, Encoding::Protobuf).unwrap();
    let back: M = otlp::decode(&pb, Encoding::Protobuf).unwrap();
    prop_assert_eq!(back.encode_to_vec(), pb);

    let mut canonical = m.clone();
    canonical.for_each_double(&mut |d| {
        if d.is_nan() {
            *d = f64::NAN;
        }
    });
    let json = otlp::encode(m, Encoding::Json).unwrap();
    let text = String::from_utf8(json.clone()).unwrap();
    prop_assert!(!text.contains("null"), "null in {}", text);
    let back: M = otlp::decode(&json, Encoding::Json).unwrap();
    prop_assert_eq!(back.encode_to_vec(), canonical.encode_to_vec(), "{}", text);
    // `decode` reads most bodies straight through the crate's serde; the careful path that
    // rewrites the JSON first must agree with it.
    let careful: M = otlp::from_json_value(serde_json::from_slice(&json).unwrap()).unwrap();
    prop_assert_eq!(careful.encode_to_vec(), back.encode_to_vec());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn otlp_traces_round_trip(req in traces()) {
        otlp_round_trip(&req)?;
    }

    #[test]
    fn otlp_logs_round_trip(req in logs()) {
        otlp_round_trip(&req)?;
    }

    #[test]
    fn otlp_metrics_round_trip(req in metrics()) {
        otlp_round_trip(&req)?;
    }
}

// ---- exposition -----------------------------------------------------------------------------------

/// Families that can go through the text format: distinct names (none another's name plus a
/// suffix), sample names the family's type claims, help without edge whitespace (the format trims
/// it), label values anything.
fn families(openmetrics: bool) -> impl Strategy<Value = Vec<MetricFamily>> {
    let kinds: Vec<MetricKind> = if openmetrics {
        vec![
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
            MetricKind::Summary,
            MetricKind::Untyped,
            MetricKind::Info,
            MetricKind::StateSet,
            MetricKind::GaugeHistogram,
            MetricKind::Unknown,
        ]
    } else {
        vec![
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
            MetricKind::Summary,
            MetricKind::Untyped,
        ]
    };
    // 0.0.4 writes milliseconds, OpenMetrics seconds with three decimals: every i64 survives.
    let ts = any::<i64>();
    let exemplar = option::of(
        (
            btree_map(label_name(), text(), 0..2),
            any_f64(),
            option::of(any::<i64>()),
        )
            .prop_map(|(labels, value, timestamp_ms)| Exemplar {
                labels: labels.into_iter().collect(),
                value,
                timestamp_ms,
            }),
    );
    let sample = (
        0usize..8,
        btree_map(label_name(), text(), 0..3),
        any_f64(),
        option::of(ts),
        exemplar,
    );
    let family = (
        "[a-z][a-z0-9_:]{0,10}",
        proptest::sample::select(kinds),
        option::of(prop_oneof![
            Just(String::new()),
            "[^ \t\n][^\n]{0,20}[^ \t\n]"
        ]),
        option::of("[a-z_]{1,8}"),
        vec(sample, 0..5),
    );
    vec(family, 0..5).prop_map(move |fams| {
        fams.into_iter()
            .enumerate()
            .map(|(i, (base, kind, help, unit, samples))| {
                // `_f<i>` makes names unique and keeps them clear of every type suffix.
                let name = format!("{base}_f{i}");
                let suffixes = kind.suffixes();
                MetricFamily {
                    samples: samples
                        .into_iter()
                        .map(|(pick, labels, value, timestamp_ms, exemplar)| ExpoSample {
                            name: match pick.checked_sub(1).and_then(|k| suffixes.get(k)) {
                                Some(s) => format!("{name}{s}"),
                                None if kind == MetricKind::Info => format!("{name}_info"),
                                None => name.clone(),
                            },
                            labels: labels.into_iter().collect(),
                            value,
                            timestamp_ms,
                            exemplar: exemplar.filter(|_| openmetrics),
                        })
                        .collect(),
                    name,
                    help: help.map(|h| h.replace('\r', "").trim_matches([' ', '\t']).to_string()),
                    kind,
                    unit: unit.filter(|_| openmetrics),
                }
            })
            .collect()
    })
}

fn same_families(a: &[MetricFamily], b: &[MetricFamily]) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        prop_assert_eq!(
            (&x.name, &x.help, x.kind, &x.unit),
            (&y.name, &y.help, y.kind, &y.unit)
        );
        prop_assert_eq!(x.samples.len(), y.samples.len(), "family {}", x.name);
        for (s, t) in x.samples.iter().zip(&y.samples) {
            prop_assert_eq!(
                (&s.name, &s.labels, s.timestamp_ms),
                (&t.name, &t.labels, t.timestamp_ms)
            );
            prop_assert!(
                s.value.to_bits() == t.value.to_bits() || (s.value.is_nan() && t.value.is_nan()),
                "{} vs {}",
                s.value,
                t.value
            );
            match (&s.exemplar, &t.exemplar) {
                (None, None) => {}
                (Some(e), Some(f)) => {
                    prop_assert_eq!((&e.labels, e.timestamp_ms), (&f.labels, f.timestamp_ms));
                    prop_assert!(
                        e.value.to_bits() == f.value.to_bits()
                            || (e.value.is_nan() && f.value.is_nan())
                    );
                }
                (e, f) => prop_assert!(false, "exemplar {:?} became {:?}", e, f),
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn exposition_round_trip(fams in families(false)) {
        let text = exposition::encode(&fams);
        let back = exposition::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        same_families(&fams, &back)?;
    }

    #[test]
    fn openmetrics_round_trip(fams in families(true)) {
        let text = exposition::encode_openmetrics(&fams);
        let back = exposition::parse_as(&text, exposition::Format::OpenMetrics)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        same_families(&fams, &back)?;
        prop_assert_eq!(exposition::parse(&text).unwrap().len(), fams.len());
    }

    #[test]
    fn flat_samples_are_sorted_and_named(fams in families(false)) {
        let flat: Vec<_> = exposition::samples(&fams).collect();
        prop_assert_eq!(flat.len(), fams.iter().map(|f| f.samples.len()).sum::<usize>());
        for s in &flat {
            prop_assert!(s.labels.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert!(s.labels.contains(&("__name__".to_string(), s.name.clone())));
        }
    }
}
