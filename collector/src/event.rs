//! The data that flows through the collector, one batch type per signal.
//!
//! - logs: [`LogRecord`]s, each with its stream labels ([`SharedLabels`]: one `Arc`-shared set
//!   per stream, not a copy per entry), time, line, structured metadata and the fields parsing
//!   stages extracted (kept out of what is sent unless a stage promotes them);
//! - metrics: [`MetricSample`]s, labels including `__name__` (a [`SharedLabels`] per series,
//!   shared by the series' samples), value, time in milliseconds;
//! - traces: OTLP `ResourceSpans`, as received.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use wire::otlp::proto::trace::v1::ResourceSpans;
pub use wire::{Labels, Signal};

/// A stream's label set, shared by the entries of that stream (a file's lines, a Loki push
/// stream's entries): cloning it is a reference count, not a copy. Reads go through `Deref` to
/// [`Labels`]; a write (`DerefMut`) copies the set first when it is shared (copy on write), so
/// stages that change labels on many entries should make the new set once per distinct input
/// set and assign it (see [`LabelCache`]).
#[derive(Clone, Default)]
pub struct SharedLabels(Arc<SharedInner>);

#[derive(Clone, Default)]
struct SharedInner {
    labels: Labels,
    /// The set's heap bytes, computed on first ask (what [`LogRecord::size_bytes`] reads for
    /// every entry) and forgotten on a write.
    heap: std::sync::OnceLock<usize>,
    /// The set's [`SharedLabels::content_hash`], computed on first ask, forgotten on a write.
    hash: std::sync::OnceLock<u64>,
}

impl SharedLabels {
    pub fn new(labels: Labels) -> Self {
        SharedLabels(Arc::new(SharedInner {
            labels,
            heap: Default::default(),
            hash: Default::default(),
        }))
    }

    /// Do `a` and `b` hold the very same set (not only equal ones)?
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// An identity for the set while it is alive (what [`LabelCache`] keys on).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// How many holders share this set now.
    pub fn share_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Heap bytes the set owns (computed once per set).
    fn heap(&self) -> usize {
        *self.0.heap.get_or_init(|| labels_heap(&self.0.labels))
    }

    /// A hash of the set's names and values (equal sets, shared or not, hash alike), computed
    /// once per set with FxHash: what the writers shard and group series by, once per sample,
    /// so it must not cost a pass over the strings each time. Not for keys a client picks to
    /// collide (it is no defence against hash flooding); stable within a process only.
    pub fn content_hash(&self) -> u64 {
        *self.0.hash.get_or_init(|| {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            self.0.labels.hash(&mut h);
            h.finish()
        })
    }
}

impl std::ops::Deref for SharedLabels {
    type Target = Labels;
    fn deref(&self) -> &Labels {
        &self.0.labels
    }
}

impl std::ops::DerefMut for SharedLabels {
    /// Copies the set first if another holder shares it.
    fn deref_mut(&mut self) -> &mut Labels {
        let inner = Arc::make_mut(&mut self.0);
        inner.heap = Default::default();
        inner.hash = Default::default();
        &mut inner.labels
    }
}

impl std::fmt::Debug for SharedLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.labels.fmt(f)
    }
}

impl PartialEq for SharedLabels {
    fn eq(&self, other: &Self) -> bool {
        Self::ptr_eq(self, other) || self.0.labels == other.0.labels
    }
}

impl Eq for SharedLabels {}

impl std::hash::Hash for SharedLabels {
    /// Feeds the cached [`content_hash`](Self::content_hash), not the strings.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.content_hash())
    }
}

impl PartialOrd for SharedLabels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedLabels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.labels.cmp(&other.0.labels)
    }
}

impl From<Labels> for SharedLabels {
    fn from(labels: Labels) -> Self {
        SharedLabels::new(labels)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for SharedLabels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        SharedLabels::new(Labels::from_iter(iter))
    }
}

/// Maps input label sets to output ones for a stage that changes labels the same way for every
/// entry with the same input set and the same `values` (e.g. the fields a `logs.labels` stage
/// promotes): the output set is built once per distinct (input set, values) and shared by those
/// entries, instead of a copy per entry. Keyed by the input set's address
/// ([`SharedLabels::id`]) and the values; the cache holds a clone of each input set it keys on,
/// so an address is not reused while it is a key. Bounded: cleared when it holds 256 outputs.
/// Meant to live for one batch (a local in the stage's `process`).
#[derive(Default)]
pub struct LabelCache {
    entries: Vec<CachedLabels>,
    /// Entries by hash of (input id, values), once there are more than a linear search suits.
    index: FnvMap<u64, Vec<usize>>,
    /// The last hit, tried first: entries of one stream tend to come together.
    last: usize,
}

struct CachedLabels {
    input: SharedLabels,
    values: Vec<Option<String>>,
    output: SharedLabels,
}

impl CachedLabels {
    fn is(&self, input: &SharedLabels, values: &[Option<&str>]) -> bool {
        SharedLabels::ptr_eq(&self.input, input)
            && self.values.len() == values.len()
            && self
                .values
                .iter()
                .zip(values)
                .all(|(a, b)| a.as_deref() == *b)
    }
}

impl LabelCache {
    /// Outputs kept at most (then the cache starts over).
    const MAX: usize = 256;
    /// Up to this many outputs, a linear search (a few short comparisons) beats hashing.
    const LINEAR: usize = 16;

    fn hash(input: &SharedLabels, values: &[Option<&str>]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = Fnv::default();
        input.id().hash(&mut hasher);
        values.hash(&mut hasher);
        hasher.finish()
    }

    /// The output set for `input` and `values`, made by `make` on a miss.
    pub fn get(
        &mut self,
        input: &SharedLabels,
        values: &[Option<&str>],
        make: impl FnOnce(&Labels) -> Labels,
    ) -> SharedLabels {
        if let Some(c) = self.entries.get(self.last)
            && c.is(input, values)
        {
            return c.output.clone();
        }
        let found = if self.entries.len() <= Self::LINEAR {
            self.entries.iter().position(|c| c.is(input, values))
        } else {
            self.index.get(&Self::hash(input, values)).and_then(|ix| {
                ix.iter()
                    .copied()
                    .find(|&i| self.entries[i].is(input, values))
            })
        };
        if let Some(i) = found {
            self.last = i;
            return self.entries[i].output.clone();
        }
        if self.entries.len() >= Self::MAX {
            self.entries.clear();
            self.index.clear();
        }
        let output = SharedLabels::new(make(input));
        self.entries.push(CachedLabels {
            input: input.clone(),
            values: values.iter().map(|v| v.map(str::to_string)).collect(),
            output: output.clone(),
        });
        self.last = self.entries.len() - 1;
        if self.entries.len() > Self::LINEAR {
            if self.index.is_empty() {
                for (i, c) in self.entries.iter().enumerate() {
                    let vals: Vec<Option<&str>> = c.values.iter().map(Option::as_deref).collect();
                    self.index
                        .entry(Self::hash(&c.input, &vals))
                        .or_default()
                        .push(i);
                }
            } else {
                self.index
                    .entry(Self::hash(input, values))
                    .or_default()
                    .push(self.last);
            }
        }
        output
    }

    /// Sets the label `name` to `value` in `labels`, through the cache: one new set per
    /// distinct (set, name, value).
    pub fn set_label(&mut self, labels: &mut SharedLabels, name: &str, value: &str) {
        *labels = self.get(labels, &[Some(name), Some(value)], |l| {
            let mut l = l.clone();
            l.insert(name, value);
            l
        });
    }
}

/// Applies a label rewrite (relabel rules, fixed labels) to items' label sets once per set: a
/// set no other item holds is changed in place (no copy); a set shared by several items (the
/// samples of one series, the entries of one stream) is rewritten once, and those items get
/// the same new set. Keyed by the input set's address, holding a clone of each input it keys on
/// so an address is not reused while it is a key. Meant to live for one batch.
#[derive(Default)]
pub struct PerSet {
    done: FnvMap<usize, (SharedLabels, Option<SharedLabels>)>,
}

impl PerSet {
    /// Rewrites `labels` with `rewrite`, which says whether the item is kept; a dropped item's
    /// labels are left as they were or partly rewritten (the caller drops it).
    pub fn apply(
        &mut self,
        labels: &mut SharedLabels,
        rewrite: impl FnOnce(&mut Labels) -> bool,
    ) -> bool {
        if labels.share_count() == 1 {
            return rewrite(labels);
        }
        let output = match self.done.get(&labels.id()) {
            Some((_, output)) => output.clone(),
            None => {
                let mut new = Labels::clone(labels);
                let output = rewrite(&mut new).then(|| SharedLabels::new(new));
                self.done
                    .insert(labels.id(), (labels.clone(), output.clone()));
                output
            }
        };
        match output {
            Some(o) => {
                *labels = o;
                true
            }
            None => false,
        }
    }
}

/// FNV-1a, for the maps keyed by a set's address or a few short values that are looked up
/// once per entry (the default SipHash costs more than the rest of such a lookup; these keys
/// come from our own data, not from a client that could pick colliding ones).
#[derive(Default)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A `HashMap` hashed with [`Fnv`].
pub type FnvMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// One log entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    /// Stream labels (indexed by Loki), shared with the other entries of the stream.
    pub labels: SharedLabels,
    /// Nanoseconds since the epoch.
    pub timestamp_ns: i64,
    pub line: String,
    /// Loki structured metadata (sent, not indexed).
    pub structured_metadata: Vec<(String, String)>,
    /// Fields extracted by parsing stages; not sent unless a stage promotes them.
    pub fields: Fields,
}

/// The fields parsing stages extracted from an entry, by name: a map kept as a vector sorted by
/// name (an entry has a few; one small allocation instead of a B-tree node of 11 slots, and
/// cheaper to walk and drop). Iterates in name order, as a `BTreeMap` would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&String> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `value`; the value it had, if any.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// [`insert`](Self::insert) with a borrowed name, copied only when the field is new.
    pub fn set(&mut self, name: &str, value: String) {
        match self.find(name) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => {
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(4);
                }
                self.0.insert(i, (name.to_string(), value));
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.find(name).ok().map(|i| self.0.remove(i).1)
    }

    /// (name, value) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Heap bytes the fields own: the vector by capacity, the names and values.
    fn heap(&self) -> usize {
        pairs_heap(self.0.capacity(), &self.0)
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = String;
    /// Panics when there is no such field (as a map's index does).
    fn index(&self, name: &str) -> &String {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no field {name:?}"),
        }
    }
}

impl Extend<(String, String)> for Fields {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(String, String)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut f = Fields::default();
        f.extend(iter);
        f
    }
}

impl From<BTreeMap<String, String>> for Fields {
    fn from(m: BTreeMap<String, String>) -> Self {
        Fields(m.into_iter().collect())
    }
}

/// One sample of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSample {
    /// Series labels, `__name__` included, shared by the samples of the series that came in
    /// together (a copy on write: see [`SharedLabels`]).
    pub labels: SharedLabels,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
}

impl MetricSample {
    pub fn name(&self) -> Option<&str> {
        self.labels.get("__name__")
    }
}

pub type LogBatch = Vec<LogRecord>;
pub type MetricBatch = Vec<MetricSample>;
pub type TraceBatch = Vec<ResourceSpans>;

/// How many items a batch holds (what the self-metrics count), and about how much memory it
/// takes (what bounds the queues, `queue_max_bytes`).
pub trait Items {
    fn items(&self) -> usize;
    /// An estimate of the bytes the batch holds: its items' inline size plus what they own on
    /// the heap (strings, label vectors, maps), by capacity. An estimate, not an allocator
    /// count: allocator overhead is left out.
    fn size_bytes(&self) -> usize;
}

/// Heap bytes a `String` owns.
fn string_heap(s: &String) -> usize {
    s.capacity()
}

/// Heap bytes a vector of name/value pairs owns, the pairs' strings included.
fn pairs_heap(capacity: usize, pairs: &[(String, String)]) -> usize {
    capacity * std::mem::size_of::<(String, String)>()
        + pairs
            .iter()
            .map(|(k, v)| string_heap(k) + string_heap(v))
            .sum::<usize>()
}

/// Heap bytes a label set owns.
fn labels_heap(labels: &Labels) -> usize {
    let pairs = labels.as_slice();
    pairs_heap(pairs.len(), pairs)
}

/// A shared label set's cost to one of its holders: its share of the set (the set's heap plus
/// the `Arc`'s counts, divided by how many hold it now, rounded up). A batch whose entries are
/// the only holders of a set so counts the set once in all; entries of one stream in different
/// batches split it between them. The holder count is read when the size is taken (the queues
/// keep the figure they took), so the estimate is of what the set costs while shared as now.
fn shared_labels_heap(labels: &SharedLabels) -> usize {
    (labels.heap() + std::mem::size_of::<SharedInner>() + 2 * std::mem::size_of::<usize>())
        .div_ceil(labels.share_count().max(1))
}

impl LogRecord {
    /// Inline size plus the heap the record owns, its labels by its share
    /// ([`shared_labels_heap`]).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + shared_labels_heap(&self.labels)
            + string_heap(&self.line)
            + pairs_heap(
                self.structured_metadata.capacity(),
                &self.structured_metadata,
            )
            + self.fields.heap()
    }
}

impl MetricSample {
    /// Inline size plus its share of its series' labels ([`shared_labels_heap`]).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + shared_labels_heap(&self.labels)
    }
}

/// The heap a decoded OTLP message takes, from its encoded length: every string and bytes field
/// is its payload plus a 24-byte header, every nested message its inline struct (spans are ~200
/// bytes inline against tens of bytes encoded), so the encoded length is scaled up.
const OTLP_DECODED_PER_ENCODED: usize = 3;

/// Inline size plus the heap one `ResourceSpans` owns, estimated from its encoded length.
pub fn resource_spans_size(rs: &ResourceSpans) -> usize {
    use prost::Message;
    let spans: usize = rs.scope_spans.iter().map(|ss| ss.spans.len()).sum();
    std::mem::size_of::<ResourceSpans>()
        + spans * std::mem::size_of::<wire::otlp::proto::trace::v1::Span>()
        + rs.encoded_len() * OTLP_DECODED_PER_ENCODED
}

impl Items for LogBatch {
    fn items(&self) -> usize {
        self.len()
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.capacity() - self.len()) * std::mem::size_of::<LogRecord>()
            + self.iter().map(LogRecord::size_bytes).sum::<usize>()
    }
}

impl Items for MetricBatch {
    fn items(&self) -> usize {
        self.len()
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.capacity() - self.len()) * std::mem::size_of::<MetricSample>()
            + self.iter().map(MetricSample::size_bytes).sum::<usize>()
    }
}

impl Items for TraceBatch {
    /// Spans, as the OTLP receivers count them.
    fn items(&self) -> usize {
        self.iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .map(|ss| ss.spans.len())
            .sum()
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.capacity() - self.len()) * std::mem::size_of::<ResourceSpans>()
            + self.iter().map(resource_spans_size).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_labels_count_once_per_batch_and_copy_on_write() {
        let labels = SharedLabels::from_iter((0..100).map(|i| (format!("l{i}"), "v".repeat(100))));
        let one = LogRecord {
            labels,
            line: "x".into(),
            ..Default::default()
        };
        let alone = one.size_bytes();
        assert!(alone > 100 * 100, "{alone}");
        let batch: LogBatch = vec![one; 1000];
        // The set is counted by share: once in all across the batch that holds it.
        let size = batch.size_bytes();
        assert!(
            size >= 100 * 100 + 1000 * std::mem::size_of::<LogRecord>(),
            "{size}"
        );
        assert!(size < 2 * (100 * 200) + 1000 * 200, "{size}");
        // A write copies the set, leaving the others' as it was.
        let mut batch = batch;
        batch[0].labels.insert("l0", "changed");
        assert_eq!(batch[0].labels.get("l0"), Some("changed"));
        assert_eq!(batch[1].labels.get("l0"), Some("v".repeat(100).as_str()));
        assert!(SharedLabels::ptr_eq(&batch[1].labels, &batch[2].labels));
    }

    #[test]
    fn label_cache_makes_one_set_per_input_and_values() {
        let a = SharedLabels::from_iter([("app", "a")]);
        let b = SharedLabels::from_iter([("app", "a")]); // equal, but another set
        let mut cache = LabelCache::default();
        let made = std::cell::Cell::new(0);
        let mut get = |input: &SharedLabels, v: Option<&str>| {
            cache.get(input, &[v], |l| {
                made.set(made.get() + 1);
                let mut l = l.clone();
                if let Some(v) = v {
                    l.insert("level", v);
                }
                l
            })
        };
        let x1 = get(&a, Some("info"));
        let x2 = get(&a, Some("info"));
        let y = get(&a, Some("error"));
        let z = get(&a, None);
        let w = get(&b, Some("info"));
        let x3 = get(&a, Some("info"));
        assert!(SharedLabels::ptr_eq(&x1, &x2) && SharedLabels::ptr_eq(&x1, &x3));
        assert_eq!(x1.to_loki_string(), r#"{app="a", level="info"}"#);
        assert_eq!(y.get("level"), Some("error"));
        assert_eq!(z.get("level"), None);
        assert_eq!(w, x1);
        assert!(!SharedLabels::ptr_eq(&w, &x1));
        assert_eq!(made.get(), 4);
        // Past the linear search, the index finds the same sets.
        let many: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
        let firsts: Vec<_> = many.iter().map(|v| get(&a, Some(v))).collect();
        for (v, first) in many.iter().zip(&firsts) {
            assert!(SharedLabels::ptr_eq(&get(&a, Some(v)), first));
        }
        assert!(SharedLabels::ptr_eq(&get(&a, Some("info")), &x1));
        assert_eq!(made.get(), 44);
    }

    #[test]
    fn per_set_rewrites_a_shared_set_once_and_a_lone_one_in_place() {
        let series = SharedLabels::from_iter([("__name__", "up"), ("job", "a")]);
        let lone = SharedLabels::from_iter([("__name__", "up"), ("job", "b")]);
        let lone_id = lone.id();
        let mut items = [series.clone(), series, lone];
        let mut per = PerSet::default();
        let calls = std::cell::Cell::new(0);
        let kept: Vec<bool> = items
            .iter_mut()
            .map(|l| {
                per.apply(l, |l| {
                    calls.set(calls.get() + 1);
                    l.insert("cluster", "c");
                    l.get("job") != Some("b") || l.len() < 10
                })
            })
            .collect();
        assert_eq!(kept, [true, true, true]);
        assert_eq!(
            calls.get(),
            2,
            "once for the shared set, once for the lone one"
        );
        assert!(SharedLabels::ptr_eq(&items[0], &items[1]));
        assert_eq!(items[0].get("cluster"), Some("c"));
        assert_eq!(items[2].id(), lone_id, "changed in place");
        assert_eq!(items[2].get("cluster"), Some("c"));
        // A drop decision is remembered for the set too.
        let dropped = SharedLabels::from_iter([("job", "x")]);
        let mut items = [dropped.clone(), dropped];
        let mut per = PerSet::default();
        assert!(!per.apply(&mut items[0], |_| false));
        assert!(!per.apply(&mut items[1], |_| unreachable!("decided once")));
    }

    #[test]
    fn sizes_grow_with_what_items_own() {
        let small = LogRecord {
            line: "x".into(),
            ..Default::default()
        };
        let big = LogRecord {
            labels: SharedLabels::from_iter([("app", "a".repeat(100))]),
            line: "y".repeat(10_000),
            structured_metadata: vec![("k".into(), "v".repeat(500))],
            fields: [("f".to_string(), "z".repeat(300))].into_iter().collect(),
            ..Default::default()
        };
        assert!(big.size_bytes() >= small.size_bytes() + 10_000 + 100 + 500 + 300);
        let alone = small.size_bytes() + big.size_bytes();
        let batch: LogBatch = vec![small, big];
        assert!(batch.size_bytes() >= alone);
        let s = MetricSample {
            labels: SharedLabels::from_iter([("__name__", "up"), ("job", "node")]),
            value: 1.0,
            timestamp_ms: 0,
        };
        assert!(s.size_bytes() > std::mem::size_of::<MetricSample>() + 10);
        let spans: TraceBatch = vec![ResourceSpans::default()];
        assert!(spans.size_bytes() >= std::mem::size_of::<ResourceSpans>());
    }
}
