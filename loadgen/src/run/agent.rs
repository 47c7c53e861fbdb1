//! Any agent under test: a command line plus a config template whose placeholders loadgen fills
//! with the ports it assigns and the stack's endpoints (`--agent NAME`, or `--collector-cmd CMD
//! --collector-config FILE`). Our collector is one template among its peers (Grafana Alloy,
//! Vector, the OpenTelemetry Collector, Prometheus in agent mode), shipped in `deploy/peers/`
//! and compiled in ([`SHIPPED`]).
//!
//! Placeholders are `{{name}}`, no spaces inside ([`PLACEHOLDERS`] lists them). A `{{` followed
//! by a space is the agent's own templating (Vector's `{{ field }}`) and passes through. An
//! unknown name is an error naming the file, line and placeholder; so is a known one the run
//! cannot fill (Tempo's gRPC endpoint on a stack without one).
//!
//! Which signals the agent receives follows from the receivers its template names: a signal whose
//! receiver placeholder is absent goes straight to the stack, and the run's target says so (the
//! Prometheus agent takes metrics only, by scrape). A delivery the agent cannot take is refused
//! before anything starts ([`AgentSpec::plan`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::deliver::Delivery;
use wire::Signal;

/// Every placeholder, with what it becomes.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "loki_push_port",
        "the agent's Loki push receiver port (logs; push and scrape delivery)",
    ),
    (
        "remote_write_port",
        "the agent's remote-write receiver port (metrics; push delivery)",
    ),
    (
        "otlp_http_port",
        "the agent's OTLP/HTTP receiver port (traces; logs and metrics with --delivery otlp)",
    ),
    ("otlp_grpc_port", "the agent's OTLP/gRPC receiver port"),
    (
        "agent_port",
        "the agent's own HTTP port (readiness, self-metrics)",
    ),
    (
        "file_sd_file",
        "the Prometheus file_sd file listing the per-device scrape targets (metrics; --delivery scrape)",
    ),
    (
        "scrape_interval",
        "the fleet's shortest scrape interval, in milliseconds (e.g. 15000ms)",
    ),
    ("loki_url", "Loki's base URL, no trailing slash"),
    ("loki_push_url", "Loki's push URL (.../loki/api/v1/push)"),
    ("remote_write_url", "Mimir's (Prometheus') remote-write URL"),
    (
        "tempo_otlp_http_url",
        "Tempo's OTLP/HTTP base URL, no trailing slash (exporters append /v1/traces)",
    ),
    (
        "tempo_otlp_grpc_endpoint",
        "Tempo's OTLP/gRPC host:port (stacks that have one)",
    ),
    (
        "data_dir",
        "the agent's data folder (in the run folder's agent/)",
    ),
    ("config", "the rendered config file (for the command line)"),
    (
        "tenant",
        "the stack's tenant (X-Scope-OrgID) from --tenant; a run without one cannot fill it",
    ),
];

/// An agent shipped with loadgen: its command and template (`deploy/peers/<name>/`).
pub struct Shipped {
    pub name: &'static str,
    pub command: &'static str,
    /// The template's path in the repository (errors name it).
    pub file: &'static str,
    pub text: &'static str,
    /// The HTTP path on `{{agent_port}}` that answers 2xx once it is ready.
    pub ready_path: &'static str,
    /// The path of its remote-write receiver.
    pub remote_write_path: &'static str,
}

/// Where remote write is received unless an agent says otherwise (`--collector-write-path`).
pub const DEFAULT_REMOTE_WRITE_PATH: &str = "/api/v1/write";

/// The shipped agents. Only `collector` and `prometheus-agent` run on loadgen's CI machine;
/// the others follow their documented configuration (see each template's comments).
pub const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "collector",
        command: "collector run --config {{config}}",
        file: "deploy/peers/collector/agent.toml.tmpl",
        text: include_str!("../../../deploy/peers/collector/agent.toml.tmpl"),
        ready_path: "/-/ready",
        remote_write_path: DEFAULT_REMOTE_WRITE_PATH,
    },
    Shipped {
        name: "alloy",
        command: "alloy run --server.http.listen-addr=127.0.0.1:{{agent_port}} --storage.path={{data_dir}} {{config}}",
        file: "deploy/peers/alloy/agent.alloy.tmpl",
        text: include_str!("../../../deploy/peers/alloy/agent.alloy.tmpl"),
        ready_path: "/-/ready",
        // prometheus.receive_http's path.
        remote_write_path: "/api/v1/metrics/write",
    },
    Shipped {
        name: "vector",
        command: "vector --config {{config}}",
        file: "deploy/peers/vector/agent.yaml.tmpl",
        text: include_str!("../../../deploy/peers/vector/agent.yaml.tmpl"),
        ready_path: "/health",
        remote_write_path: DEFAULT_REMOTE_WRITE_PATH,
    },
    Shipped {
        name: "otelcol",
        command: "otelcol-contrib --config {{config}}",
        file: "deploy/peers/otelcol/agent.yaml.tmpl",
        text: include_str!("../../../deploy/peers/otelcol/agent.yaml.tmpl"),
        ready_path: "/",
        remote_write_path: DEFAULT_REMOTE_WRITE_PATH,
    },
    Shipped {
        name: "prometheus-agent",
        // `--enable-feature=agent` becomes `--agent` for Prometheus 3 (see `from_shipped`).
        command: "prometheus --enable-feature=agent --config.file={{config}} \
                  --web.listen-address=127.0.0.1:{{agent_port}} --storage.agent.path={{data_dir}}",
        file: "deploy/peers/prometheus-agent/agent.yml.tmpl",
        text: include_str!("../../../deploy/peers/prometheus-agent/agent.yml.tmpl"),
        ready_path: "/-/ready",
        remote_write_path: DEFAULT_REMOTE_WRITE_PATH,
    },
];

/// How Prometheus 2.x is put in agent mode (the shipped command's form).
const PROMETHEUS_2_AGENT_FLAG: &str = "--enable-feature=agent";

/// The agent-mode flag for the Prometheus whose `--version` printed `version` ("prometheus,
/// version 3.1.0 (branch: ...)"): `--agent` from 3.0 on, else the 2.x feature flag (also when
/// the version cannot be read: spawning then says what is missing).
fn prometheus_agent_flag(version: &str) -> &'static str {
    let major = version
        .split_once("version ")
        .and_then(|(_, v)| v.split('.').next())
        .and_then(|m| m.trim().parse::<u32>().ok());
    match major {
        Some(m) if m >= 3 => "--agent",
        _ => PROMETHEUS_2_AGENT_FLAG,
    }
}

/// The shipped agent of this name.
pub fn shipped(name: &str) -> Option<&'static Shipped> {
    SHIPPED.iter().find(|s| s.name == name)
}

/// Why an agent's command or template cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("{file}:{line}: unknown placeholder {{{{{name}}}}} (known: {known})")]
    Unknown {
        file: String,
        line: usize,
        name: String,
        known: String,
    },
    #[error("{file}:{line}: placeholder {{{{{name}}}}} cannot be filled in this run: {why}")]
    Unavailable {
        file: String,
        line: usize,
        name: String,
        why: String,
    },
    #[error("{file}:{line}: `{{{{` without its closing `}}}}`")]
    Unclosed { file: String, line: usize },
}

/// A template: its text and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The file (errors name it).
    pub file: String,
    pub text: String,
}

/// How loadgen knows the agent is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// `GET http://127.0.0.1:{{agent_port}}PATH` answers 2xx.
    Http(String),
    /// Every receiver port the template names accepts connections.
    Listening,
}

/// An agent to spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    /// How results and compare name it (`alloy`, `prometheus-agent`, ...).
    pub name: String,
    /// The command line, split on whitespace, each word rendered (`{{config}}` included).
    pub command: String,
    pub template: Template,
    pub ready: Readiness,
    /// The path of its remote-write receiver on `{{remote_write_port}}`.
    pub remote_write_path: String,
}

/// The placeholders' values for one run; a missing value says why.
pub type Values = BTreeMap<&'static str, Result<String, String>>;

/// One `{{name}}` found in a text, with its 1-based line.
fn scan(file: &str, text: &str) -> Result<Vec<(usize, usize, usize, String)>, TemplateError> {
    // (start, end, line, name): byte range of the whole `{{name}}`.
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("{{") {
        let start = at + i;
        let line = text[..start].matches('\n').count() + 1;
        let inner_from = start + 2;
        if text[inner_from..].starts_with([' ', '{']) || text[inner_from..].is_empty() {
            // The agent's own `{{ field }}` templating.
            at = inner_from;
            continue;
        }
        let Some(j) = text[inner_from..].find("}}") else {
            return Err(TemplateError::Unclosed {
                file: file.into(),
                line,
            });
        };
        let name = &text[inner_from..inner_from + j];
        if name.contains('\n') {
            return Err(TemplateError::Unclosed {
                file: file.into(),
                line,
            });
        }
        out.push((start, inner_from + j + 2, line, name.to_string()));
        at = inner_from + j + 2;
    }
    Ok(out)
}

/// The known placeholders `text` names (an unknown one is an error).
pub fn placeholders_in(file: &str, text: &str) -> Result<BTreeSet<String>, TemplateError> {
    let mut used = BTreeSet::new();
    for (_, _, line, name) in scan(file, text)? {
        if !PLACEHOLDERS.iter().any(|(n, _)| *n == name) {
            return Err(TemplateError::Unknown {
                file: file.into(),
                line,
                known: PLACEHOLDERS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
                name,
            });
        }
        used.insert(name);
    }
    Ok(used)
}

/// `text` with every placeholder replaced by its value.
pub fn render(file: &str, text: &str, values: &Values) -> Result<String, TemplateError> {
    placeholders_in(file, text)?;
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, line, name) in scan(file, text)? {
        out.push_str(&text[at..start]);
        match values.get(name.as_str()) {
            Some(Ok(v)) => out.push_str(v),
            Some(Err(why)) => {
                return Err(TemplateError::Unavailable {
                    file: file.into(),
                    line,
                    name,
                    why: why.clone(),
                });
            }
            None => {
                return Err(TemplateError::Unavailable {
                    file: file.into(),
                    line,
                    name,
                    why: "no value".into(),
                });
            }
        }
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// Where each signal goes in a run with this agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Signals the agent receives.
    pub through_agent: Vec<Signal>,
    /// Signals pushed straight to the stack (the agent has no receiver for them).
    pub direct: Vec<Signal>,
}

impl AgentSpec {
    /// A shipped agent, its template replaced by `template` when given.
    pub fn from_shipped(s: &Shipped, template: Option<Template>) -> AgentSpec {
        let mut command = s.command.to_string();
        if s.name == "prometheus-agent" {
            // Prometheus 3 removed `--enable-feature=agent` for `--agent` (and exits 3 on the
            // agent-only `--storage.agent.path` in server mode); 2.x has no `--agent`.
            let version = std::process::Command::new("prometheus")
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            command = command.replace(PROMETHEUS_2_AGENT_FLAG, prometheus_agent_flag(&version));
        }
        AgentSpec {
            name: s.name.into(),
            command,
            template: template.unwrap_or_else(|| Template {
                file: s.file.into(),
                text: s.text.into(),
            }),
            ready: Readiness::Http(s.ready_path.into()),
            remote_write_path: s.remote_write_path.into(),
        }
    }

    /// Placeholders the template names.
    pub fn uses(&self) -> Result<BTreeSet<String>, TemplateError> {
        placeholders_in(&self.template.file, &self.template.text)
    }

    /// Which signals go through the agent with `delivery`, or why the agent cannot take it: a
    /// delivery it has no receiver for at all, or a signal it receives another way (metrics by
    /// scrape only, with push delivery).
    pub fn plan(&self, delivery: Delivery) -> Result<Plan, String> {
        let uses = self.uses().map_err(|e| e.to_string())?;
        placeholders_in("--collector-cmd", &self.command).map_err(|e| e.to_string())?;
        let has = |p: &str| uses.contains(p);
        let name = &self.name;
        if delivery.writes_files() {
            return Err(format!(
                "agent `{name}`: delivery {delivery} (logs tailed from files) is not supported for \
                 agents from templates; use our collector (--collector-cmd PATH, or in-process)"
            ));
        }
        let mut plan = Plan {
            through_agent: Vec::new(),
            direct: Vec::new(),
        };
        let mut route = |signal: Signal, through: bool| {
            if through {
                plan.through_agent.push(signal);
            } else {
                plan.direct.push(signal);
            }
        };
        if delivery == Delivery::Otlp {
            if !has("otlp_http_port") {
                return Err(format!(
                    "agent `{name}`: delivery otlp sends every signal to an OTLP/HTTP receiver, and \
                     its template ({}) names no {{{{otlp_http_port}}}}",
                    self.template.file
                ));
            }
            Signal::ALL.into_iter().for_each(|s| route(s, true));
            return Ok(plan);
        }
        route(Signal::Logs, has("loki_push_port"));
        if delivery.scrapes() {
            if !has("file_sd_file") {
                return Err(format!(
                    "agent `{name}`: delivery {delivery} needs an agent that scrapes the targets \
                     in {{{{file_sd_file}}}}, and its template ({}) names none",
                    self.template.file
                ));
            }
            route(Signal::Metrics, true);
        } else if has("remote_write_port") {
            route(Signal::Metrics, true);
        } else if has("file_sd_file") {
            return Err(format!(
                "agent `{name}` takes metrics by scrape only (its template has no remote-write \
                 receiver): add --delivery scrape"
            ));
        } else {
            route(Signal::Metrics, false);
        }
        route(Signal::Traces, has("otlp_http_port"));
        if plan.through_agent.is_empty() {
            return Err(format!(
                "agent `{name}` receives none of this run's signals with delivery {delivery} \
                 (its template {} names no receiver port)",
                self.template.file
            ));
        }
        Ok(plan)
    }

    /// How results name the target: `agent alloy; direct to the stack: logs, traces`.
    pub fn describe(&self, delivery: Delivery) -> String {
        match self.plan(delivery) {
            Ok(p) if !p.direct.is_empty() => format!(
                "agent {} ({}; direct to the stack: {})",
                self.name,
                signal_list(&p.through_agent),
                signal_list(&p.direct)
            ),
            _ => format!("agent {}", self.name),
        }
    }
}

fn signal_list(s: &[Signal]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// The agent's name from a command line: its program's file name.
pub fn name_of_command(command: &str) -> String {
    command
        .split_whitespace()
        .next()
        .and_then(|p| Path::new(p).file_name())
        .map_or_else(|| "agent".into(), |n| n.to_string_lossy().into_owned())
}

/// Dummy values for every placeholder: checks render templates before a run has ports.
pub fn dummy_values() -> Values {
    PLACEHOLDERS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let v = if name.ends_with("_port") {
                (40000 + i).to_string()
            } else if name.ends_with("_url") {
                format!("http://127.0.0.1:{}", 30000 + i)
            } else if *name == "tempo_otlp_grpc_endpoint" {
                "127.0.0.1:14317".into()
            } else if *name == "file_sd_file" {
                "/tmp/loadgen-agent/scrape-targets.json".into()
            } else if *name == "scrape_interval" {
                "15000ms".into()
            } else {
                format!("/tmp/loadgen-agent/{name}")
            };
            (*name, Ok(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> AgentSpec {
        AgentSpec {
            name: "x".into(),
            command: "x --config {{config}}".into(),
            template: Template {
                file: "x.tmpl".into(),
                text: text.into(),
            },
            ready: Readiness::Listening,
            remote_write_path: DEFAULT_REMOTE_WRITE_PATH.into(),
        }
    }

    #[test]
    fn renders_placeholders_and_leaves_the_agents_own_templates() {
        let mut v = Values::new();
        v.insert("loki_push_port", Ok("3500".into()));
        let out = render(
            "t",
            "port = {{loki_push_port}}\nlabel: \"{{ resources.region }}\"\n",
            &v,
        )
        .unwrap();
        assert_eq!(out, "port = 3500\nlabel: \"{{ resources.region }}\"\n");
    }

    #[test]
    fn unknown_unavailable_and_unclosed_are_named_with_file_and_line() {
        let e = render("a.tmpl", "x\ny = {{lokiport}}\n", &dummy_values()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.tmpl:2: unknown placeholder {{lokiport}}"),
            "{e}"
        );
        let mut v = dummy_values();
        v.insert("tempo_otlp_grpc_endpoint", Err("the stack has none".into()));
        let e = render("b", "\n\n{{tempo_otlp_grpc_endpoint}}", &v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "b:3: placeholder {{tempo_otlp_grpc_endpoint}} cannot be filled in this run: the stack has none"
        );
        let e = render("c", "a {{config\n}}", &v).unwrap_err();
        assert_eq!(
            e,
            TemplateError::Unclosed {
                file: "c".into(),
                line: 1
            }
        );
    }

    #[test]
    fn every_shipped_template_and_command_renders() {
        for s in SHIPPED {
            render(s.file, s.text, &dummy_values()).unwrap_or_else(|e| panic!("{e}"));
            render(s.name, s.command, &dummy_values()).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.command.contains("{{config}}"), "{}", s.name);
        }
    }

    #[test]
    fn signals_follow_the_receivers_a_template_names() {
        let prom = spec("files: [{{file_sd_file}}]\nurl: {{remote_write_url}}");
        assert!(
            prom.plan(Delivery::Push)
                .unwrap_err()
                .contains("--delivery scrape")
        );
        let p = prom.plan(Delivery::Scrape).unwrap();
        assert_eq!(p.through_agent, [Signal::Metrics]);
        assert_eq!(p.direct, [Signal::Logs, Signal::Traces]);
        assert_eq!(
            prom.describe(Delivery::Scrape),
            "agent x (metrics; direct to the stack: logs, traces)"
        );
        assert!(prom.plan(Delivery::Otlp).is_err());
        assert!(prom.plan(Delivery::Files).is_err());
        let all = spec("{{loki_push_port}} {{remote_write_port}} {{otlp_http_port}}");
        assert_eq!(all.plan(Delivery::Push).unwrap().direct, []);
        assert!(all.plan(Delivery::Scrape).is_err());
        assert_eq!(all.describe(Delivery::Push), "agent x");
        assert!(spec("nothing").plan(Delivery::Push).is_err());
        let bad = spec("{{nope}}");
        assert!(bad.plan(Delivery::Push).unwrap_err().contains("x.tmpl:1"));
    }

    #[test]
    fn names_come_from_the_program() {
        assert_eq!(name_of_command("/usr/bin/alloy run {{config}}"), "alloy");
        assert_eq!(name_of_command(""), "agent");
    }

    #[test]
    fn prometheus_agent_mode_follows_the_installed_major_version() {
        let v2 = "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)\n";
        let v3 = "prometheus, version 3.1.0 (branch: HEAD, revision: 7e8e5d8)\n";
        assert_eq!(prometheus_agent_flag(v2), "--enable-feature=agent");
        assert_eq!(prometheus_agent_flag(v3), "--agent");
        assert_eq!(prometheus_agent_flag(""), "--enable-feature=agent");
        let s = shipped("prometheus-agent").expect("shipped");
        assert!(s.command.contains(PROMETHEUS_2_AGENT_FLAG));
    }
}
