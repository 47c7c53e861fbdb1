//! The read path under load (`loadgen --viewers N`): N goose users, each a Grafana viewer with a
//! dashboard open, refreshing it while the fleet writes, so a run measures whether dashboards
//! stay usable, not ingest alone.
//!
//! | module | what it holds |
//! |---|---|
//! | [`dashboard`] | dashboards as data: panels, targets, datasources, template variables |
//! | [`grafana`] | Grafana's interval math (`$__interval`, step, `$__rate_interval`) and variable formatting |
//! | `query` | a target as the HTTP request Grafana's datasource sends, direct or through `/api/ds/query` |
//! | `viewer` | the goose scenario: one transaction per refresh |
//! | `record` | latency per query kind and per panel, errors by status |
//!
//! A viewer's panels load one after another (a browser loads several at once), so N viewers
//! keep about N queries in flight.

pub mod dashboard;
pub mod grafana;
mod query;
mod record;
mod viewer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use goose::GooseAttack;
use reports::read_path::ReadPath;
use reqwest::Url;
use stack::Endpoints;

use dashboard::{Dashboard, DashboardError};

/// The goose report's file name in the run folder.
pub const GOOSE_REPORT: &str = "goose-report.html";

/// How long past the run's end the viewers may take to stop (a query in flight at the end).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What `--viewers` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewersConfig {
    /// Goose users, one viewer each.
    pub viewers: usize,
    /// Dashboard files (`--dashboard`); empty: the four under `deploy/grafana/dashboards`.
    pub dashboards: Vec<PathBuf>,
    /// Refresh every this long instead of each dashboard's `refresh` (`--viewer-refresh`).
    pub refresh: Option<Duration>,
    /// Up to this much more between refreshes, at random (a viewer reading the panels).
    pub think: Duration,
    /// Send through this Grafana's `/api/ds/query` (`--grafana-url`, `GRAFANA_URL`).
    pub grafana: Option<Url>,
}

impl Default for ViewersConfig {
    fn default() -> Self {
        ViewersConfig {
            viewers: 0,
            dashboards: Vec::new(),
            refresh: None,
            think: Duration::from_secs(2),
            grafana: None,
        }
    }
}

/// Why the viewers could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Dashboard(#[from] DashboardError),
    #[error("no dashboard to open: {0}")]
    NoDashboards(String),
    #[error("goose: {0}")]
    Goose(String),
}

/// The scrape interval Grafana assumes per datasource uid: the provisioning file's
/// `jsonData.timeInterval` (Mimir: 15 s).
fn scrape_intervals() -> Vec<(String, u64)> {
    let file = dashboard::deploy_dir().join("grafana/provisioning/datasources/datasources.yaml");
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    doc["datasources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let uid = d["uid"].as_str()?;
            let ms = grafana::interval_to_ms(d.pointer("/jsonData/timeInterval")?.as_str()?)?;
            Some((uid.to_string(), ms))
        })
        .collect()
}

/// Loads the dashboards a run's viewers open.
pub fn load_dashboards(cfg: &ViewersConfig) -> Result<Vec<Dashboard>, ReadError> {
    let files = if cfg.dashboards.is_empty() {
        dashboard::dashboard_files(&dashboard::deploy_dir().join("grafana/dashboards"))?
    } else {
        cfg.dashboards.clone()
    };
    let dashboards = files
        .iter()
        .map(|f| Dashboard::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    if dashboards.iter().all(|d| d.panels.is_empty()) {
        return Err(ReadError::NoDashboards(format!(
            "none of {} dashboards has a panel with a query",
            dashboards.len()
        )));
    }
    Ok(dashboards)
}

/// Runs the viewers against `endpoints` (or the configured Grafana) for `run_time`, writing
/// goose's report into `dir`; what they measured.
pub async fn run_viewers(
    cfg: &ViewersConfig,
    endpoints: &Endpoints,
    run_time: Duration,
    dir: &Path,
) -> Result<ReadPath, ReadError> {
    let dashboards = load_dashboards(cfg)?;
    let via = match &cfg.grafana {
        Some(g) => query::Via::Grafana(g.clone()),
        None => query::Via::Direct(Box::new(endpoints.clone())),
    };
    let recorder = Arc::new(record::QueryRecorder::default());
    let scrape = Arc::new(scrape_intervals());
    viewer::keep_ctrl_c();
    let report = dir.join(GOOSE_REPORT);
    let host = match &via {
        query::Via::Grafana(g) => g.to_string(),
        query::Via::Direct(e) => e.prometheus_query.to_string(),
    };
    let config = viewer::configuration(cfg.viewers, run_time, &host, Some(&report));
    let mut attack =
        GooseAttack::initialize_with_config(config).map_err(|e| ReadError::Goose(e.to_string()))?;
    let deadline = std::time::Instant::now() + run_time;
    let names: Vec<String> = dashboards.iter().map(|d| d.name.clone()).collect();
    for (index, d) in dashboards.into_iter().enumerate() {
        let refresh = cfg
            .refresh
            .or_else(|| {
                d.refresh
                    .as_deref()
                    .and_then(grafana::interval_to_ms)
                    .map(Duration::from_millis)
            })
            .unwrap_or(Duration::from_secs(30));
        let shared = Arc::new(viewer::Shared {
            index,
            deadline,
            dashboard: d,
            via: via.clone(),
            recorder: recorder.clone(),
            scrape: scrape.clone(),
        });
        let s = viewer::scenario(shared, (refresh, refresh + cfg.think))
            .map_err(|e| ReadError::Goose(e.to_string()))?;
        attack = attack.register_scenario(s);
    }
    // Goose stops its users after run_time and each stops sending at the deadline; the
    // backstop covers a query still in flight then, so viewers never hold up the run's drain
    // for longer than this grace.
    match tokio::time::timeout(run_time + STOP_GRACE, attack.execute()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "goose ended with an error"),
        Err(_) => tracing::warn!(
            grace_s = STOP_GRACE.as_secs(),
            "viewers still busy after the run's end: stopped without goose's report"
        ),
    }
    let (kinds, panels, refreshes) = recorder.report();
    Ok(ReadPath {
        viewers: cfg.viewers as u64,
        dashboards: names,
        via: match &cfg.grafana {
            Some(g) => format!("Grafana {g} (/api/ds/query)"),
            None => "direct (the stack's Loki, Mimir and Tempo APIs)".into(),
        },
        refreshes,
        goose_report: report.exists().then(|| GOOSE_REPORT.to_string()),
        kinds,
        panels,
    })
}
