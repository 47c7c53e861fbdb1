//! Where a stack's APIs are: one URL per API, as the real servers split them, plus the tenant and
//! credentials every request carries. Credentials never appear in `Debug` output or logs.

use std::fmt;

use url::Url;

/// Credentials sent with every request.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}:***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Auth {
    /// Adds the credentials to a request.
    pub fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => rb,
            Auth::Basic { username, password } => rb.basic_auth(username, Some(password)),
            Auth::Bearer(token) => rb.bearer_auth(token),
        }
    }
}

/// The URLs of a stack's APIs. Paths are appended by the clients and writers
/// (`/loki/api/v1/push`, `/api/v1/query`, `/v1/traces`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

/// The tenant header of Loki, Mimir and Tempo.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

impl Endpoints {
    /// Adds tenant and credentials to a request.
    pub fn decorate(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let rb = match &self.tenant {
            Some(t) => rb.header(TENANT_HEADER, t),
            None => rb,
        };
        self.auth.apply(rb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let a = Auth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", Auth::Bearer("tok".into())).contains("tok"));
    }
}
