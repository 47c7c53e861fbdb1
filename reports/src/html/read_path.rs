//! Section: the read path under write load (`--viewers`): who read through what, query latency
//! per kind (a table and the percentile spectrum), failures by status, the slowest panels, and
//! the link to goose's own report saved in the same run folder.

use super::*;
use crate::read_path::ReadPath;

/// Panels listed in the per-panel table (slowest p99 first); the rest are summed up in a line.
const PANELS_SHOWN: usize = 20;

pub(super) fn read_path_section(rp: &ReadPath) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p>{} viewers (goose users) opened {} through <code>{}</code>: {} dashboard refreshes, \
         {} queries, {} answered. Latency is from the moment a query left to its whole answer \
         read.</p>",
        rp.viewers,
        esc(&rp.dashboards.join(", ")),
        esc(&rp.via),
        fmt_int(rp.refreshes),
        fmt_int(rp.queries()),
        fmt_int(rp.answered()),
    );
    if let Some(f) = &rp.goose_report {
        // The one link of the report: a file beside it in the run folder.
        let _ = writeln!(
            body,
            "<p>Goose's own report (per request name, status codes, users over time): \
             <a href=\"{f}\">{f}</a></p>",
            f = esc(f)
        );
    }
    body.push_str("<h3>Query latency per kind</h3>\n");
    body.push_str(&kinds_table(rp));
    let mut notes = String::new();
    let series = spectrum_series(
        rp.kinds.iter().map(|(name, k)| (name, &k.latency)),
        &mut notes,
    );
    body.push_str(&svg::line_chart(&LineChart {
        title: "Query latency by percentile, per query kind",
        x_label: "percentile (log scale)",
        y_label: "query latency (ms)",
        x_axis: XAxis::Percentile,
        series: &series,
    }));
    body.push_str(&notes);
    for (name, k) in &rp.kinds {
        if !k.errors.is_empty() {
            let by: Vec<String> = k
                .errors
                .iter()
                .map(|(s, n)| format!("{}: {}", esc(s), fmt_int(*n)))
                .collect();
            let _ = writeln!(
                body,
                "<p>Failed {} queries by status: {}</p>",
                esc(name),
                by.join(", ")
            );
        }
    }
    if let Some(line) = rp.skipped_line() {
        let _ = writeln!(body, "<p>{}</p>", esc(&line));
    }
    body.push_str(&panels_table(rp));
    section("read-path", "Read path: dashboards under load", &body)
}

fn kinds_table(rp: &ReadPath) -> String {
    if rp.kinds.is_empty() {
        return "<p class=\"nodata\">no query was sent</p>\n".to_string();
    }
    let rows: Vec<Vec<String>> = rp
        .kinds
        .iter()
        .map(|(name, k)| {
            let h = &k.latency;
            let mut row = vec![esc(name), fmt_int(k.queries), fmt_int(k.failed())];
            row.extend(percentiles(h));
            row
        })
        .collect();
    table(
        &[
            "query kind",
            "queries#",
            "failed#",
            "p50#",
            "p90#",
            "p99#",
            "p99.9#",
            "max#",
        ],
        &rows,
    )
}

fn panels_table(rp: &ReadPath) -> String {
    if rp.panels.is_empty() {
        return String::new();
    }
    let mut panels: Vec<_> = rp.panels.iter().collect();
    panels.sort_by_key(|p| std::cmp::Reverse(p.latency.p99));
    let mut s = format!(
        "<h3>Panels, slowest p99 first ({} of {})</h3>\n",
        panels.len().min(PANELS_SHOWN),
        panels.len()
    );
    let rows: Vec<Vec<String>> = panels
        .iter()
        .take(PANELS_SHOWN)
        .map(|p| {
            let h = &p.latency;
            let mut row = vec![
                esc(&p.dashboard),
                esc(&p.panel),
                esc(&p.kinds.join(", ")),
                fmt_int(p.queries),
                fmt_int(p.errors),
            ];
            row.extend(percentiles(h).into_iter().skip(2).step_by(2));
            row
        })
        .collect();
    s.push_str(&table(
        &[
            "dashboard",
            "panel",
            "kinds",
            "queries#",
            "failed#",
            "p99#",
            "max#",
        ],
        &rows,
    ));
    s
}

/// p50, p90, p99, p99.9 and max, or dashes for an empty histogram.
fn percentiles(h: &HistogramData) -> Vec<String> {
    [h.p50, h.p90, h.p99, h.p999, h.max]
        .map(|v| {
            if h.count > 0 {
                fmt_ms(v, &h.unit)
            } else {
                "–".to_string()
            }
        })
        .to_vec()
}
