//! The `prometheus_scrape` source: scrapes Prometheus text / OpenMetrics endpoints the way a
//! Prometheus `scrape_config` does, and emits the samples as metrics.
//!
//! ```toml
//! [sources.node]
//! type = "prometheus_scrape"
//! job_name = "node"                      # default: the component's name
//! targets = [{ address = "127.0.0.1:9100", labels = { region = "eu" } }]
//! file_sd = { files = ["/etc/collector/targets/*.json"], refresh_interval = "30s" }
//! scrape_interval = "15s"                # default 15s
//! scrape_timeout = "10s"                 # default 10s (or the interval if shorter); ≤ interval
//! metrics_path = "/metrics"
//! scheme = "http"                        # or "https"
//! params = { module = ["http_2xx"] }
//! honor_labels = false
//! honor_timestamps = true
//! relabel_configs = [ { source_labels = ["__address__"], regex = "(.*):9100", target_label = "host" } ]
//! metric_relabel_configs = [ { source_labels = ["__name__"], regex = "go_.*", action = "drop" } ]
//! sample_limit = 0                       # 0: no limit; more samples after relabeling fail the scrape
//! body_size_limit = "10MiB"              # or a number of bytes; 0: no limit
//! ```
//!
//! - [`targets`]: target groups (static and file_sd) → target labels → `relabel_configs` →
//!   scrape targets (`instance` defaults to `__address__`, `__`-labels removed afterwards).
//! - [`file_sd`]: Prometheus `file_sd_config` files (JSON or YAML), re-read when their mtime or
//!   size changes, polled every `refresh_interval` (default 5m).
//! - [`scrape`]: one task per target, first scrape offset by a hash of the target across the
//!   interval; `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//!   `scrape_samples_post_metric_relabeling`, `scrape_series_added`; staleness markers for
//!   series that disappear, for every series after a failed scrape, and for every series of a
//!   target that goes away (not at shutdown, as Prometheus).
//!
//! Failed scrapes are counted in `collector_scrape_failures_total{component,kind,reason}`.

mod file_sd;
mod scrape;
mod targets;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::BoxFuture;
use crate::relabel::{RelabelConfig, Relabeler};
use crate::selfmon::ComponentMetrics;
use crate::sources::{BuildError, Source, SourceContext, SourceError};
use wire::Signal;

use file_sd::FileSd;
use scrape::{Scraper, Stop};
use targets::{ScrapeTarget, TargetGroup};

/// `http` or `https`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One static target.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTarget {
    pub address: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Prometheus' `file_sd_config`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Paths; the last component may hold `*` and `?` (e.g. `/etc/targets/*.json`).
    pub files: Vec<String>,
    #[serde(
        default = "default_refresh",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub refresh_interval: Duration,
}

/// A size in bytes: a number, or text such as `"512KB"`, `"10MiB"` (K/M/G are powers of 1024,
/// as Prometheus' `body_size_limit` reads them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => parse_byte_size(&t).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a size; examples: 1048576, \"512KB\", \"10MiB\""
                ))
            }),
        }
    }
}

fn parse_byte_size(t: &str) -> Option<u64> {
    let t = t.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The source's settings, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub job_name: Option<String>,
    #[serde(default)]
    pub targets: Vec<StaticTarget>,
    pub file_sd: Option<FileSdConfig>,
    #[serde(
        default = "default_interval",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub scrape_interval: Duration,
    #[serde(default, deserialize_with = "crate::serde_util::opt_duration")]
    pub scrape_timeout: Option<Duration>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default)]
    pub scheme: Scheme,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub sample_limit: usize,
    #[serde(default)]
    pub body_size_limit: ByteSize,
}

/// The longest scrape interval taken (longer ones are surely typos, and overflow timers).
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_metrics_path() -> String {
    "/metrics".to_string()
}
fn yes() -> bool {
    true
}

/// Checked settings, shared by the manager and every target's task.
#[derive(Debug)]
struct Settings {
    job_name: Option<String>,
    static_groups: Vec<TargetGroup>,
    file_sd: Option<FileSdConfig>,
    interval: Duration,
    timeout: Duration,
    metrics_path: String,
    scheme: Scheme,
    params: BTreeMap<String, Vec<String>>,
    honor_labels: bool,
    honor_timestamps: bool,
    target_relabel: Relabeler,
    metric_relabel: Relabeler,
    sample_limit: usize,
    body_size_limit: u64,
}

fn invalid(key: &str, reason: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl Settings {
    fn new(c: Config) -> Result<Settings, BuildError> {
        if c.targets.is_empty() && c.file_sd.is_none() {
            return Err(invalid("targets", "give targets, file_sd, or both"));
        }
        if c.scrape_interval.is_zero() || c.scrape_interval > MAX_INTERVAL {
            return Err(invalid(
                "scrape_interval",
                "must be more than 0 and at most a year",
            ));
        }
        let timeout = c
            .scrape_timeout
            .unwrap_or_else(|| default_timeout().min(c.scrape_interval));
        if timeout.is_zero() || timeout > c.scrape_interval {
            return Err(invalid(
                "scrape_timeout",
                format!(
                    "{} must be more than 0 and at most scrape_interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(c.scrape_interval)
                ),
            ));
        }
        if !c.metrics_path.starts_with('/') {
            return Err(invalid("metrics_path", "must start with /"));
        }
        if let Some(job) = &c.job_name
            && job.is_empty()
        {
            return Err(invalid("job_name", "must not be empty"));
        }
        let mut static_groups = Vec::with_capacity(c.targets.len());
        for (i, t) in c.targets.iter().enumerate() {
            let group = TargetGroup::new(vec![t.address.clone()], t.labels.clone(), "static")
                .map_err(|reason| invalid(&format!("targets[{i}]"), reason))?;
            static_groups.push(group);
        }
        if let Some(sd) = &c.file_sd {
            file_sd::check_patterns(&sd.files).map_err(|r| invalid("file_sd.files", r))?;
            if sd.refresh_interval.is_zero() {
                return Err(invalid("file_sd.refresh_interval", "must be more than 0"));
            }
        }
        Ok(Settings {
            job_name: c.job_name,
            static_groups,
            file_sd: c.file_sd,
            interval: c.scrape_interval,
            timeout,
            metrics_path: c.metrics_path,
            scheme: c.scheme,
            params: c.params,
            honor_labels: c.honor_labels,
            honor_timestamps: c.honor_timestamps,
            target_relabel: Relabeler::new(&c.relabel_configs, "relabel_configs")?,
            metric_relabel: Relabeler::new(&c.metric_relabel_configs, "metric_relabel_configs")?,
            sample_limit: c.sample_limit,
            body_size_limit: c.body_size_limit.0,
        })
    }
}

/// The built source.
pub struct PrometheusScrape {
    settings: Settings,
}

/// Builds the source from its settings.
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let c: Config = BuildError::parse(table)?;
    Ok(Box::new(PrometheusScrape {
        settings: Settings::new(c)?,
    }))
}

impl Source for PrometheusScrape {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Metrics]
    }

    fn declare(&self, metrics: &ComponentMetrics) {
        scrape::declare(metrics);
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(async move { Manager::new(self.settings, ctx)?.run().await })
    }
}

/// A target's running task and the channel that stops it.
struct Running {
    stop: watch::Sender<Option<Stop>>,
    task: JoinHandle<()>,
}

/// Keeps one task per current target: starts new ones, stops those that went away.
struct Manager {
    settings: Arc<Settings>,
    job: String,
    client: reqwest::Client,
    ctx: SourceContext,
    file_sd: Option<FileSd>,
    running: HashMap<ScrapeTarget, Running>,
    /// Tasks told to stop, still writing their staleness markers.
    retired: Vec<JoinHandle<()>>,
}

impl Manager {
    fn new(settings: Settings, ctx: SourceContext) -> Result<Manager, SourceError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Other(format!("cannot build the HTTP client: {e}")))?;
        let job = settings
            .job_name
            .clone()
            .unwrap_or_else(|| ctx.name.clone());
        let file_sd = settings.file_sd.as_ref().map(FileSd::new);
        Ok(Manager {
            settings: Arc::new(settings),
            job,
            client,
            ctx,
            file_sd,
            running: HashMap::new(),
            retired: Vec::new(),
        })
    }

    async fn run(mut self) -> Result<(), SourceError> {
        if let Some(sd) = &mut self.file_sd {
            sd.refresh();
        }
        self.reconcile();
        let refresh = self
            .settings
            .file_sd
            .as_ref()
            .map(|sd| sd.refresh_interval)
            .unwrap_or(Duration::from_secs(3600));
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            tokio::select! {
                _ = wait_for_shutdown(&mut shutdown) => break,
                _ = tokio::time::sleep(refresh), if self.file_sd.is_some() => {
                    let changed = self.file_sd.as_mut().is_some_and(FileSd::refresh);
                    if changed {
                        self.reconcile();
                    }
                }
            }
        }
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(Some(Stop::Shutdown));
            self.retired.push(r.task);
        }
        for task in self.retired.drain(..) {
            let _ = task.await;
        }
        Ok(())
    }

    /// Brings the running tasks in line with the current target groups.
    fn reconcile(&mut self) {
        let groups = self
            .settings
            .static_groups
            .iter()
            .chain(self.file_sd.iter().flat_map(FileSd::groups));
        let mut wanted: HashSet<ScrapeTarget> = HashSet::new();
        for group in groups {
            for result in targets::resolve(group, &self.settings, &self.job) {
                match result {
                    Ok(Some(t)) => {
                        wanted.insert(t);
                    }
                    Ok(None) => {} // dropped by relabel_configs
                    Err(e) => tracing::warn!(component = %self.ctx.name, "skipping a target: {e}"),
                }
            }
        }
        let gone: Vec<ScrapeTarget> = self
            .running
            .keys()
            .filter(|t| !wanted.contains(*t))
            .cloned()
            .collect();
        for t in gone {
            if let Some(r) = self.running.remove(&t) {
                let _ = r.stop.send(Some(Stop::Removed));
                self.retired.push(r.task);
            }
        }
        self.retired.retain(|t| !t.is_finished());
        for t in wanted {
            if self.running.contains_key(&t) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(None);
            let scraper = Scraper::new(
                t.clone(),
                self.settings.clone(),
                self.client.clone(),
                self.ctx.outputs.metrics.clone(),
                self.ctx.metrics.clone(),
            );
            let task = tokio::spawn(scraper.run(stop_rx));
            self.running.insert(t, Running { stop, task });
        }
    }
}

/// Returns when the collector stops (or its shutdown sender is gone).
async fn wait_for_shutdown(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, BuildError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| BuildError::Config(e.to_string()))?;
        Settings::new(BuildError::parse(table)?)
    }

    #[test]
    fn defaults() {
        let s = parse(r#"targets = [{ address = "h:1" }]"#).unwrap();
        assert_eq!(s.interval, Duration::from_secs(15));
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.metrics_path, "/metrics");
        assert!(s.honor_timestamps && !s.honor_labels);
        let s = parse(
            r#"targets = [{ address = "h:1" }]
            scrape_interval = "2s""#,
        )
        .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(2));
        let s = parse(
            r#"targets = [{ address = "h:1" }]
            body_size_limit = "10MiB""#,
        )
        .unwrap();
        assert_eq!(s.body_size_limit, 10 << 20);
    }

    #[test]
    fn invalid_settings_name_the_key() {
        let cases = [
            ("", "targets"),
            (
                "targets = [{ address = \"h:1\" }]\nscrape_interval = \"1s\"\nscrape_timeout = \"2s\"",
                "scrape_timeout",
            ),
            (
                "targets = [{ address = \"h:1\", labels = { \"bad-name\" = \"x\" } }]",
                "targets[0]",
            ),
            ("targets = [{ address = \"\" }]", "targets[0]"),
            (
                "targets = [{ address = \"h:1\" }]\nrelabel_configs = [{ action = \"hashmod\", target_label = \"x\" }]",
                "relabel_configs[0].modulus",
            ),
            ("file_sd = { files = [\"/a/*/b.json\"] }", "file_sd.files"),
            (
                "targets = [{ address = \"h:1\" }]\nmetrics_path = \"metrics\"",
                "metrics_path",
            ),
        ];
        for (text, key) in cases {
            match parse(text) {
                Err(BuildError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                Err(e) => panic!("{text}: expected Invalid at {key}, got {e}"),
                Ok(_) => panic!("{text}: expected Invalid at {key}, got Ok"),
            }
        }
        assert!(matches!(
            parse("targets = []\nunknown = 1"),
            Err(BuildError::Config(_))
        ));
        assert!(matches!(
            parse("targets = [{ address = \"h:1\" }]\nbody_size_limit = \"lots\""),
            Err(BuildError::Invalid { key, .. }) if key == "body_size_limit"
        ));
    }
}
