//! The collector as a child process (`--collector-cmd`): loadgen writes its config with fixed
//! free ports, spawns `collector run --config FILE`, waits for `/-/ready`, and at the end stops
//! it with SIGTERM (it drains its queues) and, if it does not exit in time, kills it. Its pid is
//! handed to the [`crate::recorder::ResourceSampler`], so the run reports the collector's CPU
//! and RSS apart from loadgen's and the collector SLOs can be checked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::RunError;
use super::collector::CollectorFile;

/// Ports the spawned collector listens on, chosen free before it starts.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub server: u16,
    pub loki_push: u16,
    pub remote_write: u16,
    pub otlp_http: u16,
    pub otlp_grpc: u16,
}

impl Ports {
    /// Five distinct free ports on 127.0.0.1 (held together while chosen, then released: a
    /// process that grabs one in between makes the collector fail to start, with its message).
    pub fn free() -> Result<Ports, RunError> {
        let listeners = (0..5)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunError::Collector(format!("choosing free ports: {e}")))?;
        let p = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunError::Collector(format!("choosing free ports: {e}")))?;
        Ok(Ports {
            server: p[0],
            loki_push: p[1],
            remote_write: p[2],
            otlp_http: p[3],
            otlp_grpc: p[4],
        })
    }

    pub fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }
}

/// The collector binary `--collector-cmd` runs when given no path: the `collector` beside the
/// `loadgen` executable (both land in `target/<profile>/`).
pub fn default_program() -> Result<PathBuf, RunError> {
    let exe = std::env::current_exe()
        .map_err(|e| RunError::Collector(format!("locating loadgen's executable: {e}")))?;
    Ok(exe.with_file_name(format!("collector{}", std::env::consts::EXE_SUFFIX)))
}

/// A running collector process.
pub struct CollectorProcess {
    child: tokio::process::Child,
    dir: PathBuf,
    log: PathBuf,
}

impl CollectorProcess {
    /// Writes `config` into `dir` (its secrets go in the child's environment, not the file),
    /// starts `program run --config`, and waits until its `/-/ready` on `server` answers 200
    /// (at most `timeout`).
    pub async fn spawn(
        program: &Path,
        config: &CollectorFile,
        dir: &Path,
        server: SocketAddr,
        timeout: Duration,
    ) -> Result<CollectorProcess, RunError> {
        if !program.is_file() {
            return Err(RunError::Collector(format!(
                "collector binary {} not found: build it (`cargo build --release -p collector`) \
                 or give its path, --collector-cmd PATH",
                program.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(super::config::io_err(dir))?;
        let config_path = dir.join("collector.toml");
        std::fs::write(&config_path, config.to_toml()?)
            .map_err(super::config::io_err(&config_path))?;
        let log = dir.join("collector.log");
        let log_file = std::fs::File::create(&log).map_err(super::config::io_err(&log))?;
        let log_err = log_file.try_clone().map_err(super::config::io_err(&log))?;
        let child = tokio::process::Command::new(program)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .envs(config.secrets.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RunError::Collector(format!("starting {}: {e}", program.display())))?;
        let mut proc = CollectorProcess {
            child,
            dir: dir.to_path_buf(),
            log,
        };
        proc.wait_ready(server, timeout).await?;
        tracing::info!(program = %program.display(), pid = ?proc.pid(), %server, "collector process ready");
        Ok(proc)
    }

    async fn wait_ready(&mut self, server: SocketAddr, timeout: Duration) -> Result<(), RunError> {
        let url = format!("http://{server}/-/ready");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| RunError::Collector(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(RunError::Collector(format!(
                    "the collector process exited ({status}) before it was ready; its output:\n{}",
                    self.log_tail()
                )));
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RunError::Collector(format!(
                    "the collector process was not ready at {url} within {timeout:?}; its output:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines the process printed.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM (the collector drains and saves positions), then a kill after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            // `kill` keeps this crate free of unsafe code and of a libc dependency.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) if !status.success() => {
                tracing::warn!(%status, output = %self.log_tail(), "collector process exited with an error");
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "collector process did not stop after SIGTERM; killing it"
                );
                let _ = self.child.kill().await;
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "collector folder left behind");
        }
    }
}
