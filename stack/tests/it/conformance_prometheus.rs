//! Conformance of the embedded Mimir with the real Prometheus installed on this machine: the
//! same remote-write payloads go to both `/api/v1/write` endpoints, then the same PromQL queries
//! (instant at several times, range with several steps) run against both, and the answers are
//! compared: result type, label sets, values (relative 1e-9, NaN == NaN) and status codes. Bad
//! inputs go to both as well (the embedded `/api/v1/write` follows Prometheus 3's receiver; where
//! the local 2.x differs, the difference is asserted and explained), and to the embedded
//! `/api/v1/push`, which keeps Mimir's rules.
//!
//! The embedded Mimir is served with the PromQL semantics of the local Prometheus' major version
//! (2.x: closed range windows; 3.x: left-open), see `stack::embedded::mimir::Semantics`.
//! Skipped with a notice when `prometheus` is not installed (unless `REQUIRE_LOCAL_SERVERS=1`).

// The whole file is test code; clippy.toml allows unwrap in tests, but only sees #[test] fns.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stack::embedded::mimir::write::{SeriesSpec, encode_series};
use stack::embedded::mimir::{self, MimirConfig, Semantics};
use stack::local;
use tokio::net::TcpListener;
use url::Url;

const TEST: &str = "conformance_prometheus";
const STEP: i64 = 15_000;

/// Normalized query answer: (status, resultType or errorType, series → points).
#[derive(Debug)]
struct Answer {
    status: u16,
    kind: String,
    series: BTreeMap<String, Vec<(i64, f64)>>,
}

fn parse_point(p: &serde_json::Value) -> (i64, f64) {
    let t = p[0].as_f64().expect("timestamp is a number");
    let v = p[1].as_str().expect("value is a string");
    let v = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("bad value {other:?}")),
    };
    ((t * 1000.0).round() as i64, v)
}

async fn get(
    client: &reqwest::Client,
    base: &Url,
    path: &str,
    params: &[(&str, String)],
) -> Answer {
    let mut url = base.join(path).unwrap();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    let r = client.get(url.clone()).send().await.unwrap();
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    if v["status"] != "success" {
        return Answer {
            status,
            kind: v["errorType"].as_str().unwrap_or("?").to_string(),
            series: BTreeMap::new(),
        };
    }
    let data = &v["data"];
    let kind = data["resultType"].as_str().unwrap_or("?").to_string();
    let mut series = BTreeMap::new();
    match kind.as_str() {
        "scalar" | "string" => {
            let p = &data["result"];
            let t = p[0].as_f64().unwrap();
            let val = if kind == "string" {
                0.0
            } else {
                parse_point(p).1
            };
            series.insert(
                p[1].as_str()
                    .filter(|_| kind == "string")
                    .unwrap_or("")
                    .to_string(),
                vec![((t * 1000.0).round() as i64, val)],
            );
        }
        _ => {
            for s in data["result"].as_array().unwrap() {
                let metric = s["metric"].to_string();
                let points = match s.get("values") {
                    Some(vals) => vals.as_array().unwrap().iter().map(parse_point).collect(),
                    None => vec![parse_point(&s["value"])],
                };
                series.insert(metric, points);
            }
        }
    }
    Answer {
        status,
        kind,
        series,
    }
}

fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

fn compare(what: &str, emb: &Answer, prom: &Answer) -> Result<(), String> {
    if emb.status != prom.status || emb.kind != prom.kind {
        return Err(format!(
            "{what}: embedded {} {} vs Prometheus {} {}",
            emb.status, emb.kind, prom.status, prom.kind
        ));
    }
    let ek: Vec<&String> = emb.series.keys().collect();
    let pk: Vec<&String> = prom.series.keys().collect();
    if ek != pk {
        return Err(format!(
            "{what}: label sets differ:\n  embedded   {ek:?}\n  Prometheus {pk:?}"
        ));
    }
    for (k, ep) in &emb.series {
        let pp = &prom.series[k];
        let same = ep.len() == pp.len()
            && ep
                .iter()
                .zip(pp)
                .all(|(a, b)| a.0 == b.0 && same_value(a.1, b.1));
        if !same {
            return Err(format!(
                "{what}: {k} differs:\n  embedded   {ep:?}\n  Prometheus {pp:?}"
            ));
        }
    }
    Ok(())
}

struct Targets {
    client: reqwest::Client,
    embedded: Url,
    prometheus: Url,
}

impl Targets {
    async fn write(&self, base: &Url, body: &[u8]) -> (u16, String) {
        let r = self
            .client
            .post(base.join("api/v1/write").unwrap())
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    async fn write_both(&self, body: &[u8]) -> ((u16, String), (u16, String)) {
        (
            self.write(&self.embedded, body).await,
            self.write(&self.prometheus, body).await,
        )
    }

    async fn both(&self, path: &str, params: &[(&str, String)]) -> (Answer, Answer) {
        (
            get(&self.client, &self.embedded, path, params).await,
            get(&self.client, &self.prometheus, path, params).await,
        )
    }
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The data both servers get, relative to `t0` (ms, on a 15 s boundary), `n` steps of 15 s.
fn payload(t0: i64, n: i64) -> Vec<SeriesSpec<'static>> {
    let ts = |i: i64| t0 + i * STEP;
    let mut out = Vec::new();
    // Gauges.
    out.push((
        vec![
            ("__name__", "conf_gauge"),
            ("instance", "i1"),
            ("job", "conf"),
        ],
        (0..n)
            .map(|i| (ts(i), 10.0 + (i % 7) as f64 * 1.5))
            .collect(),
    ));
    out.push((
        vec![
            ("__name__", "conf_gauge"),
            ("instance", "i2"),
            ("job", "conf"),
        ],
        (0..n).map(|i| (ts(i), 100.0 - i as f64 * 0.25)).collect(),
    ));
    // Counters, one with a reset halfway.
    out.push((
        vec![
            ("__name__", "conf_requests_total"),
            ("code", "200"),
            ("job", "conf"),
        ],
        (0..n)
            .map(|i| {
                let v = if i < n / 2 {
                    5.0 * i as f64 + 2.0
                } else {
                    3.0 * (i - n / 2) as f64
                };
                (ts(i), v)
            })
            .collect(),
    ));
    out.push((
        vec![
            ("__name__", "conf_requests_total"),
            ("code", "500"),
            ("job", "conf"),
        ],
        (0..n).map(|i| (ts(i), 3.0 + (i / 3) as f64)).collect(),
    ));
    // A classic histogram: cumulative buckets growing at different speeds.
    for (le, share) in [("0.1", 1.0), ("0.5", 3.0), ("1", 4.5), ("+Inf", 5.0)] {
        out.push((
            vec![
                ("__name__", "conf_latency_seconds_bucket"),
                ("job", "conf"),
                ("le", le),
            ],
            (0..n)
                .map(|i| (ts(i), (share * i as f64).floor()))
                .collect(),
        ));
    }
    out.push((
        vec![("__name__", "conf_latency_seconds_count"), ("job", "conf")],
        (0..n).map(|i| (ts(i), 5.0 * i as f64)).collect(),
    ));
    // A series that ends with a staleness marker a third of the way in.
    let mut stale: Vec<(i64, f64)> = (0..n / 3).map(|i| (ts(i), 1.0 + i as f64)).collect();
    stale.push((ts(n / 3), wire::remote_write::stale_nan()));
    out.push((vec![("__name__", "conf_stale"), ("job", "conf")], stale));
    // Irregular timestamps (jitter of a few hundred ms) and a counter.
    out.push((
        vec![("__name__", "conf_irregular_total"), ("job", "conf")],
        (0..n)
            .map(|i| (ts(i) + (i * 137) % 900, (i * i) as f64 / 3.0))
            .collect(),
    ));
    out
}

const INSTANT_QUERIES: &[&str] = &[
    "conf_gauge",
    r#"conf_gauge{instance="i1"}"#,
    r#"conf_gauge{instance=~"i.*", job!="x"}"#,
    "conf_gauge offset 1m",
    "conf_gauge[1m]",
    "conf_stale",
    "count_over_time(conf_stale[10m])",
    "rate(conf_requests_total[1m])",
    "rate(conf_requests_total[5m])",
    "increase(conf_requests_total[10m])",
    "irate(conf_requests_total[5m])",
    "delta(conf_gauge[5m])",
    "idelta(conf_gauge[2m])",
    "rate(conf_irregular_total[1m])",
    "increase(conf_irregular_total[3m])",
    "rate(conf_requests_total[5m] offset 2m)",
    "resets(conf_requests_total[20m])",
    "changes(conf_gauge[5m])",
    "sum(rate(conf_requests_total[5m]))",
    "sum by (code) (rate(conf_requests_total[5m]))",
    "avg_over_time(conf_gauge[5m])",
    "min_over_time(conf_gauge[5m])",
    "max_over_time(conf_gauge[5m])",
    "sum_over_time(conf_gauge[5m])",
    "count_over_time(conf_gauge[5m])",
    "last_over_time(conf_gauge[5m])",
    "quantile_over_time(0.9, conf_gauge[5m])",
    "stddev_over_time(conf_gauge[5m])",
    "stdvar_over_time(conf_gauge[5m])",
    "histogram_quantile(0.9, rate(conf_latency_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(conf_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.99, conf_latency_seconds_bucket)",
    "topk(1, conf_gauge)",
    "bottomk(1, conf_gauge)",
    "max by (job) (conf_gauge)",
    "min without (instance) (conf_gauge)",
    "count without (instance) (conf_gauge)",
    "avg(conf_gauge)",
    "stddev(conf_gauge)",
    "quantile(0.3, conf_gauge)",
    "group by (job) (conf_gauge)",
    "conf_gauge * 2",
    "2 ^ conf_gauge{instance=\"i1\"}",
    "conf_gauge % 3",
    "conf_gauge > 50",
    "50 < conf_gauge",
    "conf_gauge > bool 50",
    "conf_gauge == bool 100",
    r#"conf_gauge{instance="i1"} - ignoring(instance) conf_gauge{instance="i2"}"#,
    r#"conf_gauge{instance="i1"} / on(job) conf_gauge{instance="i2"}"#,
    "conf_requests_total / ignoring(code) conf_gauge",
    "sum(conf_requests_total) / count(conf_requests_total)",
    "conf_gauge and conf_requests_total",
    "conf_gauge or vector(0)",
    r#"conf_requests_total unless conf_requests_total{code="500"}"#,
    "-conf_gauge",
    "abs(-conf_gauge)",
    "clamp_max(conf_gauge, 20)",
    "clamp_min(conf_gauge, 20)",
    "clamp(conf_gauge, 20, 50)",
    "round(conf_gauge, 0.5)",
    "ceil(conf_gauge / 7)",
    "floor(conf_gauge / 7)",
    "sqrt(conf_gauge)",
    "vector(1)",
    "scalar(sum(conf_gauge))",
    "time()",
    "1 + 2 * 3",
    "(1 + 2) * 3",
    "conf_nothing",
    "sum(conf_nothing)",
    "rate(conf_gauge[5m]) * on(instance) conf_gauge",
];

const RANGE_QUERIES: &[&str] = &[
    "conf_gauge",
    "conf_stale",
    "rate(conf_requests_total[1m])",
    "increase(conf_requests_total[5m])",
    "rate(conf_irregular_total[2m])",
    "sum by (code) (rate(conf_requests_total[5m]))",
    "histogram_quantile(0.9, rate(conf_latency_seconds_bucket[5m]))",
    "avg_over_time(conf_gauge[2m])",
    "topk(1, conf_gauge)",
    "conf_gauge > 50",
    "conf_gauge offset 3m",
    "time()",
    "vector(1)",
    "scalar(conf_gauge{instance=\"i1\"})",
];

#[tokio::test]
async fn embedded_mimir_matches_local_prometheus() {
    tokio::time::timeout(Duration::from_secs(240), run())
        .await
        .expect("conformance test bounded in time");
}

async fn run() {
    let Some(prom) = local::prometheus_or_skip(TEST).await else {
        return;
    };
    let version = local::prometheus_version().expect("prometheus --version");
    let semantics = if version.0 >= 3 {
        Semantics::Prometheus3
    } else {
        Semantics::Prometheus2
    };
    let config = MimirConfig {
        semantics,
        ..MimirConfig::default()
    };
    let m = mimir::Mimir::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let server = stack::embedded::http::spawn_http(
        listener,
        mimir::router(Arc::clone(&m)),
        &stack::embedded::door::Door::default(),
        rx,
    );
    let t = Targets {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        embedded: Url::parse(&format!("http://{addr}/")).unwrap(),
        prometheus: prom.url(),
    };

    // 25 minutes ago on a 15 s boundary, 80 samples of 15 s: up to 5 minutes ago.
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = (now - 25 * 60_000) / STEP * STEP;
    let n = 80;
    let last = t0 + (n - 1) * STEP;
    let body = encode_series(&payload(t0, n));
    let (e, p) = t.write_both(&body).await;
    assert_eq!(p.0, 204, "Prometheus refused the payload: {}", p.1);
    assert_eq!(e.0, 204, "embedded refused the payload: {}", e.1);

    let mut failures = Vec::new();
    let times = [
        t0 + 5 * 60_000,
        t0 + 10 * 60_000 + 7_000,
        t0 + 12 * 60_000 + 30_000,
        t0 + (n / 3) * STEP,
        t0 + (n / 3) * STEP + 1,
        last,
        last + 60_000,
        last + 5 * 60_000 - 1,
        last + 5 * 60_000,
        last + 6 * 60_000,
    ];
    let mut checked = 0;
    let mut non_empty = 0;
    for q in INSTANT_QUERIES {
        for &at in &times {
            let params = [("query", q.to_string()), ("time", secs(at))];
            let (e, p) = t.both("api/v1/query", &params).await;
            checked += 1;
            non_empty += usize::from(!p.series.is_empty());
            if let Err(msg) = compare(&format!("{q} @ {}", secs(at)), &e, &p) {
                failures.push(msg);
            }
        }
    }
    for q in RANGE_QUERIES {
        for (start, end, step) in [
            (t0 - 2 * 60_000, last + 7 * 60_000, "15"),
            (t0 + 1_234, last, "60s"),
            (t0, last + 3 * 60_000, "37"),
        ] {
            let params = [
                ("query", q.to_string()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", step.to_string()),
            ];
            let (e, p) = t.both("api/v1/query_range", &params).await;
            checked += 1;
            if let Err(msg) = compare(&format!("range {q} step {step}"), &e, &p) {
                failures.push(msg);
            }
        }
    }
    // Series and label APIs.
    for (path, params) in [
        ("api/v1/series", vec![("match[]", "conf_gauge".to_string())]),
        ("api/v1/labels", vec![]),
        ("api/v1/label/job/values", vec![]),
        ("api/v1/label/__name__/values", vec![]),
    ] {
        let (ej, pj) = (
            raw(&t.client, &t.embedded, path, &params).await,
            raw(&t.client, &t.prometheus, path, &params).await,
        );
        checked += 1;
        if ej != pj {
            failures.push(format!("{path}: embedded {ej} vs Prometheus {pj}"));
        }
    }
    // Query errors: same status and errorType.
    let bad_queries: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("api/v1/query", vec![("query", "sum(".into())]),
        ("api/v1/query", vec![("query", "".into())]),
        (
            "api/v1/query",
            vec![("query", "up".into()), ("time", "yesterday".into())],
        ),
        (
            "api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "10".into()),
                ("end", "5".into()),
                ("step", "1".into()),
            ],
        ),
        (
            "api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "0".into()),
                ("end", "100000".into()),
                ("step", "1".into()),
            ],
        ),
        (
            "api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "0".into()),
                ("end", "10".into()),
                ("step", "0".into()),
            ],
        ),
        (
            "api/v1/query_range",
            vec![
                ("query", "conf_gauge[5m]".into()),
                ("start", "0".into()),
                ("end", "10".into()),
                ("step", "1".into()),
            ],
        ),
        ("api/v1/series", vec![]),
        (
            "api/v1/query",
            vec![
                ("query", "conf_gauge + ignoring(instance) conf_gauge".into()),
                ("time", secs(last)),
            ],
        ),
    ];
    for (path, params) in &bad_queries {
        let (e, p) = t.both(path, params).await;
        checked += 1;
        if let Err(msg) = compare(&format!("error case {path} {params:?}"), &e, &p) {
            failures.push(msg);
        }
    }
    // Guard against a vacuous pass: most instant queries must have answers.
    assert!(
        non_empty * 4 > INSTANT_QUERIES.len() * times.len() * 3,
        "only {non_empty} instant answers had data"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    bad_writes(&t, last).await;
    let _ = stop.send(true);
    let _ = server.await;
    eprintln!("{TEST}: {checked} comparisons against Prometheus {version:?} matched");
}

async fn raw(
    client: &reqwest::Client,
    base: &Url,
    path: &str,
    params: &[(&str, String)],
) -> serde_json::Value {
    let mut url = base.join(path).unwrap();
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Bad remote-write requests: the embedded `/api/v1/write` follows Prometheus 3's receiver and
/// is compared with the local Prometheus (2.42 on bookworm; where 2.x and 3.x differ, the
/// difference is asserted and explained); the embedded `/api/v1/push` keeps Mimir's rules.
async fn bad_writes(t: &Targets, last: i64) {
    let at = last + 1000;
    let push = |body: Vec<u8>| async move {
        let r = t
            .client
            .post(t.embedded.join("api/v1/push").unwrap())
            .header("Content-Encoding", "snappy")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    // Unsorted labels: Prometheus sorts them and stores the series; Mimir refuses
    // (err-mimir-labels-not-sorted).
    let body = encode_series(&[(
        vec![("__name__", "conf_bad"), ("z", "1"), ("a", "2")],
        vec![(at, 1.0)],
    )]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!((e.0, p.0), (204, 204), "{} / {}", e.1, p.1);
    let m = push(body).await;
    assert_eq!(m.0, 400, "{}", m.1);
    assert!(m.1.contains("err-mimir-labels-not-sorted"), "{}", m.1);

    // Duplicate label names: Prometheus 3 skips the series (204); 2.42's TSDB refused it as an
    // invalid sample, which its receiver answered with 500 (`label name "a" is not unique:
    // invalid sample`). Mimir: 400 (err-mimir-duplicate-label-names).
    let body = encode_series(&[(
        vec![("__name__", "conf_bad"), ("a", "1"), ("a", "2")],
        vec![(at, 1.0)],
    )]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!(e.0, 204, "{}", e.1);
    assert!(
        p.0 == 204 || p.0 >= 500,
        "Prometheus skips (3.x) or refuses (2.x) duplicate label names: {} {}",
        p.0,
        p.1
    );
    let dup_status = format!("{} {}", p.0, p.1.trim());
    let m = push(body).await;
    assert_eq!(m.0, 400, "{}", m.1);
    assert!(m.1.contains("err-mimir-duplicate-label-names"), "{}", m.1);

    // Missing metric name: 204 from both (2.42 stores the series, 3.x skips it); Mimir 400
    // (err-mimir-missing-metric-name).
    let body = encode_series(&[(vec![("job", "conf_bad")], vec![(at, 1.0)])]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!((e.0, p.0), (204, 204), "{} / {}", e.1, p.1);
    let m = push(body).await;
    assert_eq!(m.0, 400, "{}", m.1);
    assert!(m.1.contains("err-mimir-missing-metric-name"), "{}", m.1);

    // An out-of-order sample (older than the series' newest, in a later request): 400 from all
    // three, Prometheus with the TSDB's words.
    let body = encode_series(&[(
        vec![
            ("__name__", "conf_gauge"),
            ("instance", "i1"),
            ("job", "conf"),
        ],
        vec![(last - 60_000, 1.0)],
    )]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!((e.0, p.0), (400, 400), "{} / {}", e.1, p.1);
    assert_eq!(e.1.trim(), p.1.trim());
    let m = push(body).await;
    assert_eq!(m.0, 400, "{}", m.1);
    assert!(m.1.contains("err-mimir-sample-out-of-order"), "{}", m.1);

    // Same timestamp and value again: all accept silently.
    let body = encode_series(&[(
        vec![
            ("__name__", "conf_gauge"),
            ("instance", "i2"),
            ("job", "conf"),
        ],
        vec![(last, 100.0 - 79.0 * 0.25)],
    )]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!((e.0, p.0), (204, 204), "{} / {}", e.1, p.1);
    assert_eq!(push(body).await.0, 200);

    // Same timestamp, other value: 400 from all three.
    let body = encode_series(&[(
        vec![
            ("__name__", "conf_gauge"),
            ("instance", "i2"),
            ("job", "conf"),
        ],
        vec![(last, 1.0)],
    )]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!((e.0, p.0), (400, 400), "{} / {}", e.1, p.1);
    assert!(e.1.starts_with("duplicate sample for timestamp"), "{}", e.1);
    let m = push(body).await;
    assert_eq!(m.0, 400, "{}", m.1);
    assert!(
        m.1.contains("err-mimir-sample-duplicate-timestamp"),
        "{}",
        m.1
    );

    // A partly bad request: a new sample for a fresh series plus an out-of-order one.
    // Prometheus' receiver rolls the whole request back (its appender is committed all or
    // nothing), so it stores nothing; Mimir ingests the valid series and answers 400 with the
    // first error.
    let body = encode_series(&[
        (
            vec![("__name__", "conf_partial"), ("job", "conf")],
            vec![(at, 7.0)],
        ),
        (
            vec![
                ("__name__", "conf_gauge"),
                ("instance", "i1"),
                ("job", "conf"),
            ],
            vec![(last - 120_000, 1.0)],
        ),
    ]);
    let (e, p) = t.write_both(&body).await;
    assert_eq!((e.0, p.0), (400, 400), "{} / {}", e.1, p.1);
    let params = [("query", "conf_partial".to_string()), ("time", secs(at))];
    let (e, p) = t.both("api/v1/query", &params).await;
    assert!(
        e.series.is_empty() && p.series.is_empty(),
        "both roll the whole request back: {e:?} / {p:?}"
    );
    assert_eq!(push(body).await.0, 400);
    let (e, _) = t.both("api/v1/query", &params).await;
    assert_eq!(
        e.series.len(),
        1,
        "Mimir keeps the valid part of a request: {e:?}"
    );
    eprintln!("duplicate labels: Prometheus answered {dup_status}");

    // Garbage: both 400.
    let (e, p) = t.write_both(b"this is not snappy").await;
    assert_eq!((e.0, p.0), (400, 400), "{} / {}", e.1, p.1);
    let (e, p) = t
        .write_both(&wire::compression::snappy_compress(b"\x0a\xff\xff\xff"))
        .await;
    assert_eq!((e.0, p.0), (400, 400), "{} / {}", e.1, p.1);
}
