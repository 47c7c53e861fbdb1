//! The engine on tokio's paused clock with a fake transport that takes a set time to answer and
//! notes when each request was sent: sends happen at their intended times however slow the
//! transport is (open loop), latency is measured from the intended time (so it includes the wait
//! for a permit), never more than the bound's requests are in flight per target, refusals are
//! counted per status and never acknowledged, and an offline device's backlog goes oldest first,
//! one request at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Url;
use tokio::time::Instant;

use super::*;
use crate::fleet::FleetSpec;
use crate::recorder::RecorderReport;
use crate::send::{InFlight, SendError};
use crate::verify::Ledger;

/// One request the fake transport received.
#[derive(Clone, Debug)]
struct Sent {
    /// When it was handed over, since the fake was made (the run's start, give or take 0).
    at: Duration,
    url: Url,
    body: Vec<u8>,
}

/// Answers every request after `delay` with `status`, counting requests in flight per target.
#[derive(Clone)]
struct Fake {
    bound: InFlight,
    delay: Duration,
    status: u16,
    start: Instant,
    sent: Arc<Mutex<Vec<Sent>>>,
    /// Per `host:port`: (in flight now, most ever).
    in_flight: Arc<Mutex<HashMap<String, (usize, usize)>>>,
}

impl Fake {
    fn new(delay: Duration, max_in_flight: usize) -> Fake {
        Fake {
            bound: InFlight::new(max_in_flight),
            delay,
            status: 204,
            start: Instant::now(),
            sent: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().clone()
    }

    /// The most requests ever in flight to one target.
    fn max_in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .values()
            .map(|(_, max)| *max)
            .max()
            .unwrap_or(0)
    }
}

impl Transport for Fake {
    async fn acquire(&self, url: &Url) -> Permit {
        self.bound.acquire(url).await
    }

    async fn send(&self, permit: Permit, req: Prepared) -> Outcome {
        let key = format!("{}:{:?}", req.url.host_str().unwrap_or(""), req.url.port());
        {
            let mut m = self.in_flight.lock();
            let e = m.entry(key.clone()).or_default();
            e.0 += 1;
            e.1 = e.1.max(e.0);
        }
        self.sent.lock().push(Sent {
            at: self.start.elapsed(),
            url: req.url.clone(),
            body: req.body.clone(),
        });
        tokio::time::sleep(self.delay).await;
        if let Some(e) = self.in_flight.lock().get_mut(&key) {
            e.0 -= 1;
        }
        drop(permit);
        let result = if (200..300).contains(&self.status) {
            Ok(self.status)
        } else {
            Err(SendError::Status {
                url: req.url.to_string(),
                status: self.status,
                body: String::new(),
            })
        };
        Outcome {
            items: req.items,
            result,
        }
    }
}

fn targets() -> Targets {
    let t = |s: &str| Target {
        url: Url::parse(s).unwrap(),
        tenant: None,
    };
    Targets {
        logs: t("http://logs.test:1/"),
        metrics: t("http://metrics.test:2/api/v1/write"),
        traces: t("http://traces.test:3/"),
    }
}

/// A run of `devices` for `secs`, a request per event, every event a canary.
fn config(devices: u64, secs: u64) -> RunConfig {
    RunConfig {
        fleet: FleetSpec {
            devices,
            seed: 11,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(secs),
        rate_multiplier: 4.0,
        canary_every: 1,
        batch_window: Duration::ZERO,
        ..RunConfig::default()
    }
}

/// What a run of the engine left behind.
struct Ran {
    fleet: Fleet,
    shared: Arc<Shared>,
    dynamics: reports::results::FleetDynamics,
}

impl Ran {
    fn report(&self, cfg: &RunConfig) -> RecorderReport {
        self.shared.recorder.report(cfg.duration)
    }
}

async fn run(cfg: &RunConfig, fake: &Fake) -> Ran {
    let fleet = Fleet::generate(&cfg.fleet);
    let (rows, of_device) = crate::run::accounting::groups(&fleet);
    let shared = Arc::new(Shared {
        run: 7,
        recorder: crate::recorder::Recorder::new(cfg.interval, cfg.warmup),
        ledger: Arc::new(Ledger::new()),
        breakdown: parking_lot::Mutex::new(rows),
        progress: Arc::default(),
    });
    let dynamics = send_all(
        fake.clone(),
        cfg,
        &fleet,
        targets(),
        &shared,
        &of_device,
        &mut Paths::default(),
    )
    .await
    .unwrap();
    Ran {
        fleet,
        shared,
        dynamics,
    }
}

/// The intended times of `signal`'s events, in order.
fn intended(cfg: &RunConfig, fleet: &Fleet, signal: Signal) -> Vec<Duration> {
    Schedule::new(&schedule_spec(cfg, fleet), cfg.fleet.seed)
        .filter(|e| e.signal == signal)
        .map(|e| e.at)
        .collect()
}

/// When the requests to `target` were sent, in order.
fn sent_to(sent: &[Sent], target: &Target) -> Vec<Duration> {
    sent.iter()
        .filter(|s| s.url.host_str() == target.url.host_str())
        .map(|s| s.at)
        .collect()
}

/// The timer wheel's resolution: a sleep ends on the millisecond after its deadline at worst.
const TICK: Duration = Duration::from_millis(1);

fn assert_on_time(sent: &[Duration], intended: &[Duration]) {
    assert_eq!(sent.len(), intended.len());
    for (s, i) in sent.iter().zip(intended) {
        assert!(*s >= *i && *s - *i <= TICK, "sent at {s:?}, intended {i:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn sends_happen_at_their_intended_times_however_slow_the_transport() {
    let cfg = config(20, 60);
    // Every answer takes 10 s, far longer than the gaps between events.
    let fake = Fake::new(Duration::from_secs(10), 10_000);
    let ran = run(&cfg, &fake).await;
    let sent = fake.sent();
    // Each metrics event is one remote write; each log event one Loki push (checkouts add
    // their log lines to the Loki pushes, so the logs are compared on the metrics' terms).
    let metrics = intended(&cfg, &ran.fleet, Signal::Metrics);
    assert!(metrics.len() > 50, "{}", metrics.len());
    assert_on_time(&sent_to(&sent, &targets().metrics), &metrics);
    let logs = intended(&cfg, &ran.fleet, Signal::Logs);
    let mut loki = sent_to(&sent, &targets().logs);
    assert!(loki.len() >= logs.len());
    for at in &logs {
        let i = loki
            .iter()
            .position(|s| *s >= *at && *s - *at <= TICK)
            .unwrap_or_else(|| panic!("no Loki push at {at:?}"));
        loki.remove(i);
    }
    // The last event went out on time, not after the answers of those before it.
    let last = *metrics.last().unwrap();
    assert!(
        sent.iter()
            .all(|s| s.at <= last.max(*logs.last().unwrap()) + TICK)
    );
}

#[tokio::test(start_paused = true)]
async fn latency_is_measured_from_the_intended_time() {
    let cfg = config(10, 60);
    let delay = Duration::from_secs(3);
    let fake = Fake::new(delay, 10_000);
    let ran = run(&cfg, &fake).await;
    let report = ran.report(&cfg);
    let us = |d: Duration| d.as_micros() as u64;
    for s in Signal::ALL {
        let t = &report.signals[s.as_str()];
        assert!(t.sent > 0, "{s:?}");
        assert_eq!(t.acknowledged, t.sent, "{s:?}");
        // Sent on time, answered after `delay`: every latency is the delay (within the
        // histogram's precision and a timer tick).
        let l = &t.send_latency;
        assert!(l.min >= us(delay) * 999 / 1000, "{s:?}: {l:?}");
        assert!(l.max <= us(delay + TICK) * 1001 / 1000, "{s:?}: {l:?}");
    }

    // One request in flight at a time: each waits for the one before, and that wait is in
    // its latency, since it counts from when it should have been sent.
    let fake = Fake::new(delay, 1);
    let ran = run(&cfg, &fake).await;
    let report = ran.report(&cfg);
    let metrics = &report.signals["metrics"];
    assert_eq!(metrics.acknowledged, metrics.sent);
    let sent = sent_to(&fake.sent(), &targets().metrics);
    let intended = intended(&cfg, &ran.fleet, Signal::Metrics);
    // The schedule asks for more than one request per `delay`, so the sends fall behind...
    assert!(sent.len() as u64 * delay.as_secs() > cfg.duration.as_secs());
    assert!(*sent.last().unwrap() > *intended.last().unwrap() + delay);
    // ...and the worst latency is the last send's lag plus the delay.
    let lag = *sent.last().unwrap() - *intended.last().unwrap();
    assert!(
        metrics.send_latency.max >= us(lag + delay) * 999 / 1000,
        "{:?} vs lag {lag:?}",
        metrics.send_latency
    );
}

#[tokio::test(start_paused = true)]
async fn requests_in_flight_per_target_are_bounded() {
    let cfg = config(30, 30);
    let fake = Fake::new(Duration::from_millis(800), 3);
    let ran = run(&cfg, &fake).await;
    // The bound was reached (so it was tested) and never passed.
    assert_eq!(fake.max_in_flight(), 3);
    // Every request still went out and was answered.
    let report = ran.report(&cfg);
    let requests: u64 = Signal::ALL
        .iter()
        .map(|s| report.signals[s.as_str()].requests)
        .sum();
    assert_eq!(requests, fake.sent().len() as u64);
    for s in Signal::ALL {
        let t = &report.signals[s.as_str()];
        assert_eq!(t.acknowledged, t.sent, "{s:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn refusals_are_counted_per_status_and_never_acknowledged() {
    let cfg = config(10, 20);
    let mut fake = Fake::new(Duration::from_millis(5), 64);
    fake.status = 429;
    let ran = run(&cfg, &fake).await;
    let report = ran.report(&cfg);
    for s in Signal::ALL {
        let t = &report.signals[s.as_str()];
        assert!(t.sent > 0, "{s:?}");
        assert_eq!(t.acknowledged, 0, "{s:?}");
        assert_eq!(
            t.errors,
            std::collections::BTreeMap::from([("429".to_string(), t.sent)]),
            "{s:?}"
        );
        // No canary of a refused request is expected back.
        assert_eq!(ran.shared.ledger.len(s), 0, "{s:?}");
    }
    let errors: u64 = report.intervals.iter().map(|i| i.errors["logs"]).sum();
    assert_eq!(errors, report.signals["logs"].sent);
}

#[tokio::test(start_paused = true)]
async fn batches_carry_several_events_and_each_keeps_its_intended_time() {
    let mut cfg = config(20, 30);
    cfg.batch_window = Duration::from_millis(200);
    let delay = Duration::from_millis(50);
    let fake = Fake::new(delay, 64);
    let ran = run(&cfg, &fake).await;
    let report = ran.report(&cfg);
    let logs = &report.signals["logs"];
    assert!(logs.requests < logs.sent, "{} requests", logs.requests);
    // Latency counts each event's wait in its batch: up to the window, plus the answer.
    let us = |d: Duration| d.as_micros() as u64;
    assert!(logs.send_latency.min >= us(delay) * 999 / 1000);
    assert!(logs.send_latency.max <= us(delay + cfg.batch_window + TICK) * 1001 / 1000);
    assert!(logs.send_latency.max > us(delay + cfg.batch_window / 2));
}

#[tokio::test(start_paused = true)]
async fn an_offline_devices_backlog_goes_oldest_first_one_request_at_a_time() {
    let mut cfg = config(1, 60);
    cfg.dynamics = crate::run::dynamics::DynamicsSpec {
        offline_share: 1.0,
        offline_from: Some(Duration::from_secs(10)),
        offline_for: Some(Duration::from_secs(20)),
        ..Default::default()
    };
    let (from, until) = (Duration::from_secs(10), Duration::from_secs(30));
    let delay = Duration::from_millis(500);
    let fake = Fake::new(delay, 64);
    let ran = run(&cfg, &fake).await;
    assert_eq!(ran.dynamics.offline_devices, 1);

    // The log canaries sent, by send time: (sent at, seq).
    let mut logs: Vec<(Duration, u64)> = Vec::new();
    for s in fake.sent() {
        if s.url.host_str() != Some("logs.test") {
            continue;
        }
        let req = wire::loki::decode_protobuf(&s.body, usize::MAX).unwrap();
        for e in req.streams.iter().flat_map(|s| &s.entries) {
            if let Some(c) = crate::canary::find_token(&e.line) {
                logs.push((s.at, c.seq));
            }
        }
    }
    // Nothing went out while the device was offline.
    assert!(logs.iter().all(|(at, _)| *at < from || *at >= until));
    let before = logs.iter().filter(|(at, _)| *at < from).count() as u64;
    let offline_events = intended(&cfg, &ran.fleet, Signal::Logs)
        .into_iter()
        .filter(|at| *at >= from && *at < until)
        .count() as u64;
    assert!(offline_events > 3, "{offline_events}");
    let backlog: Vec<(Duration, u64)> = logs
        .iter()
        .copied()
        .filter(|(_, seq)| *seq > before && *seq <= before + offline_events)
        .collect();
    // All of it was sent, oldest first...
    let seqs: Vec<u64> = backlog.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (before + 1..=before + offline_events).collect::<Vec<_>>()
    );
    assert!(backlog[0].0 >= until);
    // ...one request at a time: each after the answer to the one before.
    for w in backlog.windows(2) {
        assert!(w[1].0 >= w[0].0 + delay, "{w:?}");
    }
    assert!(ran.dynamics.backfilled_items >= offline_events);
    assert_eq!(ran.dynamics.backfill_dropped, 0);
    // And it was all acknowledged.
    let report = ran.report(&cfg);
    assert_eq!(
        report.signals["logs"].acknowledged,
        report.signals["logs"].sent
    );
}
