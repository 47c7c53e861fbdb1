//! The plain-text summary the CLI prints after a run: one table row per signal (items/s, items
//! the target refused, canary loss, p50/p99 send latency, p50/p99 write-to-query latency), the
//! refusals by status, and the SLO verdicts with an overall PASS/FAIL line. Refused items are
//! shown beside the loss so that a target answering 429 or 500 never reads as "0 loss".

use std::fmt::Write as _;

use crate::histogram::HistogramData;
use crate::html::{fmt_f, fmt_ms, fmt_pct, loss_fraction};
use crate::results::Results;

/// The summary as printable text (ends with a newline).
pub fn summary(results: &Results) -> String {
    let mut out = String::new();
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
            fmt_pct(loss_fraction(&s.verification)),
            lat(send, send.p50),
            lat(send, send.p99),
            lat(w2q, w2q.p50),
            lat(w2q, w2q.p99),
        );
    }
    for (name, s) in &results.signals {
        if !s.errors.is_empty() {
            let by: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(out, "refused {name} items by status: {}", by.join(", "));
        }
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
        let _ = writeln!(out, "SLOs: none checked");
    } else {
        let _ = writeln!(out, "SLOs:");
        for s in &results.slos {
            let _ = writeln!(
                out,
                "  {}  {}  threshold {}  actual {}",
                if s.pass { "PASS" } else { "FAIL" },
                s.name,
                fmt_f(s.threshold),
                fmt_f(s.actual)
            );
        }
    }
    let _ = writeln!(
        out,
        "overall: {}",
        if results.passed() { "PASS" } else { "FAIL" }
    );
    out
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
