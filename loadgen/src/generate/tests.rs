//! Tests of the signal generators: formats parse, labels are complete, counters only go up,
//! canaries are found, checkout traces are linked, problem mode raises error rates, and a seed
//! gives the same signals.

use std::collections::BTreeMap;

use super::*;
use crate::canary;
use crate::fleet::{Fleet, FleetSpec};
use wire::otlp::proto::trace::v1::status::StatusCode;

const T0_MS: i64 = 1_790_000_000_000;

fn device(t: DeviceType, problem: bool) -> Device {
    Device {
        index: 42,
        id: format!("{}-0042-03", t.as_str()),
        device_type: t,
        region: "eu-west".into(),
        location: "store-0042".into(),
        brand: "brand1".into(),
        problem,
    }
}

fn all_devices() -> Vec<Device> {
    DeviceType::ALL
        .iter()
        .flat_map(|t| [device(*t, false), device(*t, true)])
        .collect()
}

/// Counters (and histogram buckets, sums, counts) by their full label set.
fn monotonic_values(s: &Scrape) -> BTreeMap<String, f64> {
    s.families
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                wire::exposition::MetricKind::Counter | wire::exposition::MetricKind::Histogram
            )
        })
        .flat_map(|f| &f.samples)
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect()
}

#[test]
fn counters_are_monotonic_across_scrapes() {
    for d in all_devices() {
        let mut g = DeviceSignals::new(&d, 1);
        let mut prev = monotonic_values(&g.scrape(T0_MS, None));
        let mut grew = false;
        for i in 1..40 {
            let now = monotonic_values(&g.scrape(T0_MS + i * 15_000, None));
            assert_eq!(now.len(), prev.len());
            for (k, v) in &now {
                assert!(*v >= prev[k], "{}: {k} went from {} to {v}", d.id, prev[k]);
                grew |= *v > prev[k];
            }
            prev = now;
        }
        assert!(grew, "{}: no counter ever grew", d.id);
    }
}

#[test]
fn every_series_is_valid_and_has_the_device_labels() {
    for d in all_devices() {
        let mut g = DeviceSignals::new(&d, 1);
        let series = g.metrics(T0_MS, Some(5));
        assert_eq!(series.len(), g.rates().metric_series + 1, "{}", d.id);
        let mut names = std::collections::BTreeSet::new();
        for ts in &series {
            wire::remote_write::check_series(&ts.labels)
                .unwrap_or_else(|e| panic!("{}: {e}: {:?}", d.id, ts.labels));
            for (k, v) in d.labels() {
                assert!(
                    ts.labels.iter().any(|l| l.name == k && l.value == v),
                    "{}: {k} missing on {:?}",
                    d.id,
                    ts.labels
                );
            }
            assert_eq!(ts.samples.len(), 1);
            assert!(ts.samples[0].value.is_finite());
            // No two series with the same labels.
            assert!(names.insert(format!("{:?}", ts.labels)), "{:?}", ts.labels);
        }
        let canary = series
            .iter()
            .find(|s| s.metric_name() == Some(canary::METRIC_NAME))
            .unwrap();
        assert_eq!(canary.samples[0].value, 5.0);
        assert_eq!(canary.samples[0].timestamp, T0_MS);
    }
}

#[test]
fn exposition_text_parses_back_to_the_same_samples() {
    for d in all_devices() {
        let mut g = DeviceSignals::new(&d, 1);
        g.scrape(T0_MS, None);
        let scrape = g.scrape(T0_MS + 15_000, Some(1));
        let text = scrape.text();
        let parsed = wire::exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let flat = |f: &[wire::exposition::MetricFamily]| {
            wire::exposition::samples(f)
                .map(|s| (s.labels, s.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(flat(&parsed), flat(&scrape.families), "{}", d.id);
        assert_eq!(
            parsed.iter().map(|f| f.kind).collect::<Vec<_>>(),
            scrape.families.iter().map(|f| f.kind).collect::<Vec<_>>()
        );
    }
}

fn is_rfc3339_ms(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z')
}

/// Checks a syslog line's RFC 5424 header; returns the MSG.
fn syslog_msg(line: &str) -> &str {
    let (pri, rest) = line
        .strip_prefix('<')
        .and_then(|r| r.split_once(">1 "))
        .unwrap_or_else(|| panic!("no <PRI>1: {line}"));
    let pri: u8 = pri.parse().unwrap();
    assert!(pri <= 191 && pri / 8 == 23, "{line}");
    let parts: Vec<&str> = rest.splitn(6, ' ').collect();
    assert_eq!(parts.len(), 6, "{line}");
    assert!(is_rfc3339_ms(parts[0]), "{line}");
    for field in &parts[1..4] {
        assert!(
            !field.is_empty() && field.chars().all(|c| c.is_ascii_graphic()),
            "{line}"
        );
    }
    parts[5]
        .strip_prefix("- ")
        .unwrap_or_else(|| panic!("{line}"))
}

/// Parses a logfmt line into pairs (quoted values unescaped).
fn logfmt_pairs(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or_else(|| panic!("{line}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad key {key:?} in {line}"
        );
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or_else(|| panic!("{line}"));
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.insert(key.to_string(), value);
        rest = next.trim_start();
    }
    out
}

#[test]
fn log_lines_parse_in_their_format_and_carry_canaries() {
    let now_ns = T0_MS * 1_000_000;
    for d in all_devices() {
        let mut g = DeviceSignals::new(&d, 1);
        for i in 0..50u64 {
            let canary_seq = (i % 2 == 0).then_some(i);
            let e = g.log_line(now_ns + i as i64, canary_seq);
            assert_eq!(e.labels, d.labels());
            assert_eq!(e.timestamp_ns, now_ns + i as i64);
            match d.device_type {
                DeviceType::Pos => {
                    let v: serde_json::Value = serde_json::from_str(&e.line).unwrap();
                    assert!(is_rfc3339_ms(v["ts"].as_str().unwrap()));
                    assert!(["info", "warn", "error"].contains(&v["level"].as_str().unwrap()));
                    assert_eq!(v["device"], d.id.as_str());
                    assert_eq!(v.get(canary::LOG_KEY).is_some(), canary_seq.is_some());
                }
                DeviceType::Router | DeviceType::Switch => {
                    syslog_msg(&e.line);
                }
                DeviceType::Server | DeviceType::Custom => {
                    let kv = logfmt_pairs(&e.line);
                    assert!(is_rfc3339_ms(&kv["ts"]));
                    assert_eq!(kv["device"], d.id);
                    assert_eq!(kv.contains_key(canary::LOG_KEY), canary_seq.is_some());
                }
            }
            let found = canary::find_token(&e.line);
            match canary_seq {
                Some(seq) => assert_eq!(
                    found,
                    Some(canary::Canary {
                        device: d.id.clone(),
                        seq,
                        sent_ns: now_ns + i as i64,
                        run: 0,
                    }),
                    "{}",
                    e.line
                ),
                None => assert_eq!(found, None, "{}", e.line),
            }
        }
    }
}

#[test]
fn checkout_trace_spans_four_linked_services_and_the_log_has_its_id() {
    let d = device(DeviceType::Pos, false);
    let mut g = DeviceSignals::new(&d, 1);
    let now_ns = T0_MS * 1_000_000;
    let c = g.checkout(now_ns, Some(9), Some(4)).unwrap();
    assert_eq!(c.trace_id, canary::trace_id(0, d.index, 9));
    assert_eq!(c.resource_spans.len(), 4);
    let mut parent: Option<&[u8]> = None;
    let mut outer = (0u64, u64::MAX);
    for (rs, service) in c.resource_spans.iter().zip(CHECKOUT_SERVICES) {
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        let attr = |k: &str| {
            attrs.iter().find(|a| a.key == k).and_then(|a| {
                match a.value.as_ref()?.value.as_ref()? {
                    wire::otlp::proto::common::v1::any_value::Value::StringValue(s) => {
                        Some(s.clone())
                    }
                    _ => None,
                }
            })
        };
        assert_eq!(attr("service.name").as_deref(), Some(service));
        for (k, v) in d.labels() {
            assert_eq!(attr(&k), Some(v));
        }
        let spans = &rs.scope_spans[0].spans;
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.trace_id, c.trace_id.to_vec());
        assert_eq!(s.span_id.len(), 8);
        match parent {
            None => assert!(s.parent_span_id.is_empty()),
            Some(p) => assert_eq!(s.parent_span_id, p),
        }
        // Each span within its parent.
        assert!(s.start_time_unix_nano >= outer.0 && s.end_time_unix_nano <= outer.1);
        assert!(s.end_time_unix_nano > s.start_time_unix_nano);
        outer = (s.start_time_unix_nano, s.end_time_unix_nano);
        parent = Some(&s.span_id);
    }
    let root = &c.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(root.end_time_unix_nano, now_ns as u64);
    for k in [canary::SPAN_DEVICE, canary::SPAN_SEQ, canary::SPAN_SENT_NS] {
        assert!(root.attributes.iter().any(|a| a.key == k), "{k}");
    }
    let v: serde_json::Value = serde_json::from_str(&c.log.line).unwrap();
    assert_eq!(
        v["trace_id"],
        wire::otlp::trace_id_to_hex(&c.trace_id).as_str()
    );
    assert_eq!(canary::find_token(&c.log.line).unwrap().seq, 4);

    // Without canaries: a random id that is never a canary id, no canary attributes.
    let c = g.checkout(now_ns, None, None).unwrap();
    assert_eq!(c.trace_id[0] & 0x80, 0);
    let root = &c.resource_spans[0].scope_spans[0].spans[0];
    assert!(!root.attributes.iter().any(|a| a.key == canary::SPAN_SEQ));
    assert_eq!(canary::find_token(&c.log.line), None);

    // A failed payment is an error on every hop; a paid one ok.
    let mut bad = DeviceSignals::new(&device(DeviceType::Pos, true), 1);
    let checkouts: Vec<Checkout> = (0..200)
        .filter_map(|i| bad.checkout(now_ns + i, None, None))
        .collect();
    for want in [true, false] {
        let c = checkouts.iter().find(|c| c.failed == want).unwrap();
        let code = if want {
            StatusCode::Error
        } else {
            StatusCode::Ok
        } as i32;
        for rs in &c.resource_spans {
            assert_eq!(
                rs.scope_spans[0].spans[0].status.as_ref().unwrap().code,
                code
            );
        }
        assert_eq!(c.log.line.contains("\"level\":\"error\""), want);
    }

    // Other device types emit no traces.
    let mut router = DeviceSignals::new(&device(DeviceType::Router, false), 1);
    assert!(router.checkout(now_ns, Some(1), None).is_none());
}

fn value_of(s: &Scrape, name: &str) -> f64 {
    s.families
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|x| x.name == name)
        .map(|x| x.value)
        .sum()
}

#[test]
fn problem_mode_raises_error_rates() {
    let mut ratios = Vec::new();
    for problem in [false, true] {
        let pos = device(DeviceType::Pos, problem);
        let mut g = DeviceSignals::new(&pos, 3);
        let failed = (0..2000)
            .filter(|i| g.checkout(i * 1_000_000_000, None, None).unwrap().failed)
            .count();
        let errors = (0..2000)
            .filter(|i| g.log_line(*i, None).line.contains("\"level\":\"error\""))
            .count();
        // A day of scrapes.
        let mut last = None;
        for i in 0..(24 * 60 * 4) {
            last = Some(g.scrape(T0_MS + i * 15_000, None));
        }
        let last = last.unwrap();
        let fail_ratio = value_of(&last, "pos_payment_failures_total")
            / value_of(&last, "pos_transactions_total");

        let mut router = DeviceSignals::new(&device(DeviceType::Router, problem), 3);
        let scrape = router.scrape(T0_MS, None);
        let mut loss = 0.0;
        for i in 1..100 {
            loss += value_of(
                &router.scrape(T0_MS + i * 15_000, None),
                "net_packet_loss_ratio",
            );
        }
        let server = device(DeviceType::Server, problem);
        let mut s = DeviceSignals::new(&server, 3);
        s.scrape(T0_MS, None);
        let load1 = value_of(&s.scrape(T0_MS + 600_000, None), "node_load1");
        ratios.push((failed, errors, fail_ratio, loss, load1, scrape));
    }
    let (healthy, problem) = (&ratios[0], &ratios[1]);
    assert!(
        problem.0 > healthy.0 * 3,
        "failed checkouts {} vs {}",
        problem.0,
        healthy.0
    );
    assert!(
        problem.1 > healthy.1 * 3,
        "error lines {} vs {}",
        problem.1,
        healthy.1
    );
    assert!(
        problem.2 > healthy.2 * 3.0,
        "payment failure ratio {} vs {}",
        problem.2,
        healthy.2
    );
    assert!(
        problem.3 > healthy.3 * 10.0,
        "loss {} vs {}",
        problem.3,
        healthy.3
    );
    assert!(
        problem.4 > healthy.4 * 2.0,
        "load1 {} vs {}",
        problem.4,
        healthy.4
    );
}

#[test]
fn a_seed_gives_the_same_signals() {
    let spec = FleetSpec {
        devices: 30,
        problem_fraction: 0.3,
        ..FleetSpec::default()
    };
    let run = |seed: u64| {
        let fleet = Fleet::generate(&FleetSpec {
            seed,
            ..spec.clone()
        });
        fleet
            .devices
            .iter()
            .map(|d| {
                let mut g = DeviceSignals::new(d, seed);
                let text = g.scrape(T0_MS, Some(1)).text();
                let line = g.log_line(7, Some(2)).line;
                let trace = g.checkout(9, None, None).map(|c| c.resource_spans);
                (text, line, trace)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn rates_are_positive_and_traces_only_on_pos() {
    for t in DeviceType::ALL {
        let r = Rates::for_type(t);
        assert!(r.logs_per_s > 0.0 && r.metric_series > 0);
        assert!(!r.scrape_interval.is_zero());
        assert_eq!(r.checkouts_per_s > 0.0, t == DeviceType::Pos);
        let (logs, samples, spans) = r.items_per_s();
        assert!(logs > 0.0 && samples > 0.0 && spans >= 0.0);
    }
}
