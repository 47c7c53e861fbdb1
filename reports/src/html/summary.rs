//! Section 1: the run summary: verdict banner, settings, SLO table, fleet dynamics.

use super::*;

/// One line on devices that came and went or went offline; "none" when the run had neither.
pub(super) fn dynamics(d: &crate::results::FleetDynamics) -> String {
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

pub(super) fn summary_section(r: &Results) -> String {
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
