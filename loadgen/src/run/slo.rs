//! SLOs given as `name=value` (`--slo loss=0 --slo p99_send_ms=500`), checked against a run's
//! results. Every SLO is an upper bound and takes the worst signal.
//!
//! | name | actual value |
//! |---|---|
//! | `loss` | largest share of canaries lost, in `[0, 1]` |
//! | `errors` | largest share of sent items not acknowledged, in `[0, 1]` |
//! | `p99_send_ms` | largest p99 send latency (from the intended time), ms |
//! | `p99_write_to_query_ms` | largest p99 write-to-queryable latency of canaries, ms |
//! | `collector_rss_mb` | the collector process's peak RSS, MiB (`--collector-cmd`) |
//! | `collector_cpu_cores` | the collector process's mean CPU over the run, cores (`--collector-cmd`) |

use std::fmt;
use std::str::FromStr;

use reports::Results;
use reports::html::{loss_fraction, to_ms};
use reports::results::SloVerdict;

/// What an SLO bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SloKind {
    Loss,
    Errors,
    P99SendMs,
    P99WriteToQueryMs,
    CollectorRssMb,
    CollectorCpuCores,
}

impl SloKind {
    const ALL: [SloKind; 6] = [
        SloKind::Loss,
        SloKind::Errors,
        SloKind::P99SendMs,
        SloKind::P99WriteToQueryMs,
        SloKind::CollectorRssMb,
        SloKind::CollectorCpuCores,
    ];

    /// Bounds the collector process, so needs one loadgen spawned and sampled.
    pub fn needs_collector_process(self) -> bool {
        matches!(self, SloKind::CollectorRssMb | SloKind::CollectorCpuCores)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Loss => "loss",
            SloKind::Errors => "errors",
            SloKind::P99SendMs => "p99_send_ms",
            SloKind::P99WriteToQueryMs => "p99_write_to_query_ms",
            SloKind::CollectorRssMb => "collector_rss_mb",
            SloKind::CollectorCpuCores => "collector_cpu_cores",
        }
    }

    /// The worst signal's value in `r` (0 when there are no signals).
    fn actual(self, r: &Results) -> f64 {
        let collector = || r.resources.iter().filter(|s| s.process == "collector");
        match self {
            // No samples (no process): infinite, so the SLO fails rather than passes unseen.
            SloKind::CollectorRssMb => {
                return collector()
                    .map(|s| s.rss_bytes as f64 / (1024.0 * 1024.0))
                    .reduce(f64::max)
                    .unwrap_or(f64::INFINITY);
            }
            SloKind::CollectorCpuCores => {
                let (sum, n) = collector().fold((0.0, 0u32), |(a, n), s| (a + s.cpu_cores, n + 1));
                return if n == 0 {
                    f64::INFINITY
                } else {
                    sum / f64::from(n)
                };
            }
            _ => {}
        }
        r.signals
            .values()
            .map(|s| match self {
                SloKind::Loss => loss_fraction(&s.verification).unwrap_or(0.0),
                SloKind::Errors => {
                    if s.sent == 0 {
                        0.0
                    } else {
                        s.sent.saturating_sub(s.acknowledged) as f64 / s.sent as f64
                    }
                }
                SloKind::P99SendMs => to_ms(s.send_latency.p99 as f64, &s.send_latency.unit),
                SloKind::P99WriteToQueryMs => {
                    let h = &s.verification.write_to_query_latency;
                    to_ms(h.p99 as f64, &h.unit)
                }
                SloKind::CollectorRssMb | SloKind::CollectorCpuCores => 0.0,
            })
            .fold(0.0, f64::max)
    }
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
        let kind = SloKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| SloError::Name {
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
    /// The verdict of this SLO on `r`.
    pub fn check(&self, r: &Results) -> SloVerdict {
        let actual = self.kind.actual(r);
        SloVerdict {
            name: self.kind.as_str().to_string(),
            threshold: self.threshold,
            actual,
            pass: actual <= self.threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_names_and_refuses_the_rest() {
        assert_eq!(
            "loss=0".parse::<Slo>(),
            Ok(Slo {
                kind: SloKind::Loss,
                threshold: 0.0
            })
        );
        assert_eq!(
            "p99_send_ms = 500".parse::<Slo>().map(|s| s.kind),
            Ok(SloKind::P99SendMs)
        );
        assert!(matches!("loss".parse::<Slo>(), Err(SloError::Syntax(_))));
        assert!(matches!(
            "lost=1".parse::<Slo>(),
            Err(SloError::Name { .. })
        ));
        assert!(matches!("loss=-1".parse::<Slo>(), Err(SloError::Value(_))));
        assert!(matches!("loss=abc".parse::<Slo>(), Err(SloError::Value(_))));
    }
}
