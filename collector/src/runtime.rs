//! Running a collector from a [`Config`]: one bounded [`queue`](crate::queue) per consumer
//! (process component or writer, bounded by its `queue_max_bytes` and `queue_capacity`, keeping
//! its `collector_queue_depth` and `collector_queue_bytes` gauges), fan-out edges from every producer to the consumers
//! that name it in `inputs`, one task per component, and the self-monitoring server
//! (`/metrics`, `/-/healthy`, `/-/ready`) on 127.0.0.1:12345 by default.
//!
//! Stopping ([`Collector::shutdown`]): sources stop first and save their positions; their
//! channels close, so process components finish what is queued and stop; writers drain their
//! queues within their `drain_timeout`. Everything is bounded in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::buffer::{self, BufferConfig, BufferError, Durable};
use crate::config::{Built, Component, Config, ConfigError};
use crate::event::{Items, LogBatch, MetricBatch, Signal, TraceBatch};
use crate::output::{Output, Target};
use crate::process::{AnyStages, Drops, Stage, Stages};
use crate::queue::{self, Bound, Gauges};
use crate::selfmon::{ComponentMetrics, Registry};
use crate::sources::{ListenAddrs, Outputs, SourceContext};
use crate::writers::{AnyWriter, Writer, WriterContext};

/// Why a collector could not start. The cause is part of each message and not also a
/// `source()`, so an error chain (`{:#}`, anyhow) prints it once, and `to_string()` (what
/// loadgen and steps show) still has it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create the data directory {path}: {error}")]
    DataDir { path: String, error: std::io::Error },
    #[error("cannot listen on {addr} for the self-monitoring server: {error}")]
    Server {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("writers.{writer}: {error}")]
    Buffer { writer: String, error: BufferError },
}

/// A running collector.
pub struct Collector {
    registry: Arc<Registry>,
    listen_addrs: ListenAddrs,
    health: Health,
    server_addr: Option<SocketAddr>,
    stop_sources: watch::Sender<bool>,
    stop_rest: watch::Sender<bool>,
    sources: Vec<JoinHandle<()>>,
    process: Vec<JoinHandle<()>>,
    /// Disk buffers' appenders: done once everything queued for them is on disk.
    appenders: Vec<JoinHandle<()>>,
    /// Disk buffers' readers (stopped with the writers; kept to be aborted by a crash).
    readers: Vec<JoinHandle<()>>,
    writers: Vec<(JoinHandle<()>, Duration)>,
    server: Option<JoinHandle<()>>,
}

/// Component failures, shown by `/-/healthy`.
#[derive(Clone, Default)]
struct Health {
    failed: Arc<Mutex<BTreeMap<String, String>>>,
    ready: Arc<AtomicBool>,
}

/// How long `Collector::start` waits for the sources' starting points (see
/// [`crate::sources::Started`]).
const STARTED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The input side of a consumer, before it is handed to its task.
enum Inbox {
    Logs(queue::Sender<LogBatch>, queue::Receiver<LogBatch>),
    Metrics(queue::Sender<MetricBatch>, queue::Receiver<MetricBatch>),
    Traces(queue::Sender<TraceBatch>, queue::Receiver<TraceBatch>),
}

impl Inbox {
    /// The queue in front of consumer `c` (a `kind` component), its gauges in `registry`.
    fn new(signal: Signal, c: &Component, kind: &'static str, registry: &Arc<Registry>) -> Self {
        let m = ComponentMetrics::new(registry.clone(), &c.name, kind);
        let bound = Bound {
            batches: c.queue_capacity,
            bytes: c.queue_max_bytes,
        };
        let gauges = || Gauges {
            items: Some(m.queue_depth()),
            bytes: Some(m.queue_bytes()),
        };
        match signal {
            Signal::Logs => {
                let (tx, rx) = queue::channel(bound, gauges());
                Inbox::Logs(tx, rx)
            }
            Signal::Metrics => {
                let (tx, rx) = queue::channel(bound, gauges());
                Inbox::Metrics(tx, rx)
            }
            Signal::Traces => {
                let (tx, rx) = queue::channel(bound, gauges());
                Inbox::Traces(tx, rx)
            }
        }
    }
}

impl Collector {
    /// Builds every component of `config` and starts them.
    pub async fn start(config: &Config) -> Result<Collector, StartError> {
        let built = config.build()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            error: source,
        })?;
        let registry = Registry::new();
        let listen_addrs = ListenAddrs::default();
        let health = Health::default();
        let (stop_sources, sources_rx) = watch::channel(false);
        let (stop_rest, rest_rx) = watch::channel(false);

        // Consumers' inboxes.
        let mut inboxes: BTreeMap<String, (Component, Inbox)> = BTreeMap::new();
        for (c, signal, _) in &built.process {
            inboxes.insert(
                c.name.clone(),
                (c.clone(), Inbox::new(*signal, c, "process", &registry)),
            );
        }
        for (c, w) in &built.writers {
            inboxes.insert(
                c.name.clone(),
                (c.clone(), Inbox::new(w.signal(), c, "writer", &registry)),
            );
        }
        // Some writer keeps a disk buffer: receivers answer once their batches are on disk.
        let durable = built
            .writers
            .iter()
            .any(|(c, _)| matches!(c.buffer, BufferConfig::Disk(_)));
        let outputs = |producer: &str, metrics: &ComponentMetrics| Outputs {
            logs: Output::new(
                Signal::Logs,
                targets(&inboxes, producer, |i| match i {
                    Inbox::Logs(tx, _) => Some(tx.clone()),
                    _ => None,
                }),
                metrics.clone(),
            )
            .acknowledging(durable),
            metrics: Output::new(
                Signal::Metrics,
                targets(&inboxes, producer, |i| match i {
                    Inbox::Metrics(tx, _) => Some(tx.clone()),
                    _ => None,
                }),
                metrics.clone(),
            )
            .acknowledging(durable),
            traces: Output::new(
                Signal::Traces,
                targets(&inboxes, producer, |i| match i {
                    Inbox::Traces(tx, _) => Some(tx.clone()),
                    _ => None,
                }),
                metrics.clone(),
            )
            .acknowledging(durable),
        };

        let Built {
            sources,
            process,
            writers,
        } = built;
        // Producers' outputs are made before any inbox is taken apart.
        let source_parts: Vec<_> = sources
            .into_iter()
            .map(|(c, s)| {
                let m = ComponentMetrics::new(registry.clone(), &c.name, "source");
                for signal in s.signals() {
                    m.declare(*signal, &crate::output::REASONS);
                }
                s.declare(&m);
                let o = outputs(&c.name, &m);
                (c, s, m, o)
            })
            .collect();
        let process_parts: Vec<_> = process
            .into_iter()
            .map(|(c, signal, stages)| {
                let m = ComponentMetrics::new(registry.clone(), &c.name, "process");
                m.declare(signal, &crate::output::REASONS);
                let o = outputs(&c.name, &m);
                (c, AnyStages::chain(stages), m, o)
            })
            .collect();

        // Writers first, so nothing is sent before its consumer runs.
        let mut writer_tasks = Vec::new();
        let mut appenders = Vec::new();
        let mut readers = Vec::new();
        for (c, w) in writers {
            let Some((_, inbox)) = inboxes.remove(&c.name) else {
                continue;
            };
            let start = WriterStart {
                component: &c,
                metrics: ComponentMetrics::new(registry.clone(), &c.name, "writer"),
                data_dir: &config.data_dir,
                stop: rest_rx.clone(),
            };
            let (fut, appender) = match (w, inbox) {
                (AnyWriter::Logs(w), Inbox::Logs(_, input)) => start.run(w, input)?,
                (AnyWriter::Metrics(w), Inbox::Metrics(_, input)) => start.run(w, input)?,
                (AnyWriter::Traces(w), Inbox::Traces(_, input)) => start.run(w, input)?,
                _ => continue, // the inbox was made from the writer's own signal
            };
            if let Some(b) = appender {
                appenders.push(b.appender);
                readers.push(b.reader);
            }
            writer_tasks.push((
                supervise(format!("writers.{}", c.name), fut, health.clone()),
                c.drain_timeout,
            ));
        }
        let mut process_tasks = Vec::new();
        for (c, stages, m, out) in process_parts {
            let Some((_, inbox)) = inboxes.remove(&c.name) else {
                continue;
            };
            let name = format!("process.{}", c.name);
            // The config checked the stages share the inbox's signal.
            let task = match (stages, inbox) {
                (Some(AnyStages::Logs(stages)), Inbox::Logs(_, rx)) => {
                    tokio::spawn(run_stages(rx, stages, Signal::Logs, m, out.logs))
                }
                (Some(AnyStages::Metrics(stages)), Inbox::Metrics(_, rx)) => {
                    tokio::spawn(run_stages(rx, stages, Signal::Metrics, m, out.metrics))
                }
                (Some(AnyStages::Traces(stages)), Inbox::Traces(_, rx)) => {
                    tokio::spawn(run_stages(rx, stages, Signal::Traces, m, out.traces))
                }
                _ => continue,
            };
            tracing::debug!(component = %name, "started");
            process_tasks.push(task);
        }
        let mut source_tasks = Vec::new();
        let mut starts = Vec::new();
        for (c, s, m, o) in source_parts {
            let (started, start) = crate::sources::Started::new();
            if !s.reports_start() {
                started.done();
            }
            starts.push((c.name.clone(), start));
            let ctx = SourceContext {
                name: c.name.clone(),
                outputs: o,
                shutdown: sources_rx.clone(),
                metrics: m,
                data_dir: config.data_dir.clone(),
                listen_addrs: listen_addrs.clone(),
                started,
            };
            source_tasks.push(supervise(
                format!("sources.{}", c.name),
                s.run(ctx),
                health.clone(),
            ));
        }
        drop(inboxes); // only the producers' outputs hold senders now
        // Ready only once every source has taken its starting point (a source that fails first
        // drops its signal, which ends the wait too); bounded, so a stuck source is reported
        // rather than holding the start forever.
        let until = tokio::time::Instant::now() + STARTED_WAIT;
        for (name, mut start) in starts {
            if tokio::time::timeout_at(until, start.wait_for(|s| *s))
                .await
                .is_err()
            {
                tracing::warn!(source = %name, wait = ?STARTED_WAIT, "source has not taken its starting point yet; reporting ready anyway");
            }
        }

        let (server, server_addr) = match config.server.address {
            None => (None, None),
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Server {
                        addr,
                        error: source,
                    })?;
                let bound = listener.local_addr().unwrap_or(addr);
                listen_addrs.record("server", bound);
                let app = Router::new()
                    .route("/metrics", get(metrics_handler))
                    .route("/-/healthy", get(healthy_handler))
                    .route("/-/ready", get(ready_handler))
                    .with_state((registry.clone(), health.clone()));
                let mut stop = rest_rx.clone();
                let task = tokio::spawn(async move {
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "self-monitoring server failed");
                    }
                });
                (Some(task), Some(bound))
            }
        };
        health.ready.store(true, Ordering::Relaxed);
        tracing::info!(
            sources = source_tasks.len(),
            process = process_tasks.len(),
            writers = writer_tasks.len(),
            "collector started"
        );
        Ok(Collector {
            registry,
            listen_addrs,
            health,
            server_addr,
            stop_sources,
            stop_rest,
            sources: source_tasks,
            process: process_tasks,
            appenders,
            readers,
            writers: writer_tasks,
            server,
        })
    }

    /// The collector's self-metrics.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Addresses the listening sources bound (and `server`, the self-monitoring server).
    pub fn listen_addrs(&self) -> &ListenAddrs {
        &self.listen_addrs
    }

    /// Where `/metrics` is served, if enabled.
    pub fn server_addr(&self) -> Option<SocketAddr> {
        self.server_addr
    }

    /// Components that stopped with an error, and why.
    pub fn failures(&self) -> BTreeMap<String, String> {
        self.health.failed.lock().clone()
    }

    /// Stops at once, as `kill -9` would: every task is aborted, nothing is drained or saved
    /// (what a task already wrote to a file stays, as the kernel keeps it). For tests of what
    /// survives a crash in-process.
    pub fn crash(self) {
        let tasks = self
            .sources
            .iter()
            .chain(&self.process)
            .chain(&self.appenders)
            .chain(&self.readers)
            .chain(self.writers.iter().map(|(t, _)| t))
            .chain(&self.server);
        for t in tasks {
            t.abort();
        }
        tracing::info!("collector crashed on purpose");
    }

    /// Stops the sources, lets queued data through, drains the writers (each within its
    /// `drain_timeout`) and stops the server.
    pub async fn shutdown(self) {
        let _ = self.stop_sources.send(true);
        // Each phase has one deadline for all its tasks (they stop concurrently), so a
        // pipeline with many components stuck behind a dead backend still stops in bounded
        // time.
        let phase = || tokio::time::Instant::now() + Duration::from_secs(15);
        join_by(self.sources, phase()).await;
        join_by(self.process, phase()).await;
        // What the process components handed on is written to the disk buffers (their
        // producers gone, the appenders end), so the writers' drain does not lose it.
        join_by(self.appenders, phase()).await;
        let _ = self.stop_rest.send(true);
        let drain = self
            .writers
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default();
        join_by(
            self.writers.into_iter().map(|(t, _)| t),
            tokio::time::Instant::now() + drain + Duration::from_secs(5),
        )
        .await;
        join_by(
            self.server,
            tokio::time::Instant::now() + Duration::from_secs(5),
        )
        .await;
        tracing::info!("collector stopped");
    }
}

/// Waits for `tasks` until `until` at most (a task still running then is left to end with the
/// runtime).
async fn join_by(tasks: impl IntoIterator<Item = JoinHandle<()>>, until: tokio::time::Instant) {
    for t in tasks {
        let _ = tokio::time::timeout_at(until, t).await;
    }
}

fn targets<T>(
    inboxes: &BTreeMap<String, (Component, Inbox)>,
    producer: &str,
    pick: impl Fn(&Inbox) -> Option<queue::Sender<T>>,
) -> Vec<Target<T>> {
    inboxes
        .values()
        .filter(|(c, _)| c.inputs.iter().any(|i| i == producer))
        .filter_map(|(c, inbox)| {
            pick(inbox).map(|tx| Target {
                tx,
                when_full: c.when_full,
                name: c.name.clone(),
            })
        })
        .collect()
}

/// A writer's running future.
type WriterFuture = crate::BoxFuture<Result<(), crate::writers::WriterError>>;

/// What starting one writer takes.
struct WriterStart<'a> {
    component: &'a Component,
    metrics: ComponentMetrics,
    data_dir: &'a std::path::Path,
    /// Turns true when the writers are told to drain.
    stop: watch::Receiver<bool>,
}

impl WriterStart<'_> {
    /// Starts writer `w` on its queue `input` — through its disk buffer if it has one (then
    /// the buffer's tasks come back too, for the stop to wait on).
    fn run<T: Durable + Items + Send + 'static>(
        self,
        w: Box<dyn Writer<T>>,
        input: queue::Receiver<T>,
    ) -> Result<(WriterFuture, Option<buffer::Running>), StartError> {
        let c = self.component;
        let (input, appender) = match &c.buffer {
            BufferConfig::Memory => (input, None),
            BufferConfig::Disk(d) => {
                let (rx, running) = buffer::spawn(
                    &buffer::dir(self.data_dir, &c.name),
                    d,
                    c.when_full,
                    input,
                    self.metrics.clone(),
                    self.stop.clone(),
                )
                .map_err(|error| StartError::Buffer {
                    writer: c.name.clone(),
                    error,
                })?;
                (rx, Some(running))
            }
        };
        let fut = w.run(WriterContext {
            name: c.name.clone(),
            input,
            shutdown: self.stop,
            metrics: self.metrics,
            drain_timeout: c.drain_timeout,
            durable: appender.is_some(),
        });
        Ok((fut, appender))
    }
}

/// Runs a component's future, recording a failure for `/-/healthy`.
fn supervise<E: std::fmt::Display + Send + 'static>(
    name: String,
    fut: crate::BoxFuture<Result<(), E>>,
    health: Health,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            tracing::error!(component = %name, error = %e, "component stopped with an error");
            health.failed.lock().insert(name, e.to_string());
        }
    })
}

/// A process component: stages applied in order to each batch; drops counted by reason.
async fn run_stages<T: Items + Clone + Send + 'static>(
    mut rx: queue::Receiver<T>,
    stages: Stages<T>,
    signal: Signal,
    metrics: ComponentMetrics,
    out: Output<T>,
) {
    let received = metrics.received(signal);
    // The batch's acks go on with what the stages left of it.
    while let Some((mut batch, acks)) = rx.recv_acked().await {
        received.add(batch.items() as u64);
        let mut drops = Drops::default();
        stages.process(&mut batch, &mut drops);
        for (reason, n) in drops.0 {
            metrics.discarded(signal, &reason).add(n);
        }
        let n = batch.items() as u64;
        if out.send_acked(batch, acks.clone()).await.is_err() {
            // A writer stopped taking (its drain deadline passed) while this batch waited for
            // room: it is lost, counted.
            metrics.discarded(signal, "shutdown").add(n);
            acks.abandon();
            // And so is what is still queued here (counted as the writers count theirs).
            rx.close();
            while let Ok((left, acks)) = rx.try_recv_acked() {
                metrics
                    .discarded(signal, "shutdown")
                    .add(left.items() as u64);
                acks.abandon();
            }
            break;
        }
    }
}

type ServerState = (Arc<Registry>, Health);

async fn metrics_handler(State((registry, _)): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            wire::exposition::Format::PrometheusText.content_type(),
        )],
        registry.render(),
    )
}

async fn healthy_handler(State((_, health)): State<ServerState>) -> impl IntoResponse {
    let failed = health.failed.lock().clone();
    if failed.is_empty() {
        (
            StatusCode::OK,
            "All collector components are healthy.\n".to_string(),
        )
    } else {
        let list: Vec<String> = failed.iter().map(|(c, e)| format!("{c}: {e}")).collect();
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unhealthy components:\n{}\n", list.join("\n")),
        )
    }
}

/// Ready once every component started, and not while any has failed (a source that could not
/// bind its port receives nothing: a load balancer must not send to it).
async fn ready_handler(State((_, health)): State<ServerState>) -> impl IntoResponse {
    let failed = health.failed.lock().clone();
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|(c, e)| format!("{c}: {e}")).collect();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Not ready: failed components:\n{}\n", list.join("\n")),
        );
    }
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "Ready.\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready.\n".to_string())
    }
}
