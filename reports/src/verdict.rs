//! The verdict of a run: its objectives (SLOs), checked against [`Results`], and the one
//! outcome the summary's first line, the report's banner and loadgen's exit code all show.
//!
//! A run is judged even when the user names no objective: the **default objectives** are
//! nothing lost, nothing duplicated, nothing refused, and every signal that was sent has
//! canaries found. `--slo name=value` replaces the default of that name and adds the others;
//! opting out of the defaults is explicit (`--no-default-slos`) and the verdict then says so.
//! A run with no objectives at all is [`Outcome::Unjudged`], never a green PASS.
//!
//! | name | actual value (the worst signal) | default |
//! |---|---|---|
//! | `loss` | share of acknowledged canaries not found, in `[0, 1]` | 0 |
//! | `duplicates` | extra copies of canaries found | 0 |
//! | `errors` | share of sent items not acknowledged (refused, failed), in `[0, 1]` | 0 |
//! | `unverified` | signals sent without a canary found (or nothing sent at all) | 0 |
//! | `p99_send_ms` | p99 send latency from the intended time, ms | — |
//! | `p99_write_to_query_ms` | p99 write-to-queryable latency of canaries, ms | — |
//! | `collector_rss_mb` | the collector process's peak RSS, MiB (`--collector-cmd`) | — |
//! | `collector_cpu_cores` | the collector process's mean CPU, cores (`--collector-cmd`) | — |
//! | `p99_query_ms` | p99 dashboard query latency of the worst query kind, ms (`--viewers`) | — |
//! | `query_errors` | share of dashboard queries not answered, worst query kind, in `[0, 1]` | 0 with `--viewers` |
//!
//! With viewers, `unverified` also counts the read path when not one query was answered, and
//! `p99_query_ms` is infinite then (or when no viewer ran): a check that could not run fails.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::results::{Results, SignalResults, SloVerdict};

/// What an SLO bounds. Every SLO is an upper bound on the worst signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SloKind {
    Loss,
    Duplicates,
    Errors,
    Unverified,
    P99SendMs,
    P99WriteToQueryMs,
    CollectorRssMb,
    CollectorCpuCores,
    P99QueryMs,
    QueryErrors,
}

impl SloKind {
    pub const ALL: [SloKind; 10] = [
        SloKind::Loss,
        SloKind::Duplicates,
        SloKind::Errors,
        SloKind::Unverified,
        SloKind::P99SendMs,
        SloKind::P99WriteToQueryMs,
        SloKind::CollectorRssMb,
        SloKind::CollectorCpuCores,
        SloKind::P99QueryMs,
        SloKind::QueryErrors,
    ];

    /// Bounds the collector process, so needs one loadgen spawned and sampled.
    pub fn needs_collector_process(self) -> bool {
        matches!(self, SloKind::CollectorRssMb | SloKind::CollectorCpuCores)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Loss => "loss",
            SloKind::Duplicates => "duplicates",
            SloKind::Errors => "errors",
            SloKind::Unverified => "unverified",
            SloKind::P99SendMs => "p99_send_ms",
            SloKind::P99WriteToQueryMs => "p99_write_to_query_ms",
            SloKind::CollectorRssMb => "collector_rss_mb",
            SloKind::CollectorCpuCores => "collector_cpu_cores",
            SloKind::P99QueryMs => "p99_query_ms",
            SloKind::QueryErrors => "query_errors",
        }
    }

    fn from_name(name: &str) -> Option<SloKind> {
        SloKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The worst value in `r`, and what makes it so (for the verdict's reasons).
    fn actual(self, r: &Results) -> (f64, String) {
        let collector = || r.resources.iter().filter(|s| s.process == "collector");
        match self {
            // No samples (no process): infinite, so the SLO fails rather than passes unseen.
            SloKind::CollectorRssMb => {
                let v = collector()
                    .map(|s| s.rss_bytes as f64 / (1024.0 * 1024.0))
                    .reduce(f64::max)
                    .unwrap_or(f64::INFINITY);
                return (v, format!("collector peak RSS {v:.1} MiB"));
            }
            SloKind::CollectorCpuCores => {
                let (sum, n) = collector().fold((0.0, 0u32), |(a, n), s| (a + s.cpu_cores, n + 1));
                let v = if n == 0 {
                    f64::INFINITY
                } else {
                    sum / f64::from(n)
                };
                return (v, format!("collector mean CPU {v:.3} cores"));
            }
            SloKind::Unverified => return unverified(r),
            SloKind::P99QueryMs | SloKind::QueryErrors => {
                return crate::read_path::objective(self, r.read_path.as_ref());
            }
            _ => {}
        }
        let mut worst = (0.0f64, String::new());
        for (name, s) in &r.signals {
            let (v, why) = self.of_signal(name, s);
            if v > worst.0 || (worst.1.is_empty() && v > 0.0) {
                worst = (v, why);
            }
        }
        worst
    }

    /// One signal's value and its explanation.
    fn of_signal(self, name: &str, s: &SignalResults) -> (f64, String) {
        let v = &s.verification;
        match self {
            SloKind::Loss => {
                let f = v.loss_fraction().unwrap_or(0.0);
                let mut why = format!(
                    "{name}: {} of {} canaries lost ({})",
                    v.lost,
                    v.canaries,
                    pct(f)
                );
                if v.lost > 0 && v.stack_evicted > 0 {
                    let what = match name {
                        "logs" => "log entries",
                        "metrics" => "samples",
                        "traces" => "traces",
                        _ => "items",
                    };
                    why.push_str(&format!(
                        "; the embedded stack evicted {} {what} to stay within its retention \
                         bound (loadgen --embedded-retention-mb): the loss is the stand-in's, \
                         not the pipeline's",
                        v.stack_evicted
                    ));
                }
                if let Some(e) = v.last_query_error.as_deref().filter(|_| v.lost > 0) {
                    why.push_str(&format!(
                        "; {} read-back queries failed, the last: {e}",
                        v.query_errors
                    ));
                }
                (f, why)
            }
            SloKind::Duplicates => (
                v.duplicated as f64,
                format!("{name}: {} canary copies found twice or more", v.duplicated),
            ),
            SloKind::Errors => {
                let refused = s.sent.saturating_sub(s.acknowledged);
                let f = if s.sent == 0 {
                    0.0
                } else {
                    refused as f64 / s.sent as f64
                };
                let by: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
                (
                    f,
                    format!(
                        "{name}: {refused} of {} items refused or failed ({}) by status: {}",
                        s.sent,
                        pct(f),
                        if by.is_empty() {
                            "none".into()
                        } else {
                            by.join(", ")
                        }
                    ),
                )
            }
            SloKind::P99SendMs => {
                let ms = crate::html::to_ms(s.send_latency.p99 as f64, &s.send_latency.unit);
                (ms, format!("{name}: p99 send latency {ms:.1} ms"))
            }
            SloKind::P99WriteToQueryMs => {
                let h = &v.write_to_query_latency;
                let ms = crate::html::to_ms(h.p99 as f64, &h.unit);
                (ms, format!("{name}: p99 write-to-query latency {ms:.1} ms"))
            }
            SloKind::Unverified
            | SloKind::CollectorRssMb
            | SloKind::CollectorCpuCores
            | SloKind::P99QueryMs
            | SloKind::QueryErrors => (0.0, String::new()),
        }
    }
}

/// Signals sent with no canary found; all of them when nothing was sent at all. With viewers,
/// a read path that had no query answered counts as one more.
fn unverified(r: &Results) -> (f64, String) {
    let sent: u64 = r.signals.values().map(|s| s.sent).sum();
    if sent == 0 {
        return (
            r.signals.len().max(1) as f64,
            "nothing was sent: no signal produced a single item".into(),
        );
    }
    let mut bad: Vec<String> = r
        .signals
        .iter()
        .filter(|(_, s)| s.sent > 0 && s.verification.found == 0)
        .map(|(name, s)| {
            let v = &s.verification;
            if v.canaries == 0 {
                format!(
                    "{name}: {} items sent, no canary acknowledged (all refused, or --canary-every 0)",
                    s.sent
                )
            } else {
                format!("{name}: none of {} canaries found in the stack", v.canaries)
            }
        })
        .collect();
    if let Some(why) = r.read_path.as_ref().and_then(crate::read_path::unanswered) {
        bad.push(why);
    }
    (bad.len() as f64, bad.join("; "))
}

fn pct(f: f64) -> String {
    format!("{:.3}%", f * 100.0)
}

/// One `name=value` bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slo {
    pub kind: SloKind,
    pub threshold: f64,
}

/// A `--slo` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SloError {
    #[error("SLO `{0}`: expected name=value, e.g. loss=0 or p99_send_ms=500")]
    Syntax(String),
    #[error("SLO `{given}`: unknown name `{name}` (known: {known})")]
    Name {
        given: String,
        name: String,
        known: String,
    },
    #[error("SLO `{0}`: the value must be a non-negative number")]
    Value(String),
}

impl FromStr for Slo {
    type Err = SloError;

    fn from_str(s: &str) -> Result<Slo, SloError> {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| SloError::Syntax(s.to_string()))?;
        let name = name.trim();
        let kind = SloKind::from_name(name).ok_or_else(|| SloError::Name {
            given: s.to_string(),
            name: name.to_string(),
            known: SloKind::ALL.map(SloKind::as_str).join(", "),
        })?;
        let threshold: f64 = value
            .trim()
            .parse()
            .map_err(|_| SloError::Value(s.to_string()))?;
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(SloError::Value(s.to_string()));
        }
        Ok(Slo { kind, threshold })
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind.as_str(), self.threshold)
    }
}

impl Slo {
    /// The default objectives: nothing lost, duplicated, refused or unverified.
    pub const DEFAULTS: [Slo; 4] = [
        Slo {
            kind: SloKind::Loss,
            threshold: 0.0,
        },
        Slo {
            kind: SloKind::Duplicates,
            threshold: 0.0,
        },
        Slo {
            kind: SloKind::Errors,
            threshold: 0.0,
        },
        Slo {
            kind: SloKind::Unverified,
            threshold: 0.0,
        },
    ];

    /// The verdict of this SLO on `r`.
    pub fn check(&self, r: &Results, default: bool) -> SloVerdict {
        let (actual, detail) = self.kind.actual(r);
        SloVerdict {
            name: self.kind.as_str().to_string(),
            threshold: self.threshold,
            actual,
            pass: actual <= self.threshold,
            default,
            detail,
        }
    }
}

/// The objectives a run is judged by: the defaults (unless `defaults` is false), each replaced
/// by a given SLO of the same name, then the other given SLOs in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Objectives {
    /// `(slo, is a default)`.
    pub slos: Vec<(Slo, bool)>,
    /// The defaults were opted out of (`--no-default-slos`).
    pub defaults_off: bool,
}

impl Objectives {
    pub fn new(given: &[Slo], defaults: bool) -> Objectives {
        let mut slos: Vec<(Slo, bool)> = Vec::new();
        if defaults {
            for d in Slo::DEFAULTS {
                match given.iter().rev().find(|g| g.kind == d.kind) {
                    Some(g) => slos.push((*g, false)),
                    None => slos.push((d, true)),
                }
            }
        }
        for g in given {
            if let Some(i) = slos.iter().position(|(s, _)| s.kind == g.kind) {
                slos[i] = (*g, false);
            } else {
                slos.push((*g, false));
            }
        }
        Objectives {
            slos,
            defaults_off: !defaults,
        }
    }

    /// Adds `slo` as a default objective unless one of its kind is there already, or the
    /// defaults are off (e.g. `query_errors=0` for a run with viewers).
    pub fn with_default(mut self, slo: Slo) -> Objectives {
        if !self.defaults_off && !self.slos.iter().any(|(s, _)| s.kind == slo.kind) {
            self.slos.push((slo, true));
        }
        self
    }

    /// The objectives recorded in `r` (to check them again, e.g. on merged shards).
    pub fn of(r: &Results) -> Objectives {
        let slos = r
            .slos
            .iter()
            .filter_map(|v| {
                let kind = SloKind::from_name(&v.name)?;
                Some((
                    Slo {
                        kind,
                        threshold: v.threshold,
                    },
                    v.default,
                ))
            })
            .collect();
        Objectives {
            slos,
            defaults_off: r.defaults_off,
        }
    }

    /// Checks every objective on `r` and stores the verdicts there.
    pub fn judge(&self, r: &mut Results) {
        r.slos = self.slos.iter().map(|(s, d)| s.check(r, *d)).collect();
        r.defaults_off = self.defaults_off;
        let v = Verdict::of(r);
        r.verdict = Some(crate::results::VerdictRecord {
            outcome: v.outcome,
            reasons: v.reasons,
        });
    }
}

/// A run's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// No objective was checked (`--no-default-slos` and no `--slo`).
    Unjudged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Unjudged => "NOT JUDGED",
        }
    }
}

/// The outcome and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// For a failure, one line per missed objective; otherwise what was checked.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// The verdict of `r` from its recorded SLO verdicts.
    pub fn of(r: &Results) -> Verdict {
        if r.slos.is_empty() {
            return Verdict {
                outcome: Outcome::Unjudged,
                reasons: vec![
                    "no objectives were checked (--no-default-slos): loss, duplicates and refusals were not judged"
                        .into(),
                ],
            };
        }
        let failed: Vec<String> = r
            .slos
            .iter()
            .filter(|s| !s.pass)
            .map(|s| {
                let detail = if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", s.detail)
                };
                format!(
                    "{} {} > {}{detail}",
                    s.name,
                    fmt_num(s.actual),
                    fmt_num(s.threshold)
                )
            })
            .collect();
        if failed.is_empty() {
            let names: Vec<String> = r
                .slos
                .iter()
                .map(|s| format!("{}<={}", s.name, fmt_num(s.threshold)))
                .collect();
            let defaults = if r.defaults_off {
                " (default objectives off: --no-default-slos)"
            } else {
                ""
            };
            Verdict {
                outcome: Outcome::Pass,
                reasons: vec![format!(
                    "all {} objectives met: {}{defaults}",
                    r.slos.len(),
                    names.join(", ")
                )],
            }
        } else {
            Verdict {
                outcome: Outcome::Fail,
                reasons: failed,
            }
        }
    }

    /// `PASS: ...`, `FAIL: a; b`, `NOT JUDGED: ...` — the first line of every summary.
    pub fn headline(&self) -> String {
        format!("{}: {}", self.outcome.as_str(), self.reasons.join("; "))
    }
}

/// `0`, `0.25`, `1500`, `inf`.
fn fmt_num(v: f64) -> String {
    if v.is_infinite() {
        "inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

#[cfg(test)]
mod tests;
