//! Step definitions, one module per feature file, and what they share: node label checks,
//! pushes to a collector's receivers, and the collector's self-metrics read from `/metrics`.

pub mod capacity;
pub mod correlation;
pub mod dashboards;
pub mod fleet;
pub mod logs;
pub mod metrics;
pub mod pipeline_health;
pub mod read_path;
pub mod resilience;
pub mod security;
pub mod stack_ready;
pub mod traces;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::device::NodeIdentity;
use crate::query::{Exchange, label};

/// A LogQL/PromQL selector for one node: its device and location are unique to the scenario.
pub fn node_selector(id: &NodeIdentity) -> String {
    format!("device=\"{}\", location=\"{}\"", id.device, id.location)
}

/// What is missing or wrong in `labels` for the node's six labels.
pub fn label_mismatches(labels: &Map<String, Value>, id: &NodeIdentity) -> Vec<String> {
    id.labels()
        .iter()
        .filter(|(k, v)| label(labels, k) != Some(*v))
        .map(|(k, v)| format!("{k}: want {v:?}, got {:?}", label(labels, k)))
        .collect()
}

/// Counters of a collector's `/metrics` text summed per component over the other labels,
/// filtered by `filter` label values.
pub fn sum_by_component(
    text: &str,
    metric: &str,
    filter: &[(&str, &str)],
) -> Result<BTreeMap<String, f64>, String> {
    let families =
        wire::exposition::parse(text).map_err(|e| format!("/metrics does not parse: {e}"))?;
    let mut out = BTreeMap::new();
    for f in &families {
        for s in &f.samples {
            if s.name != metric {
                continue;
            }
            let get = |k: &str| {
                s.labels
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            if filter.iter().any(|(k, v)| get(k) != Some(*v)) {
                continue;
            }
            let c = get("component").unwrap_or("").to_string();
            *out.entry(c).or_insert(0.0) += s.value;
        }
    }
    Ok(out)
}

/// For every component in `text`: received = sent + discarded? Returns the table shown on
/// failure, and whether it balances (and something was received at all).
pub fn balance(text: &str) -> Result<(bool, String), String> {
    let received = sum_by_component(text, "collector_received_items_total", &[])?;
    let sent = sum_by_component(text, "collector_sent_items_total", &[])?;
    let discarded = sum_by_component(text, "collector_discarded_items_total", &[])?;
    let mut ok = !received.is_empty() && received.values().any(|v| *v > 0.0);
    let mut table = String::from("component: received = sent + discarded\n");
    let names: std::collections::BTreeSet<&String> = received
        .keys()
        .chain(sent.keys())
        .chain(discarded.keys())
        .collect();
    for c in names {
        let r = received.get(c).copied().unwrap_or(0.0);
        let s = sent.get(c).copied().unwrap_or(0.0);
        let d = discarded.get(c).copied().unwrap_or(0.0);
        let good = (r - (s + d)).abs() < 0.5;
        ok &= good;
        table.push_str(&format!(
            "  {c}: {r} {} {s} + {d}\n",
            if good { "=" } else { "≠" }
        ));
    }
    Ok((ok, table))
}

/// Fetches a collector's `/metrics`.
pub async fn self_metrics(server: Option<std::net::SocketAddr>) -> anyhow::Result<Exchange> {
    let addr =
        server.ok_or_else(|| anyhow::anyhow!("the collector has no self-monitoring server"))?;
    Ok(crate::query::get_plain(&format!("http://{addr}/metrics")).await)
}

/// Posts a Loki push (JSON) of `lines` in one stream to `addr`; returns status and body.
pub async fn push_lines(
    addr: std::net::SocketAddr,
    labels: &[(&str, &str)],
    lines: &[String],
) -> anyhow::Result<(u16, String)> {
    let now = crate::query::now_ns();
    let stream: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let values: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| serde_json::json!([(now + i as i64).to_string(), l]))
        .collect();
    let body = serde_json::json!({"streams": [{"stream": stream, "values": values}]});
    post(
        addr,
        "/loki/api/v1/push",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
}

/// POSTs `body` to `http://addr{path}`.
pub async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, String)> {
    let url = format!("http://{addr}{path}");
    let r = stack::client::shared_http_client()
        .post(&url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {url}: {}", e.without_url()))?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.unwrap_or_default()))
}
