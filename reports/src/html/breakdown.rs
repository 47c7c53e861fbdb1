//! Sections 5 and 6: breakdown by device type and region, and the collector's and
//! loadgen's resources.

use super::*;

/// Sent items per signal grouped by device type (`by_type`) or by region, as a bar chart.
pub(super) fn breakdown_chart(
    r: &Results,
    signals: &[String],
    title: &str,
    by_type: bool,
) -> String {
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

pub(super) fn breakdown_section(r: &Results) -> String {
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

pub(super) fn resources_section(r: &Results) -> String {
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
