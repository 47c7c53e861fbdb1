//! Section 2: throughput and errors over time, requests and bytes per second, and each
//! signal's pacing (target versus scheduled versus sent).

use super::*;

/// Per-signal rate series from interval counts (`pick` selects sent, errors, ...).
pub(super) fn rate_series(
    r: &Results,
    pick: impl Fn(&Interval) -> &BTreeMap<String, u64>,
) -> Vec<Series> {
    signal_names(r)
        .into_iter()
        .map(|name| {
            let points = rate_points(r, |iv| Some(pick(iv).get(&name).copied().unwrap_or(0)));
            Series { name, points }
        })
        .collect()
}

pub(super) fn throughput_section(r: &Results) -> String {
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
pub(super) fn requests_part(r: &Results) -> String {
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
pub(super) fn pacing_part(r: &Results) -> String {
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
