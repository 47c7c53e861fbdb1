//! Self-metrics of the embedded servers, served in the Prometheus text format on each server's
//! own `/metrics` (as the real Loki, Mimir and Tempo each expose theirs). Each server builds
//! [`MetricFamily`] values and writes them with [`wire::exposition::encode`].

use std::sync::atomic::{AtomicU64, Ordering};

use wire::exposition::{MetricFamily, MetricKind};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Families of one unlabelled sample each, from `(name, kind, help, value)`.
pub fn single_samples<'a>(
    rows: impl IntoIterator<Item = (&'a str, MetricKind, &'a str, f64)>,
) -> impl Iterator<Item = MetricFamily> {
    rows.into_iter().map(|(name, kind, help, value)| {
        MetricFamily::new(name, kind)
            .with_help(help)
            .with_sample(&[], value)
    })
}
