//! Self-metrics: a small registry of counters, gauges and histograms rendered in the Prometheus
//! text format, and [`ComponentMetrics`], the handle every component counts through so that the
//! collector can account for every item: received = sent + discarded{reason} (+ in flight).
//!
//! One registry per running collector (not a process-global recorder), so several collectors can
//! run in one process, as tests and loadgen do. Besides the registered families, every rendering
//! carries `collector_build_info` and the `process_*` metrics the Prometheus client libraries
//! export, read from `/proc/self` (see [`process`]); the output passes `promtool check metrics`.
//!
//! Counters are declared before anything happens ([`ComponentMetrics::declare`]) so that every
//! known series shows 0 from the start, as Prometheus' own counters do: a rate over a counter
//! that appears at its first increment misses that increment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use wire::Signal;
use wire::exposition::{self, ExpoSample, MetricFamily, MetricKind};

type LabelSet = Vec<(String, String)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<LabelSet, Series>,
}

#[derive(Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A cumulative histogram with fixed bucket bounds.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram(Arc::new(HistogramInner {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }))
    }

    pub fn observe(&self, v: f64) {
        let h = &self.0;
        if let Some(i) = h.bounds.iter().position(|b| v <= *b) {
            h.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        let _ = h
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.0.sum_bits.load(Ordering::Relaxed))
    }
}

/// Buckets for durations in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets for batch sizes in items.
pub const SIZE_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0,
];

/// The metrics of one collector.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

impl Registry {
    /// A registry holding `collector_build_info`.
    pub fn new() -> Arc<Self> {
        let r = Registry::default();
        let mut labels = vec![("version", env!("CARGO_PKG_VERSION"))];
        if let Some(rev) = option_env!("COLLECTOR_REVISION") {
            labels.push(("revision", rev));
        }
        if let Some(rustc) = option_env!("COLLECTOR_RUSTC") {
            labels.push(("rustc", rustc));
        }
        r.gauge(
            "collector_build_info",
            "The collector's version, git revision and compiler; always 1.",
            &labels,
        )
        .set(1);
        Arc::new(r)
    }

    fn get_or_create(
        &self,
        name: &str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Series,
    ) -> Series {
        let mut families = self.families.lock();
        let fam = families.entry(name.to_string()).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        debug_assert!(fam.kind == kind, "metric {name} registered with two kinds");
        let key: LabelSet = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        fam.series.entry(key).or_insert_with(make).clone()
    }

    pub fn counter(&self, name: &str, help: &'static str, labels: &[(&str, &str)]) -> Counter {
        match self.get_or_create(name, help, Kind::Counter, labels, || {
            Series::Counter(Counter::default())
        }) {
            Series::Counter(c) => c,
            _ => Counter::default(), // a name reused with another kind: count into the void
        }
    }

    pub fn gauge(&self, name: &str, help: &'static str, labels: &[(&str, &str)]) -> Gauge {
        match self.get_or_create(name, help, Kind::Gauge, labels, || {
            Series::Gauge(Gauge::default())
        }) {
            Series::Gauge(g) => g,
            _ => Gauge::default(),
        }
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &'static str,
        labels: &[(&str, &str)],
        bounds: &'static [f64],
    ) -> Histogram {
        match self.get_or_create(name, help, Kind::Histogram, labels, || {
            Series::Histogram(Histogram::new(bounds))
        }) {
            Series::Histogram(h) => h,
            _ => Histogram::new(bounds),
        }
    }

    /// The sum of a counter family's series whose labels include all of `filter`.
    pub fn counter_sum(&self, name: &str, filter: &[(&str, &str)]) -> u64 {
        let families = self.families.lock();
        let Some(fam) = families.get(name) else {
            return 0;
        };
        fam.series
            .iter()
            .filter(|(labels, _)| {
                filter
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, s)| match s {
                Series::Counter(c) => c.get(),
                _ => 0,
            })
            .sum()
    }

    /// Renders every family, then the process metrics, in the Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut families = self.families();
        families.extend(process::families());
        exposition::encode(&families)
    }

    /// The registered families as exposition values, series in label order.
    fn families(&self) -> Vec<MetricFamily> {
        let families = self.families.lock();
        let mut out = Vec::with_capacity(families.len());
        for (name, fam) in families.iter() {
            let kind = match fam.kind {
                Kind::Counter => MetricKind::Counter,
                Kind::Gauge => MetricKind::Gauge,
                Kind::Histogram => MetricKind::Histogram,
            };
            let mut family = MetricFamily::new(name.as_str(), kind).with_help(fam.help);
            for (labels, series) in &fam.series {
                let sample = |suffix: &str, le: Option<String>, v: f64| {
                    let mut labels = labels.clone();
                    labels.extend(le.map(|le| ("le".to_string(), le)));
                    ExpoSample::new(format!("{name}{suffix}"), labels, v)
                };
                match series {
                    Series::Counter(c) => family.samples.push(sample("", None, c.get() as f64)),
                    Series::Gauge(g) => family.samples.push(sample("", None, g.get() as f64)),
                    Series::Histogram(h) => {
                        let mut cumulative = 0u64;
                        for (b, n) in h.0.bounds.iter().zip(&h.0.buckets) {
                            cumulative += n.load(Ordering::Relaxed);
                            let le = Some(b.to_string());
                            family
                                .samples
                                .push(sample("_bucket", le, cumulative as f64));
                        }
                        let count = h.count() as f64;
                        family.samples.extend([
                            sample("_bucket", Some("+Inf".into()), count),
                            sample("_sum", None, h.sum()),
                            sample("_count", None, count),
                        ]);
                    }
                }
            }
            out.push(family);
        }
        out
    }
}

/// What a component counts through. Names are the collector's own:
/// `collector_received_items_total`, `collector_sent_items_total`,
/// `collector_discarded_items_total{reason}`, `collector_retries_total`, `collector_queue_depth`, `collector_queue_bytes`,
/// `collector_batch_size_items`, `collector_request_duration_seconds`; every series carries
/// `component` (the config name) and `kind` (source, process, writer).
#[derive(Clone)]
pub struct ComponentMetrics {
    registry: Arc<Registry>,
    component: Arc<str>,
    kind: &'static str,
}

impl ComponentMetrics {
    pub fn new(registry: Arc<Registry>, component: &str, kind: &'static str) -> Self {
        ComponentMetrics {
            registry,
            component: component.into(),
            kind,
        }
    }

    pub fn component(&self) -> &str {
        &self.component
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn base(&self) -> [(&str, &str); 2] {
        [("component", &self.component), ("kind", self.kind)]
    }

    /// Makes the series of `signal` exist at 0: received, sent, and discarded for each of
    /// `reasons`.
    pub fn declare(&self, signal: Signal, reasons: &[&str]) {
        self.received(signal);
        self.sent(signal);
        for reason in reasons {
            self.discarded(signal, reason);
        }
    }

    /// Items that entered this component.
    pub fn received(&self, signal: Signal) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_received_items_total",
            "Items (log entries, samples, spans) a component received.",
            &[c, k, ("signal", signal.as_str())],
        )
    }

    /// Items this component passed on (a writer: that the backend acknowledged).
    pub fn sent(&self, signal: Signal) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_sent_items_total",
            "Items a component passed on; for a writer, items the backend acknowledged.",
            &[c, k, ("signal", signal.as_str())],
        )
    }

    /// Items this component dropped, and why.
    pub fn discarded(&self, signal: Signal, reason: &str) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_discarded_items_total",
            "Items a component dropped, by reason.",
            &[c, k, ("signal", signal.as_str()), ("reason", reason)],
        )
    }

    /// Requests a writer sent again.
    pub fn retries(&self) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_retries_total",
            "Requests a writer retried.",
            &[c, k],
        )
    }

    /// Items (log entries, samples, spans) waiting in this component's input queue.
    pub fn queue_depth(&self) -> Gauge {
        let [c, k] = self.base();
        self.registry.gauge(
            "collector_queue_depth",
            "Items (log entries, samples, spans) waiting in a component's input queue.",
            &[c, k],
        )
    }

    /// Estimated bytes held by this component's input queue (bounded by `queue_max_bytes`).
    pub fn queue_bytes(&self) -> Gauge {
        let [c, k] = self.base();
        self.registry.gauge(
            "collector_queue_bytes",
            "Estimated bytes a component's input queue holds; bounded by queue_max_bytes.",
            &[c, k],
        )
    }

    /// Bytes a receiver's requests hold now (bodies, decompressed bytes, decoded estimates).
    pub fn inflight_bytes(&self) -> Gauge {
        let [c, k] = self.base();
        self.registry.gauge(
            "collector_receiver_inflight_bytes",
            "Bytes a receiver's requests hold now: bodies, decompressed bytes, decoded estimates.",
            &[c, k],
        )
    }

    /// The most bytes a receiver's requests held at once (bounded by `max_inflight_bytes`).
    pub fn inflight_bytes_max(&self) -> Gauge {
        let [c, k] = self.base();
        self.registry.gauge(
            "collector_receiver_inflight_bytes_max",
            "The most bytes a receiver's requests held at once (at most max_inflight_bytes).",
            &[c, k],
        )
    }

    /// Requests a receiver refused for their credentials, by reason (`missing`, `malformed`,
    /// `bad_credentials`, `tenant_mismatch`).
    pub fn auth_failures(&self, reason: &str) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_receiver_auth_failures_total",
            "Requests a receiver refused for their credentials (401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED), by reason.",
            &[c, k, ("reason", reason)],
        )
    }

    /// TLS handshakes a receiver's clients failed (an untrusted certificate, no client
    /// certificate under mTLS, plain HTTP on a TLS port).
    pub fn tls_handshake_failures(&self) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_receiver_tls_handshake_failures_total",
            "TLS handshakes a receiver's clients failed or did not finish.",
            &[c, k],
        )
    }

    /// Bytes a writer's disk buffer holds on disk (bounded by its `max_size`).
    pub fn buffer_bytes(&self) -> Gauge {
        let [c, k] = self.base();
        self.registry.gauge(
            "collector_buffer_bytes",
            "Bytes a writer's disk buffer holds (records not yet delivered); bounded by max_size.",
            &[c, k],
        )
    }

    /// Records (batches) a writer's disk buffer holds that the backend has not answered for.
    pub fn buffer_records(&self) -> Gauge {
        let [c, k] = self.base();
        self.registry.gauge(
            "collector_buffer_records",
            "Records (batches) in a writer's disk buffer not yet delivered.",
            &[c, k],
        )
    }

    /// Records a disk buffer found damaged (checksum, length, order) and skipped.
    pub fn buffer_corrupt_records(&self) -> Counter {
        let [c, k] = self.base();
        self.registry.counter(
            "collector_buffer_corrupt_records_total",
            "Records a writer's disk buffer found damaged (checksum, length, sequence) and skipped.",
            &[c, k],
        )
    }

    /// Items per batch sent.
    pub fn batch_size(&self, signal: Signal) -> Histogram {
        let [c, k] = self.base();
        self.registry.histogram(
            "collector_batch_size_items",
            "Items per batch a writer sent.",
            &[c, k, ("signal", signal.as_str())],
            SIZE_BUCKETS,
        )
    }

    /// Duration of requests to a backend, by outcome (`2xx`, `4xx`, `5xx`, `error`).
    pub fn request_duration(&self, outcome: &str) -> Histogram {
        let [c, k] = self.base();
        self.registry.histogram(
            "collector_request_duration_seconds",
            "Duration of a writer's requests to its backend, by outcome.",
            &[c, k, ("outcome", outcome)],
            DURATION_BUCKETS,
        )
    }
}

/// The `process_*` metrics of the Prometheus client libraries (Go's `procfs` collector), read
/// from `/proc/self`; on a system without `/proc` nothing is written.
pub mod process {
    use wire::exposition::{MetricFamily, MetricKind};

    /// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI; what the
    /// Go client assumes too).
    const USER_HZ: f64 = 100.0;

    /// What `/proc/self` says; `None` fields are left out.
    #[derive(Debug, Default, PartialEq)]
    pub struct Stats {
        pub cpu_seconds: Option<f64>,
        pub resident_bytes: Option<f64>,
        pub virtual_bytes: Option<f64>,
        pub open_fds: Option<f64>,
        pub max_fds: Option<f64>,
        pub start_time_seconds: Option<f64>,
    }

    /// Reads the current process' figures.
    pub fn read() -> Stats {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields = stat_fields(&stat);
        let field = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
        let btime = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        Stats {
            // Fields numbered as in proc(5): utime 14, stime 15, starttime 22, vsize 23.
            cpu_seconds: field(14).zip(field(15)).map(|(u, s)| (u + s) / USER_HZ),
            resident_bytes: status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| kb * 1024.0),
            virtual_bytes: field(23),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as f64),
            max_fds: limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<f64>().ok()),
            start_time_seconds: field(22).zip(btime).map(|(t, b)| b + t / USER_HZ),
        }
    }

    /// `/proc/<pid>/stat` split so that index n is field n of proc(5) (index 0 unused): the
    /// command name (field 2) is in parentheses and may hold spaces.
    fn stat_fields(stat: &str) -> Vec<&str> {
        let Some(close) = stat.rfind(')') else {
            return Vec::new();
        };
        let mut fields = vec![
            "",
            stat[..close].split_whitespace().next().unwrap_or(""),
            "",
        ];
        fields.extend(stat[close + 1..].split_whitespace());
        fields
    }

    /// The families, with HELP and TYPE as the Go client writes them; those `/proc` could not
    /// tell are left out.
    pub fn families() -> Vec<MetricFamily> {
        let s = read();
        let families: [(&str, MetricKind, &str, Option<f64>); 6] = [
            (
                "process_cpu_seconds_total",
                MetricKind::Counter,
                "Total user and system CPU time spent in seconds.",
                s.cpu_seconds,
            ),
            (
                "process_max_fds",
                MetricKind::Gauge,
                "Maximum number of open file descriptors.",
                s.max_fds,
            ),
            (
                "process_open_fds",
                MetricKind::Gauge,
                "Number of open file descriptors.",
                s.open_fds,
            ),
            (
                "process_resident_memory_bytes",
                MetricKind::Gauge,
                "Resident memory size in bytes.",
                s.resident_bytes,
            ),
            (
                "process_start_time_seconds",
                MetricKind::Gauge,
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
            (
                "process_virtual_memory_bytes",
                MetricKind::Gauge,
                "Virtual memory size in bytes.",
                s.virtual_bytes,
            ),
        ];
        families
            .into_iter()
            .filter_map(|(name, kind, help, value)| {
                value.map(|v| {
                    MetricFamily::new(name, kind)
                        .with_help(help)
                        .with_sample(&[], v)
                })
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_fields_survive_spaces_and_parentheses_in_the_name() {
            let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5000 1048576 300";
            let f = stat_fields(stat);
            assert_eq!(f[1], "42");
            assert_eq!(f[3], "S");
            assert_eq!(
                (f[14], f[15], f[22], f[23]),
                ("250", "50", "5000", "1048576")
            );
        }

        #[test]
        fn this_process_is_measured() {
            let s = read();
            if std::path::Path::new("/proc/self/stat").exists() {
                assert!(s.resident_bytes.unwrap() > 0.0);
                assert!(s.virtual_bytes.unwrap() >= s.resident_bytes.unwrap());
                assert!(s.open_fds.unwrap() >= 1.0);
                assert!(s.max_fds.unwrap() >= s.open_fds.unwrap());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                let start = s.start_time_seconds.unwrap();
                assert!(
                    start <= now + 1.0 && start > now - 86_400.0 * 365.0,
                    "{start}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_sums() {
        let r = Registry::new();
        let m = ComponentMetrics::new(r.clone(), "tail", "source");
        m.received(Signal::Logs).add(5);
        m.discarded(Signal::Logs, "too_old").add(2);
        m.discarded(Signal::Logs, "bad").add(1);
        m.request_duration("2xx").observe(0.003);
        let text = r.render();
        assert!(text.contains(
            "collector_received_items_total{component=\"tail\",kind=\"source\",signal=\"logs\"} 5"
        ));
        assert!(text.contains("collector_request_duration_seconds_bucket{component=\"tail\",kind=\"source\",outcome=\"2xx\",le=\"0.005\"} 1"));
        assert!(text.contains("# TYPE collector_discarded_items_total counter"));
        assert_eq!(
            r.counter_sum("collector_discarded_items_total", &[("component", "tail")]),
            3
        );
        // The text parses as the exposition format.
        let fams = wire::exposition::parse(&text).expect("valid exposition text");
        assert!(
            fams.iter()
                .any(|f| f.name == "collector_request_duration_seconds")
        );
    }
}
