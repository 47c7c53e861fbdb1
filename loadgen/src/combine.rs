//! Combining `results.json` files: [`merge`] adds shards of one run into one result (counts
//! summed, histograms merged exactly, intervals aligned by time), [`compare`] prints per-signal
//! deltas between a baseline and a new run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reports::histogram::{HistogramData, HistogramError};
use reports::html::{fmt_f, loss_fraction, to_ms};
use reports::results::{Interval, SignalResults, Verification};
use reports::{Results, SCHEMA_VERSION};

use crate::run::Slo;

/// Why results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("{what}: {source}")]
    Histogram {
        what: String,
        #[source]
        source: HistogramError,
    },
}

fn merge_hist(
    what: &str,
    a: &HistogramData,
    b: &HistogramData,
) -> Result<HistogramData, MergeError> {
    a.merge(b).map_err(|source| MergeError::Histogram {
        what: what.to_string(),
        source,
    })
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn merge_verification(
    a: &Verification,
    b: &Verification,
    what: &str,
) -> Result<Verification, MergeError> {
    Ok(Verification {
        canaries: a.canaries + b.canaries,
        found: a.found + b.found,
        lost: a.lost + b.lost,
        duplicated: a.duplicated + b.duplicated,
        out_of_order: a.out_of_order + b.out_of_order,
        write_to_query_latency: merge_hist(
            what,
            &a.write_to_query_latency,
            &b.write_to_query_latency,
        )?,
    })
}

fn merge_signal(
    name: &str,
    a: &SignalResults,
    b: &SignalResults,
) -> Result<SignalResults, MergeError> {
    let mut errors = a.errors.clone();
    add_counts(&mut errors, &b.errors);
    Ok(SignalResults {
        sent: a.sent + b.sent,
        acknowledged: a.acknowledged + b.acknowledged,
        errors,
        send_latency: merge_hist(
            &format!("{name} send latency"),
            &a.send_latency,
            &b.send_latency,
        )?,
        verification: merge_verification(
            &a.verification,
            &b.verification,
            &format!("{name} write-to-query latency"),
        )?,
        items_per_second: a.items_per_second + b.items_per_second,
    })
}

/// Interval start in ms, the key intervals are aligned on.
fn interval_key(t_s: f64) -> i64 {
    (t_s * 1000.0).round() as i64
}

fn merge_into(acc: &mut Results, r: &Results) -> Result<(), MergeError> {
    acc.run.devices += r.run.devices;
    acc.run.duration_s = acc.run.duration_s.max(r.run.duration_s);
    acc.run.shards_merged += r.run.shards_merged.max(1);
    add_counts(&mut acc.fleet.by_type, &r.fleet.by_type);
    add_counts(&mut acc.fleet.by_region, &r.fleet.by_region);
    acc.fleet.stores += r.fleet.stores;
    acc.fleet.problem_devices += r.fleet.problem_devices;

    for (name, s) in &r.signals {
        let merged = match acc.signals.get(name) {
            Some(a) => merge_signal(name, a, s)?,
            None => s.clone(),
        };
        acc.signals.insert(name.clone(), merged);
    }

    let mut by_t: BTreeMap<i64, Interval> = std::mem::take(&mut acc.intervals)
        .into_iter()
        .map(|i| (interval_key(i.t_s), i))
        .collect();
    for i in &r.intervals {
        match by_t.get_mut(&interval_key(i.t_s)) {
            Some(a) => {
                add_counts(&mut a.sent, &i.sent);
                add_counts(&mut a.errors, &i.errors);
                a.send_latency =
                    merge_hist("interval send latency", &a.send_latency, &i.send_latency)?;
            }
            None => {
                by_t.insert(interval_key(i.t_s), i.clone());
            }
        }
    }
    acc.intervals = by_t.into_values().collect();

    for b in &r.breakdown {
        match acc
            .breakdown
            .iter_mut()
            .find(|a| a.device_type == b.device_type && a.region == b.region)
        {
            Some(a) => {
                a.devices += b.devices;
                a.errors += b.errors;
                add_counts(&mut a.sent, &b.sent);
            }
            None => acc.breakdown.push(b.clone()),
        }
    }
    acc.resources.extend(r.resources.iter().cloned());
    Ok(())
}

/// The sum of several results (shards of one run). The SLOs of the first are checked again on
/// the sum.
pub fn merge(all: &[Results]) -> Result<Results, MergeError> {
    let (first, rest) = all.split_first().ok_or(MergeError::Empty)?;
    let mut acc = first.clone();
    acc.schema_version = SCHEMA_VERSION;
    acc.run.shard = None;
    acc.run.shards_merged = first.run.shards_merged.max(1);
    for r in rest {
        merge_into(&mut acc, r)?;
    }
    acc.run.id = format!("{}-merged{}", first.run.id, acc.run.shards_merged);
    acc.breakdown
        .sort_by(|a, b| (&a.device_type, &a.region).cmp(&(&b.device_type, &b.region)));
    acc.resources.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let slos: Vec<Slo> = first
        .slos
        .iter()
        .filter_map(|v| format!("{}={}", v.name, v.threshold).parse().ok())
        .collect();
    acc.slos = slos.iter().map(|s| s.check(&acc)).collect();
    Ok(acc)
}

fn delta(base: f64, new: f64) -> String {
    if base == 0.0 {
        "n/a".into()
    } else {
        format!("{:+.1}%", (new - base) / base * 100.0)
    }
}

/// Per-signal deltas of `new` against `base`, as printable text.
pub fn compare(base: &Results, new: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "base {}  new {}", base.run.id, new.run.id);
    let _ = writeln!(
        out,
        "{:<8} {:<22} {:>14} {:>14} {:>9}",
        "signal", "figure", "base", "new", "delta"
    );
    let names: std::collections::BTreeSet<&String> =
        base.signals.keys().chain(new.signals.keys()).collect();
    for name in names {
        let figures = |r: &Results| -> [f64; 5] {
            r.signals.get(name).map_or([0.0; 5], |s| {
                let w = &s.verification.write_to_query_latency;
                [
                    s.items_per_second,
                    loss_fraction(&s.verification).unwrap_or(0.0) * 100.0,
                    to_ms(s.send_latency.p50 as f64, &s.send_latency.unit),
                    to_ms(s.send_latency.p99 as f64, &s.send_latency.unit),
                    to_ms(w.p99 as f64, &w.unit),
                ]
            })
        };
        let (b, n) = (figures(base), figures(new));
        let labels = [
            "items/s",
            "loss %",
            "p50 send ms",
            "p99 send ms",
            "p99 write-to-query ms",
        ];
        for ((label, b), n) in labels.iter().zip(b).zip(n) {
            let _ = writeln!(
                out,
                "{name:<8} {label:<22} {:>14} {:>14} {:>9}",
                fmt_f(b),
                fmt_f(n),
                delta(b, n)
            );
        }
    }
    out
}
