//! Churn and offline devices in a whole run: replaced devices report under their new ids,
//! offline devices backfill their backlog with old timestamps once back, and every canary,
//! backfilled ones included, is read back (no loss).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::fleet::FleetSpec;
use loadgen::run::dynamics::DynamicsSpec;
use loadgen::run::{RunConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churned_and_offline_devices_lose_nothing() {
    let out = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        fleet: FleetSpec {
            devices: 80,
            seed: 11,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(9),
        rate_multiplier: 3.0,
        canary_every: 2,
        drain_timeout: Duration::from_secs(60),
        out_dir: Some(out.path().join("run")),
        slos: vec!["loss=0".parse().unwrap()],
        dynamics: DynamicsSpec {
            churn_per_min: 1.0,
            offline_share: 0.25,
            offline_from: Some(Duration::from_secs(2)),
            offline_for: Some(Duration::from_secs(4)),
        },
        ..RunConfig::default()
    };
    let (results, _) = run(&cfg).await.unwrap();
    let d = &results.fleet.dynamics;
    assert!(d.replaced > 0, "{d:?}");
    assert!(d.offline_devices > 0, "{d:?}");
    assert!(d.backfilled_items > 0, "{d:?}");
    assert_eq!(d.backfill_dropped, 0);
    assert_eq!((d.offline_from_s, d.offline_for_s), (2.0, 4.0));
    for (name, s) in &results.signals {
        assert_eq!(s.sent, s.acknowledged, "{name}: {:?}", s.errors);
        assert!(s.verification.canaries > 0, "{name}");
        assert_eq!(s.verification.lost, 0, "{name}: {:?}", s.verification);
    }
    assert!(results.passed(), "{}", results.verdict().headline());
}

#[tokio::test]
async fn dynamics_need_push_delivery_and_sane_shares() {
    let base = RunConfig {
        fleet: FleetSpec {
            devices: 5,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(2),
        ..RunConfig::default()
    };
    let cfg = RunConfig {
        dynamics: DynamicsSpec {
            offline_share: 2.0,
            ..DynamicsSpec::default()
        },
        ..base.clone()
    };
    let e = run(&cfg).await.unwrap_err().to_string();
    assert!(e.contains("--offline"), "{e}");
    let cfg = RunConfig {
        dynamics: DynamicsSpec {
            churn_per_min: 0.1,
            ..DynamicsSpec::default()
        },
        delivery: loadgen::deliver::Delivery::Scrape,
        ..base
    };
    let e = run(&cfg).await.unwrap_err().to_string();
    assert!(e.contains("push delivery"), "{e}");
}
