//! Delta → cumulative: the running totals that turn OTLP delta sums and histograms into the
//! cumulative series Prometheus stores, as the OpenTelemetry Collector's `deltatocumulative`
//! processor does (which Prometheus' OTLP receiver embeds behind `otlp-deltatocumulative`).
//!
//! One running total per series identity (resource, scope, metric, point attributes):
//! - the first point starts the series: its start time (or, when it has none, its time) is the
//!   series' start, its value the first cumulative value;
//! - a later point adds to the total, unless it starts before the series did (`delta_older_start`)
//!   or is not newer than the last point (`delta_out_of_order`): both are dropped, as the
//!   processor drops them;
//! - a histogram whose bucket bounds changed starts the series anew from that point;
//! - at most `max_series` series are tracked; series not updated for `max_stale` are forgotten
//!   when room is needed; past the cap, a new series' points are dropped (`delta_series_limit`).
//!
//! Every drop is returned to the caller, which counts it with its reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Why a delta point was not accumulated (the self-metric's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaRefusal {
    /// A new series past `max_series`.
    Limit,
    /// The point starts before its series did.
    OlderStart,
    /// The point is not newer than the series' last one.
    OutOfOrder,
}

impl DeltaRefusal {
    /// Every reason, so the self-metrics can show them from the start.
    pub const ALL: [DeltaRefusal; 3] = [
        DeltaRefusal::Limit,
        DeltaRefusal::OlderStart,
        DeltaRefusal::OutOfOrder,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            DeltaRefusal::Limit => "delta_series_limit",
            DeltaRefusal::OlderStart => "delta_older_start",
            DeltaRefusal::OutOfOrder => "delta_out_of_order",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            DeltaRefusal::Limit => "too many delta series tracked (delta_max_series)",
            DeltaRefusal::OlderStart => "delta point starts before its series",
            DeltaRefusal::OutOfOrder => "delta point not newer than the last one of its series",
        }
    }
}

/// A delta point's contribution, and (returned) a series' cumulative state.
#[derive(Clone, Debug, PartialEq)]
pub enum Acc {
    Sum(f64),
    Histogram {
        bounds: Vec<f64>,
        buckets: Vec<u64>,
        count: u64,
        sum: Option<f64>,
    },
}

impl Acc {
    /// Adds `delta`; `false` when the two cannot be added (a histogram's bounds changed).
    fn add(&mut self, delta: &Acc) -> bool {
        match (self, delta) {
            (Acc::Sum(a), Acc::Sum(d)) => {
                *a += d;
                true
            }
            (
                Acc::Histogram {
                    bounds,
                    buckets,
                    count,
                    sum,
                },
                Acc::Histogram {
                    bounds: db,
                    buckets: dc,
                    count: dn,
                    sum: ds,
                },
            ) if bounds == db && buckets.len() == dc.len() => {
                for (b, d) in buckets.iter_mut().zip(dc) {
                    *b = b.saturating_add(*d);
                }
                *count = count.saturating_add(*dn);
                // A sum is only meaningful if every delta carried one.
                *sum = match (*sum, ds) {
                    (Some(a), Some(d)) => Some(a + d),
                    _ => None,
                };
                true
            }
            _ => false,
        }
    }
}

struct Running {
    start_ns: u64,
    last_ns: u64,
    seen: Instant,
    acc: Acc,
}

/// The running totals of one receiver.
pub struct Deltas {
    max_series: usize,
    max_stale: Duration,
    series: Mutex<HashMap<String, Running>>,
}

/// The OpenTelemetry Collector's `deltatocumulative` forgets a series after 5 minutes.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(300);
/// Series tracked at most by default.
pub const DEFAULT_MAX_SERIES: usize = 100_000;

impl Default for Deltas {
    fn default() -> Self {
        Deltas::new(DEFAULT_MAX_SERIES, DEFAULT_MAX_STALE)
    }
}

impl Deltas {
    pub fn new(max_series: usize, max_stale: Duration) -> Self {
        Deltas {
            max_series,
            max_stale,
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Series tracked now.
    pub fn len(&self) -> usize {
        self.series.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a delta point (`start_ns` 0: none) to its series `key`; the series' start time and
    /// cumulative state after it.
    pub fn add(
        &self,
        key: String,
        start_ns: u64,
        time_ns: u64,
        delta: Acc,
    ) -> Result<(u64, Acc), DeltaRefusal> {
        let start_ns = if start_ns == 0 { time_ns } else { start_ns };
        let now = Instant::now();
        let mut map = self.series.lock();
        if let Some(r) = map.get_mut(&key) {
            if start_ns < r.start_ns {
                return Err(DeltaRefusal::OlderStart);
            }
            if time_ns <= r.last_ns {
                return Err(DeltaRefusal::OutOfOrder);
            }
            if !r.acc.add(&delta) {
                r.acc = delta;
                r.start_ns = start_ns;
            }
            r.last_ns = time_ns;
            r.seen = now;
            return Ok((r.start_ns, r.acc.clone()));
        }
        if map.len() >= self.max_series {
            let max_stale = self.max_stale;
            map.retain(|_, r| now.duration_since(r.seen) < max_stale);
            if map.len() >= self.max_series {
                return Err(DeltaRefusal::Limit);
            }
        }
        map.insert(
            key,
            Running {
                start_ns,
                last_ns: time_ns,
                seen: now,
                acc: delta.clone(),
            },
        );
        Ok((start_ns, delta))
    }
}

#[cfg(test)]
mod receiver_tests {
    use super::*;
    use proptest::prelude::*;

    fn sum(d: &Deltas, key: &str, start: u64, t: u64, v: f64) -> Result<f64, DeltaRefusal> {
        match d.add(key.into(), start, t, Acc::Sum(v))? {
            (_, Acc::Sum(v)) => Ok(v),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sums_accumulate_per_series_and_refuse_old_points() {
        let d = Deltas::default();
        assert_eq!(sum(&d, "a", 10, 20, 3.0), Ok(3.0));
        assert_eq!(sum(&d, "b", 10, 20, 1.0), Ok(1.0));
        assert_eq!(sum(&d, "a", 20, 30, 4.0), Ok(7.0));
        // A gap (start after the last time) is accepted: the total goes on.
        assert_eq!(sum(&d, "a", 40, 50, 1.0), Ok(8.0));
        assert_eq!(sum(&d, "a", 45, 50, 1.0), Err(DeltaRefusal::OutOfOrder));
        assert_eq!(sum(&d, "a", 5, 60, 1.0), Err(DeltaRefusal::OlderStart));
        // No start time: the first point's time is the series' start.
        let (start, _) = d.add("c".into(), 0, 99, Acc::Sum(1.0)).unwrap();
        assert_eq!(start, 99);
    }

    #[test]
    fn histograms_add_bucket_by_bucket_and_restart_on_new_bounds() {
        let d = Deltas::default();
        let h = |bounds: &[f64], buckets: &[u64], sum| Acc::Histogram {
            bounds: bounds.to_vec(),
            buckets: buckets.to_vec(),
            count: buckets.iter().sum(),
            sum,
        };
        d.add("h".into(), 1, 2, h(&[1.0], &[1, 2], Some(3.0)))
            .unwrap();
        let (_, got) = d
            .add("h".into(), 2, 3, h(&[1.0], &[4, 0], Some(1.0)))
            .unwrap();
        assert_eq!(got, h(&[1.0], &[5, 2], Some(4.0)));
        let (start, got) = d.add("h".into(), 3, 4, h(&[2.0], &[1, 1], None)).unwrap();
        assert_eq!((start, got), (3, h(&[2.0], &[1, 1], None)));
    }

    #[test]
    fn the_series_cap_refuses_new_series_but_not_known_ones() {
        let d = Deltas::new(2, Duration::from_secs(3600));
        sum(&d, "a", 1, 2, 1.0).unwrap();
        sum(&d, "b", 1, 2, 1.0).unwrap();
        assert_eq!(sum(&d, "c", 1, 2, 1.0), Err(DeltaRefusal::Limit));
        assert_eq!(sum(&d, "a", 2, 3, 1.0), Ok(2.0));
        // Stale series make room.
        let d = Deltas::new(1, Duration::ZERO);
        sum(&d, "a", 1, 2, 1.0).unwrap();
        assert_eq!(sum(&d, "b", 1, 2, 1.0), Ok(1.0));
        assert_eq!(d.len(), 1);
    }

    proptest! {
        /// The cumulative value after any sequence of in-order deltas is their sum, for every
        /// series independently.
        #[test]
        fn cumulative_is_the_sum_of_the_deltas(
            points in proptest::collection::vec((0u8..4, -1000i32..1000), 1..200)
        ) {
            let d = Deltas::default();
            let mut want = [0i64; 4];
            let mut last = [None; 4];
            for (t, (series, v)) in points.iter().enumerate() {
                let t = t as u64 + 1;
                want[*series as usize] += i64::from(*v);
                let got = sum(&d, &series.to_string(), t, t, f64::from(*v)).unwrap();
                last[*series as usize] = Some(got);
            }
            for s in 0..4 {
                if let Some(got) = last[s] {
                    prop_assert_eq!(got, want[s] as f64);
                }
            }
        }
    }
}
