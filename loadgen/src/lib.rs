//! loadgen: emulates a retail fleet, pushes its telemetry through the collector, verifies what
//! arrived by reading it back, and measures throughput, latency and loss.
//!
//! | module | what it holds |
//! |---|---|
//! | [`fleet`] | devices (server, pos, router, switch, custom), their identity and labels, from a seed |
//! | [`generate`] | per-device generators: metrics (series and `/metrics` text), logs (JSON, syslog, logfmt), checkout traces, nominal rates |
//! | [`canary`] | how a device stamps sequence number and send time into a canary share of each signal, and how the verifier reads them back |
//! | [`schedule`] | open-loop arrivals: intended send times per shard (Poisson or fixed interval, ramp, warmup) |
//! | [`recorder`] | sent/acknowledged/errors and send latency from the intended time, per interval and in total; CPU/RSS sampling |
//! | [`payload`] | payload formats: Loki push, remote write and OTLP requests built from generator output, encoded for a target (the `lading_payload` analog) |
//! | [`engine`] | where loadgen decides when to send: the open-loop send loop, batching and backfill, written against a [`engine::Transport`] |
//! | [`send`] | the transport: one HTTP client, the per-target in-flight bound, error classification |
//! | [`deliver`] | delivery besides push: per-device scrape targets (file_sd) and tailed, rotated log files |
//! | [`node`] | one device as a long-running exporter (`loadgen node`): `/metrics`, a log file, OTLP traces; the device half of a compose node |
//! | [`progress`] | live counters of a run and their display: a bar on a terminal, plain lines in a CI log; canaries found, ETA, the drain |
//! | [`read`] | the read path under load (`--viewers`): goose users as Grafana viewers refreshing dashboards, query latency per kind |
//! | [`verify`] | the ledger of acknowledged canaries and the verifier that reads them back: loss, duplicates, order, write-to-queryable latency |
//! | [`run`] | a whole run in outline: settings and checks, target (a stack × a collector: in process, spawned, running, none), preflight, sending, verification, `results.json` and `report.html`; `--slo` checks |
//! | [`capacity`] | `loadgen capacity`: runs in stages of growing load (ramp, then bisection: [`capacity::plan`]) to the knee, `capacity.json` and `capacity.html` |
//! | [`combine`] | merging shard results (checked to be shards of one run; exact histogram sums) and comparing two runs or two capacity searches |
//!
//! A run can emulate one shard of the fleet ([`fleet::Shard`], `--shard i/n` or
//! `--shard-from-env`), so N processes or pods (`deploy/k8s/loadgen-shards.yaml`) share a
//! fleet, and `loadgen merge` adds their results up.
//!
//! The `loadgen` binary (`src/bin/loadgen.rs`) is the command line over these.

pub mod canary;
pub mod capacity;
pub mod combine;
pub mod deliver;
pub mod engine;
pub mod fleet;
pub mod generate;
pub mod node;
pub mod payload;
pub mod progress;
pub mod read;
pub mod recorder;
pub mod run;
pub mod schedule;
pub mod send;
pub mod verify;

pub use wire::Signal;
