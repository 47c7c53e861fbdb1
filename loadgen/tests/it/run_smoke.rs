//! A short whole run on the embedded target (in-process collector in front of the embedded
//! stack): every signal is sent and acknowledged, no canary is lost, and the run folder holds a
//! `results.json` that reads back and a `report.html` with its sections.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::fleet::FleetSpec;
use loadgen::run::{RunConfig, run};
use reports::Results;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_devices_for_five_seconds_lose_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let cfg = RunConfig {
        fleet: FleetSpec {
            devices: 50,
            seed: 7,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(5),
        rate_multiplier: 2.0,
        canary_every: 5,
        drain_timeout: Duration::from_secs(60),
        out_dir: Some(dir.clone()),
        slos: vec!["loss=0".parse().unwrap()],
        ..RunConfig::default()
    };
    let (results, written) = run(&cfg).await.unwrap();
    assert_eq!(written, dir);

    for signal in ["logs", "metrics", "traces"] {
        let s = results
            .signals
            .get(signal)
            .unwrap_or_else(|| panic!("{signal} missing"));
        assert!(s.sent > 0, "{signal}: nothing sent");
        assert!(s.acknowledged > 0, "{signal}: nothing acknowledged");
        assert_eq!(s.sent, s.acknowledged, "{signal}: errors {:?}", s.errors);
        let v = &s.verification;
        assert!(v.canaries > 0, "{signal}: no canaries");
        assert_eq!(v.lost, 0, "{signal}: lost canaries: {v:?}");
        assert_eq!(v.found, v.canaries, "{signal}: {v:?}");
    }
    assert!(results.passed(), "{:?}", results.slos);
    assert_eq!(results.run.devices, 50);
    assert!(!results.breakdown.is_empty());

    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    assert_eq!(Results::from_json(&text).unwrap(), results);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for heading in [
        "Run summary and SLO verdicts",
        "Throughput and errors over time",
        "Latency",
        "Loss and duplicates",
        "Breakdown by device type and region",
        "Collector and loadgen resources",
    ] {
        assert!(html.contains(heading), "report.html lacks {heading}");
    }
}
