//! Throughput of the codecs on payloads shaped like real traffic: Loki pushes, remote-write
//! batches, OTLP trace exports, a node_exporter scrape page.
//!
//! Two groups run the same work: `bytes` reports MB/s of the uncompressed serialized payload
//! (protobuf before snappy, JSON text, exposition text), `elements` reports log entries, samples
//! or spans per second. Run with `cargo bench -p wire`.

// Bench code: payload construction cannot fail and a failure is a failed run.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

use wire::exposition;
use wire::loki::{self, Entry, LabelPair, PushRequest, Stream};
use wire::otlp::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use wire::otlp::{self, Encoding, ExportTraceServiceRequest};
use wire::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

const LIMIT: usize = 100 << 20;

/// 10 streams x 100 entries, ~120-byte logfmt lines, one metadata pair on every other entry.
fn loki_request() -> PushRequest {
    let base = 1_700_000_000_000_000_000i64;
    PushRequest {
        streams: (0..10)
            .map(|s| Stream {
                labels: format!(
                    r#"{{app="checkout", env="prod", instance="10.0.0.{s}:8080", job="checkout/api", namespace="shop"}}"#
                ),
                entries: (0..100)
                    .map(|i| {
                        let mut e = Entry::new(
                            base + i * 1_000_000,
                            format!(
                                "ts=2023-11-14T22:13:20.{i:03}Z level=info caller=server.go:{} msg=\"request served\" method=GET path=/api/v1/cart/{i} status=200 duration_ms={}",
                                100 + i,
                                i % 37
                            ),
                        );
                        if i % 2 == 0 {
                            e.structured_metadata.push(LabelPair {
                                name: "trace_id".into(),
                                value: format!("{:032x}", (s * 1000 + i) as u128 * 0x9e37_79b9),
                            });
                        }
                        e
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    }
}

/// 1000 series of one sample each with node_exporter-like labels.
fn rw_request() -> WriteRequest {
    WriteRequest {
        timeseries: (0..1000)
            .map(|i| TimeSeries {
                labels: vec![
                    Label::new("__name__", "node_network_receive_bytes_total"),
                    Label::new("device", format!("eth{}", i % 8)),
                    Label::new("instance", format!("node-{}.example.internal:9100", i / 8)),
                    Label::new("job", "node"),
                    Label::new("region", "eu-west-1"),
                ],
                samples: vec![Sample {
                    value: 1.2345e9 + i as f64,
                    timestamp: 1_700_000_000_000 + i,
                }],
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

/// 500 spans of one service, five attributes each.
fn trace_request() -> ExportTraceServiceRequest {
    let kv = |k: &str, v: any_value::Value| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv(
                        "service.name",
                        any_value::Value::StringValue("checkout".into()),
                    ),
                    kv("host.name", any_value::Value::StringValue("node-1".into())),
                ],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "1.30.0".into(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                spans: (0..500u64)
                    .map(|i| Span {
                        trace_id: (u128::from(i / 10) * 0x9e37_79b9_7f4a_7c15)
                            .to_be_bytes()
                            .to_vec(),
                        span_id: (i * 0x9e37_79b9 + 1).to_be_bytes().to_vec(),
                        parent_span_id: if i % 10 == 0 {
                            vec![]
                        } else {
                            (i - 1).to_be_bytes().to_vec()
                        },
                        name: format!("GET /api/v1/cart/{}", i % 50),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000_000,
                        end_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000_000 + 250_000,
                        attributes: vec![
                            kv("http.method", any_value::Value::StringValue("GET".into())),
                            kv(
                                "http.route",
                                any_value::Value::StringValue("/api/v1/cart/{id}".into()),
                            ),
                            kv("http.status_code", any_value::Value::IntValue(200)),
                            kv(
                                "net.peer.port",
                                any_value::Value::IntValue(40_000 + i as i64),
                            ),
                            kv("sampled.ratio", any_value::Value::DoubleValue(0.25)),
                        ],
                        status: Some(Status {
                            message: String::new(),
                            code: 1,
                        }),
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A node_exporter-like page: Go runtime summary, CPU seconds per cpu x mode, filesystem and
/// network gauges/counters per device, a histogram: 951 samples, 64 KB.
fn node_page() -> String {
    let mut s = String::new();
    s.push_str("# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.\n# TYPE go_gc_duration_seconds summary\n");
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        let _ = writeln!(s, "go_gc_duration_seconds{{quantile=\"{q}\"}} 4.1e-05");
    }
    s.push_str("go_gc_duration_seconds_sum 0.012345\ngo_gc_duration_seconds_count 181\n");
    s.push_str("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n");
    for cpu in 0..64 {
        for mode in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            let _ = writeln!(
                s,
                "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{:02}",
                86_000 + cpu * 13,
                cpu % 100
            );
        }
    }
    for (metric, kind) in [
        ("node_filesystem_avail_bytes", "gauge"),
        ("node_filesystem_size_bytes", "gauge"),
        ("node_filesystem_files_free", "gauge"),
    ] {
        let _ = writeln!(
            s,
            "# HELP {metric} Filesystem statistic.\n# TYPE {metric} {kind}"
        );
        for d in 0..40 {
            let _ = writeln!(
                s,
                "{metric}{{device=\"/dev/nvme0n1p{d}\",fstype=\"ext4\",mountpoint=\"/srv/data{d}\"}} {}e+10",
                1.0 + f64::from(d) / 7.0
            );
        }
    }
    for metric in [
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_network_receive_packets_total",
        "node_network_transmit_packets_total",
    ] {
        let _ = writeln!(
            s,
            "# HELP {metric} Network device statistic.\n# TYPE {metric} counter"
        );
        for d in 0..64 {
            let _ = writeln!(
                s,
                "{metric}{{device=\"veth{d:04x}\"}} {}",
                123_456_789 * (d + 1)
            );
        }
    }
    s.push_str("# HELP node_scrape_collector_duration_seconds A histogram.\n# TYPE node_scrape_collector_duration_seconds histogram\n");
    for c in [
        "cpu",
        "diskstats",
        "filesystem",
        "meminfo",
        "netdev",
        "netstat",
        "stat",
        "vmstat",
    ] {
        for (le, n) in [
            ("0.001", 1),
            ("0.01", 5),
            ("0.1", 9),
            ("1", 10),
            ("+Inf", 10),
        ] {
            let _ = writeln!(
                s,
                "node_scrape_collector_duration_seconds_bucket{{collector=\"{c}\",le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "node_scrape_collector_duration_seconds_sum{{collector=\"{c}\"}} 0.0731"
        );
        let _ = writeln!(
            s,
            "node_scrape_collector_duration_seconds_count{{collector=\"{c}\"}} 10"
        );
    }
    s
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// One codec benchmark: its name, payload size in bytes, element count, and the work.
struct Case {
    name: &'static str,
    bytes: u64,
    elements: u64,
    run: Box<dyn Fn()>,
}

fn cases() -> Vec<Case> {
    let loki_req = loki_request();
    let loki_entries = loki_req
        .streams
        .iter()
        .map(|s| s.entries.len() as u64)
        .sum();
    let loki_raw = prost::Message::encode_to_vec(&loki_req).len() as u64;
    let loki_pb = loki::encode_protobuf(&loki_req);
    let loki_json = loki::encode_json(&loki_req).unwrap();

    let rw_req = rw_request();
    let rw_samples = rw_req.timeseries.len() as u64;
    let rw_raw = prost::Message::encode_to_vec(&rw_req).len() as u64;
    let rw_body = remote_write::encode(&rw_req);

    let tr = trace_request();
    let spans = tr.resource_spans[0].scope_spans[0].spans.len() as u64;
    let tr_pb = otlp::encode(&tr, Encoding::Protobuf).unwrap();
    let tr_json = otlp::encode(&tr, Encoding::Json).unwrap();

    let page = node_page();
    let page_samples = exposition::parse(&page)
        .unwrap()
        .iter()
        .map(|f| f.samples.len() as u64)
        .sum();

    vec![
        Case {
            name: "loki_protobuf_snappy_encode",
            bytes: loki_raw,
            elements: loki_entries,
            run: Box::new(move || {
                black_box(loki::encode_protobuf(black_box(&loki_req)));
            }),
        },
        Case {
            name: "loki_protobuf_snappy_decode",
            bytes: loki_raw,
            elements: loki_entries,
            run: Box::new(move || {
                black_box(loki::decode_protobuf(black_box(&loki_pb), LIMIT).unwrap());
            }),
        },
        Case {
            name: "loki_json_decode",
            bytes: loki_json.len() as u64,
            elements: loki_entries,
            run: Box::new(move || {
                black_box(loki::decode_json(black_box(&loki_json)).unwrap());
            }),
        },
        Case {
            name: "remote_write_encode",
            bytes: rw_raw,
            elements: rw_samples,
            run: Box::new(move || {
                black_box(remote_write::encode(black_box(&rw_req)));
            }),
        },
        Case {
            name: "remote_write_decode",
            bytes: rw_raw,
            elements: rw_samples,
            run: Box::new(move || {
                black_box(remote_write::decode(black_box(&rw_body), LIMIT).unwrap());
            }),
        },
        Case {
            name: "otlp_traces_protobuf_decode",
            bytes: tr_pb.len() as u64,
            elements: spans,
            run: Box::new(move || {
                black_box(
                    otlp::decode::<ExportTraceServiceRequest>(
                        black_box(&tr_pb),
                        Encoding::Protobuf,
                    )
                    .unwrap(),
                );
            }),
        },
        Case {
            name: "otlp_traces_json_decode",
            bytes: tr_json.len() as u64,
            elements: spans,
            run: Box::new(move || {
                black_box(
                    otlp::decode::<ExportTraceServiceRequest>(black_box(&tr_json), Encoding::Json)
                        .unwrap(),
                );
            }),
        },
        Case {
            name: "exposition_parse_node_exporter",
            bytes: page.len() as u64,
            elements: page_samples,
            run: Box::new(move || {
                black_box(exposition::parse(black_box(&page)).unwrap());
            }),
        },
    ]
}

fn configure(g: &mut Group<'_>) {
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
}

fn codecs(c: &mut Criterion) {
    let cases = cases();
    for (group, per_element) in [("bytes", false), ("elements", true)] {
        let mut g = c.benchmark_group(group);
        configure(&mut g);
        for case in &cases {
            g.throughput(if per_element {
                Throughput::Elements(case.elements)
            } else {
                Throughput::Bytes(case.bytes)
            });
            g.bench_function(case.name, |b| b.iter(|| (case.run)()));
        }
        g.finish();
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);
