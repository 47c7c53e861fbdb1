//! What the verifier has learnt about one signal's canaries, and how one read of the stack (a
//! [`Pass`]) adds to it.
//!
//! - found: a canary of the ledger seen by any pass; its first-seen wall time gives the
//!   write-to-queryable latency (so its resolution is the poll interval);
//! - duplicated: per device, the extra copies (`occurrences - 1`) of ledger canaries within one
//!   pass; the largest count any pass saw is kept, since the final full sweep sees the most;
//! - out of order: per stream (a label set, and device within it), entries whose seq is lower
//!   than a seq already seen at a strictly earlier timestamp, duplicates excluded; largest count
//!   any pass saw is kept, as for duplicates.

use std::collections::{HashMap, HashSet};

use reports::histogram::{HistogramData, new_histogram};
use reports::results::Verification;

use super::ledger::{DeviceCanaries, SignalCanaries};

/// What one read of the stack returned for one signal.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// device → seq → copies seen.
    occurrences: HashMap<String, HashMap<u64, u32>>,
    /// device → seqs that came out of order.
    out_of_order: HashMap<String, Vec<u64>>,
}

impl Pass {
    /// One copy of canary `seq` of `device` was seen.
    pub fn saw(&mut self, device: &str, seq: u64) {
        self.saw_n(device, seq, 1);
    }

    /// `n` copies of canary `seq` of `device` were seen.
    pub fn saw_n(&mut self, device: &str, seq: u64, n: u32) {
        if n == 0 {
            return;
        }
        let d = match self.occurrences.get_mut(device) {
            Some(d) => d,
            None => self.occurrences.entry(device.to_string()).or_default(),
        };
        *d.entry(seq).or_default() += n;
    }

    /// One stream's canaries of `device` as `(timestamp, seq)`, in any order: records the
    /// copies and which seqs came out of order.
    pub fn stream(&mut self, device: &str, mut entries: Vec<(i64, u64)>) {
        entries.sort_by_key(|&(ts, _)| ts);
        let mut seen = HashSet::new();
        let mut max_before: Option<u64> = None;
        let mut late = Vec::new();
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            for &(_, seq) in group {
                self.saw(device, seq);
                if seen.insert(seq) && max_before.is_some_and(|m| seq < m) {
                    late.push(seq);
                }
            }
            let group_max = group.iter().map(|&(_, s)| s).max();
            max_before = max_before.max(group_max);
        }
        if !late.is_empty() {
            self.out_of_order
                .entry(device.to_string())
                .or_default()
                .extend(late);
        }
    }
}

/// The state of one signal's verification.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// device → seq → first seen (unix ns).
    seen: HashMap<String, HashMap<u64, i64>>,
    duplicated: HashMap<String, u64>,
    out_of_order: HashMap<String, u64>,
}

/// A device and the canaries of it a query must look for.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub device: String,
    pub index: u64,
    /// `(seq, sent_ns)`.
    pub canaries: Vec<(u64, i64)>,
}

impl Target {
    /// The earliest send time of the canaries looked for.
    pub fn min_sent(&self) -> Option<i64> {
        self.canaries.iter().map(|&(_, s)| s).min()
    }
}

impl Tally {
    /// Devices with canaries not found yet (`all`: every device, every canary, for a sweep).
    pub fn targets(&self, ledger: &SignalCanaries, all: bool) -> Vec<Target> {
        let mut out: Vec<Target> = ledger
            .iter()
            .filter_map(|(device, DeviceCanaries { index, sent })| {
                let seen = self.seen.get(device);
                let canaries: Vec<(u64, i64)> = sent
                    .iter()
                    .filter(|(seq, _)| all || !seen.is_some_and(|s| s.contains_key(seq)))
                    .map(|(&seq, &sent)| (seq, sent))
                    .collect();
                (!canaries.is_empty()).then(|| Target {
                    device: device.clone(),
                    index: *index,
                    canaries,
                })
            })
            .collect();
        out.sort_by(|a, b| a.device.cmp(&b.device));
        out
    }

    /// Adds what a pass saw at `now_ns`. Canaries not in the ledger (sent but never
    /// acknowledged) are ignored.
    pub fn absorb(&mut self, pass: &Pass, ledger: &SignalCanaries, now_ns: i64) {
        for (device, occ) in &pass.occurrences {
            let Some(dev) = ledger.get(device) else {
                continue;
            };
            let mut extra = 0u64;
            for (seq, &n) in occ {
                if !dev.sent.contains_key(seq) {
                    continue;
                }
                self.seen
                    .entry(device.clone())
                    .or_default()
                    .entry(*seq)
                    .or_insert(now_ns);
                extra += u64::from(n.saturating_sub(1));
            }
            raise(&mut self.duplicated, device, extra);
        }
        for (device, seqs) in &pass.out_of_order {
            let Some(dev) = ledger.get(device) else {
                continue;
            };
            let n = seqs.iter().filter(|s| dev.sent.contains_key(s)).count() as u64;
            raise(&mut self.out_of_order, device, n);
        }
    }

    /// Canaries of the ledger not found yet.
    pub fn pending(&self, ledger: &SignalCanaries) -> u64 {
        ledger
            .iter()
            .map(|(device, d)| {
                let found = self
                    .seen
                    .get(device)
                    .map_or(0, |s| d.sent.keys().filter(|k| s.contains_key(k)).count());
                (d.sent.len() - found) as u64
            })
            .sum()
    }

    /// The verification of this signal against the ledger.
    pub fn verification(&self, ledger: &SignalCanaries) -> Verification {
        let mut latency = new_histogram();
        let (mut canaries, mut found) = (0u64, 0u64);
        for (device, d) in ledger {
            canaries += d.sent.len() as u64;
            let Some(seen) = self.seen.get(device) else {
                continue;
            };
            for (seq, &sent_ns) in &d.sent {
                if let Some(&at) = seen.get(seq) {
                    found += 1;
                    let ms = (at.saturating_sub(sent_ns)).max(0) / 1_000_000;
                    latency.saturating_record(ms.unsigned_abs());
                }
            }
        }
        Verification {
            canaries,
            found,
            lost: canaries - found,
            duplicated: self.duplicated.values().sum(),
            out_of_order: self.out_of_order.values().sum(),
            write_to_query_latency: HistogramData::from_histogram(&latency, "ms"),
            query_errors: 0,
            last_query_error: None,
            // The verifier knows its poll interval; see `Verifier::report`.
            poll_interval_ms: 0,
            stack_evicted: 0,
        }
    }
}

fn raise(map: &mut HashMap<String, u64>, device: &str, n: u64) {
    if n == 0 {
        return;
    }
    match map.get_mut(device) {
        Some(v) => *v = (*v).max(n),
        None => {
            map.insert(device.to_string(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(seqs: &[(u64, i64)]) -> SignalCanaries {
        let mut m = SignalCanaries::new();
        m.insert(
            "d".into(),
            DeviceCanaries {
                index: 0,
                sent: seqs.iter().copied().collect(),
            },
        );
        m
    }

    #[test]
    fn order_duplicates_and_ties() {
        let mut p = Pass::default();
        // seq 2 arrives after 3 (late); 4 is a duplicate of an in-order seq; 5 and 6 share a
        // timestamp in either order (a tie is not a reordering).
        p.stream(
            "d",
            vec![(1, 1), (3, 3), (4, 2), (5, 4), (6, 4), (7, 6), (7, 5)],
        );
        let l = ledger(&[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0)]);
        let mut t = Tally::default();
        t.absorb(&p, &l, 2_000_000);
        let v = t.verification(&l);
        assert_eq!((v.canaries, v.found, v.lost), (7, 6, 1));
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.out_of_order, 1);
        assert_eq!(v.write_to_query_latency.count, 6);
        assert_eq!(v.write_to_query_latency.max, 2);
        assert_eq!(t.pending(&l), 1);
        assert_eq!(t.targets(&l, false)[0].canaries, vec![(7, 0)]);
        assert_eq!(t.targets(&l, true)[0].canaries.len(), 7);
    }

    #[test]
    fn unacknowledged_canaries_are_ignored_and_first_seen_is_kept() {
        let l = ledger(&[(1, 0)]);
        let mut t = Tally::default();
        let mut p = Pass::default();
        p.saw("d", 1);
        p.saw("d", 9);
        p.saw("other", 1);
        t.absorb(&p, &l, 5_000_000);
        t.absorb(&p, &l, 9_000_000);
        let v = t.verification(&l);
        assert_eq!((v.found, v.duplicated, v.out_of_order), (1, 0, 0));
        assert_eq!(v.write_to_query_latency.max, 5);
    }
}
