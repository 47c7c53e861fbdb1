//! The capacity search as a pure function: given the stages run so far (load, passed?), which
//! load to run next, or where the knee is. No I/O, so it is property-tested.
//!
//! 1. **Ramp**: `start`, then each load `factor` times the previous one (rounded up to a whole
//!    device with `integer`), capped at `max`, while every stage passes.
//! 2. **Bisect**: once a stage fails, halve the gap between the largest passing load below the
//!    smallest failing one and that failing load, until the gap is within `resolution` (a
//!    fraction of the passing load; one device at least with `integer`).
//! 3. **Done**: the knee (last pass, first fail); or no failure up to `max`; or the first stage
//!    already failed.
//!
//! A load is never run twice; the search ends after at most
//! `ramp steps + log2((max - start) / resolution) + 1` stages.

/// The search's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub start: f64,
    pub factor: f64,
    pub max: f64,
    /// Bisection stops when `first_fail - last_pass <= resolution * last_pass`.
    pub resolution: f64,
    /// Loads are whole numbers (devices).
    pub integer: bool,
}

/// A plan that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("capacity search: {0}")]
pub struct PlanError(String);

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Run a stage at this load.
    Run(f64),
    /// Stop: a load passed and the next one up (within the resolution) failed.
    Knee { last_pass: f64, first_fail: f64 },
    /// Stop: every stage passed up to `max`.
    NoFailure { last_pass: f64 },
    /// Stop: the smallest load already failed.
    FirstFailed { first_fail: f64 },
}

impl Plan {
    /// Checks the settings.
    pub fn new(
        start: f64,
        factor: f64,
        max: f64,
        resolution: f64,
        integer: bool,
    ) -> Result<Plan, PlanError> {
        let finite = [start, factor, max, resolution]
            .iter()
            .all(|v| v.is_finite());
        if !finite || start <= 0.0 {
            return Err(PlanError(format!("--start must be above 0, got {start}")));
        }
        if factor <= 1.0 {
            return Err(PlanError(format!("--factor must be above 1, got {factor}")));
        }
        if max < start {
            return Err(PlanError(format!(
                "--max ({max}) must be at least --start ({start})"
            )));
        }
        if resolution <= 0.0 {
            return Err(PlanError(format!(
                "--resolution must be above 0, got {resolution}"
            )));
        }
        if integer && start.fract() != 0.0 {
            return Err(PlanError(format!(
                "--start must be a whole number of devices, got {start}"
            )));
        }
        Ok(Plan {
            start,
            factor,
            max: if integer { max.floor() } else { max },
            resolution,
            integer,
        })
    }

    fn snap(&self, v: f64) -> f64 {
        if self.integer { v.round() } else { v }
    }

    /// The next step, from the stages so far in the order run: `(load, passed)`.
    pub fn next(&self, history: &[(f64, bool)]) -> Next {
        let Some(&(first, first_passed)) = history.first() else {
            return Next::Run(self.start);
        };
        if !first_passed && history.len() == 1 {
            return Next::FirstFailed { first_fail: first };
        }
        let first_fail = history
            .iter()
            .filter(|(_, pass)| !pass)
            .map(|(l, _)| *l)
            .reduce(f64::min);
        let tried = |l: f64| history.iter().any(|(h, _)| *h == l);
        let Some(hi) = first_fail else {
            // Ramping: every stage passed.
            let top = history.iter().map(|(l, _)| *l).fold(f64::MIN, f64::max);
            if top >= self.max {
                return Next::NoFailure { last_pass: top };
            }
            let mut next = self.snap(top * self.factor).min(self.max);
            if next <= top {
                next = (top + 1.0).min(self.max);
            }
            return if tried(next) || next <= top {
                Next::NoFailure { last_pass: top }
            } else {
                Next::Run(next)
            };
        };
        let lo = history
            .iter()
            .filter(|(l, pass)| *pass && *l < hi)
            .map(|(l, _)| *l)
            .reduce(f64::max);
        let Some(lo) = lo else {
            return Next::FirstFailed { first_fail: hi };
        };
        let knee = Next::Knee {
            last_pass: lo,
            first_fail: hi,
        };
        let gap = hi - lo;
        if gap <= self.resolution * lo || (self.integer && gap <= 1.0) {
            return knee;
        }
        let mid = self.snap(lo + gap / 2.0);
        if mid <= lo || mid >= hi || tried(mid) {
            return knee;
        }
        Next::Run(mid)
    }

    /// The most stages a search can take (for progress and for tests): every ramp step, then
    /// bisections halving the largest gap the ramp can leave down to the resolution.
    pub fn max_stages(&self) -> usize {
        let (mut ramp, mut top) = (1usize, self.start);
        while top < self.max {
            let mut next = self.snap(top * self.factor).min(self.max);
            if next <= top {
                next = (top + 1.0).min(self.max);
            }
            top = next;
            ramp += 1;
        }
        let widest = self.max * (1.0 - 1.0 / self.factor);
        let finest = (self.resolution * self.start).max(if self.integer { 1.0 } else { 0.0 });
        let bisect = (widest / finest).log2().ceil().max(0.0) as usize;
        ramp + bisect + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs the search against an oracle; returns the history and the end.
    fn search(plan: &Plan, pass: impl Fn(f64) -> bool) -> (Vec<(f64, bool)>, Next) {
        let mut h = Vec::new();
        loop {
            match plan.next(&h) {
                Next::Run(l) => {
                    assert!(h.len() <= plan.max_stages(), "too many stages: {h:?}");
                    h.push((l, pass(l)));
                }
                end => return (h, end),
            }
        }
    }

    #[test]
    fn ramps_then_bisects_to_the_knee() {
        let plan = Plan::new(100.0, 2.0, 10_000.0, 0.1, true).unwrap();
        let (h, end) = search(&plan, |l| l <= 640.0);
        let loads: Vec<f64> = h.iter().map(|(l, _)| *l).collect();
        assert_eq!(loads[..4], [100.0, 200.0, 400.0, 800.0]);
        match end {
            Next::Knee {
                last_pass,
                first_fail,
            } => {
                assert!(last_pass <= 640.0 && first_fail > 640.0);
                assert!(first_fail - last_pass <= 0.1 * last_pass);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ends_without_a_knee_at_max_and_when_the_first_fails() {
        let plan = Plan::new(100.0, 3.0, 1000.0, 0.1, true).unwrap();
        let (h, end) = search(&plan, |_| true);
        assert_eq!(h.last().unwrap().0, 1000.0);
        assert_eq!(end, Next::NoFailure { last_pass: 1000.0 });
        let (h, end) = search(&plan, |_| false);
        assert_eq!(h.len(), 1);
        assert_eq!(end, Next::FirstFailed { first_fail: 100.0 });
    }

    #[test]
    fn refuses_bad_settings() {
        assert!(Plan::new(0.0, 2.0, 10.0, 0.1, true).is_err());
        assert!(Plan::new(10.0, 1.0, 100.0, 0.1, true).is_err());
        assert!(Plan::new(10.0, 2.0, 5.0, 0.1, true).is_err());
        assert!(Plan::new(10.0, 2.0, 50.0, 0.0, true).is_err());
        assert!(Plan::new(1.5, 2.0, 50.0, 0.1, true).is_err());
    }

    fn plans() -> impl Strategy<Value = Plan> {
        (
            1u32..500,
            1.1f64..4.0,
            1u32..100,
            0.01f64..0.5,
            any::<bool>(),
        )
            .prop_map(|(start, factor, span, resolution, integer)| {
                let start = if integer {
                    f64::from(start)
                } else {
                    f64::from(start) / 10.0
                };
                Plan::new(start, factor, start * f64::from(span), resolution, integer).unwrap()
            })
    }

    proptest! {
        /// With a monotonic system (passes up to a capacity), the search never repeats a load,
        /// ends within its bound, and brackets the capacity within the resolution.
        #[test]
        fn brackets_the_capacity(plan in plans(), capacity_share in -0.1f64..1.2) {
            let capacity = plan.start + (plan.max - plan.start) * capacity_share;
            let (h, end) = search(&plan, |l| l <= capacity);
            let mut loads: Vec<f64> = h.iter().map(|(l, _)| *l).collect();
            loads.sort_by(f64::total_cmp);
            loads.dedup();
            prop_assert_eq!(loads.len(), h.len(), "a load ran twice: {:?}", h);
            prop_assert!(h.iter().all(|(l, _)| *l >= plan.start && *l <= plan.max));
            match end {
                Next::Knee { last_pass, first_fail } => {
                    prop_assert!(last_pass <= capacity && first_fail > capacity);
                    prop_assert!(last_pass < first_fail);
                    let within = first_fail - last_pass <= plan.resolution * last_pass
                        || (plan.integer && first_fail - last_pass <= 1.0);
                    prop_assert!(within, "{last_pass}..{first_fail}");
                }
                Next::NoFailure { last_pass } => {
                    prop_assert!(capacity >= plan.max);
                    prop_assert_eq!(last_pass, plan.max);
                }
                Next::FirstFailed { first_fail } => {
                    prop_assert!(capacity < plan.start);
                    prop_assert_eq!(first_fail, plan.start);
                }
                Next::Run(_) => prop_assert!(false, "search ended on Run"),
            }
        }

        /// Whatever the stages answer (a noisy system), the search ends, never repeats a load,
        /// and a knee it reports is a pass below a fail that it ran.
        #[test]
        fn ends_on_any_answers(plan in plans(), answers in proptest::collection::vec(any::<bool>(), 64)) {
            let mut h: Vec<(f64, bool)> = Vec::new();
            let end = loop {
                match plan.next(&h) {
                    Next::Run(l) => {
                        prop_assert!(!h.iter().any(|(x, _)| *x == l), "{l} twice in {h:?}");
                        prop_assert!(h.len() <= plan.max_stages());
                        h.push((l, answers[h.len() % answers.len()]));
                    }
                    end => break end,
                }
            };
            if let Next::Knee { last_pass, first_fail } = end {
                prop_assert!(h.contains(&(last_pass, true)));
                prop_assert!(h.contains(&(first_fail, false)));
                prop_assert!(last_pass < first_fail);
            }
        }
    }
}
