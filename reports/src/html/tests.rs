//! Tests of the HTML report: escaping, formatting, figures and every section on real results.

use super::*;

#[test]
fn escapes_everything_that_matters() {
    assert_eq!(
        esc(r#"<a href="x">&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn numbers_format_for_humans() {
    assert_eq!(fmt_int(0), "0");
    assert_eq!(fmt_int(1234567), "1,234,567");
    assert_eq!(fmt_f(1234.4), "1,234");
    assert_eq!(fmt_f(0.5), "0.5000");
    assert_eq!(fmt_ms(1500, "us"), "1.50 ms");
    assert_eq!(fmt_pct(Some(0.0001)), "0.010%");
    assert_eq!(fmt_pct(None), "–");
}

fn p(v: f64) -> Option<Figure> {
    Some(Figure::plain(v))
}

#[test]
fn deltas_know_which_way_is_better() {
    let c = compare_cells(p(100.0), p(120.0), Better::Higher, &fmt_f);
    assert!(c[3].contains("better") && c[2].contains("+20"));
    let c = compare_cells(p(100.0), p(120.0), Better::Lower, &fmt_f);
    assert!(c[3].contains("worse"));
    let c = compare_cells(None, p(1.0), Better::Lower, &fmt_f);
    assert!(c[3].contains("n/a"));
    assert_eq!(change(p(100.0), p(80.0), Better::Neither), Change::Lower);
}

#[test]
fn noise_sized_differences_are_the_same() {
    // Under 5 %.
    assert_eq!(change(p(100.0), p(104.9), Better::Higher), Change::Same);
    assert_eq!(change(p(100.0), p(94.0), Better::Higher), Change::Worse);
    // Counts: 100 and 120 events are within two Poisson standard deviations (±30).
    let c = |n| Some(Figure::count(n, 1.0));
    assert_eq!(change(c(100), c(120), Better::Higher), Change::Same);
    assert_eq!(change(c(100), c(140), Better::Higher), Change::Better);
    // 0 and 1 lost canaries of 10,000: noise, not a regression.
    let loss = |n| Some(Figure::count(n, 100.0 / 10_000.0));
    assert_eq!(change(loss(0), loss(1), Better::Lower), Change::Same);
    assert_eq!(change(loss(0), loss(40), Better::Lower), Change::Worse);
    // Latencies within the resolution (a 1 s poll) are the same, beyond it they are not.
    let w = |ms| {
        Some(Figure {
            value: ms,
            sigma: 0.0,
            resolution: 1000.0,
        })
    };
    assert_eq!(change(w(1000.0), w(1900.0), Better::Lower), Change::Same);
    assert_eq!(change(w(1000.0), w(2100.0), Better::Lower), Change::Worse);
}

fn run_with(intervals: &[(f64, u64)], duration_s: f64, warmup_s: f64) -> Results {
    let mut r: Results = serde_json::from_str(&format!(
        r#"{{"schema_version":1,"run":{{"id":"x","started_at":"","duration_s":{duration_s},
        "warmup_s":{warmup_s},"seed":1,"devices":1,"shard":null,"shards_merged":1,"target":"embedded",
        "rate_multiplier":1.0,"loadgen_version":"0","command":""}},"fleet":{{"by_type":{{}},
        "by_region":{{}},"stores":0,"problem_devices":0}},"signals":{{}},"intervals":[],
        "breakdown":[],"resources":[],"slos":[]}}"#
    ))
    .unwrap();
    r.intervals = intervals
        .iter()
        .map(|&(t_s, n)| Interval {
            t_s,
            sent: BTreeMap::from([("logs".to_string(), n)]),
            errors: BTreeMap::new(),
            scheduled: BTreeMap::new(),
            requests: BTreeMap::new(),
            bytes: BTreeMap::new(),
            send_latency: HistogramData::empty("us"),
        })
        .collect();
    r
}

fn logs_rate(r: &Results) -> Vec<(f64, f64)> {
    rate_points(r, |iv| iv.sent.get("logs").copied())
}

#[test]
fn the_ragged_end_is_not_drawn_as_a_collapse() {
    // 60 s at 1000/s, then the last in-flight requests completing in interval 61.
    let mut iv: Vec<(f64, u64)> = (1..=60).map(|t| (t as f64, 1000)).collect();
    iv.push((61.0, 3));
    let r = run_with(&iv, 60.0, 0.0);
    let pts = logs_rate(&r);
    assert_eq!(pts.len(), 60);
    assert!(pts.iter().all(|p| p.1 == 1000.0), "{pts:?}");
    assert_eq!(tail_items(&r, |iv| iv.sent["logs"]), 3);
    // A schedule ending mid-interval: that interval's rate is over the time it covered.
    let mut iv: Vec<(f64, u64)> = (1..=60).map(|t| (t as f64, 1000)).collect();
    iv.push((61.0, 600));
    let pts = logs_rate(&run_with(&iv, 60.6, 0.0));
    assert_eq!(pts.len(), 61);
    assert!((pts[60].1 - 1000.0).abs() < 1e-6, "{:?}", pts[60]);
    // ...unless it covered under half an interval.
    let mut iv: Vec<(f64, u64)> = (1..=60).map(|t| (t as f64, 1000)).collect();
    iv.push((61.0, 100));
    assert_eq!(logs_rate(&run_with(&iv, 60.1, 0.0)).len(), 60);
}

#[test]
fn the_first_interval_after_warmup_is_one_interval_long() {
    let iv: Vec<(f64, u64)> = (6..=10).map(|t| (t as f64, 500)).collect();
    let pts = logs_rate(&run_with(&iv, 10.0, 5.0));
    assert_eq!(pts.first(), Some(&(6.0, 500.0)));
}

#[test]
fn settings_that_differ_are_named() {
    let a = run_with(&[], 60.0, 0.0);
    assert!(setting_differences(&a, &a.clone()).is_empty());
    let mut b = a.clone();
    b.run.devices = 300;
    b.run.seed = 2;
    b.run.target = "embedded, delivery otlp".into();
    b.run.loadgen_version = "1".into();
    let d = setting_differences(&a, &b);
    assert_eq!(
        d,
        [
            "devices: 1 and 300",
            "seed: 1 and 2",
            "delivery: push and otlp",
            "loadgen version: 0 and 1"
        ]
    );
}
