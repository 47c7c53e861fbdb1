//! The fixed inputs of `collector bench`, generated from a seed so every run (and every
//! machine) pushes the same bytes: the shapes issue 12 measured the collector, Fluent Bit and
//! Vector with.
//!
//! - logs: JSON lines of about 150 bytes (a POS terminal's transaction log), spread over
//!   [`LOG_FILES`] files, tailed from the beginning;
//! - metrics: remote-write requests of [`SAMPLES_PER_REQUEST`] samples, one per series, with
//!   node_exporter-like label sets (snappy protobuf, as Prometheus sends them);
//! - traces: OTLP/HTTP protobuf requests of [`SPANS_PER_REQUEST`] spans (the SDK's batch size),
//!   in traces of 8 spans.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use wire::otlp::ExportTraceServiceRequest;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest};

/// Files the log corpus is spread over.
pub const LOG_FILES: usize = 20;
/// Samples in one remote-write request (Prometheus' `max_samples_per_send` default is 2000).
pub const SAMPLES_PER_REQUEST: usize = 2000;
/// Spans in one OTLP request (the SDKs' `max_export_batch_size` default).
pub const SPANS_PER_REQUEST: usize = 512;

const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];
const EVENTS: [&str; 5] = [
    "transaction completed",
    "card reader timeout",
    "receipt printed",
    "price lookup",
    "drawer opened",
];

/// Writes `lines` JSON log lines into [`LOG_FILES`] files under `dir`; returns the paths and
/// the bytes written.
pub fn write_logs(dir: &Path, lines: u64, seed: u64) -> std::io::Result<(Vec<PathBuf>, u64)> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut paths = Vec::with_capacity(LOG_FILES);
    let mut bytes = 0;
    for f in 0..LOG_FILES {
        let path = dir.join(format!("pos-{f:02}.log"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let n = lines / LOG_FILES as u64 + u64::from((f as u64) < lines % LOG_FILES as u64);
        let mut line = String::with_capacity(256);
        for i in 0..n {
            line.clear();
            use std::fmt::Write as _;
            let _ = writeln!(
                line,
                r#"{{"ts":"2026-12-03T10:{:02}:{:02}.{:06}Z","level":"{}","device":"pos-{f:03}","store":"store-{:03}","msg":"{}","txn":"{:012x}","amount":{}.{:02},"ms":{}}}"#,
                (i / 60_000) % 60,
                (i / 1000) % 60,
                (i % 1000) * 1000,
                LEVELS[rng.random_range(0..LEVELS.len())],
                rng.random_range(0..200),
                EVENTS[rng.random_range(0..EVENTS.len())],
                rng.random::<u64>() & 0xffff_ffff_ffff,
                rng.random_range(0..500),
                rng.random_range(0..100),
                rng.random_range(1..2000),
            );
            out.write_all(line.as_bytes())?;
            bytes += line.len() as u64;
        }
        out.flush()?;
        paths.push(path);
    }
    Ok((paths, bytes))
}

/// Remote-write bodies (snappy protobuf) holding `samples` samples in all.
pub fn remote_write_bodies(samples: u64, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bodies = Vec::new();
    let mut left = samples;
    let mut t = 1_764_756_000_000i64;
    while left > 0 {
        let n = left.min(SAMPLES_PER_REQUEST as u64) as usize;
        let timeseries = (0..n)
            .map(|i| {
                let mut labels = vec![
                    label("__name__", &format!("node_cpu_seconds_{}", i % 40)),
                    label("cpu", &(i % 8).to_string()),
                    label("device", &format!("pos-{:04}", i / 40)),
                    label(
                        "instance",
                        &format!("10.1.{}.{}:9100", i / 256 % 256, i % 256),
                    ),
                    label("job", "node"),
                    label("location", "store-017"),
                    label("mode", ["idle", "user", "system", "iowait"][i % 4]),
                    label("region", "eu-west"),
                ];
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                TimeSeries {
                    labels,
                    samples: vec![Sample {
                        value: rng.random_range(0.0..1e6),
                        timestamp: t,
                    }],
                    exemplars: Vec::new(),
                }
            })
            .collect();
        bodies.push(wire::remote_write::encode(&WriteRequest {
            timeseries,
            metadata: Vec::new(),
        }));
        left -= n as u64;
        t += 15_000;
    }
    bodies
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.into(),
        value: value.into(),
    }
}

/// OTLP/HTTP trace bodies (protobuf) holding `spans` spans in all.
pub fn trace_bodies(spans: u64, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bodies = Vec::new();
    let mut left = spans;
    let start = 1_764_756_000_000_000_000u64;
    while left > 0 {
        let n = left.min(SPANS_PER_REQUEST as u64) as usize;
        let mut trace_id = [0u8; 16];
        let spans = (0..n)
            .map(|i| {
                if i % 8 == 0 {
                    rng.fill(&mut trace_id);
                }
                let begin = start + rng.random_range(0..60_000_000_000u64);
                Span {
                    trace_id: trace_id.to_vec(),
                    span_id: rng.random::<u64>().to_be_bytes().to_vec(),
                    parent_span_id: if i % 8 == 0 {
                        Vec::new()
                    } else {
                        rng.random::<u64>().to_be_bytes().to_vec()
                    },
                    name: ["checkout", "scan item", "authorize card", "print receipt"][i % 4]
                        .into(),
                    kind: 2,
                    start_time_unix_nano: begin,
                    end_time_unix_nano: begin + rng.random_range(100_000..50_000_000u64),
                    attributes: vec![
                        kv("http.route", "/api/v1/checkout"),
                        kv("store", "store-017"),
                    ],
                    ..Default::default()
                }
            })
            .collect();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "pos-terminal"), kv("device", "pos-017")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        bodies.push(prost::Message::encode_to_vec(&req));
        left -= n as u64;
    }
    bodies
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpora_hold_exactly_the_items_asked_for() {
        let dir = std::env::temp_dir().join(format!("bench-corpus-{}", std::process::id()));
        let (paths, bytes) = write_logs(&dir, 1003, 1).expect("write");
        let lines: usize = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read").lines().count())
            .sum();
        assert_eq!(lines, 1003);
        assert!(
            (100..220).contains(&(bytes / 1003)),
            "{} B/line",
            bytes / 1003
        );
        let first = std::fs::read_to_string(&paths[0]).expect("read");
        let v: serde_json::Value =
            serde_json::from_str(first.lines().next().expect("a line")).expect("json");
        assert!(v["level"].is_string() && v["device"].is_string());
        std::fs::remove_dir_all(&dir).ok();

        let rw = remote_write_bodies(4001, 1);
        assert_eq!(rw.len(), 3);
        let n: usize = rw
            .iter()
            .map(|b| {
                wire::remote_write::decode(b, 1 << 30)
                    .expect("decodes")
                    .timeseries
                    .len()
            })
            .sum();
        assert_eq!(n, 4001);

        let tr = trace_bodies(1025, 1);
        let n: usize = tr
            .iter()
            .map(|b| {
                let r: ExportTraceServiceRequest =
                    prost::Message::decode(b.as_slice()).expect("decodes");
                r.resource_spans[0].scope_spans[0].spans.len()
            })
            .sum();
        assert_eq!(n, 1025);
        assert_eq!(
            remote_write_bodies(10, 7),
            remote_write_bodies(10, 7),
            "seeded"
        );
    }
}
