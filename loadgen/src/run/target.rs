//! Setting up a run's target: the chosen stack started ([`stack::Stack`]), the chosen collector
//! started in front of it (in process, spawned, or a running one's receivers) or none, and where
//! each signal is pushed ([`Setup`]); plus the delivery paths besides push ([`Paths`]: the
//! scrape server and the log files) and what they add to the collector's config.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use collector::runtime::Collector;
use reqwest::Url;
use stack::{Endpoints, Stack};

use super::accounting::Shared;
use super::collector::{CollectorFile, Extra};
use super::{CollectorChoice, RunConfig, RunError, process};
use crate::deliver::{Delivered, files::FileSink, scrape::ScrapeServer};
use crate::engine::Targets;
use crate::fleet::Fleet;
use crate::send::Target;

/// Where each signal goes and what is read back, plus what must stay alive meanwhile.
pub(crate) struct Setup {
    pub(crate) targets: Targets,
    pub(crate) stack: Stack,
    collector: Option<(Collector, PathBuf)>,
    process: Option<process::CollectorProcess>,
}

impl Setup {
    /// Starts the stack, then the collector in front of it.
    pub(crate) async fn start(cfg: &RunConfig, extra: &Extra) -> Result<Setup, RunError> {
        let stack = Stack::start(&cfg.stack).await?;
        let e = stack.endpoints();
        let mut setup = Setup {
            targets: Targets::direct(e),
            collector: None,
            process: None,
            stack,
        };
        let e = setup.stack.endpoints();
        match &cfg.collector {
            CollectorChoice::InProcess => {
                let (c, dir) = start_collector(e, extra).await?;
                setup.targets = collector_targets(&c).await?;
                setup.collector = Some((c, dir));
            }
            CollectorChoice::Spawned { program } => {
                let (p, targets) = spawn_collector(program, e, extra).await?;
                setup.targets = targets;
                setup.process = Some(p);
            }
            CollectorChoice::Remote(r) => {
                // The stack's tenant goes along: a collector may pass it on.
                let t = |url: &Url| Target {
                    url: url.clone(),
                    tenant: e.tenant.clone(),
                };
                setup.targets = Targets {
                    logs: t(&r.loki),
                    metrics: t(&r.remote_write),
                    traces: t(&r.otlp),
                };
            }
            CollectorChoice::None => {}
        }
        Ok(setup)
    }

    /// Where the verifier reads back.
    pub(crate) fn verify(&self) -> &Endpoints {
        self.stack.endpoints()
    }

    /// The pid of the collector process, when loadgen spawned one.
    pub(crate) fn collector_pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.pid())
    }

    pub(crate) async fn stop(self) {
        if let Some(p) = self.process {
            p.stop(Duration::from_secs(30)).await;
        }
        if let Some((c, dir)) = self.collector {
            c.shutdown().await;
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "collector data left behind");
            }
        }
        self.stack.shutdown().await;
    }
}

/// The in-process collector: Loki push, remote write and OTLP/HTTP in, the stack out.
async fn start_collector(e: &Endpoints, extra: &Extra) -> Result<(Collector, PathBuf), RunError> {
    let dir = collector_dir();
    let cfg = CollectorFile::for_run(e, extra, &dir, None).load()?;
    let c = Collector::start(&cfg)
        .await
        .map_err(|err| RunError::Collector(err.to_string()))?;
    Ok((c, dir))
}

/// The collector binary as a child process with the in-process collector's config on free
/// ports, and its three receivers.
async fn spawn_collector(
    program: &Path,
    e: &Endpoints,
    extra: &Extra,
) -> Result<(process::CollectorProcess, Targets), RunError> {
    let dir = collector_dir();
    let ports = process::Ports::free()?;
    let file = CollectorFile::for_run(e, extra, &dir.join("data"), Some(&ports));
    let p = process::CollectorProcess::spawn(
        program,
        &file,
        &dir,
        process::Ports::addr(ports.server),
        Duration::from_secs(20),
    )
    .await?;
    let target = |port: u16, path: &str| -> Result<Target, RunError> {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/{path}"))
            .map_err(|err| RunError::Collector(err.to_string()))?;
        Ok(Target { url, tenant: None })
    };
    let targets = Targets {
        logs: target(ports.loki_push, "")?,
        metrics: target(ports.remote_write, "api/v1/write")?,
        traces: target(ports.otlp_http, "")?,
    };
    Ok((p, targets))
}

fn collector_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "loadgen-collector-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ))
}

/// The collector's three receivers, once they listen.
async fn collector_targets(c: &Collector) -> Result<Targets, RunError> {
    let target = |name: &'static str, path: &'static str| async move {
        let addr = c
            .listen_addrs()
            .wait_for(name, Duration::from_secs(10))
            .await
            .ok_or_else(|| RunError::Collector(format!("source `{name}` never listened")))?;
        let url = Url::parse(&format!("http://{addr}/{path}"))
            .map_err(|err| RunError::Collector(format!("{name} at {addr}: {err}")))?;
        Ok::<_, RunError>(Target { url, tenant: None })
    };
    Ok(Targets {
        logs: target("logs", "").await?,
        metrics: target("metrics", "api/v1/write").await?,
        traces: target("traces", "").await?,
    })
}

/// The delivery paths of a run besides push.
#[derive(Default)]
pub(crate) struct Paths {
    pub(crate) scrape: Option<ScrapeServer>,
    pub(crate) files: Option<FileSink>,
}

impl Paths {
    /// Starts what `cfg.delivery` asks for; attempts are reported to `shared`.
    pub(crate) async fn start(
        cfg: &RunConfig,
        fleet: &Fleet,
        dir: &Path,
        shared: &Arc<Shared>,
        of_device: &[usize],
    ) -> Result<Paths, RunError> {
        let mut paths = Paths::default();
        if cfg.delivery.scrapes() {
            let devices: Vec<(Arc<str>, u64, usize)> = fleet
                .devices
                .iter()
                .zip(of_device)
                .map(|(d, &g)| (Arc::from(d.id.as_str()), d.index, g))
                .collect();
            let run = shared.run;
            let (shared, warmup) = (shared.clone(), cfg.warmup);
            let sink: crate::deliver::Sink = Arc::new(move |d: Delivered| {
                if let Some((id, index, group)) = devices.get(d.device) {
                    shared.delivered(&d, warmup, *group, id, *index);
                }
            });
            let server = ScrapeServer::start(
                fleet,
                cfg.fleet.seed,
                run,
                cfg.canary_every,
                cfg.rate_multiplier,
                dir,
                sink,
            )
            .await?;
            paths.scrape = Some(server);
        }
        if cfg.delivery.writes_files() {
            let names = fleet
                .devices
                .first()
                .map(|d| d.labels().into_iter().map(|(k, _)| k).collect())
                .unwrap_or_default();
            let sink = FileSink::new(
                &dir.join("logs"),
                names,
                crate::deliver::files::DEFAULT_ROTATE_BYTES,
            )?;
            paths.files = Some(sink);
        }
        Ok(paths)
    }

    /// What these paths add to the collector: a scrape source feeding the remote-write
    /// writer, a file source and its process component feeding the Loki writer.
    pub(crate) fn collector_extra(&self) -> Extra {
        let mut extra = Extra::default();
        if let Some(s) = &self.scrape {
            extra.sources.insert("scrape".into(), s.source());
            extra.metrics = Some("scrape".into());
        }
        if let Some(f) = &self.files {
            let (source, process) = f.components("files");
            extra.sources.insert("files".into(), source);
            extra.process.insert("files_labels".into(), process);
            extra.logs = Some("files_labels".into());
        }
        extra
    }
}
