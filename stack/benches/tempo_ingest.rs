//! In-process span ingest of the embedded Tempo, in spans per second: validation, split by trace
//! and store (with eviction once `retention_bytes` is reached), with and without protobuf
//! decoding. Short measurement times: this is a regression signal, not a benchmark report.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message as _;
use stack::embedded::tempo::{Tempo, TempoConfig};
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use wire::otlp::{Encoding, ExportTraceServiceRequest};

const TRACES: u64 = 10;
const SPANS_PER_TRACE: u64 = 10;

fn attr(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One export of `TRACES` traces of `SPANS_PER_TRACE` spans; `batch` makes the ids unique.
fn export(batch: u64) -> ExportTraceServiceRequest {
    let spans = (0..TRACES * SPANS_PER_TRACE)
        .map(|i| {
            let trace = batch * TRACES + i % TRACES + 1;
            let mut trace_id = [0u8; 16];
            trace_id[8..].copy_from_slice(&trace.to_be_bytes());
            let start = 1_700_000_000_000_000_000 + i * 1_000_000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i + 1).to_be_bytes().to_vec(),
                parent_span_id: if i < TRACES {
                    vec![]
                } else {
                    (i % TRACES + 1).to_be_bytes().to_vec()
                },
                name: format!("op-{}", i % 7),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 5_000_000,
                attributes: vec![attr("http.method", "GET"), attr("http.route", "/api/items")],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "bench")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("tempo_ingest");
    group
        .throughput(Throughput::Elements(TRACES * SPANS_PER_TRACE))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);

    let tempo = Tempo::new(TempoConfig {
        retention_bytes: 16 << 20,
        ..TempoConfig::default()
    });
    let mut batch = 0;
    group.bench_function("spans", |b| {
        b.iter_batched(
            || {
                batch += 1;
                export(batch)
            },
            |req| black_box(tempo.ingest("bench", req)),
            BatchSize::SmallInput,
        )
    });

    let body = export(0).encode_to_vec();
    group.bench_function("decode_protobuf_and_spans", |b| {
        b.iter(|| {
            let req: ExportTraceServiceRequest =
                wire::otlp::decode(black_box(&body), Encoding::Protobuf).unwrap_or_default();
            black_box(tempo.ingest("bench", req))
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
