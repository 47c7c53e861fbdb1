//! The config of a collector loadgen runs (in process or spawned), as a typed value: the
//! components loadgen uses, each a serde struct in the collector's own key names, turned into the
//! collector's TOML by `toml` (never by string templates, so paths and URLs need no quoting by
//! hand). [`CollectorFile::for_run`] is the run's config: Loki push, remote write and OTLP in, the
//! stack out, plus what the delivery paths add ([`crate::deliver`]'s scrape and file sources).
//!
//! The collector's own config types only deserialize, and its [`collector::config::Config`] is
//! made from text, so the value goes through [`CollectorFile::to_toml`] once: parsed in process,
//! or written to the spawned collector's `--config` file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use stack::{Auth, Endpoints};

use super::RunError;
use super::process::Ports;

/// A collector config file.
#[derive(Clone, Debug, Serialize)]
pub struct CollectorFile {
    pub data_dir: String,
    pub server: Server,
    pub sources: BTreeMap<String, Source>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub process: BTreeMap<String, Process>,
    pub writers: BTreeMap<String, Writer>,
    /// The stack's credentials: the writers name them as `${VAR}`, and they are handed over as
    /// the environment (never written into the file).
    #[serde(skip)]
    pub secrets: Vec<(String, String)>,
}

/// The variables the writers' credentials come from.
const PASSWORD_VAR: &str = "LOADGEN_STACK_PASSWORD";
const TOKEN_VAR: &str = "LOADGEN_STACK_BEARER_TOKEN";

/// `[server]`: the self-monitoring listener.
#[derive(Clone, Debug, Serialize)]
pub struct Server {
    pub address: String,
}

/// `[sources.NAME]`, those loadgen uses.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    LokiPush {
        address: String,
        use_incoming_timestamp: bool,
    },
    RemoteWrite {
        address: String,
    },
    Otlp {
        http_address: String,
        grpc_address: String,
        log_index_attributes: Vec<String>,
        promote_resource_attributes: Vec<String>,
    },
    PrometheusScrape {
        file_sd: FileSd,
        scrape_interval: String,
        honor_labels: bool,
        honor_timestamps: bool,
    },
    File {
        paths: Vec<String>,
        start_at: String,
        poll_interval: String,
    },
}

/// A scrape source's `file_sd`.
#[derive(Clone, Debug, Serialize)]
pub struct FileSd {
    pub files: Vec<String>,
    pub refresh_interval: String,
}

/// `[process.NAME]`.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    pub inputs: Vec<String>,
    pub stages: Vec<Stage>,
}

/// One stage of a process component, those loadgen uses.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum Stage {
    #[serde(rename = "logs.regex")]
    Regex { expression: String },
    #[serde(rename = "logs.labels")]
    Labels { values: BTreeMap<String, String> },
    #[serde(rename = "logs.output")]
    Output { source: String },
}

/// `[writers.NAME]`: the HTTP writers' keys loadgen sets.
#[derive(Clone, Debug, Serialize)]
pub struct Writer {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    pub inputs: Vec<String>,
    pub url: String,
    pub batch_wait: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
}

/// A writer's `basic_auth`.
#[derive(Clone, Debug, Serialize)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// What the delivery paths add to the collector: components, and the extra inputs of its Loki
/// and remote-write writers.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub sources: BTreeMap<String, Source>,
    pub process: BTreeMap<String, Process>,
    /// Feeds the Loki writer too.
    pub logs: Option<String>,
    /// Feeds the remote-write writer too.
    pub metrics: Option<String>,
    /// The run folder (a spawned agent's config, logs and data go in its `agent/`).
    pub run_dir: Option<std::path::PathBuf>,
    /// The scrape targets' file_sd file and the shortest scrape interval, when metrics are
    /// scraped (what an agent from a template is given as `{{file_sd_file}}`).
    pub scrape: Option<(std::path::PathBuf, std::time::Duration)>,
}

/// How long the run's writers wait to fill a batch.
const BATCH_WAIT: &str = "100ms";

impl CollectorFile {
    /// The run's collector: Loki push, remote write and OTLP in, the stack `e` out (with its
    /// tenant and credentials), plus `extra`; listeners on port 0 (in process) or on `ports`.
    pub fn for_run(
        e: &Endpoints,
        extra: &Extra,
        data_dir: &Path,
        ports: Option<&Ports>,
    ) -> CollectorFile {
        let at = |p: fn(&Ports) -> u16| format!("127.0.0.1:{}", ports.map_or(0, p));
        let names = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let inputs = |base: &[&str], more: &Option<String>| {
            let mut v = names(base);
            v.extend(more.clone());
            v
        };
        let mut sources = BTreeMap::from([
            (
                "logs".to_string(),
                Source::LokiPush {
                    address: at(|p| p.loki_push),
                    use_incoming_timestamp: true,
                },
            ),
            (
                "metrics".to_string(),
                Source::RemoteWrite {
                    address: at(|p| p.remote_write),
                },
            ),
            (
                "traces".to_string(),
                Source::Otlp {
                    http_address: at(|p| p.otlp_http),
                    grpc_address: at(|p| p.otlp_grpc),
                    log_index_attributes: names(&crate::payload::otlp::LOG_INDEX_ATTRIBUTES),
                    promote_resource_attributes: names(&crate::payload::otlp::LABEL_ATTRIBUTES),
                },
            ),
        ]);
        sources.extend(extra.sources.clone());
        let var = |name: &str| format!("${{{name}}}");
        let (basic_auth, bearer_token, mut secrets) = match &e.auth {
            Auth::None => (None, None, Vec::new()),
            Auth::Basic { username, password } => (
                Some(BasicAuth {
                    username: username.clone(),
                    password: var(PASSWORD_VAR),
                }),
                None,
                vec![(PASSWORD_VAR.to_string(), password.clone())],
            ),
            Auth::Bearer(t) => (
                None,
                Some(var(TOKEN_VAR)),
                vec![(TOKEN_VAR.to_string(), t.clone())],
            ),
        };
        // A URL with credentials in it (userinfo, a token parameter) goes the passwords' way:
        // into the environment, the file naming only its variable.
        let mut url_of = |name: &str, url: String| {
            if wire::redact::url(&url) == url.as_str() {
                return url;
            }
            let var_name = format!("LOADGEN_{}_URL", name.to_ascii_uppercase());
            secrets.push((var_name.clone(), url));
            var(&var_name)
        };
        let urls = [
            url_of("loki", format!("{}loki/api/v1/push", e.loki)),
            url_of("mimir", e.prometheus_write.to_string()),
            url_of(
                "tempo",
                e.tempo_otlp_http.as_str().trim_end_matches('/').to_string(),
            ),
        ];
        let [loki_url, mimir_url, tempo_url] = urls;
        let writer =
            |kind: &str, protocol: Option<&str>, inputs: Vec<String>, url: String| Writer {
                kind: kind.into(),
                protocol: protocol.map(str::to_string),
                inputs,
                url,
                batch_wait: BATCH_WAIT.into(),
                tenant_id: e.tenant.clone(),
                basic_auth: basic_auth.clone(),
                bearer_token: bearer_token.clone(),
            };
        let writers = BTreeMap::from([
            (
                "loki".to_string(),
                writer(
                    "loki",
                    None,
                    inputs(&["logs", "traces"], &extra.logs),
                    loki_url,
                ),
            ),
            (
                "mimir".to_string(),
                writer(
                    "prometheus_remote_write",
                    None,
                    inputs(&["metrics", "traces"], &extra.metrics),
                    mimir_url,
                ),
            ),
            (
                "tempo".to_string(),
                writer("otlp", Some("http"), names(&["traces"]), tempo_url),
            ),
        ]);
        CollectorFile {
            data_dir: data_dir.display().to_string(),
            server: Server {
                address: at(|p| p.server),
            },
            sources,
            process: extra.process.clone(),
            writers,
            secrets,
        }
    }

    /// The collector's TOML.
    pub fn to_toml(&self) -> Result<String, RunError> {
        toml::to_string(self)
            .map_err(|e| RunError::Collector(format!("writing the collector config: {e}")))
    }

    /// The collector's own loaded config (credentials from [`CollectorFile::secrets`]).
    pub fn load(&self) -> Result<collector::config::Config, RunError> {
        let env = |name: &str| {
            self.secrets
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        collector::config::Config::parse(&self.to_toml()?, "loadgen-collector.toml", &env)
            .map_err(|err| RunError::Collector(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(auth: Auth) -> Endpoints {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        Endpoints {
            loki: u("http://127.0.0.1:3100/"),
            prometheus_write: u("http://127.0.0.1:9009/api/v1/push"),
            prometheus_query: u("http://127.0.0.1:9009/prometheus/"),
            tempo_otlp_http: u("http://127.0.0.1:4318/"),
            tempo_otlp_grpc: None,
            tempo_query: u("http://127.0.0.1:3200/"),
            grafana: None,
            tenant: Some("t1".into()),
            auth,
            ca_file: None,
        }
    }

    #[test]
    fn the_run_config_loads_and_builds_in_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        let file = CollectorFile::for_run(
            &endpoints(Auth::Basic {
                username: "u".into(),
                password: "p\"w".into(),
            }),
            &Extra::default(),
            &dir.path().join("data \"quoted\""),
            None,
        );
        let cfg = file.load().unwrap();
        cfg.build().unwrap();
        let names: Vec<String> = cfg.components.iter().map(|c| c.path()).collect();
        assert_eq!(
            names,
            [
                "sources.logs",
                "sources.metrics",
                "sources.traces",
                "writers.loki",
                "writers.mimir",
                "writers.tempo"
            ]
        );
        let loki = &cfg.components[3];
        assert_eq!(loki.inputs, ["logs", "traces"]);
        assert_eq!(loki.settings["tenant_id"].as_str(), Some("t1"));
        assert_eq!(
            loki.settings["url"].as_str(),
            Some("http://127.0.0.1:3100/loki/api/v1/push")
        );
        assert!(cfg.data_dir.ends_with("data \"quoted\""));
        // The password is handed over apart from the text, and resolved into the writer.
        assert!(!file.to_toml().unwrap().contains("p\"w"));
        assert_eq!(
            loki.settings["basic_auth"]["password"].as_str(),
            Some("p\"w")
        );
    }

    #[test]
    fn spawned_ports_are_the_listeners() {
        let ports = Ports {
            server: 1,
            loki_push: 2,
            remote_write: 3,
            otlp_http: 4,
            otlp_grpc: 5,
        };
        let file = CollectorFile::for_run(
            &endpoints(Auth::None),
            &Extra::default(),
            Path::new("/tmp/x"),
            Some(&ports),
        );
        let text = file.to_toml().unwrap();
        for line in [
            "address = \"127.0.0.1:1\"",
            "address = \"127.0.0.1:2\"",
            "http_address = \"127.0.0.1:4\"",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("basic_auth"), "{text}");
    }

    #[test]
    fn urls_with_credentials_go_by_the_environment() {
        let mut e = endpoints(Auth::None);
        e.loki = reqwest::Url::parse("http://u:pw-s3cr3t@127.0.0.1:3100/").unwrap();
        e.prometheus_write =
            reqwest::Url::parse("http://127.0.0.1:9009/api/v1/push?token=t0k3n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = CollectorFile::for_run(&e, &Extra::default(), dir.path(), None);
        let text = file.to_toml().unwrap();
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
        assert!(text.contains("${LOADGEN_LOKI_URL}"), "{text}");
        // The URL without credentials stays in the file.
        assert!(text.contains("http://127.0.0.1:4318"), "{text}");
        let cfg = file.load().unwrap();
        cfg.build().unwrap();
        assert_eq!(
            cfg.components[3].settings["url"].as_str(),
            Some("http://u:pw-s3cr3t@127.0.0.1:3100/loki/api/v1/push")
        );
        assert_eq!(
            cfg.components[4].settings["url"].as_str(),
            Some("http://127.0.0.1:9009/api/v1/push?token=t0k3n")
        );
    }
}
