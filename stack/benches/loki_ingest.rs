//! In-process ingest throughput of the embedded Loki: entries/s and MB/s of log lines through
//! `Loki::ingest` (validation, label parsing, in-order append, eviction at the bound).

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stack::embedded::loki::{Loki, LokiConfig};
use wire::loki::{Entry, PushRequest, Stream};

const STREAMS: usize = 10;
const ENTRIES: usize = 100;
const LINE: &str = "level=info ts=2024-01-01T00:00:00Z caller=main.go:42 msg=\"request served\" status=200 duration=12.3ms path=/api/v1/items";

/// A push of `STREAMS` streams of `ENTRIES` in-order entries each, starting at `*ts`.
fn push(ts: &Cell<i64>) -> PushRequest {
    let start = ts.get();
    ts.set(start + ENTRIES as i64);
    PushRequest {
        streams: (0..STREAMS)
            .map(|s| Stream {
                labels: format!(r#"{{job="bench", instance="host-{s}", level="info"}}"#),
                entries: (0..ENTRIES)
                    .map(|i| Entry::new(start + i as i64, LINE))
                    .collect(),
                hash: 0,
            })
            .collect(),
    }
}

fn ingest(c: &mut Criterion) {
    let entries = (STREAMS * ENTRIES) as u64;
    let mut group = c.benchmark_group("loki_ingest");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for (name, throughput) in [
        ("entries", Throughput::Elements(entries)),
        ("line_bytes", Throughput::Bytes(entries * LINE.len() as u64)),
    ] {
        let loki = Loki::new(LokiConfig {
            retention_bytes: 64 << 20,
            ..LokiConfig::default()
        });
        // A day ago, advancing 1 µs per entry: inside Loki's accepted window for the whole run.
        let day_ago = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - 86_400_000_000_000;
        let ts = Cell::new(day_ago);
        group.throughput(throughput);
        group.bench_function(name, |b| {
            b.iter_batched(
                || push(&ts),
                |req| black_box(loki.ingest("bench", req)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
