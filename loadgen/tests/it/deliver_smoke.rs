//! Short whole runs on the embedded target with the delivery paths besides push: metrics
//! scraped by the in-process collector, logs tailed from files, logs and metrics over OTLP.
//! Every signal is acknowledged
//! (served, appended or pushed) and no canary is lost.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::deliver::Delivery;
use loadgen::fleet::FleetSpec;
use loadgen::run::{RunConfig, run};
use reports::Results;

async fn smoke(delivery: Delivery) -> (Results, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        fleet: FleetSpec {
            devices: 30,
            seed: 11,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(5),
        rate_multiplier: 4.0,
        canary_every: 3,
        drain_timeout: Duration::from_secs(60),
        out_dir: Some(out.path().join("run")),
        delivery,
        slos: vec!["loss=0".parse().unwrap()],
        ..RunConfig::default()
    };
    let (results, _) = run(&cfg).await.unwrap();
    for signal in ["logs", "metrics", "traces"] {
        let s = results
            .signals
            .get(signal)
            .unwrap_or_else(|| panic!("{delivery}: {signal} missing"));
        assert!(
            s.acknowledged > 0,
            "{delivery}: {signal}: nothing acknowledged"
        );
        assert_eq!(
            s.sent, s.acknowledged,
            "{delivery}: {signal}: {:?}",
            s.errors
        );
        let v = &s.verification;
        assert!(v.canaries > 0, "{delivery}: {signal}: no canaries");
        assert_eq!(v.lost, 0, "{delivery}: {signal}: lost: {v:?}");
        assert_eq!(v.found, v.canaries, "{delivery}: {signal}: {v:?}");
    }
    assert!(results.passed(), "{:?}", results.slos);
    (results, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_metrics_lose_no_canary() {
    let (_, out) = smoke(Delivery::Scrape).await;
    let sd = std::fs::read_to_string(out.path().join("run/scrape-targets.json")).unwrap();
    // Withdrawn at the end of the run.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&sd).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailed_logs_lose_no_canary() {
    let (_, out) = smoke(Delivery::Files).await;
    let files = std::fs::read_dir(out.path().join("run/logs"))
        .unwrap()
        .count();
    assert!(files > 0, "no log files written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_logs_and_metrics_lose_no_canary() {
    let (results, _) = smoke(Delivery::Otlp).await;
    assert!(
        results.run.target.contains("delivery otlp"),
        "{}",
        results.run.target
    );
}

#[test]
fn delivery_names_round_trip() {
    for d in Delivery::ALL {
        assert_eq!(d.as_str().parse::<Delivery>().unwrap(), d);
    }
    assert!("carrier-pigeon".parse::<Delivery>().is_err());
}
