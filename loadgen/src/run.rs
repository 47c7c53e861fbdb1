//! A whole load run: where the data goes ([`RunTarget`]), the fleet, an open-loop schedule of
//! every device's signals, payloads from each device's [`DeviceSignals`], sends with
//! [`Senders`], canaries recorded in the [`Ledger`] once acknowledged, the [`Verifier`] reading
//! them back, and at the end one [`reports::Results`] written as `results.json` and
//! `report.html` into the run folder.
//!
//! | target | pushes to | verifies against |
//! |---|---|---|
//! | [`RunTarget::Embedded`] | an in-process collector (Loki push, remote write, OTLP/HTTP on 127.0.0.1 port 0) writing to an embedded stack | the embedded stack |
//! | [`RunTarget::CollectorCmd`] | the collector binary, spawned with the same config on free ports; its CPU and RSS sampled from `/proc` | the embedded stack |
//! | [`RunTarget::Direct`] | the embedded stack's own APIs | the embedded stack |
//! | [`RunTarget::Collector`] | a running collector's receivers ([`receivers::Receivers`]: the shipped gateway's ports, or one URL each) | the stack of its [`ExternalArgs`] |
//! | [`RunTarget::External`] | the APIs of a running stack | the same stack |
//!
//! Each device has three streams: logs (Poisson, its log rate), metrics (fixed interval, its
//! scrape interval, sent as remote write) and traces (Poisson, its checkout rate; each checkout
//! also sends its POS log line as a log push). Every `canary_every`-th event of a device's signal
//! carries a canary, starting with the first.
//!
//! With [`RunConfig::delivery`] other than push (embedded target only), metrics are scraped by
//! the in-process collector and/or logs are tailed from files instead; see [`crate::deliver`].

mod batch;
pub mod dynamics;
pub mod preflight;
pub mod process;
pub mod receivers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use collector::runtime::Collector;
use parking_lot::Mutex;
use reports::Results;
use reports::results::{Breakdown, RunInfo, Verification};
use reqwest::Url;
use stack::external::ExternalArgs;
use stack::{EmbeddedConfig, EmbeddedStack, Endpoints};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::deliver::{Delivered, Delivery, files::FileSink, scrape::ScrapeServer};
use crate::fleet::{Fleet, FleetSpec, Shard};
use crate::generate::{DeviceSignals, LogEntry};
use crate::recorder::{Attempt, LATENCY_UNIT, Recorder, Request, ResourceSampler};
use crate::schedule::{Arrival, Event, Schedule, ScheduleSpec, StreamSpec};
use crate::send::{Outcome, Payload, SendError, SenderConfig, Senders, Target};
use crate::verify::{Ledger, Verifier, VerifierConfig};
use wire::Signal;

pub use reports::verdict::{Objectives, Slo, SloError, SloKind};

/// Where a run sends its data.
#[derive(Clone, Debug, Default)]
pub enum RunTarget {
    /// An embedded stack behind an in-process collector.
    #[default]
    Embedded,
    /// An embedded stack behind the collector binary at this path, spawned as a child process
    /// (its CPU and RSS are sampled apart from loadgen's).
    CollectorCmd { program: PathBuf },
    /// An embedded stack, pushed to directly.
    Direct,
    /// A running collector with these receivers, writing to the stack of the arguments.
    Collector {
        receivers: Box<receivers::Receivers>,
        stack: ExternalArgs,
    },
    /// A running stack, pushed to directly.
    External(ExternalArgs),
}

impl RunTarget {
    /// How `results.json` names it.
    fn describe(&self) -> String {
        match self {
            RunTarget::Embedded => {
                "embedded (in-process collector: its CPU/RSS are counted in loadgen's)".into()
            }
            RunTarget::CollectorCmd { program } => {
                format!("collector process {} (embedded stack)", program.display())
            }
            RunTarget::Direct => "direct (embedded stack, no collector)".into(),
            RunTarget::Collector { receivers: r, .. } => format!(
                "collector (Loki push {}, remote write {}, OTLP {})",
                r.loki, r.remote_write, r.otlp
            ),
            RunTarget::External(a) => format!("external {}", a.loki_url),
        }
    }
}

/// The default `--batch-window`.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(10);

pub use crate::progress::Progress;

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The fleet (its `devices` and `seed` included).
    pub fleet: FleetSpec,
    /// Emulate only this shard of the fleet (`--shard i/n`); `None`: all of it.
    pub shard: Option<Shard>,
    /// Total sending time, warmup included.
    pub duration: Duration,
    /// Leading part of `duration` left out of the measurements.
    pub warmup: Duration,
    /// Multiplies every device's nominal rates.
    pub rate_multiplier: f64,
    /// Every n-th event of a device's signal carries a canary (0: none).
    pub canary_every: u64,
    /// How long to wait after the run for canaries to become queryable.
    pub drain_timeout: Duration,
    /// The run folder; `None`: `runs/<timestamp>-<devices>d`.
    pub out_dir: Option<PathBuf>,
    pub target: RunTarget,
    /// Push, or metrics by scrape and/or logs by files ([`crate::deliver`]; embedded target).
    pub delivery: Delivery,
    /// Objectives given with `--slo`; each replaces the default objective of its name.
    pub slos: Vec<Slo>,
    /// Judge by the default objectives too (no loss, duplicates, refusals; every sent signal
    /// verified); `--no-default-slos` turns this off.
    pub default_slos: bool,
    /// Devices coming and going (`--churn`), going offline and backfilling (`--offline`).
    pub dynamics: dynamics::DynamicsSpec,
    /// Events due within this window share requests (see `run/batch.rs`); zero: a request
    /// per event.
    pub batch_window: Duration,
    /// Reporting interval.
    pub interval: Duration,
    /// The command line, for `results.json`.
    pub command: String,
    /// Live counters, when someone watches.
    pub progress: Option<Arc<Progress>>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            fleet: FleetSpec {
                devices: 5000,
                ..FleetSpec::default()
            },
            duration: Duration::from_secs(60),
            warmup: Duration::ZERO,
            rate_multiplier: 1.0,
            canary_every: 10,
            drain_timeout: Duration::from_secs(60),
            shard: None,
            out_dir: None,
            target: RunTarget::Embedded,
            delivery: Delivery::Push,
            slos: Vec::new(),
            default_slos: true,
            interval: Duration::from_secs(1),
            command: String::new(),
            progress: None,
            dynamics: dynamics::DynamicsSpec::default(),
            batch_window: DEFAULT_BATCH_WINDOW,
        }
    }
}

/// Why a run failed (measurement problems are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("run settings: {0}")]
    Config(String),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    #[error("embedded stack: {0}")]
    Stack(#[from] stack::embedded::EmbeddedError),
    #[error("external stack: {0}")]
    External(#[from] stack::external::ExternalError),
    #[error("in-process collector: {0}")]
    Collector(String),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    #[error("delivery: {0}")]
    Deliver(#[from] crate::deliver::DeliverError),
    #[error("run folder {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where each signal goes and what is read back, plus what must stay alive meanwhile.
struct Setup {
    logs: Target,
    metrics: Target,
    traces: Target,
    verify: Endpoints,
    stack: Option<EmbeddedStack>,
    collector: Option<(Collector, PathBuf)>,
    process: Option<process::CollectorProcess>,
}

impl Setup {
    fn target(&self, signal: Signal) -> &Target {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
            Signal::Traces => &self.traces,
        }
    }

    /// Straight to a stack's APIs.
    fn direct(e: &Endpoints) -> (Target, Target, Target) {
        let t = |url: &Url| Target {
            url: url.clone(),
            tenant: e.tenant.clone(),
        };
        (t(&e.loki), t(&e.prometheus_write), t(&e.tempo_otlp_http))
    }

    async fn start(target: &RunTarget, extra: &CollectorExtra) -> Result<Setup, RunError> {
        let (logs, metrics, traces, verify, stack, collector) = match target {
            RunTarget::Embedded | RunTarget::Direct | RunTarget::CollectorCmd { .. } => {
                let stack = EmbeddedStack::start(EmbeddedConfig::default()).await?;
                let e = stack.endpoints().clone();
                let ((logs, metrics, traces), collector) = match target {
                    RunTarget::Embedded => {
                        let (c, dir) = start_collector(&e, extra).await?;
                        let t = collector_targets(&c).await?;
                        (t, Some((c, dir)))
                    }
                    RunTarget::CollectorCmd { program } => {
                        let (p, t) = spawn_collector(program, &e, extra).await?;
                        let (l, m, t) = t;
                        return Ok(Setup {
                            logs: l,
                            metrics: m,
                            traces: t,
                            verify: e,
                            stack: Some(stack),
                            collector: None,
                            process: Some(p),
                        });
                    }
                    _ => (Setup::direct(&e), None),
                };
                (logs, metrics, traces, e, Some(stack), collector)
            }
            RunTarget::Collector {
                receivers: r,
                stack,
            } => {
                let e = stack.endpoints()?;
                let t = |url: &Url| Target {
                    url: url.clone(),
                    tenant: e.tenant.clone(),
                };
                (t(&r.loki), t(&r.remote_write), t(&r.otlp), e, None, None)
            }
            RunTarget::External(args) => {
                let e = args.endpoints()?;
                let (l, m, t) = Setup::direct(&e);
                (l, m, t, e, None, None)
            }
        };
        Ok(Setup {
            logs,
            metrics,
            traces,
            verify,
            stack,
            collector,
            process: None,
        })
    }

    /// The pid of the collector process, when loadgen spawned one.
    fn collector_pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.pid())
    }

    async fn stop(self) {
        if let Some(p) = self.process {
            p.stop(Duration::from_secs(30)).await;
        }
        if let Some((c, dir)) = self.collector {
            c.shutdown().await;
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "collector data left behind");
            }
        }
        if let Some(s) = self.stack {
            s.shutdown().await;
        }
    }
}

/// The in-process collector: Loki push, remote write and OTLP/HTTP in, the stack out.
async fn start_collector(
    e: &Endpoints,
    extra: &CollectorExtra,
) -> Result<(Collector, PathBuf), RunError> {
    let dir = collector_dir();
    let text = collector_toml(e, extra, &dir, None);
    let cfg = collector::config::Config::parse(&text, "loadgen-collector.toml", &|_| None)
        .map_err(|err| RunError::Collector(err.to_string()))?;
    let c = Collector::start(&cfg)
        .await
        .map_err(|err| RunError::Collector(err.to_string()))?;
    Ok((c, dir))
}

/// The collector binary as a child process with the in-process collector's config on free
/// ports, and its three receivers.
async fn spawn_collector(
    program: &Path,
    e: &Endpoints,
    extra: &CollectorExtra,
) -> Result<(process::CollectorProcess, (Target, Target, Target)), RunError> {
    let dir = collector_dir();
    let ports = process::Ports::free()?;
    let text = collector_toml(e, extra, &dir.join("data"), Some(&ports));
    let p = process::CollectorProcess::spawn(
        program,
        &text,
        &dir,
        process::Ports::addr(ports.server),
        Duration::from_secs(20),
    )
    .await?;
    let target = |port: u16, path: &str| -> Result<Target, RunError> {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/{path}"))
            .map_err(|err| RunError::Collector(err.to_string()))?;
        Ok(Target { url, tenant: None })
    };
    let targets = (
        target(ports.loki_push, "")?,
        target(ports.remote_write, "api/v1/write")?,
        target(ports.otlp_http, "")?,
    );
    Ok((p, targets))
}

fn collector_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "loadgen-collector-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ))
}

/// The collector config of a run: Loki push, remote write and OTLP in, the stack `e` out, plus
/// what the delivery paths add; listeners on port 0 (in process) or on `ports`.
fn collector_toml(
    e: &Endpoints,
    extra: &CollectorExtra,
    data_dir: &Path,
    ports: Option<&process::Ports>,
) -> String {
    let at = |p: Option<u16>| format!("127.0.0.1:{}", p.unwrap_or(0));
    format!(
        r#"
data_dir = {data}
[server]
address = "{server}"

[sources.logs]
type = "loki_push"
address = "{loki_push}"
use_incoming_timestamp = true

[sources.metrics]
type = "remote_write"
address = "{remote_write}"

[sources.traces]
type = "otlp"
http_address = "{otlp_http}"
grpc_address = "{otlp_grpc}"
log_index_attributes = {log_index}
promote_resource_attributes = {promote}

[writers.loki]
type = "loki"
inputs = [{logs_in}]
url = "{loki}loki/api/v1/push"
batch_wait = "100ms"

[writers.mimir]
type = "prometheus_remote_write"
inputs = [{metrics_in}]
url = "{mimir}"
batch_wait = "100ms"

[writers.tempo]
type = "otlp"
protocol = "http"
inputs = ["traces"]
url = "{tempo}"
batch_wait = "100ms"
{extra}"#,
        data = crate::deliver::toml_str(&data_dir.display().to_string()),
        server = at(ports.map(|p| p.server)),
        loki_push = at(ports.map(|p| p.loki_push)),
        remote_write = at(ports.map(|p| p.remote_write)),
        otlp_http = at(ports.map(|p| p.otlp_http)),
        otlp_grpc = at(ports.map(|p| p.otlp_grpc)),
        logs_in = extra.inputs(&["logs", "traces"], &extra.logs),
        metrics_in = extra.inputs(&["metrics", "traces"], &extra.metrics),
        log_index = toml_list(&crate::deliver::otlp::LOG_INDEX_ATTRIBUTES),
        promote = toml_list(&crate::deliver::otlp::LABEL_ATTRIBUTES),
        extra = extra.toml,
        loki = e.loki,
        mimir = e.prometheus_write,
        tempo = e.tempo_otlp_http.as_str().trim_end_matches('/'),
    )
}

/// `["a", "b"]`.
fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| crate::deliver::toml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// What the delivery paths add to the in-process collector: components, and the extra inputs
/// of its Loki and remote-write writers.
#[derive(Default)]
struct CollectorExtra {
    toml: String,
    logs: Option<String>,
    metrics: Option<String>,
}

impl CollectorExtra {
    /// `"<base>"..., "<extra>"` as a TOML list body.
    fn inputs(&self, base: &[&str], extra: &Option<String>) -> String {
        base.iter()
            .copied()
            .chain(extra.as_deref())
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The delivery paths of a run besides push.
#[derive(Default)]
struct Paths {
    scrape: Option<ScrapeServer>,
    files: Option<FileSink>,
}

impl Paths {
    /// Starts what `cfg.delivery` asks for; attempts are reported to `shared`.
    async fn start(
        cfg: &RunConfig,
        fleet: &Fleet,
        dir: &Path,
        shared: &Arc<Shared>,
        of_device: &[usize],
    ) -> Result<Paths, RunError> {
        let mut paths = Paths::default();
        if cfg.delivery.scrapes() {
            let devices: Vec<(Arc<str>, u64, usize)> = fleet
                .devices
                .iter()
                .zip(of_device)
                .map(|(d, &g)| (Arc::from(d.id.as_str()), d.index, g))
                .collect();
            let run = shared.run;
            let (shared, warmup) = (shared.clone(), cfg.warmup);
            let sink: crate::deliver::Sink = Arc::new(move |d: Delivered| {
                if let Some((id, index, group)) = devices.get(d.device) {
                    shared.delivered(&d, warmup, *group, id, *index);
                }
            });
            let server = ScrapeServer::start(
                fleet,
                cfg.fleet.seed,
                run,
                cfg.canary_every,
                cfg.rate_multiplier,
                dir,
                sink,
            )
            .await?;
            paths.scrape = Some(server);
        }
        if cfg.delivery.writes_files() {
            let names = fleet
                .devices
                .first()
                .map(|d| d.labels().into_iter().map(|(k, _)| k).collect())
                .unwrap_or_default();
            let sink = FileSink::new(
                &dir.join("logs"),
                names,
                crate::deliver::files::DEFAULT_ROTATE_BYTES,
            )?;
            paths.files = Some(sink);
        }
        Ok(paths)
    }

    fn collector_extra(&self) -> CollectorExtra {
        let mut extra = CollectorExtra::default();
        if let Some(s) = &self.scrape {
            extra.toml.push_str(&s.source_toml("scrape"));
            extra.metrics = Some("scrape".into());
        }
        if let Some(f) = &self.files {
            extra
                .toml
                .push_str(&f.collector_toml("files", "files_labels"));
            extra.logs = Some("files_labels".into());
        }
        extra
    }
}

/// The collector's three receivers, once they listen.
async fn collector_targets(c: &Collector) -> Result<(Target, Target, Target), RunError> {
    let mut urls = Vec::with_capacity(3);
    for (name, path) in [("logs", ""), ("metrics", "api/v1/write"), ("traces", "")] {
        let addr = c
            .listen_addrs()
            .wait_for(name, Duration::from_secs(10))
            .await
            .ok_or_else(|| RunError::Collector(format!("source `{name}` never listened")))?;
        let url = Url::parse(&format!("http://{addr}/{path}"))
            .map_err(|err| RunError::Collector(format!("{name} at {addr}: {err}")))?;
        urls.push(Target { url, tenant: None });
    }
    let mut it = urls.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(l), Some(m), Some(t)) => Ok((l, m, t)),
        _ => Err(RunError::Collector("missing receivers".into())),
    }
}

/// A canary to put in the ledger once its request is acknowledged.
#[derive(Clone, Debug)]
struct Stamp {
    signal: Signal,
    device: Arc<str>,
    index: u64,
    seq: u64,
    sent_ns: i64,
}

/// One device's generators and canary counters.
struct DeviceState {
    signals: DeviceSignals,
    id: Arc<str>,
    group: usize,
    events: [u64; 3],
    canaries: [u64; 3],
    /// Which device of its slot this is ([`dynamics::Plan::generation`]).
    generation: u32,
    /// What it produced while offline, oldest first.
    backlog: Vec<(Item, Option<Stamp>, Signal)>,
}

impl DeviceState {
    fn new(
        device: &crate::fleet::Device,
        seed: u64,
        group: usize,
        generation: u32,
        run: u32,
    ) -> Self {
        DeviceState {
            signals: DeviceSignals::new(device, seed.wrapping_add(u64::from(generation)))
                .for_run(run),
            id: Arc::from(device.id.as_str()),
            group,
            events: [0; 3],
            canaries: [0; 3],
            generation,
            backlog: Vec::new(),
        }
    }
}

impl DeviceState {
    /// The canary sequence number of this event of `signal`, if it carries one: the first
    /// event of each device's signal and every `every`-th after it, so short runs verify too.
    fn next_canary(&mut self, signal: Signal, every: u64) -> Option<u64> {
        let i = signal.index();
        let n = self.events[i];
        self.events[i] += 1;
        (every > 0 && n.is_multiple_of(every)).then(|| {
            self.canaries[i] += 1;
            self.canaries[i]
        })
    }
}

/// What is shared by the tasks that send.
struct Shared {
    /// This run's id in canary trace ids, from its start time.
    run: u32,
    recorder: Recorder,
    ledger: Arc<Ledger>,
    breakdown: Mutex<Vec<Breakdown>>,
    progress: Arc<Progress>,
}

impl Shared {
    fn finish(
        &self,
        event: &Event,
        group: usize,
        completed: Duration,
        out: &Outcome,
        stamp: Option<Stamp>,
    ) {
        let error = out.error_key();
        self.attempt(event, group, completed, out.items, error.as_deref(), stamp);
    }

    /// An attempt of a delivery path (scrape served, line appended).
    fn delivered(&self, d: &Delivered, warmup: Duration, group: usize, id: &Arc<str>, index: u64) {
        let event = Event {
            at: d.intended,
            device: d.device as u64,
            signal: d.signal,
            warmup: d.intended < warmup,
        };
        let stamp = d.canary.map(|(seq, sent_ns)| Stamp {
            signal: d.signal,
            device: id.clone(),
            index,
            seq,
            sent_ns,
        });
        self.attempt(
            &event,
            group,
            d.completed,
            d.items,
            d.error.as_deref(),
            stamp,
        );
    }

    fn attempt(
        &self,
        event: &Event,
        group: usize,
        completed: Duration,
        items: u64,
        error: Option<&str>,
        stamp: Option<Stamp>,
    ) {
        self.recorder.record(&Attempt {
            signal: event.signal,
            intended: event.at,
            completed,
            items,
            error,
            warmup: event.warmup,
        });
        if error.is_none() {
            self.progress.acknowledged[event.signal.index()].fetch_add(items, Ordering::Relaxed);
            if let Some(s) = stamp {
                self.ledger
                    .record(s.signal, &s.device, s.index, s.seq, s.sent_ns);
            }
        } else {
            self.progress.errors.fetch_add(items, Ordering::Relaxed);
        }
        if !event.warmup {
            let mut b = self.breakdown.lock();
            if let Some(row) = b.get_mut(group) {
                *row.sent
                    .entry(event.signal.as_str().to_string())
                    .or_default() += items;
                if error.is_some() {
                    row.errors += items;
                }
            }
        }
    }
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A log entry as a Loki push, or as OTLP logs.
fn log_payload(entry: LogEntry, otlp: bool) -> Payload {
    if otlp {
        Payload::OtlpLogs(crate::deliver::otlp::logs_request(std::slice::from_ref(
            &entry,
        )))
    } else {
        loki_push(entry)
    }
}

fn loki_push(entry: LogEntry) -> Payload {
    Payload::Loki(wire::loki::PushRequest {
        streams: vec![wire::loki::Stream {
            labels: wire::labels::format_label_set(&entry.labels),
            entries: vec![wire::loki::Entry::new(entry.timestamp_ns, entry.line)],
            hash: 0,
        }],
    })
}

/// What one event produces: a payload to push, or a log entry (pushed, or appended to a file).
enum Item {
    Push(Payload),
    Log(LogEntry),
}

/// The items of one event (a checkout is a trace and a log line), with its canary stamp.
fn payloads(
    dev: &mut DeviceState,
    event: &Event,
    canary_every: u64,
    otlp: bool,
) -> Vec<(Item, Option<Stamp>)> {
    let now = now_ns();
    let seq = dev.next_canary(event.signal, canary_every);
    let stamp = seq.map(|seq| Stamp {
        signal: event.signal,
        device: dev.id.clone(),
        index: dev.signals.device().index,
        seq,
        sent_ns: now,
    });
    match event.signal {
        Signal::Logs => vec![(Item::Log(dev.signals.log_line(now, seq)), stamp)],
        Signal::Metrics if otlp => {
            let scrape = dev.signals.scrape(now / 1_000_000, seq);
            let req =
                crate::deliver::otlp::metrics_request(&scrape, &dev.signals.device().labels());
            vec![(Item::Push(Payload::OtlpMetrics(req)), stamp)]
        }
        Signal::Metrics => {
            let timeseries = dev.signals.metrics(now / 1_000_000, seq);
            let req = wire::remote_write::WriteRequest {
                timeseries,
                metadata: Vec::new(),
            };
            vec![(Item::Push(Payload::RemoteWrite(req)), stamp)]
        }
        Signal::Traces => match dev.signals.checkout(now, seq, None) {
            Some(c) => {
                let req = wire::otlp::ExportTraceServiceRequest {
                    resource_spans: c.resource_spans,
                };
                vec![
                    (Item::Push(Payload::OtlpTraces(req)), stamp),
                    (Item::Log(c.log), None),
                ]
            }
            None => Vec::new(),
        },
    }
}

/// Items per second the schedule aims at, per signal: every device's nominal rates times the
/// multiplier. Metrics count samples as remote write does (OTLP delivery sends fewer, larger
/// data points: histograms are one point there).
fn target_rates(fleet: &Fleet, multiplier: f64, delivery: Delivery) -> [(Signal, f64); 3] {
    let mut sum = [0.0f64; 3];
    for d in &fleet.devices {
        let (l, m, t) = crate::generate::Rates::for_type(d.device_type).items_per_s();
        sum[0] += l;
        sum[1] += m;
        sum[2] += t;
    }
    let metrics = if delivery == Delivery::Otlp {
        0.0
    } else {
        sum[1]
    };
    [
        (Signal::Logs, sum[0] * multiplier),
        (Signal::Metrics, metrics * multiplier),
        (Signal::Traces, sum[2] * multiplier),
    ]
}

/// The streams of every device at its type's nominal rates.
fn streams(fleet: &Fleet) -> Vec<StreamSpec> {
    fleet
        .devices
        .iter()
        .flat_map(|d| {
            let r = crate::generate::Rates::for_type(d.device_type);
            let scrape = r.scrape_interval.as_secs_f64();
            [
                (Signal::Logs, r.logs_per_s, Arrival::Poisson),
                (
                    Signal::Metrics,
                    if scrape > 0.0 { 1.0 / scrape } else { 0.0 },
                    Arrival::Interval { jitter: 0.1 },
                ),
                (Signal::Traces, r.checkouts_per_s, Arrival::Poisson),
            ]
            .map(|(signal, rate, arrival)| StreamSpec {
                device: d.index,
                signal,
                rate,
                arrival,
            })
        })
        .collect()
}

/// Breakdown rows per (device type, region), and each device's row.
fn groups(fleet: &Fleet) -> (Vec<Breakdown>, Vec<usize>) {
    let mut rows: Vec<Breakdown> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let of_device = fleet
        .devices
        .iter()
        .map(|d| {
            let key = (d.device_type.as_str().to_string(), d.region.clone());
            let i = *index.entry(key).or_insert_with(|| {
                rows.push(Breakdown {
                    device_type: d.device_type.as_str().to_string(),
                    region: d.region.clone(),
                    devices: 0,
                    sent: BTreeMap::new(),
                    errors: 0,
                });
                rows.len() - 1
            });
            rows[i].devices += 1;
            i
        })
        .collect();
    (rows, of_device)
}

fn check(cfg: &RunConfig) -> Result<(), RunError> {
    cfg.fleet.validate()?;
    if cfg.fleet.devices == 0 {
        return Err(RunError::Config("devices must be above 0".into()));
    }
    if !matches!(cfg.delivery, Delivery::Push | Delivery::Otlp)
        && !matches!(
            cfg.target,
            RunTarget::Embedded | RunTarget::CollectorCmd { .. }
        )
    {
        return Err(RunError::Config(format!(
            "delivery {} needs the embedded target (its in-process collector scrapes and tails)",
            cfg.delivery
        )));
    }
    cfg.dynamics.validate().map_err(RunError::Config)?;
    if cfg.delivery == Delivery::Otlp
        && matches!(cfg.target, RunTarget::Direct | RunTarget::External(_))
    {
        return Err(RunError::Config(
            "delivery otlp sends logs and metrics to a collector's OTLP receiver: use the \
             embedded target, --collector-cmd or --collector URL"
                .into(),
        ));
    }
    if cfg.dynamics.is_active() && !matches!(cfg.delivery, Delivery::Push | Delivery::Otlp) {
        return Err(RunError::Config(format!(
            "--churn and --offline work with push delivery (not {}): scraped and tailed \
             devices keep their own state",
            cfg.delivery
        )));
    }
    if let Some(slo) = cfg.slos.iter().find(|s| s.kind.needs_collector_process())
        && !matches!(cfg.target, RunTarget::CollectorCmd { .. })
    {
        return Err(RunError::Config(format!(
            "SLO {slo} bounds the collector process: run with --collector-cmd, so loadgen \
             spawns the collector and samples its CPU and RSS"
        )));
    }
    if cfg.duration.is_zero() || cfg.warmup >= cfg.duration {
        return Err(RunError::Config(format!(
            "duration ({:?}) must be above 0 and above the warmup ({:?})",
            cfg.duration, cfg.warmup
        )));
    }
    if !(cfg.rate_multiplier.is_finite() && cfg.rate_multiplier > 0.0) {
        return Err(RunError::Config(format!(
            "rate multiplier must be above 0, got {}",
            cfg.rate_multiplier
        )));
    }
    Ok(())
}

/// The run folder: `cfg.out_dir`, or `runs/<timestamp>-<devices>d[-shard<i>of<n>]`.
fn run_dir(cfg: &RunConfig, started: &chrono::DateTime<chrono::Utc>) -> PathBuf {
    cfg.out_dir.clone().unwrap_or_else(|| {
        let shard = cfg
            .shard
            .map(|s| format!("-shard{}of{}", s.index, s.count))
            .unwrap_or_default();
        PathBuf::from("runs").join(format!(
            "{}-{}d{shard}",
            started.format("%Y%m%dT%H%M%SZ"),
            cfg.fleet.devices
        ))
    })
}

/// One empty request to every push target the run will use and one query of each query API;
/// the run stops here if any fails.
async fn preflight(cfg: &RunConfig, setup: &Setup) -> Result<(), RunError> {
    let otlp = cfg.delivery == Delivery::Otlp;
    let senders = Senders::new(&SenderConfig::default())?;
    let pushes: Vec<preflight::PushProbe> = Signal::ALL
        .into_iter()
        .filter(|s| match s {
            Signal::Logs => !cfg.delivery.writes_files(),
            Signal::Metrics => !cfg.delivery.scrapes(),
            Signal::Traces => true,
        })
        .map(|signal| {
            let payload = preflight::PushProbe::empty(signal, otlp);
            let target = match payload {
                Payload::OtlpLogs(_) | Payload::OtlpMetrics(_) => setup.target(Signal::Traces),
                _ => setup.target(signal),
            };
            preflight::PushProbe {
                signal,
                target: target.clone(),
                payload,
            }
        })
        .collect();
    preflight::check(&senders, &pushes, &setup.verify).await?;
    Ok(())
}

/// Sends the schedule, returning when every request has finished.
async fn send_all(
    cfg: &RunConfig,
    fleet: &Fleet,
    setup: &Setup,
    shared: &Arc<Shared>,
    of_device: &[usize],
    paths: &mut Paths,
) -> Result<reports::results::FleetDynamics, RunError> {
    let run = shared.run;
    let senders = Senders::new(&SenderConfig::default())?;
    let spec = ScheduleSpec {
        streams: streams(fleet),
        duration: cfg.duration,
        warmup: cfg.warmup,
        ramp: Duration::ZERO,
        rate_multiplier: cfg.rate_multiplier,
    };
    let mut devices: Vec<DeviceState> = fleet
        .devices
        .iter()
        .zip(of_device)
        .map(|(d, &group)| DeviceState::new(d, cfg.fleet.seed, group, 0, run))
        .collect();
    let plan = cfg
        .dynamics
        .is_active()
        .then(|| dynamics::Plan::new(&cfg.dynamics, fleet, cfg.fleet.seed, cfg.duration));
    let mut dyn_totals = reports::results::FleetDynamics::default();
    if let Some(p) = &plan {
        let (from, until) = cfg.dynamics.offline_window(cfg.duration);
        dyn_totals = reports::results::FleetDynamics {
            churn_per_min: cfg.dynamics.churn_per_min,
            offline_share: cfg.dynamics.offline_share,
            offline_devices: p.offline_devices(),
            offline_from_s: from.as_secs_f64(),
            offline_for_s: until.saturating_sub(from).as_secs_f64(),
            ..Default::default()
        };
    }
    let otlp = cfg.delivery == Delivery::Otlp;
    let targets = Arc::new([
        setup.target(Signal::Logs).clone(),
        setup.target(Signal::Metrics).clone(),
        setup.target(Signal::Traces).clone(),
    ]);
    let start = Instant::now();
    if let Some(s) = &paths.scrape {
        s.begin(start)?;
    }
    let mut tasks = JoinSet::new();
    let mut batcher = batch::Batcher::new(cfg.batch_window);
    let out = Outbound {
        senders: senders.clone(),
        shared: shared.clone(),
        targets: targets.clone(),
        otlp,
        start,
    };
    let mut events = Schedule::new(&spec, cfg.fleet.seed).peekable();
    loop {
        // Sleep until the next event or the next batch deadline, whichever is first.
        let next_at = events.peek().map(|e| e.at);
        let (wake, flush) = match (next_at, batcher.next_deadline()) {
            (None, None) => break,
            (Some(a), Some(d)) if d <= a => (d, true),
            (Some(a), _) => (a, false),
            (None, Some(d)) => (d, true),
        };
        tokio::time::sleep_until(start + wake).await;
        if flush {
            for b in batcher.due(wake) {
                send_batch(b, &out, &mut tasks).await;
            }
            continue;
        }
        let Some(event) = events.next() else { break };
        shared
            .progress
            .elapsed_ms
            .store(event.at.as_millis() as u64, Ordering::Relaxed);
        let Some(dev) = usize::try_from(event.device)
            .ok()
            .and_then(|i| devices.get_mut(i))
        else {
            continue;
        };
        let group = dev.group;
        if event.signal == Signal::Metrics && paths.scrape.is_some() {
            continue;
        }
        if let Some(plan) = &plan {
            let slot = usize::try_from(event.device).unwrap_or(usize::MAX);
            let generation = plan.generation(slot, event.at);
            if generation != dev.generation
                && let Some(original) = fleet.devices.get(slot)
            {
                let d = dynamics::replacement(original, generation);
                *dev = DeviceState::new(&d, cfg.fleet.seed, group, generation, run);
                dyn_totals.replaced += 1;
            }
            if plan.offline(slot, event.at) {
                for (item, stamp) in payloads(dev, &event, cfg.canary_every, otlp) {
                    if dev.backlog.len() < dynamics::BACKLOG_LIMIT {
                        let signal = match &item {
                            Item::Push(p) => p.signal(),
                            Item::Log(_) => Signal::Logs,
                        };
                        dev.backlog.push((item, stamp, signal));
                    } else {
                        dyn_totals.backfill_dropped += 1;
                    }
                }
                continue;
            }
            if !dev.backlog.is_empty() {
                let backlog = std::mem::take(&mut dev.backlog);
                dyn_totals.backfilled_items += backlog.len() as u64;
                tasks.spawn(backfill(backlog, event, group, out.clone()));
            }
        }
        for (item, stamp) in payloads(dev, &event, cfg.canary_every, otlp) {
            let payload = match (item, paths.files.as_mut()) {
                (Item::Push(p), _) => p,
                (Item::Log(entry), None) => log_payload(entry, otlp),
                (Item::Log(entry), Some(files)) => {
                    let index = dev.signals.device().index;
                    let error = files
                        .append(
                            usize::try_from(event.device).unwrap_or(usize::MAX),
                            &dev.id,
                            &entry,
                        )
                        .err()
                        .map(|e| {
                            tracing::debug!(error = %e, "log file append failed");
                            "file".to_string()
                        });
                    let d = Delivered {
                        device: usize::try_from(event.device).unwrap_or(usize::MAX),
                        signal: Signal::Logs,
                        intended: event.at,
                        completed: start.elapsed(),
                        items: 1,
                        error,
                        canary: stamp.as_ref().map(|s| (s.seq, s.sent_ns)),
                    };
                    shared.delivered(&d, cfg.warmup, group, &dev.id, index);
                    continue;
                }
            };
            let mut event = event;
            event.signal = payload.signal();
            let part = batch::Part {
                event,
                group,
                items: payload.items(),
                stamp,
            };
            if let Some(b) = batcher.add(part, payload) {
                send_batch(b, &out, &mut tasks).await;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    for b in batcher.drain() {
        send_batch(b, &out, &mut tasks).await;
    }
    while tasks.join_next().await.is_some() {}
    if let Some(s) = &paths.scrape {
        s.end()?;
    }
    Ok(dyn_totals)
}

/// Sends one batch (waiting for a permit of its target) in a task; each part is recorded as
/// its own attempt, with its own intended time, when the request completes.
async fn send_batch(b: batch::Batch, out: &Outbound, tasks: &mut JoinSet<()>) {
    let target = out.target_of(&b.payload);
    let shared = out.shared.clone();
    let start = out.start;
    let req = match b.payload.prepare(target) {
        Ok(req) => req,
        Err(e) => {
            let kind = e.kind();
            for p in b.parts {
                shared.attempt(
                    &p.event,
                    p.group,
                    start.elapsed(),
                    p.items,
                    Some(&kind),
                    None,
                );
            }
            return;
        }
    };
    let permit = out.senders.acquire(req.url()).await;
    let senders = out.senders.clone();
    let request = Request {
        signal: b.payload.signal(),
        completed: Duration::ZERO,
        bytes: req.body_len(),
        warmup: b.parts.iter().all(|p| p.event.warmup),
    };
    tasks.spawn(async move {
        let outcome = senders.execute(permit, req).await;
        let completed = start.elapsed();
        shared.recorder.request(&Request {
            completed,
            ..request
        });
        let error = outcome.error_key();
        for p in b.parts {
            let stamp = if error.is_none() { p.stamp } else { None };
            shared.attempt(
                &p.event,
                p.group,
                completed,
                p.items,
                error.as_deref(),
                stamp,
            );
        }
    });
}

/// What a backfill task needs to send and record.
#[derive(Clone)]
struct Outbound {
    senders: Senders,
    shared: Arc<Shared>,
    targets: Arc<[Target; 3]>,
    otlp: bool,
    start: Instant,
}

impl Outbound {
    /// Where a payload goes: OTLP payloads of every signal to the OTLP receiver.
    fn target_of(&self, payload: &Payload) -> &Target {
        match payload {
            Payload::OtlpLogs(_) | Payload::OtlpMetrics(_) | Payload::OtlpTraces(_) => {
                &self.targets[Signal::Traces.index()]
            }
            _ => &self.targets[payload.signal().index()],
        }
    }
}

/// Sends an offline device's backlog, oldest first, one request at a time (so each series'
/// samples stay in order), timed from the event that found it back online. Canaries count as
/// sent when they are sent.
async fn backfill(
    backlog: Vec<(Item, Option<Stamp>, Signal)>,
    event: Event,
    group: usize,
    out: Outbound,
) {
    for (item, stamp, signal) in backlog {
        let payload = match item {
            Item::Push(p) => p,
            Item::Log(entry) => log_payload(entry, out.otlp),
        };
        let mut event = event;
        event.signal = signal;
        let stamp = stamp.map(|s| Stamp {
            sent_ns: now_ns(),
            ..s
        });
        let target = out.target_of(&payload);
        let outcome = match payload.prepare(target) {
            Ok(req) => {
                let bytes = req.body_len();
                let permit = out.senders.acquire(req.url()).await;
                let outcome = out.senders.execute(permit, req).await;
                out.shared.recorder.request(&Request {
                    signal,
                    completed: out.start.elapsed(),
                    bytes,
                    warmup: event.warmup,
                });
                outcome
            }
            Err(e) => Outcome {
                items: payload.items(),
                result: Err(e),
            },
        };
        let stamp = if outcome.result.is_ok() { stamp } else { None };
        out.shared
            .finish(&event, group, out.start.elapsed(), &outcome, stamp);
    }
}

/// Runs the whole thing and writes `results.json` and `report.html` into the run folder.
pub async fn run(cfg: &RunConfig) -> Result<(Results, PathBuf), RunError> {
    check(cfg)?;
    let started = chrono::Utc::now();
    let dir = run_dir(cfg, &started);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let fleet = match cfg.shard {
        Some(s) => Fleet::generate_shard(&cfg.fleet, s.index, s.count)?,
        None => Fleet::generate(&cfg.fleet),
    };
    let (rows, of_device) = groups(&fleet);
    let ledger = Arc::new(Ledger::new());
    let run_id = {
        let ns = started.timestamp_nanos_opt().unwrap_or_default() as u64;
        (ns ^ (ns >> 32)) as u32
    };
    let shared = Arc::new(Shared {
        run: run_id,
        recorder: Recorder::new(cfg.interval, cfg.warmup),
        ledger: ledger.clone(),
        breakdown: Mutex::new(rows),
        progress: cfg.progress.clone().unwrap_or_default(),
    });
    let mut paths = Paths::start(cfg, &fleet, &dir, &shared, &of_device).await?;
    let setup = Setup::start(&cfg.target, &paths.collector_extra()).await?;
    if let Err(e) = preflight(cfg, &setup).await {
        setup.stop().await;
        return Err(e);
    }
    tracing::info!(devices = fleet.devices.len(), target = %cfg.target.describe(), delivery = %cfg.delivery, "run starting");
    let verifier = Verifier::new(
        &setup.verify,
        ledger,
        VerifierConfig {
            poll_interval: Duration::from_secs(1),
            drain_timeout: cfg.drain_timeout,
            run: run_id,
            // Backfilled items carry timestamps from up to the offline window before they
            // are sent: the read-back window reaches that far back.
            window_margin: VerifierConfig::default().window_margin
                + if cfg.dynamics.offline_share > 0.0 {
                    let (from, until) = cfg.dynamics.offline_window(cfg.duration);
                    until.saturating_sub(from)
                } else {
                    Duration::ZERO
                },
            ..VerifierConfig::default()
        },
    );
    let mut sampler = ResourceSampler::new(std::time::Instant::now());
    if let Some(pid) = setup.collector_pid() {
        sampler = sampler.watch("collector", pid);
    }
    let sampler = sampler.spawn(Duration::from_secs(1));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sending = async {
        let r = send_all(cfg, &fleet, &setup, &shared, &of_device, &mut paths).await;
        let _ = stop_tx.send(());
        r
    };
    let canaries = || crate::progress::canary_counts(&shared.ledger, &verifier);
    let polling = crate::progress::track(
        &shared.progress,
        &canaries,
        verifier.poll_until(async {
            let _ = stop_rx.await;
        }),
    );
    let (sent, ()) = tokio::join!(sending, polling);
    let dynamics = sent?;
    tracing::info!(
        pending = verifier.pending(),
        "sending done, draining canaries"
    );
    let verified = crate::progress::draining(
        &shared.progress,
        cfg.drain_timeout,
        &canaries,
        verifier.drain(),
    )
    .await;
    let resources = sampler.stop().await;
    setup.stop().await;
    if let Some(s) = paths.scrape.take() {
        s.shutdown().await;
    }

    let report = shared
        .recorder
        .report(cfg.duration.saturating_sub(cfg.warmup));
    let target_rates = target_rates(&fleet, cfg.rate_multiplier, cfg.delivery);
    let mut verifications = verified.verifications();
    let signals = report
        .signals
        .into_iter()
        .map(|(name, totals)| {
            let v = verifications
                .remove(&name)
                .unwrap_or_else(|| Verification::empty(LATENCY_UNIT));
            let mut r = totals.into_results(v);
            r.target_items_per_second = target_rates
                .iter()
                .find(|(s, _)| s.as_str() == name)
                .map_or(0.0, |(_, rate)| *rate);
            (name, r)
        })
        .collect();
    let mut results = Results {
        schema_version: reports::SCHEMA_VERSION,
        run: RunInfo {
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            started_at: started.to_rfc3339(),
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            seed: cfg.fleet.seed,
            devices: fleet.devices.len() as u64,
            shard: cfg.shard.and_then(Shard::to_results),
            shards_merged: 1,
            target: match cfg.delivery {
                Delivery::Push => cfg.target.describe(),
                d => format!("{}, delivery {d}", cfg.target.describe()),
            },
            rate_multiplier: cfg.rate_multiplier,
            loadgen_version: env!("CARGO_PKG_VERSION").to_string(),
            command: cfg.command.clone(),
        },
        fleet: reports::results::FleetSummary {
            dynamics,
            ..fleet.summary()
        },
        signals,
        intervals: report.intervals,
        breakdown: std::mem::take(&mut *shared.breakdown.lock()),
        resources,
        slos: Vec::new(),
        defaults_off: false,
        verdict: None,
    };
    Objectives::new(&cfg.slos, cfg.default_slos).judge(&mut results);
    write_outputs(&results, &dir, None)?;
    Ok((results, dir))
}

/// Writes `results.json` and `report.html` (against `baseline`, if given) into `dir`.
pub fn write_outputs(
    results: &Results,
    dir: &Path,
    baseline: Option<&Results>,
) -> Result<(), RunError> {
    let json = dir.join("results.json");
    std::fs::write(&json, results.to_json()).map_err(io_err(&json))?;
    write_report(results, dir, baseline)
}

/// Writes `report.html` into `dir`.
pub fn write_report(
    results: &Results,
    dir: &Path,
    baseline: Option<&Results>,
) -> Result<(), RunError> {
    let html = dir.join("report.html");
    std::fs::write(&html, reports::render(results, baseline)).map_err(io_err(&html))
}
