//! The conversions checked through the collector's own OTLP translation (the functions its
//! `otlp` source calls): a scrape of every device type comes back as exactly its remote-write
//! series, log entries as their streams, lines and times.

use std::collections::BTreeMap;

use collector::sources::otlp::{logs as otlp_logs, metrics as otlp_metrics};
use proptest::prelude::*;
use wire::exposition::{ExpoSample, MetricFamily, MetricKind};
use wire::otlp::proto::metrics::v1::metric::Data;

use super::*;
use crate::fleet::{DeviceType, Fleet, FleetSpec, TypeMix};
use crate::generate::DeviceSignals;

const T0_MS: i64 = 1_790_000_000_000;

type Series = (Vec<(String, String)>, u64, i64);
/// (stream labels, time, line).
type Line = (Vec<(String, String)>, i64, String);

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// (sorted labels with `__name__`, value bits, timestamp) of remote write.
fn remote_write(scrape: &Scrape) -> Vec<Series> {
    let mut out: Vec<Series> = scrape
        .series()
        .into_iter()
        .flat_map(|ts| {
            let mut labels: Vec<_> = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
            labels.sort();
            ts.samples
                .into_iter()
                .map(move |s| (labels.clone(), s.value.to_bits(), s.timestamp))
        })
        .collect();
    out.sort();
    out
}

/// The same through OTLP and the collector's translation.
fn through_otlp(
    scrape: &Scrape,
    resource: &[(String, String)],
    unit_suffixes: bool,
) -> Vec<Series> {
    let req = metrics_request(scrape, resource);
    // Through the wire, as the source gets it.
    let req = prost::Message::decode(prost::Message::encode_to_vec(&req).as_slice()).unwrap();
    let opts = otlp_metrics::MetricOptions {
        add_unit_suffixes: unit_suffixes,
        promote_resource_attributes: strings(&LABEL_ATTRIBUTES),
    };
    let got = otlp_metrics::convert(req, &opts);
    assert_eq!(got.rejected, 0, "{:?}", got.error);
    let mut out: Vec<Series> = got
        .batch
        .into_iter()
        .map(|s| {
            let mut labels = s.labels.as_slice().to_vec();
            labels.sort();
            (labels, s.value.to_bits(), s.timestamp_ms)
        })
        .collect();
    out.sort();
    out
}

fn fleet() -> Fleet {
    Fleet::generate(&FleetSpec {
        devices: 60,
        problem_fraction: 0.3,
        ..FleetSpec::default()
    })
}

#[test]
fn every_device_type_comes_back_as_its_remote_write_series() {
    let fleet = fleet();
    for t in DeviceType::ALL {
        for problem in [false, true] {
            let Some(device) = fleet
                .devices
                .iter()
                .find(|d| d.device_type == t && d.problem == problem)
            else {
                continue;
            };
            let mut signals = DeviceSignals::new(device, fleet.spec.seed);
            signals.scrape(T0_MS, None);
            let scrape = signals.scrape(T0_MS + 15_000, Some(7));
            let want = remote_write(&scrape);
            assert!(want.iter().any(|(l, v, ts)| {
                l.contains(&("__name__".into(), "loadgen_canary_seq".into()))
                    && f64::from_bits(*v) == 7.0
                    && *ts == T0_MS + 15_000
            }));
            for suffixes in [true, false] {
                let got = through_otlp(&scrape, &device.labels(), suffixes);
                assert_eq!(got, want, "{t:?} problem={problem} suffixes={suffixes}");
            }
        }
    }
    // Every type was there.
    for t in DeviceType::ALL {
        assert!(fleet.devices.iter().any(|d| d.device_type == t), "{t:?}");
    }
}

#[test]
fn shapes_names_and_times() {
    let fleet = fleet();
    let device = fleet
        .devices
        .iter()
        .find(|d| d.device_type == DeviceType::Pos)
        .unwrap();
    let mut signals = DeviceSignals::new(device, fleet.spec.seed);
    let scrape = signals.scrape(T0_MS, Some(3));
    let req = metrics_request(&scrape, &device.labels());
    assert_eq!(req.resource_metrics.len(), 1);
    let rm = &req.resource_metrics[0];
    let attrs: BTreeMap<_, _> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                collector::sources::otlp::any_to_string(kv.value.as_ref().unwrap()),
            )
        })
        .collect();
    let mut keys: Vec<_> = attrs.keys().copied().collect();
    keys.sort();
    let mut want = LABEL_ATTRIBUTES.to_vec();
    want.sort();
    assert_eq!(keys, want, "no service.name on metrics");
    let metrics = &rm.scope_metrics[0].metrics;
    let by_name = |n: &str| metrics.iter().find(|m| m.name == n).unwrap();
    // Counter: a monotonic cumulative sum without `_total`.
    match &by_name("pos_transactions").data {
        Some(Data::Sum(s)) => {
            assert!(s.is_monotonic);
            assert_eq!(s.aggregation_temporality, CUMULATIVE);
            let p = &s.data_points[0];
            assert!(p.attributes.is_empty(), "device labels are on the resource");
            assert_eq!(p.time_unix_nano, T0_MS as u64 * 1_000_000);
            assert_eq!(p.start_time_unix_nano, 0);
        }
        other => panic!("{other:?}"),
    }
    match &by_name("pos_payment_failures").data {
        Some(Data::Sum(s)) => {
            assert_eq!(s.data_points.len(), 3);
            assert_eq!(s.data_points[0].attributes.len(), 1);
            assert_eq!(s.data_points[0].attributes[0].key, "reason");
        }
        other => panic!("{other:?}"),
    }
    // Histogram: bounds without +Inf, per-bucket counts.
    match &by_name("pos_transaction_duration_seconds").data {
        Some(Data::Histogram(h)) => {
            assert_eq!(h.aggregation_temporality, CUMULATIVE);
            let p = &h.data_points[0];
            assert_eq!(
                p.explicit_bounds,
                vec![0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 30.0]
            );
            assert_eq!(p.bucket_counts.len(), 9);
            assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
            assert!(p.sum.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        by_name("pos_printer_status").data,
        Some(Data::Gauge(_))
    ));
    // The canary keeps its own time.
    match &by_name("loadgen_canary_seq").data {
        Some(Data::Gauge(g)) => {
            assert_eq!(g.data_points[0].time_unix_nano, T0_MS as u64 * 1_000_000)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !metrics
            .iter()
            .any(|m| m.name.ends_with("_total") || m.name.ends_with("_bucket"))
    );
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Families loadgen does not make today: untyped, summary, a counter without `_total`,
/// `_created`, a histogram without `+Inf`, bounds printed another way.
#[test]
fn odd_families_still_come_back_as_their_series() {
    let base = labels(&[("device", "d1"), ("node_type", "custom")]);
    let with = |extra: &[(&str, &str)]| {
        let mut l = base.clone();
        l.extend(labels(extra));
        l
    };
    let fam = |name: &str, kind, samples: Vec<ExpoSample>| {
        let mut f = MetricFamily::new(name, kind);
        f.samples = samples;
        f
    };
    let mut own_time = ExpoSample::new("u", with(&[("x", "1")]), 2.0);
    own_time.timestamp_ms = Some(T0_MS - 5);
    let families = vec![
        fam(
            "u",
            MetricKind::Untyped,
            vec![ExpoSample::new("u", with(&[]), 1.0), own_time],
        ),
        fam(
            "s",
            MetricKind::Summary,
            vec![
                ExpoSample::new("s", with(&[("quantile", "0.5")]), 0.2),
                ExpoSample::new("s_sum", with(&[]), 4.0),
                ExpoSample::new("s_count", with(&[]), 9.0),
            ],
        ),
        fam(
            "c",
            MetricKind::Counter,
            vec![
                ExpoSample::new("c", with(&[]), 5.0),
                ExpoSample::new(
                    "c_total",
                    labels(&[("device", "other"), ("node_type", "custom")]),
                    6.0,
                ),
                ExpoSample::new("c_created", with(&[]), 1.7e9),
            ],
        ),
        fam(
            "h",
            MetricKind::Histogram,
            vec![
                ExpoSample::new("h_bucket", with(&[("le", "1.0")]), 1.0),
                ExpoSample::new("h_bucket", with(&[("le", "+Inf")]), 2.0),
                ExpoSample::new("h_count", with(&[]), 2.0),
                ExpoSample::new("h_bucket", with(&[("k", "a"), ("le", "1")]), 1.0),
                ExpoSample::new("h_count", with(&[("k", "a")]), 3.0),
                ExpoSample::new("h_bucket", with(&[("k", "b"), ("le", "0.25")]), 1.0),
                ExpoSample::new("h_bucket", with(&[("k", "b"), ("le", "+Inf")]), 3.0),
                ExpoSample::new("h_count", with(&[("k", "b")]), 3.0),
            ],
        ),
    ];
    let scrape = Scrape {
        families,
        timestamp_ms: T0_MS,
    };
    assert_eq!(through_otlp(&scrape, &base, true), remote_write(&scrape));
    let req = metrics_request(&scrape, &base);
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    // Only `k="b"` made a histogram point; "1.0" would come back as "1".
    let h: Vec<_> = metrics.iter().filter(|m| m.name == "h").collect();
    assert_eq!(h.len(), 1);
    match &h[0].data {
        Some(Data::Histogram(h)) => {
            assert_eq!(h.data_points.len(), 1);
            assert_eq!(h.data_points[0].explicit_bounds, vec![0.25]);
            assert_eq!(h.data_points[0].bucket_counts, vec![1, 2]);
            assert_eq!(h.data_points[0].sum, None);
        }
        other => panic!("{other:?}"),
    }
}

fn entry(device: &crate::fleet::Device, ts: i64, line: &str) -> LogEntry {
    LogEntry {
        labels: device.labels(),
        timestamp_ns: ts,
        line: line.into(),
    }
}

/// (stream labels, ts, line) through the collector's OTLP logs mapping.
fn logs_through_otlp(entries: &[LogEntry], index: &[&str]) -> Vec<Line> {
    let req = logs_request(entries);
    let req = prost::Message::decode(prost::Message::encode_to_vec(&req).as_slice()).unwrap();
    let got = otlp_logs::convert(req, &strings(index), 1);
    assert_eq!(got.rejected, 0, "{:?}", got.error);
    got.batch
        .into_iter()
        .map(|r| {
            let mut l = r.labels.as_slice().to_vec();
            l.sort();
            (l, r.timestamp_ns, r.line)
        })
        .collect()
}

fn with_service(labels: &[(String, String)], service: &str) -> Vec<(String, String)> {
    let mut l = labels.to_vec();
    l.push(("service_name".into(), service.into()));
    l.sort();
    l
}

#[test]
fn logs_keep_labels_lines_and_times() {
    let fleet = fleet();
    let mut entries = Vec::new();
    for t in DeviceType::ALL {
        let d = fleet.devices.iter().find(|d| d.device_type == t).unwrap();
        let mut signals = DeviceSignals::new(d, fleet.spec.seed);
        for i in 0..3 {
            entries.push(signals.log_line(T0_MS * 1_000_000 + i, Some(i as u64)));
        }
    }
    // Interleave two devices: grouped by labels, order within a stream kept.
    let d0 = &fleet.devices[0];
    entries.push(entry(d0, T0_MS * 1_000_000 + 9, "late"));
    let req = logs_request(&entries);
    assert_eq!(req.resource_logs.len(), 5);
    let first = &req.resource_logs[0];
    let records = &first.scope_logs[0].log_records;
    assert_eq!(
        records.len(),
        if d0.device_type == DeviceType::ALL[0] {
            4
        } else {
            3
        }
    );
    assert_eq!(
        records[0].observed_time_unix_nano,
        records[0].time_unix_nano
    );
    let service = first
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .unwrap();
    assert_eq!(
        collector::sources::otlp::any_to_string(service.value.as_ref().unwrap()),
        DeviceType::ALL[0].as_str()
    );

    let want = |service: Option<&str>| {
        let mut w: Vec<_> = entries
            .iter()
            .map(|e| {
                let node_type = e
                    .labels
                    .iter()
                    .find(|(k, _)| k == "node_type")
                    .unwrap()
                    .1
                    .clone();
                let s = service.map_or(node_type, str::to_string);
                (with_service(&e.labels, &s), e.timestamp_ns, e.line.clone())
            })
            .collect();
        w.sort();
        w
    };
    let mut got = logs_through_otlp(&entries, &LOG_INDEX_ATTRIBUTES);
    got.sort();
    assert_eq!(got, want(None));
    // With the device labels alone indexed, Loki's rule gives `unknown_service`.
    let mut got = logs_through_otlp(&entries, &LABEL_ATTRIBUTES);
    got.sort();
    assert_eq!(got, want(Some("unknown_service")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_device_round_trips(seed in any::<u64>(), index in 0u64..500, t in 0usize..5, scrapes in 1usize..4, canary in proptest::option::of(any::<u32>())) {
        let only = DeviceType::ALL[t];
        let mut mix = TypeMix { server: 0.0, pos: 0.0, router: 0.0, switch: 0.0, custom: 0.0 };
        match only {
            DeviceType::Server => mix.server = 1.0,
            DeviceType::Pos => mix.pos = 1.0,
            DeviceType::Router => mix.router = 1.0,
            DeviceType::Switch => mix.switch = 1.0,
            DeviceType::Custom => mix.custom = 1.0,
        }
        let spec = FleetSpec { seed, devices: index + 1, mix, problem_fraction: 0.5, ..FleetSpec::default() };
        let device = spec.device(index);
        prop_assert_eq!(device.device_type, only);
        let mut signals = DeviceSignals::new(&device, seed);
        let mut now = T0_MS;
        for _ in 1..scrapes {
            signals.scrape(now, None);
            now += 10_000;
        }
        let scrape = signals.scrape(now, canary.map(u64::from));
        prop_assert_eq!(through_otlp(&scrape, &device.labels(), true), remote_write(&scrape));

        let entries: Vec<_> = (0..3).map(|i| signals.log_line(now * 1_000_000 + i, canary.map(u64::from))).collect();
        let mut got = logs_through_otlp(&entries, &LOG_INDEX_ATTRIBUTES);
        got.sort();
        let mut want: Vec<_> = entries
            .iter()
            .map(|e| (with_service(&e.labels, only.as_str()), e.timestamp_ns, e.line.clone()))
            .collect();
        want.sort();
        prop_assert_eq!(got, want);
    }
}
