//! The embedded stack: Loki, Mimir and Tempo as in-process servers on 127.0.0.1, each API on its
//! own port as the real servers have them, speaking their public write and query APIs (same
//! paths, status codes, JSON shapes, label rules). Queries outside the documented subset get a
//! 400 that says so. Memory is bounded per backend by `retention_bytes`; evictions are counted on
//! each server's own `/metrics`.
//!
//! | backend | module | default port (`stack serve`) |
//! |---|---|---|
//! | Loki | [`loki`] | 3100 |
//! | Mimir (and Prometheus' API) | [`mimir`] | 9009 |
//! | Tempo query | [`tempo`] | 3200 |
//! | Tempo OTLP/HTTP, OTLP/gRPC | [`tempo`] | 4318, 4317 |
//!
//! Validation and series limits (on, with the real servers' defaults) and ingestion rate limits
//! per tenant (off by default) are in [`limits`]; faults on demand
//! (outages, errors, latency, throttling per API) in [`faults`].

pub mod door;
pub mod faults;
pub mod http;
pub mod limits;
pub mod loki;
pub mod metrics;
pub mod mimir;
pub mod tempo;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::endpoints::{Auth, Endpoints};

/// Ports of the embedded servers; 0 picks a free one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub loki: u16,
    pub mimir: u16,
    pub tempo: u16,
    pub otlp_http: u16,
    pub otlp_grpc: u16,
}

impl Ports {
    /// Every port picked by the OS: what tests use.
    pub const EPHEMERAL: Ports = Ports {
        loki: 0,
        mimir: 0,
        tempo: 0,
        otlp_http: 0,
        otlp_grpc: 0,
    };
    /// The real servers' usual ports.
    pub const STANDARD: Ports = Ports {
        loki: 3100,
        mimir: 9009,
        tempo: 3200,
        otlp_http: 4318,
        otlp_grpc: 4317,
    };
}

/// How to run the embedded stack.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    /// Address to listen on; 127.0.0.1 unless the user asks otherwise.
    pub host: IpAddr,
    pub ports: Ports,
    /// Bytes of data each backend keeps before evicting its oldest.
    pub retention_bytes: usize,
    /// Largest request body accepted (compressed, as sent); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest decompressed body accepted; larger gets 400.
    pub max_decompressed_bytes: usize,
    /// Loki's `max_line_size`: a longer log line is refused with 400 (0 disables the check).
    pub max_line_size: usize,
    /// Loki's `discover_service_name`: add a `service_name` label to streams without one (on by
    /// default, as in Loki 3).
    pub loki_discover_service_name: bool,
    /// Loki's `discover_log_levels`: add `detected_level` structured metadata to every entry
    /// (on by default, as in Loki 3).
    pub loki_discover_log_levels: bool,
    /// Mimir's (and Prometheus') `out_of_order_time_window`; zero, their default, refuses
    /// out-of-order samples.
    pub out_of_order_window: std::time::Duration,
    /// Which Prometheus' PromQL rules the embedded Mimir follows (3.x by default, as current
    /// Mimir and Prometheus).
    pub promql_semantics: mimir::Semantics,
    /// Per-tenant ingestion rate limits (Loki's `ingestion_rate_mb`, Mimir's `ingestion_rate`,
    /// Tempo's `ingestion_rate_limit_bytes`, with their bursts); none by default.
    pub limits: limits::IngestLimits,
    /// Loki's validation and stream limits (label count and lengths, future and past bounds,
    /// streams per tenant): Loki's defaults unless changed.
    pub loki_limits: limits::LokiLimits,
    /// Mimir's validation and series limits (label count and lengths, future bound, series per
    /// tenant): Mimir's defaults unless changed.
    pub mimir_limits: limits::MimirLimits,
    /// Faults set when the stack starts (`stack serve --fault`); none by default. They can be
    /// changed while it runs through [`EmbeddedStack::faults`] or `/stack/faults`.
    pub faults: Vec<(faults::Api, faults::Fault)>,
    /// TLS on every server (`stack serve --tls-cert --tls-key`); none by default.
    pub tls: Option<access::TlsSettings>,
    /// Credentials every request needs (`stack serve --htpasswd --bearer-tokens-file`); none
    /// by default.
    pub auth: Option<access::AuthSettings>,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: Ports::EPHEMERAL,
            retention_bytes: 256 << 20,
            max_body_bytes: 32 << 20,
            max_decompressed_bytes: wire::DEFAULT_MAX_DECOMPRESSED,
            max_line_size: 256 * 1024,
            loki_discover_service_name: true,
            loki_discover_log_levels: true,
            out_of_order_window: std::time::Duration::ZERO,
            promql_semantics: mimir::Semantics::Prometheus3,
            limits: limits::IngestLimits::default(),
            loki_limits: limits::LokiLimits::default(),
            mimir_limits: limits::MimirLimits::default(),
            faults: Vec::new(),
            tls: None,
            auth: None,
        }
    }
}

/// Why the embedded stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Door(#[from] door::DoorError),
}

/// The running embedded stack. Dropping it stops the servers.
pub struct EmbeddedStack {
    endpoints: Endpoints,
    addrs: Addrs,
    pub loki: Arc<loki::Loki>,
    pub mimir: Arc<mimir::Mimir>,
    pub tempo: Arc<tempo::Tempo>,
    faults: faults::Faults,
    door: door::Door,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The bound socket addresses.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    pub loki: SocketAddr,
    pub mimir: SocketAddr,
    pub tempo: SocketAddr,
    pub otlp_http: SocketAddr,
    pub otlp_grpc: SocketAddr,
}

/// What the embedded backends evicted to stay within their retention bound: data they had
/// acknowledged and no longer hold, so canaries written before may no longer be found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evictions {
    pub log_entries: u64,
    pub metric_samples: u64,
    pub traces: u64,
    /// The bound each backend keeps (`EmbeddedConfig::retention_bytes`).
    pub retention_bytes: usize,
}

impl Evictions {
    /// Whether anything was evicted.
    pub fn any(&self) -> bool {
        self.log_entries + self.metric_samples + self.traces > 0
    }
}

impl EmbeddedStack {
    /// What the backends have evicted so far.
    pub fn evictions(&self) -> Evictions {
        Evictions {
            log_entries: self.loki.evicted_entries(),
            metric_samples: self.mimir.evicted_samples(),
            traces: self.tempo.evicted_traces(),
            retention_bytes: self.loki.config.retention_bytes,
        }
    }

    /// Binds every port, then serves until dropped or [`EmbeddedStack::shutdown`].
    pub async fn start(cfg: EmbeddedConfig) -> Result<Self, EmbeddedError> {
        let door = door::Door::new(cfg.tls.as_ref(), cfg.auth.as_ref())?;
        let loki = loki::Loki::new(loki::LokiConfig::from(&cfg));
        let mimir = mimir::Mimir::new(mimir::MimirConfig::from(&cfg));
        let tempo = tempo::Tempo::new(tempo::TempoConfig::from(&cfg));

        let bind = |what: &'static str, port: u16| {
            let addr = SocketAddr::new(cfg.host, port);
            async move {
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| EmbeddedError::Bind { what, addr, source })
            }
        };
        let l_loki = bind("Loki", cfg.ports.loki).await?;
        let l_mimir = bind("Mimir", cfg.ports.mimir).await?;
        let l_tempo = bind("Tempo query", cfg.ports.tempo).await?;
        let l_otlp_http = bind("Tempo OTLP/HTTP", cfg.ports.otlp_http).await?;
        let l_otlp_grpc = bind("Tempo OTLP/gRPC", cfg.ports.otlp_grpc).await?;
        let local = |l: &TcpListener| {
            l.local_addr().map_err(|source| EmbeddedError::Bind {
                what: "local address",
                addr: SocketAddr::new(cfg.host, 0),
                source,
            })
        };
        let addrs = Addrs {
            loki: local(&l_loki)?,
            mimir: local(&l_mimir)?,
            tempo: local(&l_tempo)?,
            otlp_http: local(&l_otlp_http)?,
            otlp_grpc: local(&l_otlp_grpc)?,
        };

        let faults = faults::Faults::new();
        for (api, fault) in &cfg.faults {
            faults.set(*api, *fault);
        }
        let guarded = |router, server| faults::guarded(router, &faults, server, cfg.max_body_bytes);
        let (shutdown, rx) = watch::channel(false);
        let tasks = vec![
            http::spawn_http(
                l_loki,
                guarded(loki::router(loki.clone()), faults::Server::Loki),
                &door,
                rx.clone(),
            ),
            http::spawn_http(
                l_mimir,
                guarded(mimir::router(mimir.clone()), faults::Server::Mimir),
                &door,
                rx.clone(),
            ),
            http::spawn_http(
                l_tempo,
                guarded(tempo::router(tempo.clone()), faults::Server::Tempo),
                &door,
                rx.clone(),
            ),
            http::spawn_http(
                l_otlp_http,
                guarded(
                    tempo::otlp_http_router(tempo.clone()),
                    faults::Server::TempoOtlpHttp,
                ),
                &door,
                rx.clone(),
            ),
            tempo::spawn_grpc(l_otlp_grpc, tempo.clone(), faults.clone(), &door, rx),
        ];
        tracing::info!(?addrs, "embedded stack listening");
        Ok(EmbeddedStack {
            endpoints: endpoints_for(&addrs, door.scheme()),
            addrs,
            loki,
            mimir,
            tempo,
            faults,
            door,
            shutdown,
            tasks,
        })
    }

    /// The faults handle: set, read and clear faults per API while the stack serves (the same
    /// state `/stack/faults` shows).
    pub fn faults(&self) -> faults::Faults {
        self.faults.clone()
    }

    /// The TLS and auth every server has.
    pub fn door(&self) -> &door::Door {
        &self.door
    }

    /// Where the APIs are.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// Stops the servers and waits for them to finish their in-flight requests.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for EmbeddedStack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn url(scheme: &str, addr: SocketAddr, path: &str) -> Url {
    // A formatted socket address always makes a valid URL.
    Url::parse(&format!("{scheme}://{addr}{path}")).unwrap_or_else(|_| unreachable_url())
}

fn unreachable_url() -> Url {
    Url::parse("http://127.0.0.1:1/").unwrap_or_else(|_| panic!("constant URL parses"))
}

fn endpoints_for(a: &Addrs, scheme: &str) -> Endpoints {
    Endpoints {
        loki: url(scheme, a.loki, "/"),
        prometheus_write: url(scheme, a.mimir, "/api/v1/push"),
        prometheus_query: url(scheme, a.mimir, "/prometheus"),
        tempo_otlp_http: url(scheme, a.otlp_http, "/"),
        tempo_otlp_grpc: Some(url(scheme, a.otlp_grpc, "/")),
        tempo_query: url(scheme, a.tempo, "/"),
        grafana: None,
        tenant: None,
        auth: Auth::None,
        ca_file: None,
    }
}
