//! Real-looking OTLP payloads from a point-of-sale checkout service, for the unit and
//! integration tests (and loadgen): a checkout trace, its logs, its metrics.

use wire::otlp::proto::common::v1::any_value::Value;
use wire::otlp::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use wire::otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wire::otlp::proto::metrics::v1::metric::Data;
use wire::otlp::proto::metrics::v1::summary_data_point::ValueAtQuantile;
use wire::otlp::proto::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, number_data_point,
};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use wire::otlp::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};

/// 2023-11-14T22:13:20Z in nanoseconds.
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
pub const SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}

/// A string attribute.
pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(s(v)),
        ..Default::default()
    }
}

fn kv_any(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// The checkout service's resource.
pub fn resource() -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", "pos-checkout"),
            kv("service.namespace", "retail"),
            kv("service.instance.id", "till-07"),
            kv("deployment.environment", "prod"),
            kv("host.name", "till-07"),
        ],
        ..Default::default()
    }
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "pos.checkout".into(),
        version: "2.4.1".into(),
        ..Default::default()
    })
}

/// Two checkout logs: a completed checkout (string body, trace context) and a basket (map body,
/// only an observed time).
pub fn logs_request() -> ExportLogsServiceRequest {
    let basket = Value::KvlistValue(KeyValueList {
        values: vec![
            kv_any("amount", Value::DoubleValue(12.5)),
            kv_any(
                "items",
                Value::ArrayValue(ArrayValue {
                    values: vec![s("sku-1"), s("sku-2")],
                }),
            ),
        ],
    });
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![
                    LogRecord {
                        time_unix_nano: T0,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(s("checkout completed")),
                        attributes: vec![kv("store.id", "1042"), kv("payment.method", "card")],
                        trace_id: TRACE_ID.to_vec(),
                        span_id: SPAN_ID.to_vec(),
                        ..Default::default()
                    },
                    LogRecord {
                        observed_time_unix_nano: T0 + 1_000_000_000,
                        severity_number: 5,
                        severity_text: "DEBUG".into(),
                        body: Some(AnyValue {
                            value: Some(basket),
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn number(v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: T0 - 60_000_000_000,
        time_unix_nano: T0,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

/// Checkout metrics: a counter, a histogram, a non-monotonic sum with no recorded value, a
/// summary, a delta sum (made cumulative), and one the conversion rejects (an exponential
/// histogram).
pub fn metrics_request() -> ExportMetricsServiceRequest {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let attrs = vec![kv("payment.method", "card"), kv("store.id", "1042")];
    let metrics = vec![
        metric(
            "pos.checkout.transactions",
            "{transactions}",
            Data::Sum(Sum {
                data_points: vec![number(17.0, attrs.clone())],
                aggregation_temporality: cumulative,
                is_monotonic: true,
            }),
        ),
        metric(
            "pos.checkout.duration",
            "s",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attrs.clone(),
                    time_unix_nano: T0,
                    count: 8,
                    sum: Some(2.4),
                    bucket_counts: vec![2, 5, 1],
                    explicit_bounds: vec![0.1, 0.5],
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
        ),
        metric(
            "pos.till.open_baskets",
            "{baskets}",
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    flags: 1,
                    ..number(0.0, vec![])
                }],
                aggregation_temporality: cumulative,
                is_monotonic: false,
            }),
        ),
        metric(
            "pos.receipt.print",
            "s",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T0,
                    count: 30,
                    sum: 9.0,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.3,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 0.8,
                        },
                    ],
                    ..Default::default()
                }],
            }),
        ),
        metric(
            "pos.scanner.reads",
            "{reads}",
            Data::Sum(Sum {
                data_points: vec![number(3.0, vec![])],
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
            }),
        ),
        metric(
            "pos.basket.size",
            "{items}",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: T0,
                    count: 1,
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
        ),
        metric(
            "pos.cash_drawer.float",
            "{EUR}",
            Data::Gauge(Gauge {
                data_points: vec![number(250.0, vec![])],
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A checkout trace: the server span and a payment client span.
pub fn traces_request() -> ExportTraceServiceRequest {
    let span = |id: [u8; 8], parent: Vec<u8>, name: &str, kind: span::SpanKind, ms: u64| Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent,
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + ms * 1_000_000,
        attributes: vec![kv("store.id", "1042")],
        status: Some(Status {
            code: status::StatusCode::Ok as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: vec![
                    span(
                        SPAN_ID,
                        vec![],
                        "POST /checkout",
                        span::SpanKind::Server,
                        240,
                    ),
                    span(
                        [1, 2, 3, 4, 5, 6, 7, 8],
                        SPAN_ID.to_vec(),
                        "payment.authorize",
                        span::SpanKind::Client,
                        180,
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
