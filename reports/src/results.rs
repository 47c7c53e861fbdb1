//! `results.json`: everything a load run measured, versioned. The CLI summary, the SLO verdicts,
//! the HTML report, `loadgen compare` and `loadgen merge` all read this and nothing else.
//!
//! Signals are keyed `"logs"`, `"metrics"`, `"traces"`. Times are seconds since the run started
//! unless a name says otherwise. Counts are items: log entries, samples, spans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histogram::HistogramData;

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One run (or several shards merged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub run: RunInfo,
    pub fleet: FleetSummary,
    /// Per signal.
    pub signals: BTreeMap<String, SignalResults>,
    /// One entry per reporting interval (1 s by default), in time order.
    pub intervals: Vec<Interval>,
    /// Sent items per (device type, region).
    pub breakdown: Vec<Breakdown>,
    /// CPU and memory of loadgen and of the collector over time.
    pub resources: Vec<ResourceSample>,
    /// SLO checks and their outcome (the default objectives included, see
    /// [`crate::verdict`]).
    pub slos: Vec<SloVerdict>,
    /// The default objectives were opted out of (`--no-default-slos`).
    #[serde(default)]
    pub defaults_off: bool,
    /// The verdict the summary's first line and the report's banner show; computed from
    /// `slos` by [`crate::verdict::Objectives::judge`].
    #[serde(default)]
    pub verdict: Option<VerdictRecord>,
    /// Dashboard queries while the fleet wrote (`--viewers`); absent when no viewer ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_path: Option<crate::read_path::ReadPath>,
}

/// The verdict as `results.json` records it, for scripts (`jq .verdict.outcome`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub outcome: crate::verdict::Outcome,
    pub reasons: Vec<String>,
}

/// What was run, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// A name for the run (also its folder name).
    pub id: String,
    /// RFC3339.
    pub started_at: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub seed: u64,
    pub devices: u64,
    /// `[i, n]` when this is shard i of n; absent for a whole run or a merge.
    pub shard: Option<[u32; 2]>,
    /// Shards merged into this result (1 for a plain run).
    pub shards_merged: u32,
    /// Where the data went: "embedded", "collector http://...", "direct", "external".
    pub target: String,
    /// The agent under test (`collector`, `collector (in-process)`, `alloy`,
    /// `prometheus-agent`, ...): what `compare` and the report's baseline section name the runs
    /// by. Empty in results written before it was recorded.
    #[serde(default)]
    pub agent: String,
    /// Rate multiplier applied to every device's nominal rates.
    pub rate_multiplier: f64,
    pub loadgen_version: String,
    /// The command line, secrets removed.
    pub command: String,
}

/// The emulated fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetSummary {
    pub by_type: BTreeMap<String, u64>,
    pub by_region: BTreeMap<String, u64>,
    pub stores: u64,
    pub problem_devices: u64,
    /// Devices that came and went, and devices that went offline and backfilled; all zero
    /// when the run asked for neither (`--churn`, `--offline`).
    #[serde(default)]
    pub dynamics: FleetDynamics,
}

/// How the fleet changed during the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetDynamics {
    /// Share of the fleet replaced per minute (`--churn`).
    pub churn_per_min: f64,
    /// Devices that left and were replaced by a new device (new id, new series and streams).
    pub replaced: u64,
    /// Share of the fleet asked to go offline (`--offline`).
    pub offline_share: f64,
    /// Devices that were offline during the window.
    pub offline_devices: u64,
    /// The offline window, seconds from the start.
    pub offline_from_s: f64,
    pub offline_for_s: f64,
    /// Items buffered while offline and sent late (with their original timestamps).
    pub backfilled_items: u64,
    /// Items an offline device could not buffer (its buffer was full); never sent, counted.
    pub backfill_dropped: u64,
}

/// Everything measured about one signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalResults {
    /// Items loadgen sent (attempted).
    pub sent: u64,
    /// Items the target acknowledged (2xx).
    pub acknowledged: u64,
    /// Items refused or failed, by HTTP status or error kind ("429", "500", "connect", ...).
    pub errors: BTreeMap<String, u64>,
    /// Send latency from the intended send time (no coordinated omission), µs.
    pub send_latency: HistogramData,
    /// Read-back verification of the canary share.
    pub verification: Verification,
    /// Mean acknowledged items per second over the measured (post-warmup) time.
    pub items_per_second: f64,
    /// The rate the schedule aimed at (every device's nominal rate times `--rate`), items/s;
    /// 0 when unknown (results from before it was recorded).
    #[serde(default)]
    pub target_items_per_second: f64,
    /// Requests loadgen sent for this signal over the measured time (a batch of items is one
    /// request; refused and failed requests count too). 0 in results from before it was
    /// recorded, and for items delivered by scrape or file.
    #[serde(default)]
    pub requests: u64,
    /// Request body bytes of those requests, as sent on the wire (encoded and compressed,
    /// HTTP headers not counted).
    #[serde(default)]
    pub bytes: u64,
}

/// Read-back verification of the canary items of one signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Canary items acknowledged by the target.
    pub canaries: u64,
    /// Canaries found by querying the stack.
    pub found: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// From send to first seen by a query, ms.
    pub write_to_query_latency: HistogramData,
    /// Read-back queries that failed (each retried at the next poll).
    #[serde(default)]
    pub query_errors: u64,
    /// The last failed read-back query, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_query_error: Option<String>,
    /// How often the verifier queried the stack for canaries not found yet, ms. A canary's
    /// write-to-query latency is the time to the first query that found it, so latencies
    /// have a resolution (and may overstate by up to) about this much. 0 when unknown.
    #[serde(default)]
    pub poll_interval_ms: u64,
    /// Items of this signal (log entries, samples, traces) the embedded stack evicted during the
    /// run to stay within its retention bound: acknowledged data it no longer holds, the likely
    /// cause of canaries lost. 0 for other stacks (not ours to look into).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stack_evicted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Verification {
    /// Nothing acknowledged, nothing found.
    pub fn empty(latency_unit: &str) -> Verification {
        Verification {
            canaries: 0,
            found: 0,
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            write_to_query_latency: HistogramData::empty(latency_unit),
            query_errors: 0,
            last_query_error: None,
            poll_interval_ms: 0,
            stack_evicted: 0,
        }
    }

    /// Canary loss as a fraction of acknowledged canaries; `None` without canaries.
    pub fn loss_fraction(&self) -> Option<f64> {
        (self.canaries > 0).then(|| self.lost as f64 / self.canaries as f64)
    }
}

/// One reporting interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// End of the interval, seconds since the start.
    pub t_s: f64,
    /// Items sent per signal in this interval.
    pub sent: BTreeMap<String, u64>,
    /// Errors per signal in this interval.
    pub errors: BTreeMap<String, u64>,
    /// Items per signal whose intended send time fell in this interval (what the open-loop
    /// schedule asked for); `sent` counts by completion, so `sent` above `scheduled` would be
    /// a catch-up burst.
    #[serde(default)]
    pub scheduled: BTreeMap<String, u64>,
    /// Requests per signal completed in this interval (see [`SignalResults::requests`]).
    #[serde(default)]
    pub requests: BTreeMap<String, u64>,
    /// Request body bytes per signal completed in this interval.
    #[serde(default)]
    pub bytes: BTreeMap<String, u64>,
    /// Send latency of this interval, all signals, µs.
    pub send_latency: HistogramData,
}

/// Items sent by one group of devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub device_type: String,
    pub region: String,
    pub devices: u64,
    pub sent: BTreeMap<String, u64>,
    pub errors: u64,
}

/// A CPU/RSS reading of one process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    pub t_s: f64,
    /// "loadgen" or "collector".
    pub process: String,
    /// CPU used since the previous sample, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    pub rss_bytes: u64,
}

/// One SLO and whether the run met it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloVerdict {
    /// One of [`crate::verdict::SloKind`]'s names: "loss", "errors", "p99_send_ms", ...
    pub name: String,
    pub threshold: f64,
    pub actual: f64,
    pub pass: bool,
    /// A default objective (not given with `--slo`).
    #[serde(default)]
    pub default: bool,
    /// What makes `actual` what it is, e.g. "logs: 12 of 400 canaries lost (3.000%)".
    #[serde(default)]
    pub detail: String,
}

/// Why a results file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("not a results file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("results schema version {found} is not supported (this build reads {SCHEMA_VERSION})")]
    Version { found: u32 },
}

impl Results {
    /// Parses `results.json`, refusing other schema versions with a clear message.
    pub fn from_json(text: &str) -> Result<Results, ResultsError> {
        #[derive(Deserialize)]
        struct Probe {
            schema_version: u32,
        }
        let probe: Probe = serde_json::from_str(text)?;
        if probe.schema_version != SCHEMA_VERSION {
            return Err(ResultsError::Version {
                found: probe.schema_version,
            });
        }
        Ok(serde_json::from_str(text)?)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Did every SLO pass? (Also true with no SLOs: see [`Results::verdict`].)
    pub fn passed(&self) -> bool {
        self.slos.iter().all(|s| s.pass)
    }

    /// The run's verdict, from its SLO verdicts.
    pub fn verdict(&self) -> crate::verdict::Verdict {
        crate::verdict::Verdict::of(self)
    }
}
