//! `read_path.feature`: a short loadgen run (in-process collector in front of the scenario's
//! stack) with Grafana viewers refreshing the shipped dashboards while the fleet writes; every
//! panel must answer, within a bound. With a Grafana in the stack the viewers go through its
//! `/api/ds/query`, as a browser would; otherwise straight to Loki, Mimir and Tempo.

use std::time::Duration;

use cucumber::{then, when};
use loadgen::fleet::FleetSpec;
use loadgen::read::ViewersConfig;
use loadgen::run::RunConfig;
use reports::read_path::ReadPath;

use crate::StepsWorld;
use crate::steps::capacity::external_args;

#[when(expr = "loadgen emulates {int} devices for {int} s with {int} Grafana viewers")]
async fn emulate_with_viewers(
    w: &mut StepsWorld,
    devices: u64,
    secs: u64,
    viewers: usize,
) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let cfg = RunConfig {
        fleet: FleetSpec {
            devices,
            seed: 23,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(secs),
        canary_every: 5,
        drain_timeout: Duration::from_secs(30),
        out_dir: Some(w.dir.path().join(format!("run-{}", w.id))),
        stack: stack::StackChoice::External(external_args(&e)),
        viewers: Some(ViewersConfig {
            viewers,
            // Refreshing every 2-3 s instead of the dashboards' 30 s, so a short run refreshes
            // each dashboard several times, the device one also after the first device reported.
            refresh: Some(Duration::from_secs(2)),
            think: Duration::from_secs(1),
            grafana: e.grafana.clone(),
            ..ViewersConfig::default()
        }),
        command: format!("steps: {devices} devices for {secs} s, {viewers} viewers"),
        ..RunConfig::default()
    };
    // A run is CPU work for seconds: off the task the scenarios share.
    let (results, _) = tokio::spawn(async move { loadgen::run::run(&cfg).await })
        .await
        .map_err(|e| anyhow::anyhow!("the loadgen run panicked: {e}"))??;
    let rp = results
        .read_path
        .ok_or_else(|| anyhow::anyhow!("the run has no read path: the viewers did not run"))?;
    w.vars
        .insert("read_path".into(), serde_json::to_string(&rp)?);
    Ok(())
}

fn read_path(w: &StepsWorld) -> anyhow::Result<ReadPath> {
    let text = w
        .vars
        .get("read_path")
        .ok_or_else(|| anyhow::anyhow!("no loadgen run with viewers in this scenario"))?;
    Ok(serde_json::from_str(text)?)
}

/// One line per panel: dashboard, title, queries, answered, skipped, max latency.
fn panels(rp: &ReadPath) -> String {
    rp.panels
        .iter()
        .map(|p| {
            format!(
                "  {} / {}: {} queries, {} answered, {} not sent, max {:.1} ms\n",
                p.dashboard,
                p.panel,
                p.queries,
                p.answered,
                p.skipped,
                reports::html::to_ms(p.latency.max as f64, &p.latency.unit)
            )
        })
        .collect()
}

#[then(expr = "every panel of the dashboards the viewers opened answered within {int} ms")]
async fn every_panel_within(w: &mut StepsWorld, ms: u64) -> anyhow::Result<()> {
    let rp = read_path(w)?;
    anyhow::ensure!(
        !rp.panels.is_empty() && rp.refreshes > 0,
        "the viewers refreshed no dashboard ({} refreshes)",
        rp.refreshes
    );
    let slow: Vec<_> = rp
        .panels
        .iter()
        .filter(|p| {
            p.queries == 0
                || p.answered < p.queries
                || reports::html::to_ms(p.latency.max as f64, &p.latency.unit) > ms as f64
        })
        .collect();
    anyhow::ensure!(
        slow.is_empty(),
        "{} of {} panels unanswered or slower than {ms} ms:\n{}",
        slow.len(),
        rp.panels.len(),
        panels(&rp)
    );
    Ok(())
}

#[then("no dashboard query failed")]
async fn no_query_failed(w: &mut StepsWorld) -> anyhow::Result<()> {
    let rp = read_path(w)?;
    let failed: Vec<String> = rp
        .kinds
        .iter()
        .filter(|(_, k)| k.failed() > 0)
        .map(|(name, k)| {
            format!(
                "{name}: {} of {} failed, {:?}",
                k.failed(),
                k.queries,
                k.errors
            )
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty() && rp.queries() > 0,
        "{} queries sent; failed: {}",
        rp.queries(),
        failed.join("; ")
    );
    Ok(())
}
