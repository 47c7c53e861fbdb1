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
use super::agent::{self, AgentSpec};
use super::collector::{CollectorFile, Extra, Source};
use super::{CollectorChoice, RunConfig, RunError, process};
use crate::deliver::{Delivered, files::FileSink, scrape::ScrapeServer};
use crate::engine::Targets;
use crate::fleet::Fleet;
use crate::send::Target;
use wire::Signal;

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
            CollectorChoice::Agent(a) => {
                let (p, targets) = spawn_agent(a, cfg.delivery, e, extra).await?;
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

/// An agent from its template: rendered into the run folder's `agent/` with free ports and the
/// stack's endpoints, started, and the targets of the signals it receives (the others go to the
/// stack directly, see [`AgentSpec::plan`]).
async fn spawn_agent(
    spec: &AgentSpec,
    delivery: crate::deliver::Delivery,
    e: &Endpoints,
    extra: &Extra,
) -> Result<(process::CollectorProcess, Targets), RunError> {
    let config_err = |err: agent::TemplateError| RunError::Config(err.to_string());
    let plan = spec.plan(delivery).map_err(RunError::Config)?;
    let dir = extra
        .run_dir
        .as_ref()
        .map_or_else(collector_dir, |d| d.join("agent"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(super::config::io_err(&data))?;
    let ports = process::Ports::free()?;
    let (file_sd, interval) = match &extra.scrape {
        Some((file, every)) => (file.clone(), *every),
        None => {
            // No scraping this run: an empty target list, so a template that names the file
            // still starts.
            let file = dir.join(crate::deliver::scrape::FILE_SD_NAME);
            crate::deliver::scrape::write_file_sd(&file, &[])?;
            (file, Duration::from_secs(15))
        }
    };
    let config_name = Path::new(&spec.template.file)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tmpl").to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "agent.conf".into());
    let config_path = dir.join(config_name);
    let base = |u: &Url| u.as_str().trim_end_matches('/').to_string();
    let mut values = agent::Values::new();
    for (name, port) in [
        ("loki_push_port", ports.loki_push),
        ("remote_write_port", ports.remote_write),
        ("otlp_http_port", ports.otlp_http),
        ("otlp_grpc_port", ports.otlp_grpc),
        ("agent_port", ports.server),
    ] {
        values.insert(name, Ok(port.to_string()));
    }
    values.insert("file_sd_file", Ok(file_sd.display().to_string()));
    values.insert("scrape_interval", Ok(format!("{}ms", interval.as_millis())));
    values.insert("loki_url", Ok(base(&e.loki)));
    values.insert(
        "loki_push_url",
        Ok(format!("{}/loki/api/v1/push", base(&e.loki))),
    );
    values.insert("remote_write_url", Ok(e.prometheus_write.to_string()));
    values.insert("tempo_otlp_http_url", Ok(base(&e.tempo_otlp_http)));
    values.insert(
        "tempo_otlp_grpc_endpoint",
        e.tempo_otlp_grpc
            .as_ref()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .ok_or_else(|| "this stack has no Tempo OTLP/gRPC endpoint".to_string()),
    );
    values.insert(
        "tenant",
        e.tenant
            .clone()
            .ok_or_else(|| "the stack has no tenant (--tenant)".to_string()),
    );
    values.insert("data_dir", Ok(data.display().to_string()));
    values.insert("config", Ok(config_path.display().to_string()));
    let text =
        agent::render(&spec.template.file, &spec.template.text, &values).map_err(config_err)?;
    std::fs::write(&config_path, text).map_err(super::config::io_err(&config_path))?;
    let command_label = format!("the command of agent `{}`", spec.name);
    let mut words = spec
        .command
        .split_whitespace()
        .map(|w| agent::render(&command_label, w, &values))
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_err)?
        .into_iter();
    let program = words
        .next()
        .ok_or_else(|| RunError::Config(format!("agent `{}`: an empty command", spec.name)))?;
    let uses = spec.uses().map_err(config_err)?;
    let ready = match &spec.ready {
        agent::Readiness::Http(path) => {
            process::Ready::Http(format!("http://127.0.0.1:{}{path}", ports.server))
        }
        agent::Readiness::Listening => process::Ready::Listening(
            [
                ("loki_push_port", ports.loki_push),
                ("remote_write_port", ports.remote_write),
                ("otlp_http_port", ports.otlp_http),
                ("otlp_grpc_port", ports.otlp_grpc),
                ("agent_port", ports.server),
            ]
            .into_iter()
            .filter(|(name, _)| uses.contains(*name))
            .map(|(_, port)| process::Ports::addr(port))
            .collect(),
        ),
    };
    let launch = process::Launch {
        name: spec.name.clone(),
        program: program_path(&program),
        args: words.collect(),
        env: stack_secrets(e),
        dir: dir.clone(),
        ready,
        remove_dir: extra.run_dir.is_none(),
        remove_on_stop: Some(data),
    };
    let p = process::CollectorProcess::start(launch, AGENT_READY_TIMEOUT).await?;
    let local = |port: u16, path: &str| -> Result<Target, RunError> {
        let url = Url::parse(&format!("http://127.0.0.1:{port}{path}"))
            .map_err(|err| RunError::Config(format!("agent `{}`: {err}", spec.name)))?;
        Ok(Target { url, tenant: None })
    };
    let mut targets = Targets::direct(e);
    for signal in &plan.through_agent {
        match signal {
            Signal::Logs => targets.logs = local(ports.loki_push, "/")?,
            Signal::Metrics if !delivery.scrapes() => {
                targets.metrics = local(ports.remote_write, &spec.remote_write_path)?
            }
            Signal::Metrics => {}
            Signal::Traces => targets.traces = local(ports.otlp_http, "/")?,
        }
    }
    if !plan.direct.is_empty() {
        tracing::warn!(agent = %spec.name, direct = ?plan.direct, "the agent has no receiver for these signals: they go to the stack directly");
    }
    Ok((p, targets))
}

/// How long an agent may take to get ready.
const AGENT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A command's program: `collector` is the collector beside loadgen when it is there.
fn program_path(program: &str) -> PathBuf {
    if program == "collector"
        && let Ok(p) = process::default_program()
        && p.is_file()
    {
        return p;
    }
    PathBuf::from(program)
}

/// The stack's credentials, handed to an agent in its environment (a template names them in its
/// own syntax, e.g. `${LOADGEN_STACK_PASSWORD}`), never written into its config.
fn stack_secrets(e: &Endpoints) -> Vec<(String, String)> {
    match &e.auth {
        stack::Auth::None => Vec::new(),
        stack::Auth::Basic { username, password } => vec![
            ("LOADGEN_STACK_USERNAME".into(), username.clone()),
            ("LOADGEN_STACK_PASSWORD".into(), password.clone()),
        ],
        stack::Auth::Bearer(t) => vec![("LOADGEN_STACK_BEARER_TOKEN".into(), t.clone())],
    }
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
    /// The run folder.
    dir: Option<PathBuf>,
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
        let mut paths = Paths {
            dir: Some(dir.to_path_buf()),
            ..Paths::default()
        };
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
        let mut extra = Extra {
            run_dir: self.dir.clone(),
            ..Extra::default()
        };
        if let Some(s) = &self.scrape {
            let source = s.source();
            if let Source::PrometheusScrape {
                file_sd,
                scrape_interval,
                ..
            } = &source
                && let (Some(file), Ok(every)) = (
                    file_sd.files.first(),
                    humantime::parse_duration(scrape_interval),
                )
            {
                extra.scrape = Some((PathBuf::from(file), every));
            }
            extra.sources.insert("scrape".into(), source);
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
