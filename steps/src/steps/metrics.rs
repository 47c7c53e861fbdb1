//! `metrics.feature`: a device exporter scraped by a node agent into Mimir; relabel rules; `up`
//! of a dead target.

use std::collections::BTreeMap;

use cucumber::gherkin::Step;
use cucumber::{given, then};

use super::logs::{identity, start_agent};
use super::{label_mismatches, node_selector};
use crate::StepsWorld;
use crate::collectors::{ScenarioCollector, toml_str, writers_toml};
use crate::device::{Node, NodeIdentity, NodeOptions};
use crate::eventually::{Attempt, PATIENCE, eventually};
use crate::query::{Api, Exchange, Vector, label};

/// Waits for a PromQL query to answer a vector that `check` accepts.
pub async fn expect_vector(
    w: &mut StepsWorld,
    what: &str,
    query: &str,
    check: impl Fn(&Vector) -> Result<(), String> + Clone,
) -> anyhow::Result<Exchange> {
    let api = w.api().await?;
    let r = eventually(what, PATIENCE, || {
        let api = api.clone();
        let query = query.to_string();
        let check = check.clone();
        async move { vector_attempt(&api, &query, check).await }
    })
    .await;
    w.record(r)
}

async fn vector_attempt(
    api: &Api,
    query: &str,
    check: impl Fn(&Vector) -> Result<(), String>,
) -> Attempt<Exchange> {
    match api.promql(query).await {
        Ok(ex) if !ex.ok() => Attempt::not_yet("the query failed", &ex),
        Ok(ex) => match check(&ex.vector()) {
            Ok(()) => Attempt::Pass(ex),
            Err(why) => Attempt::not_yet(why, &ex),
        },
        Err(e) => Attempt::not_yet_bare(e.to_string()),
    }
}

/// Every sample carries the node's six labels (and there is at least one).
pub fn has_node_labels(id: &NodeIdentity) -> impl Fn(&Vector) -> Result<(), String> + Clone {
    let id = id.clone();
    move |v| {
        if v.is_empty() {
            return Err("no series yet".into());
        }
        for (labels, _) in v {
            let bad = label_mismatches(labels, &id);
            if !bad.is_empty() {
                return Err(format!("series {labels:?}: {bad:?}"));
            }
        }
        Ok(())
    }
}

#[given(expr = "a {string} device in region {string} of brand {string} in {string} mode")]
async fn a_device(
    w: &mut StepsWorld,
    node_type: String,
    region: String,
    brand: String,
    mode: String,
) -> anyhow::Result<()> {
    let id = identity(w, &node_type, &region, &brand, &mode);
    let node = Node::start(id.clone(), NodeOptions::default()).await?;
    w.nodes.insert("node".into(), node);
    w.identities.insert("node".into(), id);
    Ok(())
}

#[given("a node agent for the device")]
async fn agent_for_device(w: &mut StepsWorld) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let addr = w
        .nodes
        .get("node")
        .map(Node::metrics_addr)
        .ok_or_else(|| anyhow::anyhow!("no device in this scenario"))?;
    let dir = w.dir.path().join("node-logs");
    start_agent(w, "agent", &id, Some(addr), &dir).await
}

#[then(
    expr = "within 20 s Mimir has {string} for the node with its region, location, node_type, device, brand and problem_mode"
)]
async fn mimir_has_with_labels(w: &mut StepsWorld, metric: String) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let q = format!("{metric}{{{}}}", node_selector(&id));
    expect_vector(
        w,
        &format!("{metric} of the node in Mimir"),
        &q,
        has_node_labels(&id),
    )
    .await
    .map(|_| ())
}

#[then(expr = "within 20 s Mimir has {string} = {int} for the node with job {string}")]
async fn mimir_value_for_node(
    w: &mut StepsWorld,
    metric: String,
    want: i64,
    job: String,
) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let q = format!("{metric}{{{}, job=\"{job}\"}}", node_selector(&id));
    expect_vector(
        w,
        &format!("{metric} = {want} for the node"),
        &q,
        move |v| match v {
            [] => Err("no series yet".into()),
            [(_, x)] if *x == want as f64 => Ok(()),
            other => Err(format!(
                "want one series = {want}, got {} series: {:?}",
                other.len(),
                other.iter().map(|(_, x)| x).collect::<Vec<_>>()
            )),
        },
    )
    .await
    .map(|_| ())
}

/// One relabel rule as TOML, from a table row.
fn rule_toml(row: &BTreeMap<&str, &str>) -> String {
    let mut parts = Vec::new();
    for (k, v) in row {
        if v.is_empty() {
            continue;
        }
        if *k == "source_labels" {
            let ls: Vec<String> = v.split(',').map(|s| toml_str(s.trim())).collect();
            parts.push(format!("source_labels = [{}]", ls.join(", ")));
        } else {
            parts.push(format!("{k} = {}", toml_str(v)));
        }
    }
    format!("{{ {} }}", parts.join(", "))
}

#[given("a collector scraping the device every second with the relabel rules")]
async fn relabel_collector(w: &mut StepsWorld, step: &Step) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let id = w.identity("node")?;
    let addr = w
        .nodes
        .get("node")
        .map(Node::metrics_addr)
        .ok_or_else(|| anyhow::anyhow!("no device in this scenario"))?;
    let table = step
        .table
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the step needs a table of rules"))?;
    let header = table.rows.first().cloned().unwrap_or_default();
    let rules: Vec<String> = table
        .rows
        .iter()
        .skip(1)
        .map(|r| {
            let row: BTreeMap<&str, &str> = header
                .iter()
                .map(String::as_str)
                .zip(r.iter().map(String::as_str))
                .collect();
            rule_toml(&row)
        })
        .collect();
    let statics: Vec<String> = id
        .labels()
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    let text = format!(
        "data_dir = {data}\n[server]\naddress = \"127.0.0.1:0\"\n\n[sources.device]\ntype = \"prometheus_scrape\"\njob_name = {job}\nscrape_interval = \"1s\"\ntargets = [{{ address = {addr} }}]\n\n[process.shape]\ninputs = [\"device\"]\n[[process.shape.stages]]\ntype = \"relabel\"\nrules = [\n  {rules}\n]\n[[process.shape.stages]]\ntype = \"metrics.static_labels\"\nvalues = {{ {statics} }}\n\n{writers}",
        data = toml_str(&w.dir.path().join("relabel-data").display().to_string()),
        job = toml_str(&w.unique("relabel")),
        addr = toml_str(&addr.to_string()),
        rules = rules.join(",\n  "),
        statics = statics.join(", "),
        writers = writers_toml(&e, &[], &["shape"], &[], None),
    );
    let c = ScenarioCollector::start("relabel", "relabel.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("relabel".into(), c);
    Ok(())
}

#[then(expr = "within 20 s Mimir has {string} for the device with label {word} = {string}")]
async fn mimir_has_label(
    w: &mut StepsWorld,
    metric: String,
    name: String,
    value: String,
) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let q = format!("{metric}{{{}}}", node_selector(&id));
    expect_vector(
        w,
        &format!("{metric} with {name}={value:?}"),
        &q,
        move |v| {
            if v.is_empty() {
                return Err("no series yet".into());
            }
            match v
                .iter()
                .find(|(l, _)| label(l, &name) != Some(value.as_str()))
            {
                Some((l, _)) => Err(format!("series {l:?} lacks {name}={value:?}")),
                None => Ok(()),
            }
        },
    )
    .await
    .map(|_| ())
}

#[then(expr = "Mimir has no {string} series for the device")]
async fn mimir_has_none(w: &mut StepsWorld, metric: String) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let api = w.api().await?;
    let q = format!("{metric}{{{}}}", node_selector(&id));
    let ex = api.promql(&q).await?;
    w.last = Some(ex.clone());
    anyhow::ensure!(
        ex.ok() && ex.vector().is_empty(),
        "{metric} should have been dropped\n{ex}"
    );
    Ok(())
}

#[given("a collector scraping a target where nothing listens")]
async fn dead_target(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    // A port that was free a moment ago: nothing listens there now.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let job = w.unique("dead");
    let text = format!(
        "data_dir = {data}\n[server]\naddress = \"127.0.0.1:0\"\n\n[sources.dead]\ntype = \"prometheus_scrape\"\njob_name = {job}\nscrape_interval = \"1s\"\nscrape_timeout = \"500ms\"\ntargets = [{{ address = {addr} }}]\n\n{writers}",
        data = toml_str(&w.dir.path().join("dead-data").display().to_string()),
        job = toml_str(&job),
        addr = toml_str(&addr.to_string()),
        writers = writers_toml(&e, &[], &["dead"], &[], None),
    );
    let c = ScenarioCollector::start("dead", "dead.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("dead".into(), c);
    w.vars.insert("dead_job".into(), job);
    Ok(())
}

#[then(expr = "within 20 s Mimir has {string} = {int} for the dead target")]
async fn dead_up(w: &mut StepsWorld, metric: String, want: i64) -> anyhow::Result<()> {
    let job = w.vars.get("dead_job").cloned().unwrap_or_default();
    let q = format!("{metric}{{job=\"{job}\"}}");
    expect_vector(
        w,
        &format!("{metric} = {want} for the dead target"),
        &q,
        move |v| match v {
            [] => Err("no series yet".into()),
            [(_, x)] if *x == want as f64 => Ok(()),
            other => Err(format!(
                "want one series = {want}, got {:?}",
                other.iter().map(|(_, x)| x).collect::<Vec<_>>()
            )),
        },
    )
    .await
    .map(|_| ())
}
