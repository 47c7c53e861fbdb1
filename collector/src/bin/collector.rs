//! `collector`: `check --config F` validates a config and says what it would run;
//! `run --config F` runs it until Ctrl-C or SIGTERM, then drains and saves positions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use collector::config::{Config, Section};
use collector::runtime::Collector;

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(run(&config))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
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
                eprintln!("{e}");
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
