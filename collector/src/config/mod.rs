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
//! metrics source), unresolved environment variables. Every error names the file, the line of
//! the bad value itself (for a nested key, `targets[1].address`, the line of that value, not of
//! the table or array holding it) and the key; [`Config::parse_all`] and [`Config::build_all`]
//! report every mistake in one pass (what `collector check` prints), [`Config::parse`] and
//! [`Config::build`] the first.

pub mod interpolate;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::buffer::BufferConfig;
use crate::output::WhenFull;
use crate::process::{self, AnyStage};
use crate::sources::{self, BuildError, Source};
use crate::writers::{self, AnyWriter};
use wire::Signal;

/// A config problem, located: `file:line: key: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub reason: String,
}

/// Every mistake of a config, in the order found (file order within each pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// The first mistake (there is always one).
    fn first(mut self) -> ConfigError {
        self.0.swap_remove(0)
    }
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
    /// Capacity of this component's input queue, in estimated bytes (`queue_max_bytes`).
    pub queue_max_bytes: usize,
    pub when_full: WhenFull,
    /// Writers: how long a stop may take to drain the queue.
    pub drain_timeout: Duration,
    /// Writers: in memory (the queue) or on disk too (`buffer = { type = "disk", ... }`).
    pub buffer: BufferConfig,
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
    /// The text, to find the line of a nested key's value when a component refuses it.
    text: Arc<str>,
}

/// Components built from a config, wiring checked.
pub struct Built {
    pub sources: Vec<(Component, Box<dyn Source>)>,
    pub process: Vec<(Component, Signal, Vec<AnyStage>)>,
    pub writers: Vec<(Component, AnyWriter)>,
}

/// Defaults of the common keys.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
/// 8 MiB per queue: a node agent (two process components and two writers) holds at most
/// 32 MiB queued, plus its writers' batches.
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 8 << 20;
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
        Config::from_file_all(path).map_err(ConfigErrors::first)
    }

    /// Reads `path` and reports every mistake a run would meet: those of parsing and those of
    /// building and wiring, in one pass (`collector check`).
    pub fn check_file(path: &Path) -> Result<(Config, Built), ConfigErrors> {
        let (file, text) = read_config(path)?;
        Config::check(&text, &file, &|name| std::env::var(name).ok())
    }

    /// [`Config::check_file`] on text.
    pub fn check(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Built), ConfigErrors> {
        let (config, mut errors) = Config::parse_inner(text, file, env)?;
        match config.build_all() {
            Ok(built) if errors.is_empty() => return Ok((config, built)),
            Ok(_) => {}
            Err(e) => errors.extend(e.0),
        }
        errors.sort_by_key(|e| e.line);
        Err(ConfigErrors(errors))
    }

    /// [`Config::from_file`] with every mistake of parsing.
    pub fn from_file_all(path: &Path) -> Result<Config, ConfigErrors> {
        let (file, text) = read_config(path)?;
        Config::parse_all(&text, &file, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `file` names it in errors, `env` resolves `${VAR}`.
    pub fn parse(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::parse_all(text, file, env).map_err(ConfigErrors::first)
    }

    /// [`Config::parse`] with every mistake (a TOML syntax error is the only one reported, as
    /// nothing after it can be read).
    pub fn parse_all(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let (config, mut errors) = Config::parse_inner(text, file, env)?;
        if errors.is_empty() {
            return Ok(config);
        }
        errors.sort_by_key(|e| e.line);
        Err(ConfigErrors(errors))
    }

    /// The config, with defaults in place of bad values, and the mistakes; `Err` only for a
    /// TOML syntax error.
    fn parse_inner(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let at = |offset: usize, key: &str, reason: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, offset),
            key: key.to_string(),
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            ConfigErrors(vec![at(
                e.span().map(|s| s.start).unwrap_or(0),
                "-",
                e.message().trim().to_string(),
            )])
        })?;
        let mut errors = Vec::new();
        let mut components = Vec::new();
        for (section, table) in [
            (Section::Sources, raw.sources),
            (Section::Process, raw.process),
            (Section::Writers, raw.writers),
        ] {
            for (name, keys) in table {
                let (c, errs) = component(text, file, section, name, keys, env);
                errors.extend(errs);
                components.push(c);
            }
        }
        let server = match raw.server {
            None => ServerConfig {
                address: DEFAULT_SERVER_ADDRESS.parse().ok(),
            },
            Some(keys) => {
                let line = line_of(text, keys.span().start);
                server_config(text, file, line, keys.into_inner(), env).unwrap_or_else(|e| {
                    errors.extend(e);
                    ServerConfig { address: None }
                })
            }
        };
        let data_dir = match raw.data_dir {
            Some(d) => {
                let start = d.span().start;
                interpolate::interpolate(d.get_ref(), env)
                    .map(PathBuf::from)
                    .unwrap_or_else(|e| {
                        errors.push(at(start, "data_dir", e.to_string()));
                        PathBuf::new()
                    })
            }
            None => std::env::temp_dir().join("collector-data"),
        };
        let config = Config {
            file: file.to_string(),
            components,
            server,
            data_dir,
            text: text.into(),
        };
        Ok((config, errors))
    }

    fn err(&self, c: &Component, key: &str, reason: impl Into<String>) -> ConfigError {
        let line = nested_line(&self.text, c, key)
            .or_else(|| {
                c.key_lines
                    .get(key.split(['.', '[']).next().unwrap_or(key))
                    .copied()
            })
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

    /// Builds every component and checks the wiring: what `collector run` starts. The first
    /// mistake; [`Config::build_all`] has them all.
    pub fn build(&self) -> Result<Built, ConfigError> {
        self.build_all().map_err(ConfigErrors::first)
    }

    /// Builds a component from `table`, and when it refuses a key, again without that key, so
    /// that every key it refuses is reported (serde stops at the first).
    fn build_each<T>(
        &self,
        c: &Component,
        prefix: &str,
        table: &toml::Table,
        build: impl Fn(toml::Table) -> Result<T, BuildError>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let mut table = table.clone();
        let mut refused: Vec<String> = Vec::new();
        // Bounded: each round removes a key.
        for _ in 0..=table.len() {
            let e = match build(table.clone()) {
                Ok(t) => return refused.is_empty().then_some(t),
                Err(e) => e,
            };
            let top = match &e {
                BuildError::Invalid { key, .. } => Some(key.clone()),
                BuildError::Config(msg) => msg.split('`').nth(1).map(str::to_string),
                BuildError::UnknownType(_) => None,
            }
            .map(|k| k.split(['.', '[']).next().unwrap_or("").to_string())
            .filter(|k| table.contains_key(k));
            // After a removal, only a mistake in a key still there is certainly one of the
            // user's: anything else may be the removal's doing ("missing field", "give
            // targets or file_sd").
            if !refused.is_empty() && top.is_none() {
                return None;
            }
            errors.push(self.build_err(c, prefix, e));
            let key = top?;
            table.remove(&key);
            refused.push(key);
        }
        None
    }

    /// [`Config::build`] with every mistake: each component's, each wiring one.
    pub fn build_all(&self) -> Result<Built, ConfigErrors> {
        let mut errors = Vec::new();
        let mut built = Built {
            sources: Vec::new(),
            process: Vec::new(),
            writers: Vec::new(),
        };
        let mut seen: BTreeMap<&str, &Component> = BTreeMap::new();
        for c in &self.components {
            if let Some(other) = seen.insert(&c.name, c) {
                errors.push(self.err(
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
            if c.kind.is_empty() && c.section != Section::Process {
                continue; // its missing or bad `type` is reported by parsing
            }
            match c.section {
                Section::Sources => {
                    let b = |t| sources::build(&c.kind, t);
                    if let Some(s) = self.build_each(c, "", &c.settings, b, &mut errors) {
                        emits.insert(&c.name, s.signals().iter().copied().collect());
                        built.sources.push((c.clone(), s));
                    }
                }
                Section::Process => {
                    if c.stages.is_empty() {
                        errors.push(self.err(
                            c,
                            "stages",
                            "a process component needs at least one stage",
                        ));
                        continue;
                    }
                    let mut stages = Vec::new();
                    for (i, (kind, table)) in c.stages.iter().enumerate() {
                        let prefix = format!("stages[{i}].");
                        let b = |t| process::build(kind, t);
                        if let Some(st) = self.build_each(c, &prefix, table, b, &mut errors) {
                            stages.push((i, st));
                        }
                    }
                    if stages.len() != c.stages.len() {
                        continue;
                    }
                    let signal = stages[0].1.signal();
                    if let Some((i, odd)) = stages.iter().find(|(_, s)| s.signal() != signal) {
                        errors.push(self.err(
                            c,
                            &format!("stages[{i}]"),
                            format!("stage {} works on {}, but the stages before it work on {signal}; one process component handles one signal", c.stages[*i].0, odd.signal()),
                        ));
                        continue;
                    }
                    emits.insert(&c.name, BTreeSet::from([signal]));
                    let stages = stages.into_iter().map(|(_, s)| s).collect();
                    built.process.push((c.clone(), signal, stages));
                }
                Section::Writers => {
                    let b = |t| writers::build(&c.kind, t);
                    if let Some(w) = self.build_each(c, "", &c.settings, b, &mut errors) {
                        built.writers.push((c.clone(), w));
                    }
                }
            }
        }
        // Wiring: inputs exist, are producers, emit the consumer's signal; no cycles. A
        // component that did not build is left out of the signal checks (its mistake is
        // reported already).
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
                errors.push(self.err(
                    c,
                    "inputs",
                    "missing: name the sources or process components this one reads from",
                ));
                continue;
            }
            let want = consumes.get(c.name.as_str());
            for input in &c.inputs {
                let Some(producer) = seen.get(input.as_str()) else {
                    errors.push(self.err(c, "inputs", format!("no component named {input:?}")));
                    continue;
                };
                if producer.section == Section::Writers {
                    errors.push(self.err(
                        c,
                        "inputs",
                        format!("{input:?} is a writer; writers have no output"),
                    ));
                    continue;
                }
                if input == &c.name {
                    errors.push(self.err(c, "inputs", "a component cannot read its own output"));
                    continue;
                }
                let (Some(want), Some(signals)) = (want, emits.get(input.as_str())) else {
                    continue;
                };
                if !signals.contains(want) {
                    let has: Vec<&str> = signals.iter().map(|s| s.as_str()).collect();
                    errors.push(self.err(
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
            errors.push(self.err(
                c,
                "inputs",
                format!("the wiring has a cycle: {}", cycle.join(" → ")),
            ));
        }
        if errors.is_empty() {
            Ok(built)
        } else {
            errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(errors))
        }
    }
}

/// The line of a component's nested key (`targets[1].address`, `tls.ca_file`,
/// `stages[0].rules[2].regex`) in the config text: the value's own line. `None` when the key
/// is not in the text (a missing key, a default).
fn nested_line(text: &str, c: &Component, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let root = DeValue::Table(doc.into_inner());
    let mut at = root
        .get(c.section.as_str())?
        .get_ref()
        .get(c.name.as_str())?;
    let mut offset = at.span().start;
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        // An array without an index (serde names no element): the first element holding the
        // key, e.g. the target with the unknown field.
        if let Some(items) = at.get_ref().as_array()
            && let Some(item) = items.iter().find(|i| i.get_ref().get(name).is_some())
        {
            at = item;
        }
        at = at.get_ref().get(name)?;
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            at = at.get_ref().get(index.parse::<usize>().ok()?)?;
        }
        offset = at.span().start;
    }
    (!key.is_empty()).then(|| line_of(text, offset))
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

/// A component's common keys checked, every mistake collected (the component comes back with
/// defaults in place of the bad values, so later passes can go on).
fn component(
    text: &str,
    file: &str,
    section: Section,
    name: String,
    keys: Spanned<Keys>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Component, Vec<ConfigError>) {
    let path = format!("{}.{name}", section.as_str());
    let line = line_of(text, keys.span().start);
    let mut key_lines = BTreeMap::new();
    let mut settings = toml::Table::new();
    let mut errors = Vec::new();
    let err = |line: usize, key: &str, reason: &str| ConfigError {
        file: file.to_string(),
        line,
        key: format!("{path}.{key}"),
        reason: reason.to_string(),
    };
    for (k, v) in keys.into_inner() {
        let kline = line_of(text, v.span().start);
        key_lines.insert(k.clone(), kline);
        let mut v = v.into_inner();
        if let Err((sub, e)) = interpolate::interpolate_value(&mut v, env) {
            errors.push(err(kline, &format!("{k}{sub}"), &e.to_string()));
        }
        settings.insert(k, v);
    }
    let mut take = |key: &str| {
        settings
            .remove(key)
            .map(|v| (key_lines.get(key).copied().unwrap_or(line), v))
    };
    let kind = match (section, take("type")) {
        (Section::Process, Some((l, _))) => {
            errors.push(err(
                l,
                "type",
                "a process component has no type; its [[stages]] do",
            ));
            String::new()
        }
        (Section::Process, None) => String::new(),
        (_, Some((_, toml::Value::String(t)))) => t,
        (_, Some((l, _))) => {
            errors.push(err(l, "type", "must be a string"));
            String::new()
        }
        (_, None) => {
            errors.push(err(
                line,
                "type",
                "missing: every source and writer needs a type",
            ));
            String::new()
        }
    };
    let inputs = match take("inputs") {
        None => Vec::new(),
        Some((l, _)) if section == Section::Sources => {
            errors.push(err(l, "inputs", "sources have no inputs"));
            Vec::new()
        }
        Some((l, toml::Value::Array(items))) => {
            let names: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            if names.len() != items.len() {
                errors.push(err(l, "inputs", "must be a list of component names"));
            }
            names
        }
        Some((l, _)) => {
            errors.push(err(l, "inputs", "must be a list of component names"));
            Vec::new()
        }
    };
    let queue_capacity = match take("queue_capacity") {
        None => DEFAULT_QUEUE_CAPACITY,
        Some((_, toml::Value::Integer(n))) if n > 0 => n as usize,
        Some((l, _)) => {
            errors.push(err(
                l,
                "queue_capacity",
                "must be a positive whole number of batches",
            ));
            DEFAULT_QUEUE_CAPACITY
        }
    };
    let queue_max_bytes = match take("queue_max_bytes") {
        None => DEFAULT_QUEUE_MAX_BYTES,
        Some((l, v)) => {
            match crate::sources::prometheus_scrape::ByteSize::deserialize(v)
                .ok()
                .and_then(|b| usize::try_from(b.0).ok())
            {
                Some(n) if n > 0 => n,
                _ => {
                    errors.push(err(
                        l,
                        "queue_max_bytes",
                        "must be a positive size: a number of bytes or e.g. \"512KiB\", \"8MiB\"",
                    ));
                    DEFAULT_QUEUE_MAX_BYTES
                }
            }
        }
    };
    let when_full = match take("when_full") {
        None => WhenFull::Block,
        Some((l, v)) => WhenFull::deserialize(v).unwrap_or_else(|_| {
            errors.push(err(l, "when_full", "must be \"block\" or \"drop_newest\""));
            WhenFull::Block
        }),
    };
    let drain_timeout = match take("drain_timeout") {
        None => DEFAULT_DRAIN_TIMEOUT,
        Some((l, toml::Value::String(s))) => humantime::parse_duration(&s).unwrap_or_else(|e| {
            let reason = format!("{s:?} is not a duration ({e})");
            errors.push(err(l, "drain_timeout", &reason));
            DEFAULT_DRAIN_TIMEOUT
        }),
        Some((l, _)) => {
            errors.push(err(
                l,
                "drain_timeout",
                "must be a duration such as \"10s\"",
            ));
            DEFAULT_DRAIN_TIMEOUT
        }
    };
    let buffer = match (section, take("buffer")) {
        (_, None) => BufferConfig::Memory,
        (Section::Writers, Some((l, v))) => {
            BufferConfig::parse(v).unwrap_or_else(|(key, reason)| {
                errors.push(err(l, &key, &reason));
                BufferConfig::Memory
            })
        }
        (_, Some((l, _))) => {
            errors.push(err(l, "buffer", "only writers have a buffer"));
            BufferConfig::Memory
        }
    };
    let mut stages = Vec::new();
    if section == Section::Process {
        match take("stages") {
            None => {}
            Some((l, toml::Value::Array(items))) => {
                for (i, item) in items.into_iter().enumerate() {
                    let toml::Value::Table(mut t) = item else {
                        errors.push(err(
                            l,
                            &format!("stages[{i}]"),
                            "must be a table with a type",
                        ));
                        continue;
                    };
                    match t.remove("type") {
                        Some(toml::Value::String(kind)) => stages.push((kind, t)),
                        _ => errors.push(err(
                            l,
                            &format!("stages[{i}].type"),
                            "missing: every stage needs a type",
                        )),
                    }
                }
            }
            Some((l, _)) => errors.push(err(l, "stages", "must be a list of [[stages]] tables")),
        }
        for k in settings.keys() {
            let l = key_lines.get(k).copied().unwrap_or(line);
            errors.push(err(
                l,
                k,
                "unknown key (a process component takes inputs, stages, queue_capacity, queue_max_bytes, when_full)",
            ));
        }
    }
    let c = Component {
        section,
        name,
        kind,
        inputs,
        queue_capacity,
        queue_max_bytes,
        when_full,
        drain_timeout,
        buffer,
        settings,
        stages,
        line,
        key_lines,
    };
    (c, errors)
}

fn server_config(
    text: &str,
    file: &str,
    line: usize,
    keys: Keys,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, Vec<ConfigError>> {
    let mut address = DEFAULT_SERVER_ADDRESS.to_string();
    let mut address_line = line;
    let mut enabled = true;
    let mut errors = Vec::new();
    for (k, v) in keys {
        let l = line_of(text, v.span().start);
        let err = |reason: String| ConfigError {
            file: file.to_string(),
            line: l,
            key: format!("server.{k}"),
            reason,
        };
        match (k.as_str(), v.into_inner()) {
            ("address", toml::Value::String(s)) => match interpolate::interpolate(&s, env) {
                Ok(a) => {
                    address = a;
                    address_line = l;
                }
                Err(e) => errors.push(err(e.to_string())),
            },
            ("enabled", toml::Value::Boolean(b)) => enabled = b,
            ("address" | "enabled", _) => errors.push(err("wrong type".into())),
            _ => errors.push(err("unknown key (server takes address, enabled)".into())),
        }
    }
    match address.parse::<SocketAddr>() {
        Ok(parsed) if errors.is_empty() => Ok(ServerConfig {
            address: enabled.then_some(parsed),
        }),
        Ok(_) => Err(errors),
        Err(_) => {
            errors.push(ConfigError {
                file: file.to_string(),
                line: address_line,
                key: "server.address".into(),
                reason: format!("{address:?} is not an address such as 127.0.0.1:12345"),
            });
            Err(errors)
        }
    }
}

/// The config file's name and text, or the one mistake that it cannot be read.
fn read_config(path: &Path) -> Result<(String, String), ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            key: "-".into(),
            reason: format!("cannot read the config: {e}"),
        }])),
    }
}
