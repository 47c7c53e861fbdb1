//! loadgen's integration tests, one binary so the workspace links one test executable per crate:
//! the CLI, delivery paths, runs against the embedded stack and a spawned collector, shards and
//! merging, read-back verification, Grafana viewers reading during a run, the k8s manifest, and
//! credentials never shown in any output.

mod capacity;
mod cli;
mod deliver_smoke;
mod k8s_manifest;
mod merge;
mod node;
mod otlp_delivery;
mod peers;
mod redaction;
mod run_collector_cmd;
mod run_dynamics;
mod run_shards;
mod run_smoke;
mod verify;
mod viewers;
