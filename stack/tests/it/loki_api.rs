//! The embedded Loki over a real socket: push in every encoding and read back through the query
//! API, Loki's validation errors, malformed bodies, metric queries with hand-checked numbers,
//! tenant isolation and retention eviction.

// Test helpers outside `#[test]` functions: a failed request should fail the test loudly.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use stack::{EmbeddedConfig, EmbeddedStack};
use wire::loki::{Entry, LabelPair, PushRequest, Stream};

const S: i64 = 1_000_000_000;

/// The test's time zero, in seconds: two hours ago rounded down to 100 s, so it lies inside real
/// Loki's ingestion window (a week back) and offsets from it keep the numbers hand-checkable.
static BASE_S: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    let now = chrono::Utc::now().timestamp();
    (now - 7200) / 100 * 100
});

/// Time zero in nanoseconds.
fn t0() -> i64 {
    *BASE_S * S
}

/// Time zero plus `off` seconds, as a query parameter in float seconds.
fn secs(off: f64) -> &'static str {
    Box::leak(format!("{}", *BASE_S as f64 + off).into_boxed_str())
}

/// Time zero plus `off` seconds, as Loki prints a matrix/vector timestamp (a JSON number).
fn ts(off: f64) -> Value {
    let v = *BASE_S as f64 + off;
    if v.fract() == 0.0 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Time zero plus `off` seconds in RFC3339.
fn rfc3339(off: i64) -> &'static str {
    let t = chrono::DateTime::from_timestamp(*BASE_S + off, 0).expect("valid time");
    Box::leak(
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into_boxed_str(),
    )
}

/// The embedded Loki with Loki 3's push-time discovery off (`-validation.discover-service-name=`
/// and `-validation.discover-log-levels=false`), so what a query returns is exactly what was
/// pushed; the discovery itself is tested with the defaults in `loki_3_discovery_*`.
fn as_pushed() -> EmbeddedConfig {
    EmbeddedConfig {
        loki_discover_service_name: false,
        loki_discover_log_levels: false,
        ..EmbeddedConfig::default()
    }
}

struct Loki {
    _stack: EmbeddedStack,
    base: String,
    http: reqwest::Client,
}

impl Loki {
    async fn start(cfg: EmbeddedConfig) -> Loki {
        let stack = EmbeddedStack::start(cfg).await.unwrap();
        let base = format!("http://{}", stack.addrs().loki);
        Loki {
            _stack: stack,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Loki storing streams as pushed (see [`as_pushed`]).
    async fn default() -> Loki {
        Loki::start(as_pushed()).await
    }

    async fn push_raw(
        &self,
        tenant: Option<&str>,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/loki/api/v1/push", self.base))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn push(&self, tenant: Option<&str>, req: &PushRequest) -> (u16, String) {
        self.push_raw(
            tenant,
            "application/x-protobuf",
            None,
            wire::loki::encode_protobuf(req),
        )
        .await
    }

    async fn get(
        &self,
        tenant: Option<&str>,
        path: &str,
        params: &[(&str, &str)],
    ) -> (u16, String) {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.base), params).unwrap();
        let mut req = self.http.get(url);
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn json(&self, tenant: Option<&str>, path: &str, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(tenant, path, params).await;
        assert_eq!(status, 200, "{path} {params:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success");
        v
    }

    async fn query_range(&self, tenant: Option<&str>, params: &[(&str, &str)]) -> Value {
        self.json(tenant, "/loki/api/v1/query_range", params).await["data"].clone()
    }

    async fn metric(&self, name: &str) -> String {
        let (_, body) = self.get(None, "/metrics", &[]).await;
        body.lines()
            .filter(|l| l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn assert_ready(&self) {
        assert_eq!(self.get(None, "/ready", &[]).await, (200, "ready\n".into()));
    }
}

fn stream(labels: &str, entries: Vec<Entry>) -> PushRequest {
    PushRequest {
        streams: vec![Stream {
            labels: labels.into(),
            entries,
            hash: 0,
        }],
    }
}

fn entries(n: i64, f: impl Fn(i64) -> (i64, String)) -> Vec<Entry> {
    (1..=n)
        .map(|i| {
            let (ts, line) = f(i);
            Entry::new(ts, line)
        })
        .collect()
}

fn s(ns: i64) -> String {
    ns.to_string()
}

#[tokio::test]
async fn loki_push_in_every_encoding_and_read_back() {
    let loki = Loki::default().await;
    let pb = stream(
        r#"{job="enc", via="protobuf"}"#,
        vec![Entry::new(t0() + S, "from protobuf")],
    );
    assert_eq!(loki.push(None, &pb).await, (204, String::new()));
    let json_body = wire::loki::encode_json(&stream(
        r#"{job="enc", via="json"}"#,
        vec![Entry::new(t0() + 2 * S, "from json")],
    ))
    .unwrap();
    assert_eq!(
        loki.push_raw(None, "application/json", None, json_body)
            .await
            .0,
        204
    );
    let gz = wire::compression::gzip_compress(
        &wire::loki::encode_json(&stream(
            r#"{job="enc", via="gzip"}"#,
            vec![Entry::new(t0() + 3 * S, "from gzip")],
        ))
        .unwrap(),
    );
    assert_eq!(
        loki.push_raw(None, "application/json", Some("gzip"), gz)
            .await
            .0,
        204
    );
    // The legacy path takes pushes too.
    let resp = loki
        .http
        .post(format!("{}/api/prom/push", loki.base))
        .header("Content-Type", "application/x-protobuf")
        .body(wire::loki::encode_protobuf(&stream(
            r#"{job="enc", via="legacy"}"#,
            vec![Entry::new(t0() + 4 * S, "from legacy")],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let data = loki
        .query_range(
            None,
            &[
                ("query", r#"{job="enc"}"#),
                ("start", &s(t0())),
                ("end", &s(t0() + 10 * S)),
            ],
        )
        .await;
    assert_eq!(data["resultType"], "streams");
    let result = data["result"].as_array().unwrap();
    assert_eq!(result.len(), 4);
    // Streams sorted by label set.
    assert_eq!(
        result[0],
        json!({"stream": {"job": "enc", "via": "gzip"}, "values": [[s(t0() + 3 * S), "from gzip"]]})
    );
    assert_eq!(result[1]["stream"]["via"], "json");
    assert_eq!(result[3]["values"][0][1], "from protobuf");
    assert!(data["stats"]["summary"]["totalEntriesReturned"].is_number());

    // Forward with a limit: the two oldest; backward (default): the two newest.
    let q = |dir: &'static str| {
        [
            ("query", r#"{job="enc"} != "legacy""#),
            ("start", secs(0.0)),
            ("end", rfc3339(10)),
            ("limit", "2"),
            ("direction", dir),
        ]
    };
    let fwd = loki.query_range(None, &q("forward")).await;
    let lines: Vec<&str> = fwd["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[1].as_str().unwrap())
        })
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.contains(&"from protobuf") && lines.contains(&"from json"));
    let bwd = loki.query_range(None, &q("BACKWARD")).await;
    assert_eq!(bwd["result"].as_array().unwrap().len(), 2);
    assert_eq!(bwd["result"][0]["stream"]["via"], "gzip");

    // POST form works like GET.
    let resp = loki
        .http
        .post(format!("{}/loki/api/v1/query_range", loki.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "query=%7Bvia%3D%22json%22%7D&start={}&end={}",
            t0(),
            t0() + 10 * S
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["data"]["result"][0]["values"][0][1], "from json");

    let range = [("start", s(t0())), ("end", s(t0() + 10 * S))];
    let range: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let labels = loki.json(None, "/loki/api/v1/labels", &range).await;
    assert_eq!(labels["data"], json!(["job", "via"]));
    let values = loki
        .json(None, "/loki/api/v1/label/via/values", &range)
        .await;
    assert_eq!(
        values["data"],
        json!(["gzip", "json", "legacy", "protobuf"])
    );
    let mut series_params = range.clone();
    series_params.push(("match[]", r#"{via="json"}"#));
    series_params.push(("match[]", r#"{via=~"g.*"}"#));
    let series = loki.json(None, "/loki/api/v1/series", &series_params).await;
    assert_eq!(
        series["data"],
        json!([{"job": "enc", "via": "gzip"}, {"job": "enc", "via": "json"}])
    );
    // Outside the time range there is nothing.
    let empty = loki
        .json(
            None,
            "/loki/api/v1/labels",
            &[("start", "1600000000"), ("end", "1600000100")],
        )
        .await;
    assert_eq!(empty["data"], json!([]));
}

#[tokio::test]
async fn loki_defaults_to_the_last_hour() {
    let loki = Loki::default().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let req = stream(
        r#"{job="recent"}"#,
        vec![
            Entry::new(now - 2 * 3600 * S, "too old for the default range"),
            Entry::new(now - 60 * S, "a minute ago"),
        ],
    );
    assert_eq!(loki.push(None, &req).await.0, 204);
    let data = loki
        .query_range(None, &[("query", r#"{job="recent"}"#)])
        .await;
    assert_eq!(data["result"][0]["values"].as_array().unwrap().len(), 1);
    assert_eq!(data["result"][0]["values"][0][1], "a minute ago");
    let data = loki
        .query_range(None, &[("query", r#"{job="recent"}"#), ("since", "3h")])
        .await;
    assert_eq!(data["result"][0]["values"].as_array().unwrap().len(), 2);
    let v = loki
        .json(
            None,
            "/loki/api/v1/query",
            &[("query", r#"count_over_time({job="recent"}[5m])"#)],
        )
        .await;
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
}

/// Loki 3's defaults: `service_name` from the first of service, app, ..., job (else
/// `unknown_service`), a stream without labels stored under it, and `detected_level` metadata from
/// the labels, the metadata or the line, which (as all metadata) splits the streams a query returns.
#[tokio::test]
async fn loki_3_discovery_service_name_and_detected_level_by_default() {
    let loki = Loki::start(EmbeddedConfig::default()).await;
    let mut tagged = Entry::new(t0() + 3 * S, "fine");
    tagged.structured_metadata.push(LabelPair {
        name: "detected_level".into(),
        value: "ERR".into(),
    });
    let req = PushRequest {
        streams: vec![
            Stream {
                labels: r#"{job="pos", app="shop"}"#.into(),
                entries: vec![
                    Entry::new(t0() + S, "level=error msg=\"card declined\""),
                    Entry::new(t0() + 2 * S, r#"{"msg":"sale","level":"Info"}"#),
                    tagged,
                ],
                hash: 0,
            },
            Stream {
                labels: r#"{job="till"}"#.into(),
                entries: vec![Entry::new(t0() + S, "WARNING: paper low")],
                hash: 0,
            },
            Stream {
                labels: "{}".into(),
                entries: vec![Entry::new(t0() + S, "no labels at all")],
                hash: 0,
            },
        ],
    };
    let (status, body) = loki.push(None, &req).await;
    assert_eq!(status, 204, "{body}");

    let range = [("start", s(t0())), ("end", s(t0() + 10 * S))];
    let mut p: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let labels = loki.json(None, "/loki/api/v1/labels", &p).await;
    assert_eq!(labels["data"], json!(["app", "job", "service_name"]));
    let values = loki
        .json(None, "/loki/api/v1/label/service_name/values", &p)
        .await;
    assert_eq!(values["data"], json!(["shop", "till", "unknown_service"]));

    p.push(("query", r#"{service_name=~".+"}"#));
    let data = loki.query_range(None, &p).await;
    let mut got: Vec<(Value, Value)> = data["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| {
            st["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| (st["stream"].clone(), v[1].clone()))
        })
        .collect();
    got.sort_by(|a, b| a.1.as_str().cmp(&b.1.as_str()));
    assert_eq!(
        got,
        [
            (
                json!({"job": "till", "service_name": "till", "detected_level": "warn"}),
                json!("WARNING: paper low")
            ),
            (
                json!({"app": "shop", "job": "pos", "service_name": "shop", "detected_level": "error"}),
                json!("fine")
            ),
            (
                json!({"app": "shop", "job": "pos", "service_name": "shop", "detected_level": "error"}),
                json!("level=error msg=\"card declined\"")
            ),
            (
                json!({"service_name": "unknown_service", "detected_level": "unknown"}),
                json!("no labels at all")
            ),
            (
                json!({"app": "shop", "job": "pos", "service_name": "shop", "detected_level": "info"}),
                json!(r#"{"msg":"sale","level":"Info"}"#)
            ),
        ]
    );
    // A metric query by stream counts the streams metadata made.
    let at = s(t0() + 10 * S);
    let v = loki
        .json(
            None,
            "/loki/api/v1/query",
            &[
                (
                    "query",
                    r#"sum by (detected_level) (count_over_time({service_name=~".+"}[1m]))"#,
                ),
                ("time", at.as_str()),
            ],
        )
        .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 4, "{v}");
}

/// `stack serve --loki-discover-service-name false`: a stream without labels is refused again, as
/// by Loki with `-validation.discover-service-name=` (an empty list).
#[tokio::test]
async fn loki_3_discovery_off_refuses_a_stream_without_labels() {
    let loki = Loki::default().await;
    let (status, body) = loki
        .push(None, &stream("{}", vec![Entry::new(t0(), "x")]))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn loki_structured_metadata_splits_streams_and_is_filterable() {
    let loki = Loki::default().await;
    let mut e1 = Entry::new(t0() + S, "one");
    e1.structured_metadata.push(LabelPair {
        name: "trace_id".into(),
        value: "abc".into(),
    });
    let e2 = Entry::new(t0() + 2 * S, "two");
    assert_eq!(
        loki.push(None, &stream(r#"{job="md"}"#, vec![e1, e2]))
            .await
            .0,
        204
    );
    let range = [("start", s(t0())), ("end", s(t0() + 10 * S))];
    let mut p: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.push(("query", r#"{job="md"}"#));
    let data = loki.query_range(None, &p).await;
    // Loki's order: streams sorted by their label string.
    assert_eq!(
        data["result"],
        json!([
            {"stream": {"job": "md", "trace_id": "abc"}, "values": [[s(t0() + S), "one"]]},
            {"stream": {"job": "md"}, "values": [[s(t0() + 2 * S), "two"]]},
        ])
    );
    p.pop();
    p.push(("query", r#"{job="md"} | trace_id="abc""#));
    let data = loki.query_range(None, &p).await;
    assert_eq!(data["result"].as_array().unwrap().len(), 1);
    assert_eq!(data["result"][0]["values"][0][1], "one");
    // Metadata is not a stream label.
    let labels = loki.json(None, "/loki/api/v1/labels", &p[..2]).await;
    assert_eq!(labels["data"], json!(["job"]));
}

#[tokio::test]
async fn loki_parsers_and_label_filters() {
    let loki = Loki::default().await;
    let lines = [
        r#"{"level":"error","status":503,"req":{"path":"/a"}}"#,
        r#"{"level":"info","status":200,"req":{"path":"/b"}}"#,
        "not json",
    ];
    let req = stream(
        r#"{job="parse"}"#,
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| Entry::new(t0() + (i as i64 + 1) * S, *l))
            .collect(),
    );
    assert_eq!(loki.push(None, &req).await.0, 204);
    let q = |query: &'static str| [("query", query), ("start", secs(0.0)), ("end", secs(10.0))];
    let data = loki
        .query_range(None, &q(r#"{job="parse"} | json | status >= 500"#))
        .await;
    assert_eq!(
        data["result"][0]["stream"],
        json!({"job": "parse", "level": "error", "status": "503", "req_path": "/a"})
    );
    let data = loki.query_range(None, &q(r#"{job="parse"} | json"#)).await;
    let errored: Vec<&Value> = data["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stream"]["__error__"] == "JSONParserErr")
        .collect();
    assert_eq!(errored.len(), 1);
    assert_eq!(errored[0]["values"][0][1], "not json");
    assert!(errored[0]["stream"]["__error_details__"].is_string());
    let data = loki
        .query_range(
            None,
            &q(r#"{job="parse"} |= "level" | json | __error__="" | level=~"err.*""#),
        )
        .await;
    assert_eq!(data["result"].as_array().unwrap().len(), 1);
    // A metric query over lines that fail to parse is Loki's pipeline error...
    let (status, body) = loki
        .get(
            None,
            "/loki/api/v1/query_range",
            &q(r#"sum(count_over_time({job="parse"} | json [1m]))"#),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("pipeline error: 'JSONParserErr' for series: "),
        "{body}"
    );
    // ...unless the errors are filtered out.
    let (status, _) = loki
        .get(
            None,
            "/loki/api/v1/query_range",
            &q(r#"sum(count_over_time({job="parse"} | json | __error__="" [1m]))"#),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn loki_metric_queries_with_hand_checked_numbers() {
    let loki = Loki::default().await;
    // app=a: one 9-byte line every second from t0()+1s to t0()+10s; app=b: every other second.
    let a = stream(
        r#"{job="m", app="a"}"#,
        entries(10, |i| (t0() + i * S, format!("line-a-{i:02}"))),
    );
    let b = stream(
        r#"{job="m", app="b"}"#,
        entries(5, |i| (t0() + 2 * i * S, format!("line-b-{i:02}"))),
    );
    assert_eq!(loki.push(None, &a).await.0, 204);
    assert_eq!(loki.push(None, &b).await.0, 204);
    let range = |query: &'static str| {
        [
            ("query", query),
            ("start", secs(5.0)),
            ("end", secs(10.0)),
            ("step", "5s"),
        ]
    };
    // Windows are (t-5s, t]: at t0()+5s a has 1..5 (5 lines), b has 2,4 (2); at t0()+10s a has
    // 6..10 (5), b has 6,8,10 (3).
    let data = loki
        .query_range(None, &range(r#"count_over_time({job="m"}[5s])"#))
        .await;
    assert_eq!(data["resultType"], "matrix");
    assert_eq!(
        data["result"],
        json!([
            {"metric": {"app": "a", "job": "m"}, "values": [[ts(5.0), "5"], [ts(10.0), "5"]]},
            {"metric": {"app": "b", "job": "m"}, "values": [[ts(5.0), "2"], [ts(10.0), "3"]]},
        ])
    );
    // Start and end off the step: evaluated at multiples of the step, from the start rounded
    // down (t0()+5s) to the end rounded up (t0()+15s), as Loki's query frontend aligns them.
    let data = loki
        .query_range(
            None,
            &[
                ("query", r#"count_over_time({job="m", app="a"}[5s])"#),
                ("start", secs(7.5)),
                ("end", secs(11.0)),
                ("step", "5s"),
            ],
        )
        .await;
    assert_eq!(
        data["result"][0]["values"],
        json!([[ts(5.0), "5"], [ts(10.0), "5"]])
    );
    let data = loki
        .query_range(None, &range(r#"sum by (job) (rate({job="m"}[5s]))"#))
        .await;
    assert_eq!(
        data["result"],
        json!([{"metric": {"job": "m"}, "values": [[ts(5.0), "1.4"], [ts(10.0), "1.6"]]}])
    );
    let data = loki
        .query_range(
            None,
            &range(r#"sum(bytes_over_time({job="m", app="a"}[5s]))"#),
        )
        .await;
    assert_eq!(
        data["result"],
        json!([{"metric": {}, "values": [[ts(5.0), "45"], [ts(10.0), "45"]]}])
    );
    let data = loki
        .query_range(
            None,
            &range(r#"count(count_over_time({job="m"} |= "-0" [5s]))"#),
        )
        .await;
    // "-0" matches a-01..a-09 and b-01..b-05: at t0()+10s, a has 06..09 and b has 03..05 → 2 series.
    assert_eq!(
        data["result"][0]["values"],
        json!([[ts(5.0), "2"], [ts(10.0), "2"]])
    );
    // Instant query at t0()+10s over 10s: a 10 lines, b 5.
    let v = loki
        .json(
            None,
            "/loki/api/v1/query",
            &[
                (
                    "query",
                    r#"sum without (app) (count_over_time({job="m"}[10s]))"#,
                ),
                ("time", secs(10.0)),
            ],
        )
        .await;
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {"job": "m"}, "value": [ts(10.0), "15"]}])
    );
    // Fractional step times are written as fractional seconds.
    let data = loki
        .query_range(
            None,
            &[
                ("query", r#"count_over_time({app="a"}[1s])"#),
                ("start", secs(1.5)),
                ("end", secs(2.5)),
                ("step", "0.5"),
            ],
        )
        .await;
    assert_eq!(
        data["result"][0]["values"],
        json!([[ts(1.5), "1"], [ts(2.0), "1"], [ts(2.5), "1"]])
    );
}

#[tokio::test]
async fn loki_validation_errors_as_loki_words_them() {
    let loki = Loki::start(EmbeddedConfig {
        max_line_size: 16,
        ..as_pushed()
    })
    .await;
    let one = vec![Entry::new(t0(), "x")];
    let (status, body) = loki.push(None, &stream("{}", one.clone())).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "error at least one label pair is required per stream\n"
        )
    );
    let (status, body) = loki
        .push(None, &stream(r#"{a="b", c=""}"#, one.clone()))
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = loki.push(None, &stream(r#"{a=""}"#, one.clone())).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = loki.push(None, &stream("{a=b}", one.clone())).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Error parsing labels '{a=b}' with error: "),
        "{body}"
    );
    let (status, body) = loki
        .push(
            None,
            &stream(
                r#"{job="long"}"#,
                vec![
                    Entry::new(t0(), "short"),
                    Entry::new(t0() + 1, "this line is far too long"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "max entry size '16' bytes exceeded for stream '{job=\"long\"}' while adding an entry with length '25' bytes\n"
    );
    // The valid entry of that push was kept, as Loki's distributor keeps it.
    let data = loki
        .query_range(
            None,
            &[
                ("query", r#"{job="long"}"#),
                ("start", &s(t0() - S)),
                ("end", &s(t0() + S)),
            ],
        )
        .await;
    assert_eq!(data["result"][0]["values"], json!([[s(t0()), "short"]]));
    // Streams without entries, and empty pushes, are accepted and ignored.
    assert_eq!(loki.push(None, &stream("{}", vec![])).await.0, 204);
    assert_eq!(
        loki.push_raw(
            None,
            "application/json",
            None,
            br#"{"streams":[]}"#.to_vec()
        )
        .await
        .0,
        204
    );
    let samples = loki.metric("loki_discarded_samples_total{").await;
    assert!(
        samples
            .contains(r#"loki_discarded_samples_total{reason="missing_labels",tenant="fake"} 2"#),
        "{samples}"
    );
    assert!(
        samples
            .contains(r#"loki_discarded_samples_total{reason="invalid_labels",tenant="fake"} 1"#)
    );
    assert!(
        samples.contains(r#"loki_discarded_samples_total{reason="line_too_long",tenant="fake"} 1"#)
    );
    let bytes = loki.metric("loki_discarded_bytes_total{").await;
    assert!(
        bytes.contains(r#"loki_discarded_bytes_total{reason="line_too_long",tenant="fake"} 25"#),
        "{bytes}"
    );
}

#[tokio::test]
async fn loki_malformed_requests_get_4xx_and_the_server_keeps_serving() {
    let loki = Loki::start(EmbeddedConfig {
        max_body_bytes: 4096,
        ..as_pushed()
    })
    .await;
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        (
            "application/x-protobuf",
            None,
            b"definitely not snappy".to_vec(),
        ),
        (
            "application/x-protobuf",
            None,
            wire::compression::snappy_compress(b"\xff\xff\xff garbage"),
        ),
        ("application/json", None, b"{\"streams\": [".to_vec()),
        (
            "application/json",
            None,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["soon","x"]]}]}"#.to_vec(),
        ),
        (
            "application/json",
            Some("gzip"),
            b"not gzip at all".to_vec(),
        ),
        ("application/json", Some("br"), b"{}".to_vec()),
        ("text/plain", None, b"hello".to_vec()),
    ];
    for (ct, enc, body) in cases {
        let (status, text) = loki.push_raw(None, ct, enc, body).await;
        assert_eq!(status, 400, "{ct} {enc:?}: {text}");
        assert!(!text.trim().is_empty());
        loki.assert_ready().await;
    }
    let (status, _) = loki
        .push_raw(None, "application/json", None, vec![b' '; 10_000])
        .await;
    assert_eq!(status, 413);
    loki.assert_ready().await;
    let (status, body) = loki.get(None, "/loki/api/v1/nope", &[]).await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    loki.assert_ready().await;
}

#[tokio::test]
async fn loki_query_errors() {
    let loki = Loki::default().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("query", r#"{a="b"} |= "x" | "#)],
            "parse error at line 1, col 18: syntax error",
        ),
        (
            &[("query", r#"{a=~".*"}"#)],
            "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value.",
        ),
        (
            &[("query", r#"{a="b"} | pattern "<x>""#)],
            "not supported by the embedded Loki: the pattern stage",
        ),
        (
            &[("query", r#"sum(rate({a="b"}[1m])) / 2"#)],
            "not supported by the embedded Loki: ",
        ),
        (
            &[("query", r#"{a="b"}"#), ("start", "yesterday")],
            "strconv.ParseInt: parsing \"yesterday\": invalid syntax",
        ),
        (
            &[("query", r#"{a="b"}"#), ("limit", "0")],
            "limit must be a positive value",
        ),
        (
            &[("query", r#"{a="b"}"#), ("direction", "sideways")],
            "invalid direction 'sideways'",
        ),
        (
            &[
                ("query", r#"{a="b"}"#),
                ("start", secs(10.0)),
                ("end", secs(0.0)),
            ],
            "end timestamp must not be before or equal to start time",
        ),
        (
            &[("query", r#"rate({a="b"}[1m])"#), ("step", "0")],
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            &[
                ("query", r#"rate({a="b"}[1m])"#),
                ("start", "1600000000"),
                ("end", secs(0.0)),
                ("step", "1"),
            ],
            "exceeded maximum resolution of 11,000 points",
        ),
        (
            &[("query", r#"{a="b"}"#), ("limit", "5001")],
            "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)",
        ),
    ];
    for (params, expected) in cases {
        let (status, body) = loki.get(None, "/loki/api/v1/query_range", params).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert!(body.starts_with(expected), "{params:?}: {body}");
    }
    let (status, body) = loki
        .get(None, "/loki/api/v1/query", &[("query", r#"{a="b"}"#)])
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "log queries are not supported as an instant query type, please change your query to a range query type\n"
    );
    let (status, body) = loki.get(None, "/loki/api/v1/series", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "0 matcher groups supplied\n")
    );
    loki.assert_ready().await;
}

#[tokio::test]
async fn loki_tenants_are_isolated() {
    let loki = Loki::default().await;
    let req = |line: &str| stream(r#"{job="t"}"#, vec![Entry::new(t0(), line)]);
    assert_eq!(loki.push(Some("team-a"), &req("for a")).await.0, 204);
    assert_eq!(loki.push(Some("team-b"), &req("for b")).await.0, 204);
    assert_eq!(loki.push(None, &req("for fake")).await.0, 204);
    let p = [
        ("query", r#"{job="t"}"#),
        ("start", "1699999999"),
        ("end", secs(1.0)),
    ];
    for (tenant, line) in [
        (Some("team-a"), "for a"),
        (Some("team-b"), "for b"),
        (None, "for fake"),
        (Some("fake"), "for fake"),
    ] {
        let data = loki.query_range(tenant, &p).await;
        assert_eq!(
            data["result"][0]["values"],
            json!([[s(t0()), line]]),
            "{tenant:?}"
        );
    }
    let data = loki.query_range(Some("team-c"), &p).await;
    assert_eq!(data["result"], json!([]));
    let labels = loki
        .json(Some("team-c"), "/loki/api/v1/labels", &p[1..])
        .await;
    assert_eq!(labels["data"], json!([]));
}

#[tokio::test]
async fn loki_duplicates_are_dropped_and_out_of_order_entries_sorted() {
    let loki = Loki::default().await;
    let req = stream(
        r#"{job="dup"}"#,
        vec![
            Entry::new(t0() + 2 * S, "b"),
            Entry::new(t0() + S, "a"),
            Entry::new(t0() + 2 * S, "b"),
            Entry::new(t0() + 2 * S, "b2"),
        ],
    );
    assert_eq!(loki.push(None, &req).await.0, 204);
    assert_eq!(loki.push(None, &req).await.0, 204);
    let data = loki
        .query_range(
            None,
            &[
                ("query", r#"{job="dup"}"#),
                ("start", secs(0.0)),
                ("end", secs(10.0)),
                ("direction", "forward"),
            ],
        )
        .await;
    assert_eq!(
        data["result"][0]["values"],
        json!([
            [s(t0() + S), "a"],
            [s(t0() + 2 * S), "b"],
            [s(t0() + 2 * S), "b2"]
        ])
    );
}

#[tokio::test]
async fn loki_retention_evicts_the_oldest_and_counts_it() {
    // 64 bytes of overhead + 36 of line = 100 bytes an entry; room for 10.
    let loki = Loki::start(EmbeddedConfig {
        retention_bytes: 1000,
        ..as_pushed()
    })
    .await;
    let req = stream(
        r#"{job="ret"}"#,
        entries(15, |i| (t0() + i * S, format!("{i:036}"))),
    );
    assert_eq!(loki.push(None, &req).await.0, 204);
    let data = loki
        .query_range(
            None,
            &[
                ("query", r#"{job="ret"}"#),
                ("start", secs(0.0)),
                ("end", secs(100.0)),
                ("direction", "forward"),
            ],
        )
        .await;
    let values = data["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 10);
    assert_eq!(values[0][0], s(t0() + 6 * S));
    assert_eq!(
        loki.metric("loki_embedded_evicted_entries_total").await,
        "loki_embedded_evicted_entries_total 5"
    );
    assert_eq!(
        loki.metric("loki_embedded_evicted_bytes_total").await,
        "loki_embedded_evicted_bytes_total 500"
    );
    assert_eq!(
        loki.metric("loki_embedded_stored_bytes ").await,
        "loki_embedded_stored_bytes 1000"
    );
    assert!(
        loki.metric("loki_embedded_ingested_entries_total")
            .await
            .ends_with(" 15")
    );
}
