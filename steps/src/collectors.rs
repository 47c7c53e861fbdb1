//! The collectors a scenario runs, in this process, on port 0: the shipped node-agent template
//! (`collector/examples/node-agent.toml`, parsed with the node's environment), a gateway
//! (Loki push, remote write and OTLP in; Loki, Mimir and Tempo out) and whatever a scenario
//! writes itself. Writers point at the stack under test (or a proxy in front of it), with its
//! tenant and credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use collector::config::Config;
use collector::runtime::Collector;
use collector::selfmon::Registry;
use stack::{Auth, Endpoints};

/// The template every node agent starts from.
pub fn node_agent_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../collector/examples/node-agent.toml")
}

/// The template's scrape interval, and what scenarios use instead (nobody waits 15 s here).
const TEMPLATE_INTERVAL: &str = "scrape_interval = \"15s\"";
const SCENARIO_INTERVAL: &str = "scrape_interval = \"1s\"";

/// Why a scenario collector is not running.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} no longer says {TEMPLATE_INTERVAL}: update collectors.rs")]
    Template { path: String },
    #[error("config {file}: {reason}\n--- config ---\n{text}")]
    Config {
        file: String,
        reason: String,
        text: String,
    },
    #[error("collector {name} did not start: {reason}")]
    Start { name: String, reason: String },
    #[error("collector {name}: component {component} never listened")]
    NotListening { name: String, component: String },
}

/// A collector of a scenario: its config, environment and data dir, so it can be restarted.
pub struct ScenarioCollector {
    pub name: String,
    pub file: String,
    pub text: String,
    pub env: BTreeMap<String, String>,
    running: Option<Collector>,
    /// The registry of the last run, readable after a stop.
    registry: Option<Arc<Registry>>,
}

impl std::fmt::Debug for ScenarioCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioCollector")
            .field("name", &self.name)
            .field("running", &self.running.is_some())
            .finish()
    }
}

/// TOML keys giving a writer the stack's tenant and credentials.
pub fn writer_auth(e: &Endpoints) -> String {
    let mut s = String::new();
    if let Some(t) = &e.tenant {
        s.push_str(&format!("tenant_id = {}\n", toml_str(t)));
    }
    match &e.auth {
        Auth::None => {}
        Auth::Basic { username, password } => s.push_str(&format!(
            "basic_auth = {{ username = {}, password = {} }}\n",
            toml_str(username),
            toml_str(password)
        )),
        Auth::Bearer(t) => s.push_str(&format!("bearer_token = {}\n", toml_str(t))),
    }
    if let Some(ca) = &e.ca_file {
        s.push_str(&format!(
            "tls = {{ ca_file = {} }}\n",
            toml_str(&ca.display().to_string())
        ));
    }
    s
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Loki's base URL without the trailing slash (`${LOKI_URL}/loki/api/v1/push`).
pub fn loki_base(e: &Endpoints) -> String {
    e.loki.as_str().trim_end_matches('/').to_string()
}

/// Writers to the stack, fast to batch and to retry (scenarios wait seconds, not minutes).
/// `loki_push_url` overrides Loki's push URL (a proxy in front of it).
pub fn writers_toml(
    e: &Endpoints,
    loki_inputs: &[&str],
    mimir_inputs: &[&str],
    tempo_inputs: &[&str],
    loki_push_url: Option<&str>,
) -> String {
    let auth = writer_auth(e);
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| toml_str(x))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tuning = "batch_wait = \"200ms\"\nmin_backoff = \"100ms\"\nmax_backoff = \"1s\"\ndrain_timeout = \"10s\"\n";
    let mut s = String::new();
    if !loki_inputs.is_empty() {
        let url = loki_push_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/loki/api/v1/push", loki_base(e)));
        s.push_str(&format!(
            "[writers.loki]\ntype = \"loki\"\ninputs = [{}]\nurl = {}\n{tuning}{auth}\n",
            list(loki_inputs),
            toml_str(&url)
        ));
    }
    if !mimir_inputs.is_empty() {
        s.push_str(&format!(
            "[writers.mimir]\ntype = \"prometheus_remote_write\"\ninputs = [{}]\nurl = {}\n{tuning}{auth}\n",
            list(mimir_inputs),
            toml_str(e.prometheus_write.as_str())
        ));
    }
    if !tempo_inputs.is_empty() {
        s.push_str(&format!(
            "[writers.tempo]\ntype = \"otlp\"\nprotocol = \"http\"\ninputs = [{}]\nurl = {}\n{tuning}{auth}\n",
            list(tempo_inputs),
            toml_str(e.tempo_otlp_http.as_str().trim_end_matches('/'))
        ));
    }
    s
}

/// A gateway: `loki_in` (Loki push), `rw_in` (remote write), `otlp_in` (OTLP/HTTP) to the stack.
pub fn gateway_toml(data_dir: &Path, e: &Endpoints, loki_push_url: Option<&str>) -> String {
    gateway_toml_with(data_dir, e, loki_push_url, "")
}

/// [`gateway_toml`] with `door` (TOML lines: `tls = ...`, `auth = ...`) on each receiver.
pub fn gateway_toml_with(
    data_dir: &Path,
    e: &Endpoints,
    loki_push_url: Option<&str>,
    door: &str,
) -> String {
    format!(
        "data_dir = {dir}\n[server]\naddress = \"127.0.0.1:0\"\n\n\
         [sources.loki_in]\ntype = \"loki_push\"\naddress = \"127.0.0.1:0\"\nuse_incoming_timestamp = true\n{door}\n\
         [sources.rw_in]\ntype = \"remote_write\"\naddress = \"127.0.0.1:0\"\n{door}\n\
         [sources.otlp_in]\ntype = \"otlp\"\nhttp_address = \"127.0.0.1:0\"\ngrpc_enabled = false\n{door}\n{writers}",
        dir = toml_str(&data_dir.display().to_string()),
        writers = writers_toml(
            e,
            &["loki_in", "otlp_in"],
            &["rw_in", "otlp_in"],
            &["otlp_in"],
            loki_push_url
        ),
    )
}

/// The node-agent template's text, with the scenario scrape interval.
pub fn node_agent_text() -> Result<(String, String), CollectorError> {
    let path = node_agent_template();
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| CollectorError::Read {
        path: shown.clone(),
        source,
    })?;
    if !text.contains(TEMPLATE_INTERVAL) {
        return Err(CollectorError::Template { path: shown });
    }
    Ok((text.replace(TEMPLATE_INTERVAL, SCENARIO_INTERVAL), shown))
}

impl ScenarioCollector {
    /// Parses `text` with `env` (the only environment it sees) and starts it.
    pub async fn start(
        name: &str,
        file: &str,
        text: String,
        env: BTreeMap<String, String>,
    ) -> Result<ScenarioCollector, CollectorError> {
        let mut c = ScenarioCollector {
            name: name.to_string(),
            file: file.to_string(),
            text,
            env,
            running: None,
            registry: None,
        };
        c.run().await?;
        Ok(c)
    }

    async fn run(&mut self) -> Result<(), CollectorError> {
        let env = self.env.clone();
        let lookup = move |k: &str| env.get(k).cloned();
        let cfg =
            Config::parse(&self.text, &self.file, &lookup).map_err(|e| CollectorError::Config {
                file: self.file.clone(),
                reason: e.to_string(),
                text: self.text.clone(),
            })?;
        let c = Collector::start(&cfg)
            .await
            .map_err(|e| CollectorError::Start {
                name: self.name.clone(),
                reason: e.to_string(),
            })?;
        self.registry = Some(c.registry().clone());
        self.running = Some(c);
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The address a source listens on (`component`, or `component.grpc`).
    pub async fn listen_addr(&self, component: &str) -> Result<SocketAddr, CollectorError> {
        let not = || CollectorError::NotListening {
            name: self.name.clone(),
            component: component.to_string(),
        };
        let c = self.running.as_ref().ok_or_else(not)?;
        c.listen_addrs()
            .wait_for(component, Duration::from_secs(10))
            .await
            .ok_or_else(not)
    }

    /// The self-monitoring server (`/metrics`).
    pub fn server_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(Collector::server_addr)
    }

    /// Self-metrics as the last run left them (also after a stop).
    pub fn final_metrics(&self) -> Option<String> {
        self.registry.as_ref().map(|r| r.render())
    }

    /// Stops it: sources save their positions, writers drain.
    pub async fn stop(&mut self) {
        if let Some(c) = self.running.take() {
            c.shutdown().await;
        }
    }

    /// Kills it as `kill -9` would (nothing drained or saved: [`Collector::crash`]) and
    /// starts it again with the same config and data dir.
    pub async fn crash_and_restart(&mut self) -> Result<(), CollectorError> {
        if let Some(c) = self.running.take() {
            c.crash();
        }
        self.run().await
    }

    /// Stops and starts it again with the same config and data dir.
    pub async fn restart(&mut self) -> Result<(), CollectorError> {
        self.stop().await;
        self.run().await
    }
}
