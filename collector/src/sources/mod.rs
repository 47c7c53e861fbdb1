//! Sources: where data enters the collector. One module per kind; each exposes a config struct
//! (serde, unknown keys refused) and a `build` that turns it into a [`Source`].
//!
//! | type | module | signals |
//! |---|---|---|
//! | `otlp` | [`otlp`] | logs, metrics, traces (OTLP/HTTP and OTLP/gRPC receiver) |
//! | `loki_push` | [`loki_push`] | logs (Loki push API receiver) |
//! | `remote_write` | [`remote_write`] | metrics (Prometheus remote write 1.0 receiver) |
//! | `prometheus_scrape` | [`prometheus_scrape`] | metrics: scrapes exporters (static targets, file_sd), relabeling |
//! | `file` | [`file`] | logs: tails files matched by globs, follows rotation, positions file |
//! | `docker` | [`docker`] | logs: container logs from the Docker Engine API, positions file |
//!
//! The network receivers share their HTTP plumbing (listener, graceful shutdown, bounded body,
//! `gzip`, 429 on a full downstream) in [`http_common`], and bound what converting a decoded
//! request takes with [`converted`]; the tailing sources share the positions
//! file and UTF-8 decoding in [`tailing`].

pub mod converted;
pub mod docker;
pub mod file;
pub mod http_common;
pub mod loki_push;
pub mod otlp;
pub mod prometheus_scrape;
pub mod remote_write;
pub mod tailing;

use std::path::PathBuf;

use tokio::sync::watch;

use crate::BoxFuture;
use crate::event::{LogBatch, MetricBatch, Signal, TraceBatch};
use crate::output::Output;
use crate::selfmon::ComponentMetrics;

/// Where a source's batches go, one output per signal (unconnected outputs count a discard).
#[derive(Clone)]
pub struct Outputs {
    pub logs: Output<LogBatch>,
    pub metrics: Output<MetricBatch>,
    pub traces: Output<TraceBatch>,
}

/// What a running source is given.
pub struct SourceContext {
    /// The component's name in the config.
    pub name: String,
    pub outputs: Outputs,
    /// Turns true when the collector stops: stop reading, flush, save positions, return.
    pub shutdown: watch::Receiver<bool>,
    pub metrics: ComponentMetrics,
    /// A directory of the collector's for state such as positions files.
    pub data_dir: PathBuf,
    /// Where a listening source records the address it bound (port 0 picks a free one).
    pub listen_addrs: ListenAddrs,
    /// Set once the source has taken its starting point (see [`Source::reports_start`]).
    pub started: Started,
}

/// A source's signal that it has taken its starting point — the file source: its first poll,
/// which fixes where `start_at = "end"` begins — so that `Collector::start` returns, and
/// `/-/ready` answers 200, only after it: a line written once the collector is ready is read.
#[derive(Clone, Debug)]
pub struct Started(std::sync::Arc<watch::Sender<bool>>);

impl Started {
    /// A signal not yet given, and what waits for it.
    pub fn new() -> (Started, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (Started(std::sync::Arc::new(tx)), rx)
    }

    /// The source has taken its starting point.
    pub fn done(&self) {
        self.0.send_replace(true);
    }
}

/// The addresses listening sources bound, by `component` or `component.what` (e.g.
/// `otlp_in.grpc`), so tests and loadgen can use ephemeral ports.
#[derive(Clone, Default, Debug)]
pub struct ListenAddrs(
    std::sync::Arc<parking_lot::Mutex<std::collections::BTreeMap<String, std::net::SocketAddr>>>,
);

impl ListenAddrs {
    pub fn record(&self, key: impl Into<String>, addr: std::net::SocketAddr) {
        self.0.lock().insert(key.into(), addr);
    }
    pub fn get(&self, key: &str) -> Option<std::net::SocketAddr> {
        self.0.lock().get(key).copied()
    }
    pub fn all(&self) -> std::collections::BTreeMap<String, std::net::SocketAddr> {
        self.0.lock().clone()
    }

    /// Waits (at most `timeout`) until `key` is recorded: sources bind in their own task, so
    /// right after a collector starts a listener may not be up yet.
    pub async fn wait_for(
        &self,
        key: &str,
        timeout: std::time::Duration,
    ) -> Option<std::net::SocketAddr> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(a) = self.get(key) {
                return Some(a);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// A running source.
pub trait Source: Send {
    /// The signals it emits.
    fn signals(&self) -> &'static [Signal];
    /// Makes the self-metrics series it may count into exist at 0 (called before it runs):
    /// its own discard reasons and counters. What every producer counts (received, sent, a full
    /// queue) is declared by the runtime.
    fn declare(&self, _metrics: &ComponentMetrics) {}
    /// Whether it calls `ctx.started.done()` once it has taken its starting point (the
    /// collector then waits for that before it reports ready); otherwise it counts as started
    /// when it is spawned.
    fn reports_start(&self) -> bool {
        false
    }
    /// Runs until `ctx.shutdown` turns true.
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>>;
}

/// Why a source failed (the cause in the message, not also a `source()`: printed once).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: String, error: std::io::Error },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A config that cannot be turned into a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// From serde: names the key when it can.
    #[error("{0}")]
    Config(String),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl BuildError {
    /// Deserializes a component's own settings, turning serde's error into a [`BuildError`].
    /// A mistake inside a nested table (`tls = { ca_fiel = ... }`) comes back as
    /// [`BuildError::Invalid`] with its key path, so the config error points at its line.
    pub fn parse<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, BuildError> {
        T::deserialize(toml::Value::Table(table)).map_err(|e| {
            let message = e.message().to_string();
            // toml's error names the tables it was in on a line "in `a.b`".
            let shown = e.to_string();
            let path = shown
                .lines()
                .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`'))
                .map(str::to_string);
            match path {
                Some(path) => {
                    let field = message.split('`').nth(1).filter(|_| {
                        message.starts_with("unknown field") || message.starts_with("missing field")
                    });
                    let key = match field {
                        Some(f) if message.starts_with("unknown field") => format!("{path}.{f}"),
                        _ => path,
                    };
                    BuildError::Invalid {
                        key,
                        reason: message,
                    }
                }
                None => BuildError::Config(message),
            }
        })
    }
}

/// Builds a source of type `kind` from its settings (the table without the common keys).
pub fn build(kind: &str, table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    match kind {
        "otlp" => otlp::build(table),
        "loki_push" => loki_push::build(table),
        "remote_write" => remote_write::build(table),
        "prometheus_scrape" => prometheus_scrape::build(table),
        "file" => file::build(table),
        "docker" => docker::build(table),
        _ => Err(BuildError::UnknownType(kind.to_string())),
    }
}
