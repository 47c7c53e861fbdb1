//! The OTLP/JSON example payloads of the opentelemetry-proto repository (`examples/trace.json`,
//! `logs.json`, `metrics.json`, copied into `testkit/fixtures/otlp/` from the proto sources vendored in
//! opentelemetry-proto 0.33) decode to what they say, and survive JSON and protobuf round trips.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use wire::otlp::proto::common::v1::any_value::Value as AnyV;
use wire::otlp::proto::metrics::v1::{metric::Data, number_data_point};
use wire::otlp::{
    Encoding, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    OtlpMessage, decode, encode, span_id_to_hex, trace_id_to_hex,
};

fn fixture(name: &str) -> Vec<u8> {
    testkit::fixtures::read(&format!("otlp/{name}"))
}

/// JSON -> message -> JSON -> message and message -> protobuf -> message give the same message,
/// and our JSON has no nulls.
fn round_trips<M: OtlpMessage + PartialEq + std::fmt::Debug>(m: &M) {
    let json = encode(m, Encoding::Json).unwrap();
    assert!(
        !String::from_utf8_lossy(&json).contains("null"),
        "nulls in {}",
        String::from_utf8_lossy(&json)
    );
    assert_eq!(&decode::<M>(&json, Encoding::Json).unwrap(), m);
    let pb = encode(m, Encoding::Protobuf).unwrap();
    assert_eq!(&decode::<M>(&pb, Encoding::Protobuf).unwrap(), m);
}

#[test]
fn trace_example() {
    let req: ExportTraceServiceRequest = decode(&fixture("trace.json"), Encoding::Json).unwrap();
    let rs = &req.resource_spans[0];
    let attr = &rs.resource.as_ref().unwrap().attributes[0];
    assert_eq!(attr.key, "service.name");
    assert_eq!(
        attr.value.as_ref().unwrap().value,
        Some(AnyV::StringValue("my.service".into()))
    );
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "my.library");
    assert_eq!(ss.scope.as_ref().unwrap().version, "1.0.0");
    let span = &ss.spans[0];
    // The example writes ids in upper case; they are bytes, printed back in lower case.
    assert_eq!(
        trace_id_to_hex(&span.trace_id),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(span_id_to_hex(&span.span_id), "eee19b7ec3c1b174");
    assert_eq!(span_id_to_hex(&span.parent_span_id), "eee19b7ec3c1b173");
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.attributes[0].key, "my.span.attr");
    round_trips(&req);

    let ours: serde_json::Value =
        serde_json::from_slice(&encode(&req, Encoding::Json).unwrap()).unwrap();
    let s = &ours["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(s["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(s["startTimeUnixNano"], "1544712660000000000");
    assert_eq!(s["kind"], 2);
    assert!(s.get("status").is_none());
}

#[test]
fn logs_example() {
    let req: ExportLogsServiceRequest = decode(&fixture("logs.json"), Encoding::Json).unwrap();
    let rec = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(rec.time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(rec.observed_time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(rec.severity_number, 10);
    assert_eq!(rec.severity_text, "Information");
    assert_eq!(
        trace_id_to_hex(&rec.trace_id),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(
        rec.body.as_ref().unwrap().value,
        Some(AnyV::StringValue("Example log record".into()))
    );
    let attr = |k: &str| {
        rec.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    assert_eq!(
        attr("string.attribute"),
        Some(AnyV::StringValue("some string".into()))
    );
    assert_eq!(attr("boolean.attribute"), Some(AnyV::BoolValue(true)));
    assert_eq!(attr("int.attribute"), Some(AnyV::IntValue(10)));
    assert_eq!(attr("double.attribute"), Some(AnyV::DoubleValue(637.704)));
    let Some(AnyV::ArrayValue(arr)) = attr("array.attribute") else {
        panic!("array attribute")
    };
    assert_eq!(
        arr.values
            .iter()
            .map(|v| v.value.clone())
            .collect::<Vec<_>>(),
        vec![
            Some(AnyV::StringValue("many".into())),
            Some(AnyV::StringValue("values".into()))
        ]
    );
    let Some(AnyV::KvlistValue(map)) = attr("map.attribute") else {
        panic!("map attribute")
    };
    assert_eq!(map.values[0].key, "some.map.key");
    round_trips(&req);
}

#[test]
fn metrics_example() {
    let req: ExportMetricsServiceRequest =
        decode(&fixture("metrics.json"), Encoding::Json).unwrap();
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "my.counter",
            "my.gauge",
            "my.histogram",
            "my.exponential.histogram"
        ]
    );
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!("sum")
    };
    assert_eq!(sum.aggregation_temporality, 1);
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsDouble(5.0))
    );
    assert_eq!(
        sum.data_points[0].start_time_unix_nano,
        1_544_712_660_300_000_000
    );
    let Some(Data::Gauge(g)) = &metrics[1].data else {
        panic!("gauge")
    };
    assert_eq!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsDouble(10.0))
    );
    let Some(Data::Histogram(h)) = &metrics[2].data else {
        panic!("histogram")
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (2, Some(2.0), Some(0.0), Some(2.0))
    );
    assert_eq!(p.bucket_counts, vec![1, 1]);
    assert_eq!(p.explicit_bounds, vec![1.0]);
    let Some(Data::ExponentialHistogram(e)) = &metrics[3].data else {
        panic!("exponential histogram")
    };
    let p = &e.data_points[0];
    assert_eq!((p.count, p.zero_count, p.scale), (3, 1, 0));
    let pos = p.positive.as_ref().unwrap();
    assert_eq!((pos.offset, pos.bucket_counts.clone()), (1, vec![0, 2]));
    round_trips(&req);
}
