//! The scrape loop of one target: wait for its slot in the interval, GET the metrics, parse them
//! with [`wire::exposition`], label them, send them, and remember the series for staleness.
//!
//! Labels of a scraped sample: its own, then the target's (`job`, `instance`, static/file_sd
//! labels). On a conflict the target wins and the scraped value moves to `exported_NAME` (more
//! `exported_` prefixes until free), unless `honor_labels`, where the scraped value wins. Then
//! `metric_relabel_configs`. The time is the scrape's start unless `honor_timestamps` and the
//! sample has its own (such samples get no staleness markers, as in Prometheus).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::sync::watch;
use wire::exposition::{self, Format};
use wire::remote_write::stale_nan;

use super::Settings;
use super::targets::ScrapeTarget;
use crate::event::{Labels, MetricBatch, MetricSample, Signal};
use crate::output::Output;
use crate::selfmon::{ComponentMetrics, Counter};

/// Why a target's task stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The collector stops: no staleness markers.
    Shutdown,
    /// The target went away: its series are marked stale.
    Removed,
}

/// Why a scrape failed (the target's `up` is 0).
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The cause in the message, not also a `source()`: printed once.
    #[error("request failed: {0}")]
    Http(reqwest::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("server returned HTTP status {0}")]
    Status(u16),
    #[error("body exceeds body_size_limit of {0} bytes")]
    BodyTooLarge(u64),
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("cannot parse the body: {0}")]
    Parse(wire::WireError),
    #[error("{got} samples after metric relabeling exceed sample_limit {limit}")]
    SampleLimit { got: usize, limit: usize },
}

impl From<reqwest::Error> for ScrapeError {
    fn from(e: reqwest::Error) -> Self {
        ScrapeError::Http(e)
    }
}

/// `collector_scrape_failures_total{reason}` of a source.
fn failures(metrics: &ComponentMetrics, reason: &str) -> Counter {
    metrics.registry().counter(
        "collector_scrape_failures_total",
        "Scrapes of a prometheus_scrape source that failed, by reason.",
        &[
            ("component", metrics.component()),
            ("kind", "source"),
            ("reason", reason),
        ],
    )
}

/// Makes a source's failure and discard series exist at 0 before its first scrape.
pub fn declare(metrics: &ComponentMetrics) {
    for reason in ScrapeError::REASONS {
        failures(metrics, reason);
    }
    metrics.declare(Signal::Metrics, &["sample_limit"]);
}

impl ScrapeError {
    /// Every [`ScrapeError::reason`].
    pub const REASONS: [&'static str; 6] = [
        "http",
        "timeout",
        "status",
        "body_size_limit",
        "parse",
        "sample_limit",
    ];

    /// The `reason` label of `collector_scrape_failures_total`.
    fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Http(_) => "http",
            ScrapeError::Timeout(_) => "timeout",
            ScrapeError::Status(_) => "status",
            ScrapeError::BodyTooLarge(_) => "body_size_limit",
            ScrapeError::NotUtf8 | ScrapeError::Parse(_) => "parse",
            ScrapeError::SampleLimit { .. } => "sample_limit",
        }
    }
}

/// The names of the series every scrape reports about itself.
const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Scrapes one target until told to stop.
pub struct Scraper {
    target: ScrapeTarget,
    settings: Arc<Settings>,
    client: reqwest::Client,
    out: Output<MetricBatch>,
    metrics: ComponentMetrics,
    /// Series of the last scrape; true for those that get a staleness marker when they
    /// disappear (the ones stamped with the scrape's time).
    previous: HashMap<Labels, bool>,
}

/// What a successful scrape produced.
struct Scraped {
    samples: Vec<MetricSample>,
    scraped: usize,
    /// The series, as in [`Scraper::previous`].
    current: HashMap<Labels, bool>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where in the interval this target scrapes: a hash of the target, aligned to the wall clock
/// (as Prometheus spreads targets), as a delay from now.
fn first_delay(target: &ScrapeTarget) -> Duration {
    let mut h = std::hash::DefaultHasher::new();
    target.hash(&mut h);
    let interval = u64::try_from(target.interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos() % u128::from(interval)).unwrap_or(0))
        .unwrap_or(0);
    let base = interval - now;
    let mut next = base.saturating_add(h.finish() % interval);
    if next > interval {
        next -= interval;
    }
    Duration::from_nanos(next)
}

/// Returns the first stop request (a dropped sender counts as shutdown).
async fn stopped(rx: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        let current = *rx.borrow_and_update();
        if let Some(stop) = current {
            return stop;
        }
        if rx.changed().await.is_err() {
            return Stop::Shutdown;
        }
    }
}

/// Merges the target's labels into a scraped sample's, per `honor_labels`.
pub fn merge_target_labels(labels: &mut Labels, target: &Labels, honor_labels: bool) {
    if honor_labels {
        for (k, v) in target.iter() {
            if labels.get(k).is_none() {
                labels.insert(k, v);
            }
        }
        return;
    }
    let mut conflicts: Vec<(&str, String)> = Vec::new();
    for (k, v) in target.iter() {
        if let Some(old) = labels.get(k) {
            conflicts.push((k, old.to_string()));
        }
        labels.insert(k, v);
    }
    conflicts.sort_by_key(|(k, _)| k.len()); // stable, as Prometheus
    for (k, v) in conflicts {
        let mut name = k.to_string();
        loop {
            name.insert_str(0, "exported_");
            if labels.get(&name).is_none() {
                labels.insert(name, v);
                break;
            }
        }
    }
}

impl Scraper {
    pub fn new(
        target: ScrapeTarget,
        settings: Arc<Settings>,
        client: reqwest::Client,
        out: Output<MetricBatch>,
        metrics: ComponentMetrics,
    ) -> Scraper {
        Scraper {
            target,
            settings,
            client,
            out,
            metrics,
            previous: HashMap::new(),
        }
    }

    /// Scrapes every interval until `stop` says so.
    pub async fn run(mut self, mut stop: watch::Receiver<Option<Stop>>) {
        let start = tokio::time::Instant::now() + first_delay(&self.target);
        let mut ticker = tokio::time::interval_at(start, self.target.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let why = loop {
            tokio::select! {
                why = stopped(&mut stop) => break why,
                _ = ticker.tick() => {}
            }
            let batch = tokio::select! {
                why = stopped(&mut stop) => break why,
                batch = self.scrape() => batch,
            };
            tokio::select! {
                why = stopped(&mut stop) => break why,
                sent = self.out.send(batch) => if sent.is_err() { return },
            }
        };
        if why == Stop::Removed {
            let batch = self.stale_all(now_ms());
            self.metrics
                .received(Signal::Metrics)
                .add(batch.len() as u64);
            // Bounded: a stuck downstream must not keep a removed target's task alive forever.
            let wait = self.target.interval.max(Duration::from_secs(1));
            let _ = tokio::time::timeout(wait, self.out.send(batch)).await;
        }
    }

    /// One scrape: the samples, the report series and staleness markers, as one batch.
    async fn scrape(&mut self) -> MetricBatch {
        let ts = now_ms();
        let started = Instant::now();
        let result = match self.fetch().await {
            Ok(body) => self.samples(&body.0, body.1, ts),
            Err(e) => Err(e),
        };
        let duration = started.elapsed().as_secs_f64();
        let mut batch = MetricBatch::new();
        let (up, scraped, post, added) = match result {
            Ok(s) => {
                let post = s.samples.len();
                let added = s
                    .samples
                    .iter()
                    .filter(|m| !self.previous.contains_key(&m.labels))
                    .count();
                batch = s.samples;
                self.push_stale(&mut batch, &s.current, ts);
                self.previous = s.current;
                (1.0, s.scraped, post, added)
            }
            Err(e) => {
                tracing::debug!(url = %self.target.url, "scrape failed: {e}");
                self.failure(&e);
                self.push_stale(&mut batch, &HashMap::new(), ts);
                self.previous.clear();
                (0.0, 0, 0, 0)
            }
        };
        let report = [up, duration, scraped as f64, post as f64, added as f64];
        for (name, value) in REPORT_SERIES.iter().zip(report) {
            batch.push(MetricSample {
                labels: self.report_labels(name).into(),
                value,
                timestamp_ms: ts,
            });
        }
        self.metrics
            .received(Signal::Metrics)
            .add(batch.len() as u64);
        batch
    }

    fn failure(&self, e: &ScrapeError) {
        failures(&self.metrics, e.reason()).inc();
        if let ScrapeError::SampleLimit { got, .. } = e {
            self.discard("sample_limit", *got);
        }
    }

    /// Counts `n` scraped samples that are not sent (received and discarded, so the books
    /// balance).
    fn discard(&self, reason: &str, n: usize) {
        self.metrics.received(Signal::Metrics).add(n as u64);
        self.metrics
            .discarded(Signal::Metrics, reason)
            .add(n as u64);
    }

    fn report_labels(&self, name: &str) -> Labels {
        let mut l = self.target.labels.clone();
        l.insert("__name__", name);
        l
    }

    /// Staleness markers for the series of the last scrape not in `current`.
    fn push_stale(&self, batch: &mut MetricBatch, current: &HashMap<Labels, bool>, ts: i64) {
        batch.extend(
            self.previous
                .iter()
                .filter(|(l, tracked)| **tracked && !current.contains_key(*l))
                .map(|(l, _)| MetricSample {
                    labels: l.clone().into(),
                    value: stale_nan(),
                    timestamp_ms: ts,
                }),
        );
    }

    /// Staleness markers for every series of the target, report series included.
    fn stale_all(&mut self, ts: i64) -> MetricBatch {
        let mut batch = MetricBatch::new();
        self.push_stale(&mut batch, &HashMap::new(), ts);
        self.previous.clear();
        batch.extend(REPORT_SERIES.iter().map(|name| MetricSample {
            labels: self.report_labels(name).into(),
            value: stale_nan(),
            timestamp_ms: ts,
        }));
        batch
    }

    /// GETs the target: the body and its format (when the `Content-Type` names one).
    async fn fetch(&self) -> Result<(String, Option<Format>), ScrapeError> {
        let timeout = self.target.timeout;
        tokio::time::timeout(timeout, self.fetch_inner())
            .await
            .map_err(|_| ScrapeError::Timeout(timeout))?
    }

    async fn fetch_inner(&self) -> Result<(String, Option<Format>), ScrapeError> {
        let mut resp = self
            .client
            .get(self.target.url.clone())
            .header(ACCEPT, Format::ACCEPT)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                self.target.timeout.as_secs_f64().to_string(),
            )
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ScrapeError::Status(resp.status().as_u16()));
        }
        let format = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::from_content_type);
        let limit = self.settings.body_size_limit;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            body.extend_from_slice(&chunk);
            if limit > 0 && body.len() as u64 > limit {
                return Err(ScrapeError::BodyTooLarge(limit));
            }
        }
        let text = String::from_utf8(body).map_err(|_| ScrapeError::NotUtf8)?;
        Ok((text, format))
    }

    /// Parses and labels a body.
    fn samples(&self, body: &str, format: Option<Format>, ts: i64) -> Result<Scraped, ScrapeError> {
        let families = match format {
            Some(f) => exposition::parse_as(body, f),
            None => exposition::parse(body),
        }
        .map_err(ScrapeError::Parse)?;
        let s = &self.settings;
        let mut scraped = 0;
        let mut samples = Vec::new();
        let mut current = HashMap::new();
        for flat in exposition::samples(&families) {
            scraped += 1;
            let mut labels = Labels::new(
                flat.labels
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect(),
            );
            merge_target_labels(&mut labels, &self.target.labels, s.honor_labels);
            if !s.metric_relabel.apply(&mut labels) || labels.get("__name__").is_none() {
                continue;
            }
            let (timestamp_ms, tracked) = match flat.timestamp_ms {
                Some(t) if s.honor_timestamps => (t, false),
                _ => (ts, true),
            };
            current.insert(labels.clone(), tracked);
            samples.push(MetricSample {
                labels: labels.into(),
                value: flat.value,
                timestamp_ms,
            });
        }
        self.discard("relabel_drop", scraped - samples.len());
        if s.sample_limit > 0 && samples.len() > s.sample_limit {
            return Err(ScrapeError::SampleLimit {
                got: samples.len(),
                limit: s.sample_limit,
            });
        }
        Ok(Scraped {
            samples,
            scraped,
            current,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn target_labels_win_unless_honored() {
        let target = labels(&[("instance", "h:1"), ("job", "node")]);
        let scraped = labels(&[
            ("__name__", "m"),
            ("job", "app"),
            ("exported_job", "taken"),
            ("instance", "x"),
        ]);
        let mut l = scraped.clone();
        merge_target_labels(&mut l, &target, false);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![
                ("__name__", "m"),
                ("exported_exported_job", "app"),
                ("exported_instance", "x"),
                ("exported_job", "taken"),
                ("instance", "h:1"),
                ("job", "node"),
            ]
        );
        let mut l = labels(&[("__name__", "m"), ("job", "app")]);
        merge_target_labels(&mut l, &target, true);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![("__name__", "m"), ("instance", "h:1"), ("job", "app")]
        );
    }

    #[test]
    fn first_scrape_is_within_the_interval() {
        let t = ScrapeTarget {
            labels: labels(&[("job", "j")]),
            url: url::Url::parse("http://h:1/metrics").unwrap(),
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(100),
        };
        assert!(first_delay(&t) <= Duration::from_millis(200));
    }
}
