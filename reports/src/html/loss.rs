//! Section 4: loss and duplicates per signal, refusals by status.

use super::*;

pub(super) fn errors_by_status(s: &SignalResults) -> String {
    if s.errors.is_empty() {
        return "none".to_string();
    }
    s.errors
        .iter()
        .map(|(k, v)| format!("{}: {}", esc(k), fmt_int(*v)))
        .collect::<Vec<_>>()
        .join("<br>")
}

pub(super) fn loss_section(r: &Results) -> String {
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
