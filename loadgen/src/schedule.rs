//! Open-loop arrivals: the *intended* send times of every event of a shard of devices, computed
//! ahead of (and independently of) how fast the target answers, so a slow target cannot slow the
//! offered load down (no coordinated omission).
//!
//! # How
//!
//! One [`Schedule`] per shard (never a task per device). It keeps a binary heap of
//! `(next time, stream)`, where a stream is one device's one signal with its own rate and arrival
//! process: each [`Schedule::next`] pops the earliest, returns it and pushes that stream's
//! following arrival. That is `O(log n)` per event and `O(n)` memory for `n` streams (100k devices
//! with three signals: 300k heap entries of 32 bytes).
//!
//! Why a heap rather than one aggregated Poisson process per shard with the device picked
//! uniformly (a sum of Poisson processes is Poisson): the fleet has per-device rates (a server
//! logs far more than a POS terminal) and metrics are *fixed-interval* scrapes/pushes, which are
//! not Poisson and do not aggregate. The heap handles both the same way and keeps each device's
//! own phase, at a cost that is still small next to building and sending a payload.
//!
//! # Time
//!
//! Arrivals are drawn in *operational time* `u`, in which every stream runs at its full rate
//! (`rate × rate_multiplier`), and mapped to wall time `t` by the inverse of the ramp's
//! cumulative intensity. With a linear ramp over `R` seconds the intensity is
//! `g(t) = min(1, t / R)`, so `u = G(t) = t² / 2R` for `t < R` and `R/2 + (t − R)` after; hence
//! `t = √(2Ru)` for `u < R/2` and `u + R/2` after. For Poisson streams this is exactly a
//! non-homogeneous Poisson process with intensity `rate × g(t)`; fixed-interval streams speed up
//! smoothly to their period. Events at `t < warmup` are flagged [`Event::warmup`] (sent, but the
//! recorder leaves them out). Nothing is scheduled at or after `duration`.
//!
//! Everything is drawn from one seeded [`Xoshiro256PlusPlus`] (a portable generator: the same
//! seed gives the same schedule on every platform and `rand` version).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

pub use wire::Signal;

/// How one stream's events are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential inter-arrival times (events that happen "whenever": logs, spans).
    Poisson,
    /// A fixed period `1 / rate` on a grid with a random per-device phase; each event is late by
    /// a uniform `[0, jitter × period)` (scrapes, metric pushes). `jitter` is clamped to
    /// `[0, 0.999]` so a device's events never swap order. Jitter does not accumulate.
    Interval { jitter: f64 },
}

/// One device's one signal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub device: u64,
    pub signal: Signal,
    /// Events per second at full rate, before the multiplier. Zero (or less) means never.
    pub rate: f64,
    pub arrival: Arrival,
}

impl StreamSpec {
    /// The same stream for each device of `devices` (a shard's range).
    pub fn for_devices(
        devices: std::ops::Range<u64>,
        signal: Signal,
        rate: f64,
        arrival: Arrival,
    ) -> impl Iterator<Item = StreamSpec> {
        devices.map(move |device| StreamSpec {
            device,
            signal,
            rate,
            arrival,
        })
    }
}

/// What a shard's schedule covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    pub streams: Vec<StreamSpec>,
    /// Nothing is scheduled at or after this.
    pub duration: Duration,
    /// Events before this are flagged as warmup.
    pub warmup: Duration,
    /// Linear ramp from 0 to full rate over this (zero: full rate from the start).
    pub ramp: Duration,
    /// Multiplies every stream's rate.
    pub rate_multiplier: f64,
}

/// One intended send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Intended send time, since the start of the run.
    pub at: Duration,
    pub device: u64,
    pub signal: Signal,
    /// Sent during warmup: the recorder leaves it out.
    pub warmup: bool,
}

/// A heap entry: the next arrival of stream `stream`, in operational seconds.
#[derive(Clone, Copy, Debug)]
struct Pending {
    u: f64,
    stream: u32,
    /// Fixed-interval streams: the grid tick this arrival belongs to.
    tick: u64,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed, so `BinaryHeap` (a max-heap) pops the earliest; ties by stream for determinism.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .u
            .total_cmp(&self.u)
            .then_with(|| other.stream.cmp(&self.stream))
    }
}

/// What the heap needs of a stream (the spec without the device's identity repeated).
#[derive(Clone, Copy, Debug)]
struct Stream {
    device: u64,
    signal: Signal,
    /// Operational seconds between events on average (Poisson) or exactly (interval).
    period: f64,
    /// Fixed-interval streams: grid offset.
    phase: f64,
    /// Fixed-interval streams: the clamped jitter fraction; `None` for Poisson.
    jitter: Option<f64>,
}

/// The intended send times of a shard, in time order. An iterator of [`Event`]s.
pub struct Schedule {
    streams: Vec<Stream>,
    heap: BinaryHeap<Pending>,
    rng: Xoshiro256PlusPlus,
    ramp_s: f64,
    duration: Duration,
    warmup: Duration,
}

impl Schedule {
    /// A schedule of `spec`'s streams, drawn from `seed` (use a different seed per shard).
    /// Streams with a non-positive (or non-finite) effective rate never fire; more than
    /// `u32::MAX` streams are not supported (the rest are ignored).
    pub fn new(spec: &ScheduleSpec, seed: u64) -> Schedule {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut streams = Vec::with_capacity(spec.streams.len());
        let mut heap = Vec::with_capacity(spec.streams.len());
        let multiplier = spec.rate_multiplier.max(0.0);
        for s in spec.streams.iter().take(u32::MAX as usize) {
            let rate = s.rate * multiplier;
            if !(rate.is_finite() && rate > 0.0) {
                continue;
            }
            let period = 1.0 / rate;
            let (phase, jitter) = match s.arrival {
                Arrival::Poisson => (0.0, None),
                Arrival::Interval { jitter } => (
                    rng.random::<f64>() * period,
                    Some(if jitter.is_finite() {
                        jitter.clamp(0.0, 0.999)
                    } else {
                        0.0
                    }),
                ),
            };
            let stream = Stream {
                device: s.device,
                signal: s.signal,
                period,
                phase,
                jitter,
            };
            let index = streams.len() as u32;
            heap.push(first_arrival(&stream, index, &mut rng));
            streams.push(stream);
        }
        Schedule {
            streams,
            heap: BinaryHeap::from(heap),
            rng,
            ramp_s: spec.ramp.as_secs_f64(),
            duration: spec.duration,
            warmup: spec.warmup,
        }
    }

    /// The next event, or `None` once the next one would be at or after `duration`.
    pub fn next_event(&mut self) -> Option<Event> {
        let p = self.heap.pop()?;
        let at = Duration::try_from_secs_f64(self.wall_time(p.u)).ok()?;
        if at >= self.duration {
            // Every remaining arrival is later still.
            self.heap.clear();
            return None;
        }
        let s = self.streams[p.stream as usize];
        self.heap.push(following_arrival(&s, p, &mut self.rng));
        Some(Event {
            at,
            device: s.device,
            signal: s.signal,
            warmup: at < self.warmup,
        })
    }

    /// Streams that can fire.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Wall-clock seconds of operational time `u` (the inverse of the ramp's cumulative
    /// intensity; see the module docs).
    fn wall_time(&self, u: f64) -> f64 {
        let r = self.ramp_s;
        if r <= 0.0 {
            u
        } else if u < r / 2.0 {
            (2.0 * r * u).sqrt()
        } else {
            u + r / 2.0
        }
    }
}

impl Iterator for Schedule {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.next_event()
    }
}

/// The event of a fixed-interval stream at grid tick `tick`.
fn tick_arrival(
    s: &Stream,
    jitter: f64,
    index: u32,
    tick: u64,
    rng: &mut Xoshiro256PlusPlus,
) -> Pending {
    let late = if jitter > 0.0 {
        rng.random::<f64>() * jitter * s.period
    } else {
        0.0
    };
    Pending {
        u: s.phase + tick as f64 * s.period + late,
        stream: index,
        tick,
    }
}

fn first_arrival(s: &Stream, index: u32, rng: &mut Xoshiro256PlusPlus) -> Pending {
    match s.jitter {
        None => Pending {
            u: poisson_gap(s, rng),
            stream: index,
            tick: 0,
        },
        Some(j) => tick_arrival(s, j, index, 0, rng),
    }
}

fn following_arrival(s: &Stream, prev: Pending, rng: &mut Xoshiro256PlusPlus) -> Pending {
    match s.jitter {
        None => Pending {
            u: prev.u + poisson_gap(s, rng),
            ..prev
        },
        Some(j) => tick_arrival(s, j, prev.stream, prev.tick + 1, rng),
    }
}

/// An exponential gap with mean `period` (`Exp(rate)` is `Exp1 / rate`).
fn poisson_gap(s: &Stream, rng: &mut Xoshiro256PlusPlus) -> f64 {
    let e: f64 = Exp1.sample(rng);
    e * s.period
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(devices: u64, rate: f64, arrival: Arrival, secs: u64) -> ScheduleSpec {
        ScheduleSpec {
            streams: StreamSpec::for_devices(0..devices, Signal::Logs, rate, arrival).collect(),
            duration: Duration::from_secs(secs),
            warmup: Duration::ZERO,
            ramp: Duration::ZERO,
            rate_multiplier: 1.0,
        }
    }

    /// Events per 1 s window.
    fn per_second(events: &[Event], secs: u64) -> Vec<u64> {
        let mut w = vec![0u64; secs as usize];
        for e in events {
            w[e.at.as_secs() as usize] += 1;
        }
        w
    }

    #[test]
    fn poisson_mean_rate_and_windows_within_poisson_bounds() {
        // 200 devices × 5/s = 1000/s for 60 s.
        let events: Vec<Event> = Schedule::new(&spec(200, 5.0, Arrival::Poisson, 60), 42).collect();
        let mean = 60_000.0_f64;
        let n = events.len() as f64;
        // 5 standard deviations of a Poisson count (sd = √mean).
        assert!(
            (n - mean).abs() < 5.0 * mean.sqrt(),
            "{n} events, expected {mean}"
        );
        assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "time order");
        assert!(events.iter().all(|e| e.at < Duration::from_secs(60)));
        for (i, c) in per_second(&events, 60).into_iter().enumerate() {
            // A 1 s window is Poisson(1000): 6 sd above the mean essentially never happens.
            assert!(c as f64 <= 1000.0 + 6.0 * 1000f64.sqrt(), "window {i}: {c}");
            assert!(c as f64 >= 1000.0 - 6.0 * 1000f64.sqrt(), "window {i}: {c}");
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let s = spec(50, 3.0, Arrival::Poisson, 5);
        let a: Vec<Event> = Schedule::new(&s, 7).collect();
        let b: Vec<Event> = Schedule::new(&s, 7).collect();
        let c: Vec<Event> = Schedule::new(&s, 8).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn fixed_interval_fires_once_per_period_per_device() {
        let s = spec(100, 0.5, Arrival::Interval { jitter: 0.2 }, 20);
        let events: Vec<Event> = Schedule::new(&s, 1).collect();
        let mut per_device = vec![Vec::new(); 100];
        for e in &events {
            per_device[e.device as usize].push(e.at.as_secs_f64());
        }
        for times in per_device {
            // 20 s at one every 2 s: 10, or 9 when phase + lateness pushes the last past 20 s.
            assert!((9..=10).contains(&times.len()), "{}", times.len());
            for w in times.windows(2) {
                let gap = w[1] - w[0];
                assert!((2.0 * 0.8..=2.0 * 1.2).contains(&gap), "gap {gap}");
            }
        }
    }

    #[test]
    fn multiplier_scales_the_rate() {
        let mut s = spec(100, 1.0, Arrival::Poisson, 50);
        s.rate_multiplier = 4.0;
        let n = Schedule::new(&s, 3).count() as f64;
        assert!((n - 20_000.0).abs() < 5.0 * 20_000f64.sqrt(), "{n}");
        s.rate_multiplier = 0.0;
        assert_eq!(Schedule::new(&s, 3).count(), 0);
    }

    #[test]
    fn ramp_is_linear_then_flat() {
        // 2000/s at full rate, ramp over 10 s, 20 s in all.
        let mut s = spec(1000, 2.0, Arrival::Poisson, 20);
        s.ramp = Duration::from_secs(10);
        let w = per_second(&Schedule::new(&s, 9).collect::<Vec<_>>(), 20);
        for (i, &c) in w.iter().enumerate() {
            // Window [i, i+1): mean intensity g = (i + 0.5) / 10 during the ramp, 1 after.
            let g = ((i as f64 + 0.5) / 10.0).min(1.0);
            let mean = 2000.0 * g;
            assert!(
                (c as f64 - mean).abs() < 6.0 * mean.sqrt() + 1.0,
                "window {i}: {c} vs {mean}"
            );
        }
    }

    #[test]
    fn warmup_is_flagged() {
        let mut s = spec(10, 10.0, Arrival::Poisson, 4);
        s.warmup = Duration::from_secs(1);
        let events: Vec<Event> = Schedule::new(&s, 5).collect();
        assert!(events.iter().any(|e| e.warmup));
        assert!(
            events
                .iter()
                .all(|e| e.warmup == (e.at < Duration::from_secs(1)))
        );
    }

    #[test]
    fn a_hundred_thousand_devices_in_one_schedule() {
        let mut s = spec(100_000, 0.5, Arrival::Poisson, 2);
        s.streams.extend(StreamSpec::for_devices(
            0..100_000,
            Signal::Metrics,
            0.1,
            Arrival::Interval { jitter: 0.1 },
        ));
        let sched = Schedule::new(&s, 11);
        assert_eq!(sched.streams(), 200_000);
        let (mut logs, mut metrics) = (0u64, 0u64);
        for e in sched {
            match e.signal {
                Signal::Metrics => metrics += 1,
                _ => logs += 1,
            }
        }
        // Logs: Poisson(100k). Metrics: a device fires when phase U(0,10) + lateness U(0,1) < 2,
        // probability (2 - 0.5) / 10.
        assert!(
            (logs as f64 - 100_000.0).abs() < 5.0 * 100_000f64.sqrt(),
            "{logs}"
        );
        assert!(
            (metrics as f64 - 15_000.0).abs() < 5.0 * 15_000f64.sqrt(),
            "{metrics}"
        );
    }
}
