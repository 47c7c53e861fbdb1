//! The disk buffer's files: segments of checksummed records, a ledger of what was delivered,
//! the size bound, replay on start.
//!
//! Layout, in the buffer's directory (`<data_dir>/buffer/<writer>/`):
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: segments, appended in order, a new one past
//!   [`Limits::segment_bytes`] and at every start (nothing is ever appended after what a crash
//!   may have left half-written);
//! - each record: `len: u32` · `crc32: u32` (of seq and payload) · `seq: u64` · `payload`
//!   (little-endian; seq numbers run on across segments);
//! - `ledger`: the first record not yet delivered (every record before it was), rewritten
//!   (write + rename) at most every [`LEDGER_EVERY`] while deliveries advance it.
//!
//! A record is acknowledged to its producer once `write` returned (and `fsync` did, with
//! [`Fsync::Always`]); from then on it survives `kill -9` (the kernel has it) and, with `Always`
//! or after the next periodic sync, a power loss. It is deleted once the backend answered for
//! it ([`Shared::delivered`]): a segment goes when every record in it was delivered.
//!
//! Start-up reads every segment through: a record whose length, checksum or sequence is wrong
//! ends its segment's valid part; what follows is counted in
//! `collector_buffer_corrupt_records_total` (one per damaged stretch) and skipped, never a panic.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::selfmon::{ComponentMetrics, Counter, Gauge};

/// When appended records are synced to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before each record is acknowledged: survives a power loss; one sync per batch.
    Always,
    /// Every so often: `kill -9` loses nothing acknowledged, a power loss at most this much.
    Every(Duration),
    /// Left to the kernel.
    Never,
}

/// How big the buffer and its segments get.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes on disk at most (records' bytes; one record alone may exceed it).
    pub max_bytes: u64,
    /// A segment is closed past this many bytes.
    pub segment_bytes: u64,
}

/// A record's header: length, checksum, sequence number.
const HEADER: usize = 4 + 4 + 8;
/// The largest payload a record may claim (a damaged length beyond it is corruption).
pub const MAX_RECORD: usize = 256 << 20;
/// How often the ledger is rewritten at most while deliveries advance.
pub const LEDGER_EVERY: Duration = Duration::from_millis(200);
const LEDGER: &str = "ledger";

/// Why the buffer cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("disk buffer {path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// No room for the record until deliveries free some.
    #[error("the disk buffer is full")]
    Full,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BufferError + '_ {
    move |error| BufferError::Io {
        path: path.display().to_string(),
        error,
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// Valid bytes (what the reader may read).
    bytes: u64,
    first_seq: u64,
    /// One past the last record's seq.
    end_seq: u64,
}

struct State {
    segments: VecDeque<Segment>,
    /// Bytes of all segments.
    total: u64,
    next_seq: u64,
    /// Every record before this one was delivered.
    acked_below: u64,
    /// Records delivered at or past `acked_below`.
    delivered: BTreeSet<u64>,
    /// `acked_below` as the ledger file has it.
    ledger_at: u64,
    ledger_written: Option<Instant>,
    /// The appender is gone: the reader ends once it has read everything.
    closed: bool,
}

/// What the appender, the reader and the acks share.
pub struct Shared {
    dir: PathBuf,
    limits: Limits,
    state: Mutex<State>,
    /// Wakes the reader: a record was appended, or the appender closed.
    appended: Notify,
    /// Wakes a full appender: deliveries freed room.
    freed: Notify,
    bytes_gauge: Gauge,
    records_gauge: Gauge,
    corrupt: Counter,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// A record's bytes, header included.
fn encode_record(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads the record at `offset` of `file`, whose valid part ends at `end`: its seq and payload,
/// or `None` if it is damaged (length past `end` or [`MAX_RECORD`], checksum wrong).
fn read_record(file: &File, offset: u64, end: u64) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    if offset + HEADER as u64 > end {
        return Ok(None);
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, offset)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let seq_bytes: [u8; 8] = header[8..16].try_into().unwrap_or_default();
    if len > MAX_RECORD || offset + (HEADER + len) as u64 > end {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    file.read_exact_at(&mut payload, offset + HEADER as u64)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&seq_bytes);
    h.update(&payload);
    if h.finalize() != crc {
        return Ok(None);
    }
    Ok(Some((u64::from_le_bytes(seq_bytes), payload)))
}

/// Opens (creating) the buffer in `dir`: reads what a previous run left, deletes what the
/// ledger says was delivered, and starts a new segment for appends.
pub fn open(
    dir: &Path,
    limits: Limits,
    fsync: Fsync,
    metrics: &ComponentMetrics,
) -> Result<(Appender, Reader), BufferError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let corrupt = metrics.buffer_corrupt_records();
    let ledger_path = dir.join(LEDGER);
    let acked_below: u64 = fs::read_to_string(&ledger_path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let mut ids: Vec<u64> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    let mut segments = VecDeque::new();
    let mut delivered = BTreeSet::new();
    let mut expected: Option<u64> = None;
    for id in ids.iter().copied() {
        let path = segment_path(dir, id);
        let file = File::open(&path).map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        let (mut offset, mut first, mut end) = (0u64, None, 0u64);
        while offset < len {
            match read_record(&file, offset, len).map_err(io(&path))? {
                Some((seq, payload)) if expected.is_none_or(|e| seq >= e) => {
                    // Records lost between two valid ones (a damaged stretch) count as
                    // delivered: nothing can send them any more.
                    if let Some(e) = expected {
                        delivered.extend(e..seq);
                    }
                    first.get_or_insert(seq);
                    end = seq + 1;
                    expected = Some(seq + 1);
                    offset += (HEADER + payload.len()) as u64;
                }
                _ => {
                    tracing::warn!(path = %path.display(), offset, bytes = len - offset, "disk buffer: damaged record; the rest of the segment is skipped");
                    corrupt.inc();
                    break;
                }
            }
        }
        match first {
            Some(first_seq) if end > acked_below => segments.push_back(Segment {
                id,
                bytes: offset,
                first_seq,
                end_seq: end,
            }),
            _ => {
                // Empty, or delivered entirely.
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
    }
    let next_seq = expected.unwrap_or(0).max(acked_below);
    let mut acked = acked_below.max(segments.front().map_or(next_seq, |s| s.first_seq));
    while delivered.remove(&acked) {
        acked += 1;
    }
    delivered.retain(|s| *s >= acked);
    let next_id = ids.last().map_or(0, |l| l + 1);
    let total = segments.iter().map(|s| s.bytes).sum();
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        limits,
        state: Mutex::new(State {
            segments,
            total,
            next_seq,
            acked_below: acked,
            delivered,
            ledger_at: acked_below,
            ledger_written: None,
            closed: false,
        }),
        appended: Notify::new(),
        freed: Notify::new(),
        bytes_gauge: metrics.buffer_bytes(),
        records_gauge: metrics.buffer_records(),
        corrupt,
    });
    {
        let s = shared.state.lock();
        shared.publish(&s);
        if next_seq > acked {
            tracing::info!(dir = %dir.display(), records = next_seq - acked, bytes = s.total, "disk buffer: replaying what the last run left");
        }
    }
    let reader = Reader {
        shared: shared.clone(),
        segment: None,
        offset: 0,
        next_seq: acked,
        file: None,
    };
    let appender = Appender {
        shared,
        fsync,
        next_id,
        file: None,
        synced: Instant::now(),
        dirty: false,
        scratch: Vec::new(),
    };
    Ok((appender, reader))
}

impl Shared {
    fn publish(&self, s: &State) {
        self.bytes_gauge
            .set(i64::try_from(s.total).unwrap_or(i64::MAX));
        self.records_gauge
            .set(i64::try_from(s.next_seq.saturating_sub(s.acked_below)).unwrap_or(i64::MAX));
    }

    /// The backend answered for record `seq` (stored, or refused for good and counted): it
    /// need not be replayed.
    pub fn delivered(&self, seq: u64) {
        let mut s = self.state.lock();
        if seq < s.acked_below {
            return;
        }
        s.delivered.insert(seq);
        let mut advanced = false;
        loop {
            let at = s.acked_below;
            if !s.delivered.remove(&at) {
                break;
            }
            s.acked_below += 1;
            advanced = true;
        }
        if advanced {
            self.publish(&s);
        }
    }

    /// Deletes segments every record of which was delivered (the one being appended to stays),
    /// and writes the ledger if it is behind and was not written in the last [`LEDGER_EVERY`]
    /// (`force`: now). Wakes a full appender when room was made.
    pub fn reclaim(&self, force: bool) -> Result<(), BufferError> {
        let mut freed = false;
        let (ledger, at) = {
            let mut s = self.state.lock();
            while s.segments.len() > 1 && s.segments[0].end_seq <= s.acked_below {
                let Some(seg) = s.segments.pop_front() else {
                    break;
                };
                s.total -= seg.bytes;
                let path = segment_path(&self.dir, seg.id);
                if let Err(e) = fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), error = %e, "disk buffer: cannot delete a delivered segment");
                }
                freed = true;
            }
            if freed {
                self.publish(&s);
            }
            let due = force || s.ledger_written.is_none_or(|t| t.elapsed() >= LEDGER_EVERY);
            let write = s.acked_below != s.ledger_at && due;
            if write {
                s.ledger_at = s.acked_below;
                s.ledger_written = Some(Instant::now());
            }
            (write, s.acked_below)
        };
        if freed {
            self.freed.notify_waiters();
        }
        if ledger {
            let tmp = self.dir.join("ledger.tmp");
            fs::write(&tmp, format!("{at}\n")).map_err(io(&tmp))?;
            let path = self.dir.join(LEDGER);
            fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Resolves once deliveries may have freed room (see [`Shared::reclaim`]).
    pub async fn room_freed(&self) {
        self.freed.notified().await;
    }

    /// Bytes and undelivered records now.
    pub fn usage(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.total, s.next_seq.saturating_sub(s.acked_below))
    }
}

/// Writes records (one task: the writer's).
pub struct Appender {
    shared: Arc<Shared>,
    fsync: Fsync,
    next_id: u64,
    /// The segment appended to, opened at the first append.
    file: Option<File>,
    synced: Instant,
    /// Written since the last sync.
    dirty: bool,
    scratch: Vec<u8>,
}

impl Appender {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Appends one record; `Ok(seq)` once it is written (and synced, with [`Fsync::Always`]),
    /// [`BufferError::Full`] if it does not fit until deliveries free room.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, BufferError> {
        let len = (HEADER + payload.len()) as u64;
        let limits = self.shared.limits;
        let (seq, roll) = {
            let s = self.shared.state.lock();
            if s.total > 0 && s.total + len > limits.max_bytes {
                return Err(BufferError::Full);
            }
            let roll = match (&self.file, s.segments.back()) {
                (Some(_), Some(last)) => last.bytes >= limits.segment_bytes,
                _ => true,
            };
            (s.next_seq, roll)
        };
        if roll {
            self.roll()?;
        }
        self.scratch.clear();
        encode_record(seq, payload, &mut self.scratch);
        let path = segment_path(&self.shared.dir, self.next_id - 1);
        let Some(file) = self.file.as_mut() else {
            return Err(BufferError::Io {
                path: path.display().to_string(),
                error: std::io::Error::other("no open segment"),
            });
        };
        file.write_all(&self.scratch).map_err(io(&path))?;
        self.dirty = true;
        let sync_now = match self.fsync {
            Fsync::Always => true,
            Fsync::Every(d) => self.synced.elapsed() >= d,
            Fsync::Never => false,
        };
        if sync_now {
            self.sync()?;
        }
        let mut s = self.shared.state.lock();
        if let Some(last) = s.segments.back_mut() {
            last.bytes += len;
            last.end_seq = seq + 1;
        }
        s.total += len;
        s.next_seq = seq + 1;
        self.shared.publish(&s);
        drop(s);
        self.shared.appended.notify_one();
        Ok(seq)
    }

    /// Syncs what was written since the last sync (the writer calls it on a timer with
    /// [`Fsync::Every`], and at the end).
    pub fn sync(&mut self) -> Result<(), BufferError> {
        if self.dirty
            && let Some(f) = &self.file
        {
            let path = segment_path(&self.shared.dir, self.next_id - 1);
            f.sync_data().map_err(io(&path))?;
        }
        self.dirty = false;
        self.synced = Instant::now();
        Ok(())
    }

    /// Starts a new segment.
    fn roll(&mut self) -> Result<(), BufferError> {
        self.sync()?;
        let id = self.next_id;
        let path = segment_path(&self.shared.dir, id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        self.next_id += 1;
        self.file = Some(file);
        let mut s = self.shared.state.lock();
        let seq = s.next_seq;
        s.segments.push_back(Segment {
            id,
            bytes: 0,
            first_seq: seq,
            end_seq: seq,
        });
        drop(s);
        // The segment before may be all delivered already.
        self.shared.reclaim(false)
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "disk buffer: last sync failed");
        }
        self.shared.state.lock().closed = true;
        self.shared.appended.notify_one();
    }
}

/// Reads records in order (one task: the one feeding the writer).
pub struct Reader {
    shared: Arc<Shared>,
    /// The segment being read, and where.
    segment: Option<u64>,
    offset: u64,
    next_seq: u64,
    file: Option<File>,
}

/// What the reader found next.
pub enum Next {
    Record {
        seq: u64,
        payload: Vec<u8>,
    },
    /// Nothing appended yet.
    Empty,
    /// The appender is gone and everything was read.
    Closed,
}

impl Reader {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The next record, without waiting.
    pub fn try_next(&mut self) -> Result<Next, BufferError> {
        loop {
            // Where to read: the current segment while it has unread bytes, else the next.
            let (id, end, last, end_seq, closed) = {
                let s = self.shared.state.lock();
                let pos = s
                    .segments
                    .iter()
                    .position(|seg| Some(seg.id) == self.segment)
                    .or_else(|| {
                        // Not started, or the segment was deleted (delivered): the first
                        // segment holding `next_seq` or later.
                        s.segments
                            .iter()
                            .position(|seg| seg.end_seq > self.next_seq)
                    });
                let Some(pos) = pos else {
                    return Ok(if s.closed { Next::Closed } else { Next::Empty });
                };
                let seg = &s.segments[pos];
                (
                    seg.id,
                    seg.bytes,
                    pos + 1 == s.segments.len(),
                    seg.end_seq,
                    s.closed,
                )
            };
            if self.segment != Some(id) {
                let path = segment_path(&self.shared.dir, id);
                self.file = Some(File::open(&path).map_err(io(&path))?);
                self.segment = Some(id);
                self.offset = 0;
            }
            if self.offset >= end {
                if last {
                    return Ok(if closed { Next::Closed } else { Next::Empty });
                }
                self.segment = None;
                self.file = None;
                continue;
            }
            let path = segment_path(&self.shared.dir, id);
            let Some(file) = &self.file else {
                continue;
            };
            match read_record(file, self.offset, end).map_err(io(&path))? {
                Some((seq, payload)) if seq >= self.next_seq => {
                    self.offset += (HEADER + payload.len()) as u64;
                    self.next_seq = seq + 1;
                    return Ok(Next::Record { seq, payload });
                }
                Some((_, payload)) => {
                    // Delivered before (a replay starting mid-segment).
                    self.offset += (HEADER + payload.len()) as u64;
                }
                None => {
                    // Damaged since it was written or checked: skip the segment's rest, and
                    // let its records go (nothing can send them).
                    tracing::warn!(path = %path.display(), offset = self.offset, "disk buffer: damaged record; the rest of the segment is skipped");
                    self.shared.corrupt.inc();
                    for seq in self.next_seq..end_seq {
                        self.shared.delivered(seq);
                    }
                    self.next_seq = end_seq;
                    self.offset = end;
                }
            }
        }
    }

    /// The next record, waiting for one to be appended; `None` once the appender is gone and
    /// everything was read.
    pub async fn next(&mut self) -> Result<Option<(u64, Vec<u8>)>, BufferError> {
        let shared = self.shared.clone();
        loop {
            let appended = shared.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            match self.try_next()? {
                Next::Record { seq, payload } => return Ok(Some((seq, payload))),
                Next::Closed => return Ok(None),
                Next::Empty => appended.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selfmon::Registry;

    fn metrics() -> ComponentMetrics {
        ComponentMetrics::new(Registry::new(), "w", "writer")
    }

    fn limits(max: u64, seg: u64) -> Limits {
        Limits {
            max_bytes: max,
            segment_bytes: seg,
        }
    }

    fn drain(r: &mut Reader) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(Next::Record { seq, payload }) = r.try_next() {
            out.push((seq, payload));
        }
        out
    }

    #[test]
    fn appended_records_are_read_in_order_and_replayed_until_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics();
        let (mut a, mut r) = open(dir.path(), limits(1 << 20, 64), Fsync::Never, &m).unwrap();
        for i in 0..10u8 {
            assert_eq!(a.append(&[i; 20]).unwrap(), u64::from(i));
        }
        let got = drain(&mut r);
        assert_eq!(got.len(), 10);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, (s, p))| *s == i as u64 && p == &vec![i as u8; 20])
        );
        for seq in 0..4 {
            r.shared().delivered(seq);
        }
        r.shared().reclaim(true).unwrap();
        drop((a, r));
        // A new run replays from the first record not delivered.
        let (mut a, mut r) = open(dir.path(), limits(1 << 20, 64), Fsync::Never, &m).unwrap();
        let got = drain(&mut r);
        assert_eq!(got.first().map(|g| g.0), Some(4));
        assert_eq!(got.len(), 6);
        assert_eq!(a.append(b"new").unwrap(), 10);
        assert_eq!(drain(&mut r), vec![(10, b"new".to_vec())]);
    }

    #[test]
    fn full_until_deliveries_free_room() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics();
        let rec = (HEADER + 100) as u64;
        let (mut a, mut r) = open(dir.path(), limits(rec * 4, rec), Fsync::Never, &m).unwrap();
        for _ in 0..4 {
            a.append(&[7; 100]).unwrap();
        }
        assert!(matches!(a.append(&[7; 100]), Err(BufferError::Full)));
        assert_eq!(m.buffer_bytes().get() as u64, rec * 4);
        assert_eq!(drain(&mut r).len(), 4);
        r.shared().delivered(1);
        r.shared().delivered(0);
        r.shared().reclaim(false).unwrap();
        assert_eq!(r.shared().usage(), (rec * 2, 2));
        a.append(&[8; 100]).unwrap();
        assert_eq!(m.buffer_records().get(), 3);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Append(u8),
        Read,
        /// Deliver the n-th record read and not delivered yet (out of order on purpose).
        Deliver(usize),
        Reclaim,
        /// Drop everything (as a crash would: nothing flushed beyond `write`) and reopen.
        Restart,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => any::<u8>().prop_map(Op::Append),
            4 => Just(Op::Read),
            3 => (0usize..8).prop_map(Op::Deliver),
            1 => Just(Op::Reclaim),
            1 => Just(Op::Restart),
        ]
    }

    proptest::proptest! {
        /// The model: every record appended (acknowledged) is read at least once, across any
        /// restarts, until it is delivered; each run reads in append order; the size bound
        /// holds except for one record alone; nothing delivered before the last ledger write
        /// comes back.
        #[test]
        fn acknowledged_means_delivered_at_least_once_in_order(
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let m = metrics();
            let rec = (HEADER + 40) as u64;
            let lim = limits(rec * 6, rec * 2);
            let (mut a, mut r) = open(dir.path(), lim, Fsync::Never, &m).unwrap();
            // payload tag -> appended; tags are unique by appending a counter.
            let mut next_tag = 0u32;
            let mut acked: Vec<u32> = Vec::new();
            let mut delivered: std::collections::BTreeSet<u32> = Default::default();
            let mut outstanding: Vec<(u64, u32)> = Vec::new();
            let mut last_read: Option<u32> = None;
            let tag_of = |p: &[u8]| u32::from_le_bytes(p[..4].try_into().unwrap());
            for op in ops {
                match op {
                    Op::Append(b) => {
                        let mut p = next_tag.to_le_bytes().to_vec();
                        p.extend_from_slice(&[b; 36]);
                        match a.append(&p) {
                            Ok(_) => { acked.push(next_tag); next_tag += 1; }
                            Err(BufferError::Full) => {
                                let (bytes, _) = r.shared().usage();
                                proptest::prop_assert!(bytes + rec > lim.max_bytes);
                            }
                            Err(e) => proptest::prop_assert!(false, "{e}"),
                        }
                    }
                    Op::Read => {
                        if let Next::Record { seq, payload } = r.try_next().unwrap() {
                            let tag = tag_of(&payload);
                            proptest::prop_assert!(last_read.is_none_or(|l| tag > l), "in order");
                            last_read = Some(tag);
                            outstanding.push((seq, tag));
                        }
                    }
                    Op::Deliver(i) => {
                        if !outstanding.is_empty() {
                            let (seq, tag) = outstanding.remove(i % outstanding.len());
                            r.shared().delivered(seq);
                            delivered.insert(tag);
                        }
                    }
                    Op::Reclaim => r.shared().reclaim(false).unwrap(),
                    Op::Restart => {
                        drop((a, r));
                        let reopened = open(dir.path(), lim, Fsync::Never, &m).unwrap();
                        a = reopened.0;
                        r = reopened.1;
                        outstanding.clear();
                        last_read = None;
                    }
                }
                let (bytes, _) = r.shared().usage();
                proptest::prop_assert!(bytes <= lim.max_bytes.max(rec));
            }
            // Drain: after a restart, everything acknowledged and not delivered comes back.
            drop((a, r));
            let (_a, mut r) = open(dir.path(), lim, Fsync::Never, &m).unwrap();
            let replayed: Vec<u32> = drain(&mut r).iter().map(|(_, p)| tag_of(p)).collect();
            proptest::prop_assert!(replayed.windows(2).all(|w| w[0] < w[1]), "replay in order");
            for tag in &acked {
                proptest::prop_assert!(
                    delivered.contains(tag) || replayed.contains(tag),
                    "record {} was acknowledged, never delivered, and is gone", tag
                );
            }
            proptest::prop_assert_eq!(m.buffer_corrupt_records().get(), 0);
        }
    }

    #[test]
    fn damage_is_counted_and_skipped_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics();
        {
            let (mut a, _r) =
                open(dir.path(), limits(1 << 20, 1 << 20), Fsync::Always, &m).unwrap();
            for i in 0..5u8 {
                a.append(&[i; 50]).unwrap();
            }
        }
        // Flip a byte in the third record's payload, and leave half a record at the end.
        let seg = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[2 * (HEADER + 50) + HEADER + 3] ^= 0xff;
        bytes.extend_from_slice(&[1, 2, 3]);
        fs::write(&seg, &bytes).unwrap();
        let (_a, mut r) = open(dir.path(), limits(1 << 20, 1 << 20), Fsync::Never, &m).unwrap();
        let got = drain(&mut r);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(m.buffer_corrupt_records().get(), 1);
    }
}
