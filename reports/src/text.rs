//! The plain-text summary the CLI prints after a run: one table row per signal (items/s, items
//! the target refused, canary loss, p50/p99 send latency, p50/p99 write-to-query latency), the
//! refusals by status, pacing, requests/s and bytes/s per signal, the write-to-query resolution
//! (the verifier's poll interval), the read path under load (`--viewers`: query latency per kind,
//! right after the write-latency rows), and the SLO verdicts. The first line is the verdict with its
//! reasons ([`crate::verdict`]), repeated as the last (`overall: ...`). Refused items are shown
//! beside the loss so that a target answering 429 or 500 never reads as "0 loss".

use std::fmt::Write as _;

use crate::histogram::HistogramData;
use crate::html::{fmt_bytes, fmt_f, fmt_ms, fmt_pct, measured_s};
use crate::results::Results;

/// The summary as printable text (ends with a newline).
pub fn summary(results: &Results) -> String {
    let mut out = String::new();
    let verdict = results.verdict();
    let _ = writeln!(out, "{}", verdict.headline());
    let run = &results.run;
    let _ = writeln!(
        out,
        "run {}  started {}  {} s  {} devices  seed {}  target {}",
        run.id,
        run.started_at,
        fmt_f(run.duration_s),
        run.devices,
        run.seed,
        run.target
    );
    let name_w = results
        .signals
        .keys()
        .map(|k| k.chars().count())
        .chain([6])
        .max()
        .unwrap_or(6);
    let _ = writeln!(
        out,
        "{:<name_w$}  {:>12}  {:>9}  {:>9}  {:>11}  {:>11}  {:>11}  {:>11}",
        "signal", "items/s", "refused", "loss", "p50 send", "p99 send", "p50 w2q", "p99 w2q"
    );
    if results.signals.is_empty() {
        let _ = writeln!(out, "(no signals)");
    }
    let lat = |h: &HistogramData, v: u64| {
        if h.count > 0 {
            fmt_ms(v, &h.unit)
        } else {
            "–".to_string()
        }
    };
    for (name, s) in &results.signals {
        let (send, w2q) = (&s.send_latency, &s.verification.write_to_query_latency);
        let refused = s.errors.values().fold(0u64, |a, b| a.saturating_add(*b));
        let refused_frac = if s.sent > 0 {
            Some(refused as f64 / s.sent as f64)
        } else {
            None
        };
        let _ = writeln!(
            out,
            "{:<name_w$}  {:>12}  {:>9}  {:>9}  {:>11}  {:>11}  {:>11}  {:>11}",
            name,
            fmt_f(s.items_per_second),
            fmt_pct(refused_frac),
            fmt_pct(s.verification.loss_fraction()),
            lat(send, send.p50),
            lat(send, send.p99),
            lat(w2q, w2q.p50),
            lat(w2q, w2q.p99),
        );
    }
    if let Some(rp) = &results.read_path {
        read_path_lines(&mut out, rp);
    }
    for (name, s) in &results.signals {
        if !s.errors.is_empty() {
            let by: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(out, "refused {name} items by status: {}", by.join(", "));
        }
    }
    for (name, s) in &results.signals {
        if s.target_items_per_second <= 0.0 {
            continue;
        }
        if let Some(peak) = peak_rate(results, name) {
            let _ = writeln!(
                out,
                "pacing {name}: target {}/s, sent {}/s on average, busiest interval {}/s; most sent over scheduled in one interval: {}",
                fmt_f(s.target_items_per_second),
                fmt_f(mean_sent_rate(results, name)),
                fmt_f(peak),
                max_over_schedule(results, name)
                    .map_or("n/a".to_string(), |x| format!("{x:+} items"))
            );
        }
    }
    requests_lines(&mut out, results);
    if results
        .signals
        .values()
        .any(|s| s.verification.write_to_query_latency.count > 0)
    {
        let _ = writeln!(out, "w2q resolution: {}", w2q_resolution_short(results));
    }
    let d = &results.fleet.dynamics;
    if d.churn_per_min > 0.0 || d.offline_share > 0.0 {
        let _ = writeln!(
            out,
            "fleet changes: {} devices replaced (churn {}/min); {} offline from {} s for {} s, {} items backfilled, {} dropped",
            d.replaced,
            fmt_f(d.churn_per_min),
            d.offline_devices,
            fmt_f(d.offline_from_s),
            fmt_f(d.offline_for_s),
            d.backfilled_items,
            d.backfill_dropped
        );
    }
    for (process, s) in resource_totals(results) {
        let _ = writeln!(
            out,
            "{process}: mean CPU {:.3} cores, peak {:.3} cores, peak RSS {:.1} MiB",
            s.mean_cpu,
            s.peak_cpu,
            s.peak_rss as f64 / (1024.0 * 1024.0)
        );
    }
    if results.slos.is_empty() {
        let _ = writeln!(out, "SLOs: none checked (--no-default-slos)");
    } else {
        let _ = writeln!(out, "SLOs:");
        for s in &results.slos {
            let _ = writeln!(
                out,
                "  {}  {}{}  threshold {}  actual {}{}",
                if s.pass { "PASS" } else { "FAIL" },
                s.name,
                if s.default { " (default)" } else { "" },
                fmt_f(s.threshold),
                fmt_f(s.actual),
                if s.detail.is_empty() || s.pass {
                    String::new()
                } else {
                    format!("  ({})", s.detail)
                }
            );
        }
    }
    let _ = writeln!(out, "overall: {}", verdict.outcome.as_str());
    out
}

/// The read path beside the write rows: who read through what, then one row per query kind
/// (queries, failed, p50/p99/max latency) and the failures by status.
fn read_path_lines(out: &mut String, rp: &crate::read_path::ReadPath) {
    let _ = writeln!(
        out,
        "read path: {} viewers ({}) via {}, {} dashboard refreshes, {} queries, {} answered{}",
        rp.viewers,
        rp.dashboards.join(", "),
        rp.via,
        rp.refreshes,
        rp.queries(),
        rp.answered(),
        rp.goose_report
            .as_deref()
            .map_or(String::new(), |f| format!("; goose report {f}"))
    );
    let w = rp
        .kinds
        .keys()
        .map(|k| k.chars().count())
        .chain([10])
        .max()
        .unwrap_or(10);
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>9}  {:>11}  {:>11}  {:>11}",
        "query kind", "queries", "failed", "p50 query", "p99 query", "max query"
    );
    for (name, k) in &rp.kinds {
        let h = &k.latency;
        let lat = |v: u64| {
            if h.count > 0 {
                fmt_ms(v, &h.unit)
            } else {
                "–".to_string()
            }
        };
        let _ = writeln!(
            out,
            "{name:<w$}  {:>9}  {:>9}  {:>11}  {:>11}  {:>11}",
            k.queries,
            k.failed(),
            lat(h.p50),
            lat(h.p99),
            lat(h.max)
        );
    }
    for (name, k) in &rp.kinds {
        if !k.errors.is_empty() {
            let by: Vec<String> = k.errors.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            let _ = writeln!(out, "failed {name} queries by status: {}", by.join(", "));
        }
    }
    if let Some(line) = rp.skipped_line() {
        let _ = writeln!(out, "{line}");
    }
}

/// One line per signal that recorded requests: requests and body bytes, in total and per
/// second of measured time, and per request.
fn requests_lines(out: &mut String, results: &Results) {
    let secs = measured_s(results);
    for (name, s) in &results.signals {
        if s.requests == 0 {
            continue;
        }
        let rate = |v: u64, f: fn(f64) -> String| secs.map_or("–".into(), |t| f(v as f64 / t));
        let _ = writeln!(
            out,
            "requests {name}: {} ({}/s), {} sent ({}/s); {} items and {} per request",
            s.requests,
            rate(s.requests, fmt_f),
            fmt_bytes(s.bytes as f64),
            rate(s.bytes, fmt_bytes),
            fmt_f(s.sent as f64 / s.requests as f64),
            fmt_bytes(s.bytes as f64 / s.requests as f64),
        );
    }
}

/// `~1 s (the verifier polled every 1 s; ...)`.
fn w2q_resolution_short(results: &Results) -> String {
    match crate::html::poll_intervals_ms(results).last() {
        Some(&ms) => format!(
            "~{s} s: the verifier polled the stack every {s} s, so write-to-query latencies are \
             from send to the first poll that found the canary (up to {s} s more than the truth)",
            s = fmt_f(ms as f64 / 1000.0)
        ),
        None => "the verifier's poll interval (not recorded in these results)".to_string(),
    }
}

/// The busiest reporting interval's sent rate of `signal` after the warm-up (intervals
/// shorter than half a second, the run's ragged end, left out).
pub fn peak_rate(results: &Results, signal: &str) -> Option<f64> {
    measured_intervals(results)
        .map(|(dt, i)| i.sent.get(signal).copied().unwrap_or(0) as f64 / dt)
        .reduce(f64::max)
}

/// The largest `sent - scheduled` of `signal` in one measured interval: above 0, loadgen
/// completed more in that interval than the schedule asked for (a catch-up burst after a
/// stall). `None` for results without scheduled counts.
pub fn max_over_schedule(results: &Results, signal: &str) -> Option<i64> {
    measured_intervals(results)
        .filter(|(_, i)| !i.scheduled.is_empty())
        .map(|(_, i)| {
            let sent = i.sent.get(signal).copied().unwrap_or(0) as i64;
            sent - i.scheduled.get(signal).copied().unwrap_or(0) as i64
        })
        .max()
}

/// Sent items of `signal` per second over the measured intervals.
pub fn mean_sent_rate(results: &Results, signal: &str) -> f64 {
    let (items, secs) = measured_intervals(results).fold((0u64, 0.0), |(n, t), (dt, i)| {
        (n + i.sent.get(signal).copied().unwrap_or(0), t + dt)
    });
    if secs > 0.0 { items as f64 / secs } else { 0.0 }
}

/// (length s, interval) of every post-warm-up interval of at least half a second.
fn measured_intervals(results: &Results) -> impl Iterator<Item = (f64, &crate::results::Interval)> {
    let warmup = results.run.warmup_s;
    let duration = results.run.duration_s;
    let mut prev = 0.0f64;
    results.intervals.iter().filter_map(move |i| {
        let dt = i.t_s - prev;
        let start = prev;
        prev = i.t_s;
        (start >= warmup && dt >= 0.5 && i.t_s <= duration + 1e-9).then_some((dt, i))
    })
}

/// CPU and RSS of one process over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResourceTotals {
    /// Mean of the samples' CPU, cores.
    pub mean_cpu: f64,
    pub peak_cpu: f64,
    pub peak_rss: u64,
}

/// Per process (`loadgen`, `collector`), in name order.
pub fn resource_totals(results: &Results) -> Vec<(String, ResourceTotals)> {
    let mut by: std::collections::BTreeMap<&str, (ResourceTotals, u32)> = Default::default();
    for s in &results.resources {
        let (t, n) = by.entry(&s.process).or_default();
        t.mean_cpu += s.cpu_cores;
        t.peak_cpu = t.peak_cpu.max(s.cpu_cores);
        t.peak_rss = t.peak_rss.max(s.rss_bytes);
        *n += 1;
    }
    by.into_iter()
        .map(|(p, (mut t, n))| {
            t.mean_cpu /= f64::from(n.max(1));
            (p.to_string(), t)
        })
        .collect()
}
