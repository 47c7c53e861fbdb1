//! steps: the cucumber-rs world and step definitions behind the Gherkin scenarios in
//! `features/`. The same scenarios run against the embedded stack with in-process collectors
//! (`cargo test`), against grafana/loki, mimir, tempo and grafana containers
//! (`cargo test --features e2e`), or against a user's stack (`STEPS_STACK=external`).
//!
//! | module | what it holds |
//! |---|---|
//! | [`target`] | which stack the scenarios run against (`STEPS_STACK`), started once per process |
//! | [`world`] | [`world::StepsWorld`]: one scenario's collectors, nodes, proxies and last query |
//! | [`query`] | the query APIs as the steps call them, each answer kept as an [`query::Exchange`] (query, URL, status, body) for failure messages |
//! | [`eventually`] | polling with a deadline that ends with what was asked and what came back |
//! | [`collectors`] | per-scenario collectors: node agent (the shipped template), gateway, scrape and tail configs |
//! | [`device`] | an emulated store device: `/metrics` exporter and log file writer |
//! | [`docker_engine`] | testkit's Docker Engine API on a unix socket, for the collector's `docker` source |
//! | [`proxy`] | an HTTP proxy that routes by path and injects scripted failures |
//! | [`steps`] | the step definitions, one module per feature file |
//! | [`dashboards`] | the provisioned Grafana dashboards: every panel's query, template variables expanded |
//! | `containers` | (feature `e2e`) stack's containers stack, with the advice the scenarios give without Docker |
//!
//! Scenarios run concurrently in one process: each gets unique label values (its own store
//! location, device and job names) and its own collectors on port 0, and shares the one stack.

pub mod collectors;
#[cfg(feature = "e2e")]
pub mod containers;
pub mod dashboards;
pub mod device;
pub mod eventually;
pub mod proxy;
pub mod query;
pub mod steps;
pub mod target;
pub mod world;

pub use testkit::docker_engine;
pub use world::StepsWorld;
