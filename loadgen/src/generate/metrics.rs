//! Metrics like each device type's exporter exposes them: the state (monotonic counters,
//! gauges, cumulative histograms) advanced by the time since the previous scrape, and a
//! [`Scrape`] that renders it as Prometheus text exposition (for `/metrics`) or as remote-write
//! series. Every sample carries the device's labels; `problem` mode shifts the distributions.
//! The names, labels and meanings are listed in `METRICS_REFERENCE.md`.

use rand::rngs::StdRng;
use wire::exposition::{ExpoSample, MetricFamily, MetricKind};
use wire::remote_write::TimeSeries;

use super::sample::{by_mode, chance, lognormal, normal, poisson, weighted};
use crate::canary;
use crate::fleet::DeviceType;

/// One scrape of a device: families in exposition order.
#[derive(Clone, Debug, PartialEq)]
pub struct Scrape {
    pub families: Vec<MetricFamily>,
    /// The scrape time, ms since the epoch (samples without their own timestamp get it).
    pub timestamp_ms: i64,
}

impl Scrape {
    /// Remote-write series: labels sorted, `__name__` included, one sample each.
    pub fn series(&self) -> Vec<TimeSeries> {
        wire::exposition::to_remote_write(&self.families, self.timestamp_ms).timeseries
    }

    /// Prometheus text exposition 0.0.4.
    pub fn text(&self) -> String {
        wire::exposition::encode(&self.families)
    }
}

/// A cumulative histogram with fixed bucket bounds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
    }
}

/// Builds families with the device's labels on every sample.
struct Families<'a> {
    base: &'a [(String, String)],
    out: Vec<MetricFamily>,
}

impl Families<'_> {
    fn sample(
        &mut self,
        family: &str,
        kind: MetricKind,
        help: &str,
        name: &str,
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let mut labels = self.base.to_vec();
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let sample = ExpoSample::new(name, labels, value);
        match self.out.last_mut() {
            Some(f) if f.name == family => f.samples.push(sample),
            _ => {
                let mut f = MetricFamily::new(family, kind);
                f.help = Some(help.to_string());
                f.samples.push(sample);
                self.out.push(f);
            }
        }
    }

    fn counter(&mut self, name: &str, help: &str, extra: &[(&str, &str)], value: f64) {
        self.sample(name, MetricKind::Counter, help, name, extra, value);
    }

    fn gauge(&mut self, name: &str, help: &str, extra: &[(&str, &str)], value: f64) {
        self.sample(name, MetricKind::Gauge, help, name, extra, value);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        let kind = MetricKind::Histogram;
        let mut cumulative = 0;
        for (i, c) in h.counts.iter().enumerate() {
            cumulative += c;
            let le = h
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let bucket = format!("{name}_bucket");
            self.sample(name, kind, help, &bucket, &[("le", &le)], cumulative as f64);
        }
        let sum = format!("{name}_sum");
        self.sample(name, kind, help, &sum, &[], h.sum);
        let count = format!("{name}_count");
        self.sample(name, kind, help, &count, &[], cumulative as f64);
    }
}

const POS_DURATION_BUCKETS: &[f64] = &[0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 30.0];
const PROBE_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
const PAYMENT_FAILURE_REASONS: [&str; 3] = ["declined", "timeout", "network"];
const ROUTER_INTERFACES: &[&str] = &["wan0", "wan1", "lan0"];
const SWITCH_INTERFACES: &[&str] = &["uplink", "port1", "port2", "port3", "port4", "port5"];
const CPU_MODES: [&str; 4] = ["user", "system", "iowait", "idle"];
const SERVER_CPUS: usize = 4;
const SERVER_MEMORY_BYTES: f64 = 16.0 * 1024.0 * 1024.0 * 1024.0;
/// Mountpoint and size in bytes.
const SERVER_FILESYSTEMS: [(&str, f64); 2] = [("/", 100e9), ("/var", 400e9)];

/// A POS terminal: a till with card reader, scanner and receipt printer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PosState {
    transactions: f64,
    duration: Histogram,
    payment_failures: [f64; 3],
    printer_ok: bool,
    paper: f64,
    scanner_errors: f64,
}

/// One network interface.
#[derive(Clone, Debug, PartialEq)]
struct Interface {
    name: &'static str,
    in_bytes: f64,
    out_bytes: f64,
    in_errors: f64,
    out_errors: f64,
    up: bool,
}

/// A router or a switch: interfaces, loss and latency to its upstream.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NetState {
    interfaces: Vec<Interface>,
    /// Typical throughput per interface, bytes/s.
    bandwidth: f64,
    /// Typical round trip to the upstream, s.
    base_latency: f64,
    loss: f64,
    latency: f64,
    probes: Histogram,
}

/// A back-office server (node-exporter names).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServerState {
    /// Per CPU, per mode (order of [`CPU_MODES`]).
    cpu: [[f64; 4]; SERVER_CPUS],
    mem_available: f64,
    fs_free: [f64; 2],
    load: [f64; 3],
}

/// A generic in-store device (a sensor gateway, a kiosk, a price-label controller).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CustomState {
    requests: f64,
    errors: f64,
    queue: f64,
    temperature: f64,
    up: bool,
}

/// The metric state of one device, by type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MetricState {
    Pos(PosState),
    Net(NetState),
    Server(ServerState),
    Custom(CustomState),
}

impl MetricState {
    pub(crate) fn new(t: DeviceType, rng: &mut StdRng) -> Self {
        match t {
            DeviceType::Pos => MetricState::Pos(PosState {
                transactions: 0.0,
                duration: Histogram::new(POS_DURATION_BUCKETS),
                payment_failures: [0.0; 3],
                printer_ok: true,
                paper: normal(rng, 0.7, 0.2).clamp(0.05, 1.0),
                scanner_errors: 0.0,
            }),
            DeviceType::Router => MetricState::Net(NetState::new(ROUTER_INTERFACES, 2e6, 0.012)),
            DeviceType::Switch => MetricState::Net(NetState::new(SWITCH_INTERFACES, 5e5, 0.0008)),
            DeviceType::Server => MetricState::Server(ServerState {
                cpu: [[0.0; 4]; SERVER_CPUS],
                mem_available: SERVER_MEMORY_BYTES * 0.6,
                fs_free: SERVER_FILESYSTEMS.map(|(_, size)| size * normal(rng, 0.6, 0.1)),
                load: [0.0; 3],
            }),
            DeviceType::Custom => MetricState::Custom(CustomState {
                requests: 0.0,
                errors: 0.0,
                queue: 0.0,
                temperature: normal(rng, 35.0, 3.0),
                up: true,
            }),
        }
    }

    /// Moves the state on by `dt` seconds.
    pub(crate) fn advance(&mut self, rng: &mut StdRng, dt: f64, problem: bool) {
        match self {
            MetricState::Pos(s) => s.advance(rng, dt, problem),
            MetricState::Net(s) => s.advance(rng, dt, problem),
            MetricState::Server(s) => s.advance(rng, dt, problem),
            MetricState::Custom(s) => s.advance(rng, dt, problem),
        }
    }

    /// The families of the current state, each sample labelled with `labels` first.
    pub(crate) fn families(&self, labels: &[(String, String)]) -> Vec<MetricFamily> {
        let mut f = Families {
            base: labels,
            out: Vec::new(),
        };
        match self {
            MetricState::Pos(s) => s.render(&mut f),
            MetricState::Net(s) => s.render(&mut f),
            MetricState::Server(s) => s.render(&mut f),
            MetricState::Custom(s) => s.render(&mut f),
        }
        f.out
    }
}

/// The canary family: `loadgen_canary_seq` = seq, stamped with the send time, labelled with the
/// device's labels and its run.
pub(crate) fn canary_family(
    labels: &[(String, String)],
    seq: u64,
    sent_ms: i64,
    run: u32,
) -> MetricFamily {
    let mut f = MetricFamily::new(canary::METRIC_NAME, MetricKind::Gauge);
    f.help = Some(
        "loadgen canary: the device's metric sequence number, stamped with the send time.".into(),
    );
    let mut labels = labels.to_vec();
    labels.push((canary::RUN_LABEL.to_string(), canary::run_tag(run)));
    let mut s = ExpoSample::new(canary::METRIC_NAME, labels, seq as f64);
    s.timestamp_ms = Some(sent_ms);
    f.samples.push(s);
    f
}

impl PosState {
    fn advance(&mut self, rng: &mut StdRng, dt: f64, problem: bool) {
        let n = poisson(
            rng,
            dt * super::Rates::for_type(DeviceType::Pos).checkouts_per_s,
        );
        let fail_p = by_mode(problem, 0.01, 0.08);
        // Problem terminals fail more on the network side than at the bank.
        let reason_weights = if problem {
            [0.3, 0.4, 0.3]
        } else {
            [0.8, 0.15, 0.05]
        };
        for _ in 0..n {
            self.transactions += 1.0;
            let median = by_mode(problem, 1.8, 4.5);
            self.duration.observe(lognormal(rng, median, 0.5));
            if chance(rng, fail_p) {
                let i = weighted(rng, &reason_weights);
                self.payment_failures[i] += 1.0;
            }
        }
        self.scanner_errors += poisson(rng, dt * by_mode(problem, 0.0005, 0.01)) as f64;
        self.printer_ok = !chance(rng, by_mode(problem, 0.01, 0.3));
        self.paper -= n as f64 * 0.002;
        if self.paper < 0.05 || chance(rng, 0.001 * dt) {
            self.paper = 1.0;
        }
    }

    fn render(&self, f: &mut Families<'_>) {
        f.counter(
            "pos_transactions_total",
            "Checkouts completed (paid or failed).",
            &[],
            self.transactions,
        );
        f.histogram(
            "pos_transaction_duration_seconds",
            "Time from payment start to receipt.",
            &self.duration,
        );
        for (reason, v) in PAYMENT_FAILURE_REASONS.iter().zip(self.payment_failures) {
            f.counter(
                "pos_payment_failures_total",
                "Payments that failed, by reason.",
                &[("reason", reason)],
                v,
            );
        }
        f.gauge(
            "pos_printer_status",
            "Receipt printer: 1 ready, 0 fault.",
            &[],
            f64::from(u8::from(self.printer_ok)),
        );
        f.gauge(
            "pos_printer_paper_ratio",
            "Receipt paper left, 0..1.",
            &[],
            self.paper,
        );
        f.counter(
            "pos_scanner_errors_total",
            "Barcode scanner read errors.",
            &[],
            self.scanner_errors,
        );
    }
}

impl NetState {
    fn new(names: &[&'static str], bandwidth: f64, base_latency: f64) -> Self {
        NetState {
            interfaces: names
                .iter()
                .map(|name| Interface {
                    name,
                    in_bytes: 0.0,
                    out_bytes: 0.0,
                    in_errors: 0.0,
                    out_errors: 0.0,
                    up: true,
                })
                .collect(),
            bandwidth,
            base_latency,
            loss: 0.0,
            latency: base_latency,
            probes: Histogram::new(PROBE_BUCKETS),
        }
    }

    fn advance(&mut self, rng: &mut StdRng, dt: f64, problem: bool) {
        let err_rate = by_mode(problem, 0.001, 0.2);
        for i in self.interfaces.iter_mut() {
            i.up = !chance(rng, by_mode(problem, 0.0005, 0.1));
            if !i.up {
                continue;
            }
            i.in_bytes += (lognormal(rng, self.bandwidth, 0.6) * dt).round();
            i.out_bytes += (lognormal(rng, self.bandwidth * 0.4, 0.6) * dt).round();
            i.in_errors += poisson(rng, err_rate * dt) as f64;
            i.out_errors += poisson(rng, err_rate * 0.3 * dt) as f64;
        }
        self.loss = by_mode(
            problem,
            lognormal(rng, 0.0005, 0.5),
            lognormal(rng, 0.04, 0.6),
        )
        .clamp(0.0, 1.0);
        let median = self.base_latency * by_mode(problem, 1.0, 8.0);
        // One probe every 5 s.
        let probes = (dt / 5.0).round().max(1.0) as usize;
        for _ in 0..probes {
            self.latency = lognormal(rng, median, by_mode(problem, 0.3, 0.7));
            self.probes.observe(self.latency);
        }
    }

    fn render(&self, f: &mut Families<'_>) {
        let iface = |i: &Interface| i.name;
        for i in &self.interfaces {
            f.counter(
                "net_interface_in_bytes_total",
                "Bytes received on the interface.",
                &[("interface", iface(i))],
                i.in_bytes,
            );
        }
        for i in &self.interfaces {
            f.counter(
                "net_interface_out_bytes_total",
                "Bytes sent on the interface.",
                &[("interface", iface(i))],
                i.out_bytes,
            );
        }
        for i in &self.interfaces {
            for (direction, v) in [("in", i.in_errors), ("out", i.out_errors)] {
                f.counter(
                    "net_interface_errors_total",
                    "Interface errors (CRC, drops), by direction.",
                    &[("direction", direction), ("interface", iface(i))],
                    v,
                );
            }
        }
        for i in &self.interfaces {
            f.gauge(
                "net_interface_up",
                "Link state: 1 up, 0 down.",
                &[("interface", iface(i))],
                f64::from(u8::from(i.up)),
            );
        }
        f.gauge(
            "net_packet_loss_ratio",
            "Share of probe packets to the upstream lost, 0..1.",
            &[],
            self.loss,
        );
        f.gauge(
            "net_latency_seconds",
            "Round trip of the last probe to the upstream.",
            &[],
            self.latency,
        );
        f.histogram(
            "net_probe_duration_seconds",
            "Round trips of the probes to the upstream.",
            &self.probes,
        );
    }
}

impl ServerState {
    fn advance(&mut self, rng: &mut StdRng, dt: f64, problem: bool) {
        let mut busy_total = 0.0;
        for cpu in self.cpu.iter_mut() {
            let busy =
                by_mode(problem, normal(rng, 0.25, 0.08), normal(rng, 0.93, 0.04)).clamp(0.01, 1.0);
            busy_total += busy;
            let shares = [0.7 * busy, 0.25 * busy, 0.05 * busy, 1.0 - busy];
            for (acc, share) in cpu.iter_mut().zip(shares) {
                *acc += share * dt;
            }
        }
        let avail = by_mode(problem, normal(rng, 0.6, 0.05), normal(rng, 0.06, 0.02));
        self.mem_available = SERVER_MEMORY_BYTES * avail.clamp(0.01, 0.95);
        let fill_rate = by_mode(problem, 2e3, 2e5);
        for (free, (_, size)) in self.fs_free.iter_mut().zip(SERVER_FILESYSTEMS) {
            *free = (*free - lognormal(rng, fill_rate, 0.5) * dt).clamp(size * 0.01, size);
        }
        let running = busy_total + by_mode(problem, 0.0, normal(rng, 3.0, 1.0).max(0.0));
        // Exponentially damped like the kernel's, over 1, 5 and 15 minutes.
        for (load, window) in self.load.iter_mut().zip([60.0, 300.0, 900.0]) {
            let a = (-dt / window).exp();
            *load = *load * a + running * (1.0 - a);
        }
    }

    fn render(&self, f: &mut Families<'_>) {
        for (n, modes) in self.cpu.iter().enumerate() {
            let cpu = n.to_string();
            for (mode, v) in CPU_MODES.iter().zip(modes) {
                f.counter(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    &[("cpu", &cpu), ("mode", mode)],
                    *v,
                );
            }
        }
        f.gauge(
            "node_memory_MemTotal_bytes",
            "Memory total in bytes.",
            &[],
            SERVER_MEMORY_BYTES,
        );
        f.gauge(
            "node_memory_MemAvailable_bytes",
            "Memory available in bytes.",
            &[],
            self.mem_available,
        );
        for (mountpoint, size) in SERVER_FILESYSTEMS {
            f.gauge(
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                &[("mountpoint", mountpoint)],
                size,
            );
        }
        for ((mountpoint, _), free) in SERVER_FILESYSTEMS.iter().zip(self.fs_free) {
            f.gauge(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                &[("mountpoint", mountpoint)],
                free.round(),
            );
        }
        for (name, v) in ["node_load1", "node_load5", "node_load15"]
            .iter()
            .zip(self.load)
        {
            f.gauge(name, "Load average.", &[], v);
        }
    }
}

impl CustomState {
    fn advance(&mut self, rng: &mut StdRng, dt: f64, problem: bool) {
        let n = poisson(rng, 2.0 * dt);
        self.requests += n as f64;
        let mut errors = 0;
        for _ in 0..n {
            errors += u64::from(chance(rng, by_mode(problem, 0.005, 0.1)));
        }
        self.errors += errors as f64;
        let q = by_mode(problem, 2.0, 40.0);
        self.queue = poisson(rng, q) as f64;
        let target = by_mode(problem, 35.0, 62.0);
        self.temperature += (target - self.temperature) * 0.2 + normal(rng, 0.0, 0.5);
        self.up = !chance(rng, by_mode(problem, 0.0, 0.05));
    }

    fn render(&self, f: &mut Families<'_>) {
        f.counter(
            "custom_requests_total",
            "Requests the device handled.",
            &[],
            self.requests,
        );
        f.counter(
            "custom_errors_total",
            "Requests that failed.",
            &[],
            self.errors,
        );
        f.gauge("custom_queue_depth", "Work items waiting.", &[], self.queue);
        f.gauge(
            "custom_temperature_celsius",
            "Device temperature.",
            &[],
            self.temperature,
        );
        f.gauge(
            "custom_up",
            "1 when the device's service is up.",
            &[],
            f64::from(u8::from(self.up)),
        );
    }
}
