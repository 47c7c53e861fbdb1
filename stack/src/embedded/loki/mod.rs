//! Embedded Loki: Loki's push and query HTTP APIs over an in-memory, per-tenant store.
//!
//! | module | role |
//! |---|---|
//! | this file | [`LokiConfig`], the shared state [`Loki`], push validation as Loki's distributor does it, eviction, self-metrics |
//! | [`detect`] | the `service_name` label and `detected_level` metadata Loki 3 adds on push |
//! | [`store`] | streams and entries of one tenant |
//! | [`logql`] | the LogQL subset: lexer, parser, evaluator |
//! | [`api`] | HTTP handlers, parameter parsing and response JSON as Loki writes them |
//!
//! Tenancy: `X-Scope-OrgID` names the tenant (as Loki with `auth_enabled: true`); without it the
//! tenant is `fake`, Loki's single-tenant id. Memory is bounded by `retention_bytes`: past it the
//! oldest entries (by timestamp, across tenants) are evicted and counted on `/metrics`.

pub mod api;
pub mod detect;
pub mod logql;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use parking_lot::{Mutex, RwLock};

use super::EmbeddedConfig;
use super::limits::{LokiLimits, RateLimit, TenantLimiter};
use super::metrics::{Counter, single_samples};
use store::{Labels, StoredEntry, Stream, Tenant};
use wire::exposition::{MetricFamily, MetricKind};
pub(crate) use wire::time::now_ns;

/// Loki's tenant id when none is given.
pub const DEFAULT_TENANT: &str = "fake";

/// Settings of the embedded Loki.
#[derive(Clone, Debug)]
pub struct LokiConfig {
    /// Bytes of log data kept (lines, metadata and a per-entry overhead) before the oldest is evicted.
    pub retention_bytes: usize,
    /// Loki's `max_line_size`: longer lines are refused (0 disables).
    pub max_line_size: usize,
    /// Largest decompressed push body.
    pub max_decompressed_bytes: usize,
    /// Largest push body as sent; larger gets 413.
    pub max_body_bytes: usize,
    /// Loki's validation and stream limits (label count and lengths, the accepted time window,
    /// `max_global_streams_per_user`); Loki's defaults unless changed.
    pub limits: LokiLimits,
    /// Loki's `max_entries_limit_per_query` (default 5000).
    pub max_entries_limit_per_query: usize,
    /// Loki's `discover_service_name`: labels a missing `service_name` is taken from, in order
    /// (else `unknown_service`); empty turns the discovery off.
    pub discover_service_name: Vec<String>,
    /// Loki's `discover_log_levels`: add `detected_level` structured metadata on push.
    pub discover_log_levels: bool,
    /// Loki's `ingestion_rate_mb` and `ingestion_burst_size_mb`, in bytes: a push over it is
    /// refused whole with 429 (none by default).
    pub ingestion_rate: Option<RateLimit>,
}

impl From<&EmbeddedConfig> for LokiConfig {
    fn from(c: &EmbeddedConfig) -> Self {
        LokiConfig {
            retention_bytes: c.retention_bytes,
            max_line_size: c.max_line_size,
            max_decompressed_bytes: c.max_decompressed_bytes,
            max_body_bytes: c.max_body_bytes,
            limits: c.loki_limits,
            max_entries_limit_per_query: 5000,
            discover_service_name: if c.loki_discover_service_name {
                detect::DEFAULT_SERVICE_NAME_LABELS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                Vec::new()
            },
            discover_log_levels: c.loki_discover_log_levels,
            ingestion_rate: c.limits.loki_bytes,
        }
    }
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig::from(&EmbeddedConfig::default())
    }
}

/// Why a request failed; each maps to Loki's status code and message.
#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    /// Push validation (Loki's distributor): 400, valid parts of the push are still stored.
    #[error("{0}")]
    Validation(String),
    /// Undecodable push body: 400.
    #[error("{0}")]
    Decode(#[from] wire::WireError),
    /// A bad query or parameter: 400.
    #[error("{0}")]
    BadRequest(String),
    /// A LogQL parse error, or LogQL outside the embedded subset: 400.
    #[error("{0}")]
    Query(#[from] logql::ParseError),
    /// Over the tenant's ingestion rate: 429 with `Retry-After`, nothing of the push stored.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// A new stream over `max_global_streams_per_user` (Loki's ingester): 429, no
    /// `Retry-After`; the other streams of the push are stored.
    #[error("{0}")]
    StreamLimit(String),
}

/// Discarded (samples, bytes) by (reason, tenant).
type Discards = BTreeMap<(&'static str, String), (u64, u64)>;

/// Counters shown on `/metrics`.
#[derive(Debug, Default)]
struct Metrics {
    ingested_entries: Counter,
    ingested_bytes: Counter,
    duplicate_entries: Counter,
    evicted_entries: Counter,
    evicted_bytes: Counter,
    /// (reason, tenant) -> (samples, bytes)
    discarded: Mutex<Discards>,
    /// (route, status) -> count
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

/// The embedded Loki's state.
pub struct Loki {
    pub config: LokiConfig,
    tenants: RwLock<HashMap<String, Arc<Mutex<Tenant>>>>,
    stored_bytes: AtomicUsize,
    evicting: Mutex<()>,
    metrics: Metrics,
    limiter: Option<TenantLimiter>,
}

/// Loki's discard reasons (the `reason` label of `loki_discarded_samples_total`).
mod reason {
    pub const INVALID_LABELS: &str = "invalid_labels";
    pub const MISSING_LABELS: &str = "missing_labels";
    pub const DUPLICATE_LABEL_NAMES: &str = "duplicate_label_names";
    pub const MAX_LABEL_NAMES: &str = "max_label_names_per_series";
    pub const LABEL_NAME_TOO_LONG: &str = "label_name_too_long";
    pub const LABEL_VALUE_TOO_LONG: &str = "label_value_too_long";
    pub const STREAM_LIMIT: &str = "stream_limit";
    pub const LINE_TOO_LONG: &str = "line_too_long";
    pub const TOO_OLD: &str = "greater_than_max_sample_age";
    pub const TOO_NEW: &str = "too_far_in_future";
    pub const RATE_LIMITED: &str = "rate_limited";
}

/// A time as Go's `time.Time` prints with RFC3339 (what Loki's messages show).
fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A validated stream, ready to store.
struct Prepared {
    key: String,
    labels: Labels,
    entries: Vec<StoredEntry>,
}

impl Loki {
    pub fn new(config: LokiConfig) -> Arc<Self> {
        Arc::new(Loki {
            limiter: super::limits::limiter(config.ingestion_rate),
            config,
            tenants: RwLock::new(HashMap::new()),
            stored_bytes: AtomicUsize::new(0),
            evicting: Mutex::new(()),
            metrics: Metrics::default(),
        })
    }

    /// Stores a push for `tenant`, validating it as Loki's distributor does: streams without
    /// entries are skipped; a stream with bad labels, or an entry over `max_line_size`, is refused
    /// and counted as discarded while the rest of the push is stored; all refusals are reported
    /// together in one [`LokiError::Validation`], unless the ingester step refused the last
    /// stream over the tenant's stream limit ([`LokiError::StreamLimit`], 429).
    pub fn ingest(&self, tenant: &str, req: wire::loki::PushRequest) -> Result<(), LokiError> {
        let mut errors: Vec<String> = Vec::new();
        let mut prepared = Vec::with_capacity(req.streams.len());
        for stream in req.streams {
            if stream.entries.is_empty() {
                continue;
            }
            match self.validate_labels(&stream.labels) {
                Ok((key, labels)) => prepared.push(self.prepare_entries(
                    tenant,
                    key,
                    labels,
                    stream.entries,
                    &mut errors,
                )),
                Err((reason, msg)) => {
                    let bytes = stream.entries.iter().map(entry_bytes).sum();
                    self.discard(reason, tenant, stream.entries.len() as u64, bytes);
                    errors.push(msg);
                }
            }
        }
        // As Loki's distributor: validation first, then the rate limit on what passed it
        // (line and structured-metadata bytes); over the limit the whole push is discarded and
        // the validation errors are not reported.
        if let Some(limiter) = &self.limiter {
            let (lines, bytes) = prepared
                .iter()
                .flat_map(|p| &p.entries)
                .fold((0u64, 0u64), |(n, b), e| (n + 1, b + validated_bytes(e)));
            if let Err(refused) = limiter.allow(tenant, bytes) {
                self.discard(reason::RATE_LIMITED, tenant, lines, bytes);
                return Err(LokiError::RateLimited {
                    message: super::limits::loki_message(tenant, refused.limit, lines, bytes),
                    retry_after_s: refused.retry_after_s,
                });
            }
        }
        // Loki's ingester answers a refused stream with 429, which wins over the validation
        // errors (the distributor returns the ingester's error first).
        if let Some(message) = self.store(tenant, prepared) {
            return Err(LokiError::StreamLimit(message));
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(LokiError::Validation(wire::loki::errors::grouped(&errors))),
        }
    }

    /// Parses and checks a stream's labels; returns its key and sorted labels, or the discard
    /// reason and Loki's message.
    fn validate_labels(&self, raw: &str) -> Result<(String, Labels), (&'static str, String)> {
        let mut labels = match wire::labels::parse_label_set(raw) {
            Ok(l) => l,
            Err(wire::labels::LabelError::Duplicate(name)) => {
                return Err((
                    reason::DUPLICATE_LABEL_NAMES,
                    format!("stream '{raw}' has duplicate label name: '{name}'"),
                ));
            }
            Err(e) => {
                return Err((
                    reason::INVALID_LABELS,
                    format!("Error parsing labels '{raw}' with error: {e}"),
                ));
            }
        };
        // Loki drops labels with empty values.
        labels.retain(|(_, v)| !v.is_empty());
        // Loki's push parser adds service_name before validating, so with discovery on even a
        // stream without labels (`{}`) is stored, as `{service_name="unknown_service"}`.
        detect::add_service_name(&mut labels, &self.config.discover_service_name);
        if labels.is_empty() {
            return Err((
                reason::MISSING_LABELS,
                "error at least one label pair is required per stream".to_string(),
            ));
        }
        let key = wire::labels::format_label_set(&labels);
        let limits = &self.config.limits;
        let max = limits.max_label_names_per_series;
        // service_name does not count: Loki's infrastructure adds it.
        let names =
            labels.len() - usize::from(labels.iter().any(|(k, _)| k == detect::SERVICE_NAME));
        if max > 0 && names > max {
            return Err((
                reason::MAX_LABEL_NAMES,
                format!("entry for stream '{key}' has {names} label names; limit {max}"),
            ));
        }
        // Then each label in name order, as Loki's `ValidateLabels`.
        let (max_name, max_value) = (limits.max_label_name_length, limits.max_label_value_length);
        for (name, value) in &labels {
            if max_name > 0 && name.len() > max_name {
                return Err((
                    reason::LABEL_NAME_TOO_LONG,
                    format!("stream '{key}' has label name too long: '{name}'"),
                ));
            }
            if max_value > 0 && value.len() > max_value {
                return Err((
                    reason::LABEL_VALUE_TOO_LONG,
                    format!("stream '{key}' has label value too long: '{value}'"),
                ));
            }
        }
        Ok((key, labels))
    }

    fn prepare_entries(
        &self,
        tenant: &str,
        key: String,
        labels: Labels,
        entries: Vec<wire::loki::Entry>,
        errors: &mut Vec<String>,
    ) -> Prepared {
        let max = self.config.max_line_size;
        let now = now_ns();
        let limits = &self.config.limits;
        let oldest = limits
            .reject_old_samples_max_age
            .map(|age| now.saturating_sub(super::limits::nanos(age)));
        let newest = now.saturating_add(super::limits::nanos(limits.creation_grace_period));
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let ts = e.timestamp_ns();
            if let Some(oldest) = oldest.filter(|o| ts < *o) {
                self.discard(reason::TOO_OLD, tenant, 1, entry_bytes(&e));
                errors.push(format!(
                    "entry for stream '{key}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    rfc3339(ts),
                    rfc3339(oldest)
                ));
                continue;
            }
            if ts > newest {
                self.discard(reason::TOO_NEW, tenant, 1, entry_bytes(&e));
                errors.push(format!(
                    "entry for stream '{key}' has timestamp too new: {}",
                    rfc3339(ts)
                ));
                continue;
            }
            if max > 0 && e.line.len() > max {
                self.discard(reason::LINE_TOO_LONG, tenant, 1, entry_bytes(&e));
                errors.push(format!(
                    "max entry size '{max}' bytes exceeded for stream '{key}' while adding an entry with length '{}' bytes",
                    e.line.len()
                ));
                continue;
            }
            let mut metadata: Labels = e
                .structured_metadata
                .into_iter()
                .map(|p| (sanitize_label_name(p.name), p.value))
                .collect();
            if self.config.discover_log_levels {
                detect::add_detected_level(&labels, &mut metadata, &e.line);
            }
            out.push(StoredEntry {
                ts,
                line: e.line,
                metadata,
            });
        }
        Prepared {
            key,
            labels,
            entries: out,
        }
    }

    /// Stores validated streams as Loki's ingester does. A stream new to the tenant when it
    /// already has `max_global_streams_per_user` streams is refused and counted
    /// (`reason="stream_limit"`). The answer is Loki's 429 message when the **last** stream was
    /// refused, nothing otherwise: Loki's ingester keeps only the outcome of the last stream of
    /// a push (a stream stored after a refused one clears its error), so an earlier refusal is
    /// counted but not answered.
    fn store(&self, tenant: &str, prepared: Vec<Prepared>) -> Option<String> {
        // The distributor forwards only streams with an entry left after validation.
        let prepared: Vec<Prepared> = prepared
            .into_iter()
            .filter(|p| !p.entries.is_empty())
            .collect();
        if prepared.is_empty() {
            return None;
        }
        let limit = self.config.limits.max_global_streams_per_user;
        let t = self.tenant_or_create(tenant);
        let (mut entries, mut line_bytes, mut stored, mut dups) = (0u64, 0u64, 0usize, 0u64);
        let (mut refused_entries, mut refused_bytes) = (0u64, 0u64);
        let mut last_refused = None;
        {
            let mut t = t.lock();
            for p in prepared {
                if limit > 0 && t.streams.len() >= limit && !t.streams.contains_key(&p.key) {
                    refused_entries += p.entries.len() as u64;
                    refused_bytes += p.entries.iter().map(validated_bytes).sum::<u64>();
                    last_refused = Some(format!(
                        "Maximum active stream limit exceeded when trying to create stream {}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '{tenant}'",
                        p.key
                    ));
                    continue;
                }
                last_refused = None;
                let stream = t
                    .streams
                    .entry(p.key)
                    .or_insert_with(|| Stream::new(p.labels));
                for e in p.entries {
                    let size = e.size();
                    let len = e.line.len() as u64;
                    if stream.push(e) {
                        entries += 1;
                        line_bytes += len;
                        stored += size;
                    } else {
                        dups += 1;
                    }
                }
            }
            t.bytes += stored;
            t.lines_received += entries + dups;
            t.bytes_received += line_bytes;
        }
        self.metrics.ingested_entries.add(entries);
        self.metrics.ingested_bytes.add(line_bytes);
        self.metrics.duplicate_entries.add(dups);
        if refused_entries > 0 {
            self.discard(reason::STREAM_LIMIT, tenant, refused_entries, refused_bytes);
        }
        let total = self.stored_bytes.fetch_add(stored, Ordering::Relaxed) + stored;
        if total > self.config.retention_bytes {
            self.evict();
        }
        last_refused
    }

    /// Evicts the oldest entries until the store is within `retention_bytes`.
    fn evict(&self) {
        // One evictor at a time; a push arriving meanwhile leaves the work to it.
        let Some(_guard) = self.evicting.try_lock() else {
            return;
        };
        loop {
            let stored = self.stored_bytes.load(Ordering::Relaxed);
            if stored <= self.config.retention_bytes {
                return;
            }
            let need = stored - self.config.retention_bytes;
            let tenants: Vec<Arc<Mutex<Tenant>>> = self.tenants.read().values().cloned().collect();
            let mut oldest: Vec<(i64, usize)> = tenants
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.lock().oldest().map(|ts| (ts, i)))
                .collect();
            oldest.sort_unstable();
            let Some(&(_, first)) = oldest.first() else {
                return;
            };
            let upto = oldest.get(1).map(|o| o.0).unwrap_or(i64::MAX);
            let freed = tenants[first].lock().evict(upto, need);
            if freed.entries == 0 {
                return;
            }
            self.stored_bytes.fetch_sub(freed.bytes, Ordering::Relaxed);
            self.metrics.evicted_entries.add(freed.entries);
            self.metrics.evicted_bytes.add(freed.bytes as u64);
        }
    }

    fn tenant_or_create(&self, tenant: &str) -> Arc<Mutex<Tenant>> {
        if let Some(t) = self.tenants.read().get(tenant) {
            return t.clone();
        }
        self.tenants
            .write()
            .entry(tenant.to_string())
            .or_default()
            .clone()
    }

    /// The tenant's store, if it ever received data.
    pub(crate) fn tenant(&self, tenant: &str) -> Option<Arc<Mutex<Tenant>>> {
        self.tenants.read().get(tenant).cloned()
    }

    fn discard(&self, reason: &'static str, tenant: &str, samples: u64, bytes: u64) {
        let mut d = self.metrics.discarded.lock();
        let slot = d.entry((reason, tenant.to_string())).or_default();
        slot.0 += samples;
        slot.1 += bytes;
    }

    /// Counts a finished HTTP request.
    pub(crate) fn count_request(&self, route: &'static str, status: u16) {
        *self
            .metrics
            .requests
            .lock()
            .entry((route, status))
            .or_default() += 1;
    }

    /// Entries evicted so far to stay within `retention_bytes`.
    pub fn evicted_entries(&self) -> u64 {
        self.metrics.evicted_entries.get()
    }

    /// Bytes currently stored, as counted against `retention_bytes`.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes.load(Ordering::Relaxed)
    }

    /// The self-metrics in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut families = Vec::new();
        let m = &self.metrics;
        let discarded = m.discarded.lock().clone();
        for (name, help, pick) in [
            (
                "loki_discarded_samples_total",
                "The total number of samples that were discarded.",
                0,
            ),
            (
                "loki_discarded_bytes_total",
                "The total number of bytes that were discarded.",
                1,
            ),
        ] {
            let mut family = MetricFamily::new(name, MetricKind::Counter).with_help(help);
            for ((reason, tenant), v) in &discarded {
                let value = if pick == 0 { v.0 } else { v.1 };
                family.push(&[("reason", reason), ("tenant", tenant)], value as f64);
            }
            families.push(family);
        }
        let tenants: Vec<(String, Arc<Mutex<Tenant>>)> = self
            .tenants
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let per_tenant: BTreeMap<String, (u64, u64, usize)> = tenants
            .iter()
            .map(|(k, t)| {
                let t = t.lock();
                (
                    k.clone(),
                    (t.lines_received, t.bytes_received, t.streams.len()),
                )
            })
            .collect();
        for (name, kind, help, pick) in [
            (
                "loki_distributor_lines_received_total",
                MetricKind::Counter,
                "The total number of lines received per tenant.",
                0,
            ),
            (
                "loki_distributor_bytes_received_total",
                MetricKind::Counter,
                "The total number of uncompressed bytes received per tenant.",
                1,
            ),
            (
                "loki_ingester_memory_streams",
                MetricKind::Gauge,
                "The total number of streams in memory per tenant.",
                2,
            ),
        ] {
            let mut family = MetricFamily::new(name, kind).with_help(help);
            for (tenant, v) in &per_tenant {
                let value = match pick {
                    0 => v.0 as f64,
                    1 => v.1 as f64,
                    _ => v.2 as f64,
                };
                family.push(&[("tenant", tenant)], value);
            }
            families.push(family);
        }
        let streams: usize = per_tenant.values().map(|v| v.2).sum();
        families.extend(single_samples([
            (
                "loki_embedded_ingested_entries_total",
                MetricKind::Counter,
                "Entries stored.",
                m.ingested_entries.get() as f64,
            ),
            (
                "loki_embedded_ingested_bytes_total",
                MetricKind::Counter,
                "Bytes of log lines stored.",
                m.ingested_bytes.get() as f64,
            ),
            (
                "loki_embedded_duplicate_entries_total",
                MetricKind::Counter,
                "Entries dropped as exact duplicates (same timestamp and line) of stored ones.",
                m.duplicate_entries.get() as f64,
            ),
            (
                "loki_embedded_evicted_entries_total",
                MetricKind::Counter,
                "Entries evicted to stay within retention_bytes.",
                m.evicted_entries.get() as f64,
            ),
            (
                "loki_embedded_evicted_bytes_total",
                MetricKind::Counter,
                "Bytes evicted to stay within retention_bytes.",
                m.evicted_bytes.get() as f64,
            ),
            (
                "loki_embedded_stored_bytes",
                MetricKind::Gauge,
                "Bytes held, as counted against retention_bytes.",
                self.stored_bytes() as f64,
            ),
            (
                "loki_embedded_retention_bytes",
                MetricKind::Gauge,
                "The configured bound on stored bytes.",
                self.config.retention_bytes as f64,
            ),
            (
                "loki_embedded_streams",
                MetricKind::Gauge,
                "Streams held, all tenants.",
                streams as f64,
            ),
        ]));
        let requests = m.requests.lock().clone();
        let mut family = MetricFamily::new("loki_embedded_requests_total", MetricKind::Counter)
            .with_help("HTTP requests served, by route and status code.");
        for ((route, status), n) in requests {
            let status = status.to_string();
            family.push(&[("route", route), ("status_code", &status)], n as f64);
        }
        families.push(family);
        wire::exposition::encode(&families)
    }
}

/// Loki's size of an entry for discard accounting: line plus structured metadata.
/// What the rate limit counts of a validated entry: its line and structured metadata (Loki's
/// `validatedLineSize`).
fn validated_bytes(e: &StoredEntry) -> u64 {
    (e.line.len()
        + e.metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()) as u64
}

fn entry_bytes(e: &wire::loki::Entry) -> u64 {
    (e.line.len()
        + e.structured_metadata
            .iter()
            .map(|p| p.name.len() + p.value.len())
            .sum::<usize>()) as u64
}

/// Structured metadata names are normalised as Loki's distributor does (see
/// [`wire::labels::sanitize_label_name`]); a legal name is kept as it is.
fn sanitize_label_name(name: String) -> String {
    if wire::labels::is_valid_label_name(&name) {
        return name;
    }
    wire::labels::sanitize_label_name(&name)
}

/// The HTTP API.
pub fn router(state: Arc<Loki>) -> Router {
    api::router(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::loki::{Entry, PushRequest, Stream as WStream};

    /// An hour ago plus `i` ns: inside Loki's accepted window.
    fn recent(i: i64) -> i64 {
        now_ns() - 3_600_000_000_000 + i
    }

    /// Loki 3's push-time discovery off: streams and entries stored as pushed (the discovery
    /// has its own tests in `detect` and tests/it/loki_api.rs).
    fn as_pushed() -> LokiConfig {
        LokiConfig {
            discover_service_name: Vec::new(),
            discover_log_levels: false,
            ..LokiConfig::default()
        }
    }

    fn push(labels: &str, entries: Vec<Entry>) -> PushRequest {
        PushRequest {
            streams: vec![WStream {
                labels: labels.into(),
                entries,
                hash: 0,
            }],
        }
    }

    #[test]
    fn validation_messages() {
        let loki = Loki::new(LokiConfig {
            max_line_size: 5,
            ..as_pushed()
        });
        let err = loki
            .ingest("t", push("{}", vec![Entry::new(recent(1), "x")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "error at least one label pair is required per stream"
        );
        let err = loki
            .ingest("t", push("{a=}", vec![Entry::new(recent(1), "x")]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Error parsing labels '{a=}' with error: ")
        );
        let err = loki
            .ingest(
                "t",
                push(
                    "{a=\"b\"}",
                    vec![
                        Entry::new(recent(1), "ok"),
                        Entry::new(recent(2), "toolong"),
                    ],
                ),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "max entry size '5' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '7' bytes"
        );
        // Loki's ingestion window: a week back, ten minutes ahead.
        let week = 168 * 3_600_000_000_000i64;
        let err = loki
            .ingest(
                "t",
                push(
                    "{a=\"b\"}",
                    vec![Entry::new(now_ns() - week - 60_000_000_000, "ok")],
                ),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("entry for stream '{a=\"b\"}' has timestamp too old: ")
                && err.contains(", oldest acceptable timestamp is: "),
            "{err}"
        );
        let err = loki
            .ingest(
                "t",
                push(
                    "{a=\"b\"}",
                    vec![Entry::new(now_ns() + 3_600_000_000_000, "ok")],
                ),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("entry for stream '{a=\"b\"}' has timestamp too new: "),
            "{err}"
        );
        // The valid entry was stored anyway; empty streams and pushes are fine.
        assert_eq!(loki.metrics.ingested_entries.get(), 1);
        loki.ingest("t", push("{}", vec![])).unwrap();
        loki.ingest("t", PushRequest::default()).unwrap();
        let m = loki.render_metrics();
        assert!(
            m.contains("loki_discarded_samples_total{reason=\"line_too_long\",tenant=\"t\"} 1")
        );
        assert!(
            m.contains("loki_discarded_samples_total{reason=\"missing_labels\",tenant=\"t\"} 1")
        );
    }

    #[test]
    fn label_lengths_and_the_stream_limit() {
        let loki = Loki::new(LokiConfig {
            limits: LokiLimits {
                max_label_name_length: 3,
                max_label_value_length: 4,
                max_global_streams_per_user: 2,
                ..LokiLimits::default()
            },
            ..as_pushed()
        });
        let one = |labels: &str| push(labels, vec![Entry::new(recent(1), "x")]);
        let err = loki.ingest("t", one("{abcd=\"1\"}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream '{abcd=\"1\"}' has label name too long: 'abcd'"
        );
        let err = loki.ingest("t", one("{a=\"12345\"}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream '{a=\"12345\"}' has label value too long: '12345'"
        );
        loki.ingest("t", one("{a=\"1\"}")).unwrap();
        loki.ingest("t", one("{a=\"2\"}")).unwrap();
        let err = loki.ingest("t", one("{a=\"3\"}")).unwrap_err();
        assert!(matches!(err, LokiError::StreamLimit(_)));
        assert!(err.to_string().starts_with(
            "Maximum active stream limit exceeded when trying to create stream {a=\"3\"}, "
        ));
        assert!(err.to_string().ends_with(", user: 't'"));
        // Known streams still take entries; other tenants have their own count; a stream whose
        // entries were all refused is never created.
        loki.ingest("t", one("{a=\"1\"}")).unwrap();
        loki.ingest("u", one("{a=\"3\"}")).unwrap();
        let old = push("{b=\"1\"}", vec![Entry::new(1, "x")]);
        assert!(matches!(
            loki.ingest("u", old),
            Err(LokiError::Validation(_))
        ));
        assert_eq!(loki.tenant("u").unwrap().lock().streams.len(), 1);
        let m = loki.render_metrics();
        assert!(m.contains("loki_discarded_samples_total{reason=\"stream_limit\",tenant=\"t\"} 1"));
        assert!(m.contains(
            "loki_discarded_samples_total{reason=\"label_name_too_long\",tenant=\"t\"} 1"
        ));
        assert!(m.contains(
            "loki_discarded_samples_total{reason=\"label_value_too_long\",tenant=\"t\"} 1"
        ));
    }

    #[test]
    fn eviction_keeps_the_bound() {
        let one = StoredEntry {
            ts: 0,
            line: "0123456789".into(),
            metadata: vec![],
        }
        .size();
        let loki = Loki::new(LokiConfig {
            retention_bytes: 10 * one,
            ..as_pushed()
        });
        let base = recent(0);
        for tenant in ["a", "b"] {
            let entries = (0..8)
                .map(|i| Entry::new(base + i * 2 + (tenant == "b") as i64, "0123456789"))
                .collect();
            loki.ingest(tenant, push("{j=\"x\"}", entries)).unwrap();
        }
        assert_eq!(loki.stored_bytes(), 10 * one);
        assert_eq!(loki.metrics.evicted_entries.get(), 6);
        // The six oldest went: timestamps 0..=5, three per tenant.
        let a = loki.tenant("a").unwrap();
        assert_eq!(a.lock().oldest(), Some(base + 6));
        let b = loki.tenant("b").unwrap();
        assert_eq!(b.lock().oldest(), Some(base + 7));
    }

    #[test]
    fn sanitizes_metadata_names() {
        assert_eq!(sanitize_label_name("trace.id".into()), "trace_id");
        assert_eq!(sanitize_label_name("1x".into()), "key_1x");
        assert_eq!(sanitize_label_name("ok_1".into()), "ok_1");
    }
}
