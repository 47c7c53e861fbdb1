//! The collector's config: TOML with components named `[sources.NAME]`, `[process.NAME]` and
//! `[writers.NAME]`, wired by `inputs = [...]` into a DAG (fan-in and fan-out), with `${VAR}` and
//! `${VAR:-default}` in any string.
//!
//! ```toml
//! [sources.node]
//! type = "prometheus_scrape"
//! targets = [{ address = "127.0.0.1:9100", labels = { region = "${REGION}" } }]
//!
//! [process.tag]
//! inputs = ["node"]
//! [[process.tag.stages]]
//! type = "static_labels"
//! values = { node_type = "${NODE_TYPE:-server}" }
//!
//! [writers.mimir]
//! type = "prometheus_remote_write"
//! inputs = ["tag"]
//! url = "http://127.0.0.1:9009/api/v1/push"
//! ```
//!
//! Loading checks everything a run would need: unknown keys, settings each component refuses,
//! wiring to unknown components, cycles, signals that do not match (a logs writer fed by a
//! metrics source), unresolved environment variables. Every error names the file, the line and
//! the key.

pub mod interpolate;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::event::Signal;
use crate::output::WhenFull;
use crate::process::{self, AnyStage};
use crate::sources::{self, BuildError, Source};
use crate::writers::{self, AnyWriter};

/// A config problem, located: `file:line: key: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub reason: String,
}

/// The three sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Sources,
    Process,
    Writers,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Sources => "sources",
            Section::Process => "process",
            Section::Writers => "writers",
        }
    }
}

/// One component as configured (not yet built).
#[derive(Clone, Debug)]
pub struct Component {
    pub section: Section,
    pub name: String,
    /// `type`; empty for process components (their stages have types).
    pub kind: String,
    pub inputs: Vec<String>,
    /// Capacity of this component's input queue, in batches.
    pub queue_capacity: usize,
    pub when_full: WhenFull,
    /// Writers: how long a stop may take to drain the queue.
    pub drain_timeout: Duration,
    /// The component's own settings (common keys removed), interpolated.
    pub settings: toml::Table,
    /// Process components: `(type, settings)` per stage.
    pub stages: Vec<(String, toml::Table)>,
    line: usize,
    key_lines: BTreeMap<String, usize>,
}

impl Component {
    /// `sources.NAME` etc.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section.as_str(), self.name)
    }
}

/// The self-monitoring server (`/metrics`, `/-/healthy`, `/-/ready`).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `None` when `enabled = false`.
    pub address: Option<SocketAddr>,
}

/// A loaded config.
#[derive(Clone, Debug)]
pub struct Config {
    pub file: String,
    pub components: Vec<Component>,
    pub server: ServerConfig,
    /// Where sources keep state (positions files).
    pub data_dir: PathBuf,
}

/// Components built from a config, wiring checked.
pub struct Built {
    pub sources: Vec<(Component, Box<dyn Source>)>,
    pub process: Vec<(Component, Signal, Vec<AnyStage>)>,
    pub writers: Vec<(Component, AnyWriter)>,
}

/// Defaults of the common keys.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SERVER_ADDRESS: &str = "127.0.0.1:12345";

type Keys = BTreeMap<String, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    sources: BTreeMap<String, Spanned<Keys>>,
    #[serde(default)]
    process: BTreeMap<String, Spanned<Keys>>,
    #[serde(default)]
    writers: BTreeMap<String, Spanned<Keys>>,
    #[serde(default)]
    server: Option<Spanned<Keys>>,
    #[serde(default)]
    data_dir: Option<Spanned<String>>,
}

impl Config {
    /// Reads and checks the syntax of `path`, resolving `${VAR}` from the process environment.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            key: "-".into(),
            reason: format!("cannot read the config: {e}"),
        })?;
        Config::parse(&text, &file, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `file` names it in errors, `env` resolves `${VAR}`.
    pub fn parse(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let at = |offset: usize, key: &str, reason: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, offset),
            key: key.to_string(),
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            at(
                e.span().map(|s| s.start).unwrap_or(0),
                "-",
                e.message().trim().to_string(),
            )
        })?;
        let mut components = Vec::new();
        for (section, table) in [
            (Section::Sources, raw.sources),
            (Section::Process, raw.process),
            (Section::Writers, raw.writers),
        ] {
            for (name, keys) in table {
                components.push(component(text, file, section, name, keys, env)?);
            }
        }
        let server = match raw.server {
            None => ServerConfig {
                address: DEFAULT_SERVER_ADDRESS.parse().ok(),
            },
            Some(keys) => server_config(text, file, keys.into_inner(), env)?,
        };
        let data_dir = match raw.data_dir {
            Some(d) => {
                let start = d.span().start;
                let v = interpolate::interpolate(d.get_ref(), env)
                    .map_err(|e| at(start, "data_dir", e.to_string()))?;
                PathBuf::from(v)
            }
            None => std::env::temp_dir().join("collector-data"),
        };
        Ok(Config {
            file: file.to_string(),
            components,
            server,
            data_dir,
        })
    }

    fn err(&self, c: &Component, key: &str, reason: impl Into<String>) -> ConfigError {
        let line = c
            .key_lines
            .get(key.split(['.', '[']).next().unwrap_or(key))
            .copied()
            .unwrap_or(c.line);
        ConfigError {
            file: self.file.clone(),
            line,
            key: if key.is_empty() {
                c.path()
            } else {
                format!("{}.{key}", c.path())
            },
            reason: reason.into(),
        }
    }

    /// Turns a component's [`BuildError`] into a located [`ConfigError`].
    fn build_err(&self, c: &Component, prefix: &str, e: BuildError) -> ConfigError {
        match e {
            BuildError::UnknownType(t) => {
                self.err(c, &format!("{prefix}type"), format!("unknown type {t:?}"))
            }
            BuildError::Invalid { key, reason } => self.err(c, &format!("{prefix}{key}"), reason),
            BuildError::Config(msg) => {
                // serde names the key in backticks: "unknown field `x`", "missing field `y`".
                let key = msg.split('`').nth(1).unwrap_or("").to_string();
                let key = if prefix.is_empty()
                    && !c.key_lines.contains_key(&key)
                    && !msg.contains("field")
                {
                    String::new()
                } else {
                    format!("{prefix}{key}")
                };
                self.err(c, key.trim_end_matches('.'), msg)
            }
        }
    }

    /// Builds every component and checks the wiring: what `collector check` reports and
    /// `collector run` starts.
    pub fn build(&self) -> Result<Built, ConfigError> {
        let mut built = Built {
            sources: Vec::new(),
            process: Vec::new(),
            writers: Vec::new(),
        };
        let mut seen: BTreeMap<&str, &Component> = BTreeMap::new();
        for c in &self.components {
            if let Some(other) = seen.insert(&c.name, c) {
                return Err(self.err(
                    c,
                    "",
                    format!(
                        "the name {:?} is also used by {}; component names must be unique",
                        c.name,
                        other.path()
                    ),
                ));
            }
        }
        // Build each component: its settings are checked by its own code.
        let mut emits: BTreeMap<&str, BTreeSet<Signal>> = BTreeMap::new();
        for c in &self.components {
            match c.section {
                Section::Sources => {
                    let s = sources::build(&c.kind, c.settings.clone())
                        .map_err(|e| self.build_err(c, "", e))?;
                    emits.insert(&c.name, s.signals().iter().copied().collect());
                    built.sources.push((c.clone(), s));
                }
                Section::Process => {
                    if c.stages.is_empty() {
                        return Err(self.err(
                            c,
                            "stages",
                            "a process component needs at least one stage",
                        ));
                    }
                    let mut stages = Vec::new();
                    for (i, (kind, table)) in c.stages.iter().enumerate() {
                        let prefix = format!("stages[{i}].");
                        let st = process::build(kind, table.clone())
                            .map_err(|e| self.build_err(c, &prefix, e))?;
                        stages.push(st);
                    }
                    let signal = stages[0].signal();
                    if let Some((i, odd)) = stages
                        .iter()
                        .enumerate()
                        .find(|(_, s)| s.signal() != signal)
                    {
                        return Err(self.err(
                            c,
                            &format!("stages[{i}]"),
                            format!("stage {} works on {}, but the stages before it work on {signal}; one process component handles one signal", c.stages[i].0, odd.signal()),
                        ));
                    }
                    emits.insert(&c.name, BTreeSet::from([signal]));
                    built.process.push((c.clone(), signal, stages));
                }
                Section::Writers => {
                    let w = writers::build(&c.kind, c.settings.clone())
                        .map_err(|e| self.build_err(c, "", e))?;
                    built.writers.push((c.clone(), w));
                }
            }
        }
        // Wiring: inputs exist, are producers, emit the consumer's signal; no cycles.
        let consumes: BTreeMap<&str, Signal> = built
            .process
            .iter()
            .map(|(c, s, _)| (c.name.as_str(), *s))
            .chain(
                built
                    .writers
                    .iter()
                    .map(|(c, w)| (c.name.as_str(), w.signal())),
            )
            .collect();
        for c in &self.components {
            if c.section == Section::Sources {
                continue;
            }
            if c.inputs.is_empty() {
                return Err(self.err(
                    c,
                    "inputs",
                    "missing: name the sources or process components this one reads from",
                ));
            }
            let want = consumes[c.name.as_str()];
            for input in &c.inputs {
                let Some(producer) = seen.get(input.as_str()) else {
                    return Err(self.err(c, "inputs", format!("no component named {input:?}")));
                };
                if producer.section == Section::Writers {
                    return Err(self.err(
                        c,
                        "inputs",
                        format!("{input:?} is a writer; writers have no output"),
                    ));
                }
                if input == &c.name {
                    return Err(self.err(c, "inputs", "a component cannot read its own output"));
                }
                let signals = &emits[input.as_str()];
                if !signals.contains(&want) {
                    let has: Vec<&str> = signals.iter().map(|s| s.as_str()).collect();
                    return Err(self.err(
                        c,
                        "inputs",
                        format!(
                            "{} emits {}, but {} takes {want}",
                            producer.path(),
                            has.join(" and "),
                            c.path()
                        ),
                    ));
                }
            }
        }
        if let Some(cycle) = find_cycle(&self.components) {
            let c = seen[cycle[0].as_str()];
            return Err(self.err(
                c,
                "inputs",
                format!("the wiring has a cycle: {}", cycle.join(" → ")),
            ));
        }
        Ok(built)
    }
}

fn find_cycle(components: &[Component]) -> Option<Vec<String>> {
    let edges: BTreeMap<&str, Vec<&str>> = components
        .iter()
        .filter(|c| c.section == Section::Process)
        .map(|c| {
            (
                c.name.as_str(),
                c.inputs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[from..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n, Mark::Open);
        stack.push(n);
        for next in edges.get(n).into_iter().flatten() {
            if edges.contains_key(next)
                && let Some(c) = visit(next, edges, marks, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in edges.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(n, &edges, &mut marks, &mut stack) {
            return Some(c);
        }
    }
    None
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn component(
    text: &str,
    file: &str,
    section: Section,
    name: String,
    keys: Spanned<Keys>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Component, ConfigError> {
    let path = format!("{}.{name}", section.as_str());
    let line = line_of(text, keys.span().start);
    let mut key_lines = BTreeMap::new();
    let mut settings = toml::Table::new();
    let err = |line: usize, key: &str, reason: String| ConfigError {
        file: file.to_string(),
        line,
        key: format!("{path}.{key}"),
        reason,
    };
    for (k, v) in keys.into_inner() {
        let kline = line_of(text, v.span().start);
        key_lines.insert(k.clone(), kline);
        let mut v = v.into_inner();
        interpolate::interpolate_value(&mut v, env)
            .map_err(|(sub, e)| err(kline, &format!("{k}{sub}"), e.to_string()))?;
        settings.insert(k, v);
    }
    let mut take = |key: &str| {
        settings
            .remove(key)
            .map(|v| (key_lines.get(key).copied().unwrap_or(line), v))
    };
    let kind = match (section, take("type")) {
        (Section::Process, Some((l, _))) => {
            return Err(err(
                l,
                "type",
                "a process component has no type; its [[stages]] do".into(),
            ));
        }
        (Section::Process, None) => String::new(),
        (_, Some((_, toml::Value::String(t)))) => t,
        (_, Some((l, _))) => return Err(err(l, "type", "must be a string".into())),
        (_, None) => {
            return Err(err(
                line,
                "type",
                "missing: every source and writer needs a type".into(),
            ));
        }
    };
    let inputs = match take("inputs") {
        None => Vec::new(),
        Some((l, _)) if section == Section::Sources => {
            return Err(err(l, "inputs", "sources have no inputs".into()));
        }
        Some((l, toml::Value::Array(items))) => items
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s),
                _ => Err(err(l, "inputs", "must be a list of component names".into())),
            })
            .collect::<Result<_, _>>()?,
        Some((l, _)) => return Err(err(l, "inputs", "must be a list of component names".into())),
    };
    let queue_capacity = match take("queue_capacity") {
        None => DEFAULT_QUEUE_CAPACITY,
        Some((_, toml::Value::Integer(n))) if n > 0 => n as usize,
        Some((l, _)) => {
            return Err(err(
                l,
                "queue_capacity",
                "must be a positive whole number of batches".into(),
            ));
        }
    };
    let when_full = match take("when_full") {
        None => WhenFull::Block,
        Some((l, v)) => WhenFull::deserialize(v).map_err(|_| {
            err(
                l,
                "when_full",
                "must be \"block\" or \"drop_newest\"".into(),
            )
        })?,
    };
    let drain_timeout = match take("drain_timeout") {
        None => DEFAULT_DRAIN_TIMEOUT,
        Some((l, toml::Value::String(s))) => humantime::parse_duration(&s)
            .map_err(|e| err(l, "drain_timeout", format!("{s:?} is not a duration ({e})")))?,
        Some((l, _)) => {
            return Err(err(
                l,
                "drain_timeout",
                "must be a duration such as \"10s\"".into(),
            ));
        }
    };
    let mut stages = Vec::new();
    if section == Section::Process {
        match take("stages") {
            None => {}
            Some((l, toml::Value::Array(items))) => {
                for (i, item) in items.into_iter().enumerate() {
                    let toml::Value::Table(mut t) = item else {
                        return Err(err(
                            l,
                            &format!("stages[{i}]"),
                            "must be a table with a type".into(),
                        ));
                    };
                    match t.remove("type") {
                        Some(toml::Value::String(kind)) => stages.push((kind, t)),
                        _ => {
                            return Err(err(
                                l,
                                &format!("stages[{i}].type"),
                                "missing: every stage needs a type".into(),
                            ));
                        }
                    }
                }
            }
            Some((l, _)) => {
                return Err(err(
                    l,
                    "stages",
                    "must be a list of [[stages]] tables".into(),
                ));
            }
        }
        if let Some(k) = settings.keys().next() {
            let l = key_lines.get(k).copied().unwrap_or(line);
            return Err(err(
                l,
                k,
                "unknown key (a process component takes inputs, stages, queue_capacity, when_full)"
                    .into(),
            ));
        }
    }
    Ok(Component {
        section,
        name,
        kind,
        inputs,
        queue_capacity,
        when_full,
        drain_timeout,
        settings,
        stages,
        line,
        key_lines,
    })
}

fn server_config(
    text: &str,
    file: &str,
    keys: Keys,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, ConfigError> {
    let mut address = DEFAULT_SERVER_ADDRESS.to_string();
    let mut enabled = true;
    for (k, v) in keys {
        let l = line_of(text, v.span().start);
        let err = |reason: String| ConfigError {
            file: file.to_string(),
            line: l,
            key: format!("server.{k}"),
            reason,
        };
        match (k.as_str(), v.into_inner()) {
            ("address", toml::Value::String(s)) => {
                address = interpolate::interpolate(&s, env).map_err(|e| err(e.to_string()))?
            }
            ("enabled", toml::Value::Boolean(b)) => enabled = b,
            ("address" | "enabled", _) => return Err(err("wrong type".into())),
            _ => return Err(err("unknown key (server takes address, enabled)".into())),
        }
    }
    let parsed: SocketAddr = address.parse().map_err(|_| ConfigError {
        file: file.to_string(),
        line: 0,
        key: "server.address".into(),
        reason: format!("{address:?} is not an address such as 127.0.0.1:12345"),
    })?;
    Ok(ServerConfig {
        address: enabled.then_some(parsed),
    })
}
