//! `loadgen capacity`: how much load the pipeline takes. Ramps the load in stages (the fleet's
//! device count, or the rate multiplier with a fixed fleet), each stage a whole
//! [`crate::run::run`] in its own folder `stage-NN-<load>/` (results.json, report.html),
//! judged by the run's objectives, and reports the knee: the largest load that met every
//! objective, the first that did not and which objectives it broke.
//!
//! | part | module |
//! |---|---|
//! | which load next, and when to stop (pure, property-tested) | [`plan`] |
//! | running the stages, writing `capacity.json` and `capacity.html` | this file |
//!
//! Besides the run's default objectives (nothing lost, duplicated, refused; every signal
//! verified) a capacity search judges latency, which is what degrades first under overload
//! before data is lost: [`CAPACITY_SLOS`] (`p99_send_ms=1000`, `p99_write_to_query_ms=5000`),
//! each replaced by a `--slo` of its name.

pub mod plan;

use std::path::{Path, PathBuf};

use reports::capacity::{
    CAPACITY_KIND, CAPACITY_SCHEMA_VERSION, Capacity, Knee, KneeOutcome, SearchSettings, Stage,
    broken_names, load_name,
};
use reports::verdict::{Objectives, Slo, SloKind};

use crate::run::{RunConfig, RunError};
pub use plan::{Next, Plan, PlanError};

/// The objectives a capacity search adds to the run's defaults (each replaced by a `--slo` of
/// its name): p99 send latency within 1 s and p99 write-to-query latency within 5 s.
pub const CAPACITY_SLOS: [Slo; 2] = [
    Slo {
        kind: SloKind::P99SendMs,
        threshold: 1000.0,
    },
    Slo {
        kind: SloKind::P99WriteToQueryMs,
        threshold: 5000.0,
    },
];

/// What the load of a stage is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadAxis {
    /// The number of devices (the fleet grows; each device at its nominal rate × `--rate`).
    Devices,
    /// The rate multiplier (the fleet fixed at `--devices`).
    Rate,
}

impl LoadAxis {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadAxis::Devices => "devices",
            LoadAxis::Rate => "rate",
        }
    }
}

/// A capacity search.
#[derive(Clone, Debug)]
pub struct CapacityConfig {
    /// Every stage's settings but its load: `duration` is the stage's, `drain_timeout` its
    /// drain, `slos` the objectives given (the capacity ones are added by [`objectives`]).
    pub base: RunConfig,
    pub by: LoadAxis,
    pub plan: Plan,
    /// The search's folder [default: `runs/<timestamp>-capacity`].
    pub out_dir: Option<PathBuf>,
}

/// Why a search could not start (a failure after the first stage is a result: the knee says
/// the search is incomplete).
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("capacity folder {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The objectives given plus the capacity ones not given by name.
pub fn objectives(given: &[Slo]) -> Vec<Slo> {
    let mut slos = given.to_vec();
    for d in CAPACITY_SLOS {
        if !given.iter().any(|g| g.kind == d.kind) {
            slos.push(d);
        }
    }
    slos
}

/// What is reported while the search runs.
pub trait Observer {
    /// A stage is about to run.
    fn starting(&mut self, _index: u32, _load: &str) {}
    /// A stage finished.
    fn finished(&mut self, _stage: &Stage, _load: &str) {}
}

/// Reports nothing.
impl Observer for () {}

/// Runs the search; writes `capacity.json` and `capacity.html` into its folder after every stage
/// (so an interrupted search leaves what it found) and returns them with the folder.
pub async fn search(
    cfg: &CapacityConfig,
    observer: &mut dyn Observer,
) -> Result<(Capacity, PathBuf), CapacityError> {
    let started = chrono::Utc::now();
    let dir = cfg.out_dir.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-capacity", started.format("%Y%m%dT%H%M%SZ")))
    });
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let slos = objectives(&cfg.base.slos);
    let objectives = Objectives::new(&slos, cfg.base.default_slos);
    let mut capacity = Capacity {
        schema_version: CAPACITY_SCHEMA_VERSION,
        kind: CAPACITY_KIND.into(),
        started_at: started.to_rfc3339(),
        command: wire::redact::command(&cfg.base.command).into_owned(),
        target: cfg.base.describe_target(),
        search: SearchSettings {
            by: cfg.by.as_str().into(),
            start: cfg.plan.start,
            factor: cfg.plan.factor,
            max: cfg.plan.max,
            resolution: cfg.plan.resolution,
            stage_duration_s: cfg.base.duration.as_secs_f64(),
            devices: match cfg.by {
                LoadAxis::Devices => cfg.plan.start.round() as u64,
                LoadAxis::Rate => cfg.base.fleet.devices,
            },
            rate_multiplier: cfg.base.rate_multiplier,
        },
        objectives: objectives.slos.iter().map(|(s, _)| s.to_string()).collect(),
        stages: Vec::new(),
        knee: Knee {
            outcome: KneeOutcome::Incomplete,
            last_pass: None,
            first_fail: None,
            broken: Vec::new(),
            detail: "no stage finished".into(),
        },
    };
    let mut history: Vec<(f64, bool)> = Vec::new();
    loop {
        let load = match cfg.plan.next(&history) {
            Next::Run(load) => load,
            end => {
                capacity.knee = knee(&capacity, end);
                write(&capacity, &dir)?;
                return Ok((capacity, dir));
            }
        };
        let index = history.len() as u32 + 1;
        let name = load_name(cfg.by.as_str(), load);
        let stage_dir = dir.join(stage_folder(index, cfg.by, load));
        let stage_cfg = stage_config(cfg, load, &stage_dir, &slos);
        observer.starting(index, &name);
        let results = match crate::run::run(&stage_cfg).await {
            Ok((results, _)) => results,
            // The target could not even start: the settings are wrong, not the load.
            Err(e) if history.is_empty() => return Err(e.into()),
            Err(e) => {
                capacity.knee = Knee {
                    outcome: KneeOutcome::Incomplete,
                    last_pass: last_pass(&history),
                    first_fail: None,
                    broken: Vec::new(),
                    detail: format!("stage {index} ({name}) could not run: {e}"),
                };
                write(&capacity, &dir)?;
                return Ok((capacity, dir));
            }
        };
        let rel = stage_dir
            .strip_prefix(&dir)
            .unwrap_or(&stage_dir)
            .display()
            .to_string();
        let stage = Stage::of(index, load, &rel, &results);
        observer.finished(&stage, &name);
        history.push((load, stage.passed()));
        capacity.stages.push(stage);
        write(&capacity, &dir)?;
    }
}

/// `stage-03-640d`, `stage-04-x2.5`.
fn stage_folder(index: u32, by: LoadAxis, load: f64) -> String {
    match by {
        LoadAxis::Devices => format!("stage-{index:02}-{}d", load.round() as u64),
        LoadAxis::Rate => format!("stage-{index:02}-x{load}"),
    }
}

/// The run settings of one stage.
fn stage_config(cfg: &CapacityConfig, load: f64, dir: &Path, slos: &[Slo]) -> RunConfig {
    let mut run = cfg.base.clone();
    match cfg.by {
        LoadAxis::Devices => run.fleet.devices = load.round() as u64,
        LoadAxis::Rate => run.rate_multiplier = load,
    }
    run.out_dir = Some(dir.to_path_buf());
    run.slos = slos.to_vec();
    run
}

fn last_pass(history: &[(f64, bool)]) -> Option<f64> {
    history
        .iter()
        .filter(|(_, p)| *p)
        .map(|(l, _)| *l)
        .reduce(f64::max)
}

/// The knee record of how the search ended.
fn knee(c: &Capacity, end: Next) -> Knee {
    let name = |l: f64| c.load_name(l);
    let broken_at = |l: f64| c.stage_at(l).map(|s| s.broken.clone()).unwrap_or_default();
    match end {
        Next::Knee {
            last_pass,
            first_fail,
        } => {
            let broken = broken_at(first_fail);
            Knee {
                outcome: KneeOutcome::Found,
                last_pass: Some(last_pass),
                first_fail: Some(first_fail),
                detail: format!(
                    "{} met every objective; {} broke {}",
                    name(last_pass),
                    name(first_fail),
                    broken_names(&broken)
                ),
                broken,
            }
        }
        Next::NoFailure { last_pass } => Knee {
            outcome: KneeOutcome::NoFailure,
            last_pass: Some(last_pass),
            first_fail: None,
            broken: Vec::new(),
            detail: format!(
                "every stage up to {} (--max) met every objective; raise --max or tighten --slo",
                name(last_pass)
            ),
        },
        Next::FirstFailed { first_fail } => {
            let broken = broken_at(first_fail);
            Knee {
                outcome: KneeOutcome::FirstStageFailed,
                last_pass: None,
                first_fail: Some(first_fail),
                detail: format!(
                    "the first stage ({}) already broke {}; lower --start",
                    name(first_fail),
                    broken_names(&broken)
                ),
                broken,
            }
        }
        // `search` only asks for the knee when the plan has stopped.
        Next::Run(load) => Knee {
            outcome: KneeOutcome::Incomplete,
            last_pass: None,
            first_fail: None,
            broken: Vec::new(),
            detail: format!("stopped before {}", name(load)),
        },
    }
}

/// Writes `capacity.json` and `capacity.html` into `dir`.
pub fn write(c: &Capacity, dir: &Path) -> Result<(), CapacityError> {
    // As results.json and report.html: no URL's credentials, whatever `c` holds.
    let json = dir.join("capacity.json");
    std::fs::write(&json, wire::redact::text(&c.to_json()).as_bytes()).map_err(io_err(&json))?;
    let html = dir.join("capacity.html");
    let page = reports::html::capacity::render_capacity(c);
    std::fs::write(&html, wire::redact::text(&page).as_bytes()).map_err(io_err(&html))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CapacityError + '_ {
    move |source| CapacityError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_slo_replaces_the_capacity_default_of_its_name() {
        let given: Slo = "p99_send_ms=200".parse().unwrap();
        let slos = objectives(&[given]);
        assert_eq!(slos.len(), 2);
        assert_eq!(slos[0], given);
        assert_eq!(slos[1].kind, SloKind::P99WriteToQueryMs);
    }

    #[test]
    fn stage_folders_name_the_load() {
        assert_eq!(stage_folder(3, LoadAxis::Devices, 640.0), "stage-03-640d");
        assert_eq!(stage_folder(12, LoadAxis::Rate, 2.5), "stage-12-x2.5");
    }
}
