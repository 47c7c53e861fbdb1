//! A fleet that changes while it runs, as real store fleets do:
//!
//! - churn (`--churn 0.05`): that share of the fleet is replaced per minute. Each device slot
//!   has Poisson replacement times (seeded); after one, the slot is a new device (`<id>-r<n>`,
//!   same store and type) with its own series and streams, so the backends see series churn.
//!   The old device just stops, as an unplugged terminal does (its series go stale).
//! - offline and backfill (`--offline 0.1`, `--offline-from`, `--offline-for`): that share of
//!   the devices (seeded choice) loses its link for a window. Their events still happen and are
//!   buffered (bounded per device, drops counted); at the first event after the window, the
//!   device sends the backlog, oldest first and one request at a time (per-series order kept,
//!   as Mimir requires), with the original (old) timestamps. Canaries in the backlog count as
//!   sent when they are actually sent, so write-to-queryable latency measures the pipeline.
//!
//! Both are a [`Plan`] computed before the run: which generation a slot is in at a time, and
//! whether it is offline then.

use std::time::Duration;

use rand::RngExt;

use crate::fleet::{Device, Fleet, rng_for};

/// Random stream of the churn and offline choices (apart from the fleet's and signals').
const DYNAMICS_STREAM: u64 = 4;

/// The most events an offline device buffers; later ones are dropped and counted.
pub const BACKLOG_LIMIT: usize = 10_000;

/// What the run was asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DynamicsSpec {
    /// Share of the fleet replaced per minute (0: none).
    pub churn_per_min: f64,
    /// Share of the devices that go offline (0: none).
    pub offline_share: f64,
    /// Start of the offline window; `None`: a third into the run.
    pub offline_from: Option<Duration>,
    /// Length of the offline window; `None`: a third of the run.
    pub offline_for: Option<Duration>,
}

impl DynamicsSpec {
    pub fn is_active(&self) -> bool {
        self.churn_per_min > 0.0 || self.offline_share > 0.0
    }

    /// Checks the shares; `key` names the flags in messages.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("churn", self.churn_per_min),
            ("offline", self.offline_share),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("--{name} must be a non-negative number, got {v}"));
            }
        }
        if self.offline_share > 1.0 {
            return Err(format!(
                "--offline is a share of the fleet in [0, 1], got {}",
                self.offline_share
            ));
        }
        Ok(())
    }

    /// The offline window `(from, until)` of a run of `duration`.
    pub fn offline_window(&self, duration: Duration) -> (Duration, Duration) {
        let from = self.offline_from.unwrap_or(duration / 3);
        let len = self.offline_for.unwrap_or(duration / 3);
        (from, from.saturating_add(len))
    }
}

/// Per device slot: its replacement times and whether it goes offline.
#[derive(Debug)]
pub struct Plan {
    replacements: Vec<Vec<Duration>>,
    offline: Vec<bool>,
    window: (Duration, Duration),
}

impl Plan {
    /// The plan of `fleet` for a run of `duration` (deterministic for the fleet's seed).
    pub fn new(spec: &DynamicsSpec, fleet: &Fleet, seed: u64, duration: Duration) -> Plan {
        let rate_per_s = spec.churn_per_min / 60.0;
        let horizon = duration.as_secs_f64();
        let mut replacements = Vec::with_capacity(fleet.devices.len());
        let mut offline = Vec::with_capacity(fleet.devices.len());
        for d in &fleet.devices {
            let mut rng = rng_for(seed, DYNAMICS_STREAM, d.index);
            offline.push(spec.offline_share > 0.0 && rng.random::<f64>() < spec.offline_share);
            let mut times = Vec::new();
            if rate_per_s > 0.0 {
                let mut t = 0.0;
                loop {
                    // Exponential gaps: -ln(U)/rate, U in (0, 1].
                    let u: f64 = 1.0 - rng.random::<f64>();
                    t += -u.ln() / rate_per_s;
                    if t >= horizon {
                        break;
                    }
                    times.push(Duration::from_secs_f64(t));
                }
            }
            replacements.push(times);
        }
        Plan {
            replacements,
            offline,
            window: spec.offline_window(duration),
        }
    }

    /// The slot's generation at `at`: 0 for the original device, n after n replacements.
    pub fn generation(&self, slot: usize, at: Duration) -> u32 {
        self.replacements
            .get(slot)
            .map_or(0, |r| r.partition_point(|t| *t <= at) as u32)
    }

    /// The slot's device is offline at `at`.
    pub fn offline(&self, slot: usize, at: Duration) -> bool {
        self.offline.get(slot).copied().unwrap_or(false)
            && at >= self.window.0
            && at < self.window.1
    }

    /// Devices chosen to go offline.
    pub fn offline_devices(&self) -> u64 {
        self.offline.iter().filter(|o| **o).count() as u64
    }
}

/// Generation `generation` of a device slot: the original for 0, else a new device in the
/// same store, with the same type, named `<id>-r<generation>`. Its index carries the
/// generation above bit 40 (fleets stay far below 2^40 devices): canary trace ids are built
/// from the index, and a replacement restarts its canary numbers, so with the slot's index its
/// canary traces would share ids with the original's and Tempo would merge them.
pub fn replacement(original: &Device, generation: u32) -> Device {
    if generation == 0 {
        return original.clone();
    }
    Device {
        id: format!("{}-r{generation}", original.id),
        index: original.index | (u64::from(generation) << GENERATION_SHIFT),
        ..original.clone()
    }
}

/// Where a replacement's generation sits in its device index.
const GENERATION_SHIFT: u32 = 40;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetSpec;

    fn fleet(n: u64) -> Fleet {
        Fleet::generate(&FleetSpec {
            devices: n,
            seed: 3,
            ..FleetSpec::default()
        })
    }

    #[test]
    fn churn_replaces_about_the_asked_share() {
        let f = fleet(2000);
        let spec = DynamicsSpec {
            churn_per_min: 0.1,
            ..DynamicsSpec::default()
        };
        let plan = Plan::new(&spec, &f, 3, Duration::from_secs(600));
        let end = Duration::from_secs(600);
        let replaced: u32 = (0..2000).map(|i| plan.generation(i, end)).sum();
        // 2000 devices x 10 min x 10%/min = 2000 expected; Poisson sd ~45.
        assert!((1800..=2200).contains(&replaced), "{replaced}");
        assert_eq!(
            (0..2000)
                .map(|i| plan.generation(i, Duration::ZERO))
                .sum::<u32>(),
            0
        );
        // Generations only grow.
        for i in 0..50 {
            let g: Vec<u32> = (0..60)
                .map(|s| plan.generation(i, Duration::from_secs(s * 10)))
                .collect();
            assert!(g.windows(2).all(|w| w[0] <= w[1]), "{g:?}");
        }
    }

    #[test]
    fn offline_share_and_window() {
        let f = fleet(1000);
        let spec = DynamicsSpec {
            offline_share: 0.2,
            ..DynamicsSpec::default()
        };
        let d = Duration::from_secs(90);
        let plan = Plan::new(&spec, &f, 3, d);
        let n = plan.offline_devices();
        assert!((150..=250).contains(&n), "{n}");
        let slot = (0..1000)
            .find(|&i| plan.offline(i, Duration::from_secs(45)))
            .unwrap();
        assert!(!plan.offline(slot, Duration::from_secs(29)));
        assert!(plan.offline(slot, Duration::from_secs(30)));
        assert!(plan.offline(slot, Duration::from_secs(59)));
        assert!(!plan.offline(slot, Duration::from_secs(60)));
    }

    #[test]
    fn the_plan_is_deterministic_and_off_by_default() {
        let f = fleet(300);
        let spec = DynamicsSpec {
            churn_per_min: 0.5,
            offline_share: 0.3,
            ..DynamicsSpec::default()
        };
        let a = Plan::new(&spec, &f, 9, Duration::from_secs(60));
        let b = Plan::new(&spec, &f, 9, Duration::from_secs(60));
        assert_eq!(a.replacements, b.replacements);
        assert_eq!(a.offline, b.offline);
        let none = Plan::new(&DynamicsSpec::default(), &f, 9, Duration::from_secs(60));
        assert_eq!(none.offline_devices(), 0);
        assert!(!DynamicsSpec::default().is_active());
    }

    #[test]
    fn bad_shares_are_named() {
        let e = DynamicsSpec {
            offline_share: 1.5,
            ..DynamicsSpec::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("--offline"), "{e}");
        let e = DynamicsSpec {
            churn_per_min: f64::NAN,
            ..DynamicsSpec::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("--churn"), "{e}");
    }

    #[test]
    fn a_replacement_is_a_new_device_in_the_same_store() {
        let f = fleet(5);
        let d = &f.devices[0];
        assert_eq!(replacement(d, 0), *d);
        let r = replacement(d, 2);
        assert_eq!(r.id, format!("{}-r2", d.id));
        assert_eq!(
            (r.location.as_str(), r.device_type),
            (d.location.as_str(), d.device_type)
        );
        // Its canary traces never share an id with the original's (same run, same seq).
        assert_ne!(
            crate::canary::trace_id(1, r.index, 1),
            crate::canary::trace_id(1, d.index, 1)
        );
    }
}
