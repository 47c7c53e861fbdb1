//! Faults on demand: the embedded stack can be told to fail, so that a client's resilience (its
//! retries, back-off, buffering and what it reports as lost) is tested against a backend outage,
//! errors, latency and throttling.
//!
//! Each [`Api`] has its own [`Fault`], set at start (`stack serve --fault`, or
//! [`EmbeddedConfig::faults`](super::EmbeddedConfig::faults)), at run time on any embedded HTTP
//! server's admin endpoint (`GET`/`PUT`/`DELETE /stack/faults`, see [`admin_router`]), or in
//! process through the [`Faults`] handle ([`EmbeddedStack::faults`](super::EmbeddedStack::faults)).
//! A fault has four parts, checked in this order for every request to its API:
//!
//! 1. **latency**: every request (faulted or not) waits first, a fixed time or one in a range;
//! 2. **outage**: every request is answered 503 (gRPC `UNAVAILABLE`), until cleared or for a
//!    duration from when it was set. A 503 rather than a refused connection: the port stays
//!    bound (the other APIs on it keep working) and the client sees a definite answer;
//! 3. **throttle**: a fraction of requests answered 429 with `Retry-After: <retry_after>`
//!    (gRPC `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo`);
//! 4. **error**: a fraction of requests answered with `status` (503 unless set; gRPC: the code
//!    the status maps to). A request the throttle picked is not picked again.
//!
//! **Determinism.** There is no randomness: a rate `r` faults request `i` (counted from 1 since
//! the fault was set, over the requests not refused by an outage) exactly when `⌊i·r⌋` steps up,
//! so the first `N` requests hold exactly `⌊N·r⌋` faults, evenly spread (`0.1`: the 10th, 20th,
//! …; `0.5`: every second). Rates are kept in millionths. A latency range gives request `i` the
//! delay `min + (max − min)·frac(i·φ)` (a golden-ratio sequence: spread over the range, the same
//! on every run).
//!
//! A faulted request is answered before its body is read or decoded: nothing of it is stored,
//! so a client that gives up on it really loses it. Every faulted request is counted on the
//! `/metrics` of the server that holds its API, as
//! `stack_embedded_faulted_requests_total{api,fault="outage|throttle|error"}`, and delayed ones
//! as `stack_embedded_delayed_requests_total{api}`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use wire::exposition::{MetricFamily, MetricKind};

use super::metrics::Counter;

/// The path of the admin endpoint on every embedded HTTP server.
pub const ADMIN_PATH: &str = "/stack/faults";

/// The longest latency a fault may add (a longer one would look like a hang).
pub const MAX_LATENCY: Duration = Duration::from_secs(600);
/// The longest `Retry-After` a throttle may ask for.
pub const MAX_RETRY_AFTER_S: u64 = 86_400;

/// An API of the embedded stack that faults can be set on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    /// Loki's push (`/loki/api/v1/push`, `/api/prom/push`).
    LokiPush,
    /// Loki's query endpoints (`/loki/api/v1/query*`, labels, series).
    LokiQuery,
    /// Mimir's remote write (`/api/v1/push`, `/api/v1/write`).
    MimirWrite,
    /// Mimir's Prometheus query API (`/prometheus/api/v1/*`, `/api/v1/*`).
    MimirQuery,
    /// Tempo's OTLP/HTTP receiver (`/v1/traces`).
    TempoOtlpHttp,
    /// Tempo's OTLP/gRPC receiver (`TraceService/Export`).
    TempoOtlpGrpc,
    /// Tempo's query API (`/api/traces`, `/api/search`, …).
    TempoQuery,
}

impl Api {
    /// Every API, in a fixed order.
    pub const ALL: [Api; 7] = [
        Api::LokiPush,
        Api::LokiQuery,
        Api::MimirWrite,
        Api::MimirQuery,
        Api::TempoOtlpHttp,
        Api::TempoOtlpGrpc,
        Api::TempoQuery,
    ];

    /// The name used by `--fault`, the admin endpoint's JSON and the metrics' `api` label.
    pub fn name(self) -> &'static str {
        match self {
            Api::LokiPush => "loki_push",
            Api::LokiQuery => "loki_query",
            Api::MimirWrite => "mimir_write",
            Api::MimirQuery => "mimir_query",
            Api::TempoOtlpHttp => "tempo_otlp_http",
            Api::TempoOtlpGrpc => "tempo_otlp_grpc",
            Api::TempoQuery => "tempo_query",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The embedded server whose `/metrics` counts this API's faults.
    fn server(self) -> Server {
        match self {
            Api::LokiPush | Api::LokiQuery => Server::Loki,
            Api::MimirWrite | Api::MimirQuery => Server::Mimir,
            Api::TempoOtlpHttp | Api::TempoOtlpGrpc | Api::TempoQuery => Server::Tempo,
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Api {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Api, FaultError> {
        Api::ALL
            .into_iter()
            .find(|a| a.name() == s.trim())
            .ok_or_else(|| FaultError::UnknownApi(s.trim().to_string()))
    }
}

/// The embedded HTTP servers, for telling which API a request is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Loki,
    Mimir,
    /// Tempo's query port (its `/metrics` shows all of Tempo's APIs, OTLP ones included).
    Tempo,
    TempoOtlpHttp,
}

impl Server {
    /// The API a request with this method and path is to; `None` for what is never faulted
    /// (`/metrics`, `/ready`, the admin endpoint, unknown paths).
    pub fn api(self, method: &Method, path: &str) -> Option<Api> {
        match self {
            Server::Loki => match path {
                "/loki/api/v1/push" | "/api/prom/push" if method == Method::POST => {
                    Some(Api::LokiPush)
                }
                p if p.starts_with("/loki/api/v1/") => Some(Api::LokiQuery),
                _ => None,
            },
            Server::Mimir => match path {
                "/api/v1/push" | "/api/v1/write" if method == Method::POST => Some(Api::MimirWrite),
                p if p.starts_with("/prometheus/api/v1/") || p.starts_with("/api/v1/") => {
                    Some(Api::MimirQuery)
                }
                _ => None,
            },
            Server::Tempo => {
                (path.starts_with("/api/") && path != "/api/echo").then_some(Api::TempoQuery)
            }
            Server::TempoOtlpHttp => (path == "/v1/traces").then_some(Api::TempoOtlpHttp),
        }
    }

    /// The APIs whose fault counts this server's `/metrics` shows.
    fn apis(self) -> impl Iterator<Item = Api> {
        Api::ALL.into_iter().filter(move |a| a.server() == self)
    }
}

/// An added delay: fixed when `min == max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub min: Duration,
    pub max: Duration,
}

impl Latency {
    /// The delay of request `i` (see the module's docs).
    pub fn of(&self, i: u64) -> Duration {
        const PHI: f64 = 0.618_033_988_749_894_9;
        let span = self.max.saturating_sub(self.min);
        let frac = (i as f64 * PHI).fract();
        self.min + span.mul_f64(frac)
    }
}

/// An outage: every request refused, until cleared or for a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    UntilCleared,
    /// For this long from when the fault is set (when read back: the time left).
    For(Duration),
}

/// A rate in millionths: exact arithmetic for "every Nth".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate(u64);

impl Rate {
    const ONE: u64 = 1_000_000;

    /// A fraction in `[0, 1]`, rounded to the millionth.
    pub fn new(fraction: f64) -> Option<Rate> {
        (fraction.is_finite() && (0.0..=1.0).contains(&fraction))
            .then(|| Rate((fraction * Self::ONE as f64).round() as u64))
    }

    pub fn fraction(self) -> f64 {
        self.0 as f64 / Self::ONE as f64
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether request `i` (from 1) is picked: `⌊i·r⌋ > ⌊(i−1)·r⌋`.
    pub fn picks(self, i: u64) -> bool {
        let at = |n: u64| u128::from(n) * u128::from(self.0) / u128::from(Self::ONE);
        i > 0 && at(i) > at(i - 1)
    }
}

/// What one API is told to do wrong. The default is nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Fraction of requests answered with `error_status`.
    pub error_rate: Rate,
    /// The status of an injected error: 503 by default.
    pub error_status: StatusCode,
    /// Delay added to every request.
    pub latency: Option<Latency>,
    /// Every request refused with 503.
    pub outage: Option<Outage>,
    /// Fraction of requests answered 429 with `Retry-After`.
    pub throttle_rate: Rate,
    /// The `Retry-After` of a throttled request, in seconds (1 by default).
    pub retry_after_s: u64,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            error_rate: Rate::default(),
            error_status: StatusCode::SERVICE_UNAVAILABLE,
            latency: None,
            outage: None,
            throttle_rate: Rate::default(),
            retry_after_s: 1,
        }
    }
}

/// A fault setting that cannot be used; the message names the bad part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("unknown API {0:?} (one of: {names})", names = api_names())]
    UnknownApi(String),
    #[error("{api}: unknown setting {key:?} (one of: {KEYS})")]
    UnknownKey { api: String, key: String },
    #[error("{api}.{key}: {reason}, got {got}")]
    BadValue {
        api: String,
        key: &'static str,
        reason: &'static str,
        got: String,
    },
    #[error("{api}: {key} without {needs} does nothing")]
    Orphan {
        api: String,
        key: &'static str,
        needs: &'static str,
    },
    #[error("{api}: the fault must be a JSON object (or null to clear it), got {got}")]
    NotAnObject { api: String, got: String },
    #[error("the body must be a JSON object of API name to fault: {0}")]
    BadBody(String),
    /// A `--fault` value that is not `API=KEY:VALUE,...` (clap shows the value itself).
    #[error("{0}")]
    BadFlag(String),
}

/// The settings a fault takes, as `--fault` and the admin endpoint name them.
pub const KEYS: &str = "error_rate, status, latency, outage, throttle_rate, retry_after";

fn api_names() -> String {
    Api::ALL.map(Api::name).join(", ")
}

impl Fault {
    /// Whether this fault does anything.
    pub fn is_none(&self) -> bool {
        self.error_rate.is_zero()
            && self.latency.is_none()
            && self.outage.is_none()
            && self.throttle_rate.is_zero()
    }

    /// An outage of `api` until cleared.
    pub fn outage() -> Fault {
        Fault {
            outage: Some(Outage::UntilCleared),
            ..Fault::default()
        }
    }

    /// Reads a fault from its JSON form (what the admin endpoint takes and answers):
    /// `{"error_rate": 0.1, "status": 500, "latency": "100ms..500ms", "outage": "30s" | true,
    /// "throttle_rate": 0.2, "retry_after": 5}`, every key optional. `api` names it in errors.
    pub fn from_json(api: &str, v: &Value) -> Result<Fault, FaultError> {
        let Value::Object(map) = v else {
            return Err(FaultError::NotAnObject {
                api: api.into(),
                got: v.to_string(),
            });
        };
        let bad = |key: &'static str, reason: &'static str, got: &Value| FaultError::BadValue {
            api: api.into(),
            key,
            reason,
            got: got.to_string(),
        };
        let mut f = Fault::default();
        let (mut status_set, mut retry_set) = (false, false);
        for (key, value) in map {
            match key.as_str() {
                "error_rate" => {
                    const R: &str = "must be a number from 0 to 1";
                    f.error_rate = value
                        .as_f64()
                        .and_then(Rate::new)
                        .ok_or_else(|| bad("error_rate", R, value))?;
                }
                "status" => {
                    const R: &str = "must be an HTTP error status, 400 to 599";
                    f.error_status = value
                        .as_u64()
                        .filter(|s| (400..=599).contains(s))
                        .and_then(|s| StatusCode::from_u16(s as u16).ok())
                        .ok_or_else(|| bad("status", R, value))?;
                    status_set = true;
                }
                "latency" => {
                    const R: &str = "must be a duration or a range of two (\"100ms\", \"100ms..2s\"), at most 10m";
                    f.latency = value
                        .as_str()
                        .and_then(parse_latency)
                        .ok_or_else(|| bad("latency", R, value))?;
                }
                "outage" => {
                    const R: &str = "must be true, false or a duration from now (\"30s\")";
                    f.outage = match value {
                        Value::Bool(true) => Some(Outage::UntilCleared),
                        Value::Bool(false) | Value::Null => None,
                        Value::String(s) => match humantime::parse_duration(s.trim()) {
                            Ok(d) if !d.is_zero() => Some(Outage::For(d)),
                            _ => return Err(bad("outage", R, value)),
                        },
                        _ => return Err(bad("outage", R, value)),
                    };
                }
                "throttle_rate" => {
                    const R: &str = "must be a number from 0 to 1";
                    f.throttle_rate = value
                        .as_f64()
                        .and_then(Rate::new)
                        .ok_or_else(|| bad("throttle_rate", R, value))?;
                }
                "retry_after" => {
                    const R: &str = "must be whole seconds, 0 to 86400";
                    f.retry_after_s = value
                        .as_u64()
                        .filter(|s| *s <= MAX_RETRY_AFTER_S)
                        .ok_or_else(|| bad("retry_after", R, value))?;
                    retry_set = true;
                }
                other => {
                    return Err(FaultError::UnknownKey {
                        api: api.into(),
                        key: other.into(),
                    });
                }
            }
        }
        let orphan = |key, needs| FaultError::Orphan {
            api: api.into(),
            key,
            needs,
        };
        if status_set && f.error_rate.is_zero() {
            return Err(orphan("status", "error_rate"));
        }
        if retry_set && f.throttle_rate.is_zero() {
            return Err(orphan("retry_after", "throttle_rate"));
        }
        Ok(f)
    }

    /// The JSON form ([`Fault::from_json`] reads it back); only the parts set.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.error_rate.is_zero() {
            m.insert("error_rate".into(), json!(self.error_rate.fraction()));
            m.insert("status".into(), json!(self.error_status.as_u16()));
        }
        if let Some(l) = self.latency {
            let text = if l.min == l.max {
                duration_text(l.min)
            } else {
                format!("{}..{}", duration_text(l.min), duration_text(l.max))
            };
            m.insert("latency".into(), json!(text));
        }
        match self.outage {
            Some(Outage::UntilCleared) => {
                m.insert("outage".into(), json!(true));
            }
            Some(Outage::For(d)) => {
                m.insert("outage".into(), json!(duration_text(d)));
            }
            None => {}
        }
        if !self.throttle_rate.is_zero() {
            m.insert("throttle_rate".into(), json!(self.throttle_rate.fraction()));
            m.insert("retry_after".into(), json!(self.retry_after_s));
        }
        Value::Object(m)
    }
}

fn duration_text(d: Duration) -> String {
    // Whole milliseconds are enough for what a fault waits and humantime reads them back.
    humantime::format_duration(Duration::new(d.as_secs(), d.subsec_millis() * 1_000_000))
        .to_string()
}

/// `"100ms"` or `"100ms..2s"`; `None` when unreadable, reversed or over [`MAX_LATENCY`].
fn parse_latency(s: &str) -> Option<Option<Latency>> {
    let (min, max) = match s.split_once("..") {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let min = humantime::parse_duration(min.trim()).ok()?;
    let max = humantime::parse_duration(max.trim()).ok()?;
    if min > max || max > MAX_LATENCY {
        return None;
    }
    Some((!max.is_zero()).then_some(Latency { min, max }))
}

/// Parses one `--fault` flag: `API=KEY:VALUE[,KEY:VALUE…]`, a key alone meaning `true`
/// (`loki_push=outage`). Values are read as JSON numbers or booleans when they are ones, else
/// as strings, then checked as the admin endpoint checks its JSON.
pub fn parse_flag(arg: &str) -> Result<(Api, Fault), FaultError> {
    let flag_err = FaultError::BadFlag;
    let Some((api, settings)) = arg.split_once('=') else {
        return Err(flag_err(format!(
            "expected API=KEY:VALUE[,KEY:VALUE...], e.g. loki_push=error_rate:0.1,status:500 (APIs: {}; keys: {KEYS})",
            api_names()
        )));
    };
    let api: Api = api
        .parse()
        .map_err(|e: FaultError| flag_err(e.to_string()))?;
    let mut map = Map::new();
    for part in settings.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = match part.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (part, "true"),
        };
        let value = match serde_json::from_str::<Value>(value) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ => Value::String(value.into()),
        };
        if map.insert(key.to_string(), value).is_some() {
            return Err(flag_err(format!("{key} given twice")));
        }
    }
    if map.is_empty() {
        return Err(flag_err(format!("no settings after {api}= (keys: {KEYS})")));
    }
    let fault =
        Fault::from_json(api.name(), &Value::Object(map)).map_err(|e| flag_err(e.to_string()))?;
    Ok((api, fault))
}

/// What a request meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Outage,
    Throttle { retry_after_s: u64 },
    Error(StatusCode),
}

/// Counts of what faults did to one API.
#[derive(Debug, Default)]
struct Counts {
    outage: Counter,
    throttle: Counter,
    error: Counter,
    delayed: Counter,
}

/// One API's fault and where its request sequence is.
#[derive(Debug, Default)]
struct Slot {
    fault: Fault,
    /// When a timed outage ends.
    outage_until: Option<Instant>,
    /// Requests counted since the fault was set (not those an outage refused).
    seen: u64,
}

impl Slot {
    fn set(&mut self, fault: Fault, now: Instant) {
        let mut fault = fault;
        self.outage_until = match fault.outage {
            Some(Outage::For(d)) => {
                let until = now.checked_add(d);
                if until.is_none() {
                    // Beyond what an Instant holds: until cleared, in effect.
                    fault.outage = Some(Outage::UntilCleared);
                }
                until
            }
            _ => None,
        };
        self.fault = fault;
        self.seen = 0;
    }

    fn outage_active(&mut self, now: Instant) -> bool {
        match (self.fault.outage, self.outage_until) {
            (Some(Outage::UntilCleared), _) => true,
            (Some(Outage::For(_)), Some(until)) if now < until => true,
            (Some(_), _) => {
                // Over: the outage part is gone, the rest of the fault stays.
                self.fault.outage = None;
                self.outage_until = None;
                false
            }
            (None, _) => false,
        }
    }

    /// The fault as it stands at `now` (a timed outage shows the time left).
    fn current(&mut self, now: Instant) -> Fault {
        let active = self.outage_active(now);
        let mut f = self.fault;
        if let (true, Some(until)) = (active, self.outage_until) {
            f.outage = Some(Outage::For(until.saturating_duration_since(now)));
        }
        f
    }

    /// The verdict and delay for the next request.
    fn next(&mut self, now: Instant) -> (Verdict, Option<Duration>) {
        let f = self.fault;
        let delay = f.latency.map(|l| l.of(self.seen + 1));
        if self.outage_active(now) {
            return (Verdict::Outage, delay);
        }
        self.seen += 1;
        let i = self.seen;
        let verdict = if f.throttle_rate.picks(i) {
            Verdict::Throttle {
                retry_after_s: f.retry_after_s,
            }
        } else if f.error_rate.picks(i) {
            Verdict::Error(f.error_status)
        } else {
            Verdict::Pass
        };
        (verdict, delay)
    }
}

struct Inner {
    slots: [Mutex<Slot>; 7],
    counts: [Counts; 7],
}

/// The faults of a running embedded stack: a cheap handle (clones share the state) to read,
/// set and clear them while it serves.
#[derive(Clone)]
pub struct Faults(Arc<Inner>);

impl Default for Faults {
    fn default() -> Self {
        Faults(Arc::new(Inner {
            slots: Default::default(),
            counts: Default::default(),
        }))
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.all()).finish()
    }
}

impl Faults {
    /// No faults.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Sets `api`'s fault, replacing the one it had; its request count starts again (so the
    /// first faulted request is the same one whenever the same fault is set).
    pub fn set(&self, api: Api, fault: Fault) {
        self.0.slots[api.index()].lock().set(fault, Instant::now());
        tracing::info!(%api, fault = %fault.to_json(), "embedded stack fault set");
    }

    /// Clears `api`'s fault.
    pub fn clear(&self, api: Api) {
        self.set(api, Fault::default());
    }

    /// Clears every fault.
    pub fn clear_all(&self) {
        for api in Api::ALL {
            self.clear(api);
        }
    }

    /// An outage of `api` for `duration` from now (the rest of its fault stays).
    pub fn outage(&self, api: Api, duration: Duration) {
        let mut f = self.get(api);
        f.outage = Some(Outage::For(duration));
        self.set(api, f);
    }

    /// `api`'s fault now.
    pub fn get(&self, api: Api) -> Fault {
        self.0.slots[api.index()].lock().current(Instant::now())
    }

    /// The APIs that have a fault now, with it.
    pub fn all(&self) -> BTreeMap<Api, Fault> {
        Api::ALL
            .into_iter()
            .map(|a| (a, self.get(a)))
            .filter(|(_, f)| !f.is_none())
            .collect()
    }

    /// The faults as the admin endpoint answers: `{"loki_push": {...}, ...}`, APIs without a
    /// fault left out.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.all()
                .into_iter()
                .map(|(a, f)| (a.name().to_string(), f.to_json()))
                .collect(),
        )
    }

    /// Applies a PUT body: an object of API name to fault (`null` or `{}` clears it). Every
    /// entry is checked before any is applied; APIs not named keep their faults.
    pub fn apply_json(&self, body: &Value) -> Result<(), FaultError> {
        let Value::Object(map) = body else {
            return Err(FaultError::BadBody(format!("got {body}")));
        };
        let mut changes = Vec::with_capacity(map.len());
        for (name, v) in map {
            let api: Api = name.parse()?;
            let fault = match v {
                Value::Null => Fault::default(),
                v => Fault::from_json(api.name(), v)?,
            };
            changes.push((api, fault));
        }
        for (api, fault) in changes {
            self.set(api, fault);
        }
        Ok(())
    }

    /// Decides the next request to `api`: waits the fault's latency, then answers whether the
    /// request goes on, counting what was faulted.
    pub async fn check(&self, api: Api) -> Verdict {
        let (verdict, delay) = self.0.slots[api.index()].lock().next(Instant::now());
        let counts = &self.0.counts[api.index()];
        if let Some(d) = delay.filter(|d| !d.is_zero()) {
            counts.delayed.inc();
            tokio::time::sleep(d).await;
        }
        match verdict {
            Verdict::Pass => {}
            Verdict::Outage => counts.outage.inc(),
            Verdict::Throttle { .. } => counts.throttle.inc(),
            Verdict::Error(_) => counts.error.inc(),
        }
        verdict
    }

    /// Requests of `api` refused by a fault so far (outage, throttle and error together).
    pub fn refused(&self, api: Api) -> u64 {
        let c = &self.0.counts[api.index()];
        c.outage.get() + c.throttle.get() + c.error.get()
    }

    /// The fault counters of `server`'s APIs, as `/metrics` shows them.
    pub fn metric_families(&self, server: Server) -> Vec<MetricFamily> {
        let mut faulted = MetricFamily::new(
            "stack_embedded_faulted_requests_total",
            MetricKind::Counter,
        )
        .with_help("Requests refused by an injected fault (stack serve --fault, /stack/faults), by API and fault.");
        let mut delayed =
            MetricFamily::new("stack_embedded_delayed_requests_total", MetricKind::Counter)
                .with_help("Requests delayed by an injected latency, by API.");
        for api in server.apis() {
            let c = &self.0.counts[api.index()];
            for (fault, n) in [
                ("outage", &c.outage),
                ("throttle", &c.throttle),
                ("error", &c.error),
            ] {
                faulted.push(&[("api", api.name()), ("fault", fault)], n.get() as f64);
            }
            delayed.push(&[("api", api.name())], c.delayed.get() as f64);
        }
        vec![faulted, delayed]
    }
}

/// The message of a faulted request's answer.
pub fn message(api: Api, verdict: Verdict) -> String {
    match verdict {
        Verdict::Pass => String::new(),
        Verdict::Outage => format!(
            "embedded stack: {api} is in an injected outage (clear it with DELETE {ADMIN_PATH}/{api})"
        ),
        Verdict::Throttle { retry_after_s } => format!(
            "embedded stack: {api} throttled by an injected fault; retry after {retry_after_s}s"
        ),
        Verdict::Error(status) => format!(
            "embedded stack: {api} answered {} by an injected fault",
            status.as_u16()
        ),
    }
}

/// The HTTP status of a verdict (`Pass` has none).
pub fn http_status(verdict: Verdict) -> Option<StatusCode> {
    match verdict {
        Verdict::Pass => None,
        Verdict::Outage => Some(StatusCode::SERVICE_UNAVAILABLE),
        Verdict::Throttle { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
        Verdict::Error(s) => Some(s),
    }
}

/// The gRPC code an HTTP status maps to (as gRPC's HTTP-to-gRPC mapping, with 400 as
/// `INVALID_ARGUMENT` and 429 as `RESOURCE_EXHAUSTED`, which OTLP uses).
pub fn grpc_code(status: StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::NotFound,
        409 => tonic::Code::Aborted,
        413 => tonic::Code::ResourceExhausted,
        429 => tonic::Code::ResourceExhausted,
        499 => tonic::Code::Cancelled,
        501 => tonic::Code::Unimplemented,
        502..=504 => tonic::Code::Unavailable,
        500 => tonic::Code::Internal,
        _ => tonic::Code::Unknown,
    }
}

/// The gRPC status of a faulted call: a throttle carries a `google.rpc.RetryInfo` (the OTLP
/// specification's signal that `RESOURCE_EXHAUSTED` may be retried, and when).
pub fn grpc_status(api: Api, verdict: Verdict) -> Option<tonic::Status> {
    use wire::otlp::rpc::{Any, Duration as ProtoDuration, RETRY_INFO_TYPE_URL, RetryInfo, Status};
    let code = grpc_code(http_status(verdict)?);
    let msg = message(api, verdict);
    let Verdict::Throttle { retry_after_s } = verdict else {
        return Some(tonic::Status::new(code, msg));
    };
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: retry_after_s as i64,
            nanos: 0,
        }),
    };
    let details = Status {
        code: code as i32,
        message: msg.clone(),
        details: vec![Any {
            type_url: RETRY_INFO_TYPE_URL.into(),
            value: prost::Message::encode_to_vec(&retry),
        }],
    };
    Some(tonic::Status::with_details(
        code,
        msg,
        prost::Message::encode_to_vec(&details).into(),
    ))
}

/// The HTTP answer to a faulted request: plain text, or for OTLP/HTTP a `google.rpc.Status` in
/// the request's encoding (protobuf unless it sent JSON), as an OTLP receiver answers errors.
fn http_response(api: Api, verdict: Verdict, request_type: Option<&str>) -> Option<Response> {
    let status = http_status(verdict)?;
    let msg = message(api, verdict);
    let mut r = if api == Api::TempoOtlpHttp {
        let encoding = request_type
            .and_then(wire::otlp::Encoding::from_content_type)
            .unwrap_or(wire::otlp::Encoding::Protobuf);
        let body = wire::otlp::rpc::Status {
            code: grpc_code(status) as i32,
            message: msg,
            details: vec![],
        };
        let bytes = match encoding {
            wire::otlp::Encoding::Protobuf => prost::Message::encode_to_vec(&body),
            wire::otlp::Encoding::Json => serde_json::to_vec(&body).unwrap_or_default(),
        };
        (
            status,
            [(header::CONTENT_TYPE, encoding.content_type())],
            bytes,
        )
            .into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, wire::http::TEXT_PLAIN)],
            format!("{msg}\n"),
        )
            .into_response()
    };
    if let Verdict::Throttle { retry_after_s } = verdict {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    }
    Some(r)
}

/// What the guard layer holds.
#[derive(Clone)]
struct Guard {
    faults: Faults,
    server: Server,
    max_body_bytes: usize,
}

/// `router` with faults applied to its APIs, the admin endpoint added and the fault counters
/// appended to its `/metrics`. `max_body_bytes` is the server's body limit: a faulted request's
/// body is read (up to it) and dropped before the answer, as Go's servers drain a body, so that
/// the connection stays usable and a client still sending a large body is not cut off.
pub fn guarded(router: Router, faults: &Faults, server: Server, max_body_bytes: usize) -> Router {
    router
        .merge(admin_router(faults.clone()))
        .layer(axum::middleware::from_fn_with_state(
            Guard {
                faults: faults.clone(),
                server,
                max_body_bytes,
            },
            guard,
        ))
}

async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/metrics" && g.server != Server::TempoOtlpHttp {
        return with_fault_metrics(next.run(req).await, &g).await;
    }
    let Some(api) = g.server.api(req.method(), path) else {
        return next.run(req).await;
    };
    let verdict = g.faults.check(api).await;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(refused) = http_response(api, verdict, content_type) else {
        return next.run(req).await;
    };
    // Read and dropped, never decoded or stored; one over the limit is left unread (the
    // connection then closes, as after the server's own 413).
    let _ = axum::body::to_bytes(req.into_body(), g.max_body_bytes).await;
    refused
}

/// The server's `/metrics` with the fault counters after its own families.
async fn with_fault_metrics(response: Response, g: &Guard) -> Response {
    super::http::append_exposition(response, &g.faults.metric_families(g.server)).await
}

/// The admin endpoint, on every embedded HTTP server (each shows and sets every API's fault):
///
/// - `GET /stack/faults`: the faults set, `{"loki_push": {"outage": "29s"}, ...}`;
/// - `PUT /stack/faults`: sets the faults of the APIs named in the body (`null` clears one),
///   answers as GET; a bad body gets 400 saying what is wrong, and changes nothing;
/// - `PUT /stack/faults/{api}`: sets one API's fault from a fault object;
/// - `DELETE /stack/faults`: clears every fault; `DELETE /stack/faults/{api}`: one.
pub fn admin_router(faults: Faults) -> Router {
    Router::new()
        .route(
            ADMIN_PATH,
            get(admin_get).put(admin_put).delete(admin_clear_all),
        )
        .route(
            &format!("{ADMIN_PATH}/{{api}}"),
            get(admin_get_one)
                .put(admin_put_one)
                .delete(admin_clear_one),
        )
        .with_state(faults)
}

fn json_response(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}

/// Why the admin endpoint refused a request: 400 (or 404 for an unknown API in the path), with
/// the reason as plain text.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("invalid JSON body: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error(transparent)]
    NoSuchApi(FaultError),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            AdminError::NoSuchApi(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        (
            status,
            [(header::CONTENT_TYPE, wire::http::TEXT_PLAIN)],
            format!("{self}\n"),
        )
            .into_response()
    }
}

fn path_api(name: &str) -> Result<Api, AdminError> {
    name.parse().map_err(AdminError::NoSuchApi)
}

async fn admin_get(State(f): State<Faults>) -> Response {
    json_response(f.to_json())
}

async fn admin_put(
    State(f): State<Faults>,
    body: axum::body::Bytes,
) -> Result<Response, AdminError> {
    f.apply_json(&serde_json::from_slice(&body)?)?;
    Ok(json_response(f.to_json()))
}

async fn admin_clear_all(State(f): State<Faults>) -> Response {
    f.clear_all();
    json_response(f.to_json())
}

async fn admin_get_one(
    State(f): State<Faults>,
    Path(api): Path<String>,
) -> Result<Response, AdminError> {
    Ok(json_response(f.get(path_api(&api)?).to_json()))
}

async fn admin_put_one(
    State(f): State<Faults>,
    Path(api): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AdminError> {
    let api = path_api(&api)?;
    let fault = Fault::from_json(api.name(), &serde_json::from_slice(&body)?)?;
    f.set(api, fault);
    Ok(json_response(f.get(api).to_json()))
}

async fn admin_clear_one(
    State(f): State<Faults>,
    Path(api): Path<String>,
) -> Result<Response, AdminError> {
    f.clear(path_api(&api)?);
    Ok(json_response(f.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fault(v: Value) -> Result<Fault, FaultError> {
        Fault::from_json("loki_push", &v)
    }

    #[test]
    fn every_nth_is_exact() {
        let r = Rate::new(0.1).unwrap();
        let picked: Vec<u64> = (1..=30).filter(|i| r.picks(*i)).collect();
        assert_eq!(picked, [10, 20, 30]);
        let half = Rate::new(0.5).unwrap();
        assert_eq!((1..=6).filter(|i| half.picks(*i)).count(), 3);
        assert!((1..=5).all(|i| Rate::new(1.0).unwrap().picks(i)));
        assert!((1..=5).all(|i| !Rate::new(0.0).unwrap().picks(i)));
        assert_eq!(Rate::new(1.5), None);
        assert_eq!(Rate::new(f64::NAN), None);
    }

    #[test]
    fn json_round_trips() {
        let v = json!({"error_rate": 0.25, "status": 500, "latency": "100ms..2s",
            "outage": true, "throttle_rate": 0.1, "retry_after": 7});
        let f = fault(v.clone()).unwrap();
        assert_eq!(f.error_status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            f.latency,
            Some(Latency {
                min: Duration::from_millis(100),
                max: Duration::from_secs(2)
            })
        );
        assert_eq!(f.to_json(), v);
        assert_eq!(fault(f.to_json()).unwrap(), f);
        // The error status defaults to 503; an empty object is no fault.
        let f = fault(json!({"error_rate": 0.5})).unwrap();
        assert_eq!(f.error_status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(fault(json!({})).unwrap().is_none());
        assert_eq!(
            fault(json!({"outage": "30s"})).unwrap().outage,
            Some(Outage::For(Duration::from_secs(30)))
        );
    }

    #[test]
    fn bad_settings_name_the_bad_part() {
        let e = |v| fault(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"error_rate": 2})),
            "loki_push.error_rate: must be a number from 0 to 1, got 2"
        );
        assert!(e(json!({"error_rate": 0.1, "status": 200})).starts_with("loki_push.status:"));
        assert!(e(json!({"latency": "2s..1s"})).starts_with("loki_push.latency:"));
        assert!(e(json!({"latency": "1h"})).starts_with("loki_push.latency:"));
        assert!(e(json!({"outage": "soon"})).starts_with("loki_push.outage:"));
        assert!(e(json!({"retry_after": 5})).contains("retry_after without throttle_rate"));
        assert!(e(json!({"status": 500})).contains("status without error_rate"));
        assert!(e(json!({"eror_rate": 0.1})).contains("unknown setting \"eror_rate\""));
        assert!(e(json!([1])).contains("must be a JSON object"));
    }

    #[test]
    fn flags_parse_and_bad_ones_say_why() {
        let (api, f) = parse_flag("loki_push=error_rate:0.1,status:500").unwrap();
        assert_eq!(api, Api::LokiPush);
        assert_eq!(f.error_rate, Rate::new(0.1).unwrap());
        assert_eq!(f.error_status, StatusCode::INTERNAL_SERVER_ERROR);
        let (api, f) = parse_flag("mimir_write=outage").unwrap();
        assert_eq!(
            (api, f.outage),
            (Api::MimirWrite, Some(Outage::UntilCleared))
        );
        let (_, f) = parse_flag(
            "tempo_otlp_grpc=outage:30s,latency:10ms..50ms,throttle_rate:0.5,retry_after:3",
        )
        .unwrap();
        assert_eq!(f.outage, Some(Outage::For(Duration::from_secs(30))));
        assert_eq!(f.retry_after_s, 3);
        let e = |s| parse_flag(s).unwrap_err().to_string();
        assert!(e("loki=outage").contains("unknown API \"loki\" (one of: loki_push,"));
        assert!(e("loki_push").contains("expected API=KEY:VALUE"));
        assert!(e("loki_push=").contains("no settings"));
        assert!(e("loki_push=error_rate:x").contains("loki_push.error_rate: must be a number"));
        assert!(e("loki_push=outage,outage:1s").contains("outage given twice"));
        assert!(e("loki_push=colour:red").contains("unknown setting \"colour\""));
    }

    #[test]
    fn requests_meet_outage_then_throttle_then_error() {
        let now = Instant::now();
        let mut s = Slot::default();
        s.set(
            Fault {
                throttle_rate: Rate::new(0.5).unwrap(),
                error_rate: Rate::new(0.25).unwrap(),
                retry_after_s: 4,
                ..Fault::default()
            },
            now,
        );
        let got: Vec<Verdict> = (0..4).map(|_| s.next(now).0).collect();
        let throttle = Verdict::Throttle { retry_after_s: 4 };
        // Request 4 is picked by both: the throttle has it.
        assert_eq!(got, [Verdict::Pass, throttle, Verdict::Pass, throttle]);
        s.set(
            Fault {
                outage: Some(Outage::For(Duration::from_secs(10))),
                error_rate: Rate::new(1.0).unwrap(),
                ..Fault::default()
            },
            now,
        );
        assert_eq!(s.next(now).0, Verdict::Outage);
        assert_eq!(
            s.current(now + Duration::from_secs(4)).outage,
            Some(Outage::For(Duration::from_secs(6)))
        );
        // The outage ends by itself; the error rate stays.
        let later = now + Duration::from_secs(10);
        assert_eq!(
            s.next(later).0,
            Verdict::Error(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(s.current(later).outage, None);
    }

    #[test]
    fn requests_go_to_their_apis() {
        let post = Method::POST;
        assert_eq!(
            Server::Loki.api(&post, "/loki/api/v1/push"),
            Some(Api::LokiPush)
        );
        assert_eq!(
            Server::Loki.api(&Method::GET, "/loki/api/v1/query_range"),
            Some(Api::LokiQuery)
        );
        assert_eq!(Server::Loki.api(&Method::GET, "/metrics"), None);
        assert_eq!(Server::Loki.api(&Method::GET, ADMIN_PATH), None);
        assert_eq!(
            Server::Mimir.api(&post, "/api/v1/push"),
            Some(Api::MimirWrite)
        );
        assert_eq!(
            Server::Mimir.api(&Method::GET, "/prometheus/api/v1/query"),
            Some(Api::MimirQuery)
        );
        assert_eq!(
            Server::Tempo.api(&Method::GET, "/api/search"),
            Some(Api::TempoQuery)
        );
        assert_eq!(Server::Tempo.api(&Method::GET, "/api/echo"), None);
        assert_eq!(
            Server::TempoOtlpHttp.api(&post, "/v1/traces"),
            Some(Api::TempoOtlpHttp)
        );
    }

    #[test]
    fn grpc_throttle_carries_retry_info() {
        let s = grpc_status(Api::TempoOtlpGrpc, Verdict::Throttle { retry_after_s: 9 }).unwrap();
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        let details: wire::otlp::rpc::Status = prost::Message::decode(s.details()).unwrap();
        let info: wire::otlp::rpc::RetryInfo =
            prost::Message::decode(details.details[0].value.as_slice()).unwrap();
        assert_eq!(info.retry_delay.unwrap().seconds, 9);
        let outage = grpc_status(Api::TempoOtlpGrpc, Verdict::Outage).unwrap();
        assert_eq!(outage.code(), tonic::Code::Unavailable);
        assert!(grpc_status(Api::TempoOtlpGrpc, Verdict::Pass).is_none());
    }

    #[tokio::test]
    async fn the_handle_sets_keeps_and_clears() {
        let faults = Faults::new();
        let copy = faults.clone();
        faults.set(
            Api::MimirWrite,
            Fault {
                error_rate: Rate::new(1.0).unwrap(),
                error_status: StatusCode::BAD_GATEWAY,
                ..Fault::default()
            },
        );
        assert_eq!(
            copy.check(Api::MimirWrite).await,
            Verdict::Error(StatusCode::BAD_GATEWAY)
        );
        // An outage on top keeps the error rate for when it ends.
        faults.outage(Api::MimirWrite, Duration::from_secs(3600));
        let f = copy.get(Api::MimirWrite);
        assert!(matches!(f.outage, Some(Outage::For(_))));
        assert_eq!(f.error_status, StatusCode::BAD_GATEWAY);
        assert_eq!(copy.check(Api::MimirWrite).await, Verdict::Outage);
        assert_eq!(copy.check(Api::LokiPush).await, Verdict::Pass);
        assert_eq!(faults.refused(Api::MimirWrite), 2);
        faults.clear(Api::MimirWrite);
        assert!(copy.all().is_empty());
        assert_eq!(copy.check(Api::MimirWrite).await, Verdict::Pass);
        // Counts survive clearing: they are what /metrics shows.
        assert_eq!(faults.refused(Api::MimirWrite), 2);
    }

    proptest! {
        /// Any `--fault` value or JSON fault is parsed or refused, never a panic.
        #[test]
        fn any_flag_or_json_is_parsed_or_refused(arg in ".{0,80}", n in proptest::num::f64::ANY) {
            let _ = parse_flag(&arg);
            for key in ["error_rate", "status", "latency", "outage", "throttle_rate", "retry_after"] {
                let _ = Fault::from_json("x", &json!({ key: n }));
                let _ = Fault::from_json("x", &json!({ key: arg }));
            }
        }

        /// The first N requests hold exactly ⌊N·r⌋ picks, for any rate in millionths.
        #[test]
        fn picks_are_exactly_floor_n_r(millionths in 0u64..=1_000_000, n in 0u64..5000) {
            let r = Rate(millionths);
            let picked = (1..=n).filter(|i| r.picks(*i)).count() as u64;
            prop_assert_eq!(picked, n * millionths / 1_000_000);
        }

        /// A latency range's delays stay in the range.
        #[test]
        fn latency_stays_in_range(min in 0u64..10_000, extra in 0u64..10_000, i in 0u64..1_000_000) {
            let l = Latency { min: Duration::from_millis(min), max: Duration::from_millis(min + extra) };
            let d = l.of(i);
            prop_assert!(d >= l.min && d <= l.max);
        }
    }
}
