//! Nominal rates per device type, as data, so the engine can schedule each device's signals
//! (Poisson arrivals at these means) and size a run before starting it.

use std::time::Duration;

use crate::fleet::DeviceType;

/// How much one device of a type emits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// Log lines per second (besides the checkout lines, counted in `checkouts_per_s`).
    pub logs_per_s: f64,
    /// Checkouts per second; each is one trace of 4 spans and one log line (POS only).
    pub checkouts_per_s: f64,
    /// Series per scrape, without the canary series.
    pub metric_series: usize,
    /// How often the device's metrics are scraped (or pushed).
    pub scrape_interval: Duration,
}

impl Rates {
    /// The nominal rates of a device type.
    pub const fn for_type(t: DeviceType) -> Rates {
        let (logs_per_s, checkouts_per_s, metric_series, scrape_s) = match t {
            DeviceType::Pos => (0.2, 0.05, 18, 15),
            DeviceType::Router => (0.2, 0.0, 29, 15),
            DeviceType::Switch => (0.1, 0.0, 44, 15),
            DeviceType::Server => (1.0, 0.0, 25, 15),
            DeviceType::Custom => (0.2, 0.0, 5, 30),
        };
        Rates {
            logs_per_s,
            checkouts_per_s,
            metric_series,
            scrape_interval: Duration::from_secs(scrape_s),
        }
    }

    /// Items per second of each signal: (log lines, samples, spans).
    pub fn items_per_s(&self) -> (f64, f64, f64) {
        (
            self.logs_per_s + self.checkouts_per_s,
            self.metric_series as f64 / self.scrape_interval.as_secs_f64(),
            self.checkouts_per_s * 4.0,
        )
    }
}
