//! The pinned images of the real stack, shared by `docker-compose.yaml` (checked equal by
//! `steps/tests/compose.rs`) and the e2e containers (`containers`, `--features e2e`), so both
//! run the same Loki, Mimir, Tempo and Grafana.

/// `(name, tag)` of Grafana Loki 3.x.
pub const LOKI: (&str, &str) = ("grafana/loki", "3.4.2");
/// `(name, tag)` of Grafana Mimir 2.x.
pub const MIMIR: (&str, &str) = ("grafana/mimir", "2.15.0");
/// `(name, tag)` of Grafana Tempo 2.x.
pub const TEMPO: (&str, &str) = ("grafana/tempo", "2.7.1");
/// `(name, tag)` of Grafana.
pub const GRAFANA: (&str, &str) = ("grafana/grafana", "11.5.2");

/// All four, as `name:tag`.
pub fn all() -> [String; 4] {
    [LOKI, MIMIR, TEMPO, GRAFANA].map(|(n, t)| format!("{n}:{t}"))
}
