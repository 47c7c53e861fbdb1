//! A whole load run, in outline: check the settings, start the target (the stack × the
//! collector), probe it, send the fleet's schedule while the verifier reads canaries back,
//! drain, and write one [`reports::Results`] as `results.json` and `report.html` into the run
//! folder. Each step has its module:
//!
//! | step | module |
//! |---|---|
//! | settings, checks, errors | [`config`] ([`RunConfig`], [`CollectorChoice`], [`check`]) |
//! | target: stack, collector, delivery paths | `target` (its collector's config: [`collector`]) |
//! | preflight probes | [`preflight`] |
//! | sending the schedule | [`crate::engine`] (each device's state: `devices`; counting: `accounting`) |
//! | churn and offline devices | [`dynamics`] |
//! | results and their files | `results` ([`write_outputs`], [`write_report`]) |
//!
//! Each device has three streams: logs (Poisson, its log rate), metrics (fixed interval, its
//! scrape interval, sent as remote write) and traces (Poisson, its checkout rate; each checkout
//! also sends its POS log line as a log push). Every `canary_every`-th event of a device's signal
//! carries a canary, starting with the first.
//!
//! With [`RunConfig::delivery`] other than push (a collector loadgen runs), metrics are scraped
//! by that collector and/or logs are tailed from files instead; see [`crate::deliver`].

pub(crate) mod accounting;
pub mod agent;
pub mod collector;
pub mod config;
pub(crate) mod devices;
pub mod dynamics;
pub mod preflight;
pub mod process;
pub mod receivers;
mod results;
pub(crate) mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reports::Results;

use crate::fleet::Fleet;
use crate::recorder::{Recorder, ResourceSampler};
use crate::send::{SenderConfig, Senders};
use crate::verify::{Ledger, Verifier, VerifierConfig};
use accounting::Shared;
use target::{Paths, Setup};

pub use crate::progress::Progress;
pub use config::{CollectorChoice, DEFAULT_BATCH_WINDOW, RunConfig, RunError, check};
pub use reports::verdict::{Objectives, Slo, SloError, SloKind};
pub use results::{write_outputs, write_report};

/// Runs the whole thing and writes `results.json` and `report.html` into the run folder.
pub async fn run(cfg: &RunConfig) -> Result<(Results, PathBuf), RunError> {
    check(cfg)?;
    let started = chrono::Utc::now();
    let dir = config::run_dir(cfg, &started);
    std::fs::create_dir_all(&dir).map_err(config::io_err(&dir))?;
    let fleet = match cfg.shard {
        Some(s) => Fleet::generate_shard(&cfg.fleet, s.index, s.count)?,
        None => Fleet::generate(&cfg.fleet),
    };
    let (rows, of_device) = accounting::groups(&fleet);
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

    // The target.
    let mut paths = Paths::start(cfg, &fleet, &dir, &shared, &of_device).await?;
    let setup = Setup::start(cfg, &paths.collector_extra()).await?;
    if let Err(e) = preflight::probe_run(cfg.delivery, &setup.targets, setup.verify()).await {
        setup.stop().await;
        return Err(e);
    }
    tracing::info!(devices = fleet.devices.len(), target = %cfg.describe_target(), delivery = %cfg.delivery, "run starting");
    let verifier = Verifier::new(setup.verify(), ledger, verifier_config(cfg, run_id));
    let mut sampler = ResourceSampler::new(std::time::Instant::now());
    if let Some(pid) = setup.collector_pid() {
        sampler = sampler.watch("collector", pid);
    }
    let sampler = sampler.spawn(Duration::from_secs(1));

    // Send, while the verifier reads back what is acknowledged.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sending = async {
        let r = async {
            // The stack's CA (--ca-file) is trusted for the collector's https receivers too.
            let senders = Senders::new(&SenderConfig {
                ca_file: setup.verify().ca_file.clone(),
                ..SenderConfig::default()
            })?;
            let targets = setup.targets.clone();
            crate::engine::send_all(
                senders, cfg, &fleet, targets, &shared, &of_device, &mut paths,
            )
            .await
        }
        .await;
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
    // Grafana viewers read dashboards for as long as the fleet sends (`--viewers`).
    let reading = async {
        match &cfg.viewers {
            Some(v) if v.viewers > 0 => {
                Some(crate::read::run_viewers(v, setup.verify(), cfg.duration, &dir).await)
            }
            _ => None,
        }
    };
    let (sent, (), read) = tokio::join!(sending, polling, reading);
    let read_path = read
        .transpose()
        .map_err(|e| RunError::Config(format!("viewers: {e}")))?;
    let dynamics = sent?;

    // Drain, stop, and put the results together.
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
    let evictions = setup.stack.evictions();
    if let Some(e) = evictions.filter(|e| e.any()) {
        tracing::warn!(
            log_entries = e.log_entries,
            samples = e.metric_samples,
            traces = e.traces,
            retention_mb = e.retention_bytes >> 20,
            "the embedded stack evicted acknowledged data to stay within its retention bound; \
             canaries written before may be counted lost (raise --embedded-retention-mb)"
        );
    }
    setup.stop().await;
    if let Some(s) = paths.scrape.take() {
        s.shutdown().await;
    }
    let measured = results::Measured {
        started,
        dir,
        dynamics,
        verified,
        resources,
        read_path,
        evictions,
    };
    let dir = measured.dir.clone();
    let results = results::assemble(cfg, &fleet, &shared, measured);
    write_outputs(&results, &dir, None)?;
    Ok((results, dir))
}

/// How the verifier reads back: backfilled items carry timestamps from up to the offline
/// window before they are sent, so the read-back window reaches that far back.
fn verifier_config(cfg: &RunConfig, run: u32) -> VerifierConfig {
    VerifierConfig {
        poll_interval: Duration::from_secs(1),
        drain_timeout: cfg.drain_timeout,
        run,
        window_margin: VerifierConfig::default().window_margin
            + if cfg.dynamics.offline_share > 0.0 {
                let (from, until) = cfg.dynamics.offline_window(cfg.duration);
                until.saturating_sub(from)
            } else {
                Duration::ZERO
            },
        ..VerifierConfig::default()
    }
}
