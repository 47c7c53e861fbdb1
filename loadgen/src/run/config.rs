//! What a run is asked to do ([`RunConfig`]: the fleet, the schedule's shape, the stack × the
//! collector, delivery, objectives), the checks made before anything starts ([`check`]), and
//! why a run can fail ([`RunError`]).
//!
//! The target is two independent choices. The stack ([`StackChoice`]) is where data lands and
//! what is read back; the collector ([`CollectorChoice`]) is what the fleet pushes to:
//!
//! | collector | pushes to | writes to |
//! |---|---|---|
//! | [`CollectorChoice::InProcess`] | a collector inside loadgen (Loki push, remote write, OTLP/HTTP on 127.0.0.1 port 0) | the chosen stack |
//! | [`CollectorChoice::Spawned`] | the collector binary, spawned with the same config on free ports; its CPU and RSS sampled from `/proc` | the chosen stack |
//! | [`CollectorChoice::Agent`] | any agent (our collector, Alloy, Vector, otelcol, Prometheus in agent mode) spawned from a command and a config template ([`super::agent`]); signals it has no receiver for go to the stack's APIs; its process tree's CPU and RSS sampled | the chosen stack |
//! | [`CollectorChoice::Remote`] | a running collector's receivers ([`Receivers`]) | wherever it is configured to (it must be the chosen stack) |
//! | [`CollectorChoice::None`] | the stack's own APIs | — |

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stack::StackChoice;

use super::agent::AgentSpec;
use super::dynamics::DynamicsSpec;
use super::preflight::PreflightError;
use super::receivers::Receivers;
use crate::deliver::Delivery;
use crate::fleet::{FleetSpec, Shard};
use crate::progress::Progress;
use crate::send::SendError;
use reports::verdict::Slo;

/// The default `--batch-window`.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(10);

/// What the fleet pushes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CollectorChoice {
    /// A collector inside loadgen, writing to the stack (its CPU and RSS count as loadgen's).
    #[default]
    InProcess,
    /// The collector binary at this path, spawned as a child process writing to the stack (its
    /// CPU and RSS are sampled apart from loadgen's).
    Spawned { program: PathBuf },
    /// Any agent, spawned from a command line and a config template (its CPU and RSS sampled
    /// over its process tree).
    Agent(Box<AgentSpec>),
    /// A running collector with these receivers; it writes to the stack on its own.
    Remote(Box<Receivers>),
    /// No collector: the fleet pushes to the stack's APIs.
    None,
}

impl CollectorChoice {
    /// Whether loadgen runs this collector, and so writes its config (scrape and file sources
    /// included).
    pub fn is_ours(&self) -> bool {
        matches!(
            self,
            CollectorChoice::InProcess | CollectorChoice::Spawned { .. }
        )
    }

    /// Whether loadgen spawns it as a process (and samples its CPU and RSS).
    pub fn is_process(&self) -> bool {
        matches!(
            self,
            CollectorChoice::Spawned { .. } | CollectorChoice::Agent(_)
        )
    }

    /// How `results.json`, `compare` and the report name the agent under test.
    pub fn agent_name(&self) -> String {
        match self {
            CollectorChoice::InProcess => "collector (in-process)".into(),
            CollectorChoice::Spawned { .. } => "collector".into(),
            CollectorChoice::Agent(a) => a.name.clone(),
            CollectorChoice::Remote(_) => "remote collector".into(),
            CollectorChoice::None => "none (direct)".into(),
        }
    }

    /// How `results.json` names it.
    fn describe(&self, delivery: Delivery) -> String {
        match self {
            CollectorChoice::InProcess => {
                "in-process collector (its CPU/RSS are counted in loadgen's)".into()
            }
            CollectorChoice::Spawned { program } => {
                format!("collector process {}", program.display())
            }
            CollectorChoice::Agent(a) => a.describe(delivery),
            CollectorChoice::Remote(r) => format!(
                "collector (Loki push {}, remote write {}, OTLP {})",
                shown(&r.loki),
                shown(&r.remote_write),
                shown(&r.otlp)
            ),
            CollectorChoice::None => "no collector (direct)".into(),
        }
    }
}

/// A URL as results and logs show it: credentials masked ([`wire::redact`]).
fn shown(url: &reqwest::Url) -> std::borrow::Cow<'_, str> {
    wire::redact::url(url.as_str())
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The fleet (its `devices` and `seed` included).
    pub fleet: FleetSpec,
    /// Emulate only this shard of the fleet (`--shard i/n`); `None`: all of it.
    pub shard: Option<Shard>,
    /// Total sending time, warmup included.
    pub duration: Duration,
    /// Leading part of `duration` left out of the measurements.
    pub warmup: Duration,
    /// Multiplies every device's nominal rates.
    pub rate_multiplier: f64,
    /// Every n-th event of a device's signal carries a canary (0: none).
    pub canary_every: u64,
    /// How long to wait after the run for canaries to become queryable.
    pub drain_timeout: Duration,
    /// The run folder; `None`: `runs/<timestamp>-<devices>d`.
    pub out_dir: Option<PathBuf>,
    /// Where data lands and is read back from.
    pub stack: StackChoice,
    /// What the fleet pushes to.
    pub collector: CollectorChoice,
    /// Push, or metrics by scrape and/or logs by files ([`crate::deliver`]; a collector loadgen
    /// runs).
    pub delivery: Delivery,
    /// Objectives given with `--slo`; each replaces the default objective of its name.
    pub slos: Vec<Slo>,
    /// Judge by the default objectives too (no loss, duplicates, refusals; every sent signal
    /// verified); `--no-default-slos` turns this off.
    pub default_slos: bool,
    /// Devices coming and going (`--churn`), going offline and backfilling (`--offline`).
    pub dynamics: DynamicsSpec,
    /// Events due within this window share requests (see `engine/batch.rs`); zero: a request
    /// per event.
    pub batch_window: Duration,
    /// Reporting interval.
    pub interval: Duration,
    /// The command line, for `results.json`.
    pub command: String,
    /// Live counters, when someone watches.
    pub progress: Option<Arc<Progress>>,
    /// Grafana viewers reading dashboards during the load (`--viewers`); `None`: none.
    pub viewers: Option<crate::read::ViewersConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            fleet: FleetSpec {
                devices: 5000,
                ..FleetSpec::default()
            },
            duration: Duration::from_secs(60),
            warmup: Duration::ZERO,
            rate_multiplier: 1.0,
            canary_every: 10,
            drain_timeout: Duration::from_secs(60),
            shard: None,
            out_dir: None,
            stack: StackChoice::default(),
            collector: CollectorChoice::InProcess,
            delivery: Delivery::Push,
            slos: Vec::new(),
            default_slos: true,
            interval: Duration::from_secs(1),
            command: String::new(),
            progress: None,
            dynamics: DynamicsSpec::default(),
            batch_window: DEFAULT_BATCH_WINDOW,
            viewers: None,
        }
    }
}

impl RunConfig {
    /// How `results.json` names the target: the stack, then the collector.
    pub fn describe_target(&self) -> String {
        let stack = match &self.stack {
            StackChoice::Embedded(_) => "embedded stack".to_string(),
            StackChoice::External(a) => {
                format!("external stack (Loki {})", wire::redact::url(&a.loki_url))
            }
            StackChoice::Containers(_) => {
                "containers stack (grafana/loki, mimir, tempo)".to_string()
            }
        };
        format!("{stack}, {}", self.collector.describe(self.delivery))
    }
}

/// Why a run failed (measurement problems are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("run settings: {0}")]
    Config(String),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    #[error("in-process collector: {0}")]
    Collector(String),
    /// A spawned agent (our collector's binary included) that could not be used.
    #[error("agent `{agent}`: {message}")]
    Agent { agent: String, message: String },
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("delivery: {0}")]
    Deliver(#[from] crate::deliver::DeliverError),
    #[error("run folder {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The combinations and values a run cannot work with, each refused with the reason.
pub fn check(cfg: &RunConfig) -> Result<(), RunError> {
    cfg.fleet.validate()?;
    if cfg.fleet.devices == 0 {
        return Err(RunError::Config("devices must be above 0".into()));
    }
    if let CollectorChoice::Agent(a) = &cfg.collector {
        a.plan(cfg.delivery).map_err(RunError::Config)?;
        if let StackChoice::External(x) = &cfg.stack {
            // The agent writes to the stack itself: a tenant or credentials its template does
            // not pass on would land its data elsewhere or get it refused, and the run would
            // only say canaries were lost.
            let tenant = x.tenant.as_deref().is_some_and(|t| !t.is_empty());
            let auth = x.username.is_some() || x.bearer_token.is_some();
            let uses = |s: &str| a.template.text.contains(s);
            if (tenant && !uses("{{tenant}}")) || (auth && !uses("LOADGEN_STACK_")) {
                return Err(RunError::Config(format!(
                    "agent `{}`: the stack takes {} but the template {} does not pass them \
                     on: write them into your own template (--collector-config): the tenant \
                     as {{{{tenant}}}}, credentials from the agent's environment \
                     (LOADGEN_STACK_USERNAME, LOADGEN_STACK_PASSWORD, LOADGEN_STACK_BEARER_TOKEN)",
                    a.name,
                    match (tenant, auth) {
                        (true, true) => "a tenant and credentials",
                        (true, false) => "a tenant",
                        _ => "credentials",
                    },
                    a.template.file,
                )));
            }
        }
        if matches!(cfg.stack, StackChoice::Embedded(_))
            && a.template.text.contains("{{loki_url}}/otlp")
        {
            return Err(RunError::Config(format!(
                "agent `{}` writes logs to Loki's OTLP endpoint ({{{{loki_url}}}}/otlp), which the \
                 embedded stack does not have: use --stack external with a Loki 3 whose \
                 limits_config.otlp_config indexes the device labels (deploy/loki/loki.yaml)",
                a.name
            )));
        }
    } else if !matches!(cfg.delivery, Delivery::Push | Delivery::Otlp) && !cfg.collector.is_ours() {
        return Err(RunError::Config(format!(
            "delivery {} needs a collector loadgen runs (in-process, --collector-cmd or \
             --agent): that collector is what scrapes and tails",
            cfg.delivery
        )));
    }
    cfg.dynamics.validate().map_err(RunError::Config)?;
    if cfg.delivery == Delivery::Otlp && cfg.collector == CollectorChoice::None {
        return Err(RunError::Config(
            "delivery otlp sends logs and metrics to a collector's OTLP receiver: use the \
             in-process collector, --collector-cmd or --collector URL"
                .into(),
        ));
    }
    if matches!(cfg.collector, CollectorChoice::Remote(_))
        && matches!(cfg.stack, StackChoice::Embedded(_))
    {
        return Err(RunError::Config(
            "a running collector cannot write to the embedded stack (its ports are chosen when \
             the run starts): verify against the collector's stack with --stack external"
                .into(),
        ));
    }
    if cfg.dynamics.is_active() && !matches!(cfg.delivery, Delivery::Push | Delivery::Otlp) {
        return Err(RunError::Config(format!(
            "--churn and --offline work with push delivery (not {}): scraped and tailed \
             devices keep their own state",
            cfg.delivery
        )));
    }
    if let Some(slo) = cfg.slos.iter().find(|s| s.kind.needs_collector_process())
        && !cfg.collector.is_process()
    {
        return Err(RunError::Config(format!(
            "SLO {slo} bounds the collector process: run with --collector-cmd or --agent, so \
             loadgen spawns the collector and samples its CPU and RSS"
        )));
    }
    if cfg.duration.is_zero() || cfg.warmup >= cfg.duration {
        return Err(RunError::Config(format!(
            "duration ({:?}) must be above 0 and above the warmup ({:?})",
            cfg.duration, cfg.warmup
        )));
    }
    if !(cfg.rate_multiplier.is_finite() && cfg.rate_multiplier > 0.0) {
        return Err(RunError::Config(format!(
            "rate multiplier must be above 0, got {}",
            cfg.rate_multiplier
        )));
    }
    Ok(())
}

/// The run folder: `cfg.out_dir`, or `runs/<timestamp>-<devices>d[-shard<i>of<n>]`.
pub(crate) fn run_dir(cfg: &RunConfig, started: &chrono::DateTime<chrono::Utc>) -> PathBuf {
    cfg.out_dir.clone().unwrap_or_else(|| {
        let shard = cfg
            .shard
            .map(|s| format!("-shard{}of{}", s.index, s.count))
            .unwrap_or_default();
        PathBuf::from("runs").join(format!(
            "{}-{}d{shard}",
            started.format("%Y%m%dT%H%M%SZ"),
            cfg.fleet.devices
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::agent::{AgentSpec, shipped};

    fn agent_run(template: &str, tenant: Option<&str>, user: Option<&str>) -> RunConfig {
        let mut spec = AgentSpec::from_shipped(shipped("collector").expect("shipped"), None);
        spec.template.text = template.into();
        RunConfig {
            stack: StackChoice::External(stack::external::ExternalArgs {
                tenant: tenant.map(Into::into),
                username: user.map(Into::into),
                ..Default::default()
            }),
            collector: CollectorChoice::Agent(Box::new(spec)),
            ..RunConfig::default()
        }
    }

    #[test]
    fn an_agent_template_must_pass_on_the_stacks_tenant_and_credentials() {
        let ports = "{{loki_push_port}} {{remote_write_port}} {{otlp_http_port}}";
        let refused = |cfg: &RunConfig| match check(cfg) {
            Err(RunError::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        };
        let m = refused(&agent_run(ports, Some("retail"), None));
        assert!(
            m.contains("takes a tenant") && m.contains("{{tenant}}"),
            "{m}"
        );
        let m = refused(&agent_run(ports, None, Some("u")));
        assert!(m.contains("takes credentials"), "{m}");
        let with = format!("{ports} X-Scope-OrgID: {{{{tenant}}}} ${{LOADGEN_STACK_PASSWORD}}");
        check(&agent_run(&with, Some("retail"), Some("u"))).expect("passed on");
        check(&agent_run(ports, None, None)).expect("nothing to pass on");
    }
}
