//! Delivery by the paths a real fleet uses besides push: scrape targets and tailed log files.
//!
//! | [`Delivery`] | metrics | logs | traces |
//! |---|---|---|---|
//! | `push` (default) | remote write | Loki push | OTLP/HTTP |
//! | `scrape` | scraped by the collector from [`scrape::ScrapeServer`] | Loki push | OTLP/HTTP |
//! | `files` | remote write | appended to files the collector tails ([`files::FileSink`]) | OTLP/HTTP |
//! | `mixed` | scraped | files | OTLP/HTTP |
//!
//! What the recorder counts as "sent" and "acknowledged", and the send latency:
//! - scrape: one attempt per scrape served while the run is on (its samples as items); latency
//!   from the arrival of the scrape request (the collector's intended scrape) to the exposition
//!   being built; the canary is put in the ledger when the scrape is served;
//! - files: one attempt per line appended; latency from the schedule's intended time to the
//!   end of the append (`write` returned); the canary is put in the ledger once appended.
//!
//! Scrape and files need a collector loadgen runs (in process or spawned: it is what scrapes
//! and tails); [`scrape::ScrapeServer::source`] and [`files::FileSink::components`] give it its
//! extra components ([`crate::run::collector`]).
//!
//! Delivery `otlp` (logs and metrics over OTLP/HTTP to the collector's `otlp` source) is a
//! payload format, not a path: [`crate::payload::otlp`] builds its requests.

pub mod files;
pub mod scrape;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use wire::Signal;

/// How the fleet's data reaches the collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// Everything pushed (today's behaviour).
    #[default]
    Push,
    /// Metrics by scrape.
    Scrape,
    /// Logs by files.
    Files,
    /// Metrics by scrape and logs by files.
    Mixed,
    /// Logs and metrics pushed over OTLP/HTTP (as an OpenTelemetry SDK on the device does).
    Otlp,
}

impl Delivery {
    pub const ALL: [Delivery; 5] = [
        Delivery::Push,
        Delivery::Scrape,
        Delivery::Files,
        Delivery::Mixed,
        Delivery::Otlp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Push => "push",
            Delivery::Scrape => "scrape",
            Delivery::Files => "files",
            Delivery::Mixed => "mixed",
            Delivery::Otlp => "otlp",
        }
    }

    /// Metrics are scraped.
    pub fn scrapes(self) -> bool {
        matches!(self, Delivery::Scrape | Delivery::Mixed)
    }

    /// Logs go by files.
    pub fn writes_files(self) -> bool {
        matches!(self, Delivery::Files | Delivery::Mixed)
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Delivery {
    type Err = DeliverError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Delivery::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| DeliverError::Unknown(s.to_string()))
    }
}

/// Why a delivery path could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("unknown delivery {0:?}: push, scrape, files or mixed")]
    Unknown(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("file_sd: {0}")]
    Json(#[from] serde_json::Error),
    #[error("log entry labels {got:?} are not the sink's {want:?}")]
    Labels { got: Vec<String>, want: Vec<String> },
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DeliverError + '_ {
    move |source| DeliverError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One attempt of a delivery path, for the recorder and the ledger.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The device's position in the fleet.
    pub device: usize,
    pub signal: Signal,
    /// Intended time, since the start of the run.
    pub intended: Duration,
    /// When it was served or appended, since the start of the run.
    pub completed: Duration,
    pub items: u64,
    /// Why it failed (an error key), `None` when it went out.
    pub error: Option<String>,
    /// The canary it carried: `(seq, sent_ns)`.
    pub canary: Option<(u64, i64)>,
}

/// Where delivery paths report their attempts.
pub type Sink = std::sync::Arc<dyn Fn(Delivered) + Send + Sync>;
