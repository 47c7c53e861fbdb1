//! The HTML report and the text summary against a realistic run (3 signals, 60 intervals and a
//! ragged last one, resources, breakdown, one failing SLO), and a property test that rendering
//! never panics.

// The whole file is tests; clippy's allow-unwrap-in-tests does not reach the helpers.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use reports::histogram::{HistogramData, new_histogram};
use reports::results::{
    Breakdown, FleetSummary, Interval, ResourceSample, RunInfo, SignalResults, SloVerdict,
    Verification,
};
use reports::{Results, SCHEMA_VERSION};

const TARGET: &str = "collector http://127.0.0.1:4318";

/// A deterministic pseudo-random stream (no rand dependency needed in a test).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `n` latencies around `median` with a long tail.
fn hist(rng: &mut Lcg, n: u64, median: u64, unit: &str) -> HistogramData {
    let mut h = new_histogram();
    for _ in 0..n {
        let r = rng.next() % 10_000;
        let v = if r < 9_900 {
            median / 2 + rng.next() % median.max(1)
        } else {
            median * (2 + rng.next() % 50)
        };
        h.record(v.max(1)).unwrap();
    }
    HistogramData::from_histogram(&h, unit)
}

fn realistic(id: &str, scale: f64) -> Results {
    let mut rng = Lcg(42);
    let signals = ["logs", "metrics", "traces"];
    let mut sig_map = BTreeMap::new();
    for (i, name) in signals.iter().enumerate() {
        let sent = (600_000.0 * scale) as u64 * (i as u64 + 1);
        let errors = BTreeMap::from([("429".to_string(), 120 * (i as u64 + 1)), ("500".into(), 3)]);
        let acked = sent - errors.values().sum::<u64>();
        sig_map.insert(
            name.to_string(),
            SignalResults {
                sent,
                acknowledged: acked,
                errors,
                send_latency: hist(&mut rng, 20_000, (2_000.0 / scale) as u64, "us"),
                verification: Verification {
                    canaries: 6_000,
                    found: 5_998 - i as u64,
                    lost: 2 + i as u64,
                    duplicated: i as u64,
                    out_of_order: 1,
                    write_to_query_latency: hist(&mut rng, 6_000, 900, "ms"),
                    query_errors: 0,
                    last_query_error: None,
                    poll_interval_ms: 1000,
                    stack_evicted: 0,
                },
                items_per_second: acked as f64 / 60.0,
                target_items_per_second: sent as f64 / 60.0,
                requests: sent / 50,
                bytes: sent * 120,
            },
        );
    }
    // Interval 61 holds the last requests completing after the 60 s schedule: a few items.
    let intervals = (1..=61u64)
        .map(|t| {
            let per_s = |i: usize| if t <= 60 { 10_000 * (i as u64 + 1) } else { 7 };
            let sent: BTreeMap<String, u64> = signals
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        s.to_string(),
                        per_s(i) + rng.next() % 500 * u64::from(t <= 60),
                    )
                })
                .collect();
            Interval {
                t_s: t as f64,
                errors: signals
                    .iter()
                    .map(|s| (s.to_string(), if t % 10 == 0 { rng.next() % 40 } else { 0 }))
                    .collect(),
                scheduled: signals
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.to_string(), per_s(i)))
                    .collect(),
                requests: sent.iter().map(|(k, v)| (k.clone(), v / 50)).collect(),
                bytes: sent.iter().map(|(k, v)| (k.clone(), v * 120)).collect(),
                sent,
                send_latency: hist(&mut rng, 300, 2_000, "us"),
            }
        })
        .collect();
    let resources = (1..=60)
        .flat_map(|t| {
            [("collector", 1.4, 180), ("loadgen", 0.6, 90)].map(|(p, cpu, mib)| ResourceSample {
                t_s: t as f64,
                process: p.to_string(),
                cpu_cores: cpu + (t % 7) as f64 / 20.0,
                rss_bytes: (mib + t) * 1024 * 1024,
            })
        })
        .collect();
    let mut breakdown = Vec::new();
    for (dt, n) in [
        ("pos", 800),
        ("router", 50),
        ("switch", 100),
        ("<script>", 1),
    ] {
        for region in ["eu-west", "us-east"] {
            breakdown.push(Breakdown {
                device_type: dt.to_string(),
                region: region.to_string(),
                devices: n,
                sent: signals
                    .iter()
                    .map(|s| (s.to_string(), n * 700 + rng.next() % 100))
                    .collect(),
                errors: rng.next() % 20,
            });
        }
    }
    Results {
        schema_version: SCHEMA_VERSION,
        run: RunInfo {
            id: id.to_string(),
            started_at: "2026-11-22T00:00:00Z".into(),
            duration_s: 60.0,
            warmup_s: 5.0,
            seed: 7,
            devices: 1_902,
            shard: None,
            shards_merged: 1,
            target: TARGET.into(),
            agent: String::new(),
            rate_multiplier: 1.5,
            loadgen_version: "0.1.0".into(),
            command: "loadgen run --devices 1902".into(),
        },
        fleet: FleetSummary {
            by_type: BTreeMap::from([("pos".into(), 1600), ("router".into(), 100)]),
            by_region: BTreeMap::from([("eu-west".into(), 951), ("us-east".into(), 951)]),
            stores: 50,
            problem_devices: 3,
            dynamics: reports::results::FleetDynamics {
                churn_per_min: 0.05,
                replaced: 120,
                offline_share: 0.1,
                offline_devices: 190,
                offline_from_s: 20.0,
                offline_for_s: 20.0,
                backfilled_items: 4321,
                backfill_dropped: 0,
            },
        },
        signals: sig_map,
        intervals,
        breakdown,
        resources,
        slos: vec![
            SloVerdict {
                name: "loss".into(),
                threshold: 0.001,
                actual: 0.0005,
                pass: true,
                default: false,
                detail: String::new(),
            },
            SloVerdict {
                name: "p99_send_latency_ms".into(),
                threshold: 50.0,
                actual: 73.2 / scale,
                pass: false,
                default: false,
                detail: "traces: p99 send latency 73.2 ms".into(),
            },
        ],
        defaults_off: false,
        read_path: None,
        verdict: None,
    }
}

const HEADINGS: [&str; 7] = [
    "1. Run summary and SLO verdicts",
    "2. Throughput and errors over time",
    "3. Latency",
    "4. Loss and duplicates",
    "5. Breakdown by device type and region",
    "6. Collector and loadgen resources",
    "7. Baseline comparison",
];

/// The text of the section whose `<h2>` is `heading` (up to the next section).
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("<h2>{heading}</h2>"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let end = doc[start..]
        .find("</section>")
        .map_or(doc.len(), |e| start + e);
    &doc[start..end]
}

#[test]
fn report_is_self_contained() {
    let doc = reports::render(&realistic("run-1", 1.0), Some(&realistic("base", 0.8)));
    // The only URL is the run's own target, which is text from the results.
    let without_target = doc.replace(TARGET, "");
    for banned in [
        "http://", "https://", "<script", "<link", "src=", "href=", "@import", "url(",
    ] {
        assert!(
            !without_target.contains(banned),
            "report contains {banned:?}"
        );
    }
    assert!(doc.starts_with("<!DOCTYPE html>"));
    assert!(doc.contains("<style>") && doc.trim_end().ends_with("</html>"));
    assert!(doc.contains("@media print"));
}

#[test]
fn every_section_is_present_with_data_and_charts() {
    let doc = reports::render(&realistic("run-1", 1.0), None);
    for h in &HEADINGS[..6] {
        let s = section(&doc, h);
        assert!(!s.contains("no data"), "{h} has no data");
    }
    let svgs = |h: &str| section(&doc, h).matches("<svg").count();
    assert_eq!(
        svgs(HEADINGS[1]),
        7,
        "throughput + errors + requests/s + bytes/s + pacing of each of 3 signals"
    );
    assert_eq!(svgs(HEADINGS[2]), 2, "spectrum + over time");
    assert_eq!(svgs(HEADINGS[3]), 1, "write-to-query spectrum");
    assert_eq!(svgs(HEADINGS[4]), 2, "by type + by region");
    assert_eq!(svgs(HEADINGS[5]), 2, "cpu + rss");
    // Lines and bars were drawn, one legend entry per signal / process.
    assert!(section(&doc, HEADINGS[1]).matches("<polyline").count() >= 3);
    assert!(section(&doc, HEADINGS[4]).contains("<rect"));
    for name in [
        "logs",
        "metrics",
        "traces",
        "collector",
        "loadgen",
        "p99 (all signals)",
    ] {
        assert!(doc.contains(&format!(">{name}</text>")), "legend {name}");
    }
    // The percentile axis is HdrHistogram's, its last tick label ends inside the chart.
    assert!(
        section(&doc, HEADINGS[2]).contains("text-anchor=\"end\">99.999%</text>"),
        "the 99.999% tick is clipped"
    );
    // Axis labels carry units.
    for label in ["items/s", "send latency (ms)", "CPU (cores)", "RSS (MiB)"] {
        assert!(doc.contains(label), "{label}");
    }
}

#[test]
fn summary_shows_verdicts_first() {
    let doc = reports::render(&realistic("run-1", 1.0), None);
    let s = section(&doc, HEADINGS[0]);
    assert!(s.contains("banner fail\">FAIL</div>"), "{s}");
    assert!(
        s.contains("<li>p99_send_latency_ms 73.2 &gt; 50 — traces: p99 send latency 73.2 ms</li>"),
        "the reason is under the banner: {s}"
    );
    assert!(s.contains("badge pass") && s.contains("badge fail"));
    assert!(s.contains("p99_send_latency_ms") && s.contains("73.20"));
    assert!(s.find("Objectives (SLOs)") < doc.find(HEADINGS[1]));
    let loss = section(&doc, HEADINGS[3]);
    assert!(loss.contains("429: 120") && loss.contains("2 (0.033%)"));
}

#[test]
fn strings_from_results_are_escaped() {
    let mut r = realistic("<img src=x onerror=alert(1)>", 1.0);
    r.signals.insert(
        "<b>bold</b>".into(),
        r.signals.get("logs").cloned().unwrap(),
    );
    r.slos[0].name = "\"><script>alert(1)</script>".into();
    let doc = reports::render(&r, Some(&r));
    assert!(!doc.contains("<script>"));
    assert!(!doc.contains("<img"));
    assert!(!doc.contains("<b>bold"));
    assert!(doc.contains("&lt;script&gt;"), "the device type <script>");
    assert!(doc.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn baseline_section_only_with_a_baseline() {
    let r = realistic("run-1", 1.0);
    let without = reports::render(&r, None);
    assert!(!without.contains(HEADINGS[6]));
    let with = reports::render(&r, Some(&realistic("base-0", 0.8)));
    let s = section(&with, HEADINGS[6]);
    assert!(s.contains("base-0"));
    for metric in [
        "items/s",
        "p50 send latency (ms)",
        "p99 send latency (ms)",
        "loss",
        "p99_send_latency_ms",
    ] {
        assert!(s.contains(metric), "{metric}");
    }
    // More throughput than the baseline is better; a higher p99 SLO actual is worse... here the
    // run is faster (scale 1.0 vs 0.8), so its p99 SLO actual is lower: better.
    assert!(s.contains("▲ better"));
    assert!(s.contains("▼ worse") || s.contains("≈ same"));
    assert!(!s.contains("Warning"), "same settings");
}

#[test]
fn baseline_with_other_settings_is_warned_about_and_noise_is_the_same() {
    let r = realistic("run-1", 1.0);
    let mut base = realistic("base-0", 1.0);
    base.run.devices = 300;
    let doc = reports::render(&r, Some(&base));
    let s = section(&doc, HEADINGS[6]);
    assert!(
        s.contains("Warning:</b> the runs differ in devices: 300 and 1,902"),
        "{s}"
    );
    // Identical figures: nothing is better or worse.
    assert!(!s.contains("▲ better") && !s.contains("▼ worse"), "{s}");
    assert!(s.contains("≈ same"));
}

#[test]
fn latency_tables_and_write_to_query_resolution() {
    let r = realistic("run-1", 1.0);
    let doc = reports::render(&r, None);
    let s = section(&doc, HEADINGS[2]);
    for h in [
        "Send latency per signal",
        "Write-to-query latency per signal",
        ">p50</th>",
        ">p90</th>",
        ">p99</th>",
        ">p99.9</th>",
        ">max</th>",
    ] {
        assert!(s.contains(h), "{h}");
    }
    for (name, sig) in &r.signals {
        for h in [&sig.send_latency, &sig.verification.write_to_query_latency] {
            for v in [h.p50, h.p90, h.p99, h.p999, h.max] {
                let cell = format!("<td class=\"n\">{}</td>", reports::html::fmt_ms(v, &h.unit));
                assert!(s.contains(&cell), "{name}: {cell}");
            }
        }
    }
    assert!(
        s.contains("The verifier queried the stack every 1 s, so these latencies have a resolution of about 1 s"),
        "{s}"
    );
}

#[test]
fn requests_bytes_pacing_and_the_ragged_end() {
    let doc = reports::render(&realistic("run-1", 1.0), None);
    let s = section(&doc, HEADINGS[1]);
    for needle in [
        "Requests and bytes sent",
        "Requests per second, per signal",
        "Request body bytes per second, per signal",
        "Pacing of logs: target, scheduled and sent items per second",
        "Pacing of traces",
        ">target</text>",
        ">scheduled</text>",
        ">sent</text>",
        // The ragged end is named, not drawn.
        "21 items completed in the run's last, partial interval",
    ] {
        assert!(s.contains(needle), "{needle}");
    }
    // logs: 600,000 items in 12,000 requests of 72,000,000 bytes over 55 measured seconds.
    assert!(
        s.contains("<td class=\"n\">12,000</td><td class=\"n\">218.18</td>"),
        "{s}"
    );
    assert!(s.contains("68.7 MiB"), "{s}");
    // No throughput point near zero: every drawn interval is a full one (~10k-30k items/s).
    let chart = &s[..s.find("</svg>").unwrap()];
    let ys: Vec<f64> = chart
        .split("points=\"")
        .skip(1)
        .flat_map(|p| {
            p[..p.find('"').unwrap()]
                .split(' ')
                .map(|xy| xy.split(',').nth(1).unwrap().parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let bottom = ys.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        bottom < 236.0 - 20.0,
        "a point dropped to the axis: {bottom}"
    );
}

#[test]
fn empty_series_say_no_data() {
    let mut r = realistic("empty", 1.0);
    r.intervals.clear();
    r.resources.clear();
    r.breakdown.clear();
    r.slos.clear();
    for s in r.signals.values_mut() {
        s.send_latency = HistogramData::empty("us");
        s.verification.write_to_query_latency = HistogramData::empty("ms");
    }
    let doc = reports::render(&r, None);
    for h in &HEADINGS[..6] {
        assert!(section(&doc, h).contains("no data"), "{h}");
    }
    assert!(!doc.contains("<svg"));
    // No objectives (--no-default-slos): never a green banner above the loss table.
    assert!(doc.contains("banner unjudged\">NOT JUDGED</div>"));
    assert!(!doc.contains("banner pass"));
}

#[test]
fn unreadable_histogram_is_named_not_fatal() {
    let mut r = realistic("bad", 1.0);
    if let Some(s) = r.signals.get_mut("logs") {
        s.send_latency.hdr = "!!!".into();
    }
    let doc = reports::render(&r, None);
    assert!(section(&doc, HEADINGS[2]).contains("logs: histogram unreadable"));
}

#[test]
fn text_summary_has_a_row_per_signal_and_verdicts() {
    let text = reports::summary(&realistic("run-1", 1.0));
    for needle in [
        "run run-1",
        "items/s",
        "p99 w2q",
        "logs",
        "metrics",
        "traces",
        "PASS  loss",
        "FAIL  p99_send_latency_ms",
        "overall: FAIL",
        // Refused items stand beside the loss, so a 429-ing target never reads as "0 loss".
        "refused",
        "refused logs items by status: 429: 120, 500: 3",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    let logs = text.lines().find(|l| l.starts_with("logs")).unwrap();
    assert!(logs.contains("0.033%") && logs.contains(" ms"), "{logs}");
    for needle in [
        "requests logs: 12000 (218.18/s), 68.7 MiB sent (1.2 MiB/s); 50 items and 5.9 KiB per request",
        "w2q resolution: ~1 s: the verifier polled the stack every 1 s",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

fn arb_hist() -> impl Strategy<Value = HistogramData> {
    (
        prop::collection::vec(1u64..10_000_000, 0..20),
        prop::sample::select(vec!["us", "ms", "s", "?"]),
        any::<bool>(),
    )
        .prop_map(|(values, unit, garbage)| {
            let mut h = new_histogram();
            for v in values {
                h.record(v).unwrap();
            }
            let mut d = HistogramData::from_histogram(&h, unit);
            if garbage {
                d.hdr = "not base64!".into();
            }
            d
        })
}

fn arb_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["logs", "metrics", "traces", "<x>", "", "ü&\"'"])
        .prop_map(String::from)
}

fn arb_counts() -> impl Strategy<Value = BTreeMap<String, u64>> {
    prop::collection::btree_map(arb_name(), any::<u64>(), 0..4)
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), -10.0..1e6f64, Just(0.0)]
}

prop_compose! {
    fn arb_signal()(
        sent in any::<u64>(), acknowledged in any::<u64>(), errors in arb_counts(),
        send_latency in arb_hist(), w2q in arb_hist(), c in any::<[u64; 5]>(),
        items_per_second in arb_f64(),
    ) -> SignalResults {
        SignalResults {
            sent, acknowledged, errors, send_latency, items_per_second,
            target_items_per_second: items_per_second,
            verification: Verification {
                canaries: c[0], found: c[1], lost: c[2], duplicated: c[3], out_of_order: c[4],
                write_to_query_latency: w2q, query_errors: 0, last_query_error: None,
                poll_interval_ms: c[0] % 3000,
                stack_evicted: 0,
            },
            requests: c[1], bytes: c[2],
        }
    }
}

prop_compose! {
    fn arb_results()(
        id in ".{0,12}", seed in any::<u64>(), devices in any::<u64>(),
        duration_s in arb_f64(), rate_multiplier in arb_f64(),
        shard in prop::option::of(any::<[u32; 2]>()),
        signals in prop::collection::btree_map(arb_name(), arb_signal(), 0..4),
        intervals in prop::collection::vec(
            (arb_f64(), arb_counts(), arb_counts(), arb_hist()), 0..6),
        breakdown in prop::collection::vec(
            (arb_name(), arb_name(), any::<u64>(), arb_counts(), any::<u64>()), 0..5),
        resources in prop::collection::vec((arb_f64(), arb_name(), arb_f64(), any::<u64>()), 0..6),
        slos in prop::collection::vec((arb_name(), arb_f64(), arb_f64(), any::<bool>()), 0..4),
    ) -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            run: RunInfo {
                id, started_at: String::new(), duration_s, warmup_s: 0.0, seed, devices, shard,
                shards_merged: 1, target: String::new(), agent: String::new(), rate_multiplier,
                loadgen_version: String::new(), command: String::new(),
            },
            fleet: FleetSummary::default(),
            signals,
            intervals: intervals.into_iter().map(|(t_s, sent, errors, send_latency)| Interval {
                scheduled: sent.clone(), requests: errors.clone(), bytes: sent.clone(),
                t_s, sent, errors, send_latency,
            }).collect(),
            breakdown: breakdown.into_iter().map(|(device_type, region, devices, sent, errors)| {
                Breakdown { device_type, region, devices, sent, errors }
            }).collect(),
            resources: resources.into_iter().map(|(t_s, process, cpu_cores, rss_bytes)| {
                ResourceSample { t_s, process, cpu_cores, rss_bytes }
            }).collect(),
            slos: slos.into_iter().map(|(name, threshold, actual, pass)| SloVerdict {
                name, threshold, actual, pass, default: false, detail: String::new(),
            }).collect(),
            defaults_off: false,
            read_path: None,
            verdict: None,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn render_never_panics(r in arb_results(), b in prop::option::of(arb_results())) {
        let doc = reports::render(&r, b.as_ref());
        prop_assert!(doc.ends_with("</html>\n"));
        prop_assert!(!doc.contains("<x>"));
        let _ = reports::summary(&r);
    }
}

/// `REPORTS_SAMPLE_OUT=reports/examples/sample-report.html cargo test -p reports --test
/// html_report sample` writes a sample report (with a baseline) to look at; the committed
/// `reports/examples/sample-report.html` (~40 KB) was made this way.
#[test]
fn sample_report_on_request() {
    if let Ok(path) = std::env::var("REPORTS_SAMPLE_OUT") {
        let doc = reports::render(
            &realistic("sample-run", 1.0),
            Some(&realistic("baseline", 0.8)),
        );
        std::fs::write(path, doc).unwrap();
    }
}
