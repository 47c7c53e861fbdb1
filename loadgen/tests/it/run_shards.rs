//! Two shards of one fleet, run one after the other on the embedded target, merge into the
//! whole fleet: devices and fleet counts add up, the shard fields are right, nothing is lost
//! and the merged sent is the shards' sum.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::combine::merge;
use loadgen::fleet::{Fleet, FleetSpec, Shard};
use loadgen::run::{RunConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_into_the_fleet() {
    let out = tempfile::tempdir().unwrap();
    let spec = FleetSpec {
        devices: 20,
        seed: 11,
        ..FleetSpec::default()
    };
    let mut shards = Vec::new();
    for i in 0..2 {
        let cfg = RunConfig {
            fleet: spec.clone(),
            shard: Some(Shard::new(i, 2).unwrap()),
            duration: Duration::from_secs(3),
            rate_multiplier: 2.0,
            canary_every: 5,
            drain_timeout: Duration::from_secs(60),
            out_dir: Some(out.path().join(format!("shard{i}"))),
            ..RunConfig::default()
        };
        let (results, _) = run(&cfg).await.unwrap();
        assert_eq!(results.run.shard, Some([i as u32, 2]));
        assert_eq!(results.run.devices, 10);
        shards.push(results);
    }

    let merged = merge(&shards).unwrap();
    assert_eq!(merged.run.shard, None);
    assert_eq!(merged.run.shards_merged, 2);
    assert_eq!(merged.run.devices, 20);
    let whole = Fleet::generate(&spec).summary();
    assert_eq!(merged.fleet.by_type, whole.by_type);
    assert_eq!(merged.fleet.by_region, whole.by_region);
    assert_eq!(merged.fleet.problem_devices, whole.problem_devices);
    for signal in ["logs", "metrics", "traces"] {
        let m = merged
            .signals
            .get(signal)
            .unwrap_or_else(|| panic!("{signal} missing"));
        // A shard may hold no device emitting a signal (traces: checkouts).
        let sum: u64 = shards
            .iter()
            .map(|r| r.signals.get(signal).map_or(0, |s| s.sent))
            .sum();
        assert!(m.sent > 0, "{signal}: nothing sent");
        assert_eq!(m.sent, sum, "{signal}");
        assert_eq!(m.acknowledged, m.sent, "{signal}: errors {:?}", m.errors);
        let v = &m.verification;
        assert!(v.canaries > 0, "{signal}: no canaries");
        assert_eq!(v.lost, 0, "{signal}: {v:?}");
        assert_eq!(v.found, v.canaries, "{signal}: {v:?}");
    }
    let devices: u64 = merged.breakdown.iter().map(|b| b.devices).sum();
    assert_eq!(devices, 20);
}
