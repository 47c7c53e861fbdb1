//! The engine: where loadgen decides when to send. `send_all` walks the open-loop
//! [`Schedule`] of every device's signals, sleeps until each event's *intended* time, builds
//! its items (`DeviceState::items`, `run/devices.rs`), batches them (`batch.rs`), and hands
//! each request to a [`Transport`] in a task of its own; every outcome is recorded against the event's intended
//! time, so a slow target shows as latency instead of slowing the schedule.
//!
//! - Open loop: the loop never waits for a response, only for the next intended time and for a
//!   permit of the target's in-flight bound ([`Transport::acquire`]). When a target is
//!   saturated the loop waits and falls behind schedule; latency is still measured from the
//!   intended time, so that wait shows. (A saturated target therefore also delays the other
//!   signals of the same shard; run one shard per target to keep them apart.)
//! - Batching (`--batch-window`, `batch.rs`): events due within one window share a request.
//! - Dynamics (`--churn`, `--offline`): a device replaced by churn starts a new generation; an
//!   offline device keeps what it produces in a backlog, sent oldest first, one request at a
//!   time, when it is back (`backfill.rs`).
//! - Delivery paths: metrics are skipped when the collector scrapes them; log lines are
//!   appended to files when it tails them ([`crate::deliver`]).
//!
//! The transport is a trait so that the engine's timing is tested on tokio's paused clock with
//! a fake one (`engine/tests.rs`); runs use [`Senders`] (HTTP).

mod backfill;
pub(crate) mod batch;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Url;
use stack::Endpoints;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::deliver::{Delivered, Delivery};
use crate::fleet::Fleet;
use crate::payload::{Payload, Prepared, log_payload};
use crate::recorder::Request;
use crate::run::accounting::Shared;
use crate::run::devices::{DeviceState, Item};
use crate::run::dynamics;
use crate::run::target::Paths;
use crate::run::{RunConfig, RunError};
use crate::schedule::{Arrival, Schedule, ScheduleSpec, StreamSpec};
use crate::send::{Outcome, Permit, Senders, Target};
use wire::Signal;

/// What the engine sends requests through.
pub trait Transport: Clone + Send + Sync + 'static {
    /// Waits for room to have one more request in flight to `url`'s target.
    fn acquire(&self, url: &Url) -> impl Future<Output = Permit> + Send;
    /// Sends `req`, holding `permit` until its outcome is known.
    fn send(&self, permit: Permit, req: Prepared) -> impl Future<Output = Outcome> + Send;
}

impl Transport for Senders {
    fn acquire(&self, url: &Url) -> impl Future<Output = Permit> + Send {
        Senders::acquire(self, url)
    }

    fn send(&self, permit: Permit, req: Prepared) -> impl Future<Output = Outcome> + Send {
        self.execute(permit, req)
    }
}

/// Where each signal is pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    pub logs: Target,
    pub metrics: Target,
    pub traces: Target,
}

impl Targets {
    /// Straight to a stack's APIs.
    pub fn direct(e: &Endpoints) -> Targets {
        let t = |url: &Url| Target {
            url: url.clone(),
            tenant: e.tenant.clone(),
        };
        Targets {
            logs: t(&e.loki),
            metrics: t(&e.prometheus_write),
            traces: t(&e.tempo_otlp_http),
        }
    }

    /// Where a payload goes: OTLP payloads of every signal to the OTLP receiver.
    pub fn of(&self, payload: &Payload) -> &Target {
        match payload {
            Payload::OtlpLogs(_) | Payload::OtlpMetrics(_) | Payload::OtlpTraces(_) => &self.traces,
            Payload::Loki(_) => &self.logs,
            Payload::RemoteWrite(_) => &self.metrics,
        }
    }
}

/// The streams of every device at its type's nominal rates.
pub(crate) fn streams(fleet: &Fleet) -> Vec<StreamSpec> {
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

/// The run's schedule: every device's streams over the run.
pub(crate) fn schedule_spec(cfg: &RunConfig, fleet: &Fleet) -> ScheduleSpec {
    ScheduleSpec {
        streams: streams(fleet),
        duration: cfg.duration,
        warmup: cfg.warmup,
        ramp: Duration::ZERO,
        rate_multiplier: cfg.rate_multiplier,
    }
}

/// Sends the schedule through `transport`, returning when every request has finished.
pub(crate) async fn send_all<T: Transport>(
    transport: T,
    cfg: &RunConfig,
    fleet: &Fleet,
    targets: Targets,
    shared: &Arc<Shared>,
    of_device: &[usize],
    paths: &mut Paths,
) -> Result<reports::results::FleetDynamics, RunError> {
    let run = shared.run;
    let spec = schedule_spec(cfg, fleet);
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
    let start = Instant::now();
    if let Some(s) = &paths.scrape {
        s.begin(start)?;
    }
    let mut tasks = JoinSet::new();
    let mut batcher = batch::Batcher::new(cfg.batch_window);
    let out = Outbound {
        transport,
        shared: shared.clone(),
        targets: Arc::new(targets),
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
                for (item, stamp) in dev.items(&event, cfg.canary_every, otlp) {
                    if dev.backlog.len() < dynamics::BACKLOG_LIMIT {
                        let signal = item.signal();
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
                tasks.spawn(backfill::backfill(backlog, event, group, out.clone()));
            }
        }
        for (item, stamp) in dev.items(&event, cfg.canary_every, otlp) {
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
        // Reap finished requests so the set stays as small as the in-flight bound.
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

/// What the sending tasks need to send and record.
#[derive(Clone)]
struct Outbound<T> {
    transport: T,
    shared: Arc<Shared>,
    targets: Arc<Targets>,
    otlp: bool,
    start: Instant,
}

/// Sends one batch (waiting for a permit of its target) in a task; each part is recorded as
/// its own attempt, with its own intended time, when the request completes.
async fn send_batch<T: Transport>(b: batch::Batch, out: &Outbound<T>, tasks: &mut JoinSet<()>) {
    let target = out.targets.of(&b.payload);
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
    let permit = out.transport.acquire(req.url()).await;
    let transport = out.transport.clone();
    let request = Request {
        signal: b.payload.signal(),
        completed: Duration::ZERO,
        bytes: req.body_len(),
        warmup: b.parts.iter().all(|p| p.event.warmup),
    };
    tasks.spawn(async move {
        let outcome = transport.send(permit, req).await;
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
