//! `fleet.feature`: nodes added from the template with their metadata in the environment, seen
//! reporting, removed, seen stopping; problem mode visible in metrics and logs.

use std::time::Duration;

use cucumber::gherkin::Step;
use cucumber::{then, when};

use super::logs::{LOOKBACK, start_agent};
use super::metrics::{expect_vector, has_node_labels};
use super::{label_mismatches, node_selector};
use crate::StepsWorld;
use crate::device::{Node, NodeIdentity, NodeOptions};
use crate::eventually::{Attempt, PATIENCE, eventually};

#[when(expr = "I add a node {string} from the template with")]
async fn add_node(w: &mut StepsWorld, name: String, step: &Step) -> anyhow::Result<()> {
    let table = step
        .table
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the step needs a table of variables"))?;
    let var = |k: &str| -> anyhow::Result<String> {
        table
            .rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(k))
            .and_then(|r| r.get(1).cloned())
            .ok_or_else(|| anyhow::anyhow!("the table sets no {k}"))
    };
    let id = NodeIdentity {
        node_type: var("NODE_TYPE")?,
        region: var("REGION")?,
        location: format!("{}-{}", var("LOCATION")?, w.id),
        device: format!("{}-{}", var("DEVICE")?, w.id),
        brand: var("BRAND")?,
        problem_mode: var("PROBLEM_MODE")?,
    };
    let logs = w.dir.path().join(format!("{name}-logs"));
    std::fs::create_dir_all(&logs)?;
    let node = Node::start(
        id.clone(),
        NodeOptions {
            log_dir: Some(logs.clone()),
            ..NodeOptions::default()
        },
    )
    .await?;
    let addr = node.metrics_addr();
    w.nodes.insert(name.clone(), node);
    w.identities.insert(name.clone(), id.clone());
    start_agent(w, &name, &id, Some(addr), &logs).await
}

#[then(expr = "within 20 s node {string} has metrics in Mimir with its labels")]
async fn node_metrics(w: &mut StepsWorld, name: String) -> anyhow::Result<()> {
    let id = w.identity(&name)?;
    let q = format!("up{{{}}}", node_selector(&id));
    expect_vector(
        w,
        &format!("node {name} up in Mimir"),
        &q,
        has_node_labels(&id),
    )
    .await
    .map(|_| ())
}

#[then(expr = "within 20 s node {string} has log lines in Loki with its labels")]
async fn node_logs(w: &mut StepsWorld, name: String) -> anyhow::Result<()> {
    let id = w.identity(&name)?;
    let q = format!("{{{}}}", node_selector(&id));
    let api = w.api().await?;
    let r = eventually(
        &format!("node {name}'s log lines in Loki"),
        PATIENCE,
        || {
            let (api, q, id) = (api.clone(), q.clone(), id.clone());
            async move {
                let ex = match api.logql(&q, LOOKBACK, 100).await {
                    Ok(ex) => ex,
                    Err(e) => return Attempt::not_yet_bare(e.to_string()),
                };
                let streams = ex.streams();
                if streams.is_empty() {
                    return Attempt::not_yet("no lines yet", &ex);
                }
                match streams
                    .iter()
                    .map(|(l, _)| label_mismatches(l, &id))
                    .find(|b| !b.is_empty())
                {
                    Some(bad) => Attempt::not_yet(format!("labels: {bad:?}"), &ex),
                    None => Attempt::Pass(ex),
                }
            }
        },
    )
    .await;
    w.record(r).map(|_| ())
}

#[when(expr = "I remove node {string}")]
async fn remove_node(w: &mut StepsWorld, name: String) -> anyhow::Result<()> {
    let mut agent = w
        .collectors
        .remove(&name)
        .ok_or_else(|| anyhow::anyhow!("no node {name:?} running"))?;
    agent.stop().await;
    if let Some(n) = w.nodes.remove(&name) {
        n.stop().await;
    }
    Ok(())
}

/// How recent "new" is.
const RECENT: &str = "3s";

#[then(expr = "within 20 s Mimir gets no new samples from node {string}")]
async fn no_new_samples(w: &mut StepsWorld, name: String) -> anyhow::Result<()> {
    let id = w.identity(&name)?;
    let q = format!("count_over_time(up{{{}}}[{RECENT}])", node_selector(&id));
    expect_vector(w, &format!("node {name} silent in Mimir"), &q, |v| {
        if v.iter().all(|(_, x)| *x == 0.0) {
            Ok(())
        } else {
            Err(format!(
                "still {} recent samples",
                v.iter().map(|(_, x)| x).sum::<f64>()
            ))
        }
    })
    .await
    .map(|_| ())
}

#[then(expr = "within 20 s Loki gets no new log lines from node {string}")]
async fn no_new_lines(w: &mut StepsWorld, name: String) -> anyhow::Result<()> {
    let id = w.identity(&name)?;
    let q = format!("sum(count_over_time({{{}}}[{RECENT}]))", node_selector(&id));
    let api = w.api().await?;
    let r = eventually(&format!("node {name} silent in Loki"), PATIENCE, || {
        let (api, q) = (api.clone(), q.clone());
        async move {
            match api.logql_instant(&q).await {
                Ok(ex) if ex.ok() && ex.vector().iter().all(|(_, x)| *x == 0.0) => {
                    Attempt::Pass(ex)
                }
                Ok(ex) => Attempt::not_yet("still new lines", &ex),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    // Give a straggler the chance to show up: it must not.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ex = api.logql_instant(&q).await?;
    w.last = Some(ex.clone());
    w.record(r)?;
    anyhow::ensure!(
        ex.vector().iter().all(|(_, x)| *x == 0.0),
        "a line arrived after the node was removed\n{ex}"
    );
    Ok(())
}

#[then(
    expr = "within 20 s Mimir shows node {string} with less than {int}% of its memory available"
)]
async fn memory_low(w: &mut StepsWorld, name: String, pct: u32) -> anyhow::Result<()> {
    let id = w.identity(&name)?;
    let sel = node_selector(&id);
    let q =
        format!("node_memory_MemAvailable_bytes{{{sel}}} / node_memory_MemTotal_bytes{{{sel}}}");
    let limit = f64::from(pct) / 100.0;
    expect_vector(
        w,
        &format!("node {name} short of memory"),
        &q,
        move |v| match v {
            [] => Err("no series yet".into()),
            v if v.iter().all(|(_, x)| *x < limit) => Ok(()),
            v => Err(format!(
                "available ratio {:?}, want < {limit}",
                v.iter().map(|(_, x)| x).collect::<Vec<_>>()
            )),
        },
    )
    .await
    .map(|_| ())
}

#[then(expr = "within 20 s Loki has error lines from node {string}")]
async fn error_lines(w: &mut StepsWorld, name: String) -> anyhow::Result<()> {
    let id = w.identity(&name)?;
    let q = format!("{{{}}} |= \"level=error\"", node_selector(&id));
    let api = w.api().await?;
    let r = eventually(&format!("error lines of node {name}"), PATIENCE, || {
        let (api, q) = (api.clone(), q.clone());
        async move {
            match api.logql(&q, LOOKBACK, 10).await {
                Ok(ex) if ex.ok() && !ex.lines().is_empty() => Attempt::Pass(ex),
                Ok(ex) => Attempt::not_yet("no error lines yet", &ex),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    w.record(r).map(|_| ())
}
