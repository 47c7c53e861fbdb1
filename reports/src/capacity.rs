//! `capacity.json`: what `loadgen capacity` found: every stage it ran (its load, verdict and the
//! figures that decide a pipeline's size) and the knee: the largest load that met every
//! objective and the first that did not, with the objectives it broke. The terminal summary
//! ([`Capacity::summary`]), `capacity.html` ([`crate::html::capacity`]) and `loadgen compare`
//! read this and nothing else. Each stage's own `results.json` sits in its folder
//! (`stage-NN-<load>/`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::html::to_ms;
use crate::results::Results;
use crate::verdict::Outcome;

/// The schema version of `capacity.json` this crate writes and reads.
pub const CAPACITY_SCHEMA_VERSION: u32 = 1;

/// What `kind` says in every `capacity.json`, so a reader tells it from a `results.json`.
pub const CAPACITY_KIND: &str = "capacity";

/// One capacity search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub schema_version: u32,
    /// Always [`CAPACITY_KIND`].
    pub kind: String,
    /// RFC3339.
    pub started_at: String,
    /// The command line, secrets removed.
    pub command: String,
    /// The stack and the collector, as the stages' `results.json` name them.
    pub target: String,
    pub search: SearchSettings,
    /// The objectives every stage was judged by, as `name=value`.
    pub objectives: Vec<String>,
    /// In the order run.
    pub stages: Vec<Stage>,
    pub knee: Knee,
}

/// How the load was ramped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// What the load is: "devices" (the fleet's size) or "rate" (the rate multiplier, fleet fixed).
    pub by: String,
    pub start: f64,
    /// Each ramp stage's load is the previous one's times this.
    pub factor: f64,
    /// No stage above this load.
    pub max: f64,
    /// Bisection stops when the first failing load is within this fraction above the last
    /// passing one.
    pub resolution: f64,
    pub stage_duration_s: f64,
    /// Devices of every stage with `by = "rate"`; the start's with `by = "devices"`.
    pub devices: u64,
    /// Rate multiplier of every stage with `by = "devices"`.
    pub rate_multiplier: f64,
}

/// One stage: a whole run at one load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// 1-based, in the order run.
    pub index: u32,
    /// Devices, or the rate multiplier (see [`SearchSettings::by`]).
    pub load: f64,
    pub devices: u64,
    pub rate_multiplier: f64,
    /// The stage's run folder (its results.json and report.html), relative to capacity.json's.
    pub dir: String,
    pub outcome: Outcome,
    /// The objectives this stage broke, as the verdict words them ("p99_send_ms: 812.0 > 500
    /// (logs: p99 send latency 812.0 ms)").
    pub broken: Vec<String>,
    /// Acknowledged items per second, per signal.
    pub items_per_second: BTreeMap<String, f64>,
    /// What the schedule aimed at, per signal.
    pub target_items_per_second: BTreeMap<String, f64>,
    /// The worst signal's p99 send latency, ms.
    pub p99_send_ms: f64,
    /// The worst signal's p99 write-to-query latency of canaries, ms.
    pub p99_write_to_query_ms: f64,
    /// The worst signal's canary loss, a fraction.
    pub loss: f64,
    /// The worst signal's share of sent items refused or failed.
    pub errors: f64,
    /// Query latency of the read path, when the run had viewers (`--viewers`).
    /// The worst query kind's p99, as the `p99_query_ms` objective reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_query_ms: Option<f64>,
    /// Which process CPU and RSS are of: "collector" when loadgen spawned it, else "loadgen"
    /// (whose figures include an in-process collector).
    pub resources_of: String,
    /// Mean CPU of that process, cores (its first sample left out: see [`Stage::of`]).
    pub cpu_cores: f64,
    /// Peak RSS of that process, MiB.
    pub rss_mb: f64,
}

/// How the search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KneeOutcome {
    /// A passing load and, within the resolution above it, a failing one.
    Found,
    /// Every stage passed, up to the maximum load.
    NoFailure,
    /// Even the first (smallest) stage failed.
    FirstStageFailed,
    /// The search stopped early (a stage could not run); the stages so far are kept.
    Incomplete,
}

/// The knee: between the last load that met every objective and the first that did not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    pub outcome: KneeOutcome,
    /// The largest load that met every objective.
    pub last_pass: Option<f64>,
    /// The smallest load that broke one.
    pub first_fail: Option<f64>,
    /// The objectives the first failing load broke.
    pub broken: Vec<String>,
    /// Why the search ended as it did, for the operator.
    pub detail: String,
}

/// Why a capacity file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("not a capacity file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a capacity file (kind {0:?}); loadgen capacity writes capacity.json")]
    Kind(String),
    #[error(
        "capacity schema version {found} is not supported (this build reads {CAPACITY_SCHEMA_VERSION})"
    )]
    Version { found: u32 },
}

impl Stage {
    /// A stage's figures from its run's results.
    pub fn of(index: u32, load: f64, dir: &str, r: &Results) -> Stage {
        let verdict = r.verdict();
        let worst = |f: &dyn Fn(&crate::results::SignalResults) -> f64| {
            r.signals.values().map(f).fold(0.0f64, f64::max)
        };
        let spawned = r.resources.iter().any(|s| s.process == "collector");
        let of = if spawned { "collector" } else { "loadgen" };
        let samples: Vec<_> = r.resources.iter().filter(|s| s.process == of).collect();
        // The first sample is left out of the mean: in results from before the sampler was
        // primed at its start, it averaged all of loadgen's CPU time since the process began
        // (earlier stages included); one sample of a stage's fifteen changes little.
        let cpu = samples.get(1..).unwrap_or_default();
        let cpu_cores = if cpu.is_empty() {
            0.0
        } else {
            cpu.iter().map(|s| s.cpu_cores).sum::<f64>() / cpu.len() as f64
        };
        let rss_mb = samples
            .iter()
            .map(|s| s.rss_bytes as f64 / (1024.0 * 1024.0))
            .fold(0.0, f64::max);
        Stage {
            index,
            load,
            devices: r.run.devices,
            rate_multiplier: r.run.rate_multiplier,
            dir: dir.to_string(),
            outcome: verdict.outcome,
            broken: r
                .slos
                .iter()
                .filter(|s| !s.pass)
                .map(|s| {
                    format!(
                        "{}: {} > {} ({})",
                        s.name,
                        crate::html::fmt_f(s.actual),
                        crate::html::fmt_f(s.threshold),
                        s.detail
                    )
                })
                .collect(),
            items_per_second: r
                .signals
                .iter()
                .map(|(k, s)| (k.clone(), s.items_per_second))
                .collect(),
            target_items_per_second: r
                .signals
                .iter()
                .map(|(k, s)| (k.clone(), s.target_items_per_second))
                .collect(),
            p99_send_ms: worst(&|s| to_ms(s.send_latency.p99 as f64, &s.send_latency.unit)),
            p99_write_to_query_ms: worst(&|s| {
                let h = &s.verification.write_to_query_latency;
                to_ms(h.p99 as f64, &h.unit)
            }),
            loss: worst(&|s| s.verification.loss_fraction().unwrap_or(0.0)),
            errors: worst(&|s| {
                if s.sent == 0 {
                    0.0
                } else {
                    s.sent.saturating_sub(s.acknowledged) as f64 / s.sent as f64
                }
            }),
            p99_query_ms: r.read_path.as_ref().and_then(|rp| {
                let (ms, _) =
                    crate::read_path::objective(crate::verdict::SloKind::P99QueryMs, Some(rp));
                ms.is_finite().then_some(ms)
            }),
            resources_of: of.to_string(),
            cpu_cores,
            rss_mb,
        }
    }

    /// All signals' acknowledged items per second.
    pub fn total_items_per_second(&self) -> f64 {
        self.items_per_second.values().sum()
    }

    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

impl Capacity {
    /// Parses `capacity.json`, refusing other kinds and schema versions with a clear message.
    pub fn from_json(text: &str) -> Result<Capacity, CapacityError> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            kind: String,
            schema_version: u32,
        }
        let probe: Probe = serde_json::from_str(text)?;
        if probe.kind != CAPACITY_KIND {
            return Err(CapacityError::Kind(probe.kind));
        }
        if probe.schema_version != CAPACITY_SCHEMA_VERSION {
            return Err(CapacityError::Version {
                found: probe.schema_version,
            });
        }
        Ok(serde_json::from_str(text)?)
    }

    /// Whether `text` is a capacity file (rather than a results.json), without parsing it whole.
    pub fn is_capacity_json(text: &str) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            kind: String,
        }
        serde_json::from_str::<Probe>(text).is_ok_and(|p| p.kind == CAPACITY_KIND)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A load as the search names it: "640 devices", "x2.5 rate".
    pub fn load_name(&self, load: f64) -> String {
        load_name(&self.search.by, load)
    }

    /// The stage run at `load`, if any.
    pub fn stage_at(&self, load: f64) -> Option<&Stage> {
        self.stages.iter().find(|s| s.load == load)
    }

    /// The first line of every output: `KNEE …`, `NO KNEE: …` or `FAILED: …`.
    pub fn verdict_line(&self) -> String {
        let k = &self.knee;
        match (k.outcome, k.last_pass, k.first_fail) {
            (KneeOutcome::Found, Some(pass), Some(fail)) => {
                let items = self
                    .stage_at(pass)
                    .map(|s| {
                        format!(
                            ", {} items/s",
                            crate::html::fmt_f(s.total_items_per_second())
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "KNEE {}{items} (met every objective; {} broke {})",
                    self.load_name(pass),
                    self.load_name(fail),
                    broken_names(&k.broken)
                )
            }
            (KneeOutcome::NoFailure, ..) => format!("NO KNEE: {}", k.detail),
            _ => format!("FAILED: {}", k.detail),
        }
    }

    /// The plain-text summary: the verdict line, then a table of the stages by load.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.verdict_line());
        let _ = writeln!(
            out,
            "objectives: {}; {} stages of {}s",
            self.objectives.join(", "),
            self.stages.len(),
            crate::html::fmt_f(self.search.stage_duration_s)
        );
        let _ = writeln!(
            out,
            "{:>4}  {:>12}  {:<10}  {:>11}  {:>11}  {:>11}  {:>8}  {:>6}  {:>7}  broke",
            "#",
            "load",
            "verdict",
            "items/s",
            "p99 send ms",
            "p99 w2q ms",
            "loss",
            "cpu",
            "rss MiB"
        );
        for s in self.by_load() {
            let _ = writeln!(
                out,
                "{:>4}  {:>12}  {:<10}  {:>11}  {:>11.1}  {:>11.1}  {:>7.3}%  {:>6.2}  {:>7.1}  {}",
                s.index,
                self.load_name(s.load),
                s.outcome.as_str(),
                crate::html::fmt_f(s.total_items_per_second()),
                s.p99_send_ms,
                s.p99_write_to_query_ms,
                s.loss * 100.0,
                s.cpu_cores,
                s.rss_mb,
                broken_names(&s.broken)
            );
        }
        out
    }

    /// The stages in load order.
    pub fn by_load(&self) -> Vec<&Stage> {
        let mut v: Vec<&Stage> = self.stages.iter().collect();
        v.sort_by(|a, b| a.load.total_cmp(&b.load));
        v
    }
}

/// "640 devices" or "x2.5 rate".
pub fn load_name(by: &str, load: f64) -> String {
    if by == "rate" {
        format!("x{} rate", crate::html::fmt_f(load))
    } else {
        format!("{} devices", load.round() as u64)
    }
}

/// The objectives' names from their verdict wording ("p99_send_ms: … " → "p99_send_ms").
pub fn broken_names(broken: &[String]) -> String {
    if broken.is_empty() {
        return "nothing".into();
    }
    broken
        .iter()
        .map(|b| b.split(':').next().unwrap_or(b).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn stage(index: u32, load: f64, pass: bool) -> Stage {
        Stage {
            index,
            load,
            devices: load as u64,
            rate_multiplier: 1.0,
            dir: format!("stage-{index:02}-{load}"),
            outcome: if pass { Outcome::Pass } else { Outcome::Fail },
            broken: if pass {
                vec![]
            } else {
                vec!["errors: 0.1 > 0 (metrics: 40 of 400 items refused)".into()]
            },
            items_per_second: BTreeMap::from([("metrics".into(), load * 2.0)]),
            target_items_per_second: BTreeMap::from([("metrics".into(), load * 2.0)]),
            p99_send_ms: load / 10.0,
            p99_write_to_query_ms: 1000.0,
            loss: 0.0,
            errors: if pass { 0.0 } else { 0.1 },
            p99_query_ms: None,
            resources_of: "loadgen".into(),
            cpu_cores: load / 1000.0,
            rss_mb: 50.0,
        }
    }

    pub(crate) fn sample() -> Capacity {
        Capacity {
            schema_version: CAPACITY_SCHEMA_VERSION,
            kind: CAPACITY_KIND.into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            command: "loadgen capacity".into(),
            target: "embedded stack, no collector (direct)".into(),
            search: SearchSettings {
                by: "devices".into(),
                start: 100.0,
                factor: 2.0,
                max: 1000.0,
                resolution: 0.25,
                stage_duration_s: 5.0,
                devices: 100,
                rate_multiplier: 1.0,
            },
            objectives: vec!["errors=0".into()],
            stages: vec![
                stage(1, 100.0, true),
                stage(2, 200.0, true),
                stage(3, 400.0, false),
                stage(4, 300.0, false),
                stage(5, 250.0, true),
            ],
            knee: Knee {
                outcome: KneeOutcome::Found,
                last_pass: Some(250.0),
                first_fail: Some(300.0),
                broken: vec!["errors: 0.1 > 0 (metrics: 40 of 400 items refused)".into()],
                detail: String::new(),
            },
        }
    }

    #[test]
    fn round_trips_and_refuses_a_results_file() {
        let c = sample();
        let text = c.to_json();
        assert!(Capacity::is_capacity_json(&text));
        assert_eq!(Capacity::from_json(&text).unwrap(), c);
        let err = Capacity::from_json(r#"{"schema_version":1,"run":{}}"#).unwrap_err();
        assert!(err.to_string().contains("not a capacity file"), "{err}");
    }

    #[test]
    fn the_summary_opens_with_the_knee() {
        let s = sample().summary();
        let first = s.lines().next().unwrap();
        assert_eq!(
            first,
            "KNEE 250 devices, 500 items/s (met every objective; 300 devices broke errors)"
        );
        // Stages are listed by load.
        let loads: Vec<&str> = s
            .lines()
            .skip(3)
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(loads, ["100", "200", "250", "300", "400"]);
    }
}
