//! Figures compared with a baseline: a value with its noise and resolution, and whether a
//! change is better, worse or within the noise ([`change`]).

use super::*;

/// Which direction of change is an improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Neither (requests/s, bytes/s): a change is only "higher" or "lower".
    Neither,
}

/// How a figure moved from a baseline to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Better,
    Worse,
    Higher,
    Lower,
    /// Within the noise of the two figures.
    Same,
    /// One side has no value.
    Unknown,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Better => "better",
            Change::Worse => "worse",
            Change::Higher => "higher",
            Change::Lower => "lower",
            Change::Same => "≈ same",
            Change::Unknown => "n/a",
        }
    }

    pub(super) fn html(self) -> String {
        let (class, arrow) = match self {
            Change::Better => ("better", "▲ "),
            Change::Worse => ("worse", "▼ "),
            Change::Higher => ("muted", "▲ "),
            Change::Lower => ("muted", "▼ "),
            Change::Same | Change::Unknown => ("muted", ""),
        };
        format!("<span class=\"{class}\">{arrow}{}</span>", self.word())
    }
}

/// Relative differences up to this are noise: the run-to-run spread of a figure measured
/// twice on one machine is of this order.
pub const NOISE_RELATIVE: f64 = 0.05;

/// A figure of one run with what makes it uncertain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    pub value: f64,
    /// One standard deviation (counts: Poisson, sqrt(n) scaled like the value).
    pub sigma: f64,
    /// The smallest step the measurement can tell apart (histogram unit, poll interval).
    pub resolution: f64,
}

impl Figure {
    /// A value with no known noise besides [`NOISE_RELATIVE`].
    pub fn plain(value: f64) -> Figure {
        Figure {
            value,
            sigma: 0.0,
            resolution: 0.0,
        }
    }

    /// `n` counted events shown as `n * scale` (a rate: `1 / seconds`; a percentage of `c`:
    /// `100 / c`), with Poisson noise.
    pub fn count(n: u64, scale: f64) -> Figure {
        Figure::counted(n as f64 * scale, n)
    }

    /// A value proportional to `n` counted events (a share of them, a rate): its Poisson noise is
    /// the value over sqrt(n).
    pub fn counted(value: f64, n: u64) -> Figure {
        Figure {
            value,
            sigma: value.abs() / (n.max(1) as f64).sqrt(),
            resolution: 0.0,
        }
    }
}

/// `base` to `cur`: the same when the difference is within two standard deviations of the
/// difference, within the coarser resolution, or within [`NOISE_RELATIVE`] of the larger
/// value; otherwise better or worse (higher or lower) by `better`.
pub fn change(base: Option<Figure>, cur: Option<Figure>, better: Better) -> Change {
    let (Some(b), Some(c)) = (base, cur) else {
        return Change::Unknown;
    };
    if !(b.value.is_finite() && c.value.is_finite()) {
        return Change::Unknown;
    }
    let d = c.value - b.value;
    let noise = (2.0 * (b.sigma * b.sigma + c.sigma * c.sigma).sqrt())
        .max(b.resolution.max(c.resolution))
        .max(NOISE_RELATIVE * b.value.abs().max(c.value.abs()));
    if d.abs() <= noise {
        return Change::Same;
    }
    match (better, d > 0.0) {
        (Better::Higher, true) | (Better::Lower, false) => Change::Better,
        (Better::Higher, false) | (Better::Lower, true) => Change::Worse,
        (Better::Neither, true) => Change::Higher,
        (Better::Neither, false) => Change::Lower,
    }
}

/// How the figures of one signal are labelled, read and formatted for comparisons.
pub struct FigureSpec {
    pub label: &'static str,
    pub better: Better,
    pub get: fn(&Results, &SignalResults) -> Option<Figure>,
    pub fmt: fn(f64) -> String,
}

/// A latency percentile in ms, resolved to one histogram unit and at least `floor_ms`.
pub(super) fn latency_figure(h: &HistogramData, v: u64, floor_ms: f64) -> Option<Figure> {
    (h.count > 0).then(|| Figure {
        value: to_ms(v as f64, &h.unit),
        sigma: 0.0,
        resolution: to_ms(1.0, &h.unit).max(floor_ms),
    })
}

pub(super) fn w2q_figure(s: &SignalResults, pick: fn(&HistogramData) -> u64) -> Option<Figure> {
    let v = &s.verification;
    let h = &v.write_to_query_latency;
    latency_figure(h, pick(h), v.poll_interval_ms as f64)
}

/// The per-signal figures `loadgen compare` and the report's baseline section compare.
pub const SIGNAL_FIGURES: [FigureSpec; 8] = [
    FigureSpec {
        label: "items/s",
        better: Better::Higher,
        get: |r, s| Some(Figure::count(s.acknowledged, 1.0 / measured_s(r)?)),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "requests/s",
        better: Better::Neither,
        get: |r, s| {
            let secs = measured_s(r)?;
            (s.requests > 0).then(|| Figure::count(s.requests, 1.0 / secs))
        },
        fmt: fmt_f,
    },
    FigureSpec {
        label: "bytes/s",
        better: Better::Neither,
        get: |r, s| {
            let secs = measured_s(r)?;
            (s.bytes > 0).then(|| Figure::plain(s.bytes as f64 / secs))
        },
        fmt: fmt_bytes,
    },
    FigureSpec {
        label: "loss %",
        better: Better::Lower,
        get: |_, s| {
            let v = &s.verification;
            let percent = v.loss_fraction()? * 100.0;
            Some(Figure::counted(percent, v.lost))
        },
        fmt: |f| format!("{f:.3}"),
    },
    FigureSpec {
        label: "p50 send latency (ms)",
        better: Better::Lower,
        get: |_, s| latency_figure(&s.send_latency, s.send_latency.p50, 0.0),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "p99 send latency (ms)",
        better: Better::Lower,
        get: |_, s| latency_figure(&s.send_latency, s.send_latency.p99, 0.0),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "p50 write-to-query (ms)",
        better: Better::Lower,
        get: |_, s| w2q_figure(s, |h| h.p50),
        fmt: fmt_f,
    },
    FigureSpec {
        label: "p99 write-to-query (ms)",
        better: Better::Lower,
        get: |_, s| w2q_figure(s, |h| h.p99),
        fmt: fmt_f,
    },
];
