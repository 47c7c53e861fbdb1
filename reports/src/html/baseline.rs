//! Section 7: the baseline comparison: figures side by side with their change, and the
//! settings that differ between the runs.

use super::*;

/// Cells: baseline, this run, delta, change.
pub(super) fn compare_cells(
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
pub(super) fn delivery(r: &Results) -> &str {
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
    if x.agent != y.agent && !x.agent.is_empty() && !y.agent.is_empty() {
        // Runs of different agents are compared on purpose (the column heads name them): only
        // the stack part of the target ("embedded stack, agent ...") must match.
        let stack = |r: &Results| {
            target(r)
                .split_once(", ")
                .map_or(target(r), |(s, _)| s.to_string())
        };
        differ("stack", stack(a), stack(b));
    } else {
        differ("target", target(a), target(b));
    }
    differ("seed", x.seed.to_string(), y.seed.to_string());
    differ("delivery", delivery(a).to_string(), delivery(b).to_string());
    differ(
        "loadgen version",
        x.loadgen_version.clone(),
        y.loadgen_version.clone(),
    );
    out
}

pub(super) fn baseline_section(r: &Results, base: &Results) -> String {
    let agent = |x: &Results| {
        if x.run.agent.is_empty() {
            String::new()
        } else {
            format!(" (agent <b>{}</b>)", esc(&x.run.agent))
        }
    };
    let mut body = format!(
        "<p>This run <b>{}</b>{} compared with baseline <b>{}</b>{} (started {}).</p>\n",
        esc(&r.run.id),
        agent(r),
        esc(&base.run.id),
        agent(base),
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
    // Runs of different agents side by side: the columns name them.
    let head = |x: &Results, default: &str| {
        if x.run.agent.is_empty() || base.run.agent == r.run.agent {
            format!("{default}#")
        } else {
            format!("{default}: {}#", x.run.agent)
        }
    };
    let (base_head, this_head) = (head(base, "baseline"), head(r, "this run"));
    let headers = [
        "signal",
        "metric",
        base_head.as_str(),
        this_head.as_str(),
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
