//! `docker`: container logs from the Docker Engine API, as Alloy's `loki.source.docker` (with
//! `discovery.docker`) reads them.
//!
//! ```toml
//! [sources.containers]
//! type = "docker"
//! host = "unix:///var/run/docker.sock"  # the default; only unix sockets
//! refresh_interval = "10s"   # how often running containers are listed (start events also trigger it)
//! labels = { job = "docker" }
//! positions_file = "/var/lib/collector/containers.positions.json"  # default <data_dir>/<name>.positions.json
//! sync_period = "10s"        # how often positions are saved (and always on shutdown)
//! ```
//!
//! - Running containers are listed (`GET /containers/json`) every `refresh_interval` and when
//!   the engine reports a container start (`GET /events`); each new one is followed with
//!   `GET /containers/{id}/logs?follow=1&stdout=1&stderr=1&timestamps=1&since=<position>`.
//!   A container that stops ends its stream, and its follower.
//! - The body is demultiplexed ([`frames`]: 8-byte frame headers, or the raw stream of a TTY
//!   container); each line's timestamp becomes the entry's time.
//! - Labels: the static `labels`, then `container_name` (without the leading `/`),
//!   `container_id`, `compose_service` and `compose_project` (from the
//!   `com.docker.compose.*` labels, when set) and `stream` (`stdout` or `stderr`).
//! - Positions, per container: the timestamp of the last accepted line and how many lines with
//!   that timestamp were accepted. `since` is inclusive, so on a restart the lines already
//!   accepted are skipped by that pair: no duplicates, no gaps. A container seen for the first
//!   time is read from its first log line.
//! - With no socket, the first failure is logged as an error naming the path ("no Docker socket
//!   at ...: is the Docker engine running?"); the source keeps retrying every
//!   `refresh_interval`, quietly, and logs when it connects.
//!
//! The client is a small hyper HTTP/1.1 client over a tokio `UnixStream` ([`api`]) rather than
//! bollard: the source needs five GET endpoints, and owning the bytes of the log stream keeps
//! the frame decoding and position handling testable against a fake engine without a heavy
//! dependency.

pub mod api;
pub mod frames;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use self::api::{Client, ContainerSummary};
use self::frames::{Demux, Stream, split_timestamp};
use super::tailing::{
    PositionsFile, Saver, Utf8Decoder, is_shutdown, now_ns, until_shutdown, wait_shutdown,
};
use super::{BuildError, Source, SourceContext, SourceError};
use crate::BoxFuture;
use crate::event::{Labels, LogBatch, LogRecord, SharedLabels, Signal};
use crate::output::Output;
use crate::selfmon::ComponentMetrics;

/// The settings of a `docker` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(
        default = "default_refresh_interval",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub refresh_interval: Duration,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub positions_file: Option<PathBuf>,
    #[serde(
        default = "default_sync_period",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub sync_period: Duration,
}

fn default_host() -> String {
    "unix:///var/run/docker.sock".into()
}
fn default_refresh_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_sync_period() -> Duration {
    Duration::from_secs(10)
}

/// Builds a `docker` source.
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let cfg: DockerConfig = BuildError::parse(table)?;
    let socket = api::socket_path(&cfg.host).ok_or_else(|| BuildError::Invalid {
        key: "host".into(),
        reason: format!(
            "{:?}: only unix sockets are supported, as unix:///path/to/docker.sock",
            cfg.host
        ),
    })?;
    if cfg.refresh_interval.is_zero() {
        return Err(BuildError::Invalid {
            key: "refresh_interval".into(),
            reason: "must be more than 0".into(),
        });
    }
    Ok(Box::new(DockerSource { cfg, socket }))
}

struct DockerSource {
    cfg: DockerConfig,
    socket: PathBuf,
}

impl Source for DockerSource {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Logs]
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(run(*self, ctx))
    }
}

/// What the positions file holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SavedPositions {
    #[serde(default)]
    containers: BTreeMap<String, ContainerPosition>,
}

/// Where one container's log was accepted up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ContainerPosition {
    /// The timestamp (ns) of the last accepted line.
    last_ns: i64,
    /// How many accepted lines carry exactly that timestamp.
    count_at_last: u64,
}

impl ContainerPosition {
    /// Moves past a line at `ts`.
    fn advance(&mut self, ts: i64) {
        if ts == self.last_ns {
            self.count_at_last += 1;
        } else if ts > self.last_ns {
            *self = ContainerPosition {
                last_ns: ts,
                count_at_last: 1,
            };
        }
    }
}

/// What every container follower shares.
struct Shared {
    client: Client,
    static_labels: BTreeMap<String, String>,
    positions: Mutex<SavedPositions>,
    output: Output<LogBatch>,
    metrics: ComponentMetrics,
    decoder: Utf8Decoder,
    component: String,
}

async fn run(src: DockerSource, mut ctx: SourceContext) -> Result<(), SourceError> {
    let DockerSource { cfg, socket } = src;
    let positions_file = PositionsFile::new(cfg.positions_file.clone(), &ctx.data_dir, &ctx.name);
    let shared = Arc::new(Shared {
        client: Client::new(socket),
        static_labels: cfg.labels,
        positions: Mutex::new(positions_file.load_or_default(&ctx.name)),
        output: ctx.outputs.logs.clone(),
        metrics: ctx.metrics.clone(),
        decoder: Utf8Decoder::new(&ctx.metrics),
        component: ctx.name.clone(),
    });
    let starts = Arc::new(Notify::new());
    let events = tokio::spawn(watch_starts(
        shared.clone(),
        starts.clone(),
        cfg.refresh_interval,
        ctx.shutdown.clone(),
    ));
    let mut followers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut failing = false;
    let mut saver = Saver::new(positions_file, &ctx.name, cfg.sync_period);
    while !is_shutdown(&ctx.shutdown) {
        followers.retain(|_, h| !h.is_finished());
        let Some(listed) = until_shutdown(&mut ctx.shutdown, shared.client.list_running()).await
        else {
            break;
        };
        match listed {
            Ok(list) => {
                if failing {
                    tracing::info!(component = %ctx.name, socket = %shared.client.socket().display(), "connected to the Docker engine");
                    failing = false;
                }
                for c in list {
                    if followers.contains_key(&c.id) {
                        continue;
                    }
                    if !c.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        tracing::warn!(component = %ctx.name, id = %c.id, "skipping a container with an unexpected id");
                        continue;
                    }
                    let task =
                        tokio::spawn(follow(shared.clone(), c.clone(), ctx.shutdown.clone()));
                    followers.insert(c.id, task);
                }
            }
            Err(e) if !failing => {
                tracing::error!(component = %ctx.name, "{e}; retrying every {:?}", cfg.refresh_interval);
                failing = true;
            }
            Err(e) => {
                tracing::debug!(component = %ctx.name, error = %e, "Docker engine still unavailable")
            }
        }
        saver.tick(|| shared.positions.lock().clone()).await;
        tokio::select! {
            _ = tokio::time::sleep(cfg.refresh_interval) => {}
            _ = starts.notified() => {}
            _ = wait_shutdown(&mut ctx.shutdown) => break,
        }
    }
    // Followers stop on the same signal; their positions are final once they have returned.
    for (_, task) in followers {
        let _ = task.await;
    }
    let _ = events.await;
    let snapshot = shared.positions.lock().clone();
    saver.save(snapshot).await;
    Ok(())
}

/// Wakes the lister on each container start; reconnects after `retry` when the stream fails.
async fn watch_starts(
    shared: Arc<Shared>,
    starts: Arc<Notify>,
    retry: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    while !is_shutdown(&shutdown) {
        let Some(started) = until_shutdown(&mut shutdown, shared.client.container_starts()).await
        else {
            return;
        };
        if let Ok(resp) = started {
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let frame = tokio::select! {
                    _ = wait_shutdown(&mut shutdown) => return,
                    f = body.frame() => f,
                };
                let Some(Ok(frame)) = frame else { break };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    match serde_json::from_slice::<api::Event>(&line) {
                        Ok(ev) if ev.kind == "container" && ev.action == "start" => {
                            starts.notify_one()
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(component = %shared.component, error = %e, "unexpected Docker event")
                        }
                    }
                }
                if buf.len() > frames::MAX_LINE {
                    buf.clear();
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = wait_shutdown(&mut shutdown) => return,
        }
    }
}

/// The labels of one container's streams, `stream` left out.
fn container_labels(
    shared: &Shared,
    summary: &ContainerSummary,
    inspect: Option<&api::ContainerInspect>,
) -> Labels {
    let name = inspect
        .map(|i| i.name.as_str())
        .filter(|n| !n.is_empty())
        .or_else(|| summary.names.first().map(String::as_str))
        .unwrap_or_default()
        .trim_start_matches('/');
    let docker_labels = inspect
        .and_then(|i| i.config.as_ref())
        .and_then(|c| c.labels.as_ref())
        .or(summary.labels.as_ref());
    let mut labels: Labels = shared
        .static_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert("container_id", summary.id.clone());
    if !name.is_empty() {
        labels.insert("container_name", name);
    }
    for (docker, ours) in [
        ("com.docker.compose.service", "compose_service"),
        ("com.docker.compose.project", "compose_project"),
    ] {
        if let Some(v) = docker_labels.and_then(|l| l.get(docker)) {
            labels.insert(ours, v.clone());
        }
    }
    labels
}

/// Follows one container's log until it ends or the collector stops.
async fn follow(
    shared: Arc<Shared>,
    summary: ContainerSummary,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = summary.id.clone();
    let component = shared.component.as_str();
    let Some(inspected) = until_shutdown(&mut shutdown, shared.client.inspect(&id)).await else {
        return;
    };
    let inspect = match inspected {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::debug!(component, container = %id, error = %e, "cannot inspect; assuming no TTY");
            None
        }
    };
    let tty = inspect
        .as_ref()
        .and_then(|i| i.config.as_ref())
        .is_some_and(|c| c.tty);
    let base = container_labels(&shared, &summary, inspect.as_ref());
    let saved = shared.positions.lock().containers.get(&id).copied();
    let since = saved.map_or_else(|| "0".to_string(), |p| api::since_param(p.last_ns));
    let Some(followed) =
        until_shutdown(&mut shutdown, shared.client.follow_logs(&id, &since)).await
    else {
        return;
    };
    let resp = match followed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(component, container = %id, error = %e, "cannot follow the container's logs");
            return;
        }
    };
    // The answer's content type is authoritative when the engine sends one (API >= 1.42).
    let tty = match resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(t) if t.contains("multiplexed-stream") => false,
        Some(t) if t.contains("raw-stream") => true,
        _ => tty,
    };
    let mut body = resp.into_body();
    let mut demux = Demux::new(tty);
    // Lines up to `saved` were accepted before: `since` is inclusive, so skip them again.
    let mut seen = ContainerPosition::default();
    let mut pos = saved.unwrap_or_default();
    let received = shared.metrics.received(Signal::Logs);
    let mut labels_by_stream: [Option<SharedLabels>; 2] = [None, None];
    loop {
        let frame = tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return,
            f = body.frame() => f,
        };
        let mut lines = Vec::new();
        let ended = match frame {
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    demux.push(&data, &mut lines);
                }
                false
            }
            Some(Err(e)) => {
                tracing::debug!(component, container = %id, error = %e, "log stream broke off");
                true
            }
            None => true,
        };
        if ended {
            demux.finish(&mut lines);
        }
        if let Some(err) = demux.take_errors() {
            tracing::warn!(component, container = %id, error = %err, "the Docker engine reported an error");
        }
        let mut batch = Vec::with_capacity(lines.len());
        let mut next = pos;
        for (stream, bytes) in lines {
            let text = shared.decoder.decode(&bytes);
            let (ts, line) = match split_timestamp(&text) {
                Some((ts, rest)) => (Some(ts), rest.to_string()),
                None => (None, text),
            };
            if let (Some(ts), Some(saved)) = (ts, saved) {
                if ts < saved.last_ns {
                    continue;
                }
                if ts == saved.last_ns && seen.count_at_last < saved.count_at_last {
                    seen.count_at_last += 1;
                    continue;
                }
            }
            if let Some(ts) = ts {
                next.advance(ts);
            }
            let slot = match stream {
                Stream::Stdout => 0,
                Stream::Stderr => 1,
            };
            let labels = labels_by_stream[slot]
                .get_or_insert_with(|| {
                    let mut l = base.clone();
                    l.insert("stream", stream.as_str());
                    SharedLabels::new(l)
                })
                .clone();
            batch.push(LogRecord {
                labels,
                timestamp_ns: ts.unwrap_or_else(now_ns),
                line,
                ..Default::default()
            });
        }
        if !batch.is_empty() {
            received.add(batch.len() as u64);
            tokio::select! {
                biased;
                _ = wait_shutdown(&mut shutdown) => return,
                sent = shared.output.send(batch) => if sent.is_err() {
                    return;
                },
            }
        }
        if next != pos {
            pos = next;
            shared.positions.lock().containers.insert(id.clone(), pos);
        }
        if ended {
            tracing::debug!(component, container = %id, "log stream ended");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let parse = |s: &str| build(toml::from_str(s).unwrap());
        assert!(parse("labels = { job = \"docker\" }\nrefresh_interval = \"1s\"").is_ok());
        let err = parse("host = \"tcp://127.0.0.1:2375\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("host"), "{err}");
        let err = parse("hots = \"x\"").err().unwrap().to_string();
        assert!(err.contains("hots"), "{err}");
    }

    #[test]
    fn positions_count_lines_at_the_same_timestamp() {
        let mut p = ContainerPosition::default();
        for ts in [5, 7, 7, 6] {
            p.advance(ts);
        }
        assert_eq!(
            p,
            ContainerPosition {
                last_ns: 7,
                count_at_last: 2
            }
        );
    }
}
