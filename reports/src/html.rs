//! The HTML report: [`render`] turns one [`Results`] (and optionally a baseline to compare with)
//! into ONE self-contained HTML document — inline CSS, inline SVG charts from [`crate::svg`], no
//! scripts, no links, nothing fetched from the network — that also prints legibly.
//!
//! Sections, in order: run summary and SLO verdicts, throughput and errors over time (with
//! requests/s and bytes/s, and each signal's pacing: target versus scheduled versus sent),
//! latency (a numeric table of send and write-to-query percentiles, the write-to-query
//! resolution, the percentile spectrum and over time), loss and duplicates, breakdown by device
//! type and region, collector and loadgen resources, and the baseline comparison when a baseline
//! is given.
//!
//! Rates over time divide an interval's count by the part of it the schedule covered, so the
//! run's ragged end is neither drawn as a collapse to zero nor as a spike (see [`rate_points`]).
//! Comparisons with a baseline ([`change`]) call a difference better or worse only when it is
//! larger than the noise of the figures compared.
//!
//! Every string that comes from the results is escaped with [`esc`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::histogram::HistogramData;
use crate::results::{Interval, Results, SignalResults};
use crate::svg::{self, BarChart, BarSeries, LineChart, Series, XAxis};

/// Escapes `s` for HTML text and (quoted) attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;max-width:980px;padding:16px 24px;color:#1a1a1a;line-height:1.4}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:1.6em}h3{font-size:1.05em;margin:1em 0 .4em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f2f2f2}
.banner{font-size:1.4em;font-weight:bold;padding:.4em .8em;border:3px solid;display:inline-block;margin:.4em 0}
.banner.pass{color:#11651e;border-color:#11651e;background:#e6f4e8}.banner.unjudged{color:#555;border-color:#777;background:#eee}.banner.fail{color:#9b1111;border-color:#9b1111;background:#fbe9e9}
.badge{font-weight:bold;padding:0 .5em;border:1px solid;border-radius:3px}.badge.pass{color:#11651e;background:#e6f4e8}.badge.fail{color:#9b1111;background:#fbe9e9}
.better{color:#11651e}.worse{color:#9b1111}.muted{color:#666}
figure.chart{margin:.8em 0 1.4em;page-break-inside:avoid;break-inside:avoid}figcaption{font-weight:bold;margin-bottom:.2em}
figure.chart svg{width:100%;max-width:720px;height:auto;display:block}
svg text{font-family:inherit}svg .tick{font-size:11px;fill:#333}svg .label{font-size:12px;fill:#111}svg .legend{font-size:12px;fill:#111}
svg .grid{stroke:#e3e3e3;stroke-width:1}svg .axis{stroke:#333;stroke-width:1}
.nodata{border:1px dashed #aaa;color:#666;padding:1.2em;text-align:center;max-width:680px;font-style:italic}
code{font-size:.9em;word-break:break-all}
@media print{body{max-width:none;padding:0;font-size:10pt}h2{page-break-after:avoid;break-after:avoid}section{page-break-inside:auto}table,figure{page-break-inside:avoid;break-inside:avoid}
.banner,.badge,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"#;

/// The whole report.
pub fn render(results: &Results, baseline: Option<&Results>) -> String {
    let mut doc = String::with_capacity(64 * 1024);
    let _ = write!(
        doc,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Load run report: {id}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <header><h1>Load run report: {id}</h1></header>\n",
        id = esc(&results.run.id)
    );
    doc.push_str(&summary_section(results));
    doc.push_str(&throughput_section(results));
    doc.push_str(&latency_section(results));
    doc.push_str(&loss_section(results));
    doc.push_str(&breakdown_section(results));
    doc.push_str(&resources_section(results));
    if let Some(base) = baseline {
        doc.push_str(&baseline_section(results, base));
    }
    let _ = write!(
        doc,
        "<footer class=\"muted\"><p>results schema version {}; loadgen {}</p></footer>\n</body>\n</html>\n",
        results.schema_version,
        esc(&results.run.loadgen_version)
    );
    doc
}

/// Signals with totals or interval counts, in name order.
fn signal_names(r: &Results) -> Vec<String> {
    let mut names: BTreeSet<&String> = r.signals.keys().collect();
    for iv in &r.intervals {
        names.extend(iv.sent.keys());
        names.extend(iv.errors.keys());
    }
    names.into_iter().cloned().collect()
}

/// A histogram value converted to milliseconds (units "ns", "us"/"µs", "ms", "s").
pub fn to_ms(v: f64, unit: &str) -> f64 {
    match unit {
        "ns" => v / 1e6,
        "us" | "µs" => v / 1e3,
        "s" => v * 1e3,
        _ => v,
    }
}

/// `1.23 ms`.
pub fn fmt_ms(v: u64, unit: &str) -> String {
    let ms = to_ms(v as f64, unit);
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `1,234,567`.
pub fn fmt_int(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float for a table: thousands separators above 1000, a few decimals below.
pub fn fmt_f(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v.abs() >= 1000.0 && v.abs() < 1e18 {
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}{}", fmt_int(v.abs().round() as u64))
    } else if v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// `0.012%`, or `–` when unknown.
pub fn fmt_pct(f: Option<f64>) -> String {
    f.filter(|f| f.is_finite())
        .map_or_else(|| "–".to_string(), |f| format!("{:.3}%", f * 100.0))
}

/// `1.5 KiB`, `12.0 MiB`.
pub fn fmt_bytes(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// The measured (post-warm-up) seconds that totals divide by; `None` when the results do not
/// give a usable one.
pub fn measured_s(r: &Results) -> Option<f64> {
    let s = r.run.duration_s - r.run.warmup_s;
    (s.is_finite() && s > 0.0).then_some(s)
}

/// The reporting interval's length: the smallest step between consecutive intervals (the
/// first interval's end when there is only one).
fn interval_len(r: &Results) -> Option<f64> {
    let step = r
        .intervals
        .windows(2)
        .map(|w| w[1].t_s - w[0].t_s)
        .filter(|d| d.is_finite() && *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() {
        step
    } else {
        r.intervals.first().map_or(0.0, |i| i.t_s)
    };
    (step.is_finite() && step > 0.0).then_some(step)
}

/// `(t, count per second)` of one count of each interval. The rate divides by the part of the
/// interval the schedule covered (it ends at `duration_s`): an interval straddling the end is
/// divided by its time up to the end, one covering less than half an interval of schedule is
/// left out (its few items would draw a collapse to zero, or a spike), and so are intervals
/// after the end (requests still completing). The items left out stay in every total; see
/// [`tail_items`].
pub fn rate_points(r: &Results, count: impl Fn(&Interval) -> Option<u64>) -> Vec<(f64, f64)> {
    drawn_intervals(r)
        .into_iter()
        .filter_map(|(i, covered)| {
            let iv = &r.intervals[i];
            Some((iv.t_s, count(iv)? as f64 / covered))
        })
        .collect()
}

/// The intervals rate charts draw (index, seconds of schedule covered); see [`rate_points`].
fn drawn_intervals(r: &Results) -> Vec<(usize, f64)> {
    let Some(step) = interval_len(r) else {
        return Vec::new();
    };
    let end = if r.run.duration_s.is_finite() && r.run.duration_s > 0.0 {
        r.run.duration_s
    } else {
        f64::INFINITY
    };
    r.intervals
        .iter()
        .enumerate()
        .filter_map(|(i, iv)| {
            let covered = iv.t_s.min(end) - (iv.t_s - step).max(0.0);
            (covered >= step * 0.5).then_some((i, covered))
        })
        .collect()
}

/// Items of `pick` in the intervals [`rate_points`] leaves out (the run's ragged end).
fn tail_items(r: &Results, pick: impl Fn(&Interval) -> u64) -> u64 {
    let drawn: BTreeSet<usize> = drawn_intervals(r).into_iter().map(|(i, _)| i).collect();
    r.intervals
        .iter()
        .enumerate()
        .filter(|(i, _)| !drawn.contains(i))
        .fold(0u64, |a, (_, iv)| a.saturating_add(pick(iv)))
}

/// Which direction of change is an improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Neither (requests/s, bytes/s): a change is only "higher" or "lower".
    Neither,
}

/// How a figure moved from a baseline to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Better,
    Worse,
    Higher,
    Lower,
    /// Within the noise of the two figures.
    Same,
    /// One side has no value.
    Unknown,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Better => "better",
            Change::Worse => "worse",
            Change::Higher => "higher",
            Change::Lower => "lower",
            Change::Same => "≈ same",
            Change::Unknown => "n/a",
        }
    }

    fn html(self) -> String {
        let (class, arrow) = match self {
            Change::Better => ("better", "▲ "),
            Change::Worse => ("worse", "▼ "),
            Change::Higher => ("muted", "▲ "),
            Change::Lower => ("muted", "▼ "),
            Change::Same | Change::Unknown => ("muted", ""),
        };
        format!("<span class=\"{class}\">{arrow}{}</span>", self.word())
    }
}

/// Relative differences up to this are noise: the run-to-run spread of a figure measured
/// twice on one machine is of this order.
pub const NOISE_RELATIVE: f64 = 0.05;

/// A figure of one run with what makes it uncertain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    pub value: f64,
    /// One standard deviation (counts: Poisson, sqrt(n) scaled like the value).
    pub sigma: f64,
    /// The smallest step the measurement can tell apart (histogram unit, poll interval).
    pub resolution: f64,
}

impl Figure {
    /// A value with no known noise besides [`NOISE_RELATIVE`].
    pub fn plain(value: f64) -> Figure {
        Figure {
            value,
            sigma: 0.0,
            resolution: 0.0,
        }
    }

    /// `n` counted events shown as `n * scale` (a rate: `1 / seconds`; a percentage of `c`:
    /// `100 / c`), with Poisson noise.
    pub fn count(n: u64, scale: f64) -> Figure {
        Figure::counted(n as f64 * scale, n)
    }

    /// A value proportional to `n` counted events (a share of them, a rate): its Poisson noise is
    /// the value over sqrt(n).
    pub fn counted(value: f64, n: u64) -> Figure {
        Figure {
            value,
            sigma: value.abs() / (n.max(1) as f64).sqrt(),
            resolution: 0.0,
        }
    }
}

/// `base` to `cur`: the same when the difference is within two standard deviations of the
/// difference, within the coarser resolution, or within [`NOISE_RELATIVE`] of the larger
/// value; otherwise better or worse (higher or lower) by `better`.
pub fn change(base: Option<Figure>, cur: Option<Figure>, better: Better) -> Change {
    let (Some(b), Some(c)) = (base, cur) else {
        return Change::Unknown;
    };
    if !(b.value.is_finite() && c.value.is_finite()) {
        return Change::Unknown;
    }
    let d = c.value - b.value;
    let noise = (2.0 * (b.sigma * b.sigma + c.sigma * c.sigma).sqrt())
        .max(b.resolution.max(c.resolution))
        .max(NOISE_RELATIVE * b.value.abs().max(c.value.abs()));
    if d.abs() <= noise {
        return Change::Same;
    }
    match (better, d > 0.0) {
        (Better::Higher, true) | (Better::Lower, false) => Change::Better,
        (Better::Higher, false) | (Better::Lower, true) => Change::Worse,
        (Better::Neither, true) => Change::Higher,
        (Better::Neither, false) => Change::Lower,
    }
}

/// How the figures of one signal are labelled, read and formatted for comparisons.
pub struct FigureSpec {
    pub label: &'static str,
    pub better: Better,
    pub get: fn(&Results, &SignalResults) -> Option<Figure>,
    pub fmt: fn(f64) -> String,
}

/// A latency percentile in ms, resolved to one histogram unit and at least `floor_ms`.
fn latency_figure(h: &HistogramData, v: u64, floor_ms: f64) -> Option<Figure> {
    (h.count > 0).then(|| Figure {
        value: to_ms(v as f64, &h.unit),
        sigma: 0.0,
        resolution: to_ms(1.0, &h.unit).max(floor_ms),
    })
}

fn w2q_figure(s: &SignalResults, pick: fn(&HistogramData) -> u64) -> Option<Figure> {
    let v = &s.verification;
    let h = &v.write_to_query_latency;
    latency_figure(h, pick(h), v.poll_interval_ms as f64)
}

/// The per-signal figures `loadgen compare` and the report's baseline section compare.
pub const SIGNAL_FIGURES: [FigureSpec; 8] = [
    FigureSpec {
        label: "items/s",
        better: Better::Higher,
        get: |r, s| Some(Figure::count(s.acknowledged, 1.0 / measured_s(r)?)),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "requests/s",
        better: Better::Neither,
        get: |r, s| {
            let secs = measured_s(r)?;
            (s.requests > 0).then(|| Figure::count(s.requests, 1.0 / secs))
        },
        fmt: fmt_f,
    },
    FigureSpec {
        label: "bytes/s",
        better: Better::Neither,
        get: |r, s| {
            let secs = measured_s(r)?;
            (s.bytes > 0).then(|| Figure::plain(s.bytes as f64 / secs))
        },
        fmt: fmt_bytes,
    },
    FigureSpec {
        label: "loss %",
        better: Better::Lower,
        get: |_, s| {
            let v = &s.verification;
            let percent = v.loss_fraction()? * 100.0;
            Some(Figure::counted(percent, v.lost))
        },
        fmt: |f| format!("{f:.3}"),
    },
    FigureSpec {
        label: "p50 send latency (ms)",
        better: Better::Lower,
        get: |_, s| latency_figure(&s.send_latency, s.send_latency.p50, 0.0),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "p99 send latency (ms)",
        better: Better::Lower,
        get: |_, s| latency_figure(&s.send_latency, s.send_latency.p99, 0.0),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "p50 write-to-query (ms)",
        better: Better::Lower,
        get: |_, s| w2q_figure(s, |h| h.p50),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "p99 write-to-query (ms)",
        better: Better::Lower,
        get: |_, s| w2q_figure(s, |h| h.p99),
        fmt: fmt_f,
    },
];

fn badge(pass: bool) -> &'static str {
    if pass {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

/// A table with a header row; cells are already HTML. Header names ending in `#` are numeric
/// (right-aligned) columns, the `#` is dropped.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let numeric: Vec<bool> = headers.iter().map(|h| h.ends_with('#')).collect();
    let mut s = String::from("<table><thead><tr>");
    for (h, n) in headers.iter().zip(&numeric) {
        let class = if *n { " class=\"n\"" } else { "" };
        let _ = write!(s, "<th{class}>{}</th>", esc(h.trim_end_matches('#')));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");
    s
}

fn section(id: &str, heading: &str, body: &str) -> String {
    format!("<section id=\"{id}\">\n<h2>{heading}</h2>\n{body}</section>\n")
}

/// One line on devices that came and went or went offline; "none" when the run had neither.
fn dynamics(d: &crate::results::FleetDynamics) -> String {
    let mut parts = Vec::new();
    if d.churn_per_min > 0.0 {
        parts.push(format!(
            "churn {}%/min: {} devices replaced",
            fmt_f(d.churn_per_min * 100.0),
            fmt_int(d.replaced)
        ));
    }
    if d.offline_share > 0.0 {
        parts.push(format!(
            "{} devices offline from {} s for {} s, {} items backfilled late, {} dropped by full device buffers",
            fmt_int(d.offline_devices),
            fmt_f(d.offline_from_s),
            fmt_f(d.offline_for_s),
            fmt_int(d.backfilled_items),
            fmt_int(d.backfill_dropped)
        ));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        esc(&parts.join("; "))
    }
}

fn summary_section(r: &Results) -> String {
    let run = &r.run;
    let mut body = String::new();
    let verdict = r.verdict();
    let class = match verdict.outcome {
        crate::verdict::Outcome::Pass => "pass",
        crate::verdict::Outcome::Fail => "fail",
        crate::verdict::Outcome::Unjudged => "unjudged",
    };
    let _ = writeln!(
        body,
        "<div class=\"banner {class}\">{}</div>",
        esc(verdict.outcome.as_str())
    );
    body.push_str("<ul class=\"reasons\">\n");
    for reason in &verdict.reasons {
        let _ = writeln!(body, "<li>{}</li>", esc(reason));
    }
    body.push_str("</ul>\n");
    let shards = match run.shard {
        Some([i, n]) => format!("shard {i} of {n}"),
        None => format!("{} merged", run.shards_merged),
    };
    let fleet = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{}: {}", esc(k), fmt_int(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = [
        ("Run id", esc(&run.id)),
        ("Started", esc(&run.started_at)),
        (
            "Duration",
            format!(
                "{} s (warm-up {} s)",
                fmt_f(run.duration_s),
                fmt_f(run.warmup_s)
            ),
        ),
        ("Devices", fmt_int(run.devices)),
        (
            "Stores / problem devices",
            format!(
                "{} / {}",
                fmt_int(r.fleet.stores),
                fmt_int(r.fleet.problem_devices)
            ),
        ),
        ("Churn and offline devices", dynamics(&r.fleet.dynamics)),
        ("Devices by type", fleet(&r.fleet.by_type)),
        ("Devices by region", fleet(&r.fleet.by_region)),
        ("Seed", run.seed.to_string()),
        ("Target", esc(&run.target)),
        ("Rate multiplier", fmt_f(run.rate_multiplier)),
        ("Shards", shards),
        ("Loadgen version", esc(&run.loadgen_version)),
        ("Command", format!("<code>{}</code>", esc(&run.command))),
    ]
    .map(|(k, v)| vec![k.to_string(), v]);
    body.push_str(&table(&["run", "value"], &rows));
    body.push_str("<h3>Objectives (SLOs)</h3>\n");
    if r.slos.is_empty() {
        body.push_str(
            "<p class=\"nodata\">no data — no objectives were checked: the default objectives were turned off (--no-default-slos) and none was given</p>\n",
        );
    } else {
        let rows: Vec<Vec<String>> = r
            .slos
            .iter()
            .map(|s| {
                vec![
                    badge(s.pass).to_string(),
                    esc(&s.name),
                    if s.default { "default" } else { "--slo" }.to_string(),
                    fmt_f(s.threshold),
                    fmt_f(s.actual),
                    esc(&s.detail),
                ]
            })
            .collect();
        body.push_str(&table(
            &["verdict", "SLO", "from", "threshold#", "actual#", "worst"],
            &rows,
        ));
    }
    section("summary", "1. Run summary and SLO verdicts", &body)
}

/// Per-signal rate series from interval counts (`pick` selects sent, errors, ...).
fn rate_series(r: &Results, pick: impl Fn(&Interval) -> &BTreeMap<String, u64>) -> Vec<Series> {
    signal_names(r)
        .into_iter()
        .map(|name| {
            let points = rate_points(r, |iv| Some(pick(iv).get(&name).copied().unwrap_or(0)));
            Series { name, points }
        })
        .collect()
}

fn throughput_section(r: &Results) -> String {
    let mut body = svg::line_chart(&LineChart {
        title: "Throughput: items sent per second, per signal",
        x_label: "time since start (s)",
        y_label: "items/s",
        x_axis: XAxis::Linear,
        series: &rate_series(r, |iv| &iv.sent),
    });
    let tail = tail_items(r, |iv| {
        iv.sent.values().fold(0, |a, b| a.saturating_add(*b))
    });
    if tail > 0 {
        let _ = writeln!(
            body,
            "<p class=\"muted\">{} items completed in the run's last, partial interval or after \
             the schedule ended (requests still in flight); they are in every total but not \
             drawn as a rate, which would show a collapse that did not happen.</p>",
            fmt_int(tail)
        );
    }
    let errors = rate_series(r, |iv| &iv.errors);
    let no_errors = errors.iter().all(|s| s.points.iter().all(|p| p.1 == 0.0));
    body.push_str(&svg::line_chart(&LineChart {
        title: "Errors per second, per signal",
        x_label: "time since start (s)",
        y_label: "errors/s",
        x_axis: XAxis::Linear,
        series: &errors,
    }));
    if no_errors && !r.intervals.is_empty() {
        body.push_str("<p class=\"muted\">No errors in any interval.</p>\n");
    }
    body.push_str(&requests_part(r));
    body.push_str(&pacing_part(r));
    section("throughput", "2. Throughput and errors over time", &body)
}

/// Requests and request bytes per signal: a table, and both rates over time.
fn requests_part(r: &Results) -> String {
    let mut body = String::from("<h3>Requests and bytes sent</h3>\n");
    let secs = measured_s(r);
    let per_s = |v: u64| secs.map(|t| v as f64 / t);
    let rows: Vec<Vec<String>> = r
        .signals
        .iter()
        .filter(|(_, s)| s.requests > 0)
        .map(|(name, s)| {
            let per_req = |v: u64| v as f64 / s.requests as f64;
            vec![
                esc(name),
                fmt_int(s.requests),
                per_s(s.requests).map_or("–".into(), fmt_f),
                fmt_bytes(s.bytes as f64),
                per_s(s.bytes).map_or("–".into(), |b| format!("{}/s", fmt_bytes(b))),
                fmt_f(per_req(s.sent)),
                fmt_bytes(per_req(s.bytes)),
                if s.sent > 0 {
                    fmt_bytes(s.bytes as f64 / s.sent as f64)
                } else {
                    "–".into()
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        body.push_str(
            "<p class=\"nodata\">no data — requests and bytes were not recorded (results of an \
             older loadgen, or items delivered by scrape or log files only)</p>\n",
        );
        return body;
    }
    body.push_str(&table(
        &[
            "signal",
            "requests#",
            "requests/s#",
            "body bytes#",
            "bytes/s#",
            "items per request#",
            "bytes per request#",
            "bytes per item#",
        ],
        &rows,
    ));
    body.push_str(
        "<p class=\"muted\">Over the measured (post-warm-up) time; bytes are request bodies as \
         sent (encoded and compressed), HTTP headers not counted.</p>\n",
    );
    let has_intervals = r.intervals.iter().any(|iv| !iv.requests.is_empty());
    if has_intervals {
        body.push_str(&svg::line_chart(&LineChart {
            title: "Requests per second, per signal",
            x_label: "time since start (s)",
            y_label: "requests/s",
            x_axis: XAxis::Linear,
            series: &rate_series(r, |iv| &iv.requests),
        }));
        let kib: Vec<Series> = rate_series(r, |iv| &iv.bytes)
            .into_iter()
            .map(|mut s| {
                s.points.iter_mut().for_each(|p| p.1 /= 1024.0);
                s
            })
            .collect();
        body.push_str(&svg::line_chart(&LineChart {
            title: "Request body bytes per second, per signal",
            x_label: "time since start (s)",
            y_label: "KiB/s",
            x_axis: XAxis::Linear,
            series: &kib,
        }));
    }
    body
}

/// Per signal: the rate the schedule aimed at, what it scheduled per interval (by intended
/// time) and what was sent (by completion).
fn pacing_part(r: &Results) -> String {
    let mut body = String::from("<h3>Pacing: target versus sent</h3>\n");
    let mut any = false;
    for (name, s) in &r.signals {
        let scheduled = rate_points(r, |iv| iv.scheduled.get(name).copied());
        let sent = rate_points(r, |iv| Some(iv.sent.get(name).copied().unwrap_or(0)));
        let target = s.target_items_per_second;
        if scheduled.is_empty() && !(target > 0.0 && target.is_finite()) {
            continue;
        }
        any = true;
        let mut series = Vec::new();
        if target > 0.0 && target.is_finite() {
            series.push(Series {
                name: "target".into(),
                points: sent.iter().map(|&(t, _)| (t, target)).collect(),
            });
        }
        series.push(Series {
            name: "scheduled".into(),
            points: scheduled,
        });
        series.push(Series {
            name: "sent".into(),
            points: sent,
        });
        let title = format!("Pacing of {name}: target, scheduled and sent items per second");
        body.push_str(&svg::line_chart(&LineChart {
            title: &title,
            x_label: "time since start (s)",
            y_label: "items/s",
            x_axis: XAxis::Linear,
            series: &series,
        }));
    }
    if any {
        body.push_str(
            "<p class=\"muted\">Target: every device's nominal rate times the rate multiplier. \
             Scheduled: items whose intended send time fell in the interval. Sent: items whose \
             request completed in it. Sent below scheduled is loadgen or the target falling \
             behind; sent above scheduled afterwards is the catch-up.</p>\n",
        );
    } else {
        body.push_str("<p class=\"nodata\">no data — no target or scheduled rates recorded</p>\n");
    }
    body
}

/// Percentile spectrum series (ms) for one histogram per signal; unreadable histograms are named
/// in `notes` rather than drawn.
fn spectrum_series<'a>(
    hists: impl Iterator<Item = (&'a String, &'a HistogramData)>,
    notes: &mut String,
) -> Vec<Series> {
    hists
        .filter_map(|(name, h)| match h.spectrum() {
            Ok(points) => Some(Series {
                name: name.clone(),
                points: points
                    .into_iter()
                    .map(|(p, v)| (p, to_ms(v as f64, &h.unit)))
                    .collect(),
            }),
            Err(e) => {
                let _ = writeln!(
                    notes,
                    "<p class=\"muted\">{}: histogram unreadable ({})</p>",
                    esc(name),
                    esc(&e.to_string())
                );
                None
            }
        })
        .collect()
}

/// One row per signal of `pick`'s histogram: count, p50, p90, p99, p99.9, max.
fn latency_table(r: &Results, count: &str, pick: fn(&SignalResults) -> &HistogramData) -> String {
    let rows: Vec<Vec<String>> = r
        .signals
        .iter()
        .map(|(name, s)| {
            let h = pick(s);
            let mut row = vec![esc(name), fmt_int(h.count)];
            row.extend([h.p50, h.p90, h.p99, h.p999, h.max].map(|v| {
                if h.count > 0 {
                    fmt_ms(v, &h.unit)
                } else {
                    "–".to_string()
                }
            }));
            row
        })
        .collect();
    if rows.is_empty() {
        return "<p class=\"nodata\">no data</p>\n".to_string();
    }
    table(
        &["signal", count, "p50#", "p90#", "p99#", "p99.9#", "max#"],
        &rows,
    )
}

/// The verifier's poll intervals in the results, ms (usually one).
pub(crate) fn poll_intervals_ms(r: &Results) -> BTreeSet<u64> {
    r.signals
        .values()
        .filter(|s| s.verification.write_to_query_latency.count > 0)
        .map(|s| s.verification.poll_interval_ms)
        .filter(|&p| p > 0)
        .collect()
}

/// What limits the write-to-query figures: the verifier's poll interval.
pub fn w2q_resolution(r: &Results) -> String {
    let polls = poll_intervals_ms(r);
    if polls.is_empty() {
        return "Write-to-query latency is the time from a canary's send until the first \
                verifier query that found it, so its resolution is the verifier's poll \
                interval (not recorded in these results; 1 s in loadgen runs)."
            .to_string();
    }
    let list: Vec<String> = polls
        .iter()
        .map(|&ms| format!("{} s", fmt_f(ms as f64 / 1000.0)))
        .collect();
    let list = list.join(" or ");
    format!(
        "Write-to-query latency is the time from a canary's send until the first verifier \
         query that found it. The verifier queried the stack every {list}, so these latencies \
         have a resolution of about {list} and overstate the true latency by up to that much; \
         differences smaller than that are not meaningful."
    )
}

fn latency_section(r: &Results) -> String {
    let mut notes = String::new();
    let spectrum = spectrum_series(
        r.signals.iter().map(|(n, s)| (n, &s.send_latency)),
        &mut notes,
    );
    let mut body = String::from("<h3>Send latency per signal</h3>\n");
    body.push_str(&latency_table(r, "samples#", |s| &s.send_latency));
    body.push_str(
        "<p class=\"muted\">From each event's intended send time (the schedule's) to its \
         request's outcome, so waiting in a batch or behind a slow target counts.</p>\n",
    );
    body.push_str("<h3>Write-to-query latency per signal</h3>\n");
    body.push_str(&latency_table(r, "canaries found#", |s| {
        &s.verification.write_to_query_latency
    }));
    let _ = writeln!(
        body,
        "<p><b>Resolution.</b> {}</p>",
        esc(&w2q_resolution(r))
    );
    body.push_str(&svg::line_chart(&LineChart {
        title: "Send latency by percentile, per signal",
        x_label: "percentile (log scale)",
        y_label: "send latency (ms)",
        x_axis: XAxis::Percentile,
        series: &spectrum,
    }));
    body.push_str(&notes);
    let over_time: Vec<Series> = [("p50", false), ("p99", true)]
        .into_iter()
        .map(|(name, p99)| Series {
            name: format!("{name} (all signals)"),
            points: r
                .intervals
                .iter()
                .filter(|iv| iv.send_latency.count > 0)
                .map(|iv| {
                    let h = &iv.send_latency;
                    let v = if p99 { h.p99 } else { h.p50 };
                    (iv.t_s, to_ms(v as f64, &h.unit))
                })
                .collect(),
        })
        .collect();
    body.push_str(&svg::line_chart(&LineChart {
        title: "Send latency over time (p50 and p99 per interval)",
        x_label: "time since start (s)",
        y_label: "send latency (ms)",
        x_axis: XAxis::Linear,
        series: &over_time,
    }));
    section("latency", "3. Latency", &body)
}

fn errors_by_status(s: &SignalResults) -> String {
    if s.errors.is_empty() {
        return "none".to_string();
    }
    s.errors
        .iter()
        .map(|(k, v)| format!("{}: {}", esc(k), fmt_int(*v)))
        .collect::<Vec<_>>()
        .join("<br>")
}

fn loss_section(r: &Results) -> String {
    let mut body = String::new();
    if r.signals.is_empty() {
        body.push_str("<p class=\"nodata\">no data</p>\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .signals
            .iter()
            .map(|(name, s)| {
                let v = &s.verification;
                let w = &v.write_to_query_latency;
                vec![
                    esc(name),
                    fmt_int(s.sent),
                    fmt_int(s.acknowledged),
                    errors_by_status(s),
                    fmt_int(v.canaries),
                    fmt_int(v.found),
                    format!("{} ({})", fmt_int(v.lost), fmt_pct(v.loss_fraction())),
                    fmt_int(v.duplicated),
                    fmt_int(v.out_of_order),
                    if w.count > 0 {
                        fmt_ms(w.p50, &w.unit)
                    } else {
                        "–".into()
                    },
                    if w.count > 0 {
                        fmt_ms(w.p99, &w.unit)
                    } else {
                        "–".into()
                    },
                ]
            })
            .collect();
        body.push_str(&table(
            &[
                "signal",
                "sent#",
                "acknowledged#",
                "errors by status",
                "canaries#",
                "found#",
                "lost#",
                "duplicated#",
                "out of order#",
                "write→query p50#",
                "write→query p99#",
            ],
            &rows,
        ));
    }
    let mut notes = String::new();
    let spectrum = spectrum_series(
        r.signals
            .iter()
            .map(|(n, s)| (n, &s.verification.write_to_query_latency)),
        &mut notes,
    );
    body.push_str(&svg::line_chart(&LineChart {
        title: "Write-to-query latency by percentile, per signal",
        x_label: "percentile (log scale)",
        y_label: "write-to-query latency (ms)",
        x_axis: XAxis::Percentile,
        series: &spectrum,
    }));
    body.push_str(&notes);
    section("loss", "4. Loss and duplicates", &body)
}

/// Sent items per signal grouped by device type (`by_type`) or by region, as a bar chart.
fn breakdown_chart(r: &Results, signals: &[String], title: &str, by_type: bool) -> String {
    let mut groups: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for b in &r.breakdown {
        let key = if by_type { &b.device_type } else { &b.region };
        let g = groups.entry(key.as_str()).or_default();
        for (sig, n) in &b.sent {
            let e = g.entry(sig.as_str()).or_default();
            *e = e.saturating_add(*n);
        }
    }
    let categories: Vec<String> = groups.keys().map(|k| k.to_string()).collect();
    let series: Vec<BarSeries> = signals
        .iter()
        .map(|sig| BarSeries {
            name: sig.clone(),
            values: groups
                .values()
                .map(|g| g.get(sig.as_str()).copied().unwrap_or(0) as f64)
                .collect(),
        })
        .collect();
    svg::bar_chart(&BarChart {
        title,
        x_label: if by_type { "device type" } else { "region" },
        y_label: "items sent",
        categories: &categories,
        series: &series,
    })
}

fn breakdown_section(r: &Results) -> String {
    let signals: Vec<String> = {
        let mut s: BTreeSet<&String> = BTreeSet::new();
        for b in &r.breakdown {
            s.extend(b.sent.keys());
        }
        s.into_iter().cloned().collect()
    };
    let mut body = String::new();
    if r.breakdown.is_empty() {
        body.push_str("<p class=\"nodata\">no data</p>\n");
    } else {
        let headers: Vec<String> = ["device type", "region", "devices#"]
            .into_iter()
            .map(String::from)
            .chain(signals.iter().map(|s| format!("{s} sent#")))
            .chain(std::iter::once("errors#".to_string()))
            .collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = r
            .breakdown
            .iter()
            .map(|b| {
                let mut row = vec![esc(&b.device_type), esc(&b.region), fmt_int(b.devices)];
                row.extend(
                    signals
                        .iter()
                        .map(|s| fmt_int(b.sent.get(s).copied().unwrap_or(0))),
                );
                row.push(fmt_int(b.errors));
                row
            })
            .collect();
        body.push_str(&table(&headers, &rows));
    }
    body.push_str(&breakdown_chart(
        r,
        &signals,
        "Items sent by device type, per signal",
        true,
    ));
    body.push_str(&breakdown_chart(
        r,
        &signals,
        "Items sent by region, per signal",
        false,
    ));
    section("breakdown", "5. Breakdown by device type and region", &body)
}

fn resources_section(r: &Results) -> String {
    let per_process = |value: &dyn Fn(&crate::results::ResourceSample) -> f64| {
        let mut by: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for s in &r.resources {
            by.entry(s.process.as_str())
                .or_default()
                .push((s.t_s, value(s)));
        }
        by.into_iter()
            .map(|(name, points)| Series {
                name: name.to_string(),
                points,
            })
            .collect::<Vec<_>>()
    };
    let mut body = svg::line_chart(&LineChart {
        title: "CPU used by the collector and loadgen",
        x_label: "time since start (s)",
        y_label: "CPU (cores)",
        x_axis: XAxis::Linear,
        series: &per_process(&|s| s.cpu_cores),
    });
    body.push_str(&svg::line_chart(&LineChart {
        title: "Resident memory (RSS) of the collector and loadgen",
        x_label: "time since start (s)",
        y_label: "RSS (MiB)",
        x_axis: XAxis::Linear,
        series: &per_process(&|s| s.rss_bytes as f64 / (1024.0 * 1024.0)),
    }));
    section("resources", "6. Collector and loadgen resources", &body)
}

/// Cells: baseline, this run, delta, change.
fn compare_cells(
    base: Option<Figure>,
    cur: Option<Figure>,
    better: Better,
    fmt: &dyn Fn(f64) -> String,
) -> Vec<String> {
    let show = |v: Option<Figure>| v.map_or_else(|| "–".to_string(), |f| fmt(f.value));
    let delta = match (base, cur) {
        (Some(b), Some(c)) if b.value.is_finite() && c.value.is_finite() => {
            let d = c.value - b.value;
            let rel = if b.value != 0.0 {
                format!(" ({:+.1}%)", d / b.value * 100.0)
            } else {
                String::new()
            };
            let sign = if d > 0.0 { "+" } else { "" };
            format!("{sign}{}{rel}", fmt(d))
        }
        _ => "–".to_string(),
    };
    vec![
        show(base),
        show(cur),
        delta,
        change(base, cur, better).html(),
    ]
}

/// The delivery of a run, from its target description (`..., delivery otlp`; push when absent).
fn delivery(r: &Results) -> &str {
    r.run
        .target
        .rsplit_once(", delivery ")
        .map_or("push", |(_, d)| d.trim())
}

/// The settings in which two runs differ, one phrase each (`"devices: 5,000 and 300"`): runs
/// that differ in these measure different things, so their figures do not compare as better or
/// worse.
pub fn setting_differences(a: &Results, b: &Results) -> Vec<String> {
    let (x, y) = (&a.run, &b.run);
    let mut out = Vec::new();
    let mut differ = |what: &str, p: String, q: String| {
        if p != q {
            out.push(format!("{what}: {p} and {q}"));
        }
    };
    differ("devices", fmt_int(x.devices), fmt_int(y.devices));
    differ(
        "duration",
        format!("{} s", fmt_f(x.duration_s)),
        format!("{} s", fmt_f(y.duration_s)),
    );
    differ(
        "warm-up",
        format!("{} s", fmt_f(x.warmup_s)),
        format!("{} s", fmt_f(y.warmup_s)),
    );
    differ(
        "rate multiplier",
        fmt_f(x.rate_multiplier),
        fmt_f(y.rate_multiplier),
    );
    let target = |r: &Results| {
        r.run
            .target
            .rsplit_once(", delivery ")
            .map_or(r.run.target.clone(), |(t, _)| t.to_string())
    };
    differ("target", target(a), target(b));
    differ("seed", x.seed.to_string(), y.seed.to_string());
    differ("delivery", delivery(a).to_string(), delivery(b).to_string());
    differ(
        "loadgen version",
        x.loadgen_version.clone(),
        y.loadgen_version.clone(),
    );
    out
}

fn baseline_section(r: &Results, base: &Results) -> String {
    let mut body = format!(
        "<p>This run <b>{}</b> compared with baseline <b>{}</b> (started {}).</p>\n",
        esc(&r.run.id),
        esc(&base.run.id),
        esc(&base.run.started_at)
    );
    for w in setting_differences(base, r) {
        let _ = writeln!(
            body,
            "<p class=\"worse\"><b>Warning:</b> the runs differ in {}: their figures may \
             not be comparable.</p>",
            esc(&w)
        );
    }
    let names: BTreeSet<&String> = r.signals.keys().chain(base.signals.keys()).collect();
    let mut rows = Vec::new();
    for name in &names {
        for f in &SIGNAL_FIGURES {
            let mut row = vec![esc(name), f.label.to_string()];
            row.extend(compare_cells(
                base.signals.get(*name).and_then(|s| (f.get)(base, s)),
                r.signals.get(*name).and_then(|s| (f.get)(r, s)),
                f.better,
                &f.fmt,
            ));
            rows.push(row);
        }
    }
    let headers = [
        "signal",
        "metric",
        "baseline#",
        "this run#",
        "delta#",
        "change",
    ];
    body.push_str(&format!(
        "<p class=\"muted\">A change is called better or worse only beyond the noise: {}% of \
         the larger value, two standard deviations of counted figures (Poisson), and the \
         resolution of latencies (the histogram unit; for write-to-query, the verifier's poll \
         interval). Smaller differences read \"≈ same\".</p>\n",
        NOISE_RELATIVE * 100.0
    ));
    if rows.is_empty() {
        body.push_str("<p class=\"nodata\">no data</p>\n");
    } else {
        body.push_str(&table(&headers, &rows));
    }
    body.push_str("<h3>SLO actuals</h3>\n");
    let slo_names: BTreeSet<&String> = r.slos.iter().chain(&base.slos).map(|s| &s.name).collect();
    let rows: Vec<Vec<String>> = slo_names
        .into_iter()
        .map(|name| {
            let cur = r.slos.iter().find(|s| &s.name == name);
            let old = base.slos.iter().find(|s| &s.name == name);
            // An SLO is an upper bound when meeting it means being at or below the threshold.
            let better = cur.or(old).map_or(Better::Lower, |s| {
                if s.pass == (s.actual <= s.threshold) || s.actual == s.threshold {
                    Better::Lower
                } else {
                    Better::Higher
                }
            });
            let mut row = vec![esc(name)];
            row.extend(compare_cells(
                old.map(|s| Figure::plain(s.actual)),
                cur.map(|s| Figure::plain(s.actual)),
                better,
                &fmt_f,
            ));
            row.push(format!(
                "{} → {}",
                old.map_or("–", |s| badge(s.pass)),
                cur.map_or("–", |s| badge(s.pass))
            ));
            row
        })
        .collect();
    if rows.is_empty() {
        body.push_str("<p class=\"nodata\">no data</p>\n");
    } else {
        body.push_str(&table(
            &[
                "SLO",
                "baseline#",
                "this run#",
                "delta#",
                "change",
                "verdict",
            ],
            &rows,
        ));
    }
    section("baseline", "7. Baseline comparison", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            esc(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn numbers_format_for_humans() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(1234567), "1,234,567");
        assert_eq!(fmt_f(1234.4), "1,234");
        assert_eq!(fmt_f(0.5), "0.5000");
        assert_eq!(fmt_ms(1500, "us"), "1.50 ms");
        assert_eq!(fmt_pct(Some(0.0001)), "0.010%");
        assert_eq!(fmt_pct(None), "–");
    }

    fn p(v: f64) -> Option<Figure> {
        Some(Figure::plain(v))
    }

    #[test]
    fn deltas_know_which_way_is_better() {
        let c = compare_cells(p(100.0), p(120.0), Better::Higher, &fmt_f);
        assert!(c[3].contains("better") && c[2].contains("+20"));
        let c = compare_cells(p(100.0), p(120.0), Better::Lower, &fmt_f);
        assert!(c[3].contains("worse"));
        let c = compare_cells(None, p(1.0), Better::Lower, &fmt_f);
        assert!(c[3].contains("n/a"));
        assert_eq!(change(p(100.0), p(80.0), Better::Neither), Change::Lower);
    }

    #[test]
    fn noise_sized_differences_are_the_same() {
        // Under 5 %.
        assert_eq!(change(p(100.0), p(104.9), Better::Higher), Change::Same);
        assert_eq!(change(p(100.0), p(94.0), Better::Higher), Change::Worse);
        // Counts: 100 and 120 events are within two Poisson standard deviations (±30).
        let c = |n| Some(Figure::count(n, 1.0));
        assert_eq!(change(c(100), c(120), Better::Higher), Change::Same);
        assert_eq!(change(c(100), c(140), Better::Higher), Change::Better);
        // 0 and 1 lost canaries of 10,000: noise, not a regression.
        let loss = |n| Some(Figure::count(n, 100.0 / 10_000.0));
        assert_eq!(change(loss(0), loss(1), Better::Lower), Change::Same);
        assert_eq!(change(loss(0), loss(40), Better::Lower), Change::Worse);
        // Latencies within the resolution (a 1 s poll) are the same, beyond it they are not.
        let w = |ms| {
            Some(Figure {
                value: ms,
                sigma: 0.0,
                resolution: 1000.0,
            })
        };
        assert_eq!(change(w(1000.0), w(1900.0), Better::Lower), Change::Same);
        assert_eq!(change(w(1000.0), w(2100.0), Better::Lower), Change::Worse);
    }

    fn run_with(intervals: &[(f64, u64)], duration_s: f64, warmup_s: f64) -> Results {
        let mut r: Results = serde_json::from_str(&format!(
            r#"{{"schema_version":1,"run":{{"id":"x","started_at":"","duration_s":{duration_s},
            "warmup_s":{warmup_s},"seed":1,"devices":1,"shard":null,"shards_merged":1,"target":"embedded",
            "rate_multiplier":1.0,"loadgen_version":"0","command":""}},"fleet":{{"by_type":{{}},
            "by_region":{{}},"stores":0,"problem_devices":0}},"signals":{{}},"intervals":[],
            "breakdown":[],"resources":[],"slos":[]}}"#
        ))
        .unwrap();
        r.intervals = intervals
            .iter()
            .map(|&(t_s, n)| Interval {
                t_s,
                sent: BTreeMap::from([("logs".to_string(), n)]),
                errors: BTreeMap::new(),
                scheduled: BTreeMap::new(),
                requests: BTreeMap::new(),
                bytes: BTreeMap::new(),
                send_latency: HistogramData::empty("us"),
            })
            .collect();
        r
    }

    fn logs_rate(r: &Results) -> Vec<(f64, f64)> {
        rate_points(r, |iv| iv.sent.get("logs").copied())
    }

    #[test]
    fn the_ragged_end_is_not_drawn_as_a_collapse() {
        // 60 s at 1000/s, then the last in-flight requests completing in interval 61.
        let mut iv: Vec<(f64, u64)> = (1..=60).map(|t| (t as f64, 1000)).collect();
        iv.push((61.0, 3));
        let r = run_with(&iv, 60.0, 0.0);
        let pts = logs_rate(&r);
        assert_eq!(pts.len(), 60);
        assert!(pts.iter().all(|p| p.1 == 1000.0), "{pts:?}");
        assert_eq!(tail_items(&r, |iv| iv.sent["logs"]), 3);
        // A schedule ending mid-interval: that interval's rate is over the time it covered.
        let mut iv: Vec<(f64, u64)> = (1..=60).map(|t| (t as f64, 1000)).collect();
        iv.push((61.0, 600));
        let pts = logs_rate(&run_with(&iv, 60.6, 0.0));
        assert_eq!(pts.len(), 61);
        assert!((pts[60].1 - 1000.0).abs() < 1e-6, "{:?}", pts[60]);
        // ...unless it covered under half an interval.
        let mut iv: Vec<(f64, u64)> = (1..=60).map(|t| (t as f64, 1000)).collect();
        iv.push((61.0, 100));
        assert_eq!(logs_rate(&run_with(&iv, 60.1, 0.0)).len(), 60);
    }

    #[test]
    fn the_first_interval_after_warmup_is_one_interval_long() {
        let iv: Vec<(f64, u64)> = (6..=10).map(|t| (t as f64, 500)).collect();
        let pts = logs_rate(&run_with(&iv, 10.0, 5.0));
        assert_eq!(pts.first(), Some(&(6.0, 500.0)));
    }

    #[test]
    fn settings_that_differ_are_named() {
        let a = run_with(&[], 60.0, 0.0);
        assert!(setting_differences(&a, &a.clone()).is_empty());
        let mut b = a.clone();
        b.run.devices = 300;
        b.run.seed = 2;
        b.run.target = "embedded, delivery otlp".into();
        b.run.loadgen_version = "1".into();
        let d = setting_differences(&a, &b);
        assert_eq!(
            d,
            [
                "devices: 1 and 300",
                "seed: 1 and 2",
                "delivery: push and otlp",
                "loadgen version: 0 and 1"
            ]
        );
    }
}
