//! Which stack a run or a scenario uses, and the running stack it starts: the one type every
//! binary and test goes through (loadgen's `--stack`, the scenarios' `STEPS_STACK`, `stack
//! serve`).
//!
//! | choice | what starts | stopped by |
//! |---|---|---|
//! | [`StackChoice::Embedded`] | in-process Loki, Mimir and Tempo on 127.0.0.1 | [`Stack::shutdown`] (or drop) |
//! | [`StackChoice::External`] | nothing: a user's running stack, known by its URLs | nothing to stop |
//! | [`StackChoice::Containers`] | grafana/loki, mimir, tempo and grafana in Docker (the `containers` feature) | [`Stack::shutdown`] (or drop) |
//!
//! The choice exists in every build, so a binary can parse `containers` and say how to get it;
//! only the `containers` feature compiles the code that starts them.

use std::path::PathBuf;

#[cfg(feature = "containers")]
use crate::containers::{Containers, ContainersError};
use crate::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStack};
use crate::endpoints::Endpoints;
use crate::external::{ExternalArgs, ExternalError};

/// Which stack to run against, before it is started.
// Made once per run: the size of the embedded config's variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum StackChoice {
    /// In-process servers, started by us.
    Embedded(EmbeddedConfig),
    /// A user's running stack, from flags or environment.
    External(ExternalArgs),
    /// The real Grafana images in containers (needs Docker and the `containers` feature).
    Containers(ContainersConfig),
}

impl Default for StackChoice {
    fn default() -> Self {
        StackChoice::Embedded(EmbeddedConfig::default())
    }
}

/// How to run the containers stack.
#[derive(Clone, Debug)]
pub struct ContainersConfig {
    /// The folder of configs the containers run with, laid out as the workspace's `deploy/`
    /// (the default).
    pub deploy_dir: PathBuf,
    /// What the error on a machine without Docker tells the user to do instead: only the caller
    /// knows its own flags (`STEPS_STACK=...`, `--stack ...`).
    pub without_docker: String,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            deploy_dir: crate::images::deploy_dir(),
            without_docker: "the containers stack needs Docker; use the embedded stack or an \
                             external one"
                .into(),
        }
    }
}

/// Why a stack could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("embedded stack")]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    External(#[from] ExternalError),
    #[cfg(feature = "containers")]
    #[error(transparent)]
    Containers(#[from] ContainersError),
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
    /// Containers started by us and removed on drop.
    #[cfg(feature = "containers")]
    Containers(Containers),
}

impl Stack {
    /// Starts the chosen stack (for an external one: checks its URLs and credentials).
    pub async fn start(choice: &StackChoice) -> Result<Stack, StackError> {
        match choice {
            StackChoice::Embedded(cfg) => {
                Ok(Stack::Embedded(EmbeddedStack::start(cfg.clone()).await?))
            }
            StackChoice::External(args) => Ok(Stack::External(args.endpoints()?)),
            #[cfg(feature = "containers")]
            StackChoice::Containers(cfg) => Ok(Stack::Containers(Containers::start(cfg).await?)),
            #[cfg(not(feature = "containers"))]
            StackChoice::Containers(_) => Err(StackError::ContainersNotBuilt),
        }
    }

    /// Where this stack's APIs are.
    /// What an embedded stack's backends evicted to stay within their retention bound; `None`
    /// for a stack that is not ours to look into.
    pub fn evictions(&self) -> Option<crate::embedded::Evictions> {
        match self {
            Stack::Embedded(s) => Some(s.evictions()),
            _ => None,
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        match self {
            Stack::Embedded(s) => s.endpoints(),
            Stack::External(e) => e,
            #[cfg(feature = "containers")]
            Stack::Containers(c) => c.endpoints(),
        }
    }

    /// How results and logs name it.
    pub fn describe(&self) -> String {
        match self {
            Stack::Embedded(_) => "embedded stack".into(),
            Stack::External(e) => {
                format!(
                    "external stack (Loki {})",
                    wire::redact::url(e.loki.as_str())
                )
            }
            #[cfg(feature = "containers")]
            Stack::Containers(c) => format!("containers stack (Loki {})", c.endpoints().loki),
        }
    }

    /// Stops what we started; an external stack is left alone.
    pub async fn shutdown(self) {
        match self {
            Stack::Embedded(s) => s.shutdown().await,
            Stack::External(_) => {}
            #[cfg(feature = "containers")]
            Stack::Containers(c) => c.shutdown().await,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn embedded_answers_on_its_endpoints_and_shutdown_frees_the_port() {
        let stack = Stack::start(&StackChoice::default()).await.unwrap();
        assert_eq!(stack.describe(), "embedded stack");
        let loki = stack.endpoints().loki.clone();
        let ready = reqwest::get(loki.join("/ready").unwrap()).await.unwrap();
        assert_eq!(ready.status(), reqwest::StatusCode::OK);

        stack.shutdown().await;
        let addr = (loki.host_str().unwrap(), loki.port().unwrap());
        tokio::net::TcpListener::bind(addr).await.unwrap();
    }

    #[tokio::test]
    async fn external_with_a_bad_url_names_the_flag() {
        let args = ExternalArgs {
            loki_url: "not a url".into(),
            ..ExternalArgs::default()
        };
        let err = match Stack::start(&StackChoice::External(args)).await {
            Ok(_) => panic!("an external stack with a bad Loki URL started"),
            Err(e) => e,
        };
        assert!(matches!(err, StackError::External(_)), "{err:?}");
        assert!(err.to_string().starts_with("--loki-url: "), "{err}");
    }

    #[cfg(not(feature = "containers"))]
    #[tokio::test]
    async fn containers_without_the_feature_say_how_to_get_them() {
        let choice = StackChoice::Containers(ContainersConfig::default());
        let err = match Stack::start(&choice).await {
            Ok(_) => panic!("containers started without the feature"),
            Err(e) => e,
        };
        assert!(matches!(err, StackError::ContainersNotBuilt), "{err:?}");
        assert!(err.to_string().contains("--features containers"), "{err}");
    }

    /// Set (to `1`) when this test binary is run again by
    /// `containers_without_docker_fail_before_connecting`.
    #[cfg(feature = "containers")]
    const INNER: &str = "STACK_NO_DOCKER_INNER";

    /// The environment cannot be changed safely inside a test process (and `unsafe` is
    /// forbidden), so this runs the test binary again with `DOCKER_HOST` at a socket that does
    /// not exist, and the inner test, ignored unless run that way, starts the stack.
    #[cfg(feature = "containers")]
    #[test]
    fn containers_without_docker_fail_before_connecting() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "choice::tests::containers_without_docker_inner",
                "--include-ignored",
                "--nocapture",
            ])
            .env("DOCKER_HOST", "unix:///nonexistent/stack-test/docker.sock")
            .env(INNER, "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "inner test failed:\n{text}");
        assert!(
            text.contains(
                "no Docker engine found (/nonexistent/stack-test/docker.sock does not exist): \
                 try the embedded stack"
            ),
            "{text}"
        );
    }

    #[cfg(feature = "containers")]
    #[tokio::test]
    #[ignore = "run by containers_without_docker_fail_before_connecting"]
    async fn containers_without_docker_inner() {
        if std::env::var_os(INNER).is_none() {
            return;
        }
        let choice = StackChoice::Containers(ContainersConfig {
            without_docker: "try the embedded stack".into(),
            ..ContainersConfig::default()
        });
        let err = match Stack::start(&choice).await {
            Ok(_) => panic!("started containers with DOCKER_HOST at a missing socket"),
            Err(e) => e,
        };
        // The preflight's answer ("does not exist"): no connection was tried, so no wait.
        assert!(
            matches!(
                &err,
                StackError::Containers(ContainersError::NoDocker { host, .. })
                    if host.ends_with("does not exist")
            ),
            "{err:?}"
        );
        println!("{err}");
    }
}
