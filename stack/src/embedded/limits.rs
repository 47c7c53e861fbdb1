//! The per-tenant limits of the embedded Loki and Mimir, as their real counterparts apply them.
//!
//! **Validation and series limits** ([`LokiLimits`], [`MimirLimits`]): on by default, with the
//! real servers' defaults (Loki 3's `limits_config`, Mimir's `limits`), each changeable with a
//! `stack serve` flag. The checks themselves, with the servers' messages and discard reasons, are
//! in `loki/mod.rs` and `mimir/write.rs`.
//!
//! | server | setting (default) | refused |
//! |---|---|---|
//! | Loki | `max_label_names_per_series` (15), `max_label_name_length` (1024), `max_label_value_length` (2048) | the stream, 400 |
//! | Loki | `reject_old_samples_max_age` (168h), `creation_grace_period` (10m) | the entry, 400 |
//! | Loki | `max_global_streams_per_user` (5000) | a new stream past it, 429 |
//! | Mimir | `max_label_names_per_series` (30; `_info` series 80), `max_label_name_length` (1024), `max_label_value_length` (2048) | the series, 400 |
//! | Mimir | `creation_grace_period` (10m), `past_grace_period` (0: off) | the series, 400 |
//! | Mimir | `max_global_series_per_user` (150000) | a new series past it, 400 |
//!
//! A count or length limit of 0 turns that check off here (the real servers would refuse every
//! stream or series with 0, which no one wants); `max_global_*_per_user` 0 is "no limit" in the
//! real servers too.
//!
//! **Ingestion rate limits** ([`IngestLimits`]), as Loki's, Mimir's and Tempo's distributors
//! apply them, so a test (and `loadgen capacity`) can put a known ceiling on the embedded stack:
//!
//! | server | settings | unit counted per push | answer over the limit |
//! |---|---|---|---|
//! | Loki | `ingestion_rate_mb`, `ingestion_burst_size_mb` | bytes of the validated log lines (and structured metadata) | 429, `Ingestion rate limit exceeded for user …` |
//! | Mimir | `ingestion_rate`, `ingestion_burst_size` | samples + exemplars + metadata of the valid series | 429, `the request has been rejected because the tenant exceeded the ingestion rate limit …` |
//! | Tempo | `ingestion_rate_limit_bytes`, `ingestion_burst_size_bytes` | encoded bytes of the export's resource spans | 429 / gRPC `RESOURCE_EXHAUSTED`, `RATE_LIMITED: ingestion rate limit …` |
//!
//! Each rate limit is a token bucket per tenant with Go's `golang.org/x/time/rate` semantics
//! (what the three servers use): it starts full at the burst, refills at the rate, and a push of
//! `n` units is allowed whole or refused whole (nothing of a refused push is stored); a push
//! larger than the burst is never allowed. The real servers send no `Retry-After`; the embedded
//! stack adds one (whole seconds until the bucket holds the push again) so that clients can back
//! off precisely. No rate limit is set by default ([`IngestLimits::default`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Loki's validation and stream limits (its `limits_config`); the default is Loki 3's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LokiLimits {
    /// `max_label_names_per_series` (15): more label names refuse the stream (`service_name`
    /// not counted); 0 turns the check off.
    pub max_label_names_per_series: usize,
    /// `max_label_name_length` (1024 bytes); 0 turns the check off.
    pub max_label_name_length: usize,
    /// `max_label_value_length` (2048 bytes); 0 turns the check off.
    pub max_label_value_length: usize,
    /// `creation_grace_period` (10m): entries further ahead of the clock are refused.
    pub creation_grace_period: Duration,
    /// `reject_old_samples_max_age` (168h): older entries are refused; `None` is
    /// `reject_old_samples: false`.
    pub reject_old_samples_max_age: Option<Duration>,
    /// `max_global_streams_per_user` (5000, as one ingester with replication factor 1 applies
    /// it): a new stream past it is refused; 0 is no limit.
    pub max_global_streams_per_user: usize,
}

impl Default for LokiLimits {
    fn default() -> Self {
        LokiLimits {
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            creation_grace_period: Duration::from_secs(10 * 60),
            reject_old_samples_max_age: Some(Duration::from_secs(168 * 3600)),
            max_global_streams_per_user: 5000,
        }
    }
}

impl LokiLimits {
    /// What `deploy/loki/loki.yaml` sets for load runs, and loadgen's own embedded stack
    /// applies: Loki's defaults but 100,000 streams per tenant (a load run pushes one stream per
    /// device, and loadgen's default fleet alone is 5,000 devices).
    pub fn for_load_runs() -> LokiLimits {
        LokiLimits {
            max_global_streams_per_user: 100_000,
            ..LokiLimits::default()
        }
    }
}

/// Mimir's validation and series limits (its `limits`); the default is Mimir's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MimirLimits {
    /// `max_label_names_per_series` (30, `__name__` counted); 0 turns the check off.
    pub max_label_names_per_series: usize,
    /// `max_label_names_per_info_series` (80): the limit of series whose name ends in `_info`
    /// (no effect below `max_label_names_per_series`).
    pub max_label_names_per_info_series: usize,
    /// `max_label_name_length` (1024 bytes); 0 turns the check off.
    pub max_label_name_length: usize,
    /// `max_label_value_length` (2048 bytes, the metric name included); 0 turns the check off.
    pub max_label_value_length: usize,
    /// `creation_grace_period` (10m): a sample further ahead of the clock refuses its series.
    pub creation_grace_period: Duration,
    /// `past_grace_period` (0, off): a sample older than now minus this (and the out-of-order
    /// window) refuses its series.
    pub past_grace_period: Duration,
    /// `max_global_series_per_user` (150000): a new series past it is refused; 0 is no limit.
    pub max_global_series_per_user: usize,
}

impl Default for MimirLimits {
    fn default() -> Self {
        MimirLimits {
            max_label_names_per_series: 30,
            max_label_names_per_info_series: 80,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            creation_grace_period: Duration::from_secs(10 * 60),
            past_grace_period: Duration::ZERO,
            max_global_series_per_user: 150_000,
        }
    }
}

impl MimirLimits {
    /// What `deploy/mimir/mimir.yaml` sets for load runs, and loadgen's own embedded stack
    /// applies: Mimir's defaults but no series limit (a 5,000-device run is ~100k series).
    pub fn for_load_runs() -> MimirLimits {
        MimirLimits {
            max_global_series_per_user: 0,
            ..MimirLimits::default()
        }
    }
}

/// Milliseconds of a duration, saturating at `i64::MAX`.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Nanoseconds of a duration, saturating at `i64::MAX`.
pub fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A rate and a burst, in the unit of the server that applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Units per second the bucket refills with.
    pub rate: f64,
    /// The bucket's size: the most units one push (or a burst of pushes) may carry.
    pub burst: f64,
}

impl RateLimit {
    /// A limit with these values; `None` unless both are finite and the rate above zero.
    pub fn new(rate: f64, burst: f64) -> Option<RateLimit> {
        (rate.is_finite() && burst.is_finite() && rate > 0.0 && burst >= 0.0)
            .then_some(RateLimit { rate, burst })
    }
}

/// The ingestion limits of the embedded stack; `None` leaves a server unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IngestLimits {
    /// Loki: bytes of log lines per second per tenant.
    pub loki_bytes: Option<RateLimit>,
    /// Mimir: samples (plus exemplars and metadata) per second per tenant.
    pub mimir_samples: Option<RateLimit>,
    /// Tempo: bytes of spans per second per tenant.
    pub tempo_bytes: Option<RateLimit>,
}

/// Loki's megabyte (`ingestion_rate_mb` is in MiB: Loki multiplies by 1 << 20).
pub const LOKI_MB: f64 = 1_048_576.0;
/// Loki's default `ingestion_burst_size_mb`.
pub const LOKI_DEFAULT_BURST_MB: f64 = 6.0;
/// Mimir's default `ingestion_burst_size`.
pub const MIMIR_DEFAULT_BURST: f64 = 200_000.0;
/// Tempo's default `ingestion_burst_size_bytes`.
pub const TEMPO_DEFAULT_BURST_BYTES: f64 = 20_000_000.0;

/// The limits as the real servers' settings name them (what `stack serve` takes as flags): a
/// server is limited when its rate is given; a burst not given is that server's default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LimitSettings {
    pub loki_ingestion_rate_mb: Option<f64>,
    pub loki_ingestion_burst_size_mb: Option<f64>,
    pub mimir_ingestion_rate: Option<f64>,
    pub mimir_ingestion_burst_size: Option<f64>,
    pub tempo_ingestion_rate_limit_bytes: Option<f64>,
    pub tempo_ingestion_burst_size_bytes: Option<f64>,
}

/// A limit setting that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{setting}: the rate must be above 0 and the burst at least 0 (got rate {rate}, burst {burst})"
)]
pub struct LimitError {
    pub setting: &'static str,
    pub rate: f64,
    pub burst: f64,
}

impl LimitSettings {
    /// The limits these settings ask for.
    pub fn limits(&self) -> Result<IngestLimits, LimitError> {
        fn one(
            setting: &'static str,
            rate: Option<f64>,
            burst: Option<f64>,
            default_burst: f64,
            scale: f64,
        ) -> Result<Option<RateLimit>, LimitError> {
            let Some(rate) = rate else {
                return Ok(None);
            };
            let burst = burst.unwrap_or(default_burst);
            RateLimit::new(rate * scale, burst * scale)
                .map(Some)
                .ok_or(LimitError {
                    setting,
                    rate,
                    burst,
                })
        }
        Ok(IngestLimits {
            loki_bytes: one(
                "Loki ingestion_rate_mb",
                self.loki_ingestion_rate_mb,
                self.loki_ingestion_burst_size_mb,
                LOKI_DEFAULT_BURST_MB,
                LOKI_MB,
            )?,
            mimir_samples: one(
                "Mimir ingestion_rate",
                self.mimir_ingestion_rate,
                self.mimir_ingestion_burst_size,
                MIMIR_DEFAULT_BURST,
                1.0,
            )?,
            tempo_bytes: one(
                "Tempo ingestion_rate_limit_bytes",
                self.tempo_ingestion_rate_limit_bytes,
                self.tempo_ingestion_burst_size_bytes,
                TEMPO_DEFAULT_BURST_BYTES,
                1.0,
            )?,
        })
    }
}

/// A token bucket on an explicit clock (seconds since some start), so its arithmetic is pure
/// and testable without waiting.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last_s: f64,
}

impl TokenBucket {
    /// A full bucket at time `now_s`.
    pub fn new(limit: RateLimit, now_s: f64) -> TokenBucket {
        TokenBucket {
            limit,
            tokens: limit.burst,
            last_s: now_s,
        }
    }

    /// Takes `n` units at `now_s` if the bucket holds them; otherwise leaves the bucket as it is
    /// and answers how long until it would hold them (infinite when `n` is over the burst).
    pub fn take(&mut self, now_s: f64, n: f64) -> Result<(), Duration> {
        // A clock going backwards (it never should) refills nothing.
        let elapsed = (now_s - self.last_s).max(0.0);
        self.tokens = (self.tokens + elapsed * self.limit.rate).min(self.limit.burst);
        self.last_s = self.last_s.max(now_s);
        if n <= self.tokens {
            self.tokens -= n;
            return Ok(());
        }
        if n > self.limit.burst {
            return Err(Duration::MAX);
        }
        Err(Duration::from_secs_f64(
            ((n - self.tokens) / self.limit.rate).min(1e9),
        ))
    }

    /// Units available now (after the last `take`).
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// A push refused by a rate limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refused {
    /// The limit that refused it.
    pub limit: RateLimit,
    /// What to send as `Retry-After`: whole seconds, at least 1.
    pub retry_after_s: u64,
}

/// One rate limit applied per tenant, each tenant with its own bucket.
#[derive(Debug)]
pub struct TenantLimiter {
    limit: RateLimit,
    start: Instant,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl TenantLimiter {
    pub fn new(limit: RateLimit) -> TenantLimiter {
        TenantLimiter {
            limit,
            start: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limit applied.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Allows `n` units for `tenant` now, or refuses them whole.
    pub fn allow(&self, tenant: &str, n: u64) -> Result<(), Refused> {
        self.allow_at(tenant, n, self.start.elapsed().as_secs_f64())
    }

    fn allow_at(&self, tenant: &str, n: u64, now_s: f64) -> Result<(), Refused> {
        let mut buckets = self.buckets.lock();
        let bucket = buckets
            .entry(tenant.to_string())
            .or_insert_with(|| TokenBucket::new(self.limit, now_s));
        bucket.take(now_s, n as f64).map_err(|wait| Refused {
            limit: self.limit,
            retry_after_s: retry_after(wait, self.limit),
        })
    }
}

/// Whole seconds to wait, at least 1; a push that can never fit waits as long as the bucket
/// takes to fill.
fn retry_after(wait: Duration, limit: RateLimit) -> u64 {
    let wait = if wait == Duration::MAX {
        limit.burst / limit.rate
    } else {
        wait.as_secs_f64()
    };
    (wait.ceil() as u64).clamp(1, 3600)
}

/// An optional limiter, as the servers hold it.
pub fn limiter(limit: Option<RateLimit>) -> Option<TenantLimiter> {
    limit.map(TenantLimiter::new)
}

/// `response` with a `Retry-After` of `seconds`.
pub fn with_retry_after(
    mut response: axum::response::Response,
    seconds: u64,
) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(seconds),
    );
    response
}

/// Loki's message (`validation.RateLimitedErrorMsg`).
pub fn loki_message(tenant: &str, limit: RateLimit, lines: u64, bytes: u64) -> String {
    format!(
        "Ingestion rate limit exceeded for user {tenant} (limit: {} bytes/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
        limit.rate as u64
    )
}

/// Mimir's message (`ingestionRateLimitedMsgFormat`, with its error id and flags).
pub fn mimir_message(limit: RateLimit) -> String {
    format!(
        "the request has been rejected because the tenant exceeded the ingestion rate limit, set to {} items/s with a maximum allowed burst of {}. This limit is applied on the total number of samples, exemplars and metadata received across all distributors (err-mimir-tenant-max-ingestion-rate). To adjust the related per-tenant limits, configure -distributor.ingestion-rate-limit and -distributor.ingestion-burst-size, or contact your service administrator.",
        limit.rate, limit.burst as u64
    )
}

/// Tempo's message (its distributor's `RATE_LIMITED` error).
pub fn tempo_message(limit: RateLimit, bytes: u64) -> String {
    format!(
        "RATE_LIMITED: ingestion rate limit ({} bytes) exceeded while adding {bytes} bytes",
        limit.rate as u64
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limit(rate: f64, burst: f64) -> RateLimit {
        RateLimit::new(rate, burst).expect("valid limit")
    }

    #[test]
    fn starts_full_refuses_beyond_and_refills() {
        let mut b = TokenBucket::new(limit(10.0, 20.0), 0.0);
        assert_eq!(b.take(0.0, 20.0), Ok(()));
        let wait = b.take(0.0, 5.0).expect_err("empty bucket refuses");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9);
        // The refused push took nothing: half a second later exactly five are there.
        assert_eq!(b.take(0.5, 5.0), Ok(()));
        assert_eq!(b.take(0.5, 21.0), Err(Duration::MAX));
    }

    #[test]
    fn settings_scale_and_default_the_burst() {
        let l = LimitSettings {
            loki_ingestion_rate_mb: Some(4.0),
            mimir_ingestion_rate: Some(1000.0),
            mimir_ingestion_burst_size: Some(2000.0),
            ..LimitSettings::default()
        }
        .limits()
        .expect("valid settings");
        assert_eq!(l.loki_bytes, Some(limit(4.0 * LOKI_MB, 6.0 * LOKI_MB)));
        assert_eq!(l.mimir_samples, Some(limit(1000.0, 2000.0)));
        assert_eq!(l.tempo_bytes, None);
        let bad = LimitSettings {
            tempo_ingestion_rate_limit_bytes: Some(0.0),
            ..LimitSettings::default()
        };
        assert!(bad.limits().is_err());
    }

    #[test]
    fn tenants_have_their_own_buckets() {
        let l = TenantLimiter::new(limit(1.0, 100.0));
        assert!(l.allow_at("a", 100, 0.0).is_ok());
        assert!(l.allow_at("b", 100, 0.0).is_ok());
        let refused = l.allow_at("a", 3, 0.0).expect_err("a is spent");
        assert_eq!(refused.retry_after_s, 3);
    }

    #[test]
    fn messages_are_the_servers() {
        assert_eq!(
            mimir_message(limit(2.5, 7.0)),
            "the request has been rejected because the tenant exceeded the ingestion rate limit, set to 2.5 items/s with a maximum allowed burst of 7. This limit is applied on the total number of samples, exemplars and metadata received across all distributors (err-mimir-tenant-max-ingestion-rate). To adjust the related per-tenant limits, configure -distributor.ingestion-rate-limit and -distributor.ingestion-burst-size, or contact your service administrator."
        );
        assert_eq!(
            tempo_message(limit(15_000_000.0, 20_000_000.0), 10),
            "RATE_LIMITED: ingestion rate limit (15000000 bytes) exceeded while adding 10 bytes"
        );
        assert!(loki_message("fake", limit(4.0 * 1024.0 * 1024.0, 1.0), 3, 12).starts_with(
            "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest '3' lines totaling '12' bytes"
        ));
    }

    proptest! {
        /// Over any window, what a bucket lets through is at most its burst plus rate × time,
        /// and a refused take changes nothing.
        #[test]
        fn never_more_than_burst_plus_rate_times_time(
            rate in 0.1f64..1000.0,
            burst in 0.0f64..5000.0,
            pushes in proptest::collection::vec((0.0f64..2.0, 0u64..800), 1..200),
        ) {
            let l = limit(rate, burst);
            let mut b = TokenBucket::new(l, 0.0);
            let (mut now, mut allowed) = (0.0, 0.0);
            for (dt, n) in pushes {
                now += dt;
                let before = b.clone();
                match b.take(now, n as f64) {
                    Ok(()) => allowed += n as f64,
                    Err(wait) => {
                        prop_assert!(b.tokens() < n as f64);
                        prop_assert!(before.tokens() <= b.tokens() + 1e-9);
                        if n as f64 > burst {
                            prop_assert_eq!(wait, Duration::MAX);
                        } else {
                            // Waiting as long as told is enough.
                            let mut later = b.clone();
                            prop_assert!(later.take(now + wait.as_secs_f64() + 1e-6, n as f64).is_ok());
                        }
                    }
                }
                prop_assert!(allowed <= burst + rate * now + 1e-6);
                prop_assert!(b.tokens() >= -1e-9 && b.tokens() <= burst + 1e-9);
            }
        }

        /// Pushes within the rate (after the burst) are all allowed.
        #[test]
        fn steady_pushes_within_the_rate_pass(rate in 1.0f64..1000.0, k in 1u32..100) {
            let l = limit(rate, rate);
            let mut b = TokenBucket::new(l, 0.0);
            let n = (rate / 2.0).floor();
            for i in 0..k {
                prop_assert!(b.take(f64::from(i) * 0.5, n).is_ok());
            }
        }
    }
}
