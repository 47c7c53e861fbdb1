//! The capacity search against a known ceiling: the embedded Mimir with a per-tenant sample rate
//! limit (`ingestion_rate`, `ingestion_burst_size`) that refuses pushes over it with 429. The
//! fleet is routers only, so every device sends the same scrape (29 series, plus the canary
//! series on its first scrape) every 15 s at its own phase; the knee follows from those nominal
//! rates, and the search must bracket it within its resolution (plus the noise of a few seconds
//! of random phases, well inside the tolerance below).
//!
//! With the fleet pushing straight to the stack, a refused push is a refused item, so the
//! `errors` objective breaks. Through the in-process collector the fleet is acknowledged by the
//! collector and the 429s become the collector's retries and drops: the second test checks that
//! such a run still fails, by lost or late canaries.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::capacity::{CapacityConfig, LoadAxis, Plan, search};
use loadgen::fleet::{FleetSpec, TypeMix};
use loadgen::run::{CollectorChoice, RunConfig};
use reports::capacity::KneeOutcome;
use stack::embedded::limits::{IngestLimits, RateLimit};
use stack::{EmbeddedConfig, StackChoice};

/// Mimir's limit: samples per second and burst.
const RATE: f64 = 600.0;
const BURST: f64 = 600.0;
/// Each stage's sending time: shorter than the scrape interval, so each device scrapes at most
/// once per stage, and that scrape carries the canary series.
const STAGE: Duration = Duration::from_secs(6);
/// A router's scrape: 29 series and the canary series, every 15 s.
const SAMPLES_PER_SCRAPE: f64 = 30.0;
const SCRAPE_S: f64 = 15.0;

/// Routers only: every device sends the same metrics.
fn routers(devices: u64) -> FleetSpec {
    FleetSpec {
        devices,
        seed: 7,
        mix: TypeMix {
            server: 0.0,
            pos: 0.0,
            router: 1.0,
            switch: 0.0,
            custom: 0.0,
        },
        ..FleetSpec::default()
    }
}

fn limited_stack() -> StackChoice {
    StackChoice::Embedded(EmbeddedConfig {
        limits: IngestLimits {
            mimir_samples: RateLimit::new(RATE, BURST),
            ..IngestLimits::default()
        },
        ..EmbeddedConfig::default()
    })
}

/// The largest fleet whose stage stays within the limit on average: over a stage of D seconds
/// the bucket lets through BURST + RATE × D samples, and N devices send N × D / 15 scrapes.
fn expected_knee() -> f64 {
    let d = STAGE.as_secs_f64();
    (BURST + RATE * d) / (SAMPLES_PER_SCRAPE * d / SCRAPE_S)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_finds_the_knee_a_mimir_rate_limit_puts() {
    let out = tempfile::tempdir().unwrap();
    let base = RunConfig {
        fleet: routers(100),
        duration: STAGE,
        drain_timeout: Duration::from_secs(15),
        stack: limited_stack(),
        collector: CollectorChoice::None,
        ..RunConfig::default()
    };
    let resolution = 0.2;
    let cfg = CapacityConfig {
        base,
        by: LoadAxis::Devices,
        plan: Plan::new(100.0, 2.0, 2000.0, resolution, true).unwrap(),
        out_dir: Some(out.path().to_path_buf()),
    };
    let (c, dir) = search(&cfg, &mut ()).await.unwrap();
    let knee = expected_knee();
    assert_eq!(c.knee.outcome, KneeOutcome::Found, "{}", c.summary());
    let (pass, fail) = (c.knee.last_pass.unwrap(), c.knee.first_fail.unwrap());
    // Within one bisection step of each other, and around the computed knee: a stage 30 %
    // below it passes and one 30 % above fails but for a 4-sigma fluke of the devices' phases.
    assert!(fail - pass <= resolution * pass, "{}", c.summary());
    assert!(
        pass <= knee * 1.3 && fail >= knee * 0.7,
        "expected the knee near {knee:.0} devices:\n{}",
        c.summary()
    );
    // What broke is the refusals, and the stage says 429.
    assert!(
        c.knee
            .broken
            .iter()
            .any(|b| b.starts_with("errors:") && b.contains("429")),
        "{:?}",
        c.knee.broken
    );
    // Every stage has its run folder, and the files read back.
    for s in &c.stages {
        assert!(dir.join(&s.dir).join("results.json").is_file(), "{}", s.dir);
    }
    let text = std::fs::read_to_string(dir.join("capacity.json")).unwrap();
    assert_eq!(reports::Capacity::from_json(&text).unwrap(), c);
    let html = std::fs::read_to_string(dir.join("capacity.html")).unwrap();
    assert!(html.contains(&c.verdict_line().replace('&', "&amp;")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_collector_a_rate_limited_stage_still_fails() {
    let out = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        // Twice the knee: a third of the samples over the limit.
        fleet: routers((expected_knee() * 2.0) as u64),
        duration: STAGE,
        drain_timeout: Duration::from_secs(10),
        stack: limited_stack(),
        collector: CollectorChoice::InProcess,
        out_dir: Some(out.path().join("run")),
        slos: loadgen::capacity::objectives(&[]),
        ..RunConfig::default()
    };
    let (results, _) = loadgen::run::run(&cfg).await.unwrap();
    let metrics = &results.signals["metrics"];
    // The collector acknowledged the fleet's pushes: the refusals happen behind it.
    assert_eq!(metrics.sent, metrics.acknowledged, "{:?}", metrics.errors);
    assert_eq!(
        results.verdict().outcome,
        reports::Outcome::Fail,
        "{:?}",
        results.slos
    );
    let broken: Vec<&str> = results
        .slos
        .iter()
        .filter(|s| !s.pass)
        .map(|s| s.name.as_str())
        .collect();
    eprintln!("through the collector the rate limit broke {broken:?}");
    assert!(
        broken
            .iter()
            .any(|b| *b == "loss" || *b == "p99_write_to_query_ms"),
        "{:?}",
        results.slos
    );
}

fn loadgen(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_line_reports_no_knee_and_compares_searches() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cap");
    let dir = dir.to_str().unwrap();
    // Too small a load to break anything: no knee, exit 1, the verdict first.
    let run = loadgen(&[
        "capacity",
        "--direct",
        "--start",
        "10",
        "--max",
        "20",
        "--stage-duration",
        "2s",
        "--stage-drain",
        "10s",
        "--out",
        dir,
    ]);
    let stdout = String::from_utf8(run.stdout).unwrap();
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("NO KNEE: every stage up to 20 devices"),
        "{stdout}"
    );
    assert!(
        stderr.contains("capacity: stage 2: 20 devices: PASS"),
        "{stderr}"
    );

    let cmp = loadgen(&["compare", dir, dir]);
    let text = String::from_utf8(cmp.stdout).unwrap();
    assert!(cmp.status.success(), "{text}");
    assert!(text.starts_with("base: NO KNEE"), "{text}");
    // A capacity search and a run do not compare.
    let stage = format!("{dir}/stage-01-10d");
    assert_eq!(loadgen(&["compare", dir, &stage]).status.code(), Some(2));
}

#[test]
fn bad_search_settings_are_usage_errors() {
    let out = loadgen(&["capacity", "--factor", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--factor must be above 1"), "{stderr}");
}
