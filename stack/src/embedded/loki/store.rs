//! In-memory log store of one tenant: streams keyed by their sorted label set, entries of a
//! stream kept in time order (appending in the common in-order case, inserting in place
//! otherwise), exact duplicates (same timestamp and line) dropped as Loki's ingester drops them,
//! and the oldest entries evicted on demand to keep the memory bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// A label set, sorted by name.
pub type Labels = Vec<(String, String)>;

/// Bytes charged per entry on top of its line and metadata: timestamp, string headers, deque
/// slot. Approximate, but keeps many tiny lines from escaping the bound.
pub const ENTRY_OVERHEAD: usize = 64;

/// One stored log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub ts: i64,
    pub line: String,
    /// Structured metadata, in the order pushed.
    pub metadata: Labels,
}

impl StoredEntry {
    /// What the entry counts against `retention_bytes`.
    pub fn size(&self) -> usize {
        self.line.len()
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + ENTRY_OVERHEAD
    }
}

/// One stream: its labels and entries in time order.
#[derive(Debug)]
pub struct Stream {
    pub labels: Labels,
    pub entries: VecDeque<StoredEntry>,
}

impl Stream {
    pub fn new(labels: Labels) -> Self {
        Stream {
            labels,
            entries: VecDeque::new(),
        }
    }

    /// Adds an entry in time order (after entries of the same timestamp). Returns false, and
    /// stores nothing, when an entry with the same timestamp and line is already there.
    pub fn push(&mut self, e: StoredEntry) -> bool {
        match self.entries.back() {
            None => {
                self.entries.push_back(e);
                return true;
            }
            Some(last) if last.ts < e.ts => {
                self.entries.push_back(e);
                return true;
            }
            _ => {}
        }
        let lo = self.entries.partition_point(|x| x.ts < e.ts);
        let hi = self.entries.partition_point(|x| x.ts <= e.ts);
        if self.entries.range(lo..hi).any(|x| x.line == e.line) {
            return false;
        }
        self.entries.insert(hi, e);
        true
    }

    /// Entries with `from <= ts < to`, oldest first.
    pub fn range(&self, from: i64, to: i64) -> impl DoubleEndedIterator<Item = &StoredEntry> {
        let lo = self.entries.partition_point(|x| x.ts < from);
        let hi = self.entries.partition_point(|x| x.ts < to).max(lo);
        self.entries.range(lo..hi)
    }

    /// Does the stream hold an entry with `from <= ts <= to`?
    pub fn has_data_in(&self, from: i64, to: i64) -> bool {
        let lo = self.entries.partition_point(|x| x.ts < from);
        self.entries.get(lo).is_some_and(|e| e.ts <= to)
    }
}

/// What one tenant holds.
#[derive(Debug, Default)]
pub struct Tenant {
    /// Keyed by the label set rendered as `{a="b", c="d"}`.
    pub streams: HashMap<String, Stream>,
    /// Bytes stored, as counted by [`StoredEntry::size`].
    pub bytes: usize,
    /// Entries and bytes (of lines) accepted from pushes, as Loki's distributor counts them.
    pub lines_received: u64,
    pub bytes_received: u64,
}

/// Entries and bytes removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Freed {
    pub entries: u64,
    pub bytes: usize,
}

impl Tenant {
    /// The oldest timestamp held.
    pub fn oldest(&self) -> Option<i64> {
        self.streams
            .values()
            .filter_map(|s| s.entries.front().map(|e| e.ts))
            .min()
    }

    /// Evicts the oldest entries, never one newer than `upto_ts`, until `need` bytes are freed.
    /// Streams left empty are dropped.
    pub fn evict(&mut self, upto_ts: i64, need: usize) -> Freed {
        // (front timestamp, stream key, entries of that stream already chosen)
        let mut heap: BinaryHeap<Reverse<(i64, &String, usize)>> = self
            .streams
            .iter()
            .filter_map(|(k, s)| s.entries.front().map(|e| Reverse((e.ts, k, 0))))
            .collect();
        let mut freed = Freed::default();
        // Decided while the heap borrows the stream keys, applied after.
        let mut drops: HashMap<String, usize> = HashMap::new();
        while freed.bytes < need {
            let Some(Reverse((ts, key, start))) = heap.pop() else {
                break;
            };
            if ts > upto_ts {
                break;
            }
            let Some(stream) = self.streams.get(key) else {
                continue;
            };
            // Take from this stream while it stays the oldest (at least its front entry).
            let next_other = heap.peek().map(|Reverse((t, _, _))| *t).unwrap_or(i64::MAX);
            let bound = next_other.min(upto_ts);
            let mut n = 0;
            for e in stream.entries.range(start..) {
                if n > 0 && (e.ts > bound || freed.bytes >= need) {
                    break;
                }
                freed.bytes += e.size();
                freed.entries += 1;
                n += 1;
            }
            if let Some(e) = stream.entries.get(start + n) {
                heap.push(Reverse((e.ts, key, start + n)));
            }
            drops.insert(key.clone(), start + n);
        }
        drop(heap);
        for (key, n) in drops {
            let emptied = match self.streams.get_mut(&key) {
                Some(s) => {
                    let n = n.min(s.entries.len());
                    s.entries.drain(..n);
                    s.entries.is_empty()
                }
                None => false,
            };
            if emptied {
                self.streams.remove(&key);
            }
        }
        self.bytes = self.bytes.saturating_sub(freed.bytes);
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ts: i64, line: &str) -> StoredEntry {
        StoredEntry {
            ts,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    fn lines(s: &Stream) -> Vec<(i64, &str)> {
        s.entries.iter().map(|e| (e.ts, e.line.as_str())).collect()
    }

    #[test]
    fn keeps_time_order_and_drops_exact_duplicates() {
        let mut s = Stream::new(vec![("a".into(), "b".into())]);
        assert!(s.push(e(10, "x")));
        assert!(s.push(e(30, "z")));
        assert!(s.push(e(20, "y")));
        assert!(s.push(e(20, "y2")));
        assert!(!s.push(e(20, "y")));
        assert!(!s.push(e(30, "z")));
        assert!(s.push(e(5, "first")));
        assert_eq!(
            lines(&s),
            vec![(5, "first"), (10, "x"), (20, "y"), (20, "y2"), (30, "z")]
        );
        let r: Vec<i64> = s.range(10, 30).map(|e| e.ts).collect();
        assert_eq!(r, vec![10, 20, 20]);
        assert!(s.has_data_in(21, 30));
        assert!(!s.has_data_in(21, 29));
    }

    #[test]
    fn evicts_oldest_across_streams() {
        let mut t = Tenant::default();
        for (key, tss) in [("{a=\"1\"}", [1, 4, 6]), ("{a=\"2\"}", [2, 3, 5])] {
            let mut s = Stream::new(vec![("a".into(), key.into())]);
            for ts in tss {
                let en = e(ts, "l");
                t.bytes += en.size();
                s.push(en);
            }
            t.streams.insert(key.into(), s);
        }
        let one = e(0, "l").size();
        let freed = t.evict(i64::MAX, 3 * one);
        assert_eq!(freed.entries, 3);
        assert_eq!(t.oldest(), Some(4));
        assert_eq!(t.bytes, 3 * one);
        let freed = t.evict(4, 100 * one);
        assert_eq!(freed.entries, 1);
        let freed = t.evict(i64::MAX, 100 * one);
        assert_eq!(freed.entries, 2);
        assert!(t.streams.is_empty());
    }
}
