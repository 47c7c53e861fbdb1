//! stack's integration tests, one binary so the workspace links one test executable per crate:
//! the embedded Loki, Mimir and Tempo APIs over real sockets, the typed clients against them and
//! recorded answers, faults on demand, the `stack serve` binary, and Debian's local Prometheus
//! servers (those skip with a notice when not installed, unless REQUIRE_LOCAL_SERVERS=1).

mod client_fixtures;
mod clients_e2e;
mod conformance_prometheus;
mod faults;
mod ingest_limits;
mod local_servers;
mod loki_api;
mod mimir_api;
mod serve_cli;
mod tempo_api;
mod validation_limits;
