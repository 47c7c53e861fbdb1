//! `dashboards.feature`: every panel query of the provisioned dashboards (deploy/) is valid and
//! returns data on a fed stack; Grafana lists the dashboards.
//!

use std::collections::BTreeMap;
use std::time::Duration;

use cucumber::{given, then};

use super::capacity::loadgen_run;
use crate::StepsWorld;
use crate::collectors::{ScenarioCollector, gateway_toml, toml_str, writers_toml};
use crate::dashboards::{PanelQuery, QueryKind, deploy_dir, expand, panel_queries};
use crate::eventually::{Attempt, eventually};
use crate::query::{Api, Exchange};

#[given(
    expr = "a small fleet feeding the stack through a gateway collector, whose own metrics are scraped as job {string}"
)]
async fn fed_stack(w: &mut StepsWorld, job: String) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let text = gateway_toml(&w.dir.path().join("gateway-data"), &e, None);
    let gw = ScenarioCollector::start("gateway", "gateway.toml", text, BTreeMap::new()).await?;
    let server = gw
        .server_addr()
        .ok_or_else(|| anyhow::anyhow!("the gateway has no self-monitoring server"))?;
    w.collectors.insert("gateway".into(), gw);
    // The gateway's own /metrics, scraped into Mimir as the pipeline-health dashboard expects.
    let text = format!(
        "data_dir = {data}\n[server]\nenabled = false\n\n[sources.self]\ntype = \"prometheus_scrape\"\njob_name = {job}\nscrape_interval = \"1s\"\ntargets = [{{ address = {addr} }}]\n\n{writers}",
        data = toml_str(&w.dir.path().join("self-data").display().to_string()),
        job = toml_str(&job),
        addr = toml_str(&server.to_string()),
        writers = writers_toml(&e, &[], &["self"], &[], None),
    );
    let s =
        ScenarioCollector::start("self-scrape", "self-scrape.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("self-scrape".into(), s);
    // Ten times the nominal rates: every device type scrapes at least twice in the run, so
    // rate() panels have two samples per series.
    loadgen_run(w, 30, 8, 7, 10.0).await?;
    Ok(())
}

async fn run_panel(api: &Api, p: &PanelQuery) -> anyhow::Result<Exchange> {
    let expr = expand(&p.expr);
    let window = Duration::from_secs(600);
    Ok(match p.kind {
        QueryKind::PromQL => api.promql_range(&expr, window).await?,
        QueryKind::LogQL => api.logql_range_metric(&expr, window).await?,
        QueryKind::TraceQL => api.traceql(&expr).await?,
    })
}

fn has_data(p: &PanelQuery, ex: &Exchange) -> bool {
    match p.kind {
        QueryKind::TraceQL => ex
            .json()
            .and_then(|j| {
                j.get("traces")
                    .and_then(|t| t.as_array())
                    .map(|t| !t.is_empty())
            })
            .unwrap_or(false),
        _ => !ex.result().is_empty(),
    }
}

/// The dashboards folder of deploy/.
fn dashboards_dir() -> std::path::PathBuf {
    deploy_dir().join("grafana/dashboards")
}

/// `(dashboard file, panel title)` rows of a step table, header row left out.
fn panel_rows(step: &cucumber::gherkin::Step) -> Vec<(String, String)> {
    step.table
        .as_ref()
        .map(|t| {
            t.rows
                .iter()
                .skip(1)
                .filter_map(|r| Some((r.first()?.trim().to_string(), r.get(1)?.trim().to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[then(
    expr = "within {int} s every panel query of the provisioned dashboards is accepted and returns data, but for these trouble-only panels, which may be empty while nothing is wrong:"
)]
async fn every_panel(
    w: &mut StepsWorld,
    secs: u64,
    step: &cucumber::gherkin::Step,
) -> anyhow::Result<()> {
    let trouble_only = panel_rows(step);
    let dir = dashboards_dir();
    let queries = panel_queries(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        !queries.is_empty(),
        "no panel queries under {}",
        dir.display()
    );
    let api = w.api().await?;
    let r = eventually(
        "every panel query returns data",
        Duration::from_secs(secs),
        || {
            let (api, queries, trouble_only) = (api.clone(), queries.clone(), trouble_only.clone());
            async move {
                let mut failing = Vec::new();
                let mut last = None;
                for p in &queries {
                    let may_be_empty = trouble_only
                        .iter()
                        .any(|(d, panel)| *d == p.dashboard && *panel == p.panel);
                    match run_panel(&api, p).await {
                        Ok(ex) if ex.ok() && (may_be_empty || has_data(p, &ex)) => {}
                        Ok(ex) => {
                            failing.push(format!(
                                "{} / {} ({}): {}",
                                p.dashboard,
                                p.panel,
                                p.datasource_uid,
                                if ex.ok() { "no data" } else { "refused" }
                            ));
                            last = Some(ex);
                        }
                        Err(e) => failing.push(format!("{} / {}: {e}", p.dashboard, p.panel)),
                    }
                }
                match (failing.is_empty(), last) {
                    (true, _) => Attempt::Pass(Exchange::default()),
                    (false, Some(ex)) => Attempt::not_yet(
                        format!(
                            "{} of {} panels:\n  {}",
                            failing.len(),
                            queries.len(),
                            failing.join("\n  ")
                        ),
                        &ex,
                    ),
                    (false, None) => Attempt::not_yet_bare(failing.join("\n  ")),
                }
            }
        },
    )
    .await;
    w.record(r).map(|_| ())
}

#[then("Grafana lists every dashboard of deploy/ in /api/search")]
async fn grafana_lists(w: &mut StepsWorld) -> anyhow::Result<()> {
    let mut titles = std::collections::BTreeSet::new();
    for file in
        crate::dashboards::dashboard_files(&dashboards_dir()).map_err(|e| anyhow::anyhow!("{e}"))?
    {
        let d = crate::dashboards::read_dashboard(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
        let title = d
            .get("title")
            .and_then(|t| t.as_str())
            .ok_or_else(|| anyhow::anyhow!("{}: no title", file.display()))?;
        titles.insert(title.to_string());
    }
    anyhow::ensure!(
        !titles.is_empty(),
        "no dashboards under {}",
        dashboards_dir().display()
    );
    let api = w.api().await?;
    let ex = api
        .grafana("api/search?type=dash-db")
        .await?
        .ok_or_else(|| anyhow::anyhow!("the stack has no Grafana"))?;
    w.last = Some(ex.clone());
    let listed: Vec<String> = ex
        .json()
        .and_then(|j| j.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.get("title").and_then(|t| t.as_str()).map(str::to_string))
        .collect();
    let missing: Vec<&String> = titles.iter().filter(|t| !listed.contains(t)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "not provisioned in Grafana: {missing:?}\n{ex}"
    );
    Ok(())
}
