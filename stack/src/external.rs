//! A user's real stack (Loki, Mimir, Tempo, Grafana), known by its URLs, given as flags or
//! environment variables. The defaults are the ports of the project's `docker-compose.yaml` on
//! this machine, so a user running the compose stack needs no flags at all.
//!
//! [`ExternalArgs`] is a `clap` argument group: the binaries flatten it, so every tool spells the
//! flags and variables the same way.

use url::Url;

use crate::endpoints::{Auth, Endpoints};

/// Flags and environment variables that point the harness at a running stack. `--help` shows
/// none of the variables' values (a URL may hold credentials), and `Debug` masks the
/// credentials ([`wire::redact`]).
#[derive(Clone, Default, clap::Args)]
pub struct ExternalArgs {
    /// Loki base URL (push at /loki/api/v1/push, queries at /loki/api/v1/...).
    #[arg(
        long,
        env = "LOKI_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:3100"
    )]
    pub loki_url: String,
    /// Full URL of the remote-write endpoint (Mimir: .../api/v1/push; Prometheus: .../api/v1/write).
    #[arg(
        long,
        env = "MIMIR_WRITE_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:9009/api/v1/push"
    )]
    pub mimir_write_url: String,
    /// Base URL of the Prometheus query API (Mimir: .../prometheus; Prometheus: its root).
    #[arg(
        long,
        env = "MIMIR_QUERY_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:9009/prometheus"
    )]
    pub mimir_query_url: String,
    /// Tempo's OTLP/HTTP receiver (traces posted to /v1/traces).
    #[arg(
        long,
        env = "TEMPO_OTLP_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:4318"
    )]
    pub tempo_otlp_url: String,
    /// Tempo's OTLP/gRPC receiver.
    #[arg(long, env = "TEMPO_OTLP_GRPC_URL", hide_env_values = true)]
    pub tempo_otlp_grpc_url: Option<String>,
    /// Tempo's query API (/api/traces/{id}, /api/search).
    #[arg(
        long,
        env = "TEMPO_QUERY_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:3200"
    )]
    pub tempo_query_url: String,
    /// Grafana, if there is one.
    #[arg(long, env = "GRAFANA_URL", hide_env_values = true)]
    pub grafana_url: Option<String>,
    /// Tenant sent as X-Scope-OrgID on every request.
    #[arg(long, env = "STACK_TENANT")]
    pub tenant: Option<String>,
    /// Basic-auth user name (with --password).
    #[arg(long, env = "STACK_USERNAME")]
    pub username: Option<String>,
    /// Basic-auth password (with --username). Never printed.
    #[arg(long, env = "STACK_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Bearer token, instead of basic auth. Never printed.
    #[arg(long, env = "STACK_BEARER_TOKEN", hide_env_values = true)]
    pub bearer_token: Option<String>,
    /// PEM CA certificates to trust, besides the system's, for https URLs: the stack's, and
    /// loadgen's to the collector's receivers (a private CA, `stack serve --tls-cert`'s).
    #[arg(long, env = "STACK_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ExternalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |u: &str| wire::redact::url(u).into_owned();
        let hidden = |v: &Option<String>| v.as_ref().map(|_| wire::redact::MASK);
        f.debug_struct("ExternalArgs")
            .field("loki_url", &url(&self.loki_url))
            .field("mimir_write_url", &url(&self.mimir_write_url))
            .field("mimir_query_url", &url(&self.mimir_query_url))
            .field("tempo_otlp_url", &url(&self.tempo_otlp_url))
            .field(
                "tempo_otlp_grpc_url",
                &self.tempo_otlp_grpc_url.as_deref().map(url),
            )
            .field("tempo_query_url", &url(&self.tempo_query_url))
            .field("grafana_url", &self.grafana_url.as_deref().map(url))
            .field("tenant", &self.tenant)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("bearer_token", &hidden(&self.bearer_token))
            .finish()
    }
}

/// A flag or variable with a value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("--{flag}: {value:?} is not a URL: {reason}")]
    BadUrl {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--{flag}: only http and https URLs are supported, not {value:?}")]
    BadScheme { flag: &'static str, value: String },
    #[error("--username and --password go together: {0} is missing")]
    HalfBasicAuth(&'static str),
    #[error("give either --bearer-token or --username/--password, not both")]
    TwoAuths,
}

/// `value` as a URL; errors quote it with its credentials masked.
fn parse_url(flag: &'static str, value: &str) -> Result<Url, ExternalError> {
    let shown = || wire::redact::url(value).into_owned();
    let url = Url::parse(value).map_err(|e| ExternalError::BadUrl {
        flag,
        value: shown(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ExternalError::BadScheme {
            flag,
            value: shown(),
        });
    }
    Ok(url)
}

impl ExternalArgs {
    /// The endpoints these flags describe, or which flag is wrong.
    pub fn endpoints(&self) -> Result<Endpoints, ExternalError> {
        let auth = match (&self.username, &self.password, &self.bearer_token) {
            (Some(_), Some(_), Some(_)) => return Err(ExternalError::TwoAuths),
            (Some(u), Some(p), None) => Auth::Basic {
                username: u.clone(),
                password: p.clone(),
            },
            (Some(_), None, _) => return Err(ExternalError::HalfBasicAuth("--password")),
            (None, Some(_), _) => return Err(ExternalError::HalfBasicAuth("--username")),
            (None, None, Some(t)) => Auth::Bearer(t.clone()),
            (None, None, None) => Auth::None,
        };
        Ok(Endpoints {
            loki: parse_url("loki-url", &self.loki_url)?,
            prometheus_write: parse_url("mimir-write-url", &self.mimir_write_url)?,
            prometheus_query: parse_url("mimir-query-url", &self.mimir_query_url)?,
            tempo_otlp_http: parse_url("tempo-otlp-url", &self.tempo_otlp_url)?,
            tempo_otlp_grpc: self
                .tempo_otlp_grpc_url
                .as_deref()
                .map(|u| parse_url("tempo-otlp-grpc-url", u))
                .transpose()?,
            tempo_query: parse_url("tempo-query-url", &self.tempo_query_url)?,
            grafana: self
                .grafana_url
                .as_deref()
                .map(|u| parse_url("grafana-url", u))
                .transpose()?,
            tenant: self.tenant.clone().filter(|t| !t.is_empty()),
            auth,
            ca_file: self.ca_file.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ext: ExternalArgs,
    }

    fn parse(args: &[&str]) -> ExternalArgs {
        let mut all = vec!["test"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("flags parse").ext
    }

    #[test]
    fn defaults_are_the_compose_ports() {
        let e = parse(&[]).endpoints().unwrap();
        assert_eq!(e.loki.as_str(), "http://127.0.0.1:3100/");
        assert_eq!(e.prometheus_write.path(), "/api/v1/push");
        assert_eq!(e.auth, Auth::None);
    }

    #[test]
    fn flags_and_auth() {
        let e = parse(&[
            "--loki-url",
            "https://logs.example.com",
            "--tenant",
            "retail",
            "--username",
            "u",
            "--password",
            "p",
        ])
        .endpoints()
        .unwrap();
        assert_eq!(e.loki.host_str(), Some("logs.example.com"));
        assert_eq!(e.tenant.as_deref(), Some("retail"));
        assert!(matches!(e.auth, Auth::Basic { .. }));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["--loki-url", "not a url"]).endpoints().unwrap_err();
        assert!(err.to_string().starts_with("--loki-url:"), "{err}");
        let err = parse(&["--tempo-query-url", "ftp://x"])
            .endpoints()
            .unwrap_err();
        assert!(err.to_string().contains("--tempo-query-url"), "{err}");
        let err = parse(&["--username", "u"]).endpoints().unwrap_err();
        assert!(err.to_string().contains("--password"), "{err}");
        let err = parse(&["--username", "u", "--password", "p", "--bearer-token", "t"])
            .endpoints()
            .unwrap_err();
        assert!(matches!(err, ExternalError::TwoAuths));
    }

    #[test]
    fn credentials_stay_out_of_errors_and_debug() {
        let err = parse(&["--loki-url", "http://u:s3cr3t@[bad/"])
            .endpoints()
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let err = parse(&["--grafana-url", "ftp://u:s3cr3t@h/?token=t0k3n"])
            .endpoints()
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(!err.to_string().contains("t0k3n"), "{err}");
        let args = parse(&[
            "--mimir-write-url",
            "http://u:s3cr3t@h/api/v1/push",
            "--password",
            "pw-s3cr3t",
            "--tempo-query-url",
            "http://h/?access_token=t0k3n",
        ]);
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
        assert!(shown.contains("http://u:xxxxx@h/api/v1/push"), "{shown}");
    }
}
