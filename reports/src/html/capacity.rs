//! `capacity.html`: one self-contained page for a capacity search, in the report's style: the
//! knee as the banner, charts with the load on x (p99 send, write-to-query and query latency;
//! loss and refusals; CPU and RSS), and a table of every stage linking to its own report.

use super::*;
use crate::capacity::{Capacity, KneeOutcome, broken_names};

/// The page.
pub fn render_capacity(c: &Capacity) -> String {
    let mut doc = String::with_capacity(32 * 1024);
    let title = format!("Capacity search: {}", c.started_at);
    let _ = write!(
        doc,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <header><h1>{t}</h1></header>\n",
        t = esc(&title)
    );
    let class = match c.knee.outcome {
        KneeOutcome::Found => "pass",
        KneeOutcome::NoFailure => "unjudged",
        KneeOutcome::FirstStageFailed | KneeOutcome::Incomplete => "fail",
    };
    let _ = write!(
        doc,
        "<div class=\"banner {class}\">{}</div>\n<p>load by {} · target: {} · objectives: {} · \
         {} stages of {} s, from {} by ×{} up to {}, resolution {}%</p>\n<p class=\"muted\"><code>{}</code></p>\n",
        esc(&c.verdict_line()),
        esc(&c.search.by),
        esc(&c.target),
        esc(&c.objectives.join(", ")),
        c.stages.len(),
        fmt_f(c.search.stage_duration_s),
        esc(&c.load_name(c.search.start)),
        fmt_f(c.search.factor),
        esc(&c.load_name(c.search.max)),
        fmt_f(c.search.resolution * 100.0),
        esc(&c.command),
    );
    doc.push_str(&charts(c));
    doc.push_str(&stage_table(c));
    doc.push_str("</body>\n</html>\n");
    doc
}

/// One line per figure, x the load, in load order.
fn series(c: &Capacity, name: &str, y: impl Fn(&crate::capacity::Stage) -> Option<f64>) -> Series {
    Series {
        name: name.to_string(),
        points: c
            .by_load()
            .into_iter()
            .filter_map(|s| y(s).map(|v| (s.load, v)))
            .collect(),
    }
}

fn charts(c: &Capacity) -> String {
    let x_label = if c.search.by == "rate" {
        "rate multiplier"
    } else {
        "devices"
    };
    let latency = [
        series(c, "p99 send", |s| Some(s.p99_send_ms)),
        series(c, "p99 write-to-query", |s| Some(s.p99_write_to_query_ms)),
        series(c, "p99 query (viewers)", |s| s.p99_query_ms),
    ];
    let loss = [
        series(c, "canary loss", |s| Some(s.loss * 100.0)),
        series(c, "refused or failed", |s| Some(s.errors * 100.0)),
    ];
    let cpu = [series(c, "CPU (cores)", |s| Some(s.cpu_cores))];
    let rss = [series(c, "RSS (MiB)", |s| Some(s.rss_mb))];
    let throughput = [series(c, "acknowledged items/s", |s| {
        Some(s.total_items_per_second())
    })];
    let process = c
        .stages
        .first()
        .map_or("loadgen", |s| s.resources_of.as_str());
    let chart = |title: &str, y_label: &str, series: &[Series]| {
        let c = LineChart {
            title,
            x_label,
            y_label,
            x_axis: XAxis::Linear,
            series,
        };
        format!("<figure class=\"chart\">{}</figure>\n", svg::line_chart(&c))
    };
    let mut body = String::new();
    body.push_str(&chart("p99 latency by load", "ms", &latency));
    body.push_str(&chart(
        "Loss and refusals by load",
        "% (worst signal)",
        &loss,
    ));
    body.push_str(&chart("Throughput by load", "items/s", &throughput));
    body.push_str(&chart(&format!("{process} CPU by load"), "cores", &cpu));
    body.push_str(&chart(&format!("{process} RSS by load"), "MiB", &rss));
    section("charts", "By load", &body)
}

fn stage_table(c: &Capacity) -> String {
    let rows: Vec<Vec<String>> = c
        .by_load()
        .into_iter()
        .map(|s| {
            vec![
                s.index.to_string(),
                format!(
                    "<a href=\"{}/report.html\">{}</a>",
                    esc(&s.dir),
                    esc(&c.load_name(s.load))
                ),
                badge(s.passed()).to_string(),
                esc(&s
                    .items_per_second
                    .iter()
                    .map(|(k, v)| format!("{k} {}", fmt_f(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")),
                format!("{:.1}", s.p99_send_ms),
                format!("{:.1}", s.p99_write_to_query_ms),
                s.p99_query_ms
                    .map_or_else(|| "–".to_string(), |v| format!("{v:.1}")),
                fmt_pct(Some(s.loss)),
                fmt_pct(Some(s.errors)),
                format!("{:.2}", s.cpu_cores),
                format!("{:.1}", s.rss_mb),
                esc(&broken_names(&s.broken)),
            ]
        })
        .collect();
    let mut body = table(
        &[
            "#",
            "load",
            "verdict",
            "items/s",
            "p99 send ms#",
            "p99 w2q ms#",
            "p99 query ms#",
            "loss#",
            "refused#",
            "CPU cores#",
            "RSS MiB#",
            "broke",
        ],
        &rows,
    );
    let broken: Vec<String> = c.knee.broken.iter().map(|b| esc(b)).collect();
    if !broken.is_empty() {
        let _ = writeln!(
            body,
            "<h3>What broke at the first failing load</h3><ul><li>{}</li></ul>",
            broken.join("</li><li>")
        );
    }
    section("stages", "Stages", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::tests::sample;

    #[test]
    fn page_has_the_knee_the_charts_and_every_stage() {
        let html = render_capacity(&sample());
        assert!(html.contains("KNEE 250 devices"));
        assert_eq!(html.matches("<svg").count(), 5);
        for load in ["100", "200", "250", "300", "400"] {
            assert!(html.contains(&format!("{load} devices</a>")), "{load}");
        }
        assert!(!html.contains("<script"));
    }
}
