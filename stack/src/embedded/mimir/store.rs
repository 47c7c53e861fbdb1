//! The embedded Mimir's in-memory TSDB: per tenant, a series index (sorted label set → id),
//! postings (label name → value → ids) for matcher selection, and each series' samples in time
//! order. Appends follow the TSDB head's rules (`memSeries.appendable` in Prometheus'
//! tsdb/head_append.go): a sample older than the series' newest is out of order, unless an
//! out-of-order window is set and the sample is no older than the tenant's newest sample minus the
//! window (then it is inserted in place; beyond the window it is too old); the same timestamp with
//! other value bits is a duplicate; the same timestamp and value is accepted silently. There is no
//! out-of-bounds check (the TSDB head's "one hour before the newest sample" for new series): the
//! embedded store has no blocks to protect. Memory is bounded by a byte estimate: when it is over `retention_bytes`
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AppendError {
    /// Older than the series' newest and no out-of-order window (`storage.ErrOutOfOrderSample`).
    OutOfOrder,
    /// Older than the out-of-order window allows (`storage.ErrTooOldSample`).
    TooOld,
    /// Same timestamp, other value; carries the value already stored.
    DuplicateTimestamp(f64),
}

/// Where a sample goes in a series' time-sorted samples, as the TSDB head decides it: `Ok(None)`
/// for an exact duplicate (accepted, nothing to store), `Ok(Some(i))` to insert at `i`.
fn placement(
    samples: &[(i64, f64)],
    head_max: Option<i64>,
    t: i64,
    v: f64,
    window: i64,
) -> Result<Option<usize>, AppendError> {
    let Some(&(lt, lv)) = samples.last() else {
        // A series without samples takes any timestamp.
        return Ok(Some(0));
    };
    if t > lt {
        return Ok(Some(samples.len()));
    }
    if t == lt {
        return if lv.to_bits() == v.to_bits() {
            Ok(None)
        } else {
            Err(AppendError::DuplicateTimestamp(lv))
        };
    }
    if window <= 0 {
        return Err(AppendError::OutOfOrder);
    }
    if t < head_max.unwrap_or(lt).saturating_sub(window) {
        return Err(AppendError::TooOld);
    }
    let i = samples.partition_point(|s| s.0 < t);
    match samples.get(i) {
        Some(&(st, sv)) if st == t && sv.to_bits() == v.to_bits() => Ok(None),
        Some(&(st, sv)) if st == t => Err(AppendError::DuplicateTimestamp(sv)),
        _ => Ok(Some(i)),
    }
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
    /// The newest timestamp ever appended (the TSDB head's max time; eviction leaves it).
    head_max: Option<i64>,
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

    /// Appends one sample to the series `labels` (sorted, validated) of `tenant`, with no
    /// out-of-order window.
    pub fn append(
        &mut self,
        tenant: &str,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<(), AppendError> {
        self.append_within(tenant, labels, t, v, 0)
    }

    /// Would every sample of `series` be accepted (in this order, each seeing the ones before
    /// it)? Nothing is stored. The first refusal comes with its series and sample.
    pub fn check_all<'a>(
        &self,
        tenant: &str,
        series: impl IntoIterator<Item = (&'a Labels, &'a [(i64, f64)])>,
        window: i64,
    ) -> Result<(), (AppendError, &'a Labels, i64, f64)> {
        let ten = self.tenants.get(tenant);
        let mut head_max = ten.and_then(|t| t.head_max);
        // Per series, the stored samples the request's could touch, then the request's own.
        let mut overlay: HashMap<&Labels, Vec<(i64, f64)>> = HashMap::new();
        for (labels, samples) in series {
            let Some(first) = samples.iter().map(|s| s.0).min() else {
                continue;
            };
            let tail = overlay.entry(labels).or_insert_with(|| {
                ten.and_then(|t| t.ids.get(labels).and_then(|id| t.series.get(id)))
                    .map(|s| {
                        let from = s.samples.partition_point(|x| x.0 < first);
                        // The last stored sample always stays: it decides in-order appends.
                        s.samples[from.min(s.samples.len().saturating_sub(1))..].to_vec()
                    })
                    .unwrap_or_default()
            });
            for &(t, v) in samples {
                match placement(tail, head_max, t, v, window) {
                    Ok(Some(i)) => tail.insert(i, (t, v)),
                    Ok(None) => {}
                    Err(e) => return Err((e, labels, t, v)),
                }
                head_max = Some(head_max.map_or(t, |m| m.max(t)));
            }
        }
        Ok(())
    }

    /// Appends one sample, accepting out-of-order samples no older than `window` ms before the
    /// tenant's newest (0 disables out-of-order ingestion, Mimir's and Prometheus' default).
    pub fn append_within(
        &mut self,
        tenant: &str,
        labels: &Labels,
        t: i64,
        v: f64,
        window: i64,
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
        let Some(at) = placement(&s.samples, ten.head_max, t, v, window)? else {
            return Ok(());
        };
        s.samples.insert(at, (t, v));
        ten.head_max = Some(ten.head_max.map_or(t, |m| m.max(t)));
        self.bytes += SAMPLE_BYTES;
        self.samples += 1;
        Ok(())
    }

    /// Whether `tenant` may hold the series `labels`: it already does, or it holds fewer than
    /// `limit` series (0: no limit), as Mimir's ingester checks `max_global_series_per_user`.
    pub fn admits_series(&self, tenant: &str, labels: &Labels, limit: usize) -> bool {
        let Some(ten) = self.tenants.get(tenant) else {
            return true;
        };
        limit == 0 || ten.series.len() < limit || ten.ids.contains_key(labels)
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
            Err(AppendError::DuplicateTimestamp(1.0))
        );
        assert_eq!(s.append("t", &a, 5, 2.0), Err(AppendError::OutOfOrder));
        assert_eq!(s.append("t", &a, 20, 2.0), Ok(()));
        assert_eq!(s.sample_count(), 2);
        assert!(s.tenant("other").is_none());
    }

    #[test]
    fn out_of_order_window_as_the_tsdb_head() {
        let mut s = Store::default();
        let a = l(&[("__name__", "up"), ("job", "a")]);
        let b = l(&[("__name__", "up"), ("job", "b")]);
        let w = 600_000;
        s.append_within("t", &a, 1_000_000, 1.0, w).unwrap();
        // 5 minutes back: inside the window, inserted in place.
        assert_eq!(s.append_within("t", &a, 700_000, 0.5, w), Ok(()));
        // same timestamp again: same value is fine, another is a duplicate
        assert_eq!(s.append_within("t", &a, 700_000, 0.5, w), Ok(()));
        assert_eq!(
            s.append_within("t", &a, 700_000, 0.7, w),
            Err(AppendError::DuplicateTimestamp(0.5))
        );
        // beyond the window of the tenant's newest sample: too old, for any series
        assert_eq!(
            s.append_within("t", &a, 399_999, 1.0, w),
            Err(AppendError::TooOld)
        );
        s.append_within("t", &b, 100, 1.0, w).unwrap();
        assert_eq!(
            s.append_within("t", &b, 50, 1.0, w),
            Err(AppendError::TooOld)
        );
        let ten = s.tenant("t").unwrap();
        let got = &ten.series(*ten.ids.get(&a).unwrap()).unwrap().samples;
        assert_eq!(got, &[(700_000, 0.5), (1_000_000, 1.0)]);
        // no window: out of order
        assert_eq!(
            s.append("t", &a, 800_000, 1.0),
            Err(AppendError::OutOfOrder)
        );
    }

    #[test]
    fn check_all_sees_the_requests_own_samples_and_stores_nothing() {
        let mut s = Store::default();
        let a = l(&[("__name__", "up")]);
        s.append("t", &a, 100, 1.0).unwrap();
        let ok: Vec<(i64, f64)> = vec![(200, 1.0), (300, 1.0)];
        assert!(s.check_all("t", [(&a, ok.as_slice())], 0).is_ok());
        let bad: Vec<(i64, f64)> = vec![(200, 1.0), (150, 1.0)];
        let err = s.check_all("t", [(&a, bad.as_slice())], 0).unwrap_err();
        assert_eq!((err.0, err.2), (AppendError::OutOfOrder, 150));
        let dup: Vec<(i64, f64)> = vec![(100, 2.0)];
        let err = s.check_all("t", [(&a, dup.as_slice())], 0).unwrap_err();
        assert_eq!(err.0, AppendError::DuplicateTimestamp(1.0));
        assert!(s.check_all("t", [(&a, bad.as_slice())], 1000).is_ok());
        assert_eq!(s.sample_count(), 1);
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
