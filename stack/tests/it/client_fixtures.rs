//! `LokiClient` and `PromClient` against a small axum server that answers with the example
//! responses of the Prometheus and Loki HTTP API documentation, and records what the clients
//! sent (paths, parameters, tenant and credentials, push and remote-write bodies). The end-to-end
//! test against the embedded Loki and Mimir comes with them.

// Test code through and through (clippy.toml only exempts `#[test]` fns, not helpers).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use reqwest::Url;
use stack::client::loki::{Direction, LokiResult, RangeOptions};
use stack::client::prom::{QueryResult, Sample};
use stack::client::{ClientError, LokiClient, PromClient};
use stack::{Auth, Endpoints};

/// Prometheus docs, `GET /api/v1/query` example.
const PROM_VECTOR: &str = r#"{
   "status" : "success",
   "data" : {
      "resultType" : "vector",
      "result" : [
         {
            "metric" : { "__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090" },
            "value": [ 1435781451.781, "1" ]
         },
         {
            "metric" : { "__name__" : "up", "job" : "node", "instance" : "localhost:9100" },
            "value" : [ 1435781451.781, "0" ]
         }
      ]
   }
}"#;

/// Prometheus docs, `GET /api/v1/query_range` example.
const PROM_MATRIX: &str = r#"{
   "status" : "success",
   "data" : {
      "resultType" : "matrix",
      "result" : [
         {
            "metric" : { "__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090" },
            "values" : [ [ 1435781430.781, "1" ], [ 1435781445.781, "1" ], [ 1435781460.781, "1" ] ]
         },
         {
            "metric" : { "__name__" : "up", "job" : "node", "instance" : "localhost:9091" },
            "values" : [ [ 1435781430.781, "0" ], [ 1435781445.781, "0" ], [ 1435781460.781, "1" ] ]
         }
      ]
   }
}"#;

/// Prometheus docs, `GET /api/v1/series` example.
const PROM_SERIES: &str = r#"{
   "status" : "success",
   "data" : [
      { "__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090" },
      { "__name__" : "up", "job" : "node", "instance" : "localhost:9091" },
      { "__name__" : "process_start_time_seconds", "job" : "prometheus", "instance" : "localhost:9090" }
   ]
}"#;

/// Prometheus docs, `GET /api/v1/labels` example (shortened).
const PROM_LABELS: &str = r#"{
    "status": "success",
    "data": [ "__name__", "call", "code", "config", "instance", "job", "le", "version" ]
}"#;

/// Prometheus docs, `GET /api/v1/label/job/values` example.
const PROM_LABEL_VALUES: &str = r#"{ "status" : "success", "data" : [ "node", "prometheus" ] }"#;

/// The documented response format with the special float values and a scalar.
const PROM_SPECIALS: &str = r#"{
   "status" : "success",
   "data" : {
      "resultType" : "vector",
      "result" : [
         { "metric" : { "v" : "nan" }, "value" : [ 1, "NaN" ] },
         { "metric" : { "v" : "inf" }, "value" : [ 1, "+Inf" ] },
         { "metric" : { "v" : "-inf" }, "value" : [ 1, "-Inf" ] }
      ]
   }
}"#;
const PROM_SCALAR: &str = r#"{ "status" : "success", "data" : { "resultType" : "scalar", "result" : [ 1435781451.781, "2.5" ] } }"#;

/// Prometheus docs, error format.
const PROM_ERROR: &str = r#"{ "status": "error", "errorType": "bad_data", "error": "parse error at char 4: unclosed left parenthesis" }"#;

/// Loki docs, `GET /loki/api/v1/query` log query example.
const LOKI_STREAMS: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "streams",
    "result": [
      {
        "stream": { "filename": "/var/log/myproject.log", "job": "varlogs", "level": "info" },
        "values": [ [ "1568234281726420425", "foo" ], [ "1568234269716526880", "bar" ] ]
      }
    ],
    "stats": {}
  }
}"#;

/// Loki docs, `GET /loki/api/v1/query` metric query example.
const LOKI_VECTOR: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "vector",
    "result": [
      { "metric": {}, "value": [ 1588889221, "1267.1266666666666" ] },
      { "metric": { "level": "warn" }, "value": [ 1588889221, "37.77166666666667" ] },
      { "metric": { "level": "info" }, "value": [ 1588889221, "37.69" ] }
    ],
    "stats": {}
  }
}"#;

/// Loki docs, `GET /loki/api/v1/query_range` metric query example.
const LOKI_MATRIX: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "matrix",
    "result": [
      {
        "metric": { "level": "info" },
        "values": [ [ 1588889221, "137.95" ], [ 1588889221, "467.115" ], [ 1588889221, "658.8516666666667" ] ]
      },
      {
        "metric": { "level": "warn" },
        "values": [ [ 1588889221, "137.27833333333334" ], [ 1588889221, "467.69" ], [ 1588889221, "660.6933333333334" ] ]
      }
    ],
    "stats": {}
  }
}"#;

/// Loki docs, `GET /loki/api/v1/labels` and `label/<name>/values` examples.
const LOKI_LABELS: &str = r#"{ "status": "success", "data": [ "foo", "bar", "baz" ] }"#;
const LOKI_LABEL_VALUES: &str = r#"{ "status": "success", "data": [ "cortex-ops", "default" ] }"#;

/// Loki docs, `GET /loki/api/v1/series` example.
const LOKI_SERIES: &str = r#"{
  "status": "success",
  "data": [
    {
      "container_name": "loki",
      "app": "loki",
      "stream": "stderr",
      "filename": "/var/log/pods/default_loki-stack-0_50835643-1df0-11ea-ba79-025000000001/loki/0.log",
      "name": "loki",
      "job": "default/loki",
      "controller_revision_hash": "loki-stack-757479754d",
      "statefulset_kubernetes_io_pod_name": "loki-stack-0",
      "release": "loki-stack",
      "namespace": "default",
      "instance": "loki-stack-0"
    }
  ]
}"#;

/// One request as the fixture server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, Vec<String>>,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn answer(path: &str, query: &BTreeMap<String, Vec<String>>) -> (StatusCode, &'static str) {
    let q = query
        .get("query")
        .and_then(|v| v.first())
        .map(String::as_str)
        .unwrap_or("");
    let ok = |body| (StatusCode::OK, body);
    match path {
        "/prometheus/api/v1/query" => match q {
            "specials" => ok(PROM_SPECIALS),
            "scalar" => ok(PROM_SCALAR),
            "bad(" => (StatusCode::BAD_REQUEST, PROM_ERROR),
            "error-in-200" => ok(PROM_ERROR),
            "garbage" => ok("<html>not json</html>"),
            _ => ok(PROM_VECTOR),
        },
        "/prometheus/api/v1/query_range" => ok(PROM_MATRIX),
        "/prometheus/api/v1/series" => ok(PROM_SERIES),
        "/prometheus/api/v1/labels" => ok(PROM_LABELS),
        "/prometheus/api/v1/label/job/values" => ok(PROM_LABEL_VALUES),
        "/api/v1/push" | "/loki/api/v1/push" => (StatusCode::NO_CONTENT, ""),
        "/loki/api/v1/query" if q.starts_with("rate") => ok(LOKI_VECTOR),
        "/loki/api/v1/query" => ok(LOKI_STREAMS),
        "/loki/api/v1/query_range" if q.starts_with("rate") => ok(LOKI_MATRIX),
        "/loki/api/v1/query_range" => ok(LOKI_STREAMS),
        "/loki/api/v1/labels" => ok(LOKI_LABELS),
        "/loki/api/v1/label/namespace/values" => ok(LOKI_LABEL_VALUES),
        "/loki/api/v1/series" => ok(LOKI_SERIES),
        "/ready" => ok("ready"),
        _ => (StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// Starts the fixture server; returns endpoints pointing at it (with a tenant and basic auth)
/// and the request log.
async fn serve() -> (Endpoints, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
                let url = Url::parse(&format!("http://x{uri}")).unwrap();
                for (k, v) in url.query_pairs() {
                    query
                        .entry(k.into_owned())
                        .or_default()
                        .push(v.into_owned());
                }
                let (status, body_out) = answer(uri.path(), &query);
                seen.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_string(),
                    query,
                    headers,
                    body,
                });
                (status, [("content-type", "application/json")], body_out).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let endpoints = Endpoints {
        loki: base.clone(),
        prometheus_write: base.join("api/v1/push").unwrap(),
        prometheus_query: base.join("prometheus").unwrap(),
        tempo_otlp_http: base.clone(),
        tempo_otlp_grpc: None,
        tempo_query: base,
        grafana: None,
        tenant: Some("tenant-1".into()),
        auth: Auth::Basic {
            username: "user".into(),
            password: "hunter2".into(),
        },
        ca_file: None,
    };
    (endpoints, log)
}

fn last(log: &Log) -> Seen {
    log.lock().unwrap().last().cloned().unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn prom_client_reads_the_documented_shapes() {
    let (endpoints, log) = serve().await;
    let prom = PromClient::new(&endpoints);

    let v = prom.query("up", Some(1435781451.781)).await.unwrap();
    let v = v.vector().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].metric,
        labels(&[
            ("__name__", "up"),
            ("job", "prometheus"),
            ("instance", "localhost:9090")
        ])
    );
    assert_eq!(
        v[1].sample,
        Sample {
            timestamp: 1435781451.781,
            value: 0.0
        }
    );
    let seen = last(&log);
    assert_eq!(seen.path, "/prometheus/api/v1/query");
    assert_eq!(seen.query["time"], ["1435781451.781"]);
    assert_eq!(seen.headers["x-scope-orgid"], "tenant-1");
    assert!(
        seen.headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );

    let m = prom
        .query_range(
            "up",
            1435781430.781,
            1435781460.781,
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    let m = m.matrix().unwrap();
    assert_eq!(
        m[1].samples.iter().map(|s| s.value).collect::<Vec<_>>(),
        [0.0, 0.0, 1.0]
    );
    assert_eq!(last(&log).query["step"], ["15s"]);

    let specials = prom.query("specials", None).await.unwrap();
    let s = specials.vector().unwrap();
    assert!(s[0].sample.value.is_nan());
    assert_eq!(s[1].sample.value, f64::INFINITY);
    assert_eq!(s[2].sample.value, f64::NEG_INFINITY);
    assert_eq!(
        prom.query("scalar", None)
            .await
            .unwrap()
            .scalar()
            .unwrap()
            .value,
        2.5
    );

    let series = prom
        .series(
            &["up", "process_start_time_seconds{job=\"prometheus\"}"],
            Some((1.0, 2.0)),
        )
        .await
        .unwrap();
    assert_eq!(series.len(), 3);
    assert_eq!(series[2]["__name__"], "process_start_time_seconds");
    assert_eq!(last(&log).query["match[]"].len(), 2);

    assert_eq!(prom.labels().await.unwrap()[0], "__name__");
    assert_eq!(
        prom.label_values("job").await.unwrap(),
        ["node", "prometheus"]
    );
    prom.ready().await.unwrap();
}

#[tokio::test]
async fn prom_errors_say_what_was_sent_and_what_came_back() {
    let (endpoints, _log) = serve().await;
    let prom = PromClient::new(&endpoints);

    let err = prom.query("bad(", None).await.unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::BAD_REQUEST));
    let msg = err.to_string();
    assert!(
        msg.contains("/prometheus/api/v1/query?query=bad%28"),
        "{msg}"
    );
    assert!(msg.contains("unclosed left parenthesis"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");

    let err = prom.query("error-in-200", None).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("bad_data"));

    let err = prom.query("garbage", None).await.unwrap_err();
    assert!(err.to_string().contains("not json"), "{err}");

    let unreachable = Endpoints {
        prometheus_query: Url::parse("http://user:hunter2@127.0.0.1:1/prometheus").unwrap(),
        ..endpoints
    };
    let err = PromClient::new(&unreachable)
        .query("up", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn remote_write_sends_the_remote_write_headers() {
    let (endpoints, log) = serve().await;
    let prom = PromClient::new(&endpoints);
    let req = wire::remote_write::WriteRequest {
        timeseries: vec![wire::remote_write::TimeSeries {
            labels: vec![wire::remote_write::Label::new("__name__", "up")],
            samples: vec![wire::remote_write::Sample {
                value: 1.0,
                timestamp: 1000,
            }],
            exemplars: vec![],
        }],
        metadata: vec![],
    };
    prom.remote_write(&req).await.unwrap();
    let seen = last(&log);
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, "/api/v1/push");
    assert_eq!(seen.headers["content-encoding"], "snappy");
    assert_eq!(seen.headers["content-type"], "application/x-protobuf");
    assert_eq!(seen.headers["x-prometheus-remote-write-version"], "0.1.0");
    assert_eq!(seen.headers["x-scope-orgid"], "tenant-1");
    let decoded = wire::remote_write::decode(&seen.body, 1 << 20).unwrap();
    assert_eq!(decoded, req);
}

#[tokio::test]
async fn loki_client_reads_the_documented_shapes() {
    let (endpoints, log) = serve().await;
    let loki = LokiClient::new(&endpoints);

    let r = loki
        .query("{job=\"varlogs\"}", Some(1568234281726420425), Some(10))
        .await
        .unwrap();
    let streams = r.streams().unwrap();
    assert_eq!(
        streams[0].labels,
        labels(&[
            ("filename", "/var/log/myproject.log"),
            ("job", "varlogs"),
            ("level", "info")
        ])
    );
    assert_eq!(
        streams[0].entries,
        [
            (1568234281726420425, "foo".to_string()),
            (1568234269716526880, "bar".to_string())
        ]
    );
    assert_eq!(r.lines(), ["foo", "bar"]);
    assert_eq!(last(&log).query["limit"], ["10"]);

    let v = loki
        .query("rate({job=\"varlogs\"}[5m])", None, None)
        .await
        .unwrap();
    let Some(QueryResult::Vector(v)) = v.metric() else {
        panic!("expected a vector, got {v:?}");
    };
    assert_eq!(v[1].metric, labels(&[("level", "warn")]));
    assert_eq!(v[0].sample.value, 1267.1266666666666);

    let opts = RangeOptions {
        start_ns: 1,
        end_ns: 2,
        limit: Some(100),
        step: Some(Duration::from_secs(60)),
        direction: Some(Direction::Forward),
    };
    let m = loki
        .query_range("rate({job=\"varlogs\"}[5m])", &opts)
        .await
        .unwrap();
    let Some(QueryResult::Matrix(m)) = m.metric() else {
        panic!("expected a matrix, got {m:?}");
    };
    assert_eq!(m[0].samples[2].value, 658.8516666666667);
    let seen = last(&log);
    assert_eq!(seen.query["start"], ["1"]);
    assert_eq!(seen.query["direction"], ["forward"]);
    assert!(matches!(
        loki.query_range("{job=\"varlogs\"}", &opts).await.unwrap(),
        LokiResult::Streams(_)
    ));

    assert_eq!(loki.labels().await.unwrap(), ["foo", "bar", "baz"]);
    assert_eq!(
        loki.label_values("namespace").await.unwrap(),
        ["cortex-ops", "default"]
    );
    let series = loki.series(&["{app=\"loki\"}"], None).await.unwrap();
    assert_eq!(
        series[0]["statefulset_kubernetes_io_pod_name"],
        "loki-stack-0"
    );
    loki.ready().await.unwrap();
}

#[tokio::test]
async fn loki_push_sends_protobuf_snappy_and_json() {
    let (endpoints, log) = serve().await;
    let loki = LokiClient::new(&endpoints);
    let req = wire::loki::PushRequest {
        streams: vec![wire::loki::Stream {
            labels: r#"{job="a"}"#.into(),
            entries: vec![wire::loki::Entry::new(5, "hello")],
            hash: 0,
        }],
    };
    loki.push(&req).await.unwrap();
    let seen = last(&log);
    assert_eq!(seen.path, "/loki/api/v1/push");
    assert_eq!(seen.headers["content-type"], "application/x-protobuf");
    assert_eq!(seen.headers["x-scope-orgid"], "tenant-1");
    assert_eq!(
        wire::loki::decode_protobuf(&seen.body, 1 << 20).unwrap(),
        req
    );

    loki.push_json(&req).await.unwrap();
    let seen = last(&log);
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(wire::loki::decode_json(&seen.body).unwrap(), req);
}
