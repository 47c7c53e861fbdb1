//! The HTML report: [`render`] turns one [`Results`] (and optionally a baseline to compare with)
//! into ONE self-contained HTML document — inline CSS, inline SVG charts from [`crate::svg`], no
//! scripts, no links, nothing fetched from the network — that also prints legibly.
//!
//! Sections, in order: run summary and SLO verdicts, throughput and errors over time, latency
//! (percentile spectrum and over time), loss and duplicates, breakdown by device type and region,
//! collector and loadgen resources, and the baseline comparison when a baseline is given.
//!
//! Every string that comes from the results is escaped with [`esc`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::histogram::HistogramData;
use crate::results::{Results, SignalResults, Verification};
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

/// Canary loss as a fraction of acknowledged canaries; `None` without canaries.
pub fn loss_fraction(v: &Verification) -> Option<f64> {
    v.loss_fraction()
}

/// `0.012%`, or `–` when unknown.
pub fn fmt_pct(f: Option<f64>) -> String {
    f.filter(|f| f.is_finite())
        .map_or_else(|| "–".to_string(), |f| format!("{:.3}%", f * 100.0))
}

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

/// Per-signal rate series from interval counts (`pick` selects sent or errors).
fn rate_series(
    r: &Results,
    pick: impl Fn(&crate::results::Interval) -> &BTreeMap<String, u64>,
) -> Vec<Series> {
    signal_names(r)
        .into_iter()
        .map(|name| {
            let mut prev_t = 0.0;
            let mut points = Vec::new();
            for iv in &r.intervals {
                let dt = iv.t_s - prev_t;
                prev_t = iv.t_s;
                if dt > 0.0 {
                    let n = pick(iv).get(&name).copied().unwrap_or(0);
                    points.push((iv.t_s, n as f64 / dt));
                }
            }
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
    section("throughput", "2. Throughput and errors over time", &body)
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

fn latency_section(r: &Results) -> String {
    let mut notes = String::new();
    let spectrum = spectrum_series(
        r.signals.iter().map(|(n, s)| (n, &s.send_latency)),
        &mut notes,
    );
    let mut body = svg::line_chart(&LineChart {
        title: "Send latency by percentile, per signal",
        x_label: "percentile (log scale)",
        y_label: "send latency (ms)",
        x_axis: XAxis::Percentile,
        series: &spectrum,
    });
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
                    format!("{} ({})", fmt_int(v.lost), fmt_pct(loss_fraction(v))),
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

/// Which direction of change is an improvement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// Cells: baseline, this run, delta, marker.
fn compare_cells(
    base: Option<f64>,
    cur: Option<f64>,
    better: Better,
    fmt: &dyn Fn(f64) -> String,
) -> Vec<String> {
    let show = |v: Option<f64>| v.map_or_else(|| "–".to_string(), fmt);
    let (delta, marker) = match (base, cur) {
        (Some(b), Some(c)) if b.is_finite() && c.is_finite() => {
            let d = c - b;
            let rel = if b != 0.0 {
                format!(" ({:+.1}%)", d / b * 100.0)
            } else {
                String::new()
            };
            let sign = if d > 0.0 { "+" } else { "" };
            let same = d.abs() <= 1e-9 * b.abs().max(c.abs());
            let improved = (d > 0.0) == (better == Better::Higher);
            let marker = if same {
                "<span class=\"muted\">= same</span>"
            } else if improved {
                "<span class=\"better\">▲ better</span>"
            } else {
                "<span class=\"worse\">▼ worse</span>"
            };
            (format!("{sign}{}{rel}", fmt(d)), marker.to_string())
        }
        _ => (
            "–".to_string(),
            "<span class=\"muted\">n/a</span>".to_string(),
        ),
    };
    vec![show(base), show(cur), delta, marker]
}

fn baseline_section(r: &Results, base: &Results) -> String {
    let mut body = format!(
        "<p>This run <b>{}</b> compared with baseline <b>{}</b> (started {}).</p>\n",
        esc(&r.run.id),
        esc(&base.run.id),
        esc(&base.run.started_at)
    );
    let names: BTreeSet<&String> = r.signals.keys().chain(base.signals.keys()).collect();
    let ms = |f: fn(&HistogramData) -> u64| {
        move |s: &SignalResults| {
            let h = &s.send_latency;
            (h.count > 0).then(|| to_ms(f(h) as f64, &h.unit))
        }
    };
    type Metric<'a> = (
        &'a str,
        Box<dyn Fn(&SignalResults) -> Option<f64>>,
        Better,
        fn(f64) -> String,
    );
    let metrics: [Metric<'_>; 4] = [
        (
            "items/s",
            Box::new(|s| Some(s.items_per_second)),
            Better::Higher,
            fmt_f,
        ),
        (
            "p50 send latency (ms)",
            Box::new(ms(|h| h.p50)),
            Better::Lower,
            fmt_f,
        ),
        (
            "p99 send latency (ms)",
            Box::new(ms(|h| h.p99)),
            Better::Lower,
            fmt_f,
        ),
        (
            "loss",
            Box::new(|s| loss_fraction(&s.verification)),
            Better::Lower,
            |f| fmt_pct(Some(f)),
        ),
    ];
    let mut rows = Vec::new();
    for name in &names {
        for (label, get, better, fmt) in &metrics {
            let mut row = vec![esc(name), (*label).to_string()];
            row.extend(compare_cells(
                base.signals.get(*name).and_then(get),
                r.signals.get(*name).and_then(get),
                *better,
                fmt,
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
                old.map(|s| s.actual),
                cur.map(|s| s.actual),
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

    #[test]
    fn deltas_know_which_way_is_better() {
        let c = compare_cells(Some(100.0), Some(120.0), Better::Higher, &fmt_f);
        assert!(c[3].contains("better") && c[2].contains("+20"));
        let c = compare_cells(Some(100.0), Some(120.0), Better::Lower, &fmt_f);
        assert!(c[3].contains("worse"));
        let c = compare_cells(None, Some(1.0), Better::Lower, &fmt_f);
        assert!(c[3].contains("n/a"));
    }
}
