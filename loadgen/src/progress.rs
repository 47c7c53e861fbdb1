//! What a running load run shows while it runs: the live counters ([`Progress`], filled by the
//! run and by [`track`] from the verifier), one status formatter ([`status`]) and the display
//! ([`spawn`]): a progress bar on a terminal, or, when stderr is not a terminal (a CI log), a
//! plain line every [`PLAIN_EVERY`] and at each change of phase — a bar redrawn in place is
//! noise in a log file, and a silent minute looks like a hang.
//!
//! Three phases: sending (rates per signal, refused items, canaries found so far out of those
//! acknowledged, ETA), draining (the run waits for the canaries still missing: "draining
//! canaries: N of M found, up to Xs left") and the final sweep (drain time over; one more read
//! of everything for duplicates and order).

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::Signal;
use crate::verify::{Ledger, Verifier};

/// How often a plain status line is printed when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// How often [`track`] copies the verifier's counts.
const TRACK_EVERY: Duration = Duration::from_secs(1);

/// Live counters of a running run, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub(crate) acknowledged: [AtomicU64; 3],
    pub(crate) errors: AtomicU64,
    /// Milliseconds since the start of the run.
    pub(crate) elapsed_ms: AtomicU64,
    /// Canaries acknowledged (in the verifier's ledger) and found by the verifier so far.
    canaries_expected: AtomicU64,
    canaries_found: AtomicU64,
    /// When the drain began, and its timeout.
    drain: OnceLock<(Instant, Duration)>,
}

impl Progress {
    /// Items acknowledged so far (warmup included) of `signal`.
    pub fn acknowledged(&self, signal: Signal) -> u64 {
        self.acknowledged[signal.index()].load(Ordering::Relaxed)
    }

    /// Items not acknowledged so far, all signals.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Time since the run started sending.
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms.load(Ordering::Relaxed))
    }

    /// `(found, expected)` canaries so far, all signals; `None` before the verifier reported.
    pub fn canaries(&self) -> Option<(u64, u64)> {
        let expected = self.canaries_expected.load(Ordering::Relaxed);
        (expected > 0).then(|| (self.canaries_found.load(Ordering::Relaxed), expected))
    }

    fn set_canaries(&self, (found, expected): (u64, u64)) {
        self.canaries_found.store(found, Ordering::Relaxed);
        self.canaries_expected.store(expected, Ordering::Relaxed);
    }

    /// Sending is over; the verifier waits up to `timeout` for the missing canaries.
    pub fn start_drain(&self, timeout: Duration) {
        let _ = self.drain.set((Instant::now(), timeout));
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        match self.drain.get() {
            None => Phase::Sending,
            Some((since, timeout)) => match timeout.checked_sub(since.elapsed()) {
                Some(left) if !left.is_zero() => Phase::Draining { left },
                _ => Phase::Sweeping,
            },
        }
    }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Sending the schedule.
    Sending,
    /// Waiting for canaries not found yet, at most `left` more.
    Draining { left: Duration },
    /// Drain time over: the final sweep for duplicates and order.
    Sweeping,
}

/// What one status line shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub elapsed: Duration,
    /// The run's sending time.
    pub duration: Duration,
    /// The longest the drain may take after sending.
    pub drain_timeout: Duration,
    /// Acknowledged items per second per signal ([`Signal::ALL`] order), recently.
    pub rates: [f64; 3],
    /// Items refused or failed so far.
    pub errors: u64,
    /// `(found, expected)` canaries.
    pub canaries: Option<(u64, u64)>,
    pub phase: Phase,
}

impl Snapshot {
    /// The counters now, with rates from `rates`.
    pub fn of(p: &Progress, duration: Duration, drain_timeout: Duration, rates: [f64; 3]) -> Self {
        Snapshot {
            elapsed: p.elapsed(),
            duration,
            drain_timeout,
            rates,
            errors: p.errors(),
            canaries: p.canaries(),
            phase: p.phase(),
        }
    }
}

/// `1m05s`, `42s`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn canaries_found(c: Option<(u64, u64)>) -> String {
    match c {
        Some((found, expected)) => format!("{found} of {expected} found"),
        None => "none acknowledged yet".to_string(),
    }
}

/// The status of a run in one line (no trailing newline): the bar's message on a terminal,
/// and the plain line otherwise.
pub fn status(s: &Snapshot) -> String {
    match s.phase {
        Phase::Sending => {
            let rates: Vec<String> = Signal::ALL
                .iter()
                .zip(s.rates)
                .map(|(sig, r)| format!("{sig} {r:.0}/s"))
                .collect();
            let left = s.duration.saturating_sub(s.elapsed);
            let pct = if s.duration.is_zero() {
                100.0
            } else {
                (s.elapsed.as_secs_f64() / s.duration.as_secs_f64() * 100.0).min(100.0)
            };
            format!(
                "sending {} of {} ({pct:.0}%): {}; refused {}; canaries {}; ETA {} + canary drain up to {}",
                secs(s.elapsed.min(s.duration)),
                secs(s.duration),
                rates.join(", "),
                s.errors,
                canaries_found(s.canaries),
                secs(left),
                secs(s.drain_timeout)
            )
        }
        Phase::Draining { left } => format!(
            "draining canaries: {}, up to {} left",
            canaries_found(s.canaries),
            secs(left)
        ),
        Phase::Sweeping => format!(
            "draining canaries: {}; drain time over, final sweep for duplicates and order",
            canaries_found(s.canaries)
        ),
    }
}

/// The plain line printed every [`PLAIN_EVERY`] when stderr is not a terminal.
pub fn plain_line(s: &Snapshot) -> String {
    format!("loadgen progress: {}", status(s))
}

/// Is a plain line due, `since` after the last one, which showed phase `shown`? Every
/// [`PLAIN_EVERY`], and at once when the phase changed (a short drain would show no line).
pub fn plain_due(since: Duration, shown: Phase, now: Phase) -> bool {
    since >= PLAIN_EVERY || std::mem::discriminant(&shown) != std::mem::discriminant(&now)
}

/// Runs `fut` (the verifier polling or draining) while copying `counts()` — `(found,
/// expected)` canaries — into `progress` every second and once at the end.
pub async fn track<F: Future>(
    progress: &Progress,
    counts: &(dyn Fn() -> (u64, u64) + Sync),
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(TRACK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            out = &mut fut => {
                progress.set_canaries(counts());
                return out;
            }
            _ = tick.tick() => progress.set_canaries(counts()),
        }
    }
}

/// [`track`] of the drain: marks the drain phase (at most `timeout`) first.
pub async fn draining<F: Future>(
    progress: &Progress,
    timeout: Duration,
    counts: &(dyn Fn() -> (u64, u64) + Sync),
    fut: F,
) -> F::Output {
    progress.start_drain(timeout);
    track(progress, counts, fut).await
}

/// `(found, expected)` canaries of every signal: expected are those in the ledger
/// (acknowledged and kept), found those of them the verifier has seen.
pub fn canary_counts(ledger: &Ledger, verifier: &Verifier) -> (u64, u64) {
    let expected: u64 = Signal::ALL.iter().map(|&s| ledger.len(s) as u64).sum();
    (expected.saturating_sub(verifier.pending()), expected)
}

/// A running display; [`Display::finish`] removes it.
pub struct Display {
    bar: Option<ProgressBar>,
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Shows `p` on stderr until [`Display::finish`]: a bar on a terminal, else a plain line
/// every [`PLAIN_EVERY`]. Needs a tokio runtime.
pub fn spawn(p: std::sync::Arc<Progress>, duration: Duration, drain_timeout: Duration) -> Display {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = terminal.then(|| {
        let bar = ProgressBar::new(duration.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let tick = Duration::from_millis(if terminal { 500 } else { 1000 });
    let b = bar.clone();
    let task = tokio::spawn(async move {
        // Rates are over the time since the last bar update or printed line.
        let mut last = ([0u64; 3], Instant::now());
        let mut shown = Phase::Sending;
        loop {
            tokio::time::sleep(tick).await;
            if b.is_none() && !plain_due(last.1.elapsed(), shown, p.phase()) {
                continue;
            }
            let now = (Signal::ALL.map(|s| p.acknowledged(s)), Instant::now());
            let dt = now.1.duration_since(last.1).as_secs_f64().max(1e-3);
            let mut rates = [0.0; 3];
            for (i, r) in rates.iter_mut().enumerate() {
                *r = now.0[i].saturating_sub(last.0[i]) as f64 / dt;
            }
            last = now;
            let snap = Snapshot::of(&p, duration, drain_timeout, rates);
            shown = snap.phase;
            match &b {
                Some(bar) => {
                    bar.set_position(snap.elapsed.as_millis() as u64);
                    bar.set_message(status(&snap));
                }
                None => eprintln!("{}", plain_line(&snap)),
            }
        }
    });
    Display { bar, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(phase: Phase) -> Snapshot {
        Snapshot {
            elapsed: Duration::from_millis(20_400),
            duration: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(90),
            rates: [1200.4, 3400.0, 49.6],
            errors: 7,
            canaries: Some((180, 200)),
            phase,
        }
    }

    #[test]
    fn sending_line_has_rates_refusals_canaries_and_eta() {
        let line = plain_line(&snap(Phase::Sending));
        assert_eq!(
            line,
            "loadgen progress: sending 21s of 1m00s (34%): logs 1200/s, metrics 3400/s, \
             traces 50/s; refused 7; canaries 180 of 200 found; ETA 40s + canary drain up to 1m30s"
        );
        let mut s = snap(Phase::Sending);
        s.canaries = None;
        assert!(status(&s).contains("canaries none acknowledged yet"));
        // Past the end (the last requests finishing): never above 100 % or a negative ETA.
        s.elapsed = Duration::from_secs(61);
        let line = status(&s);
        assert!(
            line.contains("1m00s of 1m00s (100%)") && line.contains("ETA 0s"),
            "{line}"
        );
    }

    #[test]
    fn drain_lines_say_what_is_awaited_and_for_how_long() {
        let line = plain_line(&snap(Phase::Draining {
            left: Duration::from_millis(41_200),
        }));
        assert_eq!(
            line,
            "loadgen progress: draining canaries: 180 of 200 found, up to 42s left"
        );
        let line = status(&snap(Phase::Sweeping));
        assert!(line.starts_with("draining canaries: 180 of 200 found; drain time over"));
    }

    #[test]
    fn plain_lines_every_ten_seconds_and_at_each_new_phase() {
        let draining = Phase::Draining {
            left: Duration::from_secs(5),
        };
        let sec = Duration::from_secs;
        assert!(!plain_due(sec(3), Phase::Sending, Phase::Sending));
        assert!(plain_due(sec(10), Phase::Sending, Phase::Sending));
        assert!(plain_due(sec(1), Phase::Sending, draining));
        // The drain counting down is not a new phase; its end is.
        let later = Phase::Draining { left: sec(4) };
        assert!(!plain_due(sec(1), draining, later));
        assert!(plain_due(sec(1), later, Phase::Sweeping));
    }

    #[test]
    fn phases_follow_the_drain() {
        let p = Progress::default();
        assert_eq!(p.phase(), Phase::Sending);
        assert_eq!(p.canaries(), None);
        p.set_canaries((3, 5));
        assert_eq!(p.canaries(), Some((3, 5)));
        p.start_drain(Duration::from_secs(3600));
        assert!(matches!(p.phase(), Phase::Draining { left } if left > Duration::from_secs(3500)));
        let q = Progress::default();
        q.start_drain(Duration::ZERO);
        assert_eq!(q.phase(), Phase::Sweeping);
    }

    #[tokio::test]
    async fn track_copies_the_counts_at_the_end() {
        let p = Progress::default();
        let out = draining(&p, Duration::from_secs(5), &|| (4, 9), async { 42 }).await;
        assert_eq!(out, 42);
        assert_eq!(p.canaries(), Some((4, 9)));
        assert!(matches!(p.phase(), Phase::Draining { .. }));
    }
}
