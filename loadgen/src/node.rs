//! One emulated device as a long-running process, the way a store node runs its exporter:
//! `loadgen node` serves the device's `/metrics`, appends its log lines to
//! `<log dir>/<device>.log`, and (POS terminals) sends each checkout's trace over OTLP/HTTP.
//!
//! Its `/metrics` carries the device's own labels (interface, lane, ...) but not the node's
//! metadata ([`NODE_LABELS`]): the agent adds those, as Alloy's relabelling does.
//!
//! This is the exporter half of a node in `docker-compose.yaml` (the other half is the
//! collector's `node-agent.toml`, which scrapes this exporter, tails the file and stamps the
//! node's labels) and of the fleet scenarios. Identity comes from the same environment
//! variables the node agent reads (`NODE_TYPE`, `DEVICE`, `REGION`, `LOCATION`, `BRAND`,
//! `PROBLEM_MODE`), so one `docker compose run -e ...` sets both.
//!
//! Log lines and checkouts arrive as Poisson processes at the device type's nominal rates
//! ([`crate::generate::Rates`]); metrics advance on each scrape by the time since the last one.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use prost::Message;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};
use reqwest::Url;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::fleet::{Device, DeviceType};
use crate::generate::DeviceSignals;
use wire::time::now_ns;

/// What goes wrong starting a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An environment variable with a value the node cannot use.
    #[error("{var}={value:?}: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("log file {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OTLP URL {url}: {reason}")]
    Otlp { url: String, reason: String },
}

/// Who the node is: the labels its agent stamps on everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    pub device_type: DeviceType,
    pub device: String,
    pub region: String,
    pub location: String,
    pub brand: String,
    pub problem: bool,
}

impl NodeIdentity {
    /// Reads `NODE_TYPE` (or `DEVICE_TYPE`; default `server`), `DEVICE` (default
    /// `<type>-<location>`), `REGION` (default `region1`), `LOCATION` (default `store-1`),
    /// `BRAND` (default `generic`) and `PROBLEM_MODE` (`healthy` or `problem`; default healthy),
    /// the variables of the collector's `node-agent.toml`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<NodeIdentity, NodeError> {
        let get = |name: &str, default: &str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let (type_var, type_value) = match var("NODE_TYPE").filter(|v| !v.trim().is_empty()) {
            Some(v) => ("NODE_TYPE", v),
            None => ("DEVICE_TYPE", get("DEVICE_TYPE", "server")),
        };
        let device_type = DeviceType::ALL
            .into_iter()
            .find(|t| t.as_str() == type_value.trim())
            .ok_or(NodeError::Env {
                var: type_var,
                value: type_value.clone(),
                reason: "expected server, pos, router, switch or custom",
            })?;
        let problem = match get("PROBLEM_MODE", "healthy").trim() {
            "healthy" => false,
            "problem" => true,
            other => {
                return Err(NodeError::Env {
                    var: "PROBLEM_MODE",
                    value: other.to_string(),
                    reason: "expected healthy or problem",
                });
            }
        };
        let location = get("LOCATION", "store-1");
        Ok(NodeIdentity {
            device: get(
                "DEVICE",
                &format!("{}-{}", device_type.as_str(), location.trim()),
            ),
            device_type,
            region: get("REGION", "region1"),
            location,
            brand: get("BRAND", "generic"),
            problem,
        })
    }

    /// The device the generators emulate. Its index (which seeds its random streams) is a hash
    /// of the device name, so a node's data depends on its name and the seed only.
    pub fn device(&self) -> Device {
        Device {
            index: fnv1a(self.device.as_bytes()),
            id: self.device.clone(),
            device_type: self.device_type,
            region: self.region.clone(),
            location: self.location.clone(),
            brand: self.brand.clone(),
            problem: self.problem,
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where the node serves and writes.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Address of `/metrics` (port 0: any free port).
    pub listen: SocketAddr,
    /// Log lines go to `<log_dir>/<device>.log`; `None`: no log file.
    pub log_dir: Option<PathBuf>,
    /// OTLP/HTTP base URL for checkout traces (`/v1/traces` appended); `None`: no traces.
    pub otlp: Option<Url>,
    pub seed: u64,
    /// Multiplies the nominal log and checkout rates (tests use large values to see data soon).
    pub rate_multiplier: f64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
            log_dir: Some(PathBuf::from("/var/log/retail")),
            otlp: None,
            seed: 42,
            rate_multiplier: 1.0,
        }
    }
}

/// Counters of what a node has emitted.
#[derive(Debug, Default)]
pub struct NodeStats {
    pub scrapes: std::sync::atomic::AtomicU64,
    pub log_lines: std::sync::atomic::AtomicU64,
    pub traces_sent: std::sync::atomic::AtomicU64,
    pub trace_errors: std::sync::atomic::AtomicU64,
}

struct Shared {
    signals: Mutex<DeviceSignals>,
    log: Option<Mutex<std::fs::File>>,
    stats: NodeStats,
}

/// A running node; [`Node::stop`] ends it.
pub struct Node {
    identity: NodeIdentity,
    metrics_addr: SocketAddr,
    log_path: Option<PathBuf>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Node {
    /// Binds `/metrics`, opens the log file and starts emitting.
    pub async fn start(identity: NodeIdentity, opts: NodeOptions) -> Result<Node, NodeError> {
        let device = identity.device();
        let log_path = opts
            .log_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.log", identity.device)));
        let log = match &log_path {
            Some(path) => Some(Mutex::new(open_log(path)?)),
            None => None,
        };
        let traces_url = match &opts.otlp {
            Some(base) => Some(otlp_traces_url(base)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| NodeError::Listen {
                addr: opts.listen,
                source,
            })?;
        let metrics_addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: opts.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            signals: Mutex::new(DeviceSignals::new(&device, opts.seed)),
            log,
            stats: NodeStats::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let app = Router::new()
            .route("/metrics", get(serve_metrics))
            .route("/", get(|| async { "loadgen node: see /metrics\n" }))
            .with_state(shared.clone());
        let mut until = stopped.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = until.wait_for(|s| *s).await;
            });
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "node /metrics server stopped");
            }
        });

        let rates = shared.signals.lock().rates();
        let mult = opts.rate_multiplier.max(0.0);
        let rng_seed = opts.seed ^ device.index;
        if rates.logs_per_s * mult > 0.0 {
            tasks.spawn(emit_logs(
                shared.clone(),
                rates.logs_per_s * mult,
                StdRng::seed_from_u64(rng_seed ^ 1),
                stopped.clone(),
            ));
        }
        if rates.checkouts_per_s * mult > 0.0 {
            tasks.spawn(emit_checkouts(
                shared.clone(),
                rates.checkouts_per_s * mult,
                StdRng::seed_from_u64(rng_seed ^ 2),
                traces_url,
                stopped,
            ));
        }
        tracing::info!(device = %identity.device, node_type = identity.device_type.as_str(),
            metrics = %metrics_addr, log = ?log_path, "node started");
        Ok(Node {
            identity,
            metrics_addr,
            log_path,
            shared,
            stop,
            tasks,
        })
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The log file, when there is one.
    pub fn log_path(&self) -> Option<&Path> {
        self.log_path.as_deref()
    }

    pub fn stats(&self) -> &NodeStats {
        &self.shared.stats
    }

    /// Stops emitting and serving, and waits for the tasks to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, NodeError> {
    let err = |source| NodeError::Log {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)
}

fn otlp_traces_url(base: &Url) -> Result<Url, NodeError> {
    let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
    let mut url = base.clone();
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(NodeError::Otlp {
            url: wire::redact::url(base.as_str()).into_owned(),
            reason: "expected an http(s) base URL, e.g. http://127.0.0.1:4318".into(),
        });
    }
    url.set_path(&path);
    Ok(url)
}

/// The labels a node's agent adds from its environment; like a real exporter, the node's
/// `/metrics` leaves them out (an agent that forgets them shows it).
pub const NODE_LABELS: [&str; 6] = [
    "region",
    "location",
    "node_type",
    "device",
    "brand",
    "problem_mode",
];

async fn serve_metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut scrape = shared.signals.lock().scrape(now_ns() / 1_000_000, None);
    for family in &mut scrape.families {
        for sample in &mut family.samples {
            sample
                .labels
                .retain(|(k, _)| !NODE_LABELS.contains(&k.as_str()));
        }
    }
    let text = scrape.text();
    shared
        .stats
        .scrapes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Appends one line to the log file; a failed write is logged (the disk of a store node fills
/// up too) and the node goes on.
fn write_line(shared: &Shared, line: &str) {
    let Some(log) = &shared.log else { return };
    let mut f = log.lock();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    match f.write_all(&buf) {
        Ok(()) => {
            shared
                .stats
                .log_lines
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => tracing::warn!(error = %e, "node log write failed"),
    }
}

/// Waits an exponential gap of mean `1/rate`, or returns false when the node stops.
async fn next_arrival(rng: &mut StdRng, rate: f64, stopped: &mut watch::Receiver<bool>) -> bool {
    let gap = Exp::new(rate).map_or(1.0, |d| d.sample(rng)).min(3600.0);
    let slept = tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs_f64(gap)) => true,
        _ = stopped.wait_for(|s| *s) => false,
    };
    slept && !*stopped.borrow()
}

async fn emit_logs(
    shared: Arc<Shared>,
    rate: f64,
    mut rng: StdRng,
    mut stopped: watch::Receiver<bool>,
) {
    while next_arrival(&mut rng, rate, &mut stopped).await {
        let entry = shared.signals.lock().log_line(now_ns(), None);
        write_line(&shared, &entry.line);
    }
}

async fn emit_checkouts(
    shared: Arc<Shared>,
    rate: f64,
    mut rng: StdRng,
    traces_url: Option<Url>,
    mut stopped: watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .ok();
    while next_arrival(&mut rng, rate, &mut stopped).await {
        let Some(checkout) = shared.signals.lock().checkout(now_ns(), None, None) else {
            return;
        };
        write_line(&shared, &checkout.log.line);
        let (Some(url), Some(client)) = (&traces_url, &client) else {
            continue;
        };
        let body = wire::otlp::ExportTraceServiceRequest {
            resource_spans: checkout.resource_spans,
        }
        .encode_to_vec();
        let sent = client
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await;
        let shown = || wire::redact::url(url.as_str()).into_owned();
        let counter = match sent {
            Ok(resp) if resp.status().is_success() => &shared.stats.traces_sent,
            Ok(resp) => {
                tracing::warn!(status = %resp.status(), url = %shown(), "trace export refused");
                &shared.stats.trace_errors
            }
            Err(e) => {
                let error = wire::redact::text(&e.to_string()).into_owned();
                tracing::warn!(%error, url = %shown(), "trace export failed");
                &shared.stats.trace_errors
            }
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn identity_from_env_with_defaults() {
        let id = NodeIdentity::from_env(env(&[
            ("NODE_TYPE", "pos"),
            ("REGION", "region3"),
            ("LOCATION", "store-3"),
        ]))
        .unwrap();
        assert_eq!(id.device_type, DeviceType::Pos);
        assert_eq!(id.device, "pos-store-3");
        assert_eq!(id.brand, "generic");
        assert!(!id.problem);
        let router = NodeIdentity::from_env(env(&[
            ("DEVICE_TYPE", "router"),
            ("DEVICE", "router-99"),
            ("PROBLEM_MODE", "problem"),
        ]))
        .unwrap();
        assert_eq!(router.device_type, DeviceType::Router);
        assert_eq!(router.device, "router-99");
        assert!(router.problem);
    }

    #[test]
    fn bad_env_is_named() {
        let e = NodeIdentity::from_env(env(&[("NODE_TYPE", "toaster")])).unwrap_err();
        assert!(e.to_string().contains("NODE_TYPE=\"toaster\""), "{e}");
        let e = NodeIdentity::from_env(env(&[("PROBLEM_MODE", "broken")])).unwrap_err();
        assert!(e.to_string().contains("PROBLEM_MODE"), "{e}");
    }

    #[test]
    fn device_depends_on_name_only() {
        let a = NodeIdentity::from_env(env(&[("DEVICE", "pos-1")])).unwrap();
        let b = NodeIdentity::from_env(env(&[("DEVICE", "pos-1"), ("BRAND", "x")])).unwrap();
        let c = NodeIdentity::from_env(env(&[("DEVICE", "pos-2")])).unwrap();
        assert_eq!(a.device().index, b.device().index);
        assert_ne!(a.device().index, c.device().index);
    }

    #[test]
    fn otlp_url_gets_the_traces_path() {
        let u = otlp_traces_url(&Url::parse("http://127.0.0.1:4318").unwrap()).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:4318/v1/traces");
        let u = otlp_traces_url(&Url::parse("http://h:1/otlp/").unwrap()).unwrap();
        assert_eq!(u.path(), "/otlp/v1/traces");
        assert!(otlp_traces_url(&Url::parse("unix:/x").unwrap()).is_err());
    }
}
