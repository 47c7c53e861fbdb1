//! `collector`: `check --config F` validates a config and says what it would run;
//! `run --config F` runs it until Ctrl-C or SIGTERM, then drains and saves positions;
//! `bench` measures it (see [`collector::bench`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use collector::config::{Config, Section};
use collector::runtime::Collector;

/// glibc malloc (with its consolidation of freed chunks) was about a third of the metrics
/// pipeline's CPU under perf; mimalloc, as loadgen uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "collector",
    version,
    about = "Sources → process → writers for logs, metrics and traces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config: syntax, keys, settings, wiring, environment variables.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a config until Ctrl-C or SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Measure the collector: a fixed corpus through the logs, metrics and traces pipelines
    /// of a collector in its own process, into a backend that only acknowledges; prints
    /// items per CPU second and peak RSS per pipeline.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Pipelines to measure (repeatable, or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["logs", "metrics", "traces"])]
    pipeline: Vec<collector::bench::Pipeline>,
    /// Corpus size as a fraction of the full one (2 M lines, 2 M samples, 1 M spans).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    scale: f64,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where corpora, configs and the collector's logs go (kept; rewritten each run).
    #[arg(long, default_value = "target/collector-bench")]
    dir: PathBuf,
    /// How long one pipeline may take.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Also write the figures as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The collector binary to measure (default: this one), e.g. an earlier build, to compare
    /// two builds on the same corpus.
    #[arg(long, value_name = "PATH")]
    collector: Option<PathBuf>,
    /// The writer's buffer: `disk` measures what a disk buffer costs.
    #[arg(long, value_parser = ["memory", "disk"], default_value = "memory")]
    writer_buffer: String,
    /// Send a pipeline's output to a real backend instead of the null one (repeatable, or
    /// comma-separated): PIPELINE=BASE_URL, e.g. `logs=http://127.0.0.1:3100`,
    /// `metrics=http://127.0.0.1:9009`, `traces=http://127.0.0.1:4318` for `stack serve`. The
    /// writers post to `/loki/api/v1/push`, `/api/v1/push` and `/v1/traces` below it.
    #[arg(long, value_name = "PIPELINE=URL", value_delimiter = ',', value_parser = parse_backend)]
    backend: Vec<(collector::bench::Pipeline, String)>,
}

fn parse_backend(s: &str) -> Result<(collector::bench::Pipeline, String), String> {
    use clap::ValueEnum as _;
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected PIPELINE=URL, e.g. logs=http://127.0.0.1:3100"))?;
    let pipeline = collector::bench::Pipeline::from_str(name, true)
        .map_err(|_| format!("`{name}`: not a pipeline (logs, metrics, traces)"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}`: not an http(s) URL"));
    }
    Ok((pipeline, url.to_string()))
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "`{s}`: a fraction above 0 and at most 100 (1 = the full corpus)"
        )),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Log lines with the credentials of any URL they quote masked.
        .with_writer(|| wire::redact::Writer::new(std::io::stderr()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(run(&config))),
        Command::Bench(args) => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(bench(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", wire::redact::text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Every mistake of the config, one per line (`file:line: key: reason`), then how many.
fn check(path: &Path) -> anyhow::Result<()> {
    let config = match Config::check_file(path) {
        Ok((c, _)) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{}", wire::redact::text(&e.to_string()));
            }
            let n = errors.0.len();
            anyhow::bail!(
                "{}: {n} mistake{}",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
        }
    };
    let count = |s: Section| config.components.iter().filter(|c| c.section == s).count();
    println!(
        "{}: OK ({} sources, {} process, {} writers)",
        path.display(),
        count(Section::Sources),
        count(Section::Process),
        count(Section::Writers)
    );
    for c in &config.components {
        let kind = if c.kind.is_empty() {
            c.stages
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(" → ")
        } else {
            c.kind.clone()
        };
        let inputs = if c.inputs.is_empty() {
            String::new()
        } else {
            format!(" ← {}", c.inputs.join(", "))
        };
        println!("  {:<28} {kind}{inputs}", c.path());
    }
    Ok(())
}

/// Runs the bench and prints its summary; fails (exit 1) when an item was not acknowledged.
async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    use collector::bench::{BenchPlan, run, summary};
    let plan = BenchPlan {
        pipelines: args.pipeline,
        scale: args.scale,
        seed: args.seed,
        dir: args.dir,
        exe: match args.collector {
            Some(path) => path,
            None => std::env::current_exe().context("finding this binary")?,
        },
        timeout: args.timeout,
        disk_buffer: args.writer_buffer == "disk",
        backends: args.backend,
    };
    let results = run(&plan).await?;
    print!("{}", wire::redact::text(&summary(&results)));
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&results)?;
        std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
        println!("figures: {}", out.display());
    }
    anyhow::ensure!(
        results.iter().all(|m| m.passed()),
        "not every item was acknowledged (above)"
    );
    Ok(())
}

async fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::from_file(path)?;
    // Handlers before starting: a stop requested during start-up is still a clean stop.
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let collector = Collector::start(&config).await?;
    if let Some(addr) = collector.server_addr() {
        tracing::info!(%addr, "self-monitoring: /metrics, /-/healthy, /-/ready");
    }
    for (key, addr) in collector.listen_addrs().all() {
        tracing::info!(listener = %key, %addr, "listening");
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: draining queues and saving positions");
    collector.shutdown().await;
    Ok(())
}
