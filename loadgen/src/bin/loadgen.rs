//! The `loadgen` command line: `loadgen run` (also without a subcommand, so
//! `loadgen --devices 5000` works), `loadgen fleet`, `loadgen report`, `loadgen compare` and
//! `loadgen merge`, and `loadgen capacity` (stages of growing load to the knee). `run` and `fleet` take `--shard i/n` (or `--shard-from-env`: the index from
//! `LOADGEN_SHARD_INDEX`, else `JOB_COMPLETION_INDEX`, the count from `LOADGEN_SHARDS`) to
//! emulate the devices whose index % n == i. Logs go to stderr, and so does the progress (a
//! bar on a terminal, a plain line every 10 s otherwise); the summary goes to stdout.
//! `report`, `compare` and `merge` take run folders as well as results.json files.
//! Exit codes: 0 the run passed (or was not judged: `--no-default-slos` and no `--slo`), 1 it
//! failed an objective (the default ones: no loss, duplicates or refusals, every sent signal
//! verified) or could not finish, 2 bad flags or files, or the preflight probes failed (the
//! load never started). `capacity`: 0 a knee was found, 1 none (the first stage failed, or
//! none failed up to --max, or a stage could not run), 2 bad flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// mimalloc rather than glibc malloc: allocation was over a third of loadgen's CPU in a
/// 5000-device run (perf), and loadgen's cost must stay far below the system under test's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use loadgen::deliver::Delivery;
use loadgen::fleet::{Fleet, FleetSpec, Shard};
use loadgen::run::{CollectorChoice, Progress, RunConfig, RunError, Slo};
use reports::Results;
use reqwest::Url;
use stack::StackChoice;
use stack::external::ExternalArgs;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Emulates a retail fleet, pushes its telemetry through the collector, verifies what arrived and measures throughput, latency and loss.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the fleet against a target (the default command).
    Run(Box<RunArgs>),
    /// Print the fleet's summary and its first devices.
    Fleet(FleetArgs),
    /// Render report.html next to a results.json.
    Report {
        results: PathBuf,
        /// Another run's results.json to compare against in the report.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Print per-signal deltas of NEW against BASE (results.json files or run folders);
    /// warns when the runs' settings differ. Given two capacity.json files (or capacity
    /// folders), puts their knees side by side.
    Compare { base: PathBuf, new: PathBuf },
    /// Find the knee: run the fleet in stages of growing load (devices, or the rate
    /// multiplier with --by rate) until an objective breaks, then bisect between the last
    /// passing and the first failing stage. Judged by the run's default objectives plus
    /// p99_send_ms=1000 and p99_write_to_query_ms=5000 (each replaced by a --slo of its name).
    /// Writes capacity.json, capacity.html and a stage-NN-<load>/ run folder per stage.
    Capacity(Box<CapacityArgs>),
    /// Add the results of several shards into one.
    Merge {
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Be one device until stopped: serve its /metrics, append its log lines to
    /// LOG_DIR/DEVICE.log, send POS checkout traces over OTLP. Identity from NODE_TYPE,
    /// DEVICE, REGION, LOCATION, BRAND, PROBLEM_MODE (the node agent's variables).
    Node(NodeArgs),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum LoadBy {
    /// The number of devices (--devices is ignored).
    #[default]
    Devices,
    /// The rate multiplier, with the fleet fixed at --devices (--rate is ignored).
    Rate,
}

/// `loadgen capacity`: the run's flags (each stage is a run) and the search's. A stage runs for
/// --stage-duration and drains for at most --stage-drain (--duration and --drain are the run's
/// and are not used); --out is the search's folder.
#[derive(Args, Debug)]
#[command(
    mut_arg("duration", |a| a.hide(true)),
    mut_arg("drain", |a| a.hide(true))
)]
struct CapacityArgs {
    #[command(flatten)]
    run: RunArgs,
    /// What grows from stage to stage.
    #[arg(long, value_enum, default_value_t = LoadBy::Devices)]
    by: LoadBy,
    /// The first stage's load [default: 250 devices, or x1 rate].
    #[arg(long)]
    start: Option<f64>,
    /// Each ramp stage's load is the previous one's times this.
    #[arg(long, default_value_t = 2.0)]
    factor: f64,
    /// No stage above this load [default: 64000 devices, or x64 rate].
    #[arg(long)]
    max: Option<f64>,
    /// Bisection stops when the first failing load is within this fraction above the last
    /// passing one.
    #[arg(long, default_value_t = 0.15)]
    resolution: f64,
    /// Sending time of each stage (long enough for every device to send a canary of each
    /// signal: metrics come every 15 s).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    stage_duration: Duration,
    /// How long each stage waits for its canaries after sending.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    stage_drain: Duration,
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// Address of the device's /metrics.
    #[arg(long, env = "NODE_LISTEN", default_value = "127.0.0.1:9300")]
    listen: std::net::SocketAddr,
    /// Folder of the device's log file (DEVICE.log).
    #[arg(long, env = "LOG_DIR", default_value = "/var/log/retail")]
    log_dir: PathBuf,
    /// OTLP/HTTP base URL for checkout traces (POS), e.g. http://127.0.0.1:4318.
    #[arg(long, env = "OTLP_URL", hide_env_values = true, value_parser = UrlArg)]
    otlp: Option<Url>,
    #[arg(long, env = "NODE_SEED", default_value_t = 42)]
    seed: u64,
    /// Multiplies the device's nominal log and checkout rates.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
}

/// Which fleet.
#[derive(Args, Debug, Clone)]
struct FleetFlags {
    /// Devices in the fleet [default: 5000, or the fleet file's].
    #[arg(long)]
    devices: Option<u64>,
    /// Seed of the fleet and the schedule [default: 1, or the fleet file's].
    #[arg(long)]
    seed: Option<u64>,
    /// A fleet spec (TOML).
    #[arg(long, value_name = "FILE")]
    fleet: Option<PathBuf>,
    /// Only shard I of N: the devices whose index % N == I.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// The shard from the environment: the index from LOADGEN_SHARD_INDEX, else
    /// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), the count from LOADGEN_SHARDS.
    #[arg(long, conflicts_with = "shard")]
    shard_from_env: bool,
}

impl FleetFlags {
    fn spec(&self) -> Result<FleetSpec, Usage> {
        let mut spec = match &self.fleet {
            Some(path) => FleetSpec::load(path).map_err(|e| Usage(format!("--fleet: {e}")))?,
            None => FleetSpec {
                devices: 5000,
                ..FleetSpec::default()
            },
        };
        if let Some(d) = self.devices {
            spec.devices = d;
        }
        if let Some(s) = self.seed {
            spec.seed = s;
        }
        Ok(spec)
    }

    fn shard(&self) -> Result<Option<Shard>, Usage> {
        if self.shard_from_env {
            let shard = Shard::from_env(|k| std::env::var(k).ok())
                .map_err(|e| Usage(format!("--shard-from-env: {e}")))?;
            return Ok(Some(shard));
        }
        Ok(self.shard)
    }

    /// The fleet, or its shard.
    fn generate(&self) -> Result<(FleetSpec, Option<Shard>, Fleet), Usage> {
        let spec = self.spec()?;
        let shard = self.shard()?;
        let fleet = match shard {
            Some(s) => Fleet::generate_shard(&spec, s.index, s.count)
                .map_err(|e| Usage(format!("--shard: {e}")))?,
            None => Fleet::generate(&spec),
        };
        Ok((spec, shard, fleet))
    }
}

#[derive(Args, Debug)]
struct FleetArgs {
    #[command(flatten)]
    fleet: FleetFlags,
    /// How many devices to list.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum StackKind {
    #[default]
    Embedded,
    External,
    Containers,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    fleet: FleetFlags,
    /// Sending time, warmup included.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Leading time left out of the measurements.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Multiplies every device's nominal rates.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Every n-th event of a device's signal carries a canary (0: none).
    #[arg(long, default_value_t = 10)]
    canary_every: u64,
    /// How long to wait for canaries after the run.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// How data reaches the collector: push; scrape (metrics scraped from per-device targets
    /// listed in a file_sd file); files (logs appended to per-device files it tails); mixed
    /// (both); otlp (logs and metrics over OTLP/HTTP too). Traces always go by OTLP. Scrape,
    /// files and mixed need a collector loadgen runs (in-process, or --collector-cmd); otlp a
    /// collector.
    #[arg(long, default_value = "push", value_parser = parse_delivery)]
    delivery: Delivery,
    /// Share of the fleet replaced per minute by new devices (new ids, series and streams),
    /// e.g. 0.05; push delivery.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    churn: f64,
    /// Share of the devices whose link goes down for a window: they buffer and backfill with
    /// their old timestamps when back, e.g. 0.1; push delivery.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    offline: f64,
    /// Start of the offline window [default: a third into the run].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    offline_from: Option<Duration>,
    /// Length of the offline window [default: a third of the run].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    offline_for: Option<Duration>,
    /// Events due within this window share one request per kind (a Loki push with many
    /// streams, a remote write with many series): far fewer requests, each event's wait counted
    /// in its send latency. 0: one request per event.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms", value_name = "DURATION")]
    batch_window: Duration,
    /// Grafana viewers (goose users) refreshing dashboards while the fleet writes; 0: none.
    #[arg(long, default_value_t = 0)]
    viewers: usize,
    /// A dashboard JSON the viewers open (repeatable) [default: deploy/grafana/dashboards/*].
    #[arg(long, value_name = "FILE")]
    dashboard: Vec<PathBuf>,
    /// Refresh dashboards this often instead of their own `refresh` (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    viewer_refresh: Option<Duration>,
    /// Run folder [default: runs/<timestamp>-<devices>d].
    #[arg(long)]
    out: Option<PathBuf>,
    /// An objective, name=value (loss, duplicates, errors, unverified, p99_send_ms,
    /// p99_write_to_query_ms, collector_rss_mb, collector_cpu_cores, p99_query_ms,
    /// query_errors); repeatable. Each replaces the default of its name; the defaults are
    /// loss=0, duplicates=0, errors=0, unverified=0, and query_errors=0 with --viewers.
    #[arg(long, value_name = "NAME=VALUE")]
    slo: Vec<Slo>,
    /// Judge the run only by the --slo given, not by the default objectives (no loss,
    /// duplicates or refusals; every sent signal verified). The verdict says so.
    #[arg(long)]
    no_default_slos: bool,
    /// Send to a running collector on this host (http://HOST, no port): Loki push on 3500,
    /// remote write on 19291, OTLP/HTTP on 4318 (the shipped gateway's ports); the
    /// --collector-*-url flags override each.
    #[arg(
        long,
        env = "COLLECTOR_URL",
        hide_env_values = true,
        value_name = "URL",
        value_parser = UrlArg,
        conflicts_with = "direct"
    )]
    collector: Option<Url>,
    /// The collector's Loki push receiver (base URL, or the full .../loki/api/v1/push URL).
    #[arg(
        long,
        env = "COLLECTOR_LOKI_URL",
        hide_env_values = true,
        value_name = "URL",
        value_parser = UrlArg,
        conflicts_with = "direct"
    )]
    collector_loki_url: Option<Url>,
    /// The collector's remote-write receiver (full URL, e.g. http://HOST:19291/api/v1/write).
    #[arg(
        long,
        env = "COLLECTOR_WRITE_URL",
        hide_env_values = true,
        value_name = "URL",
        value_parser = UrlArg,
        conflicts_with = "direct"
    )]
    collector_write_url: Option<Url>,
    /// The collector's OTLP/HTTP receiver (base URL; /v1/traces, /v1/logs, /v1/metrics appended).
    #[arg(
        long,
        env = "COLLECTOR_OTLP_URL",
        hide_env_values = true,
        value_name = "URL",
        value_parser = UrlArg,
        conflicts_with = "direct"
    )]
    collector_otlp_url: Option<Url>,
    /// Spawn the collector binary (PATH, or the `collector` beside this executable) in front of
    /// the stack and sample its CPU and RSS from /proc. With --collector-config (or --agent):
    /// any agent's command line, with {{placeholders}} such as {{config}} (e.g. 'alloy run
    /// {{config}}').
    #[arg(long, value_name = "PATH|COMMAND", num_args = 0..=1, default_missing_value = "",
          conflicts_with_all = ["direct", "collector", "collector_loki_url", "collector_write_url", "collector_otlp_url"])]
    collector_cmd: Option<String>,
    /// The config template of the agent --collector-cmd runs: {{name}} placeholders for the
    /// ports loadgen assigns and the stack's endpoints (deploy/peers/README.md); rendered into
    /// the run folder's agent/.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["direct", "collector"])]
    collector_config: Option<PathBuf>,
    /// A shipped agent, its command and template from deploy/peers/: collector, alloy, vector,
    /// otelcol, prometheus-agent (metrics by scrape: add --delivery scrape). --collector-cmd and
    /// --collector-config override its command and template.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["direct", "collector", "collector_loki_url", "collector_write_url", "collector_otlp_url"])]
    agent: Option<String>,
    /// With --collector-cmd and --collector-config: the HTTP path on {{agent_port}} that answers
    /// 2xx once the agent is ready [default: its receiver ports accepting connections].
    #[arg(long, value_name = "PATH")]
    collector_ready: Option<String>,
    /// With --collector-cmd and --collector-config: the path of the agent's remote-write
    /// receiver.
    #[arg(long, value_name = "PATH", default_value = "/api/v1/write")]
    collector_write_path: String,
    /// Push straight to the stack, without a collector.
    #[arg(long)]
    direct: bool,
    /// The stack: embedded (in-process), external (the flags below), or containers (the real
    /// images in Docker; needs a build with the `containers` feature).
    #[arg(long, value_enum, default_value_t = StackKind::Embedded)]
    stack: StackKind,
    /// Memory each backend of the embedded stack keeps before evicting its oldest data (MiB);
    /// evicted canaries count as lost, and the verdict says the stack evicted them.
    #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    embedded_retention_mb: u64,
    #[command(flatten)]
    external: ExternalArgs,
}

/// A URL flag's parser whose error does not quote the value: clap's own would print it whole,
/// credentials included.
#[derive(Clone)]
struct UrlArg;

impl clap::builder::TypedValueParser for UrlArg {
    type Value = Url;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Url, clap::Error> {
        let flag = arg.map(|a| a.to_string()).unwrap_or_default();
        let invalid = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '{flag}': {reason}\n",
                    wire::redact::url(&value.to_string_lossy())
                ),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| invalid("not UTF-8".into()))?;
        Url::parse(text).map_err(|e| invalid(e.to_string()))
    }
}

/// A bad flag or file: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// A failed run: exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // Log lines with the credentials of any URL they quote masked.
        .with_writer(|| wire::redact::Writer::new(std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,goose=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {}", wire::redact::text(&format!("{e:#}")));
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Fleet(args)) => fleet(&args),
        Some(Command::Report { results, baseline }) => report(&results, baseline.as_deref()),
        Some(Command::Compare { base, new }) => {
            use loadgen::combine::capacity_path;
            match (capacity_path(&base), capacity_path(&new)) {
                (Some(b), Some(n)) => {
                    let text = loadgen::combine::compare_capacity(
                        &read_capacity(&b)?,
                        &read_capacity(&n)?,
                    );
                    print!("{}", wire::redact::text(&text));
                    return Ok(());
                }
                (None, None) => {}
                _ => {
                    return Err(Usage(
                        "compare two capacity.json files, or two results: not one of each".into(),
                    )
                    .into());
                }
            }
            let (base, new) = (read(&base)?, read(&new)?);
            for w in loadgen::combine::setting_differences(&base, &new) {
                eprintln!("loadgen: warning: {}", wire::redact::text(&w));
            }
            print!(
                "{}",
                wire::redact::text(&loadgen::combine::compare(&base, &new))
            );
            Ok(())
        }
        Some(Command::Merge { inputs, out }) => merge(&inputs, &out),
        Some(Command::Capacity(args)) => capacity(*args),
        Some(Command::Node(args)) => node(args),
    }
}

fn node(args: NodeArgs) -> anyhow::Result<()> {
    use loadgen::node::{Node, NodeIdentity, NodeOptions};
    let identity =
        NodeIdentity::from_env(|k| std::env::var(k).ok()).map_err(|e| Usage(e.to_string()))?;
    let opts = NodeOptions {
        listen: args.listen,
        log_dir: Some(args.log_dir),
        otlp: args.otlp,
        seed: args.seed,
        rate_multiplier: args.rate,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(async {
        let node = Node::start(identity, opts).await?;
        println!(
            "node {} ({}) serving http://{}/metrics{}",
            node.identity().device,
            node.identity().device_type.as_str(),
            node.metrics_addr(),
            node.log_path()
                .map(|p| format!(", logging to {}", p.display()))
                .unwrap_or_default()
        );
        stop_signal().await;
        node.stop().await;
        anyhow::Ok(())
    })
}

/// Ctrl-C or SIGTERM (what `docker stop` sends).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A results.json, or the results.json of a run folder.
fn read(path: &Path) -> anyhow::Result<Results> {
    let path = &loadgen::combine::results_path(path);
    let text =
        std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    Ok(Results::from_json(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?)
}

/// A capacity.json.
fn read_capacity(path: &Path) -> anyhow::Result<reports::Capacity> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    Ok(reports::Capacity::from_json(&text)
        .map_err(|e| Usage(format!("{}: {e}", path.display())))?)
}

fn fleet(args: &FleetArgs) -> anyhow::Result<()> {
    let (spec, shard, fleet) = args.fleet.generate()?;
    let s = fleet.summary();
    let of_shard = shard
        .map(|s| format!(" (shard {s} of {} devices)", spec.devices))
        .unwrap_or_default();
    println!(
        "fleet: {} devices{of_shard}, seed {}, {} stores, {} in problem mode",
        fleet.devices.len(),
        spec.seed,
        s.stores,
        s.problem_devices
    );
    println!("by type:   {:?}", s.by_type);
    println!("by region: {:?}", s.by_region);
    let shown = args.show.min(fleet.devices.len());
    println!("first {shown} devices:");
    for d in fleet.devices.iter().take(shown) {
        println!(
            "device {:>6}  {:<28} {:<7} {:<12} {:<16} {:<8}{}",
            d.index,
            d.id,
            d.device_type.as_str(),
            d.region,
            d.location,
            d.brand,
            if d.problem { " problem" } else { "" }
        );
    }
    Ok(())
}

fn report(path: &Path, baseline: Option<&Path>) -> anyhow::Result<()> {
    let results = read(path)?;
    let base = baseline.map(read).transpose()?;
    let path = loadgen::combine::results_path(path);
    let dir = path.parent().unwrap_or(Path::new("."));
    loadgen::run::write_report(&results, dir, base.as_ref())?;
    println!("{}", dir.join("report.html").display());
    Ok(())
}

fn merge(inputs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let all = inputs
        .iter()
        .map(|p| read(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = loadgen::combine::merge(&all).map_err(|e| Usage(e.to_string()))?;
    std::fs::write(out, wire::redact::text(&merged.to_json()).as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    print!("{}", wire::redact::text(&reports::summary(&merged)));
    Ok(())
}

/// The command line with credentials masked: secret flags' values, URLs' passwords and secret
/// query parameters ([`wire::redact::args`]).
fn command_line() -> String {
    wire::redact::args(std::env::args_os().map(|a| a.to_string_lossy().into_owned()))
}

/// The stack and the collector of `--stack`, `--direct`, `--collector*` and `--collector-cmd`.
fn target(args: &RunArgs) -> anyhow::Result<(StackChoice, CollectorChoice)> {
    let stack = match args.stack {
        StackKind::Embedded => StackChoice::Embedded(stack::embedded::EmbeddedConfig {
            retention_bytes: usize::try_from(args.embedded_retention_mb)
                .unwrap_or(usize::MAX)
                .saturating_mul(1 << 20),
            // The stream and series limits deploy/ sets for load runs: a default Loki would
            // refuse the streams of a fleet over 5,000 devices.
            loki_limits: stack::embedded::limits::LokiLimits::for_load_runs(),
            mimir_limits: stack::embedded::limits::MimirLimits::for_load_runs(),
            ..Default::default()
        }),
        StackKind::External => StackChoice::External(args.external.clone()),
        StackKind::Containers => StackChoice::Containers(stack::choice::ContainersConfig {
            without_docker: "--stack containers needs a Docker engine; use --stack embedded (the default) or --stack external with your stack's URLs".into(),
            ..Default::default()
        }),
    };
    if let Some(spec) = agent_spec(args)? {
        return Ok((stack, CollectorChoice::Agent(Box::new(spec))));
    }
    if let Some(path) = &args.collector_cmd {
        let program = if path.is_empty() {
            loadgen::run::process::default_program()?
        } else {
            PathBuf::from(path)
        };
        return Ok((stack, CollectorChoice::Spawned { program }));
    }
    let receivers = loadgen::run::receivers::ReceiverFlags {
        host: args.collector.clone(),
        loki: args.collector_loki_url.clone(),
        remote_write: args.collector_write_url.clone(),
        otlp: args.collector_otlp_url.clone(),
    };
    if receivers.given() {
        let receivers = receivers.resolve().map_err(|e| Usage(e.to_string()))?;
        // A running collector writes to a running stack: the external one of the flags, unless
        // containers were asked for.
        let stack = match stack {
            StackChoice::Embedded(_) => StackChoice::External(args.external.clone()),
            other => other,
        };
        return Ok((stack, CollectorChoice::Remote(Box::new(receivers))));
    }
    let collector = if args.direct {
        CollectorChoice::None
    } else {
        CollectorChoice::InProcess
    };
    Ok((stack, collector))
}

/// The agent of `--agent`, `--collector-cmd` and `--collector-config`, when it comes from a
/// template (`--collector-cmd PATH` alone is our collector with its typed config).
fn agent_spec(args: &RunArgs) -> anyhow::Result<Option<loadgen::run::agent::AgentSpec>> {
    use loadgen::run::agent::{self, AgentSpec, Readiness, Template};
    let template = match &args.collector_config {
        Some(path) => Some(Template {
            file: path.display().to_string(),
            text: std::fs::read_to_string(path)
                .map_err(|e| Usage(format!("--collector-config {}: {e}", path.display())))?,
        }),
        None => None,
    };
    let command = args.collector_cmd.clone().filter(|c| !c.trim().is_empty());
    let mut spec = match (&args.agent, template) {
        (Some(name), template) => {
            let shipped = agent::shipped(name).ok_or_else(|| {
                let names: Vec<&str> = agent::SHIPPED.iter().map(|s| s.name).collect();
                Usage(format!(
                    "--agent {name}: not a shipped agent ({})",
                    names.join(", ")
                ))
            })?;
            AgentSpec::from_shipped(shipped, template)
        }
        (None, Some(template)) => {
            let command = command.clone().ok_or_else(|| {
                Usage("--collector-config needs the agent's command line: --collector-cmd 'PROGRAM ... {{config}}', or --agent NAME".into())
            })?;
            AgentSpec {
                name: agent::name_of_command(&command),
                command,
                template,
                ready: args
                    .collector_ready
                    .clone()
                    .map_or(Readiness::Listening, Readiness::Http),
                remote_write_path: args.collector_write_path.clone(),
            }
        }
        (None, None) => {
            if command.as_deref().is_some_and(|c| c.contains("{{")) {
                return Err(Usage(
                    "--collector-cmd with placeholders needs --collector-config FILE (the template they fill)".into(),
                )
                .into());
            }
            return Ok(None);
        }
    };
    if let Some(c) = command {
        spec.command = c;
    }
    if let Some(path) = &args.collector_ready {
        spec.ready = Readiness::Http(path.clone());
    }
    // An unknown placeholder is a bad file: named before anything starts.
    agent::placeholders_in(&spec.template.file, &spec.template.text)
        .map_err(|e| Usage(e.to_string()))?;
    agent::placeholders_in("--collector-cmd", &spec.command).map_err(|e| Usage(e.to_string()))?;
    Ok(Some(spec))
}

fn parse_delivery(s: &str) -> Result<Delivery, String> {
    s.parse()
        .map_err(|e: loadgen::deliver::DeliverError| e.to_string())
}

/// The run settings of the run flags.
fn run_config(args: &RunArgs, progress: Option<Arc<Progress>>) -> anyhow::Result<RunConfig> {
    let (stack, collector) = target(args)?;
    // `--grafana-url` / GRAFANA_URL: the viewers' queries go through that Grafana.
    let grafana = args
        .external
        .grafana_url
        .as_deref()
        .map(|u| {
            reqwest::Url::parse(u)
                .map_err(|e| Usage(format!("--grafana-url / GRAFANA_URL {u:?}: {e}")))
        })
        .transpose()?;
    let cfg = RunConfig {
        fleet: args.fleet.spec()?,
        shard: args.fleet.shard()?,
        duration: args.duration,
        warmup: args.warmup,
        rate_multiplier: args.rate,
        canary_every: args.canary_every,
        drain_timeout: args.drain,
        out_dir: args.out.clone(),
        stack,
        collector,
        delivery: args.delivery,
        slos: args.slo.clone(),
        default_slos: !args.no_default_slos,
        command: command_line(),
        progress,
        batch_window: args.batch_window,
        viewers: (args.viewers > 0).then(|| loadgen::read::ViewersConfig {
            viewers: args.viewers,
            dashboards: args.dashboard.clone(),
            refresh: args.viewer_refresh,
            grafana,
            ..Default::default()
        }),
        dynamics: loadgen::run::dynamics::DynamicsSpec {
            churn_per_min: args.churn,
            offline_share: args.offline,
            offline_from: args.offline_from,
            offline_for: args.offline_for,
        },
        ..RunConfig::default()
    };
    if let Err(e) = cfg.fleet.validate() {
        return Err(Usage(e.to_string()).into());
    }
    Ok(cfg)
}

/// A run error as the exit code sees it: the run did not start (bad settings, no stack,
/// failed probes) is a usage error.
fn run_error(e: RunError) -> anyhow::Error {
    match e {
        RunError::Config(_)
        | RunError::Fleet(_)
        // No stack (bad URLs, no Docker, not built with containers): the run did not start.
        | RunError::Stack(_)
        // The agent did not start (or never got ready).
        | RunError::Agent { .. }
        | RunError::Preflight(_) => anyhow::Error::new(Usage(e.to_string())),
        other => other.into(),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let progress = Arc::new(Progress::default());
    let cfg = run_config(&args, Some(progress.clone()))?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (results, dir) = rt
        .block_on(async {
            let display = loadgen::progress::spawn(progress, cfg.duration, cfg.drain_timeout);
            let r = loadgen::run::run(&cfg).await;
            display.finish();
            r
        })
        .map_err(run_error)?;
    print!("{}", wire::redact::text(&reports::summary(&results)));
    println!("results: {}", dir.join("results.json").display());
    println!("report:  {}", dir.join("report.html").display());
    let verdict = results.verdict();
    match verdict.outcome {
        reports::Outcome::Fail => Err(Failed(verdict.headline()).into()),
        reports::Outcome::Pass | reports::Outcome::Unjudged => Ok(()),
    }
}

/// Progress of a capacity search, one line per stage on stderr.
struct StageLines;

impl loadgen::capacity::Observer for StageLines {
    fn starting(&mut self, index: u32, load: &str) {
        eprintln!("capacity: stage {index}: {load} ...");
    }

    fn finished(&mut self, s: &reports::capacity::Stage, load: &str) {
        eprintln!(
            "capacity: stage {}: {load}: {} · {} items/s · p99 send {:.1} ms · p99 write-to-query {:.1} ms · loss {:.3}% · refused {:.3}% · {} CPU {:.2} cores, RSS {:.0} MiB{}",
            s.index,
            s.outcome.as_str(),
            reports::html::fmt_f(s.total_items_per_second()),
            s.p99_send_ms,
            s.p99_write_to_query_ms,
            s.loss * 100.0,
            s.errors * 100.0,
            s.resources_of,
            s.cpu_cores,
            s.rss_mb,
            if s.broken.is_empty() {
                String::new()
            } else {
                format!(" · broke {}", reports::capacity::broken_names(&s.broken))
            }
        );
    }
}

fn capacity(args: CapacityArgs) -> anyhow::Result<()> {
    use loadgen::capacity::{CapacityConfig, LoadAxis, Plan};
    let mut base = run_config(&args.run, None)?;
    base.duration = args.stage_duration;
    base.drain_timeout = args.stage_drain;
    base.out_dir = None;
    let (by, start, max) = match args.by {
        LoadBy::Devices => (LoadAxis::Devices, 250.0, 64_000.0),
        LoadBy::Rate => (LoadAxis::Rate, 1.0, 64.0),
    };
    let plan = Plan::new(
        args.start.unwrap_or(start),
        args.factor,
        args.max.unwrap_or(max),
        args.resolution,
        by == LoadAxis::Devices,
    )
    .map_err(|e| Usage(e.to_string()))?;
    // Every stage's settings, checked once before the first starts.
    loadgen::run::check(&base).map_err(run_error)?;
    let cfg = CapacityConfig {
        base,
        by,
        plan,
        out_dir: args.run.out.clone(),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (c, dir) = rt
        .block_on(loadgen::capacity::search(&cfg, &mut StageLines))
        .map_err(|e| match e {
            loadgen::capacity::CapacityError::Run(e) => run_error(e),
            other => other.into(),
        })?;
    print!("{}", wire::redact::text(&c.summary()));
    println!("capacity: {}", dir.join("capacity.json").display());
    println!("report:   {}", dir.join("capacity.html").display());
    match c.knee.outcome {
        reports::capacity::KneeOutcome::Found => Ok(()),
        _ => Err(Failed(c.verdict_line()).into()),
    }
}
