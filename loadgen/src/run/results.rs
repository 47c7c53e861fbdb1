//! A run's results: the recorder's report, the verifier's findings and the run's settings put
//! together as one [`reports::Results`], judged by the objectives, and written as
//! `results.json` and `report.html` into the run folder.

use std::path::{Path, PathBuf};

use reports::Results;
use reports::results::{FleetDynamics, RunInfo, Verification};
use reports::verdict::Objectives;

use super::accounting::Shared;
use super::config::io_err;
use super::{RunConfig, RunError};
use crate::deliver::Delivery;
use crate::fleet::{Fleet, Shard};
use crate::recorder::LATENCY_UNIT;
use crate::verify::VerifyReport;
use wire::Signal;

/// What the run measured, besides the recorder in `shared`.
pub(crate) struct Measured {
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    pub(crate) dir: PathBuf,
    pub(crate) dynamics: FleetDynamics,
    pub(crate) verified: VerifyReport,
    pub(crate) resources: Vec<reports::results::ResourceSample>,
    /// What the viewers measured (`--viewers`).
    pub(crate) read_path: Option<reports::read_path::ReadPath>,
    /// What the embedded stack evicted to stay within its retention bound (`None`: not ours).
    pub(crate) evictions: Option<stack::embedded::Evictions>,
}

/// The run's results, judged.
pub(crate) fn assemble(cfg: &RunConfig, fleet: &Fleet, shared: &Shared, m: Measured) -> Results {
    let report = shared
        .recorder
        .report(cfg.duration.saturating_sub(cfg.warmup));
    let target_rates = target_rates(fleet, cfg.rate_multiplier, cfg.delivery);
    let mut verifications = m.verified.verifications();
    let signals = report
        .signals
        .into_iter()
        .map(|(name, totals)| {
            let v = verifications
                .remove(&name)
                .unwrap_or_else(|| Verification::empty(LATENCY_UNIT));
            let mut r = totals.into_results(v);
            if let Some(e) = &m.evictions {
                r.verification.stack_evicted = match name.as_str() {
                    "logs" => e.log_entries,
                    "metrics" => e.metric_samples,
                    "traces" => e.traces,
                    _ => 0,
                };
            }
            r.target_items_per_second = target_rates
                .iter()
                .find(|(s, _)| s.as_str() == name)
                .map_or(0.0, |(_, rate)| *rate);
            (name, r)
        })
        .collect();
    let target = cfg.describe_target();
    let mut results = Results {
        schema_version: reports::SCHEMA_VERSION,
        run: RunInfo {
            id: m
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            started_at: m.started.to_rfc3339(),
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            seed: cfg.fleet.seed,
            devices: fleet.devices.len() as u64,
            shard: cfg.shard.and_then(Shard::to_results),
            shards_merged: 1,
            target: match cfg.delivery {
                Delivery::Push => target,
                d => format!("{target}, delivery {d}"),
            },
            agent: cfg.collector.agent_name(),
            rate_multiplier: cfg.rate_multiplier,
            loadgen_version: env!("CARGO_PKG_VERSION").to_string(),
            command: wire::redact::command(&cfg.command).into_owned(),
        },
        fleet: reports::results::FleetSummary {
            dynamics: m.dynamics,
            ..fleet.summary()
        },
        signals,
        intervals: report.intervals,
        breakdown: std::mem::take(&mut *shared.breakdown.lock()),
        resources: m.resources,
        slos: Vec::new(),
        defaults_off: false,
        read_path: m.read_path,
        verdict: None,
    };
    let mut objectives = Objectives::new(&cfg.slos, cfg.default_slos);
    if results.read_path.is_some() {
        // Viewers ran: a dashboard query that failed fails the run by default.
        objectives = objectives.with_default(reports::Slo {
            kind: reports::SloKind::QueryErrors,
            threshold: 0.0,
        });
    }
    objectives.judge(&mut results);
    results
}

/// Items per second the schedule aims at, per signal: every device's nominal rates times the
/// multiplier. Metrics count samples as remote write does (OTLP delivery sends fewer, larger
/// data points: histograms are one point there).
fn target_rates(fleet: &Fleet, multiplier: f64, delivery: Delivery) -> [(Signal, f64); 3] {
    let mut sum = [0.0f64; 3];
    for d in &fleet.devices {
        let (l, m, t) = crate::generate::Rates::for_type(d.device_type).items_per_s();
        sum[0] += l;
        sum[1] += m;
        sum[2] += t;
    }
    let metrics = if delivery == Delivery::Otlp {
        0.0
    } else {
        sum[1]
    };
    [
        (Signal::Logs, sum[0] * multiplier),
        (Signal::Metrics, metrics * multiplier),
        (Signal::Traces, sum[2] * multiplier),
    ]
}

/// Writes `results.json` and `report.html` (against `baseline`, if given) into `dir`.
pub fn write_outputs(
    results: &Results,
    dir: &Path,
    baseline: Option<&Results>,
) -> Result<(), RunError> {
    let json = dir.join("results.json");
    let text = results.to_json();
    std::fs::write(&json, wire::redact::text(&text).as_bytes()).map_err(io_err(&json))?;
    write_report(results, dir, baseline)
}

/// Writes `report.html` into `dir`. Like `results.json`, it never quotes a URL's credentials:
/// whatever the results hold (an older results.json, a library caller's strings), every URL in
/// the page goes through [`wire::redact::text`].
pub fn write_report(
    results: &Results,
    dir: &Path,
    baseline: Option<&Results>,
) -> Result<(), RunError> {
    let html = dir.join("report.html");
    let page = reports::render(results, baseline);
    std::fs::write(&html, wire::redact::text(&page).as_bytes()).map_err(io_err(&html))
}
