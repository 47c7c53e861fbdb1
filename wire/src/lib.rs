//! Wire formats of the observability pipeline, encode and decode only (no I/O).
//!
//! | module | format |
//! |---|---|
//! | [`loki`] | Loki push API: protobuf + snappy, JSON, JSON + gzip; structured metadata |
//! | [`remote_write`] | Prometheus remote write 1.0: protobuf + snappy; label rules, stale markers |
//! | [`otlp`] | OTLP logs, metrics and traces: protobuf and the OTLP/HTTP JSON mapping; gRPC service types |
//! | [`exposition`] | Prometheus text exposition 0.0.4 (and the OpenMetrics bits a scraper meets) |
//! | [`labels`] | label sets: [`Labels`], the `{a="b", c="d"}` syntax, name rules, sorting |
//! | [`http`] | the tenant header, content types and encodings, credentials ([`http::Auth`]) |
//! | [`signal`] | [`Signal`]: logs, metrics, traces — the one spelling every crate uses |
//! | [`time`] | `now_ns`: the wall clock in Unix nanoseconds, the unit of Loki, OTLP and canary timestamps |
//! | [`redact`] | credentials masked in URLs, free text and command lines before they are shown |
//! | [`compression`] | snappy block format and gzip, both with a bound on the decompressed size |
//!
//! Every decoder takes untrusted bytes and returns a [`WireError`]; none panics (property tests
//! feed them arbitrary bytes).

pub mod budget;
pub mod compression;
pub mod error;
pub mod exposition;
pub mod http;
pub mod labels;
pub mod loki;
pub mod otlp;
pub mod redact;
pub mod remote_write;
pub mod signal;
pub mod time;

pub use error::WireError;
pub use labels::Labels;
pub use signal::Signal;

/// Default bound on a decompressed body: the same 100 MiB order of magnitude as Loki's and
/// Mimir's gRPC/HTTP receive limits. Callers that know better pass their own.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 100 << 20;
