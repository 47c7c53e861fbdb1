//! Which stack a run or a scenario uses, and the running stack it starts: the one type every
//! binary and test goes through (loadgen's `--stack`, the scenarios' `STEPS_STACK`, `stack
//! serve`).
//!
//! | choice | what starts | stopped by |
//! |---|---|---|
//! | [`StackChoice::Embedded`] | in-process Loki, Mimir and Tempo on 127.0.0.1 | [`Stack::shutdown`] (or drop) |
//! | [`StackChoice::External`] | nothing: a user's running stack, known by its URLs | nothing to stop |
//! | [`StackChoice::Containers`] | grafana/loki, mimir, tempo and grafana in Docker (the `containers` feature) | [`Stack::shutdown`] |

use crate::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStack};
use crate::endpoints::Endpoints;
use crate::external::{ExternalArgs, ExternalError};

/// Which stack to run against, before it is started.
#[derive(Clone, Debug)]
pub enum StackChoice {
    /// In-process servers, started by us.
    Embedded(EmbeddedConfig),
    /// A user's running stack, from flags or environment.
    External(ExternalArgs),
    /// The real Grafana images in containers (needs Docker and the `containers` feature).
    Containers,
}

impl Default for StackChoice {
    fn default() -> Self {
        StackChoice::Embedded(EmbeddedConfig::default())
    }
}

/// Why a stack could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("embedded stack")]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    External(#[from] ExternalError),
    #[error(
        "this binary was built without the `containers` feature: rebuild with `--features containers` (needs Docker), or use the embedded or an external stack"
    )]
    ContainersNotBuilt,
}

/// A started stack.
// One value per process, never moved in a hot path: boxing the embedded variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Stack {
    /// In-process servers, started by us and stopped on drop.
    Embedded(EmbeddedStack),
    /// A user's running stack, known by its URLs.
    External(Endpoints),
}

impl Stack {
    /// Starts the chosen stack (for an external one: checks its URLs and credentials).
    pub async fn start(choice: &StackChoice) -> Result<Stack, StackError> {
        match choice {
            StackChoice::Embedded(cfg) => {
                Ok(Stack::Embedded(EmbeddedStack::start(cfg.clone()).await?))
            }
            StackChoice::External(args) => Ok(Stack::External(args.endpoints()?)),
            StackChoice::Containers => Err(StackError::ContainersNotBuilt),
        }
    }

    /// Where this stack's APIs are.
    pub fn endpoints(&self) -> &Endpoints {
        match self {
            Stack::Embedded(s) => s.endpoints(),
            Stack::External(e) => e,
        }
    }

    /// How results and logs name it.
    pub fn describe(&self) -> String {
        match self {
            Stack::Embedded(_) => "embedded stack".into(),
            Stack::External(e) => format!("external stack (Loki {})", e.loki),
        }
    }

    /// Stops what we started; an external stack is left alone.
    pub async fn shutdown(self) {
        match self {
            Stack::Embedded(s) => s.shutdown().await,
            Stack::External(_) => {}
        }
    }
}
