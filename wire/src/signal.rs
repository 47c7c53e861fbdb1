//! The three telemetry signals: one name and one spelling (`"logs"`, `"metrics"`, `"traces"`)
//! for the whole workspace: the collector's pipelines, loadgen's accounting, `results.json` keys.

/// The three signals of the pipeline; `results.json` and self-metrics key them by [`Signal::as_str`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Metrics, Signal::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }

    /// Position in [`Signal::ALL`] (for per-signal arrays).
    pub fn index(self) -> usize {
        match self {
            Signal::Logs => 0,
            Signal::Metrics => 1,
            Signal::Traces => 2,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
