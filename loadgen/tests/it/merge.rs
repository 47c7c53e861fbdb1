//! `loadgen merge`'s arithmetic: counts add up and histograms merge exactly (the merged
//! histogram equals one recorded with every value of both), intervals align by time; and its
//! checks: only shards of one run (seed, shard count, distinct indexes, device counts) merge.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use loadgen::combine::{compare, merge};
use reports::histogram::{HistogramData, new_histogram};
use reports::results::{Breakdown, FleetSummary, Interval, RunInfo, SignalResults, Verification};
use reports::{Results, SCHEMA_VERSION};

fn hist(values: &[u64]) -> HistogramData {
    let mut h = new_histogram();
    for &v in values {
        h.record(v).unwrap();
    }
    HistogramData::from_histogram(&h, "us")
}

/// Every recorded (value, count), for exact comparison.
fn recorded(h: &HistogramData) -> Vec<(u64, u64)> {
    h.histogram()
        .unwrap()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn results(id: &str, sent: u64, lat: &[u64], interval_t: &[f64]) -> Results {
    let signal = SignalResults {
        sent,
        acknowledged: sent - 1,
        errors: BTreeMap::from([("500".to_string(), 1)]),
        send_latency: hist(lat),
        verification: Verification {
            canaries: 10,
            found: 9,
            lost: 1,
            duplicated: 0,
            out_of_order: 0,
            write_to_query_latency: hist(lat),
            query_errors: 0,
            last_query_error: None,
            poll_interval_ms: 1000,
            stack_evicted: 0,
        },
        items_per_second: sent as f64 / 10.0,
        target_items_per_second: sent as f64 / 10.0,
        requests: sent / 10,
        bytes: sent * 100,
    };
    Results {
        schema_version: SCHEMA_VERSION,
        run: RunInfo {
            id: id.into(),
            started_at: "2026-11-22T00:00:00Z".into(),
            duration_s: 10.0,
            warmup_s: 0.0,
            seed: 1,
            devices: 100,
            shard: Some([0, 2]),
            shards_merged: 1,
            target: "embedded".into(),
            agent: String::new(),
            rate_multiplier: 1.0,
            loadgen_version: "0".into(),
            command: String::new(),
        },
        fleet: FleetSummary {
            by_type: BTreeMap::from([("pos".to_string(), 100)]),
            ..FleetSummary::default()
        },
        signals: BTreeMap::from([("logs".to_string(), signal)]),
        intervals: interval_t
            .iter()
            .map(|&t_s| Interval {
                t_s,
                sent: BTreeMap::from([("logs".to_string(), 5)]),
                errors: BTreeMap::new(),
                scheduled: BTreeMap::from([("logs".to_string(), 5)]),
                requests: BTreeMap::from([("logs".to_string(), 1)]),
                bytes: BTreeMap::from([("logs".to_string(), 500)]),
                send_latency: hist(lat),
            })
            .collect(),
        breakdown: vec![Breakdown {
            device_type: "pos".into(),
            region: "eu".into(),
            devices: 100,
            sent: BTreeMap::from([("logs".to_string(), sent)]),
            errors: 1,
        }],
        resources: Vec::new(),
        slos: Vec::new(),
        defaults_off: false,
        read_path: None,
        verdict: None,
    }
}

#[test]
fn counts_add_and_histograms_merge_exactly() {
    let a = results("a", 100, &[100, 200, 300], &[0.0, 1.0]);
    let mut b = results("b", 50, &[1_000, 5_000], &[1.0, 2.0]);
    b.run.shard = Some([1, 2]);
    let m = merge(&[a, b]).unwrap();

    assert_eq!(m.run.devices, 200);
    assert_eq!(m.run.shards_merged, 2);
    assert_eq!(m.run.shard, None);
    assert_eq!(m.fleet.by_type["pos"], 200);
    let logs = &m.signals["logs"];
    assert_eq!(logs.sent, 150);
    assert_eq!(logs.acknowledged, 148);
    assert_eq!(logs.errors["500"], 2);
    assert_eq!(logs.verification.canaries, 20);
    assert_eq!(logs.verification.lost, 2);
    assert_eq!((logs.requests, logs.bytes), (15, 15_000));
    assert_eq!(logs.verification.poll_interval_ms, 1000);
    let all = recorded(&hist(&[100, 200, 300, 1_000, 5_000]));
    assert_eq!(recorded(&logs.send_latency), all);
    assert_eq!(recorded(&logs.verification.write_to_query_latency), all);
    assert_eq!(logs.send_latency.count, 5);
    assert_eq!(logs.send_latency.max, hist(&[5_000]).max);

    let ts: Vec<f64> = m.intervals.iter().map(|i| i.t_s).collect();
    assert_eq!(ts, vec![0.0, 1.0, 2.0]);
    assert_eq!(m.intervals[1].sent["logs"], 10);
    assert_eq!(m.intervals[1].send_latency.count, 5);
    assert_eq!(m.intervals[1].requests["logs"], 2);
    assert_eq!(m.intervals[1].bytes["logs"], 1000);
    assert_eq!(m.breakdown.len(), 1);
    assert_eq!(m.breakdown[0].sent["logs"], 150);

    assert!(Results::from_json(&m.to_json()).is_ok());
    let text = compare(&results("a", 100, &[100], &[0.0]), &m);
    assert!(text.contains("items/s"), "{text}");
}

#[test]
fn merging_nothing_is_an_error() {
    assert!(merge(&[]).is_err());
}

#[test]
fn only_shards_of_one_run_merge() {
    let shard = |i: u32, n: u32, devices: u64| {
        let mut r = results(&format!("run-{devices}d-shard{i}of{n}"), 10, &[100], &[0.0]);
        r.run.shard = Some([i, n]);
        r.run.devices = devices;
        r
    };
    // 20 devices in 3 shards: 7, 7, 6.
    let m = merge(&[shard(0, 3, 7), shard(1, 3, 7), shard(2, 3, 6)]).unwrap();
    assert_eq!(m.run.devices, 20);
    assert_eq!(m.run.shards_merged, 3);
    assert_eq!(m.run.id, "run-7d-merged3");
    // A partial set merges (with a warning).
    assert_eq!(
        merge(&[shard(0, 3, 7), shard(2, 3, 6)])
            .unwrap()
            .run
            .devices,
        13
    );

    let refused = |all: &[Results], says: &str| {
        let e = merge(all).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    };
    refused(&[shard(0, 2, 5), shard(0, 2, 5)], "both are shard 0/2");
    refused(&[shard(0, 2, 5), shard(1, 3, 5)], "2 and 3 shards");
    let mut other_seed = shard(1, 2, 5);
    other_seed.run.seed = 9;
    refused(&[shard(0, 2, 5), other_seed], "seeds 1 and 9");
    refused(&[shard(0, 2, 5), shard(1, 2, 9)], "do not fit one fleet");
    let mut whole = shard(1, 2, 5);
    whole.run.shard = None;
    refused(&[shard(0, 2, 5), whole], "is not");
}
