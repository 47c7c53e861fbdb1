//! An emulated store device, as a node's exporter and applications look to its agent: a
//! `/metrics` endpoint with the device type's metrics (from loadgen's generators) and a log file
//! the device keeps appending lines to in its type's format.
//!
//! Like a real exporter, the exposition carries no node metadata: the node agent adds region,
//! location, node_type, device, brand and problem_mode from its environment.
//!
//! The shape follows the planned `loadgen::node` (`Node::start(NodeIdentity, NodeOptions)`,
//! `metrics_addr()`, `stop()`); once that lands, this module becomes a re-export.
// TODO(lead): replace with `pub use loadgen::node::{Node, NodeIdentity, NodeOptions};` when
// loadgen/src/node.rs is on main.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loadgen::fleet::{Device, DeviceType};
use loadgen::generate::DeviceSignals;
use parking_lot::Mutex;

/// The node metadata an agent gets from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_type: String,
    pub region: String,
    pub location: String,
    pub device: String,
    pub brand: String,
    /// `healthy` or `problem`.
    pub problem_mode: String,
}

impl NodeIdentity {
    /// The six labels, as `(name, value)`.
    pub fn labels(&self) -> [(&'static str, &str); 6] {
        [
            ("region", &self.region),
            ("location", &self.location),
            ("node_type", &self.node_type),
            ("device", &self.device),
            ("brand", &self.brand),
            ("problem_mode", &self.problem_mode),
        ]
    }

    /// The environment of a node agent started from the template.
    pub fn env(&self) -> [(&'static str, &str); 6] {
        [
            ("REGION", &self.region),
            ("LOCATION", &self.location),
            ("NODE_TYPE", &self.node_type),
            ("DEVICE", &self.device),
            ("BRAND", &self.brand),
            ("PROBLEM_MODE", &self.problem_mode),
        ]
    }
}

/// Where the device serves and writes.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Address of `/metrics` (port 0 picks one).
    pub listen: Option<SocketAddr>,
    /// Where the device's log file (`<device>.log`) goes; `None`: no logs.
    pub log_dir: Option<PathBuf>,
    /// OTLP/HTTP base URL for traces (not used by this emulation yet).
    pub otlp: Option<url::Url>,
}

/// Why a device cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node_type {0:?}: expected server, pos, router, switch or custom")]
    NodeType(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("log file {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
}

/// A running device.
pub struct Node {
    identity: NodeIdentity,
    metrics_addr: SocketAddr,
    log_path: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("identity", &self.identity)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

/// How often the device writes a log line.
const LOG_EVERY: Duration = Duration::from_millis(200);

/// The identity as a loadgen device (the index, which seeds its generators, from the name).
fn device(id: &NodeIdentity) -> Result<Device, NodeError> {
    let device_type = DeviceType::ALL
        .into_iter()
        .find(|t| t.as_str() == id.node_type)
        .ok_or_else(|| NodeError::NodeType(id.node_type.clone()))?;
    let index = id
        .device
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    Ok(Device {
        index,
        id: id.device.clone(),
        device_type,
        region: id.region.clone(),
        location: id.location.clone(),
        brand: id.brand.clone(),
        problem: id.problem_mode == "problem",
    })
}

impl Node {
    pub async fn start(identity: NodeIdentity, opts: NodeOptions) -> Result<Node, NodeError> {
        let dev = device(&identity)?;
        let signals = Arc::new(Mutex::new(DeviceSignals::new(&dev, 1)));
        let addr = opts
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Listen { addr, source })?;
        let metrics_addr = listener
            .local_addr()
            .map_err(|source| NodeError::Listen { addr, source })?;
        let served = signals.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let s = served.clone();
                async move { exposition(&s) }
            }),
        );
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })];
        let mut log_path = None;
        if let Some(dir) = &opts.log_dir {
            let path = dir.join(format!("{}.log", identity.device));
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| NodeError::Log {
                    path: path.display().to_string(),
                    source,
                })?;
            let s = signals.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(LOG_EVERY);
                loop {
                    tick.tick().await;
                    let now = crate::query::now_ns();
                    let line = s.lock().log_line(now, None).line;
                    if writeln!(file, "{line}")
                        .and_then(|()| file.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            }));
            log_path = Some(path);
        }
        Ok(Node {
            identity,
            metrics_addr,
            log_path,
            tasks,
        })
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The file the device appends to.
    pub fn log_path(&self) -> Option<&PathBuf> {
        self.log_path.as_ref()
    }

    /// Stops serving and writing.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// One scrape, without the node labels (the agent adds them).
fn exposition(signals: &Mutex<DeviceSignals>) -> String {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut scrape = signals.lock().scrape(now_ms, None);
    const NODE_LABELS: [&str; 6] = [
        "region",
        "location",
        "node_type",
        "device",
        "brand",
        "problem_mode",
    ];
    for family in &mut scrape.families {
        for sample in &mut family.samples {
            sample
                .labels
                .retain(|(k, _)| !NODE_LABELS.contains(&k.as_str()));
        }
    }
    scrape.text()
}

/// The identity as a loadgen device, to drive loadgen's generators (checkouts, log lines).
pub fn loadgen_device(id: &NodeIdentity) -> Result<Device, NodeError> {
    device(id)
}
