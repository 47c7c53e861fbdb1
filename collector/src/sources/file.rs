//! `file`: tails log files, as Alloy's `local.file_match` + `loki.source.file` do together.
//!
//! ```toml
//! [sources.app_logs]
//! type = "file"
//! paths = ["/var/log/app/*.log", "/srv/**/*.log"]   # globs, re-evaluated every poll
//! exclude = ["/var/log/app/debug-*.log"]            # globs
//! positions_file = "/var/lib/collector/app_logs.positions.json"  # default <data_dir>/<name>.positions.json
//! sync_period = "10s"       # how often positions are saved (and always on shutdown)
//! start_at = "beginning"    # or "end": for files found at start with no saved position
//! labels = { job = "app" }  # plus `filename`, the path, as Alloy sets it
//! poll_interval = "250ms"   # re-glob and read
//! max_line_size = 262144    # bytes; longer lines are dropped (discarded{reason="line_too_long"})
//! encoding = "utf-8"        # the only one; invalid bytes become U+FFFD and are counted
//! ```
//!
//! How files are followed (by polling: robust on every filesystem, no inotify limits):
//! - a file is known by its identity, (device, inode), plus a fingerprint (a hash of its first
//!   bytes, up to 256), so a new file that reuses an inode, or a file rewritten in place, is not
//!   taken for the old one;
//! - rotation by rename: the old file is finished through its open handle (its last partial
//!   line flushed), then the new file at the path is read from the beginning, in that order;
//! - copytruncate / truncation: a size below the read position, or a changed fingerprint, means
//!   the file starts over: it is read again from 0;
//! - a partial last line (no newline yet) is held back until it is completed;
//! - files that appear after start are read from the beginning; `start_at` only applies to the
//!   files found by the first poll that have no saved position;
//! - a position advances only past lines the writers have taken for good (delivered, refused
//!   for good and counted, or written to a disk buffer: [`crate::ack`]), in the order they were
//!   read, and positions hold the start of the first line not yet taken, so a graceful restart
//!   (which waits up to 5 s for lines on their way) neither repeats nor skips a line, and a
//!   crash re-reads at most what was taken since the last save (`sync_period`). A file rotated
//!   while the collector was stopped is found again by its identity in the directory it was
//!   in, and finished before its successor is read;
//! - a line's time is its [`Lease`]'s time plus its byte offset in the lease (as nanoseconds);
//!   a lease is saved before its lines are sent, so a line re-read after a crash gets the time
//!   it had the first time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::tailing::{PositionsFile, Saver, Utf8Decoder, is_shutdown, now_ns, wait_shutdown};
use super::{BuildError, Source, SourceContext, SourceError};
use crate::BoxFuture;
use crate::ack::{Ack, Acks, Outcome, Until};
use crate::event::{LogBatch, LogRecord, SharedLabels, Signal};
use crate::selfmon::ComponentMetrics;

/// Where to start a file that has no saved position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

/// The settings of a `file` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub paths: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub positions_file: Option<PathBuf>,
    #[serde(
        default = "default_sync_period",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub sync_period: Duration,
    #[serde(default)]
    pub start_at: StartAt,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub poll_interval: Duration,
    #[serde(default = "default_max_line_size")]
    pub max_line_size: usize,
    #[serde(default = "default_encoding")]
    pub encoding: String,
}

fn default_sync_period() -> Duration {
    Duration::from_secs(10)
}
fn default_poll_interval() -> Duration {
    Duration::from_millis(250)
}
fn default_max_line_size() -> usize {
    256 * 1024
}
fn default_encoding() -> String {
    "utf-8".into()
}

/// Bytes of a file hashed into its fingerprint.
const FINGERPRINT_BYTES: u64 = 256;
/// Bytes read from one file per poll, so one busy file cannot starve the others.
const READ_BUDGET: u64 = 1 << 20;
/// Lines per batch sent.
const MAX_BATCH_LINES: usize = 1000;

/// Builds a `file` source.
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let cfg: FileConfig = BuildError::parse(table)?;
    let invalid = |key: &str, reason: String| BuildError::Invalid {
        key: key.into(),
        reason,
    };
    if cfg.paths.is_empty() {
        return Err(invalid("paths", "at least one glob is needed".into()));
    }
    let exclude = cfg
        .exclude
        .iter()
        .map(|p| glob::Pattern::new(p).map_err(|e| invalid("exclude", format!("{p:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    for p in &cfg.paths {
        glob::Pattern::new(p).map_err(|e| invalid("paths", format!("{p:?}: {e}")))?;
    }
    if !matches!(cfg.encoding.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
        return Err(invalid(
            "encoding",
            format!("{:?} is not supported; only utf-8 is", cfg.encoding),
        ));
    }
    if cfg.poll_interval.is_zero() {
        return Err(invalid("poll_interval", "must be more than 0".into()));
    }
    if cfg.max_line_size == 0 {
        return Err(invalid("max_line_size", "must be more than 0".into()));
    }
    Ok(Box::new(FileSource { cfg, exclude }))
}

struct FileSource {
    cfg: FileConfig,
    exclude: Vec<glob::Pattern>,
}

impl Source for FileSource {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Logs]
    }

    fn declare(&self, metrics: &ComponentMetrics) {
        metrics.declare(Signal::Logs, &["line_too_long"]);
    }

    fn reports_start(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(run(*self, ctx))
    }
}

/// What the positions file holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SavedPositions {
    #[serde(default)]
    files: Vec<SavedFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    fingerprint: Fingerprint,
    /// The start of the first line not yet accepted downstream.
    offset: u64,
    /// The time leases of the lines past `offset` that may have been sent already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leases: Vec<Lease>,
}

/// The times of the lines starting in `offset..end`: `ns` plus the line's distance in bytes
/// from `offset`, as nanoseconds. Saved before any of those lines is sent, so a line read
/// again after a crash gets the very time it had, and Loki (which drops an entry equal to one
/// it has in stream, time and line) keeps one of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    offset: u64,
    end: u64,
    ns: i64,
    /// Taken by this run (a saved one is used as it is, however old).
    #[serde(skip)]
    fresh: bool,
}

/// Bytes a lease covers at most.
const LEASE_BYTES: u64 = 1 << 20;
/// How far behind the clock a line's leased time may fall before a new lease is taken.
const LEASE_DRIFT_NS: i64 = 1_000_000_000;

/// A hash (FNV-1a, stable across builds) of a file's first `len` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    len: u64,
    hash: u64,
}

impl Fingerprint {
    fn of(bytes: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Fingerprint {
            len: bytes.len() as u64,
            hash: h,
        }
    }

    /// The fingerprint of `file`'s first bytes (up to [`FINGERPRINT_BYTES`]).
    fn read(file: &File, size: u64) -> std::io::Result<Self> {
        Self::read_len(file, size.min(FINGERPRINT_BYTES))
    }

    fn read_len(file: &File, len: u64) -> std::io::Result<Self> {
        let mut buf = vec![0u8; len as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        Ok(Self::of(&buf))
    }

    /// Does `file` still start with the bytes this fingerprint was taken of?
    fn matches(&self, file: &File) -> std::io::Result<bool> {
        if self.len == 0 {
            return Ok(true);
        }
        Ok(Self::read_len(file, self.len)? == *self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// One file being followed.
struct Tracked {
    /// The path it was found at (the `filename` label).
    path: PathBuf,
    file: File,
    fingerprint: Fingerprint,
    /// Accepted downstream up to here.
    committed: u64,
    /// Where the line being read starts (the position once everything read is accepted).
    line_start: u64,
    /// The next byte to read.
    read_pos: u64,
    /// The bytes of the line being read, which has no newline yet.
    pending: Vec<u8>,
    /// Inside a line longer than `max_line_size`, dropping bytes until its newline.
    skipping: bool,
    /// No longer at a matched path: being finished through its handle.
    rotated: bool,
    /// The stream labels of its lines and the path they were made for (one set shared by all
    /// the file's lines; made again when the file is seen at another path).
    labels: Option<(PathBuf, SharedLabels)>,
    /// Time leases of lines past `committed`, in offset order.
    leases: Vec<Lease>,
    /// A lease was taken that the positions file does not have yet.
    unsaved_lease: bool,
}

impl Tracked {
    /// The time of the line starting at `offset` (see [`Lease`]).
    fn stamp(&mut self, offset: u64) -> i64 {
        let now = now_ns();
        if let Some(l) = self
            .leases
            .iter()
            .rev()
            .find(|l| l.offset <= offset && offset < l.end)
        {
            let ts = l.ns.saturating_add((offset - l.offset) as i64);
            if !l.fresh || now.saturating_sub(ts) <= LEASE_DRIFT_NS {
                return ts;
            }
        }
        if let Some(last) = self.leases.last_mut()
            && last.end > offset
        {
            last.end = offset;
        }
        self.leases.push(Lease {
            offset,
            end: offset + LEASE_BYTES,
            ns: now,
            fresh: true,
        });
        self.unsaved_lease = true;
        now
    }

    /// Accepted downstream up to `offset`: leases wholly before it are not needed again.
    fn commit(&mut self, offset: u64) {
        self.committed = offset;
        self.leases.retain(|l| l.end > offset);
    }
}

/// Lines read from one file, and where its position goes once they are accepted.
struct Work {
    id: FileId,
    records: LogBatch,
    end_offset: u64,
    /// The file is finished (rotated away and drained): forget it once accepted.
    finished: bool,
}

/// The state of a file source between polls (moved to a blocking thread to do file I/O).
struct Tailer {
    component: String,
    paths: Vec<String>,
    exclude: Vec<glob::Pattern>,
    start_at: StartAt,
    max_line_size: usize,
    labels: BTreeMap<String, String>,
    decoder: Utf8Decoder,
    metrics: ComponentMetrics,
    tracked: BTreeMap<FileId, Tracked>,
    /// At the first poll, paths that held a followed file: a new file there is a successor,
    /// read from 0 whatever `start_at` says.
    known_paths: BTreeSet<PathBuf>,
    /// Saved positions not yet matched to a file (consumed by the first poll).
    saved: Vec<SavedFile>,
    first_poll: bool,
}

impl Tailer {
    /// Globs the configured paths: (path, identity, size), first path wins for one identity.
    fn discover(&self) -> Vec<(PathBuf, FileId, u64)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for pattern in &self.paths {
            let paths = match glob::glob(pattern) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(component = %self.component, pattern, error = %e, "bad glob");
                    continue;
                }
            };
            for path in paths.flatten() {
                if self.exclude.iter().any(|x| x.matches_path(&path)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let id = FileId::of(&meta);
                if seen.insert(id) {
                    out.push((path, id, meta.len()));
                }
            }
        }
        out
    }

    /// Starts following a file not followed yet.
    fn open(&mut self, path: &Path, id: FileId, size: u64) -> std::io::Result<()> {
        let file = File::open(path)?;
        // The identity of what was opened (the path may have changed since it was globbed).
        let meta = file.metadata()?;
        if FileId::of(&meta) != id {
            return Ok(()); // replaced in between: the next poll sees the new one
        }
        let size = meta.len().max(size);
        let saved = self
            .saved
            .iter()
            .position(|s| s.dev == id.dev && s.ino == id.ino)
            .map(|i| self.saved.swap_remove(i));
        let mut offset = None;
        let mut leases = Vec::new();
        if let Some(s) = &saved
            && s.fingerprint.matches(&file)?
            && s.offset <= size
        {
            offset = Some(s.offset);
            leases.clone_from(&s.leases);
        }
        let offset = offset.unwrap_or_else(|| {
            if saved.is_some() || self.known_paths.contains(path) || !self.first_poll {
                0
            } else {
                match self.start_at {
                    StartAt::Beginning => 0,
                    StartAt::End => size,
                }
            }
        });
        let fingerprint = Fingerprint::read(&file, size)?;
        self.known_paths.insert(path.to_path_buf());
        self.tracked.insert(
            id,
            Tracked {
                path: path.to_path_buf(),
                file,
                fingerprint,
                committed: offset,
                line_start: offset,
                read_pos: offset,
                pending: Vec::new(),
                labels: None,
                skipping: false,
                rotated: false,
                leases,
                unsaved_lease: false,
            },
        );
        Ok(())
    }

    /// At start: a saved file that is no longer at its path may have been rotated while the
    /// collector was stopped; find it by identity in its directory so its end is not lost.
    fn find_rotated_saved(&mut self) {
        for s in std::mem::take(&mut self.saved) {
            let Some(dir) = s.path.parent() else { continue };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || meta.dev() != s.dev || meta.ino() != s.ino {
                    continue;
                }
                let Ok(file) = File::open(entry.path()) else {
                    break;
                };
                if !matches!(s.fingerprint.matches(&file), Ok(true)) || s.offset > meta.len() {
                    break;
                }
                self.known_paths.insert(s.path.clone());
                self.tracked.insert(
                    FileId::of(&meta),
                    Tracked {
                        path: s.path.clone(),
                        file,
                        fingerprint: s.fingerprint,
                        committed: s.offset,
                        line_start: s.offset,
                        read_pos: s.offset,
                        pending: Vec::new(),
                        labels: None,
                        skipping: false,
                        leases: s.leases.clone(),
                        unsaved_lease: false,
                        rotated: true,
                    },
                );
                break;
            }
        }
    }

    /// One poll: discover files, notice rotation and truncation, read what is new.
    /// Returns the batches to send and whether there is more to read right away.
    fn poll(&mut self) -> (Vec<Work>, bool) {
        let found = self.discover();
        for t in self.tracked.values_mut() {
            t.rotated = true;
        }
        let mut resets = Vec::new();
        for (path, id, size) in &found {
            match self.tracked.get_mut(id) {
                Some(t) => {
                    t.rotated = false;
                    t.path.clone_from(path);
                    match t.fingerprint.matches(&t.file) {
                        Ok(true) => {}
                        Ok(false) => resets.push(*id),
                        Err(e) => {
                            tracing::debug!(component = %self.component, path = %path.display(), error = %e, "cannot read");
                        }
                    }
                }
                None => {
                    if let Err(e) = self.open(path, *id, *size) {
                        tracing::warn!(component = %self.component, path = %path.display(), error = %e, "cannot open");
                    }
                }
            }
        }
        if self.first_poll {
            self.find_rotated_saved();
            self.first_poll = false;
            // After the first poll every new file is read from 0: no need to remember paths.
            self.known_paths.clear();
        }

        let mut works = Vec::new();
        let mut more = false;
        // Rotated files first, so a file's end goes out before its successor's beginning;
        // a successor waits while its predecessor still has lines.
        let mut order: Vec<(bool, FileId)> = self
            .tracked
            .iter()
            .map(|(id, t)| (!t.rotated, *id))
            .collect();
        order.sort();
        let mut draining: BTreeSet<PathBuf> = BTreeSet::new();
        for (live, id) in order {
            let Some(mut t) = self.tracked.remove(&id) else {
                continue;
            };
            if live && draining.contains(&t.path) {
                self.tracked.insert(id, t);
                more = true;
                continue;
            }
            let mut records = Vec::new();
            let reset = resets.contains(&id);
            let (bytes_read, budget_left) = match self.read(&mut t, reset, &mut records) {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(component = %self.component, path = %t.path.display(), error = %e, "cannot read");
                    (0, true)
                }
            };
            more |= !budget_left;
            let finished = t.rotated && bytes_read == 0;
            if finished {
                self.flush_pending(&mut t, &mut records);
            } else if t.rotated {
                draining.insert(t.path.clone());
            }
            let end_offset = t.line_start;
            let moved = end_offset != t.committed;
            // A finished file with nothing left to send, and nothing waiting to be accepted, is
            // forgotten now.
            if !(finished && records.is_empty() && t.committed == t.line_start) {
                self.tracked.insert(id, t);
            }
            let n_batches = records.len().div_ceil(MAX_BATCH_LINES);
            let mut records = records.into_iter();
            for i in 0..n_batches {
                let chunk: Vec<(LogRecord, u64)> = records.by_ref().take(MAX_BATCH_LINES).collect();
                let last = i + 1 == n_batches;
                works.push(Work {
                    id,
                    end_offset: if last {
                        end_offset
                    } else {
                        chunk.last().map_or(end_offset, |(_, end)| *end)
                    },
                    finished: finished && last,
                    records: chunk.into_iter().map(|(r, _)| r).collect(),
                });
            }
            if n_batches == 0 && moved && !finished {
                // Nothing to send but the position moved (a dropped long line): commit it.
                works.push(Work {
                    id,
                    end_offset,
                    finished: false,
                    records: Vec::new(),
                });
            }
        }
        (works, more)
    }

    /// Reads what is new in `t` into `records` (each with the offset just past its line).
    /// Returns the bytes read and whether the read budget was enough.
    fn read(
        &self,
        t: &mut Tracked,
        reset: bool,
        records: &mut Vec<(LogRecord, u64)>,
    ) -> std::io::Result<(u64, bool)> {
        let size = t.file.metadata()?.len();
        if !t.rotated && (reset || size < t.read_pos) {
            tracing::info!(component = %self.component, path = %t.path.display(), "file truncated or rewritten: reading it from the start");
            self.flush_pending(t, records);
            t.read_pos = 0;
            t.line_start = 0;
            t.skipping = false;
            t.leases.clear();
            // The flushed line belongs to the old content: its position is the new start.
            if let Some((_, end)) = records.last_mut() {
                *end = 0;
            }
            t.fingerprint = Fingerprint::read(&t.file, size)?;
        }
        if t.fingerprint.len < FINGERPRINT_BYTES && size > t.fingerprint.len {
            t.fingerprint = Fingerprint::read(&t.file, size)?;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while total < READ_BUDGET {
            let n = t.file.read_at(&mut buf, t.read_pos)?;
            if n == 0 {
                return Ok((total, true));
            }
            total += n as u64;
            for chunk in lines_inclusive(&buf[..n]) {
                t.read_pos += chunk.len() as u64;
                let complete = chunk.last() == Some(&b'\n');
                let body = if complete {
                    &chunk[..chunk.len() - 1]
                } else {
                    chunk
                };
                if t.skipping {
                    if complete {
                        t.skipping = false;
                        t.line_start = t.read_pos;
                    }
                    continue;
                }
                if complete && t.pending.is_empty() && body.len() <= self.max_line_size {
                    // The common case, a whole line in the buffer: no copy through `pending`.
                    let ts = t.stamp(t.line_start);
                    t.line_start = t.read_pos;
                    records.push((self.record(t, body, ts), t.read_pos));
                    continue;
                }
                t.pending.extend_from_slice(body);
                if t.pending.len() > self.max_line_size {
                    self.metrics.received(Signal::Logs).inc();
                    self.metrics.discarded(Signal::Logs, "line_too_long").inc();
                    t.pending.clear();
                    t.skipping = !complete;
                    if complete {
                        t.line_start = t.read_pos;
                    }
                    continue;
                }
                if complete {
                    let ts = t.stamp(t.line_start);
                    t.line_start = t.read_pos;
                    let line = std::mem::take(&mut t.pending);
                    let record = self.record(t, &line, ts);
                    t.pending = line;
                    t.pending.clear();
                    records.push((record, t.read_pos));
                }
            }
        }
        Ok((total, false))
    }

    /// Emits the partial last line of a file that is done (rotated away or truncated).
    fn flush_pending(&self, t: &mut Tracked, records: &mut Vec<(LogRecord, u64)>) {
        if !t.pending.is_empty() && !t.skipping {
            let line = std::mem::take(&mut t.pending);
            let ts = t.stamp(t.line_start);
            records.push((self.record(t, &line, ts), t.read_pos));
        }
        t.pending.clear();
        t.skipping = false;
        t.line_start = t.read_pos;
    }

    /// An entry of `t`, its labels the file's shared set.
    fn record(&self, t: &mut Tracked, line: &[u8], timestamp_ns: i64) -> LogRecord {
        let labels = match &t.labels {
            Some((path, labels)) if *path == t.path => labels.clone(),
            _ => {
                let mut labels: crate::event::Labels = self
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                labels.insert("filename", t.path.to_string_lossy());
                let labels = SharedLabels::new(labels);
                t.labels = Some((t.path.clone(), labels.clone()));
                labels
            }
        };
        LogRecord {
            labels,
            timestamp_ns,
            line: self.decoder.decode(line),
            ..Default::default()
        }
    }

    /// A batch was accepted downstream.
    fn commit(&mut self, id: FileId, end_offset: u64, finished: bool) {
        if finished {
            self.tracked.remove(&id);
        } else if let Some(t) = self.tracked.get_mut(&id) {
            t.commit(end_offset);
        }
    }

    /// Was a time lease taken since the last call (to be saved before its lines are sent)?
    fn take_unsaved_leases(&mut self) -> bool {
        let mut any = false;
        for t in self.tracked.values_mut() {
            any |= std::mem::take(&mut t.unsaved_lease);
        }
        any
    }

    fn snapshot(&self) -> SavedPositions {
        let mut files: Vec<SavedFile> = self
            .tracked
            .iter()
            .map(|(id, t)| SavedFile {
                path: t.path.clone(),
                dev: id.dev,
                ino: id.ino,
                fingerprint: t.fingerprint,
                offset: t.committed,
                leases: t.leases.clone(),
            })
            .collect();
        // Saved positions not matched yet (before the first poll) are kept.
        files.extend(self.saved.iter().cloned());
        SavedPositions { files }
    }
}

/// The lines of `buf`, each with its newline, the last one without if `buf` does not end in one
/// (`split_inclusive` on `\n`, with a vectorized search).
fn lines_inclusive(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        rest = after;
        Some(line)
    })
}

async fn run(src: FileSource, mut ctx: SourceContext) -> Result<(), SourceError> {
    let FileSource { cfg, exclude } = src;
    let positions = PositionsFile::new(cfg.positions_file.clone(), &ctx.data_dir, &ctx.name);
    let saved: SavedPositions = positions.load_or_default(&ctx.name);
    let mut tailer = Tailer {
        component: ctx.name.clone(),
        paths: cfg.paths,
        exclude,
        start_at: cfg.start_at,
        max_line_size: cfg.max_line_size,
        labels: cfg.labels,
        decoder: Utf8Decoder::new(&ctx.metrics),
        metrics: ctx.metrics.clone(),
        tracked: BTreeMap::new(),
        known_paths: saved.files.iter().map(|f| f.path.clone()).collect(),
        saved: saved.files,
        first_poll: true,
    };
    let received = ctx.metrics.received(Signal::Logs);
    let mut saver = Saver::new(positions, &ctx.name, cfg.sync_period);
    let mut inflight = Inflight::default();
    'outer: while !is_shutdown(&ctx.shutdown) {
        let (t, works, more) = tokio::task::spawn_blocking(move || {
            let (works, more) = tailer.poll();
            (tailer, works, more)
        })
        .await
        .map_err(|e| SourceError::Other(format!("file poll failed: {e}")))?;
        tailer = t;
        // The first poll fixed where each file found at start begins (`start_at`).
        ctx.started.done();
        // Lines under a new time lease go out only once the lease is saved.
        if tailer.take_unsaved_leases() {
            saver.save(tailer.snapshot()).await;
        }
        for w in works {
            let ack = if w.records.is_empty() {
                None
            } else {
                received.add(w.records.len() as u64);
                let (ack, acks) = inflight.ack();
                tokio::select! {
                    biased;
                    _ = wait_shutdown(&mut ctx.shutdown) => break 'outer,
                    sent = ctx.outputs.logs.send_acked(w.records, acks) => if sent.is_err() {
                        break 'outer;
                    },
                }
                Some(ack)
            };
            inflight.push(ack, w.id, w.end_offset, w.finished);
        }
        inflight.commit_done(&mut tailer);
        saver.tick(|| tailer.snapshot()).await;
        if !more {
            tokio::select! {
                _ = tokio::time::sleep(cfg.poll_interval) => {}
                _ = inflight.changed() => {}
                _ = wait_shutdown(&mut ctx.shutdown) => break,
            }
        }
    }
    // What was sent and is still on its way: its position is saved once it arrives (bounded,
    // so a backend that is down does not hold the stop; those lines are read again next time).
    let until = tokio::time::Instant::now() + ACK_WAIT_AT_STOP;
    while inflight.waiting() && tokio::time::Instant::now() < until {
        inflight.commit_done(&mut tailer);
        let _ = tokio::time::timeout_at(until, inflight.changed()).await;
    }
    inflight.commit_done(&mut tailer);
    saver.save(tailer.snapshot()).await;
    Ok(())
}

/// How long a stopping file source waits for the lines it sent to be delivered.
const ACK_WAIT_AT_STOP: Duration = Duration::from_secs(5);

/// Batches sent and not yet delivered (or buffered on disk), in the order they were read: a
/// position moves only past lines the writers have taken for good — delivered to the backend,
/// refused for good there and counted, or written to a disk buffer ([`Until::Delivered`]) —
/// so a crash re-reads what was not.
#[derive(Default)]
struct Inflight {
    next: u64,
    /// (seq, file, end offset, finished), oldest first.
    sent: std::collections::VecDeque<(u64, FileId, u64, bool)>,
    /// Outcomes in, by seq.
    outcomes: std::sync::Arc<parking_lot::Mutex<BTreeMap<u64, Outcome>>>,
    notify: std::sync::Arc<tokio::sync::Notify>,
    /// A batch was abandoned (the collector is stopping): no position moves past it.
    stuck: bool,
}

impl Inflight {
    /// An ack for the next batch.
    fn ack(&mut self) -> (u64, Acks) {
        let seq = self.next;
        self.next += 1;
        let outcomes = self.outcomes.clone();
        let notify = self.notify.clone();
        let ack = Ack::new(Until::Delivered, move |o| {
            outcomes.lock().insert(seq, o);
            notify.notify_one();
        });
        (seq, Acks::one(ack))
    }

    /// Records a batch's position move, behind those sent before it (`None`: nothing to wait
    /// for, e.g. only a dropped long line).
    fn push(&mut self, ack: Option<u64>, id: FileId, end_offset: u64, finished: bool) {
        let seq = ack.unwrap_or_else(|| {
            let seq = self.next;
            self.next += 1;
            self.outcomes.lock().insert(seq, Outcome::Done);
            seq
        });
        self.sent.push_back((seq, id, end_offset, finished));
    }

    /// Moves positions past every batch delivered, in order.
    fn commit_done(&mut self, tailer: &mut Tailer) {
        let mut outcomes = self.outcomes.lock();
        while !self.stuck
            && let Some(&(seq, id, end, finished)) = self.sent.front()
        {
            match outcomes.remove(&seq) {
                Some(Outcome::Done) => {
                    tailer.commit(id, end, finished);
                    self.sent.pop_front();
                }
                Some(Outcome::Abandoned) => self.stuck = true,
                None => break,
            }
        }
    }

    fn waiting(&self) -> bool {
        !self.stuck && !self.sent.is_empty()
    }

    async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Box<dyn Source>, BuildError> {
        build(toml::from_str(s).unwrap())
    }

    #[test]
    fn config_is_checked() {
        assert!(
            parse("paths = [\"/tmp/*.log\"]\nstart_at = \"end\"\npoll_interval = \"1s\"").is_ok()
        );
        let err = parse("paths = [\"/tmp/*.log\"]\nbogus = 1")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = parse("paths = []").err().unwrap().to_string();
        assert!(err.contains("paths"), "{err}");
        let err = parse("paths = [\"a\"]\nencoding = \"latin1\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("encoding"), "{err}");
        let err = parse("paths = [\"a[\"]").err().unwrap().to_string();
        assert!(err.contains("paths"), "{err}");
    }

    #[test]
    fn lines_split_as_split_inclusive_does() {
        for buf in [
            &b""[..],
            b"a",
            b"\n",
            b"a\nb",
            b"a\nb\n",
            b"\n\nx\n",
            b"one line\r\n",
        ] {
            let ours: Vec<_> = lines_inclusive(buf).collect();
            let std: Vec<_> = buf.split_inclusive(|b| *b == b'\n').collect();
            assert_eq!(ours, std, "{buf:?}");
        }
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(Fingerprint::of(b"").hash, 0xcbf2_9ce4_8422_2325);
        assert_ne!(Fingerprint::of(b"a"), Fingerprint::of(b"b"));
    }
}
