//! Which stack the scenarios run against, chosen by `STEPS_STACK` and turned into a
//! [`stack::StackChoice`]:
//!
//! | value | stack |
//! |---|---|
//! | `embedded` (default) | [`stack::EmbeddedStack`] in this process |
//! | `external` | a running stack from the environment ([`stack::external::ExternalArgs`]: `LOKI_URL`, `MIMIR_WRITE_URL`, `MIMIR_QUERY_URL`, `TEMPO_OTLP_URL`, `TEMPO_QUERY_URL`, `GRAFANA_URL`, `STACK_TENANT`, ...) |
//! | `containers` (default with the `e2e` feature) | grafana/loki, mimir, tempo and grafana in containers |
//!
//! The stack starts once per process, on first use ([`stack::Stack::start`]), and lives until
//! the process ends.

use clap::Parser;
use stack::external::ExternalArgs;
use stack::{ContainersConfig, EmbeddedConfig, Endpoints, Stack, StackChoice};
use tokio::sync::OnceCell;

/// The environment variable that picks the stack.
pub const STACK_ENV: &str = "STEPS_STACK";

/// Why the stack under test is not there.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "{STACK_ENV}={0:?}: expected embedded, external or containers (containers needs --features e2e)"
    )]
    UnknownKind(String),
    #[error("external stack (from LOKI_URL, MIMIR_WRITE_URL, ...): {0}")]
    External(String),
    #[error(transparent)]
    Stack(#[from] stack::StackError),
}

/// The stack `STEPS_STACK` names; unset: containers with the `e2e` feature, embedded otherwise.
pub fn choice_from_env() -> Result<StackChoice, TargetError> {
    match std::env::var(STACK_ENV).ok().as_deref().map(str::trim) {
        None | Some("") if cfg!(feature = "e2e") => Ok(containers_choice()),
        None | Some("") | Some("embedded") => Ok(StackChoice::Embedded(EmbeddedConfig::default())),
        Some("external") => Ok(StackChoice::External(external_args()?)),
        Some("containers") if cfg!(feature = "e2e") => Ok(containers_choice()),
        Some(other) => Err(TargetError::UnknownKind(other.to_string())),
    }
}

/// The containers as the scenarios run them: without Docker, the error says what to run
/// instead in this crate's terms.
pub fn containers_config() -> ContainersConfig {
    ContainersConfig {
        without_docker: "--features e2e needs Docker; run `cargo test` for the embedded stack or \
                         STEPS_STACK=external for your own stack"
            .into(),
        ..ContainersConfig::default()
    }
}

fn containers_choice() -> StackChoice {
    StackChoice::Containers(containers_config())
}

/// The stack under test, running.
pub struct SharedStack {
    stack: Stack,
}

impl std::fmt::Debug for SharedStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStack")
            .field("stack", &self.stack.describe())
            .field("endpoints", self.endpoints())
            .finish()
    }
}

impl SharedStack {
    pub fn endpoints(&self) -> &Endpoints {
        self.stack.endpoints()
    }

    /// How logs name it ("embedded stack", "external stack (Loki ...)", ...).
    pub fn describe(&self) -> String {
        self.stack.describe()
    }

    /// Does the stack have a Grafana (scenarios tagged `@grafana` need one)?
    pub fn has_grafana(&self) -> bool {
        self.endpoints().grafana.is_some()
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

/// Will the stack `STEPS_STACK` names have a Grafana, known without starting anything: the
/// containers always do, an external stack when `GRAFANA_URL` is set (the runner uses it to
/// decide on `@grafana`).
pub fn grafana_expected() -> bool {
    match choice_from_env() {
        Ok(StackChoice::External(args)) => args.grafana_url.is_some(),
        Ok(StackChoice::Containers(_)) => true,
        _ => false,
    }
}

async fn start() -> Result<SharedStack, TargetError> {
    let stack = Stack::start(&choice_from_env()?)
        .await
        .map_err(|e| match e {
            // Named as before: which variables to fix.
            stack::StackError::External(e) => TargetError::External(e.to_string()),
            e => TargetError::Stack(e),
        })?;
    tracing::info!(stack = %stack.describe(), "the stack under test is up");
    Ok(SharedStack { stack })
}

static STACK: OnceCell<Result<SharedStack, String>> = OnceCell::const_new();

/// The one stack of this process, started on first use. A stack that failed to start fails
/// every scenario with the same message (the whole chain of causes).
pub async fn shared() -> Result<&'static SharedStack, String> {
    STACK
        .get_or_init(|| async {
            start()
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
        })
        .await
        .as_ref()
        .map_err(Clone::clone)
}
