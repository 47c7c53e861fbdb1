//! Debian's `prometheus` and `prometheus-node-exporter` started by `stack::local`: a sample
//! remote-written to the real Prometheus is queried back; the node exporter serves `node_*`
//! metrics. Skipped with a notice when the binaries are missing (unless
//! `REQUIRE_LOCAL_SERVERS=1`).

use std::time::Duration;

use stack::embedded::mimir::write::encode_series;
use stack::local;

const BOUND: Duration = Duration::from_secs(90);

#[tokio::test]
async fn prometheus_takes_remote_write_and_answers_queries() {
    let test = "prometheus_takes_remote_write_and_answers_queries";
    tokio::time::timeout(BOUND, async {
        let Some(prom) = local::prometheus_or_skip(test).await else {
            return;
        };
        let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
        let body = encode_series(&[(
            vec![("__name__", "local_test_metric"), ("job", "local")],
            vec![(now - 1000, 42.5)],
        )]);
        let client = reqwest::Client::new();
        let r = client
            .post(prom.remote_write_url())
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", prom.log_tail());
        let mut url = prom.url().join("api/v1/query").unwrap();
        url.query_pairs_mut()
            .append_pair("query", "local_test_metric")
            .append_pair("time", &format!("{}", now / 1000));
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["data"]["resultType"], "vector");
        assert_eq!(v["data"]["result"][0]["value"][1], "42.5", "{v}");
        assert_eq!(v["data"]["result"][0]["metric"]["job"], "local");
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn node_exporter_serves_node_metrics() {
    let test = "node_exporter_serves_node_metrics";
    tokio::time::timeout(BOUND, async {
        let Some(ne) = local::node_exporter_or_skip(test).await else {
            return;
        };
        let text = testkit::get_text(ne.metrics_url()).await;
        assert!(
            text.lines().any(|l| l.starts_with("node_")),
            "no node_* metric in:\n{}",
            &text[..text.len().min(2000)]
        );
    })
    .await
    .expect("bounded in time");
}

#[test]
fn skip_rule_reads_the_environment() {
    // Only reads the variable: whether it is set depends on the caller (CI sets it).
    let expected = std::env::var(local::REQUIRE_ENV).is_ok_and(|v| v.trim() == "1");
    assert_eq!(local::required(), expected);
}
