//! Writers' buffers: in memory (the writer's queue, the default) or on disk, opt in per writer.
//!
//! ```toml
//! [writers.loki]
//! type = "loki"
//! url = "http://loki:3100/loki/api/v1/push"
//! buffer = { type = "disk", max_size = "256MiB", fsync = "1s" }
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `type` | `"memory"` | `"disk"`: batches are written to `<data_dir>/buffer/<writer>/` before they are acknowledged |
//! | `max_size` | `"256MiB"` | bytes on disk at most; when full, the writer's `when_full` decides: `block` (backpressure: receivers answer 429) or `drop_newest` (counted as `discarded{reason="buffer_full"}`) |
//! | `fsync` | `"1s"` | `"always"` (sync before each acknowledgement: survives a power loss), a duration (sync that often: survives `kill -9`, a power loss loses at most that long), `"never"` (the kernel's choice) |
//!
//! How a disk-buffered writer runs (three tasks around [`disk`]'s files):
//! - the **appender** takes batches off the writer's queue, encodes them ([`codec`]) and appends
//!   one record each; only then are the batches' acks let go, so a receiver answers 2xx and a
//!   file source moves its position once the batch is on disk;
//! - the **reader** reads records in order (what the last run left first) and hands them to the
//!   writer's engine through a small queue, each with an ack that marks the record delivered once
//!   the backend answered for it (stored, or refused for good and counted);
//! - the **keeper** deletes delivered segments and keeps the ledger, so a restart replays only
//!   what was not delivered (at least once: a record whose delivery was not yet in the ledger is
//!   sent again).
//!
//! Gauges `collector_buffer_bytes`, `collector_buffer_records`; counter
//! `collector_buffer_corrupt_records_total`.

pub mod codec;
pub mod disk;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ack::{Ack, Acks, Until};
use crate::event::{Items, Signal};
use crate::output::WhenFull;
use crate::queue;
use crate::selfmon::ComponentMetrics;
pub use codec::Durable;
pub use disk::{BufferError, Fsync, Limits};

/// A writer's `buffer` setting.
#[derive(Clone, Debug, PartialEq)]
pub enum BufferConfig {
    Memory,
    Disk(DiskConfig),
}

/// `buffer = { type = "disk", ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskConfig {
    pub max_size: u64,
    pub fsync: Fsync,
}

pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;
pub const DEFAULT_FSYNC: Duration = Duration::from_secs(1);
/// The smallest `max_size` taken: room for a few full batches.
pub const MIN_MAX_SIZE: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuffer {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    max_size: Option<toml::Value>,
    #[serde(default)]
    fsync: Option<String>,
}

impl BufferConfig {
    /// Reads a writer's `buffer` table; the error says which key is wrong and why.
    pub fn parse(value: toml::Value) -> Result<BufferConfig, (String, String)> {
        let raw =
            RawBuffer::deserialize(value).map_err(|e| ("buffer".to_string(), e.to_string()))?;
        let key = |k: &str| format!("buffer.{k}");
        match raw.kind.as_str() {
            "memory" => {
                if raw.max_size.is_some() || raw.fsync.is_some() {
                    return Err((
                        key("type"),
                        "max_size and fsync are for type = \"disk\"".into(),
                    ));
                }
                Ok(BufferConfig::Memory)
            }
            "disk" => {
                let max_size = match raw.max_size {
                    None => DEFAULT_MAX_SIZE,
                    Some(v) => crate::sources::prometheus_scrape::ByteSize::deserialize(v)
                        .map(|b| b.0)
                        .ok()
                        .filter(|n| *n >= MIN_MAX_SIZE)
                        .ok_or_else(|| {
                            (
                                key("max_size"),
                                "must be a size of at least 1MiB, e.g. \"256MiB\"".to_string(),
                            )
                        })?,
                };
                let fsync = match raw.fsync.as_deref() {
                    None => Fsync::Every(DEFAULT_FSYNC),
                    Some("always") => Fsync::Always,
                    Some("never") => Fsync::Never,
                    Some(d) => humantime::parse_duration(d)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .map(Fsync::Every)
                        .ok_or_else(|| {
                            (
                                key("fsync"),
                                format!("{d:?}: must be \"always\", \"never\" or a duration such as \"1s\""),
                            )
                        })?,
                };
                Ok(BufferConfig::Disk(DiskConfig { max_size, fsync }))
            }
            other => Err((
                key("type"),
                format!("{other:?}: must be \"memory\" or \"disk\""),
            )),
        }
    }
}

/// Where writer `name`'s disk buffer lives.
pub fn dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("buffer").join(name)
}

/// The running tasks of one disk-buffered writer, besides the writer's engine.
pub struct Running {
    pub appender: JoinHandle<()>,
    pub reader: JoinHandle<()>,
}

/// How often a full appender looks for room even if no delivery woke it.
const FULL_POLL: Duration = Duration::from_millis(100);
/// What the reader's queue to the engine holds at most.
const READ_AHEAD: queue::Bound = queue::Bound {
    batches: 16,
    bytes: 8 << 20,
};

/// Puts a disk buffer between a writer's queue (`inbox`) and its engine: returns the queue
/// the engine reads, and the tasks. `stop` turns true when the writers are told to drain:
/// the reader stops handing out records then (what is unread stays on disk).
pub fn spawn<T>(
    dir: &Path,
    cfg: &DiskConfig,
    when_full: WhenFull,
    inbox: queue::Receiver<T>,
    metrics: ComponentMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(queue::Receiver<T>, Running), BufferError>
where
    T: Durable + Items + Send + 'static,
{
    let limits = Limits {
        max_bytes: cfg.max_size,
        segment_bytes: (cfg.max_size / 16).clamp(64 << 10, 32 << 20),
    };
    let (appender, reader) = disk::open(dir, limits, cfg.fsync, &metrics)?;
    let signal = T::SIGNAL;
    metrics.declare(signal, &["buffer_full", "buffer_error"]);
    let (tx, rx) = queue::channel(READ_AHEAD, queue::Gauges::default());
    let keeper = Arc::downgrade(appender.shared());
    tokio::spawn(keep(keeper));
    let appender = tokio::spawn(append_loop(
        appender,
        cfg.fsync,
        when_full,
        signal,
        inbox,
        metrics.clone(),
    ));
    let reader = tokio::spawn(read_loop(reader, tx, metrics, stop));
    Ok((rx, Running { appender, reader }))
}

/// Deletes delivered segments and writes the ledger, while the buffer exists.
async fn keep(shared: Weak<disk::Shared>) {
    let mut tick = tokio::time::interval(disk::LEDGER_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else { return };
        let done = tokio::task::spawn_blocking(move || {
            if let Err(e) = s.reclaim(false) {
                tracing::warn!(error = %e, "disk buffer upkeep failed");
            }
            // The last holder may be this closure: write the ledger for good then.
            if Arc::strong_count(&s) == 1 {
                let _ = s.reclaim(true);
                return true;
            }
            false
        })
        .await
        .unwrap_or(true);
        if done {
            return;
        }
    }
}

/// Takes batches off the writer's queue and appends them; lets their acks go once written.
async fn append_loop<T: Durable + Items + Send + 'static>(
    mut appender: disk::Appender,
    fsync: Fsync,
    when_full: WhenFull,
    signal: Signal,
    mut inbox: queue::Receiver<T>,
    metrics: ComponentMetrics,
) {
    let sync_every = match fsync {
        Fsync::Every(d) => d,
        _ => Duration::from_secs(3600),
    };
    let mut sync_tick = tokio::time::interval(sync_every);
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut payload = Vec::new();
    loop {
        let next = tokio::select! {
            b = inbox.recv_acked() => b,
            _ = sync_tick.tick() => {
                let (a, r) = blocking(appender, |a| a.sync()).await;
                appender = a;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "disk buffer sync failed");
                }
                continue;
            }
        };
        let Some((batch, acks)) = next else { break };
        let n = batch.items() as u64;
        payload.clear();
        batch.encode(&mut payload);
        drop(batch);
        loop {
            let buf = std::mem::take(&mut payload);
            let (a, (buf, r)) = blocking(appender, move |a| {
                let r = a.append(&buf);
                (buf, r)
            })
            .await;
            appender = a;
            payload = buf;
            match r {
                Ok(_) => break,
                Err(BufferError::Full) if when_full == WhenFull::Block => {
                    // Backpressure: the queue in front fills, receivers answer 429.
                    let _ = tokio::time::timeout(FULL_POLL, appender.shared().room_freed()).await;
                    let shared = appender.shared().clone();
                    let _ = tokio::task::spawn_blocking(move || shared.reclaim(false)).await;
                }
                Err(BufferError::Full) => {
                    metrics.discarded(signal, "buffer_full").add(n);
                    break;
                }
                Err(e) => {
                    // The disk refused (full filesystem, permissions): the batch is not
                    // kept; its producers hear so (receivers answer 503).
                    tracing::error!(error = %e, "disk buffer write failed; batch not kept");
                    metrics.discarded(signal, "buffer_error").add(n);
                    acks.clone().abandon();
                    break;
                }
            }
        }
        drop(acks);
    }
    let _ = blocking(appender, |a| a.sync()).await;
}

/// Runs `f` on `value` on the blocking pool (file writes and syncs), giving `value` back.
async fn blocking<V: Send + 'static, R: Send + 'static>(
    mut value: V,
    f: impl FnOnce(&mut V) -> R + Send + 'static,
) -> (V, R) {
    tokio::task::spawn_blocking(move || {
        let r = f(&mut value);
        (value, r)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Reads records in order and hands them to the engine, each with an ack that marks it
/// delivered.
async fn read_loop<T: Durable + Items + Send + 'static>(
    mut reader: disk::Reader,
    tx: queue::Sender<T>,
    metrics: ComponentMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let corrupt = metrics.buffer_corrupt_records();
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = reader.next() => r,
        };
        let (seq, payload) = match next {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "disk buffer read failed; the writer stops reading it");
                break;
            }
        };
        let shared = reader.shared().clone();
        let batch = match T::decode(&payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(seq, error = %e, "disk buffer record does not decode; skipped");
                corrupt.inc();
                shared.delivered(seq);
                continue;
            }
        };
        let ack = Ack::new(Until::Delivered, move |outcome| {
            if outcome == crate::ack::Outcome::Done {
                shared.delivered(seq);
            }
        });
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = tx.send_acked(batch, Acks::one(ack)) => if r.is_err() { break },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BufferConfig, (String, String)> {
        let t: toml::Table = toml::from_str(&format!("buffer = {s}")).unwrap();
        BufferConfig::parse(t["buffer"].clone())
    }

    #[test]
    fn settings_are_checked_and_name_their_key() {
        assert_eq!(parse("{ type = \"memory\" }"), Ok(BufferConfig::Memory));
        assert_eq!(
            parse("{ type = \"disk\" }"),
            Ok(BufferConfig::Disk(DiskConfig {
                max_size: DEFAULT_MAX_SIZE,
                fsync: Fsync::Every(DEFAULT_FSYNC)
            }))
        );
        assert_eq!(
            parse("{ type = \"disk\", max_size = \"64MiB\", fsync = \"always\" }"),
            Ok(BufferConfig::Disk(DiskConfig {
                max_size: 64 << 20,
                fsync: Fsync::Always
            }))
        );
        assert_eq!(parse("{ type = \"tape\" }").unwrap_err().0, "buffer.type");
        assert_eq!(
            parse("{ type = \"disk\", max_size = \"1KiB\" }")
                .unwrap_err()
                .0,
            "buffer.max_size"
        );
        assert_eq!(
            parse("{ type = \"disk\", fsync = \"sometimes\" }")
                .unwrap_err()
                .0,
            "buffer.fsync"
        );
        assert_eq!(
            parse("{ type = \"disk\", size = 3 }").unwrap_err().0,
            "buffer"
        );
        assert_eq!(
            parse("{ type = \"memory\", fsync = \"1s\" }")
                .unwrap_err()
                .0,
            "buffer.type"
        );
    }
}
