//! collector's integration tests, one binary so the workspace links one test executable per
//! crate: the CLI, config checks, every source over real sockets or files, the writers and the
//! whole runtime against the embedded stack (and Debian's servers where installed).
//! `tailing_harness` drives the tailing sources for `file_source` and `docker_source`.

mod bench;
mod cli;
mod config_check;
mod docker_source;
mod durability;
mod file_source;
mod gateway_e2e;
mod node_agent_real;
mod outage;
mod pipeline_e2e;
mod receivers_auth;
mod receivers_net;
mod scrape_source;
mod tailing_harness;
mod writers_e2e;
