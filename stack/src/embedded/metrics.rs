//! Self-metrics of the embedded servers, rendered in the Prometheus text format on each server's
//! own `/metrics` (as the real Loki, Mimir and Tempo each expose theirs).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Writes one metric family of a single sample with optional labels.
pub fn write_metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    labels: &[(&str, &str)],
    value: f64,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    write_sample(out, name, labels, value);
}

/// Writes one sample line (no HELP/TYPE), for families with several label sets.
pub fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push('=');
            wire::labels::write_quoted(out, v);
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// The `Content-Type` of the text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
