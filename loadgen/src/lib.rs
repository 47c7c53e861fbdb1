//! loadgen: emulates a retail fleet, pushes its telemetry through the collector, verifies what
//! arrived by reading it back, and measures throughput, latency and loss.
//!
//! | module | what it holds |
//! |---|---|
//! | [`fleet`] | devices (server, pos, router, switch, custom), their identity and labels, from a seed |
//! | [`signals`] | per-device generators: metrics (series and `/metrics` text), logs (JSON, syslog, logfmt), checkout traces, nominal rates |
//! | [`canary`] | how a device stamps sequence number and send time into a canary share of each signal, and how the verifier reads them back |
//!
//! Later modules (the work is in progress): the open-loop engine (schedules from `rand_distr`,
//! HdrHistogram recorder), delivery, the verifier, results.

pub mod canary;
pub mod fleet;
pub mod signals;
