//! The open-loop engine in one function, for tests and simple runs: a [`Schedule`] says when,
//! a per-signal closure builds the payload for each event, [`Senders`] send it, and the
//! [`Recorder`] gets every outcome with the event's intended time.
//!
//! The loop sleeps until each event's intended time, builds its payload, waits for a permit of
//! the target (the in-flight bound), and spawns the request. When a target is saturated the loop
//! waits and falls behind schedule — latency is still measured from the intended time, so that
//! wait shows. (A saturated target therefore also delays the other signals of the same shard;
//! run one shard per target to keep them apart.)

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::recorder::{Attempt, Recorder, RecorderReport};
use crate::schedule::{Event, Schedule, ScheduleSpec, Signal};
use crate::send::{Outcome, Payload, Senders, Target};

/// Builds the payload of one event (the fleet's signal generators, in a real run).
pub type MakePayload = Box<dyn FnMut(&Event) -> Payload + Send>;

/// Where one signal goes and how its payloads are made.
pub struct Lane {
    pub target: Target,
    pub make: MakePayload,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct DriveConfig {
    pub spec: ScheduleSpec,
    pub seed: u64,
    /// Reporting interval of the recorder.
    pub interval: Duration,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("the schedule has {0} events but no lane says where they go")]
    NoLane(&'static str),
}

/// Runs the schedule against the lanes' targets and returns what the recorder measured, after
/// every request has finished.
pub async fn drive(
    cfg: &DriveConfig,
    mut lanes: BTreeMap<Signal, Lane>,
    senders: &Senders,
) -> Result<RecorderReport, DriveError> {
    if let Some(s) = cfg
        .spec
        .streams
        .iter()
        .find(|s| !lanes.contains_key(&s.signal))
    {
        return Err(DriveError::NoLane(s.signal.as_str()));
    }
    let recorder = Recorder::new(cfg.interval, cfg.spec.warmup);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for event in Schedule::new(&cfg.spec, cfg.seed) {
        tokio::time::sleep_until(start + event.at).await;
        let Some(lane) = lanes.get_mut(&event.signal) else {
            continue;
        };
        let payload = (lane.make)(&event);
        let (senders, recorder) = (senders.clone(), recorder.clone());
        match payload.prepare(&lane.target) {
            Ok(req) => {
                let permit = senders.acquire(req.url()).await;
                tasks.spawn(async move {
                    let outcome = senders.execute(permit, req).await;
                    record(&recorder, &event, start.elapsed(), &outcome);
                });
            }
            Err(e) => {
                let outcome = Outcome {
                    items: payload.items(),
                    result: Err(e),
                };
                record(&recorder, &event, start.elapsed(), &outcome);
            }
        }
        // Reap finished requests so the set stays as small as the in-flight bound.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(recorder.report(cfg.spec.duration.saturating_sub(cfg.spec.warmup)))
}

fn record(recorder: &Recorder, event: &Event, completed: Duration, outcome: &Outcome) {
    let error = outcome.error_key();
    recorder.record(&Attempt {
        signal: event.signal,
        intended: event.at,
        completed,
        items: outcome.items,
        error: error.as_deref(),
        warmup: event.warmup,
    });
}
