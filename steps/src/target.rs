//! Which stack the scenarios run against, chosen by `STEPS_STACK`:
//!
//! | value | stack |
//! |---|---|
//! | `embedded` (default) | [`stack::EmbeddedStack`] in this process |
//! | `external` | a running stack from the environment ([`stack::external::ExternalArgs`]: `LOKI_URL`, `MIMIR_WRITE_URL`, `MIMIR_QUERY_URL`, `TEMPO_OTLP_URL`, `TEMPO_QUERY_URL`, `GRAFANA_URL`, `STACK_TENANT`, ...) |
//! | `containers` (default with the `e2e` feature) | grafana/loki, mimir, tempo and grafana in containers |
//!
//! The stack starts once per process, on first use, and lives until the process ends.

use clap::Parser;
use stack::external::ExternalArgs;
use stack::{EmbeddedConfig, EmbeddedStack, Endpoints};
use tokio::sync::OnceCell;

/// The environment variable that picks the stack.
pub const STACK_ENV: &str = "STEPS_STACK";

/// The kinds of stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackKind {
    Embedded,
    External,
    Containers,
}

/// Why the stack under test is not there.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "{STACK_ENV}={0:?}: expected embedded, external or containers (containers needs --features e2e)"
    )]
    UnknownKind(String),
    #[error("embedded stack: {0}")]
    Embedded(#[from] stack::embedded::EmbeddedError),
    #[error("external stack (from LOKI_URL, MIMIR_WRITE_URL, ...): {0}")]
    External(String),
    #[error("containers: {0}")]
    Containers(String),
}

impl StackKind {
    /// From `STEPS_STACK`; unset: containers with the `e2e` feature, embedded otherwise.
    pub fn from_env() -> Result<StackKind, TargetError> {
        match std::env::var(STACK_ENV).ok().as_deref().map(str::trim) {
            None | Some("") => Ok(if cfg!(feature = "e2e") {
                StackKind::Containers
            } else {
                StackKind::Embedded
            }),
            Some("embedded") => Ok(StackKind::Embedded),
            Some("external") => Ok(StackKind::External),
            Some("containers") if cfg!(feature = "e2e") => Ok(StackKind::Containers),
            Some(other) => Err(TargetError::UnknownKind(other.to_string())),
        }
    }
}

/// The stack under test and what keeps it running.
pub struct SharedStack {
    pub kind: StackKind,
    endpoints: Endpoints,
    _embedded: Option<EmbeddedStack>,
    #[cfg(feature = "e2e")]
    _containers: Option<crate::containers::Containers>,
}

impl std::fmt::Debug for SharedStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStack")
            .field("kind", &self.kind)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl SharedStack {
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Does the stack have a Grafana (scenarios tagged `@grafana` need one)?
    pub fn has_grafana(&self) -> bool {
        self.endpoints.grafana.is_some()
    }
}

/// The `ExternalArgs` of the environment (flags are not read: the test binary's arguments belong
/// to cucumber).
#[derive(Parser)]
struct FromEnv {
    #[command(flatten)]
    stack: ExternalArgs,
}

/// External endpoints from the environment.
pub fn external_args() -> Result<ExternalArgs, TargetError> {
    FromEnv::try_parse_from(["steps"])
        .map(|a| a.stack)
        .map_err(|e| TargetError::External(e.to_string()))
}

/// The endpoints `STEPS_STACK` would use, without starting anything: only external stacks
/// know theirs in advance (the runner uses it to decide on `@grafana`).
pub fn grafana_expected() -> bool {
    match StackKind::from_env() {
        Ok(StackKind::External) => external_args().ok().and_then(|a| a.grafana_url).is_some(),
        Ok(StackKind::Containers) => true,
        _ => false,
    }
}

async fn start() -> Result<SharedStack, TargetError> {
    let kind = StackKind::from_env()?;
    match kind {
        StackKind::Embedded => {
            let s = EmbeddedStack::start(EmbeddedConfig::default()).await?;
            Ok(SharedStack {
                kind,
                endpoints: s.endpoints().clone(),
                _embedded: Some(s),
                #[cfg(feature = "e2e")]
                _containers: None,
            })
        }
        StackKind::External => {
            let endpoints = external_args()?
                .endpoints()
                .map_err(|e| TargetError::External(e.to_string()))?;
            Ok(SharedStack {
                kind,
                endpoints,
                _embedded: None,
                #[cfg(feature = "e2e")]
                _containers: None,
            })
        }
        #[cfg(feature = "e2e")]
        StackKind::Containers => {
            let c = crate::containers::Containers::start()
                .await
                .map_err(|e| TargetError::Containers(e.to_string()))?;
            Ok(SharedStack {
                kind,
                endpoints: c.endpoints(),
                _embedded: None,
                _containers: Some(c),
            })
        }
        #[cfg(not(feature = "e2e"))]
        StackKind::Containers => Err(TargetError::Containers(
            "built without the e2e feature: cargo test -p steps --features e2e".into(),
        )),
    }
}

static STACK: OnceCell<Result<SharedStack, String>> = OnceCell::const_new();

/// The one stack of this process, started on first use. A stack that failed to start fails
/// every scenario with the same message.
pub async fn shared() -> Result<&'static SharedStack, String> {
    STACK
        .get_or_init(|| async { start().await.map_err(|e| e.to_string()) })
        .await
        .as_ref()
        .map_err(Clone::clone)
}
