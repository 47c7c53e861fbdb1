//! The embedded Mimir's in-memory TSDB: per tenant, a series index (sorted label set → id),
//! postings (label name → value → ids) for matcher selection, and each series' samples in time
//! order. Appends follow the TSDB head's rules (a sample older than the series' newest is out of
//! order; the same timestamp with other value bits is a duplicate; the same timestamp and value is
//! accepted silently). Memory is bounded by a byte estimate: when it is over `retention_bytes`
//! the oldest samples of all tenants are evicted, and series left empty are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use promql_parser::label::Matcher;

/// A label set, sorted by name, `__name__` included.
pub type Labels = Vec<(String, String)>;

/// Bytes counted per sample (timestamp + value).
const SAMPLE_BYTES: usize = 16;
/// Bytes counted per series on top of its label bytes (index, postings, vectors).
const SERIES_OVERHEAD: usize = 128;

/// Why one sample was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    OutOfOrder,
    DuplicateTimestamp,
}

/// One series: labels and samples sorted by timestamp.
#[derive(Debug)]
pub struct Series {
    pub labels: Arc<Labels>,
    pub samples: Vec<(i64, f64)>,
}

impl Series {
    /// Samples with `mint <= t <= maxt`.
    pub fn range(&self, mint: i64, maxt: i64) -> &[(i64, f64)] {
        let lo = self.samples.partition_point(|s| s.0 < mint);
        let hi = self.samples.partition_point(|s| s.0 <= maxt);
        if lo >= hi { &[] } else { &self.samples[lo..hi] }
    }
}

/// One tenant's series.
#[derive(Debug, Default)]
pub struct Tenant {
    ids: HashMap<Arc<Labels>, u64>,
    series: BTreeMap<u64, Series>,
    postings: HashMap<String, HashMap<String, BTreeSet<u64>>>,
    next_id: u64,
}

/// What an eviction pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub samples: u64,
    pub series: u64,
}

/// All tenants, with the byte estimate that drives eviction.
#[derive(Debug, Default)]
pub struct Store {
    tenants: HashMap<String, Tenant>,
    bytes: usize,
    samples: usize,
    series: usize,
}

fn labels_bytes(l: &Labels) -> usize {
    l.iter().map(|(k, v)| k.len() + v.len() + 48).sum::<usize>() + SERIES_OVERHEAD
}

/// Does the label set satisfy the matcher (a missing label has the value "")?
pub fn matches(labels: &Labels, m: &Matcher) -> bool {
    let v = labels
        .iter()
        .find(|(k, _)| *k == m.name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    m.is_match(v)
}

impl Tenant {
    /// Ids of the series matching every matcher.
    pub fn select_ids(&self, matchers: &[Matcher]) -> Vec<u64> {
        // Narrow with the postings of equality matchers on non-empty values, then check all.
        let mut candidates: Option<BTreeSet<u64>> = None;
        for m in matchers {
            if matches!(m.op, promql_parser::label::MatchOp::Equal) && !m.value.is_empty() {
                let ids = self
                    .postings
                    .get(&m.name)
                    .and_then(|vals| vals.get(&m.value))
                    .cloned()
                    .unwrap_or_default();
                candidates = Some(match candidates {
                    None => ids,
                    Some(c) => c.intersection(&ids).copied().collect(),
                });
            }
        }
        let check = |id: &u64| {
            self.series
                .get(id)
                .is_some_and(|s| matchers.iter().all(|m| matches(&s.labels, m)))
        };
        match candidates {
            Some(c) => c.into_iter().filter(check).collect(),
            None => self.series.keys().copied().filter(check).collect(),
        }
    }

    /// The series with this id.
    pub fn series(&self, id: u64) -> Option<&Series> {
        self.series.get(&id)
    }

    /// Matching series that have a sample in `[mint, maxt]`.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<&Series> {
        self.select_ids(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(&id))
            .filter(|s| !s.range(mint, maxt).is_empty())
            .collect()
    }

    /// Every series of the tenant.
    pub fn all_series(&self) -> impl Iterator<Item = &Series> {
        self.series.values()
    }
}

impl Store {
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.get(name)
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of series held over all tenants.
    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Number of samples held over all tenants.
    pub fn sample_count(&self) -> usize {
        self.samples
    }

    /// Appends one sample to the series `labels` (sorted, validated) of `tenant`.
    pub fn append(
        &mut self,
        tenant: &str,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<(), AppendError> {
        let ten = self.tenants.entry(tenant.to_string()).or_default();
        let id = match ten.ids.get(labels) {
            Some(id) => *id,
            None => {
                let id = ten.next_id;
                ten.next_id += 1;
                let arc = Arc::new(labels.clone());
                ten.ids.insert(arc.clone(), id);
                for (k, val) in labels.iter() {
                    ten.postings
                        .entry(k.clone())
                        .or_default()
                        .entry(val.clone())
                        .or_default()
                        .insert(id);
                }
                ten.series.insert(
                    id,
                    Series {
                        labels: arc,
                        samples: Vec::new(),
                    },
                );
                self.bytes += labels_bytes(labels);
                self.series += 1;
                id
            }
        };
        let Some(s) = ten.series.get_mut(&id) else {
            return Ok(());
        };
        if let Some(&(lt, lv)) = s.samples.last() {
            if t < lt {
                return Err(AppendError::OutOfOrder);
            }
            if t == lt {
                return if lv.to_bits() == v.to_bits() {
                    Ok(())
                } else {
                    Err(AppendError::DuplicateTimestamp)
                };
            }
        }
        s.samples.push((t, v));
        self.bytes += SAMPLE_BYTES;
        self.samples += 1;
        Ok(())
    }

    /// Drops a series that an append created but that got no sample (so a refused first sample
    /// leaves no trace).
    pub fn drop_if_empty(&mut self, tenant: &str, labels: &Labels) {
        let Some(ten) = self.tenants.get_mut(tenant) else {
            return;
        };
        let Some(&id) = ten.ids.get(labels) else {
            return;
        };
        if ten.series.get(&id).is_some_and(|s| s.samples.is_empty()) {
            remove_series(ten, id);
            self.bytes = self.bytes.saturating_sub(labels_bytes(labels));
            self.series -= 1;
        }
    }

    /// Evicts the oldest samples (across tenants) until the estimate is at most `bound` bytes,
    /// aiming a little lower so eviction does not run on every append.
    pub fn evict_to(&mut self, bound: usize) -> Evicted {
        let mut out = Evicted::default();
        if self.bytes <= bound {
            return out;
        }
        let target = bound - bound / 10;
        // Find the smallest cutoff time so that dropping every sample older than it gets under
        // the target; binary search over time.
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for ten in self.tenants.values() {
            for s in ten.series.values() {
                if let (Some(f), Some(l)) = (s.samples.first(), s.samples.last()) {
                    lo = lo.min(f.0);
                    hi = hi.max(l.0);
                }
            }
        }
        if lo > hi {
            return out;
        }
        let freed_by = |cut: i64| -> usize {
            let mut freed = 0;
            for ten in self.tenants.values() {
                for s in ten.series.values() {
                    let n = s.samples.partition_point(|x| x.0 < cut);
                    freed += n * SAMPLE_BYTES;
                    if n == s.samples.len() {
                        freed += labels_bytes(&s.labels);
                    }
                }
            }
            freed
        };
        let need = self.bytes - target;
        // Smallest cut in (lo, hi + 1] freeing at least `need`.
        let (mut a, mut b) = (lo.saturating_add(1), hi.saturating_add(1));
        while a < b {
            let mid = a + (b - a) / 2;
            if freed_by(mid) >= need {
                b = mid;
            } else {
                a = mid + 1;
            }
        }
        let cut = a;
        for ten in self.tenants.values_mut() {
            let mut empty = Vec::new();
            for (id, s) in ten.series.iter_mut() {
                let n = s.samples.partition_point(|x| x.0 < cut);
                if n > 0 {
                    s.samples.drain(..n);
                    out.samples += n as u64;
                    self.bytes = self.bytes.saturating_sub(n * SAMPLE_BYTES);
                    self.samples -= n;
                }
                if s.samples.is_empty() {
                    empty.push(*id);
                }
            }
            for id in empty {
                if let Some(s) = remove_series(ten, id) {
                    self.bytes = self.bytes.saturating_sub(labels_bytes(&s.labels));
                    self.series -= 1;
                    out.series += 1;
                }
            }
        }
        self.tenants.retain(|_, t| !t.series.is_empty());
        out
    }
}

fn remove_series(ten: &mut Tenant, id: u64) -> Option<Series> {
    let s = ten.series.remove(&id)?;
    ten.ids.remove(&s.labels);
    for (k, v) in s.labels.iter() {
        if let Some(vals) = ten.postings.get_mut(k) {
            if let Some(ids) = vals.get_mut(v) {
                ids.remove(&id);
                if ids.is_empty() {
                    vals.remove(v);
                }
            }
            if vals.is_empty() {
                ten.postings.remove(k);
            }
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::label::MatchOp;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn append_rules() {
        let mut s = Store::default();
        let a = l(&[("__name__", "up"), ("job", "a")]);
        assert_eq!(s.append("t", &a, 10, 1.0), Ok(()));
        assert_eq!(s.append("t", &a, 10, 1.0), Ok(()));
        assert_eq!(
            s.append("t", &a, 10, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(s.append("t", &a, 5, 2.0), Err(AppendError::OutOfOrder));
        assert_eq!(s.append("t", &a, 20, 2.0), Ok(()));
        assert_eq!(s.sample_count(), 2);
        assert!(s.tenant("other").is_none());
    }

    #[test]
    fn select_by_matchers() {
        let mut s = Store::default();
        s.append("t", &l(&[("__name__", "up"), ("job", "a")]), 1, 1.0)
            .unwrap();
        s.append("t", &l(&[("__name__", "up"), ("job", "b")]), 1, 1.0)
            .unwrap();
        s.append("t", &l(&[("__name__", "down")]), 1, 1.0).unwrap();
        let ten = s.tenant("t").unwrap();
        let eq = Matcher::new(MatchOp::Equal, "__name__", "up");
        assert_eq!(ten.select(std::slice::from_ref(&eq), 0, 10).len(), 2);
        let ne = Matcher::new(MatchOp::NotEqual, "job", "a");
        assert_eq!(ten.select(&[eq.clone(), ne], 0, 10).len(), 1);
        // A missing label matches the empty value.
        let empty = Matcher::new(MatchOp::Equal, "job", "");
        assert_eq!(ten.select(&[empty], 0, 10).len(), 1);
        assert_eq!(ten.select(&[eq], 2, 10).len(), 0);
    }

    #[test]
    fn eviction_drops_oldest_first() {
        let mut s = Store::default();
        let a = l(&[("__name__", "a")]);
        let b = l(&[("__name__", "b")]);
        for t in 0..100 {
            s.append("t", &a, t, 0.0).unwrap();
        }
        s.append("t", &b, 50, 0.0).unwrap();
        let before = s.bytes();
        let ev = s.evict_to(before - 200);
        assert!(ev.samples > 0);
        assert!(s.bytes() <= before - 200);
        let ten = s.tenant("t").unwrap();
        let first = ten
            .all_series()
            .filter_map(|x| x.samples.first())
            .map(|x| x.0)
            .min()
            .unwrap();
        assert!(first > 0);
        // Evicting everything drops series too.
        let ev = s.evict_to(0);
        assert_eq!(ev.series, 2);
        assert_eq!(s.series_count(), 0);
        assert_eq!(s.bytes(), 0);
    }
}
