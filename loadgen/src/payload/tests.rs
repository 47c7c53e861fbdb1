//! Small payloads of every kind, for the transport's and the engine's tests, and the URL joins.

use wire::loki::{Entry, PushRequest, Stream};
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wire::otlp::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest};

use super::*;
use wire::time::now_ns;

fn resource(device: u64) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("dev-{device}"))),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Two log entries of device `d`.
pub(crate) fn loki(d: u64) -> PushRequest {
    let t = now_ns();
    PushRequest {
        streams: vec![Stream {
            labels: format!("{{device=\"dev-{d}\"}}"),
            entries: vec![Entry::new(t, "hello"), Entry::new(t + 1, "world")],
            hash: 0,
        }],
    }
}

/// Three samples of device `d` (one series each).
pub(crate) fn remote_write(d: u64) -> WriteRequest {
    let ms = now_ns() / 1_000_000;
    WriteRequest {
        timeseries: (0..3)
            .map(|i| TimeSeries {
                labels: vec![
                    Label::new("__name__", format!("loadgen_test_{i}")),
                    Label::new("device", format!("dev-{d}")),
                ],
                samples: vec![Sample {
                    value: i as f64,
                    timestamp: ms,
                }],
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

/// One span of device `d`, trace `seq`.
pub(crate) fn traces(d: u64, seq: u64) -> ExportTraceServiceRequest {
    let t = now_ns() as u64;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(d),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: crate::canary::trace_id(0, d, seq).to_vec(),
                    span_id: vec![1; 8],
                    name: "checkout".into(),
                    start_time_unix_nano: t - 1_000_000,
                    end_time_unix_nano: t,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Two data points of one gauge.
pub(crate) fn otlp_metrics() -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        time_unix_nano: now_ns() as u64,
        value: Some(number_data_point::Value::AsDouble(1.0)),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(1),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "g".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![point.clone(), point],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Four log records.
pub(crate) fn otlp_logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(1),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 4],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn urls_join_with_or_without_a_slash() {
    let a = Url::parse("http://h:1/").unwrap();
    let b = Url::parse("http://h:1/otlp").unwrap();
    assert_eq!(
        join(&a, "v1/traces").unwrap().as_str(),
        "http://h:1/v1/traces"
    );
    assert_eq!(
        join(&b, "v1/traces").unwrap().as_str(),
        "http://h:1/otlp/v1/traces"
    );
}

#[test]
fn items_are_counted_per_kind_and_merge_keeps_kinds_apart() {
    let mut p = Payload::Loki(loki(1));
    assert_eq!(p.items(), 2);
    assert!(p.merge(Payload::Loki(loki(2))).is_ok());
    assert_eq!(p.items(), 4);
    assert!(p.merge(Payload::RemoteWrite(remote_write(1))).is_err());
    assert_eq!(Payload::RemoteWrite(remote_write(1)).items(), 3);
    assert_eq!(Payload::OtlpMetrics(otlp_metrics()).items(), 2);
    assert_eq!(Payload::OtlpLogs(otlp_logs()).items(), 4);
    assert_eq!(Payload::OtlpTraces(traces(1, 1)).signal(), Signal::Traces);
}
