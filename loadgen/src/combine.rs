//! Combining `results.json` files: [`merge`] adds shards of one run into one result (counts
//! summed, histograms merged exactly, intervals aligned by time), [`compare`] prints per-signal
//! deltas between a baseline and a new run.
//!
//! Before adding, [`merge`] checks the inputs are shards of one run: all shards or none, the
//! same seed, shard count and rate, distinct indexes, and device counts that fit one fleet
//! (shard `i` of `n` of an `N`-device fleet has `ceil((N - i) / n)` devices). A partial set
//! is merged with a warning; results that are not shards are added as they are, with a warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reports::histogram::{HistogramData, HistogramError};
use reports::html::{fmt_f, loss_fraction, to_ms};
use reports::results::{Interval, SignalResults, Verification};
use reports::{Results, SCHEMA_VERSION};

use reports::verdict::Objectives;

/// Why results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    /// Two inputs are not shards of one run.
    #[error("{a} and {b} are not shards of the same run: {why}")]
    NotSameRun { a: String, b: String, why: String },
    /// Some inputs are shards, some are not.
    #[error("{shard} is a shard but {whole} is not: merge shards of one run only")]
    Mixed { shard: String, whole: String },
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
        query_errors: a.query_errors + b.query_errors,
        last_query_error: b
            .last_query_error
            .clone()
            .or_else(|| a.last_query_error.clone()),
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
        target_items_per_second: a.target_items_per_second + b.target_items_per_second,
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
    // A store's devices spread over the shards: the largest shard count is the best bound.
    acc.fleet.stores = acc.fleet.stores.max(r.fleet.stores);
    acc.fleet.problem_devices += r.fleet.problem_devices;
    let (d, e) = (&mut acc.fleet.dynamics, &r.fleet.dynamics);
    d.churn_per_min = d.churn_per_min.max(e.churn_per_min);
    d.offline_share = d.offline_share.max(e.offline_share);
    d.offline_from_s = d.offline_from_s.max(e.offline_from_s);
    d.offline_for_s = d.offline_for_s.max(e.offline_for_s);
    d.replaced += e.replaced;
    d.offline_devices += e.offline_devices;
    d.backfilled_items += e.backfilled_items;
    d.backfill_dropped += e.backfill_dropped;

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
                add_counts(&mut a.scheduled, &i.scheduled);
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

/// The fleet sizes `N` (inclusive range) for which shard `[i, n]` has `devices` devices.
fn fleet_sizes(devices: u64, [i, n]: [u32; 2]) -> (u64, u64) {
    let (i, n) = (u64::from(i), u64::from(n));
    let lo = if devices == 0 {
        0
    } else {
        (devices - 1).saturating_mul(n).saturating_add(i + 1)
    };
    (lo, devices.saturating_mul(n).saturating_add(i))
}

/// Checks `all` are shards of one run (see the module docs); warns about a partial set.
fn check_shards(all: &[Results]) -> Result<(), MergeError> {
    let shards: Vec<(&Results, [u32; 2])> = all
        .iter()
        .filter_map(|r| r.run.shard.map(|s| (r, s)))
        .collect();
    let Some(&(first, [_, n])) = shards.first() else {
        tracing::warn!("none of the inputs is a shard result; adding them as they are");
        return Ok(());
    };
    if let Some(whole) = all.iter().find(|r| r.run.shard.is_none()) {
        return Err(MergeError::Mixed {
            shard: first.run.id.clone(),
            whole: whole.run.id.clone(),
        });
    }
    let mut seen = BTreeMap::new();
    let mut sizes = (0, u64::MAX);
    for &(r, shard) in &shards {
        let differ = |why: String| MergeError::NotSameRun {
            a: first.run.id.clone(),
            b: r.run.id.clone(),
            why,
        };
        if r.run.seed != first.run.seed {
            return Err(differ(format!(
                "seeds {} and {}",
                first.run.seed, r.run.seed
            )));
        }
        if shard[1] != n {
            return Err(differ(format!("{n} and {} shards", shard[1])));
        }
        if r.run.rate_multiplier != first.run.rate_multiplier {
            return Err(differ(format!(
                "rate multipliers {} and {}",
                first.run.rate_multiplier, r.run.rate_multiplier
            )));
        }
        if let Some(other) = seen.insert(shard[0], &r.run.id) {
            return Err(MergeError::NotSameRun {
                a: other.clone(),
                b: r.run.id.clone(),
                why: format!("both are shard {}/{n}", shard[0]),
            });
        }
        let (lo, hi) = fleet_sizes(r.run.devices, shard);
        sizes = (sizes.0.max(lo), sizes.1.min(hi));
        if sizes.0 > sizes.1 {
            return Err(differ(format!(
                "their device counts ({} in shard {}/{n}) do not fit one fleet",
                r.run.devices, shard[0]
            )));
        }
    }
    if seen.len() < n as usize {
        let missing: Vec<String> = (0..n)
            .filter(|i| !seen.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        tracing::warn!(
            missing = %missing.join(","),
            "merging {} of {n} shards: the result covers part of the fleet",
            seen.len()
        );
    }
    Ok(())
}

/// `id` less a trailing `-shard<i>of<n>` (the default run folder of a shard).
fn run_id_of_shard(id: &str, shard: Option<[u32; 2]>) -> &str {
    shard
        .and_then(|[i, n]| id.strip_suffix(&format!("-shard{i}of{n}")))
        .unwrap_or(id)
}

/// The sum of several results (shards of one run, checked as the module docs say). The SLOs
/// of the first are checked again on the sum.
pub fn merge(all: &[Results]) -> Result<Results, MergeError> {
    let (first, rest) = all.split_first().ok_or(MergeError::Empty)?;
    check_shards(all)?;
    let mut acc = first.clone();
    acc.schema_version = SCHEMA_VERSION;
    acc.run.shard = None;
    acc.run.shards_merged = first.run.shards_merged.max(1);
    for r in rest {
        merge_into(&mut acc, r)?;
    }
    acc.run.id = format!(
        "{}-merged{}",
        run_id_of_shard(&first.run.id, first.run.shard),
        acc.run.shards_merged
    );
    acc.breakdown
        .sort_by(|a, b| (&a.device_type, &a.region).cmp(&(&b.device_type, &b.region)));
    acc.resources.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Objectives::of(first).judge(&mut acc);
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
