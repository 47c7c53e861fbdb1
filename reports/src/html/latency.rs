//! Section 3: latency: send and write-to-query percentiles, the write-to-query resolution,
//! the percentile spectrum and latency over time.

use super::*;

/// Percentile spectrum series (ms) for one histogram per signal; unreadable histograms are named
/// in `notes` rather than drawn.
pub(super) fn spectrum_series<'a>(
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
pub(super) fn latency_table(
    r: &Results,
    count: &str,
    pick: fn(&SignalResults) -> &HistogramData,
) -> String {
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

pub(super) fn latency_section(r: &Results) -> String {
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
