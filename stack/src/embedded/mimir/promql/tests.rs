//! Evaluation cases with hand-checked numbers: selectors and staleness, range windows,
//! extrapolated rates, `*_over_time`, aggregations, binary operators, histogram quantiles and the
//! refusal of unsupported PromQL.

use super::*;
use crate::embedded::mimir::store::Store;

const MIN: i64 = 60_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

/// A store with: `c{job="a"}` a counter every minute 0..=10 going 0,10,20,...,50 then reset to
/// 5 at minute 6 and +10 per minute after; `g{job="a"}` a gauge that goes stale at minute 3;
/// `g{job="b"}` constant 7.
fn store() -> Store {
    let mut s = Store::default();
    let c = labels(&[("__name__", "c"), ("job", "a")]);
    for i in 0..=10 {
        let v = if i <= 5 {
            10.0 * i as f64
        } else {
            5.0 + 10.0 * (i - 6) as f64
        };
        s.append("t", &c, i * MIN, v).unwrap();
    }
    let ga = labels(&[("__name__", "g"), ("job", "a")]);
    s.append("t", &ga, 0, 1.0).unwrap();
    s.append("t", &ga, MIN, 2.0).unwrap();
    s.append("t", &ga, 3 * MIN, wire::remote_write::stale_nan())
        .unwrap();
    let gb = labels(&[("__name__", "g"), ("job", "b")]);
    for i in 0..=10 {
        s.append("t", &gb, i * MIN, 7.0).unwrap();
    }
    for (le, v) in [("0.1", 1.0), ("0.5", 4.0), ("1", 8.0), ("+Inf", 10.0)] {
        let h = labels(&[("__name__", "h_bucket"), ("le", le)]);
        s.append("t", &h, 0, v).unwrap();
    }
    s
}

fn run(s: &Store, sem: Semantics, q: &str, t: i64) -> Result<QueryResult, QueryError> {
    let ctx = Context {
        tenant: s.tenant("t"),
        semantics: sem,
        lookback_ms: DEFAULT_LOOKBACK_MS,
        start: t,
        end: t,
    };
    instant_query(&ctx, &parse(q)?, t)
}

/// The vector's values by the `job` label (or "" without one).
fn vector(s: &Store, q: &str, t: i64) -> Vec<(String, f64)> {
    match run(s, Semantics::Prometheus3, q, t) {
        Ok(QueryResult::Vector { samples, .. }) => {
            let mut out: Vec<(String, f64)> = samples
                .into_iter()
                .map(|x| {
                    let job = x
                        .metric
                        .iter()
                        .find(|(k, _)| k == "job")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    (job, x.value)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: expected a vector, got {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn instant_selector_lookback_and_staleness() {
    let s = store();
    assert_eq!(
        vector(&s, "g", 2 * MIN),
        vec![("a".into(), 2.0), ("b".into(), 7.0)]
    );
    // Stale from minute 3 on, even within the lookback of the minute-1 sample.
    assert_eq!(vector(&s, "g", 3 * MIN + 1), vec![("b".into(), 7.0)]);
    // 5m lookback: the last sample of c is at minute 10.
    assert_eq!(vector(&s, "c", 15 * MIN - 1), vec![("a".into(), 45.0)]);
    assert!(vector(&s, "c", 15 * MIN).is_empty());
    // Prometheus 2 includes the sample exactly 5m old.
    match run(&s, Semantics::Prometheus2, "c", 15 * MIN) {
        Ok(QueryResult::Vector { samples, .. }) => assert_eq!(samples.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(vector(&s, "c offset 5m", 5 * MIN), vec![("a".into(), 0.0)]);
    assert_eq!(vector(&s, "c @ 120", 10 * MIN), vec![("a".into(), 20.0)]);
    assert_eq!(vector(&s, r#"{__name__=~"g|c", job="a"}"#, MIN).len(), 2);
}

#[test]
fn range_windows_follow_the_version() {
    let s = store();
    // (5m, 10m] holds minutes 6..=10 under Prometheus 3; [5m, 10m] also minute 5.
    assert_eq!(
        vector(&s, "count_over_time(c[5m])", 10 * MIN),
        vec![("a".into(), 5.0)]
    );
    match run(
        &s,
        Semantics::Prometheus2,
        "count_over_time(c[5m])",
        10 * MIN,
    ) {
        Ok(QueryResult::Vector { samples, .. }) => assert_eq!(samples[0].value, 6.0),
        other => panic!("{other:?}"),
    }
    match run(&s, Semantics::Prometheus3, "c[2m]", 10 * MIN) {
        Ok(QueryResult::Matrix(m)) => {
            assert_eq!(m[0].points, vec![(9 * MIN, 35.0), (10 * MIN, 45.0)]);
            assert_eq!(m[0].metric, labels(&[("__name__", "c"), ("job", "a")]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_increase_and_resets() {
    let s = store();
    // Window (4m, 10m]: samples at minutes 5..10: 40,50,5,15,25,35,45 (no: 5..=10 is six
    // samples: 50,5,15,25,35,45). Increase with the reset: 45 - 50 + 50 = 45 over 5 minutes
    // sampled; both ends within the 1.1 * 60 s threshold: durationToStart = 60 s,
    // durationToEnd = 0 → factor (300 + 60 + 0) / 300 = 1.2, but the zero point caps the start:
    // 300 * 50 / 45 = 333 s > 60 s, so no cap. increase = 45 * 1.2 = 54.
    let inc = vector(&s, "increase(c[6m])", 10 * MIN);
    assert!(close(inc[0].1, 54.0), "{inc:?}");
    let rate = vector(&s, "rate(c[6m])", 10 * MIN);
    assert!(close(rate[0].1, 54.0 / 360.0), "{rate:?}");
    assert_eq!(
        vector(&s, "resets(c[6m])", 10 * MIN),
        vec![("a".into(), 1.0)]
    );
    // delta is not counter-aware: 45 - 50 = -5, same factor.
    let d = vector(&s, "delta(c[6m])", 10 * MIN);
    assert!(close(d[0].1, -6.0), "{d:?}");
    // irate at the reset: the last value over the interval.
    let ir = vector(&s, "irate(c[2m])", 6 * MIN);
    assert!(close(ir[0].1, 5.0 / 60.0), "{ir:?}");
    assert_eq!(
        vector(&s, "idelta(c[2m])", 6 * MIN),
        vec![("a".into(), -45.0)]
    );
    // One sample is not enough.
    assert!(vector(&s, "rate(c[1m])", 10 * MIN).is_empty());
}

#[test]
fn rate_zero_point_differs_between_versions() {
    // Counter 10 → 20 → 30 at 60 s spacing, window 10 min: durationToStart far over the
    // threshold. Prometheus 3: start = 30 s, zero point 120 * 10 / 20 = 60 s → 30 s stays;
    // factor (120 + 30 + 30) / 120 = 1.5 → 30. Prometheus 2: zero point first: min(480, 60)
    // = 60 s, which is under the 66 s threshold → kept: (120 + 60 + 30) / 120 → 35.
    let p = [(MIN * 3, 10.0), (MIN * 4, 20.0), (MIN * 5, 30.0)];
    let r3 = functions::extrapolated_rate(
        Semantics::Prometheus3,
        &p,
        -5 * MIN,
        5 * MIN + 30_000,
        true,
        false,
    );
    let r2 = functions::extrapolated_rate(
        Semantics::Prometheus2,
        &p,
        -5 * MIN,
        5 * MIN + 30_000,
        true,
        false,
    );
    assert!(close(r3.unwrap(), 30.0), "{r3:?}");
    assert!(close(r2.unwrap(), 35.0), "{r2:?}");
}

#[test]
fn over_time_functions() {
    let s = store();
    let t = 4 * MIN; // (-1m, 4m] of c: 0,10,20,30,40
    assert_eq!(
        vector(&s, "sum_over_time(c[5m])", t),
        vec![("a".into(), 100.0)]
    );
    assert_eq!(
        vector(&s, "avg_over_time(c[5m])", t),
        vec![("a".into(), 20.0)]
    );
    assert_eq!(
        vector(&s, "min_over_time(c[5m])", t),
        vec![("a".into(), 0.0)]
    );
    assert_eq!(
        vector(&s, "max_over_time(c[5m])", t),
        vec![("a".into(), 40.0)]
    );
    assert_eq!(
        vector(&s, "last_over_time(c[5m])", t),
        vec![("a".into(), 40.0)]
    );
    assert_eq!(
        vector(&s, "quantile_over_time(0.5, c[5m])", t),
        vec![("a".into(), 20.0)]
    );
    assert_eq!(
        vector(&s, "quantile_over_time(0.25, c[5m])", t),
        vec![("a".into(), 10.0)]
    );
    let sd = vector(&s, "stddev_over_time(c[5m])", t);
    assert!(close(sd[0].1, 200f64.sqrt()), "{sd:?}");
    // last_over_time keeps the name, the others drop it.
    match run(&s, Semantics::Prometheus3, "last_over_time(c[5m])", t) {
        Ok(QueryResult::Vector { samples, .. }) => {
            assert!(samples[0].metric.iter().any(|(k, _)| k == "__name__"))
        }
        other => panic!("{other:?}"),
    }
    // The stale marker is not a sample of the range.
    assert_eq!(
        vector(&s, r#"count_over_time(g{job="a"}[10m])"#, 5 * MIN),
        vec![("a".into(), 2.0)]
    );
}

#[test]
fn aggregations() {
    let s = store();
    let t = 2 * MIN;
    assert_eq!(vector(&s, "sum(g)", t), vec![("".into(), 9.0)]);
    assert_eq!(
        vector(&s, "sum by (job) (g)", t),
        vec![("a".into(), 2.0), ("b".into(), 7.0)]
    );
    assert_eq!(
        vector(&s, "avg without (job) (g)", t),
        vec![("".into(), 4.5)]
    );
    assert_eq!(vector(&s, "count(g)", t), vec![("".into(), 2.0)]);
    assert_eq!(vector(&s, "min(g)", t), vec![("".into(), 2.0)]);
    assert_eq!(vector(&s, "max(g)", t), vec![("".into(), 7.0)]);
    assert_eq!(vector(&s, "topk(1, g)", t), vec![("b".into(), 7.0)]);
    assert_eq!(vector(&s, "bottomk(1, g)", t), vec![("a".into(), 2.0)]);
    assert_eq!(vector(&s, "stddev(g)", t), vec![("".into(), 2.5)]);
    assert_eq!(vector(&s, "quantile(0.5, g)", t), vec![("".into(), 4.5)]);
}

#[test]
fn binary_operators() {
    let s = store();
    let t = 2 * MIN;
    assert_eq!(
        vector(&s, "g * 2", t),
        vec![("a".into(), 4.0), ("b".into(), 14.0)]
    );
    assert_eq!(
        vector(&s, "10 - g", t),
        vec![("a".into(), 8.0), ("b".into(), 3.0)]
    );
    assert_eq!(vector(&s, "g > 5", t), vec![("b".into(), 7.0)]);
    assert_eq!(vector(&s, "5 < g", t), vec![("b".into(), 7.0)]);
    assert_eq!(
        vector(&s, "g > bool 5", t),
        vec![("a".into(), 0.0), ("b".into(), 1.0)]
    );
    assert_eq!(vector(&s, "c / g", t), vec![("a".into(), 10.0)]);
    assert_eq!(vector(&s, "c - on(job) g", t), vec![("a".into(), 18.0)]);
    assert_eq!(vector(&s, "g and c", t), vec![("a".into(), 2.0)]);
    assert_eq!(vector(&s, "g unless c", t), vec![("b".into(), 7.0)]);
    assert_eq!(
        vector(&s, "-g", t),
        vec![("a".into(), -2.0), ("b".into(), -7.0)]
    );
    assert_eq!(
        vector(&s, "g % 4", t),
        vec![("a".into(), 2.0), ("b".into(), 3.0)]
    );
    assert_eq!(
        vector(&s, "g ^ 2", t),
        vec![("a".into(), 4.0), ("b".into(), 49.0)]
    );
    match run(&s, Semantics::Prometheus3, "1 + 2 * 3", t) {
        Ok(QueryResult::Scalar { v, .. }) => assert_eq!(v, 7.0),
        other => panic!("{other:?}"),
    }
    // Comparisons keep the name, arithmetic drops it.
    match run(&s, Semantics::Prometheus3, "g > 5", t) {
        Ok(QueryResult::Vector { samples, .. }) => {
            assert!(samples[0].metric.iter().any(|(k, _)| k == "__name__"))
        }
        other => panic!("{other:?}"),
    }
    // Two g series against one label-less value: duplicate match group on the right.
    let e = run(&s, Semantics::Prometheus3, "vector(1) + ignoring(job) g", t);
    assert!(matches!(e, Err(QueryError::Execution(_))), "{e:?}");
}

#[test]
fn histogram_quantile_classic_buckets() {
    let s = store();
    // 10 observations; rank 5 lies in (0.5, 1] holding 4: 0.5 + 0.5 * (1 / 4) = 0.625.
    assert_eq!(
        vector(&s, "histogram_quantile(0.5, h_bucket)", 0),
        vec![("".into(), 0.625)]
    );
    // Rank 9.5 is in +Inf: the highest finite bound.
    assert_eq!(
        vector(&s, "histogram_quantile(0.95, h_bucket)", 0),
        vec![("".into(), 1.0)]
    );
    let nan = vector(&s, "histogram_quantile(0.5, g)", 0);
    assert!(nan.is_empty());
    let mut b = vec![(1.0, 1.0), (2.0, 2.0)];
    assert!(functions::bucket_quantile(0.5, &mut b).is_nan());
}

#[test]
fn functions_and_scalars() {
    let s = store();
    let t = 2 * MIN;
    assert_eq!(
        vector(&s, "abs(-g)", t),
        vec![("a".into(), 2.0), ("b".into(), 7.0)]
    );
    assert_eq!(
        vector(&s, "clamp_max(g, 5)", t),
        vec![("a".into(), 2.0), ("b".into(), 5.0)]
    );
    assert_eq!(
        vector(&s, "clamp_min(g, 5)", t),
        vec![("a".into(), 5.0), ("b".into(), 7.0)]
    );
    assert_eq!(
        vector(&s, "round(g / 4)", t),
        vec![("a".into(), 1.0), ("b".into(), 2.0)]
    );
    assert_eq!(vector(&s, "vector(time())", t), vec![("".into(), 120.0)]);
    match run(&s, Semantics::Prometheus3, r#"scalar(g{job="b"})"#, t) {
        Ok(QueryResult::Scalar { v, .. }) => assert_eq!(v, 7.0),
        other => panic!("{other:?}"),
    }
    match run(&s, Semantics::Prometheus3, "scalar(g)", t) {
        Ok(QueryResult::Scalar { v, .. }) => assert!(v.is_nan()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn range_query_steps_and_staleness() {
    let s = store();
    let ctx = Context {
        tenant: s.tenant("t"),
        semantics: Semantics::Prometheus3,
        lookback_ms: DEFAULT_LOOKBACK_MS,
        start: 0,
        end: 4 * MIN,
    };
    let r = range_query(&ctx, &parse(r#"g{job="a"}"#).unwrap(), 0, 4 * MIN, MIN).unwrap();
    let QueryResult::Matrix(m) = r else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points, vec![(0, 1.0), (MIN, 2.0), (2 * MIN, 2.0)]);
    let r = range_query(&ctx, &parse("1").unwrap(), 0, MIN, MIN).unwrap();
    assert_eq!(
        r,
        QueryResult::Matrix(vec![RangeSeries {
            metric: vec![],
            points: vec![(0, 1.0), (MIN, 1.0)]
        }])
    );
    assert!(matches!(
        range_query(&ctx, &parse("g[1m]").unwrap(), 0, MIN, MIN),
        Err(QueryError::BadData(_))
    ));
}

#[test]
fn unsupported_is_refused() {
    for q in [
        "rate(c[5m:1m])",
        "c * on(job) group_left g",
        "count_values(\"x\", g)",
        "label_replace(g, \"a\", \"b\", \"c\", \"d\")",
        "absent(g)",
    ] {
        match parse(q) {
            Err(e @ QueryError::Unsupported(_)) => {
                assert!(
                    e.to_string()
                        .starts_with("not supported by the embedded Mimir: ")
                )
            }
            other => panic!("{q}: {other:?}"),
        }
    }
    assert!(matches!(parse("sum("), Err(QueryError::BadData(_))));
}
