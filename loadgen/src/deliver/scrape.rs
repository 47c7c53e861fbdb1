//! Metrics by scrape: one axum server on 127.0.0.1 (port 0) serves every device's exposition at
//! `/devices/{id}/metrics`, and a Prometheus file_sd file lists one target per device: the
//! server's address, the device's labels plus `instance` (its id), and `__metrics_path__` and
//! `__scrape_interval__` as target labels (the collector's `prometheus_scrape` takes both from
//! file_sd labels, as Prometheus does). The file is written atomically (a temporary file in the
//! same folder, then a rename) when the run begins, and emptied when it ends.
//!
//! Each device's exposition comes from its own [`DeviceSignals`]; every `canary_every`-th scrape
//! served (the first included) carries `loadgen_canary_seq`, stamped with the serving time, and
//! is reported to the [`Sink`] (the ledger records it then). Scrapes before
//! [`ScrapeServer::begin`] or after [`ScrapeServer::end`] are answered 503 and not counted.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use super::{DeliverError, Delivered, Sink, io_err};
use crate::fleet::Fleet;
use crate::generate::DeviceSignals;
use crate::run::collector::{FileSd, Source};
use wire::Signal;

/// The file_sd file's name in the run folder.
pub const FILE_SD_NAME: &str = "scrape-targets.json";

/// One Prometheus file_sd target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Writes `groups` to `path` as file_sd JSON, atomically: a reader sees the old file or the new
/// one, never a part.
pub fn write_file_sd(path: &Path, groups: &[TargetGroup]) -> Result<(), DeliverError> {
    let json = serde_json::to_vec_pretty(groups)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, json).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// One device as the server sees it.
struct ScrapeDevice {
    signals: DeviceSignals,
    scrapes: u64,
    canaries: u64,
}

struct Shared {
    devices: Vec<Mutex<ScrapeDevice>>,
    by_id: HashMap<String, usize>,
    canary_every: u64,
    /// The run's start while it is on.
    start: Mutex<Option<Instant>>,
    sink: Sink,
}

/// The scrape server and its file_sd file.
pub struct ScrapeServer {
    shared: Arc<Shared>,
    groups: Vec<TargetGroup>,
    file_sd: PathBuf,
    min_interval: Duration,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// A device type's scrape interval under the run's rate multiplier (at least 1 ms).
fn interval(base: Duration, rate_multiplier: f64) -> Duration {
    let ms = (base.as_secs_f64() * 1e3 / rate_multiplier.max(1e-9)).round();
    Duration::from_millis((ms as u64).max(1))
}

impl ScrapeServer {
    /// Listens on 127.0.0.1 port 0; the file_sd file goes into `dir` (written by
    /// [`Self::begin`]). Canaries carry `run`.
    pub async fn start(
        fleet: &Fleet,
        seed: u64,
        run: u32,
        canary_every: u64,
        rate_multiplier: f64,
        dir: &Path,
        sink: Sink,
    ) -> Result<ScrapeServer, DeliverError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io_err(Path::new("127.0.0.1:0")))?;
        let addr = listener
            .local_addr()
            .map_err(io_err(Path::new("127.0.0.1:0")))?;
        let mut groups = Vec::with_capacity(fleet.devices.len());
        let mut min_interval = Duration::MAX;
        for d in &fleet.devices {
            let every = interval(
                crate::generate::Rates::for_type(d.device_type).scrape_interval,
                rate_multiplier,
            );
            min_interval = min_interval.min(every);
            let mut labels: BTreeMap<String, String> = d.labels().into_iter().collect();
            labels.insert("instance".into(), d.id.clone());
            labels.insert(
                "__metrics_path__".into(),
                format!("/devices/{}/metrics", d.id),
            );
            // Milliseconds: a duration Prometheus parses too ("7s 500ms" it would refuse).
            labels.insert(
                "__scrape_interval__".into(),
                format!("{}ms", every.as_millis()),
            );
            groups.push(TargetGroup {
                targets: vec![addr.to_string()],
                labels,
            });
        }
        let shared = Arc::new(Shared {
            devices: fleet
                .devices
                .iter()
                .map(|d| {
                    Mutex::new(ScrapeDevice {
                        signals: DeviceSignals::new(d, seed).for_run(run),
                        scrapes: 0,
                        canaries: 0,
                    })
                })
                .collect(),
            by_id: fleet
                .devices
                .iter()
                .enumerate()
                .map(|(i, d)| (d.id.clone(), i))
                .collect(),
            canary_every,
            start: Mutex::new(None),
            sink,
        });
        let app = Router::new()
            .route("/devices/{id}/metrics", get(serve))
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "scrape server stopped");
            }
        });
        Ok(ScrapeServer {
            shared,
            groups,
            file_sd: dir.join(FILE_SD_NAME),
            min_interval: if fleet.devices.is_empty() {
                Duration::from_secs(15)
            } else {
                min_interval
            },
            stop: Some(tx),
            task,
        })
    }

    /// The collector source scraping every target of the file_sd file.
    pub fn source(&self) -> Source {
        Source::PrometheusScrape {
            file_sd: FileSd {
                files: vec![self.file_sd.display().to_string()],
                refresh_interval: "500ms".into(),
            },
            scrape_interval: humantime::format_duration(self.min_interval).to_string(),
            honor_labels: true,
            honor_timestamps: true,
        }
    }

    /// The run starts at `start`: scrapes count from now, and the targets are published.
    pub fn begin(&self, start: Instant) -> Result<(), DeliverError> {
        *self.shared.start.lock() = Some(start);
        write_file_sd(&self.file_sd, &self.groups)
    }

    /// The run is over: scrapes no longer count, and the targets are withdrawn.
    pub fn end(&self) -> Result<(), DeliverError> {
        *self.shared.start.lock() = None;
        write_file_sd(&self.file_sd, &[])
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn serve(State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    let arrived = Instant::now();
    let Some(&index) = s.by_id.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(start) = *s.start.lock() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let Some(device) = s.devices.get(index) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let (text, items, canary) = {
        let mut d = device.lock();
        let n = d.scrapes;
        d.scrapes += 1;
        let seq = (s.canary_every > 0 && n.is_multiple_of(s.canary_every)).then(|| {
            d.canaries += 1;
            d.canaries
        });
        let scrape = d.signals.scrape(now_ns / 1_000_000, seq);
        (
            scrape.text(),
            scrape.series().len() as u64,
            seq.map(|q| (q, now_ns)),
        )
    };
    (s.sink)(Delivered {
        device: index,
        signal: Signal::Metrics,
        intended: arrived.saturating_duration_since(start),
        completed: start.elapsed(),
        items,
        error: None,
        canary,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn group(i: usize) -> TargetGroup {
        TargetGroup {
            targets: vec!["127.0.0.1:9".into()],
            labels: BTreeMap::from([
                ("device".into(), format!("d-{i}")),
                ("__metrics_path__".into(), format!("/devices/d-{i}/metrics")),
            ]),
        }
    }

    #[test]
    fn file_sd_is_valid_json_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_SD_NAME);
        let many: Vec<TargetGroup> = (0..100).map(group).collect();
        write_file_sd(&path, &many).unwrap();
        let back: Vec<TargetGroup> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, many);
        write_file_sd(&path, &[group(7)]).unwrap();
        let back: Vec<TargetGroup> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, vec![group(7)]);
        // Nothing but the file is left behind (the temporary file was renamed).
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_SD_NAME)]);
    }

    #[test]
    fn a_reader_never_sees_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_SD_NAME);
        write_file_sd(&path, &[group(0)]).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let bytes = std::fs::read(&path).unwrap();
                    let _: Vec<TargetGroup> = serde_json::from_slice(&bytes).unwrap();
                    reads += 1;
                }
                reads
            })
        };
        for n in 1..200 {
            let groups: Vec<TargetGroup> = (0..n).map(group).collect();
            write_file_sd(&path, &groups).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    #[test]
    fn intervals_follow_the_multiplier() {
        assert_eq!(
            interval(Duration::from_secs(15), 2.0),
            Duration::from_millis(7500)
        );
        assert_eq!(
            interval(Duration::from_secs(1), 1e9),
            Duration::from_millis(1)
        );
    }
}
