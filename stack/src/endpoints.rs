//! Where a stack's APIs are: one URL per API, as the real servers split them, plus the tenant and
//! credentials every request carries. Credentials never appear in `Debug` output or logs.

use reqwest::header::{AUTHORIZATION, HeaderValue};
use url::Url;

pub use wire::http::{Auth, TENANT_HEADER};

/// The URLs of a stack's APIs. Paths are appended by the clients and writers
/// (`/loki/api/v1/push`, `/api/v1/query`, `/v1/traces`, ...). `Debug` shows the URLs with their
/// credentials masked ([`wire::redact`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Loki base URL: push at `/loki/api/v1/push`, queries at `/loki/api/v1/...`.
    pub loki: Url,
    /// Full URL of the remote-write endpoint (Mimir: `.../api/v1/push`, Prometheus: `.../api/v1/write`).
    pub prometheus_write: Url,
    /// Base URL of the Prometheus query API (Mimir: `.../prometheus`, Prometheus: the root).
    pub prometheus_query: Url,
    /// Tempo's OTLP/HTTP receiver base URL (`/v1/traces` appended).
    pub tempo_otlp_http: Url,
    /// Tempo's OTLP/gRPC receiver, where there is one.
    pub tempo_otlp_grpc: Option<Url>,
    /// Tempo's query API base URL (`/api/traces/{id}`, `/api/search`).
    pub tempo_query: Url,
    /// Grafana, where there is one.
    pub grafana: Option<Url>,
    /// Tenant sent as `X-Scope-OrgID`, where the stack is multi-tenant.
    pub tenant: Option<String>,
    /// Credentials for every request.
    pub auth: Auth,
    /// PEM CA certificates the clients trust besides the system's (a private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |u: &Url| wire::redact::url(u.as_str()).into_owned();
        f.debug_struct("Endpoints")
            .field("loki", &url(&self.loki))
            .field("prometheus_write", &url(&self.prometheus_write))
            .field("prometheus_query", &url(&self.prometheus_query))
            .field("tempo_otlp_http", &url(&self.tempo_otlp_http))
            .field("tempo_otlp_grpc", &self.tempo_otlp_grpc.as_ref().map(url))
            .field("tempo_query", &url(&self.tempo_query))
            .field("grafana", &self.grafana.as_ref().map(url))
            .field("tenant", &self.tenant)
            .field("auth", &self.auth)
            .finish()
    }
}

impl Endpoints {
    /// Adds tenant and credentials to a request.
    pub fn decorate(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let rb = match &self.tenant {
            Some(t) => rb.header(TENANT_HEADER, t),
            None => rb,
        };
        match self.auth.authorization() {
            Some(value) => match HeaderValue::from_str(&value) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    rb.header(AUTHORIZATION, value)
                }
                // reqwest records the invalid value as the request's error.
                Err(_) => rb.header(AUTHORIZATION, value),
            },
            None => rb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_tenant_and_credentials() {
        let mut e = Endpoints {
            loki: Url::parse("http://loki").unwrap(),
            prometheus_write: Url::parse("http://mimir/api/v1/push").unwrap(),
            prometheus_query: Url::parse("http://mimir/prometheus").unwrap(),
            tempo_otlp_http: Url::parse("http://tempo:4318").unwrap(),
            tempo_otlp_grpc: None,
            tempo_query: Url::parse("http://tempo").unwrap(),
            grafana: None,
            tenant: Some("t1".into()),
            auth: Auth::Basic {
                username: "u".into(),
                password: "hunter2".into(),
            },
            ca_file: None,
        };
        let client = reqwest::Client::new();
        let req = e.decorate(client.get("http://x/")).build().unwrap();
        assert_eq!(req.headers()[TENANT_HEADER], "t1");
        assert_eq!(req.headers()[AUTHORIZATION], "Basic dTpodW50ZXIy");
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
        e.auth = Auth::Bearer("s3cr3t".into());
        let req = e.decorate(client.get("http://x/")).build().unwrap();
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer s3cr3t");
        assert!(!format!("{e:?}").contains("s3cr3t"));
        e.loki = Url::parse("http://u:pw-s3cr3t@loki/?token=t0k3n").unwrap();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
    }
}
