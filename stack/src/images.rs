//! The real stack as `deploy/` describes it: the pinned images, shared by `docker-compose.yaml`
//! (checked equal by steps' compose test) and the containers stack ([`crate::containers`]), so
//! both run the same Loki, Mimir, Tempo and Grafana; the `deploy/` folder holding their configs;
//! and where Grafana's image reads its provisioning and dashboards.

use std::path::{Path, PathBuf};

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

/// Where Grafana reads the dashboards (`deploy/grafana/dashboards` is mounted or copied there by
/// docker-compose.yaml and the containers stack; the dashboard provider points there).
pub const GRAFANA_DASHBOARDS_PATH: &str = "/var/lib/grafana/dashboards";

/// Where Grafana reads its provisioning (`deploy/grafana/provisioning`).
pub const GRAFANA_PROVISIONING_PATH: &str = "/etc/grafana/provisioning";

/// The workspace's `deploy/` folder (compose and container configs, Grafana provisioning).
pub fn deploy_dir() -> PathBuf {
    workspace_dir().join("deploy")
}

/// The workspace root: the parent of this crate's folder.
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_dir_is_beside_the_crate() {
        assert!(deploy_dir().join("loki/loki.yaml").is_file());
        assert!(workspace_dir().join("Cargo.toml").is_file());
    }
}
