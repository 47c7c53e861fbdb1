//! steps: the cucumber-rs world and step definitions behind the Gherkin scenarios in
//! `features/`. The same scenarios run against the embedded stack with an in-process collector
//! (`cargo test`), against grafana/loki, mimir, tempo and grafana containers
//! (`cargo test --features e2e`), or against a user's stack (`STEPS_STACK=external`).

#[cfg(feature = "e2e")]
pub mod containers;
pub mod dashboards;
pub mod images;
