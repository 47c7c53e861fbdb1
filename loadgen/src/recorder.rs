//! What the senders measured: per signal, items sent, acknowledged and refused (by status or
//! error kind), and HdrHistograms of send latency in µs **from the intended send time** (the
//! [`crate::schedule`] time, not the moment a request actually left), so a slow target shows up
//! as growing latency of every later event instead of silently thinning the load (no coordinated
//! omission). Kept in total and per reporting interval (1 s by default).
//!
//! # Rules
//!
//! - One [`Attempt`] is one event's share of a request (`items` of it). Counters count items;
//!   histograms count attempts, one latency value each, successful or not (a refusal also took
//!   that long).
//! - A [`Request`] is one HTTP request as it went out (a batch may carry many attempts'
//!   items): its body bytes, counted per signal in [`SignalTotals::requests`] and `bytes`, so
//!   the report can show requests/s and bytes/s beside items/s.
//! - Warmup attempts are counted apart ([`SignalTotals::warmup_sent`]) and appear nowhere else,
//!   so the intervals add up exactly to the totals.
//! - An attempt belongs to the interval in which it *completed*. Intervals more than one interval
//!   behind the newest completion are closed (serialized, a few hundred bytes instead of a live
//!   histogram); a straggler for a closed interval reopens it, so nothing is ever lost or
//!   approximated.
//!
//! # Cost
//!
//! One `parking_lot::Mutex` around everything, held for a counter update and one histogram
//! record per request. Requests carry batches, so this is tens of thousands of lock
//! acquisitions per second at most — far below where a per-task merge scheme would pay off.
//!
//! [`ResourceSampler`] (CPU and RSS of loadgen and of a spawned collector) is in [`resources`].

mod resources;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use reports::histogram::{HistogramData, new_histogram};
use reports::results::{Interval, SignalResults, Verification};

pub use resources::{ResourceError, ResourceSampler, SamplerHandle};

use crate::schedule::Signal;

/// The unit of send-latency histograms.
pub const LATENCY_UNIT: &str = "us";

/// One finished request, as handed to [`Recorder::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub signal: Signal,
    /// When it was meant to be sent (the schedule's time), since the start of the run.
    pub intended: Duration,
    /// When its outcome was known, since the start of the run.
    pub completed: Duration,
    /// Items it carried (log entries, samples, spans, ...).
    pub items: u64,
    /// `None` when acknowledged (2xx); otherwise the error key ("429", "500", "connect", ...).
    pub error: Option<&'a str>,
    /// Scheduled during warmup.
    pub warmup: bool,
}

/// One request that went out (whatever its outcome), as handed to [`Recorder::request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub signal: Signal,
    /// When its outcome was known, since the start of the run.
    pub completed: Duration,
    /// Its body as sent (encoded, compressed).
    pub bytes: u64,
    /// Every item it carried was scheduled during warmup.
    pub warmup: bool,
}

/// Everything measured about one signal (the parts of [`SignalResults`] the sender knows).
#[derive(Clone, Debug, PartialEq)]
pub struct SignalTotals {
    pub sent: u64,
    pub acknowledged: u64,
    pub errors: BTreeMap<String, u64>,
    /// Items sent during warmup (not in any other number).
    pub warmup_sent: u64,
    /// µs from intended send time to outcome, one value per request.
    pub send_latency: HistogramData,
    /// Acknowledged items per second over the measured window.
    pub items_per_second: f64,
    /// Requests sent (measured window) and their body bytes.
    pub requests: u64,
    pub bytes: u64,
}

impl SignalTotals {
    /// The `results.json` entry, with the verifier's findings.
    pub fn into_results(self, verification: Verification) -> SignalResults {
        SignalResults {
            sent: self.sent,
            acknowledged: self.acknowledged,
            errors: self.errors,
            send_latency: self.send_latency,
            verification,
            items_per_second: self.items_per_second,
            target_items_per_second: 0.0,
            requests: self.requests,
            bytes: self.bytes,
        }
    }
}

/// What [`Recorder::report`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct RecorderReport {
    /// Keyed by [`Signal::as_str`].
    pub signals: BTreeMap<String, SignalTotals>,
    /// Contiguous, in time order, from the first interval after warmup to the last completion.
    pub intervals: Vec<Interval>,
}

/// Thread-safe recorder; clones share the same numbers.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

struct Shared {
    interval: Duration,
    warmup: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    totals: BTreeMap<Signal, Totals>,
    open: BTreeMap<u64, OpenInterval>,
    closed: BTreeMap<u64, ClosedInterval>,
}

struct Totals {
    sent: u64,
    acknowledged: u64,
    errors: BTreeMap<String, u64>,
    warmup_sent: u64,
    latency: Histogram<u64>,
    requests: u64,
    bytes: u64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            sent: 0,
            acknowledged: 0,
            errors: BTreeMap::new(),
            warmup_sent: 0,
            latency: new_histogram(),
            requests: 0,
            bytes: 0,
        }
    }
}

/// Items sent and refused per signal in one interval.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    /// By completion time.
    sent: BTreeMap<Signal, u64>,
    errors: BTreeMap<Signal, u64>,
    /// By intended time: what the schedule asked for in this interval.
    scheduled: BTreeMap<Signal, u64>,
    /// Requests and their body bytes, by completion time.
    requests: BTreeMap<Signal, u64>,
    bytes: BTreeMap<Signal, u64>,
}

struct OpenInterval {
    counts: Counts,
    latency: Histogram<u64>,
}

struct ClosedInterval {
    counts: Counts,
    latency: HistogramData,
}

impl OpenInterval {
    fn new() -> Self {
        OpenInterval {
            counts: Counts::default(),
            latency: new_histogram(),
        }
    }

    fn close(&self) -> ClosedInterval {
        ClosedInterval {
            counts: self.counts.clone(),
            latency: HistogramData::from_histogram(&self.latency, LATENCY_UNIT),
        }
    }

    fn reopen(closed: ClosedInterval) -> Self {
        OpenInterval {
            counts: closed.counts,
            // A histogram we serialized ourselves always deserializes.
            latency: closed
                .latency
                .histogram()
                .unwrap_or_else(|_| new_histogram()),
        }
    }
}

impl Recorder {
    /// A recorder reporting every `interval` (zero is taken as 1 s), leaving out attempts
    /// flagged as warmup; `warmup` only sets where the interval list starts.
    pub fn new(interval: Duration, warmup: Duration) -> Recorder {
        let interval = if interval.is_zero() {
            Duration::from_secs(1)
        } else {
            interval
        };
        Recorder {
            shared: Arc::new(Shared {
                interval,
                warmup,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Records one finished request.
    pub fn record(&self, a: &Attempt<'_>) {
        let latency_us =
            u64::try_from(a.completed.saturating_sub(a.intended).as_micros()).unwrap_or(u64::MAX);
        let idx = self.interval_index(a.completed);
        let mut st = self.shared.state.lock();
        let totals = st.totals.entry(a.signal).or_default();
        if a.warmup {
            totals.warmup_sent += a.items;
            return;
        }
        totals.sent += a.items;
        match a.error {
            None => totals.acknowledged += a.items,
            Some(kind) => *totals.errors.entry(kind.to_string()).or_default() += a.items,
        }
        record_value(&mut totals.latency, latency_us);

        st.close_before(idx.saturating_sub(1));
        let scheduled_idx = self.interval_index(a.intended);
        *st.interval_mut(scheduled_idx)
            .counts
            .scheduled
            .entry(a.signal)
            .or_default() += a.items;
        let open = st.interval_mut(idx);
        *open.counts.sent.entry(a.signal).or_default() += a.items;
        if a.error.is_some() {
            *open.counts.errors.entry(a.signal).or_default() += a.items;
        }
        record_value(&mut open.latency, latency_us);
    }

    /// Records one request that went out (after its outcome is known).
    pub fn request(&self, r: &Request) {
        if r.warmup {
            return;
        }
        let idx = self.interval_index(r.completed);
        let mut st = self.shared.state.lock();
        let totals = st.totals.entry(r.signal).or_default();
        totals.requests += 1;
        totals.bytes = totals.bytes.saturating_add(r.bytes);
        st.close_before(idx.saturating_sub(1));
        let counts = &mut st.interval_mut(idx).counts;
        *counts.requests.entry(r.signal).or_default() += 1;
        let b = counts.bytes.entry(r.signal).or_default();
        *b = b.saturating_add(r.bytes);
    }

    /// Totals and intervals so far; `window` is the measured (post-warmup) time that
    /// `items_per_second` divides by.
    pub fn report(&self, window: Duration) -> RecorderReport {
        let st = self.shared.state.lock();
        let secs = window.as_secs_f64();
        let signals: BTreeMap<String, SignalTotals> = st
            .totals
            .iter()
            .map(|(signal, t)| {
                let totals = SignalTotals {
                    sent: t.sent,
                    acknowledged: t.acknowledged,
                    errors: t.errors.clone(),
                    warmup_sent: t.warmup_sent,
                    send_latency: HistogramData::from_histogram(&t.latency, LATENCY_UNIT),
                    items_per_second: if secs > 0.0 {
                        t.acknowledged as f64 / secs
                    } else {
                        0.0
                    },
                    requests: t.requests,
                    bytes: t.bytes,
                };
                (signal.as_str().to_string(), totals)
            })
            .collect();
        let intervals = self.intervals(&st);
        RecorderReport { signals, intervals }
    }

    fn interval_index(&self, t: Duration) -> u64 {
        u64::try_from(t.as_nanos() / self.shared.interval.as_nanos()).unwrap_or(u64::MAX)
    }

    fn intervals(&self, st: &State) -> Vec<Interval> {
        let last = st.open.keys().chain(st.closed.keys()).max().copied();
        let Some(last) = last else {
            return Vec::new();
        };
        let first = self.interval_index(self.shared.warmup).min(last);
        let step = self.shared.interval.as_secs_f64();
        let signals: Vec<Signal> = st.totals.keys().copied().collect();
        let empty = ClosedInterval {
            counts: Counts::default(),
            latency: HistogramData::empty(LATENCY_UNIT),
        };
        (first..=last)
            .map(|idx| {
                let owned;
                let c = match (st.closed.get(&idx), st.open.get(&idx)) {
                    (Some(c), _) => c,
                    (None, Some(o)) => {
                        owned = o.close();
                        &owned
                    }
                    (None, None) => &empty,
                };
                let per_signal = |m: &BTreeMap<Signal, u64>| {
                    signals
                        .iter()
                        .map(|s| (s.as_str().to_string(), m.get(s).copied().unwrap_or(0)))
                        .collect()
                };
                Interval {
                    t_s: (idx + 1) as f64 * step,
                    sent: per_signal(&c.counts.sent),
                    errors: per_signal(&c.counts.errors),
                    scheduled: per_signal(&c.counts.scheduled),
                    requests: per_signal(&c.counts.requests),
                    bytes: per_signal(&c.counts.bytes),
                    send_latency: c.latency.clone(),
                }
            })
            .collect()
    }
}

/// Records `v`, growing the histogram as needed (`saturating_record` would clamp to the current
/// range instead of resizing); clamps only past what any histogram can hold.
fn record_value(h: &mut Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

impl State {
    /// Interval `idx`, reopened if it was closed.
    fn interval_mut(&mut self, idx: u64) -> &mut OpenInterval {
        match self.closed.remove(&idx) {
            Some(closed) => self.open.entry(idx).or_insert(OpenInterval::reopen(closed)),
            None => self.open.entry(idx).or_insert_with(OpenInterval::new),
        }
    }

    /// Serializes every open interval before `idx`.
    fn close_before(&mut self, idx: u64) {
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= idx {
                break;
            }
            let (k, open) = entry.remove_entry();
            self.closed.insert(k, open.close());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Arrival, Schedule, ScheduleSpec, StreamSpec};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn attempt(signal: Signal, intended: Duration, completed: Duration) -> Attempt<'static> {
        Attempt {
            signal,
            intended,
            completed,
            items: 10,
            error: None,
            warmup: false,
        }
    }

    #[test]
    fn latency_is_measured_from_the_intended_time_so_a_slow_sender_shows() {
        // An open-loop schedule of 10/s for 5 s, and a sender that takes 300 ms per request and
        // can only do one at a time: each request starts when the previous one finished.
        let spec = ScheduleSpec {
            streams: StreamSpec::for_devices(
                0..1,
                Signal::Logs,
                10.0,
                Arrival::Interval { jitter: 0.0 },
            )
            .collect(),
            duration: Duration::from_secs(5),
            warmup: Duration::ZERO,
            ramp: Duration::ZERO,
            rate_multiplier: 1.0,
        };
        let rec = Recorder::new(Duration::from_secs(1), Duration::ZERO);
        let mut free_at = Duration::ZERO;
        let mut latencies = Vec::new();
        for e in Schedule::new(&spec, 1) {
            let start = e.at.max(free_at);
            free_at = start + ms(300);
            rec.record(&attempt(e.signal, e.at, free_at));
            latencies.push((free_at - e.at).as_micros() as u64);
        }
        // Service time is 300 ms, but each later event waited longer: latency grows.
        assert!(latencies.windows(2).all(|w| w[1] > w[0]));
        let r = rec.report(Duration::from_secs(5));
        let h = &r.signals["logs"].send_latency;
        assert_eq!(h.count, 50);
        // Measured from the send moment every value would be 300 ms; from the intended time the
        // last one waited for ~49 × 200 ms of backlog.
        assert!(h.max > 10_000_000, "{}", h.max);
        assert!(h.min >= 300_000 - 300);
    }

    #[test]
    fn intervals_add_up_to_totals_and_histograms_merge_exactly() {
        let rec = Recorder::new(Duration::from_secs(1), Duration::from_secs(1));
        let mut all = new_histogram();
        // Out of order completions across intervals, with stragglers for closed ones.
        let times: Vec<(u64, u64)> = (0..400u64)
            .map(|i| {
                let intended = (i * 37) % 6000;
                let done = intended + (i * 131) % 2500;
                (intended, done)
            })
            .collect();
        for (i, &(intended, done)) in times.iter().enumerate() {
            let signal = Signal::ALL[i % 3];
            let warmup = intended < 1000;
            let err = (i % 5 == 0).then_some("500");
            rec.record(&Attempt {
                error: err,
                warmup,
                ..attempt(signal, ms(intended), ms(done))
            });
            if !warmup {
                record_value(&mut all, (done - intended) * 1000);
            }
        }
        let r = rec.report(Duration::from_secs(5));
        let mut merged = HistogramData::empty(LATENCY_UNIT);
        for iv in &r.intervals {
            merged = merged.merge(&iv.send_latency).unwrap();
        }
        assert_eq!(merged.histogram().unwrap(), all);
        for s in Signal::ALL {
            let t = &r.signals[s.as_str()];
            let sent: u64 = r.intervals.iter().map(|iv| iv.sent[s.as_str()]).sum();
            let errors: u64 = r.intervals.iter().map(|iv| iv.errors[s.as_str()]).sum();
            assert_eq!(sent, t.sent);
            assert_eq!(errors, t.errors.values().sum::<u64>());
            assert_eq!(t.acknowledged + errors, t.sent);
            assert!(t.warmup_sent > 0);
        }
        let total: u64 = r.signals.values().map(|t| t.send_latency.count).sum();
        assert_eq!(total, all.len());
        // Contiguous from the end of warmup.
        assert_eq!(r.intervals[0].t_s, 2.0);
        assert!(r.intervals.windows(2).all(|w| w[1].t_s - w[0].t_s == 1.0));
    }

    #[test]
    fn errors_are_never_acknowledged() {
        let rec = Recorder::new(Duration::from_secs(1), Duration::ZERO);
        for (i, err) in [None, Some("429"), Some("500"), Some("429"), Some("connect")]
            .into_iter()
            .enumerate()
        {
            rec.record(&Attempt {
                error: err,
                ..attempt(Signal::Metrics, ms(i as u64), ms(i as u64 + 5))
            });
        }
        let r = rec.report(Duration::from_secs(2));
        let m = &r.signals["metrics"];
        assert_eq!((m.sent, m.acknowledged), (50, 10));
        assert_eq!(m.errors["429"], 20);
        assert_eq!(m.errors["500"], 10);
        assert_eq!(m.errors["connect"], 10);
        assert_eq!(m.items_per_second, 5.0);
    }

    #[test]
    fn requests_and_bytes_add_up_per_signal_and_interval() {
        let rec = Recorder::new(Duration::from_secs(1), Duration::from_secs(1));
        let req = |signal, completed_ms, bytes, warmup| Request {
            signal,
            completed: ms(completed_ms),
            bytes,
            warmup,
        };
        rec.record(&attempt(Signal::Logs, ms(1100), ms(1200)));
        rec.request(&req(Signal::Logs, 1200, 700, false));
        rec.request(&req(Signal::Logs, 2500, 300, false));
        rec.request(&req(Signal::Metrics, 2600, 5000, false));
        // Warmup requests are left out, as warmup attempts are.
        rec.request(&req(Signal::Logs, 500, 999, true));
        let r = rec.report(Duration::from_secs(2));
        let logs = &r.signals["logs"];
        assert_eq!((logs.requests, logs.bytes), (2, 1000));
        assert_eq!(r.signals["metrics"].requests, 1);
        let sum = |f: fn(&Interval) -> &BTreeMap<String, u64>, s: &str| -> u64 {
            r.intervals
                .iter()
                .map(|i| f(i).get(s).copied().unwrap_or(0))
                .sum()
        };
        assert_eq!(sum(|i| &i.requests, "logs"), 2);
        assert_eq!(sum(|i| &i.bytes, "logs"), 1000);
        assert_eq!(sum(|i| &i.bytes, "metrics"), 5000);
        assert_eq!(r.intervals[0].bytes["logs"], 700);
        let res = logs
            .clone()
            .into_results(reports::results::Verification::empty("ms"));
        assert_eq!((res.requests, res.bytes), (2, 1000));
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let rec = Recorder::new(ms(100), Duration::ZERO);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let rec = rec.clone();
                s.spawn(move || {
                    for i in 0..1000u64 {
                        rec.record(&attempt(Signal::Traces, ms(i), ms(i + t)));
                    }
                });
            }
        });
        let r = rec.report(Duration::from_secs(1));
        assert_eq!(r.signals["traces"].sent, 40_000);
        assert_eq!(r.signals["traces"].send_latency.count, 4000);
    }
}
