//! `collector bench`: the benchmark the project keeps, so every change to the collector is
//! measured the same way. It pushes a fixed, seeded corpus ([`corpus`]) through each of three
//! pipelines of a collector started in its own process ([`child`]) into a backend that
//! acknowledges without decoding ([`null_backend`]), and reports per pipeline the items, the
//! collector's CPU seconds (user + system), items per CPU second ("per core"), wall time and
//! peak RSS:
//!
//! | pipeline | corpus (scale 1) | collector config |
//! |---|---|---|
//! | `logs` | 20 files, 2,000,000 JSON lines (~300 MB) | `file` → `logs.json` → `logs.labels` → `loki` |
//! | `metrics` | 2,000,000 samples, remote write, 2,000 a request | `remote_write` → `metrics.static_labels` → `prometheus_remote_write` |
//! | `traces` | 1,000,000 spans, OTLP/HTTP protobuf, 512 a request | `otlp` → `otlp` (HTTP) |
//!
//! `BenchPlan::backends` replaces the null backend by a real one per pipeline (e.g. `stack
//! serve`), to measure the collector against what it will write to.
//!
//! A pipeline is done when its writer's `collector_sent_items_total` reaches the corpus's item
//! count (read from the collector's own `/metrics`); an item discarded anywhere fails the
//! bench, and says where and why (a receiver's 429 is not a discard: the pusher sends that
//! body again, and the refusals are reported).

pub mod child;
pub mod corpus;
pub mod null_backend;
mod push;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Why a bench could not be run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the collector under test stopped ({status}); its log: {log}")]
    CollectorExited { status: String, log: String },
    #[error("the collector was not ready within {0:?}")]
    NotReady(Duration),
    #[error("pushing the corpus: {0}")]
    Push(String),
    #[error("reading the collector's /metrics: {0}")]
    Metrics(String),
}

impl BenchError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One of the three pipelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pipeline {
    Logs,
    Metrics,
    Traces,
}

impl Pipeline {
    pub const ALL: [Pipeline; 3] = [Pipeline::Logs, Pipeline::Metrics, Pipeline::Traces];

    /// Items of the corpus at scale 1.
    pub fn full_items(self) -> u64 {
        match self {
            Pipeline::Logs | Pipeline::Metrics => 2_000_000,
            Pipeline::Traces => 1_000_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pipeline::Logs => "logs",
            Pipeline::Metrics => "metrics",
            Pipeline::Traces => "traces",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Pipeline::Logs => "lines",
            Pipeline::Metrics => "samples",
            Pipeline::Traces => "spans",
        }
    }
}

/// What to bench.
pub struct BenchPlan {
    pub pipelines: Vec<Pipeline>,
    /// The corpus size as a fraction of the full one.
    pub scale: f64,
    pub seed: u64,
    /// Where corpora, configs and the collector's logs go.
    pub dir: PathBuf,
    /// The collector binary (`std::env::current_exe()` for `collector bench`).
    pub exe: PathBuf,
    /// How long one pipeline may take, from start to its last item acknowledged.
    pub timeout: Duration,
    /// Give the writer a disk buffer (`buffer = { type = "disk" }`), to measure what it costs.
    pub disk_buffer: bool,
    /// A real backend's base URL per pipeline (e.g. `stack serve`'s Loki, Mimir, Tempo OTLP/HTTP),
    /// in place of the null backend: the writers post to the same paths below it.
    pub backends: Vec<(Pipeline, String)>,
}

/// One pipeline's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub pipeline: Pipeline,
    pub unit: &'static str,
    pub items: u64,
    /// Items the writer had acknowledged when the bench ended.
    pub sent: u64,
    /// Corpus bytes as the collector read or received them.
    pub input_bytes: u64,
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    /// Items per CPU second of the collector: its throughput on one core.
    pub items_per_cpu_second: f64,
    pub peak_rss_bytes: u64,
    /// Times the collector asked the pusher to come back (429/503).
    pub refusals: u64,
    /// Items discarded, by `component/reason`: not empty means the bench failed.
    pub discarded: BTreeMap<String, u64>,
}

impl Measurement {
    pub fn passed(&self) -> bool {
        self.sent >= self.items && self.discarded.is_empty()
    }
}

/// Runs every pipeline of `plan` in turn.
pub async fn run(plan: &BenchPlan) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    for &p in &plan.pipelines {
        out.push(run_one(plan, p).await?);
    }
    Ok(out)
}

async fn run_one(plan: &BenchPlan, pipeline: Pipeline) -> Result<Measurement, BenchError> {
    let dir = plan.dir.join(pipeline.as_str());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
    let items = ((pipeline.full_items() as f64 * plan.scale).round() as u64).max(1);
    tracing::info!(pipeline = pipeline.as_str(), items, "generating the corpus");
    let backend = null_backend::NullBackend::start()
        .await
        .map_err(|e| BenchError::io(Path::new("127.0.0.1:0"), e))?;
    let server = free_port(&dir)?;
    let receiver = free_port(&dir)?;
    let sink = match plan.backends.iter().find(|(p, _)| *p == pipeline) {
        Some((_, url)) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", backend.addr),
    };
    let data = dir.join("data");
    let (config, bodies, input_bytes) = match pipeline {
        Pipeline::Logs => {
            let logs = dir.join("logs");
            let (_, bytes) = corpus::write_logs(&logs, items, plan.seed)
                .map_err(|e| BenchError::io(&logs, e))?;
            (logs_config(&logs, &sink), Vec::new(), bytes)
        }
        Pipeline::Metrics => {
            let b = corpus::remote_write_bodies(items, plan.seed);
            (metrics_config(receiver, &sink), b, 0)
        }
        Pipeline::Traces => {
            let b = corpus::trace_bodies(items, plan.seed);
            (traces_config(receiver, &sink), b, 0)
        }
    };
    let input_bytes = input_bytes + bodies.iter().map(|b| b.len() as u64).sum::<u64>();
    // Every config ends with its writer's table.
    let config = if plan.disk_buffer {
        format!("{config}buffer = {{ type = \"disk\", max_size = \"1GiB\" }}\n")
    } else {
        config
    };
    let config = format!(
        "data_dir = {data:?}\n[server]\naddress = \"127.0.0.1:{server}\"\n{config}",
        data = data.display().to_string()
    );
    let config_path = dir.join("collector.toml");
    std::fs::write(&config_path, config).map_err(|e| BenchError::io(&config_path, e))?;
    let log = dir.join("collector.log");
    let mut collector = child::Collector::spawn(&plan.exe, &config_path, &log)?;
    let started = Instant::now();
    let base = format!("http://127.0.0.1:{server}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base, &mut collector, &log).await?;
    tracing::info!(pipeline = pipeline.as_str(), items, "pushing");

    let pusher = match pipeline {
        Pipeline::Logs => None,
        Pipeline::Metrics => Some(push::Push {
            url: format!("http://127.0.0.1:{receiver}/api/v1/write"),
            headers: &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
            concurrency: 4,
        }),
        Pipeline::Traces => Some(push::Push {
            url: format!("http://127.0.0.1:{receiver}/v1/traces"),
            headers: &[("content-type", "application/x-protobuf")],
            concurrency: 4,
        }),
    };
    let pushing = pusher.map(|p| tokio::spawn(push::push_all(p, bodies)));

    let deadline = started + plan.timeout;
    let mut last_note = Instant::now();
    let (sent, discarded) = loop {
        if let Some(status) = collector.exited() {
            return Err(collector_exited(status.to_string(), &log));
        }
        let (sent, discarded) = progress(&http, &base).await?;
        let lost: u64 = discarded.values().sum();
        if sent >= items || sent + lost >= items || Instant::now() > deadline {
            break (sent, discarded);
        }
        if last_note.elapsed() >= Duration::from_secs(5) {
            tracing::info!(pipeline = pipeline.as_str(), sent, items, "in progress");
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = collector.cpu_seconds().unwrap_or(0.0);
    let rss = collector.peak_rss_bytes().unwrap_or(0);
    let refusals = match pushing {
        Some(task) if sent >= items => {
            task.await.map_err(|e| BenchError::Push(e.to_string()))??
        }
        Some(task) => {
            task.abort();
            0
        }
        None => 0,
    };
    collector.stop(Duration::from_secs(10));
    drop(backend);
    Ok(Measurement {
        pipeline,
        unit: pipeline.unit(),
        items,
        sent,
        input_bytes,
        cpu_seconds: cpu,
        wall_seconds: wall,
        items_per_cpu_second: if cpu > 0.0 { sent as f64 / cpu } else { 0.0 },
        peak_rss_bytes: rss,
        refusals,
        discarded,
    })
}

fn logs_config(logs: &Path, sink: &str) -> String {
    format!(
        r#"[sources.files]
type = "file"
paths = ["{glob}"]
start_at = "beginning"

[process.parse]
inputs = ["files"]
[[process.parse.stages]]
type = "logs.json"
expressions = {{ level = "", device = "" }}
[[process.parse.stages]]
type = "logs.labels"
values = {{ level = "", device = "" }}

[writers.loki]
type = "loki"
inputs = ["parse"]
url = "{sink}/loki/api/v1/push"
"#,
        glob = logs.join("*.log").display()
    )
}

fn metrics_config(port: u16, sink: &str) -> String {
    format!(
        r#"[sources.rw]
type = "remote_write"
address = "127.0.0.1:{port}"

[process.label]
inputs = ["rw"]
[[process.label.stages]]
type = "metrics.static_labels"
values = {{ cluster = "bench" }}

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["label"]
url = "{sink}/api/v1/push"
"#
    )
}

fn traces_config(port: u16, sink: &str) -> String {
    format!(
        r#"[sources.otlp]
type = "otlp"
http_address = "127.0.0.1:{port}"
grpc_enabled = false

[writers.tempo]
type = "otlp"
inputs = ["otlp"]
protocol = "http"
url = "{sink}"
"#
    )
}

fn free_port(dir: &Path) -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::io(dir, e))
}

async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    collector: &mut child::Collector,
    log: &Path,
) -> Result<(), BenchError> {
    let limit = Duration::from_secs(30);
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(status) = collector.exited() {
            return Err(collector_exited(status.to_string(), log));
        }
        if let Ok(r) = http.get(format!("{base}/-/ready")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::NotReady(limit))
}

fn collector_exited(status: String, log: &Path) -> BenchError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    BenchError::CollectorExited {
        status,
        log: if tail.is_empty() {
            log.display().to_string()
        } else {
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        },
    }
}

/// The writers' acknowledged items, and every discard by `component/reason`.
async fn progress(
    http: &reqwest::Client,
    base: &str,
) -> Result<(u64, BTreeMap<String, u64>), BenchError> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| BenchError::Metrics(e.to_string()))?
        .text()
        .await
        .map_err(|e| BenchError::Metrics(e.to_string()))?;
    read_progress(&text)
}

fn read_progress(text: &str) -> Result<(u64, BTreeMap<String, u64>), BenchError> {
    let families = wire::exposition::parse(text).map_err(|e| BenchError::Metrics(e.to_string()))?;
    let label = |s: &wire::exposition::ExpoSample, k: &str| {
        s.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut sent = 0;
    let mut discarded = BTreeMap::new();
    for s in families.iter().flat_map(|f| f.samples.iter()) {
        let component = label(s, "component");
        if s.name == "collector_sent_items_total" && label(s, "kind") == "writer" {
            sent += s.value as u64;
        } else if s.name == "collector_discarded_items_total"
            && s.value > 0.0
            // A receiver's 429: the pusher sends that body again, so nothing is lost.
            && label(s, "reason") != "backpressure"
        {
            let key = format!("{component}/{}", label(s, "reason"));
            *discarded.entry(key).or_insert(0) += s.value as u64;
        }
    }
    Ok((sent, discarded))
}

/// The summary: a verdict line, then one line per pipeline.
pub fn summary(results: &[Measurement]) -> String {
    use std::fmt::Write as _;
    let failed: Vec<String> = results
        .iter()
        .filter(|m| !m.passed())
        .map(|m| {
            if m.discarded.is_empty() {
                format!(
                    "{}: {} of {} {} acknowledged before the timeout",
                    m.pipeline.as_str(),
                    m.sent,
                    m.items,
                    m.unit
                )
            } else {
                format!(
                    "{}: discarded {}",
                    m.pipeline.as_str(),
                    m.discarded
                        .iter()
                        .map(|(k, v)| format!("{v} at {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        })
        .collect();
    let mut s = if failed.is_empty() {
        format!(
            "OK: every item of {} pipeline(s) acknowledged\n",
            results.len()
        )
    } else {
        format!("FAIL: {}\n", failed.join("; "))
    };
    let _ = writeln!(
        s,
        "{:<8} {:>10} {:>9} {:>8} {:>8} {:>14} {:>9} {:>9}",
        "pipeline", "items", "MB in", "CPU s", "wall s", "items/CPU-s", "peak RSS", "refusals"
    );
    for m in results {
        let _ = writeln!(
            s,
            "{:<8} {:>10} {:>9.1} {:>8.2} {:>8.2} {:>14.0} {:>5.1} MiB {:>9}",
            m.pipeline.as_str(),
            m.items,
            m.input_bytes as f64 / 1e6,
            m.cpu_seconds,
            m.wall_seconds,
            m.items_per_cpu_second,
            m.peak_rss_bytes as f64 / (1 << 20) as f64,
            m.refusals
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_sums_writers_sent_and_names_every_discard() {
        let text = "\
# TYPE collector_sent_items_total counter
collector_sent_items_total{component=\"rw\",kind=\"source\",signal=\"metrics\"} 900
collector_sent_items_total{component=\"mimir\",kind=\"writer\",signal=\"metrics\"} 700
# TYPE collector_discarded_items_total counter
collector_discarded_items_total{component=\"mimir\",kind=\"writer\",signal=\"metrics\",reason=\"http_400\"} 3
collector_discarded_items_total{component=\"rw\",kind=\"source\",signal=\"metrics\",reason=\"backpressure\"} 0
";
        let (sent, discarded) = read_progress(text).expect("parses");
        assert_eq!(sent, 700);
        assert_eq!(
            discarded,
            BTreeMap::from([("mimir/http_400".to_string(), 3)])
        );
    }
}
