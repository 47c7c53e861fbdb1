//! The verdict on the runs that used to pass silently: all lost, a 404 target (everything
//! refused), a refusing target (some refused), partial loss, duplicates, nothing sent; and how
//! `--slo` and `--no-default-slos` change the objectives.

use std::collections::BTreeMap;

use super::*;
use crate::histogram::HistogramData;
use crate::results::{FleetSummary, RunInfo, Verification};

fn signal(sent: u64, refused: &[(&str, u64)], canaries: u64, found: u64) -> SignalResults {
    let errors: BTreeMap<String, u64> = refused.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    let refused_n: u64 = errors.values().sum();
    SignalResults {
        sent,
        acknowledged: sent - refused_n,
        errors,
        send_latency: HistogramData::empty("us"),
        verification: Verification {
            canaries,
            found,
            lost: canaries - found,
            ..Verification::empty("ms")
        },
        items_per_second: 0.0,
        target_items_per_second: 0.0,
        requests: 0,
        bytes: 0,
    }
}

fn results(signals: &[(&str, SignalResults)]) -> Results {
    Results {
        schema_version: crate::SCHEMA_VERSION,
        run: RunInfo {
            id: "t".into(),
            started_at: String::new(),
            duration_s: 10.0,
            warmup_s: 0.0,
            seed: 1,
            devices: 3,
            shard: None,
            shards_merged: 1,
            target: "test".into(),
            agent: String::new(),
            rate_multiplier: 1.0,
            loadgen_version: String::new(),
            command: String::new(),
        },
        fleet: FleetSummary::default(),
        signals: signals
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
        intervals: Vec::new(),
        breakdown: Vec::new(),
        resources: Vec::new(),
        slos: Vec::new(),
        defaults_off: false,
        read_path: None,
        verdict: None,
    }
}

fn judged(mut r: Results, given: &[Slo], defaults: bool) -> Results {
    Objectives::new(given, defaults).judge(&mut r);
    r
}

fn healthy() -> Vec<(&'static str, SignalResults)> {
    vec![
        ("logs", signal(1000, &[], 100, 100)),
        ("metrics", signal(5000, &[], 500, 500)),
        ("traces", signal(400, &[], 40, 40)),
    ]
}

#[test]
fn a_clean_run_passes_on_the_defaults() {
    let r = judged(results(&healthy()), &[], true);
    let v = r.verdict();
    assert_eq!(v.outcome, Outcome::Pass, "{v:?}");
    assert_eq!(r.slos.len(), 4);
    assert!(r.slos.iter().all(|s| s.default && s.pass));
    assert!(v.headline().starts_with("PASS: all 4 objectives met"));
    assert_eq!(
        r.verdict.as_ref().map(|v| v.outcome),
        Some(Outcome::Pass),
        "recorded for results.json"
    );
}

#[test]
fn everything_lost_fails_naming_the_loss() {
    let mut s = healthy();
    s[0].1 = signal(1000, &[], 100, 0);
    s[1].1 = signal(5000, &[], 500, 0);
    let r = judged(results(&s), &[], true);
    let v = r.verdict();
    assert_eq!(v.outcome, Outcome::Fail);
    let head = v.headline();
    assert!(head.starts_with("FAIL: loss 1 > 0"), "{head}");
    assert!(head.contains("100 of 100 canaries lost"), "{head}");
    assert!(
        head.contains("unverified 2 > 0") && head.contains("none of 500 canaries found"),
        "{head}"
    );
}

#[test]
fn a_404_target_refusing_everything_fails_though_no_canary_was_lost() {
    // Nothing acknowledged: no canary in the ledger, so "loss" alone would read 0.
    let mut s = healthy();
    s[1].1 = signal(5000, &[("404", 5000)], 0, 0);
    s[2].1 = signal(400, &[("404", 400)], 0, 0);
    let r = judged(results(&s), &[], true);
    let v = r.verdict();
    assert_eq!(v.outcome, Outcome::Fail);
    let head = v.headline();
    assert!(head.contains("errors 1 > 0"), "{head}");
    assert!(head.contains("by status: 404: 5000"), "{head}");
    assert!(head.contains("no canary acknowledged"), "{head}");
}

#[test]
fn a_target_refusing_some_requests_fails() {
    let mut s = healthy();
    s[0].1 = signal(1000, &[("429", 7)], 100, 100);
    let r = judged(results(&s), &[], true);
    let v = r.verdict();
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.reasons.len(), 1, "{v:?}");
    assert!(v.reasons[0].contains("7 of 1000 items refused"), "{v:?}");
    // ... unless the user allows it, explicitly.
    let ok = judged(results(&s), &["errors=0.01".parse().unwrap()], true);
    assert_eq!(ok.verdict().outcome, Outcome::Pass);
    assert!(ok.slos.iter().any(|s| s.name == "errors" && !s.default));
}

#[test]
fn partial_loss_and_duplicates_fail() {
    let mut s = healthy();
    s[2].1 = signal(400, &[], 40, 39);
    s[1].1.verification.duplicated = 3;
    let r = judged(results(&s), &[], true);
    let v = r.verdict();
    assert_eq!(v.outcome, Outcome::Fail);
    let head = v.headline();
    assert!(
        head.contains("traces: 1 of 40 canaries lost (2.500%)"),
        "{head}"
    );
    assert!(head.contains("duplicates 3 > 0"), "{head}");
}

#[test]
fn the_last_read_back_error_explains_a_loss() {
    let mut s = healthy();
    s[0].1 = signal(1000, &[], 100, 0);
    s[0].1.verification.query_errors = 12;
    s[0].1.verification.last_query_error = Some("HTTP 404 from http://x/loki".into());
    let r = judged(results(&s), &[], true);
    assert!(
        r.verdict()
            .headline()
            .contains("12 read-back queries failed, the last: HTTP 404 from http://x/loki")
    );
}

#[test]
fn nothing_sent_fails() {
    let s = vec![("logs", signal(0, &[], 0, 0))];
    let r = judged(results(&s), &[], true);
    assert_eq!(r.verdict().outcome, Outcome::Fail);
    assert!(r.verdict().headline().contains("nothing was sent"));
    let none = judged(results(&[]), &[], true);
    assert_eq!(none.verdict().outcome, Outcome::Fail);
}

#[test]
fn opting_out_is_explicit_and_never_green() {
    let mut s = healthy();
    s[0].1 = signal(1000, &[], 100, 0);
    let r = judged(results(&s), &[], false);
    let v = r.verdict();
    assert_eq!(v.outcome, Outcome::Unjudged);
    assert!(v.headline().starts_with("NOT JUDGED"), "{}", v.headline());
    // With the defaults off, only the given SLOs count, and the pass says the defaults are off.
    let r = judged(
        results(&healthy()),
        &["p99_send_ms=500".parse().unwrap()],
        false,
    );
    assert_eq!(r.slos.len(), 1);
    assert_eq!(r.verdict().outcome, Outcome::Pass);
    assert!(r.verdict().headline().contains("--no-default-slos"));
}

#[test]
fn given_slos_replace_defaults_one_by_one() {
    let given: Vec<Slo> = ["loss=0.05", "p99_send_ms=500"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let o = Objectives::new(&given, true);
    let names: Vec<(&str, f64, bool)> = o
        .slos
        .iter()
        .map(|(s, d)| (s.kind.as_str(), s.threshold, *d))
        .collect();
    assert_eq!(
        names,
        vec![
            ("loss", 0.05, false),
            ("duplicates", 0.0, true),
            ("errors", 0.0, true),
            ("unverified", 0.0, true),
            ("p99_send_ms", 500.0, false),
        ]
    );
    // Round trip through results.json keeps the objectives (merge checks them again).
    let r = judged(results(&healthy()), &given, true);
    let back = Results::from_json(&r.to_json()).unwrap();
    assert_eq!(Objectives::of(&back), o);
    assert_eq!(back.verdict, r.verdict);
}

#[test]
fn slo_names_parse_and_bad_ones_are_refused() {
    assert_eq!(
        "loss=0".parse::<Slo>(),
        Ok(Slo {
            kind: SloKind::Loss,
            threshold: 0.0
        })
    );
    assert_eq!(
        "p99_send_ms = 500".parse::<Slo>().map(|s| s.kind),
        Ok(SloKind::P99SendMs)
    );
    assert!(matches!("loss".parse::<Slo>(), Err(SloError::Syntax(_))));
    assert!(matches!(
        "lost=1".parse::<Slo>(),
        Err(SloError::Name { .. })
    ));
    assert!(matches!("loss=-1".parse::<Slo>(), Err(SloError::Value(_))));
    assert!(matches!("loss=abc".parse::<Slo>(), Err(SloError::Value(_))));
}

#[test]
fn collector_bounds_without_a_process_fail() {
    let r = judged(
        results(&healthy()),
        &["collector_rss_mb=100".parse().unwrap()],
        true,
    );
    assert_eq!(r.verdict().outcome, Outcome::Fail);
    assert!(
        r.verdict()
            .headline()
            .contains("collector_rss_mb inf > 100")
    );
}

#[test]
fn loss_from_the_embedded_stacks_eviction_is_named() {
    let mut m = signal(1000, &[], 100, 90);
    m.verification.stack_evicted = 5000;
    let r = judged(results(&[("metrics", m)]), &[], true);
    let head = r.verdict().headline();
    assert!(head.contains("10 of 100 canaries lost"), "{head}");
    assert!(
        head.contains("the embedded stack evicted 5000 samples"),
        "{head}"
    );
    // Nothing lost: evictions alone are no reason to mention them.
    let mut ok = signal(1000, &[], 100, 100);
    ok.verification.stack_evicted = 5000;
    let r = judged(results(&[("metrics", ok)]), &[], true);
    assert!(!r.verdict().headline().contains("evicted"));
}
