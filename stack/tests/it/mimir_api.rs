//! The embedded Mimir over real sockets: remote write (both endpoints), reading back through the
//! query API under `/prometheus` and `/`, tenants, every validation error with Mimir's ids,
//! malformed bodies, 413, unknown paths, `/metrics`, eviction, and the server still serving after
//! all of it.

// The whole file is test code; clippy.toml allows unwrap in tests, but only sees #[test] fns.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use stack::embedded::mimir::write::{SeriesSpec, encode_series};
use stack::{EmbeddedConfig, EmbeddedStack};

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn start(cfg: EmbeddedConfig) -> (EmbeddedStack, Api) {
        let stack = EmbeddedStack::start(cfg).await.unwrap();
        let api = Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: format!("http://{}", stack.addrs().mimir),
        };
        (stack, api)
    }

    async fn post_raw(&self, path: &str, tenant: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let mut r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .body(body);
        if let Some(t) = tenant {
            r = r.header("X-Scope-OrgID", t);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn push(&self, tenant: Option<&str>, series: &[SeriesSpec<'_>]) -> (u16, String) {
        self.post_raw("/api/v1/push", tenant, encode_series(series))
            .await
    }

    async fn get(&self, path_and_query: &str, tenant: Option<&str>) -> (u16, serde_json::Value) {
        let mut r = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(t) = tenant {
            r = r.header("X-Scope-OrgID", t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

fn series<'a>(labels: &[(&'a str, &'a str)], samples: &[(i64, f64)]) -> SeriesSpec<'a> {
    (labels.to_vec(), samples.to_vec())
}

const T: i64 = 1_700_000_000_000;

#[tokio::test]
async fn write_then_read_back() {
    let (_stack, api) = Api::start(EmbeddedConfig::default()).await;
    let (s, body) = api
        .push(
            None,
            &[series(
                &[("__name__", "up"), ("job", "a")],
                &[
                    (T, 1.0),
                    (T + 15_000, 1.5),
                    (T + 30_000, wire::remote_write::stale_nan()),
                ],
            )],
        )
        .await;
    assert_eq!((s, body.as_str()), (200, ""));
    let (s, body) = api
        .post_raw(
            "/api/v1/write",
            None,
            encode_series(&[series(&[("__name__", "up"), ("job", "b")], &[(T, 2.0)])]),
        )
        .await;
    assert_eq!((s, body.as_str()), (204, ""));

    let (s, v) = api
        .get(
            "/prometheus/api/v1/query?query=up&time=1700000015.000",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{v}");
    let a = result.iter().find(|r| r["metric"]["job"] == "a").unwrap();
    assert_eq!(a["value"], serde_json::json!([1700000015, "1.5"]));
    assert_eq!(a["metric"]["__name__"], "up");

    // The stale marker ends job="a" for later queries.
    let (_, v) = api
        .get("/api/v1/query?query=up&time=1700000030.5", None)
        .await;
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    assert_eq!(result[0]["metric"]["job"], "b");

    // Form-encoded POST.
    let r = api
        .client
        .post(format!("{}/prometheus/api/v1/query", api.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("query=sum(up)&time=1700000015")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "3.5", "{v}");

    // Range query: matrix values.
    let (s, v) = api
        .get(
            "/prometheus/api/v1/query_range?query=up%7Bjob%3D%22a%22%7D&start=1700000000&end=1700000045&step=15s",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(
        v["data"]["result"][0]["values"],
        serde_json::json!([[1700000000, "1"], [1700000015, "1.5"]]),
        "{v}"
    );

    // Scalars, strings and specials.
    let (_, v) = api.get("/api/v1/query?query=1%2F0&time=5", None).await;
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType":"scalar","result":[5,"+Inf"]})
    );
    let (_, v) = api
        .get("/api/v1/query?query=%22hi%22&time=5.25", None)
        .await;
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType":"string","result":[5.25,"hi"]})
    );

    // Series, labels, label values.
    let (s, v) = api
        .get("/api/v1/series?match[]=up%7Bjob%3D%22b%22%7D", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"], serde_json::json!([{"__name__":"up","job":"b"}]));
    let (_, v) = api.get("/prometheus/api/v1/labels", None).await;
    assert_eq!(v["data"], serde_json::json!(["__name__", "job"]));
    let (_, v) = api.get("/prometheus/api/v1/label/job/values", None).await;
    assert_eq!(v["data"], serde_json::json!(["a", "b"]));
    let (_, v) = api.get("/api/v1/label/nope/values", None).await;
    assert_eq!(v["data"], serde_json::json!([]));
}

#[tokio::test]
async fn tenants_are_separate() {
    let (_stack, api) = Api::start(EmbeddedConfig::default()).await;
    assert_eq!(
        api.push(Some("team-1"), &[series(&[("__name__", "m")], &[(T, 1.0)])])
            .await
            .0,
        200
    );
    let (_, v) = api
        .get("/api/v1/query?query=m&time=1700000000", Some("team-1"))
        .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    let (_, v) = api.get("/api/v1/query?query=m&time=1700000000", None).await;
    assert_eq!(v["data"]["result"], serde_json::json!([]));
}

#[tokio::test]
async fn validation_errors_like_mimir() {
    let (_stack, api) = Api::start(EmbeddedConfig::default()).await;
    let cases: Vec<(SeriesSpec<'_>, &str)> = vec![
        (
            series(&[("__name__", "m"), ("b", "1"), ("a", "2")], &[(T, 1.0)]),
            "received a series where the label names are not sorted, label: 'a' series: 'm{a=\"2\", b=\"1\"}' (err-mimir-labels-not-sorted)",
        ),
        (
            series(&[("__name__", "m"), ("a", "1"), ("a", "2")], &[(T, 1.0)]),
            "(err-mimir-duplicate-label-names)",
        ),
        (
            series(&[("job", "x")], &[(T, 1.0)]),
            "received series has no metric name (err-mimir-missing-metric-name)",
        ),
        (
            series(&[("__name__", "1m")], &[(T, 1.0)]),
            "received a series with invalid metric name: '1m' (err-mimir-metric-name-invalid)",
        ),
        (
            series(&[("__name__", "m"), ("a-b", "1")], &[(T, 1.0)]),
            "received a series with an invalid label: 'a-b'",
        ),
    ];
    for (s, want) in cases {
        let (status, body) = api.push(None, &[s]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(want), "{body:?} should contain {want:?}");
    }

    // Samples: out of order and duplicate timestamps, in later requests.
    let ok = series(&[("__name__", "m"), ("job", "x")], &[(T, 1.0)]);
    assert_eq!(api.push(None, std::slice::from_ref(&ok)).await.0, 200);
    assert_eq!(
        api.push(None, &[ok]).await.0,
        200,
        "same timestamp and value is fine"
    );
    let (status, body) = api
        .push(
            None,
            &[series(&[("__name__", "m"), ("job", "x")], &[(T - 1, 1.0)])],
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("(err-mimir-sample-out-of-order). The affected sample has timestamp 2023-11-14T22:13:19.999Z and is from series {__name__=\"m\", job=\"x\"}"), "{body}");
    let (status, body) = api
        .push(
            None,
            &[series(&[("__name__", "m"), ("job", "x")], &[(T, 2.0)])],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("err-mimir-sample-duplicate-timestamp"),
        "{body}"
    );

    // A partly bad request: the valid series is ingested, the answer is the error.
    let (status, _) = api
        .push(
            None,
            &[
                series(&[("job", "x")], &[(T, 1.0)]),
                series(&[("__name__", "partial")], &[(T, 3.0)]),
            ],
        )
        .await;
    assert_eq!(status, 400);
    let (_, v) = api
        .get("/api/v1/query?query=partial&time=1700000000", None)
        .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "3");

    // Empty label values are dropped, as Prometheus treats them as absent.
    let (status, _) = api
        .push(
            None,
            &[series(&[("__name__", "e"), ("a", "")], &[(T, 1.0)])],
        )
        .await;
    assert_eq!(status, 200);
    let (_, v) = api.get("/api/v1/series?match[]=e", None).await;
    assert_eq!(v["data"], serde_json::json!([{"__name__":"e"}]));

    // Discards are counted per reason and user.
    let metrics = testkit::get_text(format!("{}/metrics", api.base)).await;
    for want in [
        r#"cortex_discarded_samples_total{reason="labels_not_sorted",user="anonymous"} 1"#,
        r#"cortex_discarded_samples_total{reason="missing_metric_name",user="anonymous"} 2"#,
        r#"cortex_discarded_samples_total{reason="sample-out-of-order",user="anonymous"} 1"#,
        r#"cortex_discarded_samples_total{reason="new-value-for-timestamp",user="anonymous"} 1"#,
        "cortex_ingester_memory_series 3",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn malformed_bodies_oversize_and_unknown_paths() {
    let cfg = EmbeddedConfig {
        max_body_bytes: 4096,
        ..EmbeddedConfig::default()
    };
    let (_stack, api) = Api::start(cfg).await;
    let (s, body) = api
        .post_raw("/api/v1/push", None, b"not snappy at all".to_vec())
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("snappy"), "{body}");
    let (s, body) = api
        .post_raw(
            "/api/v1/push",
            None,
            wire::compression::snappy_compress(b"\x0a\xff\xff\xff"),
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("protobuf"), "{body}");
    let (s, _) = api.post_raw("/api/v1/push", None, vec![0u8; 10_000]).await;
    assert_eq!(s, 413);
    let (s, _) = api.get("/no/such/path", None).await;
    assert_eq!(s, 404);

    // Query errors in Prometheus' shape.
    let (s, v) = api.get("/api/v1/query?query=sum(", None).await;
    assert_eq!(s, 400);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    let (s, v) = api
        .get("/api/v1/query?query=rate(up%5B5m%3A1m%5D)", None)
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("not supported by the embedded Mimir: "),
        "{v}"
    );
    let (s, v) = api
        .get(
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap().contains("11,000 points"),
        "{v}"
    );
    let (s, v) = api.get("/api/v1/series", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("no match[] parameter provided"))
    );
    let (s, v) = api.get("/api/v1/label/a-b/values", None).await;
    assert_eq!(s, 400, "{v}");

    // Still serving.
    let r = api
        .client
        .get(format!("{}/ready", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        api.push(None, &[series(&[("__name__", "after")], &[(T, 1.0)])])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn eviction_keeps_memory_bounded() {
    let cfg = EmbeddedConfig {
        retention_bytes: 64 * 1024,
        ..EmbeddedConfig::default()
    };
    let (stack, api) = Api::start(cfg).await;
    for batch in 0..20 {
        let samples: Vec<(i64, f64)> = (0..500)
            .map(|i| (T + (batch * 500 + i) * 1000, 1.0))
            .collect();
        let (s, body) = api
            .push(None, &[series(&[("__name__", "big")], &samples)])
            .await;
        assert_eq!(s, 200, "{body}");
    }
    assert!(stack.mimir.store.read().bytes() <= 64 * 1024);
    assert!(stack.mimir.metrics.evicted_samples.get() > 0);
    // The newest samples are still there, the oldest gone.
    let (_, v) = api
        .get(
            "/api/v1/query?query=count_over_time(big%5B10000s%5D)&time=1700010000",
            None,
        )
        .await;
    let n: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0.0 && n < 10_000.0, "{v}");
}

/// `/api/v1/write` is Prometheus' receiver and validates as Prometheus 3 does: UTF-8 label
/// names, invalid series skipped with 204, and a refused sample failing the whole request (400,
/// the TSDB's words, nothing stored); `/api/v1/push` keeps Mimir's rules.
#[tokio::test]
async fn prometheus_write_path_validates_as_prometheus_3() {
    let (_stack, api) = Api::start(EmbeddedConfig::default()).await;
    let write =
        |s: Vec<SeriesSpec<'static>>| api.post_raw("/api/v1/write", None, encode_series(&s));

    let (status, body) = write(vec![series(
        &[("__name__", "utf8_names"), ("bad-name", "1")],
        &[(T, 1.0)],
    )])
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let (_, v) = api
        .get(
            "/api/v1/series?match[]=utf8_names&start=1699999000&end=1700001000",
            None,
        )
        .await;
    assert_eq!(
        v["data"],
        serde_json::json!([{"__name__": "utf8_names", "bad-name": "1"}])
    );
    // Mimir refuses the same series.
    let (status, _) = api
        .push(
            None,
            &[series(
                &[("__name__", "utf8_names"), ("bad-name", "1")],
                &[(T + 1, 1.0)],
            )],
        )
        .await;
    assert_eq!(status, 400);

    // No metric name, duplicate names: skipped, the rest stored, still 204.
    let (status, body) = write(vec![
        series(&[("job", "x")], &[(T, 1.0)]),
        series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(T, 1.0)]),
        series(&[("__name__", "kept")], &[(T, 1.0)]),
    ])
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let (_, v) = api
        .get(
            "/api/v1/query?query=count({__name__=~\"dup|kept\"})&time=1700000000",
            None,
        )
        .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "1");

    // A refused sample rolls the whole request back.
    for (samples, want) in [
        (vec![(T - 1, 1.0)], "out of order sample\n"),
        (
            vec![(T, 2.0)],
            "duplicate sample for timestamp 1700000000000; overrides not allowed: existing 1, new value 2\n",
        ),
        (
            vec![(chrono::Utc::now().timestamp_millis() + 3_600_000, 1.0)],
            "out of bounds: timestamp is too far in the future\n",
        ),
    ] {
        let (status, body) = write(vec![
            series(&[("__name__", "rolled_back")], &[(T, 1.0)]),
            series(&[("__name__", "kept")], &samples),
        ])
        .await;
        assert_eq!((status, body.as_str()), (400, want));
    }
    let (_, v) = api
        .get(
            "/api/v1/series?match[]=rolled_back&start=1699999000&end=1700001000",
            None,
        )
        .await;
    assert_eq!(v["data"], serde_json::json!([]));
    let m = testkit::get_text(format!("{}/metrics", api.base)).await;
    assert!(
        m.contains(r#"cortex_discarded_samples_total{reason="invalid_labels",user="anonymous"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(
            r#"cortex_discarded_samples_total{reason="sample-out-of-order",user="anonymous"} 2"#
        ),
        "{m}"
    );
}

/// `stack serve --out-of-order-window 10m`: as Mimir and Prometheus with
/// `out_of_order_time_window: 10m`, a sample 5 minutes older than the newest is stored in place,
/// one 11 minutes older is too old.
#[tokio::test]
async fn out_of_order_window_accepts_within_and_refuses_beyond() {
    let (_stack, api) = Api::start(EmbeddedConfig {
        out_of_order_window: Duration::from_secs(600),
        ..EmbeddedConfig::default()
    })
    .await;
    let m = |samples: &[(i64, f64)]| vec![series(&[("__name__", "ooo"), ("job", "x")], samples)];
    let p = |samples: &[(i64, f64)]| vec![series(&[("__name__", "ooo"), ("job", "p")], samples)];
    assert_eq!(api.push(None, &m(&[(T, 3.0)])).await.0, 200);
    assert_eq!(api.push(None, &m(&[(T - 300_000, 1.0)])).await.0, 200);
    let (status, body) = api.push(None, &m(&[(T - 660_000, 1.0)])).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("this sample is beyond the out-of-order time window of 10m (err-mimir-sample-timestamp-too-old). The affected sample has timestamp 2023-11-14T22:02:20Z"),
        "{body}"
    );
    let write =
        |s: Vec<SeriesSpec<'static>>| api.post_raw("/api/v1/write", None, encode_series(&s));
    assert_eq!(write(p(&[(T, 3.0)])).await.0, 204);
    assert_eq!(write(p(&[(T - 300_000, 1.0)])).await.0, 204);
    assert_eq!(
        write(p(&[(T - 660_000, 1.0)])).await,
        (400, "too old sample\n".to_string())
    );
    // The out-of-order samples are in place: the 5-minute-old one answers a query at its time.
    let (_, v) = api
        .get("/api/v1/query?query=ooo&time=1699999760", None)
        .await;
    let got: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"][1].as_str().unwrap())
        .collect();
    assert_eq!(got, ["1", "1"]);
    let (_, v) = api
        .get("/api/v1/query?query=ooo&time=1700000000", None)
        .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "3");
}

/// `stack serve --promql-compat 2|3`: the same samples, `increase(c[1m])` as Prometheus 2 (closed
/// window `[t-1m, t]`: the sample on the window's start counts) and 3 (left-open `(t-1m, t]`:
/// extrapolated from the next sample, at most half an average interval back).
#[tokio::test]
async fn promql_compat_chooses_prometheus_2_or_3_range_windows() {
    let samples = [
        (T, 0.0),
        (T + 30_000, 1.0),
        (T + 40_000, 2.0),
        (T + 50_000, 3.0),
        (T + 60_000, 4.0),
    ];
    for (semantics, want) in [
        // 4 over the full minute.
        (stack::embedded::mimir::Semantics::Prometheus2, "4"),
        // 3 over 30 s, extended by 5 s (half the 10 s interval): 3 * 35 / 30.
        (stack::embedded::mimir::Semantics::Prometheus3, "3.5"),
    ] {
        let (_stack, api) = Api::start(EmbeddedConfig {
            promql_semantics: semantics,
            ..EmbeddedConfig::default()
        })
        .await;
        assert_eq!(
            api.push(None, &[series(&[("__name__", "c")], &samples)])
                .await
                .0,
            200
        );
        let (status, v) = api
            .get(
                "/api/v1/query?query=increase(c%5B1m%5D)&time=1700000060",
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["result"][0]["value"][1], want, "{semantics:?}");
    }
}
