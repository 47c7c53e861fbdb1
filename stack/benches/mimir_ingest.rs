//! In-process ingest throughput of the embedded Mimir (samples/s): remote-write bodies of 100
//! series × 100 samples decoded, validated and appended, plus one PromQL range query over the
//! result. Short measurement times: this is a smoke benchmark for a shared machine.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stack::embedded::mimir::write::{SeriesSpec, encode_series};
use stack::embedded::mimir::{Mimir, MimirConfig};

const SERIES: usize = 100;
const SAMPLES: i64 = 100;

fn body(batch: i64, names: &[String]) -> Vec<u8> {
    let base = 1_700_000_000_000 + batch * SAMPLES * 1000;
    let series: Vec<SeriesSpec<'_>> = names
        .iter()
        .map(|n| {
            (
                vec![
                    ("__name__", "bench_metric"),
                    ("instance", n.as_str()),
                    ("job", "bench"),
                ],
                (0..SAMPLES).map(|i| (base + i * 1000, i as f64)).collect(),
            )
        })
        .collect();
    encode_series(&series)
}

fn ingest(c: &mut Criterion) {
    let names: Vec<String> = (0..SERIES).map(|i| format!("i{i}")).collect();
    let mut g = c.benchmark_group("mimir_ingest");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_millis(500));
    g.sample_size(20);
    g.throughput(Throughput::Elements(SERIES as u64 * SAMPLES as u64));
    let m = Mimir::new(MimirConfig::default());
    let mut batch = 0;
    g.bench_function("push_100x100", |b| {
        b.iter_batched(
            || {
                batch += 1;
                body(batch, &names)
            },
            |body| {
                let out = m.ingest("anonymous", &body);
                assert!(out.error.is_none());
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
