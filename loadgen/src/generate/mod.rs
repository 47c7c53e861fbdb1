//! Per-device signal generators. A [`DeviceSignals`] holds one device's state (counters,
//! gauges, histograms) and its own random generator, seeded from `(fleet seed, device index)`,
//! so a device's signals are the same for a seed whatever the shard or fleet size.
//!
//! | module | concern |
//! |---|---|
//! | [`metrics`] | metrics like the device type's exporter: remote-write series and `/metrics` text |
//! | [`logs`] | log lines: JSON (POS), RFC 5424 syslog (router, switch), logfmt (server, custom) |
//! | [`traces`] | a POS checkout across pos → store-gateway → payment → bank, as OTLP |
//! | [`rates`] | nominal rates per device type, for the engine's schedules |
//! | `sample` | the `rand_distr` draws the generators use |
//!
//! Canaries follow [`crate::canary`]: pass a sequence number to stamp one into a log line, a
//! scrape (the `loadgen_canary_seq` series) or a checkout trace.

pub mod logs;
pub mod metrics;
pub mod rates;
mod sample;
pub mod traces;

use rand::rngs::StdRng;

pub use logs::{Level, LogEntry};
pub use metrics::Scrape;
pub use rates::Rates;
pub use traces::{CHECKOUT_SERVICES, Checkout};

use crate::fleet::{Device, DeviceType, SIGNAL_STREAM, rng_for};
use metrics::MetricState;

/// One device's signal generators.
#[derive(Debug)]
pub struct DeviceSignals {
    device: Device,
    labels: Vec<(String, String)>,
    rng: StdRng,
    metrics: MetricState,
    last_scrape_ms: Option<i64>,
    /// The run every canary carries ([`crate::canary`]).
    run: u32,
}

impl DeviceSignals {
    /// The generators of `device` in the fleet of `seed` ([`crate::fleet::FleetSpec::seed`]).
    pub fn new(device: &Device, seed: u64) -> Self {
        let mut rng = rng_for(seed, SIGNAL_STREAM, device.index);
        let metrics = MetricState::new(device.device_type, &mut rng);
        DeviceSignals {
            labels: device.labels(),
            device: device.clone(),
            rng,
            metrics,
            last_scrape_ms: None,
            run: 0,
        }
    }

    /// These generators belong to run `run` (every canary carries it).
    pub fn for_run(mut self, run: u32) -> Self {
        self.run = run;
        self
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The nominal rates of this device's type.
    pub fn rates(&self) -> Rates {
        Rates::for_type(self.device.device_type)
    }

    /// Scrapes the device at `now_ms`: advances its state by the time since the previous scrape
    /// (one scrape interval for the first) and returns every family; with a canary sequence
    /// number, also the `loadgen_canary_seq` series stamped `now_ms`.
    pub fn scrape(&mut self, now_ms: i64, canary: Option<u64>) -> Scrape {
        let interval_ms = self.rates().scrape_interval.as_millis() as i64;
        let dt_ms = self
            .last_scrape_ms
            .map_or(interval_ms, |last| now_ms.saturating_sub(last).max(0));
        self.last_scrape_ms = Some(now_ms);
        self.metrics
            .advance(&mut self.rng, dt_ms as f64 / 1e3, self.device.problem);
        let mut families = self.metrics.families(&self.labels);
        if let Some(seq) = canary {
            families.push(metrics::canary_family(&self.labels, seq, now_ms, self.run));
        }
        Scrape {
            families,
            timestamp_ms: now_ms,
        }
    }

    /// [`Self::scrape`] as remote-write series.
    pub fn metrics(
        &mut self,
        now_ms: i64,
        canary: Option<u64>,
    ) -> Vec<wire::remote_write::TimeSeries> {
        self.scrape(now_ms, canary).series()
    }

    /// One log line (not about a checkout: those come with [`Self::checkout`]).
    pub fn log_line(&mut self, now_ns: i64, canary: Option<u64>) -> LogEntry {
        LogEntry {
            labels: self.labels.clone(),
            timestamp_ns: now_ns,
            line: logs::line(
                &mut self.rng,
                &self.device,
                now_ns,
                canary.map(|seq| crate::canary::Mark { run: self.run, seq }),
            ),
        }
    }

    /// One checkout that ended at `now_ns`: its trace and its POS log line. `None` for devices
    /// other than POS terminals (they emit no traces).
    pub fn checkout(
        &mut self,
        now_ns: i64,
        trace_canary: Option<u64>,
        log_canary: Option<u64>,
    ) -> Option<Checkout> {
        (self.device.device_type == DeviceType::Pos).then(|| {
            traces::checkout(
                &mut self.rng,
                &self.device,
                now_ns,
                trace_canary,
                log_canary,
                self.run,
            )
        })
    }
}

#[cfg(test)]
mod tests;
