//! An emulated store device, as a node's exporter and applications look to its agent:
//! [`loadgen::node`] (a `/metrics` endpoint with the device type's metrics, a log file the
//! device keeps appending to in its type's format, POS checkout traces over OTLP), started from
//! the identity a scenario gives.
//!
//! Like a real exporter, the exposition carries no node metadata: the node agent adds region,
//! location, node_type, device, brand and problem_mode from its environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use loadgen::fleet::Device;

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

    /// The identity `loadgen node` reads from that environment.
    fn to_loadgen(&self) -> Result<loadgen::node::NodeIdentity, NodeError> {
        let env = self.env();
        loadgen::node::NodeIdentity::from_env(|k| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
    }
}

pub use loadgen::node::NodeError;

/// Where the device serves and writes.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Address of `/metrics` (default: 127.0.0.1, any free port).
    pub listen: Option<SocketAddr>,
    /// Where the device's log file (`<device>.log`) goes; `None`: no logs.
    pub log_dir: Option<PathBuf>,
    /// OTLP/HTTP base URL for POS checkout traces.
    pub otlp: Option<url::Url>,
}

/// Scenarios wait seconds, not minutes: every device writes a few log lines a second
/// (20 times its type's nominal rate).
const RATE: f64 = 20.0;

/// A running device.
pub struct Node {
    identity: NodeIdentity,
    inner: loadgen::node::Node,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("identity", &self.identity)
            .field("metrics_addr", &self.inner.metrics_addr())
            .finish()
    }
}

impl Node {
    pub async fn start(identity: NodeIdentity, opts: NodeOptions) -> Result<Node, NodeError> {
        let inner = loadgen::node::Node::start(
            identity.to_loadgen()?,
            loadgen::node::NodeOptions {
                listen: opts
                    .listen
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                log_dir: opts.log_dir,
                otlp: opts.otlp,
                seed: 1,
                rate_multiplier: RATE,
            },
        )
        .await?;
        Ok(Node { identity, inner })
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.inner.metrics_addr()
    }

    /// The file the device appends to.
    pub fn log_path(&self) -> Option<&Path> {
        self.inner.log_path()
    }

    /// Stops serving and writing.
    pub async fn stop(self) {
        self.inner.stop().await;
    }
}

/// The identity as a loadgen device, to drive loadgen's generators (checkouts, log lines).
pub fn loadgen_device(id: &NodeIdentity) -> Result<Device, NodeError> {
    Ok(id.to_loadgen()?.device())
}
