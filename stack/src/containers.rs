//! The real stack in containers (the `containers` feature; steps' `--features e2e`, loadgen's
//! `--stack containers`): grafana/loki, grafana/mimir, grafana/tempo and grafana/grafana (the
//! tags of `docker-compose.yaml`, [`crate::images`]) on one Docker network, configured from
//! `deploy/` exactly as compose configures them, each waited for on its readiness endpoint.
//! [`Containers::endpoints`] gives the mapped host ports as an [`Endpoints`], so callers talk to
//! it like to any other stack. Started and stopped through [`crate::Stack`].
//!
//! Without a Docker engine, [`Containers::start`] fails at once with [`ContainersError::NoDocker`],
//! which says what to run instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testcontainers::core::{ContainerPort, IntoContainerPort, WaitFor, wait::HttpWaitStrategy};
use testcontainers::runners::AsyncRunner;
use testcontainers::{
    ContainerAsync, ContainerRequest, GenericImage, ImageExt, TestcontainersError,
};
use url::Url;

use crate::choice::ContainersConfig;
use crate::endpoints::{Auth, Endpoints};
use crate::images::{self, GRAFANA_DASHBOARDS_PATH, GRAFANA_PROVISIONING_PATH};

/// How long one backend may take to become ready (image pull not included in Loki's ring
/// warm-up of ~15 s, but a cold pull is: keep it generous).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Why the containers could not be started (print the chain of sources: the messages do not
/// repeat their causes).
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    /// `without_docker` is the caller's [`ContainersConfig::without_docker`].
    #[error("no Docker engine found ({host}): {without_docker}")]
    NoDocker {
        host: String,
        without_docker: String,
    },
    #[error("{file}: cannot read")]
    Config {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {service} ({image})")]
    Start {
        service: &'static str,
        image: String,
        #[source]
        source: Box<TestcontainersError>,
    },
    #[error("{service}: no host port for container port {port}")]
    Port {
        service: &'static str,
        port: u16,
        #[source]
        source: Box<TestcontainersError>,
    },
    #[error("{service}: bad URL {url:?}")]
    Url {
        service: &'static str,
        url: String,
        #[source]
        source: url::ParseError,
    },
}

/// Loki, Mimir, Tempo and Grafana running in containers; removed by [`Containers::shutdown`] or
/// when dropped.
pub struct Containers {
    pub loki: ContainerAsync<GenericImage>,
    pub mimir: ContainerAsync<GenericImage>,
    pub tempo: ContainerAsync<GenericImage>,
    pub grafana: ContainerAsync<GenericImage>,
    /// The Docker network they share (their names resolve on it).
    pub network: String,
    endpoints: Endpoints,
}

const LOKI_PORT: u16 = 3100;
const MIMIR_PORT: u16 = 9009;
const TEMPO_PORT: u16 = 3200;
const TEMPO_OTLP_GRPC: u16 = 4317;
const TEMPO_OTLP_HTTP: u16 = 4318;
const GRAFANA_PORT: u16 = 3000;

impl Containers {
    /// Starts the four containers. Loki, Mimir and Tempo start together, Grafana after them.
    pub async fn start(cfg: &ContainersConfig) -> Result<Containers, ContainersError> {
        preflight(cfg)?;
        let deploy_dir = &cfg.deploy_dir;
        // Names unique per run, so parallel runs on one engine do not collide; the configs that
        // name other services (Grafana's datasources, Tempo's remote write) are rewritten to
        // these names on their way into the containers.
        let run = run_id();
        let network = format!("retail-e2e-{run}");
        let name = |svc: &str| format!("retail-e2e-{svc}-{run}");
        let hosts = [
            ("http://loki:", format!("http://{}:", name("loki"))),
            ("http://mimir:", format!("http://{}:", name("mimir"))),
            ("http://tempo:", format!("http://{}:", name("tempo"))),
        ];
        let config = |rel: &str| -> Result<Vec<u8>, ContainersError> {
            let file = deploy_dir.join(rel);
            let text = std::fs::read_to_string(&file)
                .map_err(|source| ContainersError::Config { file, source })?;
            Ok(hosts
                .iter()
                .fold(text, |t, (from, to)| t.replace(from, to))
                .into_bytes())
        };

        let loki = backend(images::LOKI, LOKI_PORT, "/ready", &[])
            .with_copy_to("/etc/loki/loki.yaml", config("loki/loki.yaml")?)
            .with_cmd(["-config.file=/etc/loki/loki.yaml"]);
        let mimir = backend(images::MIMIR, MIMIR_PORT, "/ready", &[])
            .with_copy_to("/etc/mimir/mimir.yaml", config("mimir/mimir.yaml")?)
            .with_cmd(["-config.file=/etc/mimir/mimir.yaml"]);
        let tempo = backend(
            images::TEMPO,
            TEMPO_PORT,
            "/ready",
            &[TEMPO_OTLP_GRPC, TEMPO_OTLP_HTTP],
        )
        .with_copy_to("/etc/tempo/tempo.yaml", config("tempo/tempo.yaml")?)
        .with_cmd(["-config.file=/etc/tempo/tempo.yaml"]);
        let on_net = |r: ContainerRequest<GenericImage>, svc: &str| {
            r.with_network(network.clone())
                .with_container_name(name(svc))
                .with_startup_timeout(STARTUP_TIMEOUT)
        };
        let (loki, mimir, tempo) = tokio::try_join!(
            run_one(cfg, "loki", images::LOKI, on_net(loki, "loki")),
            run_one(cfg, "mimir", images::MIMIR, on_net(mimir, "mimir")),
            run_one(cfg, "tempo", images::TEMPO, on_net(tempo, "tempo")),
        )?;

        // The provider file as is; the datasources with this run's container names.
        let datasources = "datasources/datasources.yaml";
        let grafana = backend(images::GRAFANA, GRAFANA_PORT, "/api/health", &[])
            .with_copy_to(
                format!("{GRAFANA_PROVISIONING_PATH}/dashboards"),
                deploy_dir.join("grafana/provisioning/dashboards"),
            )
            .with_copy_to(
                format!("{GRAFANA_PROVISIONING_PATH}/{datasources}"),
                config(&format!("grafana/provisioning/{datasources}"))?,
            )
            .with_copy_to(
                GRAFANA_DASHBOARDS_PATH,
                deploy_dir.join("grafana/dashboards"),
            )
            .with_env_var("GF_SECURITY_ADMIN_USER", "admin")
            .with_env_var("GF_SECURITY_ADMIN_PASSWORD", "admin");
        let grafana = run_one(cfg, "grafana", images::GRAFANA, on_net(grafana, "grafana")).await?;

        let endpoints = Endpoints {
            loki: url("loki", &loki, LOKI_PORT, "").await?,
            prometheus_write: url("mimir", &mimir, MIMIR_PORT, "/api/v1/push").await?,
            prometheus_query: url("mimir", &mimir, MIMIR_PORT, "/prometheus").await?,
            tempo_otlp_http: url("tempo", &tempo, TEMPO_OTLP_HTTP, "").await?,
            tempo_otlp_grpc: Some(url("tempo", &tempo, TEMPO_OTLP_GRPC, "").await?),
            tempo_query: url("tempo", &tempo, TEMPO_PORT, "").await?,
            grafana: Some(url("grafana", &grafana, GRAFANA_PORT, "").await?),
            tenant: None,
            auth: Auth::None,
            ca_file: None,
        };
        Ok(Containers {
            loki,
            mimir,
            tempo,
            grafana,
            network,
            endpoints,
        })
    }

    /// Where the containers' APIs are on this host (mapped ports); Grafana is `Some`, with
    /// admin/admin.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Removes the containers (their network goes with the last of them). A container that
    /// cannot be removed is logged: there is nothing else to do about it at shutdown.
    pub async fn shutdown(self) {
        let Containers {
            loki,
            mimir,
            tempo,
            grafana,
            network,
            ..
        } = self;
        let (grafana, loki, mimir, tempo) =
            tokio::join!(grafana.rm(), loki.rm(), mimir.rm(), tempo.rm());
        for (service, removed) in [
            ("grafana", grafana),
            ("loki", loki),
            ("mimir", mimir),
            ("tempo", tempo),
        ] {
            if let Err(error) = removed {
                tracing::warn!(service, network = %network, %error, "cannot remove the container");
            }
        }
    }
}

/// An image with its HTTP port exposed and waited for, plus any other exposed ports.
fn backend(
    (image, tag): (&str, &str),
    port: u16,
    ready_path: &str,
    more_ports: &[u16],
) -> ContainerRequest<GenericImage> {
    let wait = HttpWaitStrategy::new(ready_path)
        .with_port(port.tcp())
        .with_poll_interval(Duration::from_millis(500))
        .with_expected_status_code(200u16);
    let mut img = GenericImage::new(image, tag).with_exposed_port(port.tcp());
    for p in more_ports {
        img = img.with_exposed_port(p.tcp());
    }
    img.with_wait_for(WaitFor::http(wait)).into()
}

async fn run_one(
    cfg: &ContainersConfig,
    service: &'static str,
    (image, tag): (&str, &str),
    req: ContainerRequest<GenericImage>,
) -> Result<ContainerAsync<GenericImage>, ContainersError> {
    req.start().await.map_err(|source| {
        let text = source.to_string();
        if looks_like_no_engine(&text) {
            ContainersError::NoDocker {
                host: format!("{}: {text}", docker_host()),
                without_docker: cfg.without_docker.clone(),
            }
        } else {
            ContainersError::Start {
                service,
                image: format!("{image}:{tag}"),
                source: Box::new(source),
            }
        }
    })
}

async fn url(
    service: &'static str,
    c: &ContainerAsync<GenericImage>,
    port: u16,
    path: &str,
) -> Result<Url, ContainersError> {
    let err = |source| ContainersError::Port {
        service,
        port,
        source: Box::new(source),
    };
    let host = c.get_host().await.map_err(err)?;
    let mapped = c
        .get_host_port_ipv4(ContainerPort::Tcp(port))
        .await
        .map_err(err)?;
    let s = format!("http://{host}:{mapped}{path}");
    Url::parse(&s).map_err(|source| ContainersError::Url {
        service,
        url: s,
        source,
    })
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:08x}", std::process::id())
}

/// The Docker host testcontainers will use: `DOCKER_HOST`, else the first socket that exists
/// of the places it looks (`/var/run/docker.sock`, then the rootless ones).
pub fn docker_host() -> String {
    if let Some(h) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        return h;
    }
    let mut candidates = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(Path::new(&dir).join(".docker/run/docker.sock"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".docker/run/docker.sock"));
        candidates.push(Path::new(&home).join(".docker/desktop/docker.sock"));
    }
    let found = candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or(&candidates[0]);
    format!("unix://{}", found.display())
}

/// Fails fast, with the message that says what to do, when the Docker host is a local socket
/// that does not exist (the usual case on a machine without Docker). Other hosts (tcp://, a
/// `~/.testcontainers.properties` override) are left to testcontainers, whose connection errors
/// are mapped to the same message.
fn preflight(cfg: &ContainersConfig) -> Result<(), ContainersError> {
    let host = docker_host();
    if let Some(path) = host.strip_prefix("unix://")
        && !Path::new(path).exists()
    {
        return Err(ContainersError::NoDocker {
            host: format!("{path} does not exist"),
            without_docker: cfg.without_docker.clone(),
        });
    }
    Ok(())
}

fn looks_like_no_engine(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    [
        "socket not found",
        "connection refused",
        "error trying to connect",
        "cannot connect to the docker daemon",
    ]
    .iter()
    .any(|needle| e.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_read_as_no_engine() {
        assert!(looks_like_no_engine(
            "Socket not found: /var/run/docker.sock"
        ));
        assert!(looks_like_no_engine(
            "error trying to connect: Connection refused (os error 111)"
        ));
        assert!(!looks_like_no_engine("container is not ready: timeout"));
    }

    #[test]
    fn the_message_says_what_to_run_instead() {
        let m = ContainersError::NoDocker {
            host: "/x.sock does not exist".into(),
            without_docker: ContainersConfig::default().without_docker,
        }
        .to_string();
        assert_eq!(
            m,
            "no Docker engine found (/x.sock does not exist): the containers stack needs \
             Docker; use the embedded stack or an external one"
        );
    }
}
