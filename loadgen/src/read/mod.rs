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
    /// Send through this Grafana's `/api/ds/query` (`--grafana-url`, `GRAFANA_URL`); `None`:
    /// through the stack's Grafana if it has one, else straight to Loki, Mimir and Tempo.
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
    // A stack with a Grafana (`--stack containers`) is read through it, as a browser would.
    let grafana = cfg.grafana.as_ref().or(endpoints.grafana.as_ref());
    let via = match grafana {
        Some(g) => query::Via::Grafana(g.clone()),
        None => query::Via::Direct(Box::new(endpoints.clone())),
    };
    let recorder = Arc::new(record::QueryRecorder::default());
    let scrape = Arc::new(scrape_intervals());
    viewer::keep_ctrl_c();
    let report = dir.join(GOOSE_REPORT);
    // Goose only shows its host (every request names its whole URL): in its report, which
    // must not quote credentials.
    let host = match &via {
        query::Via::Grafana(g) => wire::redact::url(g.as_str()).into_owned(),
        query::Via::Direct(e) => wire::redact::url(e.prometheus_query.as_str()).into_owned(),
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
        via: match grafana {
            Some(g) => format!("Grafana {} (/api/ds/query)", wire::redact::url(g.as_str())),
            None => "direct (the stack's Loki, Mimir and Tempo APIs)".into(),
        },
        refreshes,
        goose_report: report.exists().then(|| GOOSE_REPORT.to_string()),
        kinds,
        panels,
    })
}

#[cfg(test)]
mod tests {
    //! The viewers through a fake Grafana on 127.0.0.1: what they post to `/api/ds/query` must
    //! be what Grafana's API takes from a browser.

    use std::sync::Arc;

    use axum::Json;
    use axum::extract::State;
    use axum::routing::{get, post};
    use parking_lot::Mutex;
    use serde_json::{Value, json};

    use super::*;

    type Seen = Arc<Mutex<Vec<Value>>>;

    async fn ds_query(State(seen): State<Seen>, Json(body): Json<Value>) -> Json<Value> {
        let ref_id = body["queries"][0]["refId"]
            .as_str()
            .unwrap_or("A")
            .to_string();
        seen.lock().push(body);
        Json(json!({"results": {ref_id: {"status": 200, "frames": []}}}))
    }

    async fn label_values() -> Json<Value> {
        Json(json!({"status": "success", "data": ["dev-0001"]}))
    }

    fn unused() -> Url {
        Url::parse("http://127.0.0.1:9/").expect("url")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_grafana_every_panel_is_posted_as_a_browser_would() {
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route("/api/ds/query", post(ds_query))
            .route(
                "/api/datasources/uid/{uid}/resources/{*path}",
                get(label_values),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let grafana = Url::parse(&format!("http://{addr}/")).expect("url");
        let endpoints = Endpoints {
            loki: unused(),
            prometheus_write: unused(),
            prometheus_query: unused(),
            tempo_otlp_http: unused(),
            tempo_otlp_grpc: None,
            tempo_query: unused(),
            grafana: None,
            tenant: None,
            auth: stack::Auth::None,
            ca_file: None,
        };
        let cfg = ViewersConfig {
            viewers: 4,
            grafana: Some(grafana),
            ..ViewersConfig::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let rp = tokio::time::timeout(
            Duration::from_secs(30),
            run_viewers(&cfg, &endpoints, Duration::from_secs(2), dir.path()),
        )
        .await
        .expect("viewers stop at the run's end")
        .expect("viewers ran");
        server.abort();

        assert_eq!(rp.refreshes, 4, "one refresh per viewer in 2 s: {rp:?}");
        assert_eq!(rp.answered(), rp.queries(), "{rp:?}");
        assert!(rp.via.starts_with("Grafana"), "{}", rp.via);
        for k in [
            "promql_range",
            "logql_range",
            "traceql_search",
            "label_values",
        ] {
            assert!(
                rp.kinds.get(k).is_some_and(|r| r.answered > 0),
                "{k}: {rp:?}"
            );
        }
        assert!(dir.path().join(GOOSE_REPORT).exists(), "goose's report");

        let seen = seen.lock();
        let panels: u64 = rp
            .kinds
            .iter()
            .filter(|(k, _)| *k != "label_values")
            .map(|(_, r)| r.queries)
            .sum();
        assert_eq!(
            seen.len() as u64,
            panels,
            "every panel query went to /api/ds/query"
        );
        for body in seen.iter() {
            let (from, to) = (body["from"].as_str(), body["to"].as_str());
            let (from, to) = (
                from.and_then(|f| f.parse::<u64>().ok())
                    .expect("from: epoch ms as a string"),
                to.and_then(|t| t.parse::<u64>().ok())
                    .expect("to: epoch ms as a string"),
            );
            assert_eq!(to - from, 3_600_000, "the dashboards' now-1h");
            let queries = body["queries"].as_array().expect("queries[]");
            assert_eq!(queries.len(), 1, "{body}");
            let q = &queries[0];
            assert!(q["refId"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
            let ty = q["datasource"]["type"].as_str().expect("datasource.type");
            assert!(
                q["datasource"]["uid"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                "{body}"
            );
            assert!(q["intervalMs"].as_u64().is_some_and(|i| i > 0), "{body}");
            assert!(q["maxDataPoints"].as_u64().is_some_and(|m| m > 0), "{body}");
            let text = match ty {
                "prometheus" | "loki" => q["expr"].as_str(),
                "tempo" => q["query"].as_str(),
                other => panic!("datasource type {other}: {body}"),
            };
            assert!(
                text.is_some_and(|t| !t.is_empty() && !t.contains('$')),
                "{body}"
            );
        }
    }
}
