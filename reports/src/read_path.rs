//! The read path of a run (`loadgen --viewers N`): what the Grafana viewers asked Loki, Mimir
//! and Tempo while the fleet wrote, and how fast they were answered. Kept per query kind
//! ([`ReadPath::kinds`], keyed by names such as `promql_range`, `logql_range`,
//! `traceql_search`, `promql_label_values`) and per panel ([`ReadPath::panels`]), so a slow
//! panel is named, not averaged away.
//!
//! Latency is measured from the moment a query leaves to the moment its whole answer is read,
//! in µs (the unit is in each histogram). A query is *answered* when the backend (or Grafana)
//! returned 2xx and said success; anything else counts under `errors`, keyed by HTTP status
//! ("500", "429") or by what went wrong ("connect", "timeout", "grafana:400", "body").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histogram::HistogramData;

/// Everything the viewers measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadPath {
    /// Goose users that ran, one Grafana viewer each.
    pub viewers: u64,
    /// The dashboards they opened (file names), round-robin over viewers.
    pub dashboards: Vec<String>,
    /// Where queries went: "direct" (the stack's Loki, Mimir and Tempo APIs) or Grafana's URL
    /// (`/api/ds/query`).
    pub via: String,
    /// Dashboard refreshes completed (every panel queried once per refresh).
    pub refreshes: u64,
    /// Goose's own HTML report, relative to the run folder, when it was written.
    #[serde(default)]
    pub goose_report: Option<String>,
    /// Per query kind.
    pub kinds: BTreeMap<String, QueryKindResults>,
    /// Per panel, in dashboard order.
    #[serde(default)]
    pub panels: Vec<PanelResults>,
}

/// One query kind's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryKindResults {
    /// Panel queries not sent because a template variable they use had no value yet (e.g. a
    /// device dashboard opened before any device reported): not failures of the backend.
    #[serde(default)]
    pub skipped: u64,
    /// Queries sent.
    pub queries: u64,
    /// Queries answered with success.
    pub answered: u64,
    /// Failed queries by HTTP status or error kind.
    pub errors: BTreeMap<String, u64>,
    /// Latency of every query, answered or not (a failure also took that long).
    pub latency: HistogramData,
}

/// One panel's numbers (all its targets together).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PanelResults {
    pub dashboard: String,
    pub panel: String,
    /// The query kinds of its targets, e.g. `promql_range`.
    pub kinds: Vec<String>,
    /// Queries not sent for want of a variable value (see [`QueryKindResults::skipped`]).
    #[serde(default)]
    pub skipped: u64,
    pub queries: u64,
    pub answered: u64,
    pub errors: u64,
    pub latency: HistogramData,
}

impl ReadPath {
    /// Queries sent, of every kind.
    pub fn queries(&self) -> u64 {
        self.kinds.values().map(|k| k.queries).sum()
    }

    /// Queries answered, of every kind.
    pub fn answered(&self) -> u64 {
        self.kinds.values().map(|k| k.answered).sum()
    }
}

impl ReadPath {
    /// "not sent: ..." when some panel queries waited for a variable value, else `None`.
    pub fn skipped_line(&self) -> Option<String> {
        let by: Vec<String> = self
            .kinds
            .iter()
            .filter(|(_, k)| k.skipped > 0)
            .map(|(name, k)| format!("{name}: {}", k.skipped))
            .collect();
        (!by.is_empty()).then(|| {
            format!(
                "not sent, a template variable had no value yet: {}",
                by.join(", ")
            )
        })
    }
}

impl QueryKindResults {
    /// Queries that failed.
    pub fn failed(&self) -> u64 {
        self.queries.saturating_sub(self.answered)
    }
}

/// The value of a read-path objective (`p99_query_ms`, `query_errors`) and what makes it so:
/// the worst query kind. Without viewers, or with no query answered, `p99_query_ms` is
/// infinite: a bound on query latency that could not be checked fails.
pub(crate) fn objective(kind: crate::verdict::SloKind, rp: Option<&ReadPath>) -> (f64, String) {
    use crate::verdict::SloKind;
    let Some(rp) = rp else {
        return match kind {
            SloKind::P99QueryMs => (
                f64::INFINITY,
                "no viewer ran (loadgen --viewers N): query latency was not measured".into(),
            ),
            _ => (0.0, "no viewer ran".into()),
        };
    };
    if kind == SloKind::P99QueryMs && rp.answered() == 0 {
        return (
            f64::INFINITY,
            unanswered(rp).unwrap_or_else(|| "no query answered".into()),
        );
    }
    let mut worst = (0.0f64, String::new());
    for (name, k) in &rp.kinds {
        let (v, why) = match kind {
            SloKind::P99QueryMs => {
                let ms = crate::html::to_ms(k.latency.p99 as f64, &k.latency.unit);
                (ms, format!("{name}: p99 query latency {ms:.1} ms"))
            }
            _ => {
                let f = if k.queries == 0 {
                    0.0
                } else {
                    k.failed() as f64 / k.queries as f64
                };
                let by: Vec<String> = k.errors.iter().map(|(s, n)| format!("{s}: {n}")).collect();
                (
                    f,
                    format!(
                        "{name}: {} of {} queries failed ({:.3}%){}",
                        k.failed(),
                        k.queries,
                        f * 100.0,
                        if by.is_empty() {
                            String::new()
                        } else {
                            format!(" by status: {}", by.join(", "))
                        }
                    ),
                )
            }
        };
        if v > worst.0 || worst.1.is_empty() {
            worst = (v, why);
        }
    }
    worst
}

/// Why the read path verified nothing, when not one query was answered.
pub(crate) fn unanswered(rp: &ReadPath) -> Option<String> {
    if rp.answered() > 0 {
        return None;
    }
    let mut by: BTreeMap<&str, u64> = BTreeMap::new();
    for k in rp.kinds.values() {
        for (s, n) in &k.errors {
            *by.entry(s).or_default() += n;
        }
    }
    let by: Vec<String> = by.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    Some(format!(
        "read path: {} viewers sent {} queries, none answered{}",
        rp.viewers,
        rp.queries(),
        if by.is_empty() {
            String::new()
        } else {
            format!(" (by status: {})", by.join(", "))
        }
    ))
}
