//! The HTML report: [`render`] turns one [`Results`] (and optionally a baseline to compare with)
//! into ONE self-contained HTML document — inline CSS, inline SVG charts from [`crate::svg`], no
//! scripts, nothing fetched from the network — that also prints legibly. Its one link is
//! relative: goose's own report, saved beside it in the run folder when viewers ran.
//!
//! Sections, in order: run summary and SLO verdicts, throughput and errors over time (with
//! requests/s and bytes/s, and each signal's pacing: target versus scheduled versus sent),
//! latency (a numeric table of send and write-to-query percentiles, the write-to-query
//! resolution, the percentile spectrum and over time), loss and duplicates, breakdown by device
//! type and region, collector and loadgen resources, the read path (dashboard query latency per
//! kind and per panel, with `--viewers`), and the baseline comparison when a baseline is given.
//!
//! Rates over time divide an interval's count by the part of it the schedule covered, so the
//! run's ragged end is neither drawn as a collapse to zero nor as a spike (see [`rate_points`]).
//! Comparisons with a baseline ([`change`]) call a difference better or worse only when it is
//! larger than the noise of the figures compared.
//!
//! Every string that comes from the results is escaped with [`esc`].
//!
//! With viewers (`--viewers`) a read-path section follows latency: query latency per kind and
//! per panel, and the one link the report has, to goose's own report in the same folder.
//!
//! One file per section (`summary`, `throughput`, `latency`, `read_path`, `loss`, `breakdown`, `baseline`);
//! `capacity` renders a capacity search's page (`capacity.html`); `figures` holds the baseline comparison's figures and `format` the number formatting the
//! sections and the terminal summary share.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::histogram::HistogramData;
use crate::results::{Interval, Results, SignalResults};
use crate::svg::{self, BarChart, BarSeries, LineChart, Series, XAxis};

mod baseline;
mod breakdown;
pub mod capacity;
mod figures;
mod format;
mod latency;
mod loss;
mod read_path;
mod summary;
#[cfg(test)]
mod tests;
mod throughput;

pub use baseline::*;
use breakdown::*;
pub use figures::*;
pub use format::*;
pub use latency::*;
use loss::*;
use read_path::*;
use summary::*;
use throughput::*;

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
    if let Some(rp) = &results.read_path {
        doc.push_str(&read_path_section(rp));
    }
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
