//! `loadgen node`: one device as a long-running exporter. Its /metrics is a valid exposition
//! of the device type's families, its log file fills with lines in the device's format, and a
//! POS node's checkout traces arrive in the (embedded) Tempo under the trace id its log line
//! names. Stopping it closes the port.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::node::{Node, NodeIdentity, NodeOptions};
use stack::client::TempoClient;
use stack::{EmbeddedConfig, EmbeddedStack};

fn identity(pairs: &[(&str, &str)]) -> NodeIdentity {
    let map: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
    NodeIdentity::from_env(|k| map.get(k).map(|v| v.to_string())).unwrap()
}

#[tokio::test]
async fn a_pos_node_serves_metrics_writes_logs_and_sends_traces() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(&[
        ("NODE_TYPE", "pos"),
        ("DEVICE", "pos-node-test"),
        ("REGION", "region3"),
        ("LOCATION", "store-3"),
        ("BRAND", "brand2"),
    ]);
    let node = Node::start(
        id,
        NodeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            log_dir: Some(dir.path().to_path_buf()),
            otlp: Some(stack.endpoints().tempo_otlp_http.clone()),
            seed: 7,
            rate_multiplier: 100.0,
        },
    )
    .await
    .unwrap();

    let url = format!("http://{}/metrics", node.metrics_addr());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let parsed = wire::exposition::parse(&text).unwrap();
    assert!(
        text.contains("pos_transactions_total"),
        "no POS family in:\n{text}"
    );
    assert!(!parsed.is_empty());
    assert!(
        !text.contains("pos-node-test") && !text.contains("region3"),
        "the node's metadata is the agent's to add:\n{text}"
    );

    // 100x: 20 log lines/s and 5 checkouts/s; wait for a checkout line with a trace id.
    let log = node.log_path().unwrap().to_path_buf();
    let mut trace_id = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let content = std::fs::read_to_string(&log).unwrap_or_default();
        trace_id = content
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v.get("trace_id").and_then(|t| t.as_str()).map(String::from));
        if trace_id.is_some() {
            break;
        }
    }
    let trace_id = trace_id.expect("a checkout line with trace_id in the node's log");
    let tempo = TempoClient::new(stack.endpoints());
    let mut found = None;
    for _ in 0..50 {
        found = tempo.trace_by_id(&trace_id).await.unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = found.expect("the checkout's trace in Tempo");
    assert_eq!(spans.len(), 4, "one resource per checkout service");

    let addr = node.metrics_addr();
    assert!(
        node.stats()
            .log_lines
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    node.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port closes on stop"
    );
}

#[test]
fn the_binary_names_a_bad_node_type() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["node", "--listen", "127.0.0.1:0"])
        .env("NODE_TYPE", "toaster")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NODE_TYPE=\"toaster\""), "{err}");
}
