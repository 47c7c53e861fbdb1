//! steps' integration tests other than the cucumber scenarios (`tests/features.rs`, its own
//! binary because cucumber brings its own harness): static checks of `deploy/` and
//! `docker-compose.yaml` (their hardening among them), and `--features e2e` without Docker
//! (`containers_no_docker`).

mod compose;
mod containers_no_docker;
mod deploy;
mod hardening;
