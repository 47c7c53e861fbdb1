//! The shipped per-node agent config (`collector/examples/node-agent.toml`), unchanged but for
//! its environment, against real servers: it scrapes Debian's `prometheus-node-exporter`, tails
//! a log file, writes metrics to Debian's `prometheus` (remote-write receiver) and logs to the
//! embedded Loki. The `node_*` series are queryable in the real Prometheus with the node labels.
//!
//! Skips with a notice when the servers are not installed, unless REQUIRE_LOCAL_SERVERS=1 (CI).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use collector::config::Config;
use collector::runtime::Collector;
use stack::client::loki::RangeOptions;
use stack::client::{LokiClient, PromClient};
use stack::local::{PrometheusOptions, node_exporter_or_skip, prometheus_with_or_skip};
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::eventually;

#[tokio::test]
async fn node_agent_example_scrapes_node_exporter_into_real_prometheus() {
    let test = "node_agent_example_scrapes_node_exporter_into_real_prometheus";
    let Some(exporter) = node_exporter_or_skip(test).await else {
        return;
    };
    let Some(prom) = prometheus_with_or_skip(test, PrometheusOptions::default()).await else {
        return;
    };
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("pos.log");
    let mut log = std::fs::File::create(&log_path).unwrap();

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-agent.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    // The example scrapes every 15 s; the test does not wait that long.
    let text = text.replace("scrape_interval = \"15s\"", "scrape_interval = \"500ms\"");
    let data_dir = dir.path().join("data").display().to_string();
    let log_glob = dir.path().join("*.log").display().to_string();
    let exporter_addr = exporter.target();
    let loki_url = stack
        .endpoints()
        .loki
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let write_url = prom.remote_write_url().to_string();
    let env = move |name: &str| -> Option<String> {
        Some(match name {
            "REGION" => "eu-west".into(),
            "LOCATION" => "store-101".into(),
            "NODE_TYPE" => "server".into(),
            "DEVICE" => "srv-01".into(),
            "BRAND" => "brand2".into(),
            "PROBLEM_MODE" => "healthy".into(),
            "COLLECTOR_DATA_DIR" => data_dir.clone(),
            "COLLECTOR_LISTEN" => "127.0.0.1:0".into(),
            "EXPORTER_ADDRESS" => exporter_addr.clone(),
            "LOG_PATH" => log_glob.clone(),
            "LOKI_URL" => loki_url.clone(),
            "MIMIR_WRITE_URL" => write_url.clone(),
            _ => return None,
        })
    };
    let cfg = Config::parse(&text, &example.display().to_string(), &env).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();

    // The source starts at the end of existing files: lines written now are shipped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    writeln!(log, "level=info msg=\"backup finished\" duration=12s").unwrap();
    log.flush().unwrap();

    let mut real = stack.endpoints().clone();
    real.prometheus_query = prom.url();
    let client = PromClient::new(&real);
    let v = eventually("node_* series in the real Prometheus", || {
        let client = client.clone();
        async move {
            let r = client
                .query("node_cpu_seconds_total{mode=\"idle\"}", None)
                .await
                .ok()?;
            let v = r.vector()?.to_vec();
            (!v.is_empty()).then_some(v)
        }
    })
    .await;
    let m = &v[0].metric;
    for (k, want) in [
        ("job", "server"),
        ("region", "eu-west"),
        ("location", "store-101"),
        ("node_type", "server"),
        ("device", "srv-01"),
        ("brand", "brand2"),
        ("problem_mode", "healthy"),
    ] {
        assert_eq!(m.get(k).map(String::as_str), Some(want), "{k} in {m:?}");
    }
    let up = client.query("up{job=\"server\"}", None).await.unwrap();
    assert_eq!(up.vector().unwrap()[0].sample.value, 1.0);
    // The config drops go_* at the scrape.
    let go = client
        .query("go_goroutines{job=\"server\"}", None)
        .await
        .unwrap();
    assert!(go.vector().unwrap().is_empty());

    let loki = LokiClient::new(stack.endpoints());
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let window = RangeOptions {
        start_ns: now - 600_000_000_000,
        end_ns: now + 60_000_000_000,
        limit: Some(10),
        ..RangeOptions::default()
    };
    let lines = eventually("the log line in Loki", || {
        let loki = loki.clone();
        async move {
            let r = loki
                .query_range(r#"{device="srv-01", region="eu-west", problem_mode="healthy"} | logfmt | level="info""#, &window)
                .await
                .ok()?;
            let l: Vec<String> = r.lines().into_iter().map(str::to_string).collect();
            (!l.is_empty()).then_some(l)
        }
    })
    .await;
    assert_eq!(
        lines,
        vec!["level=info msg=\"backup finished\" duration=12s".to_string()]
    );
    collector.shutdown().await;
}
