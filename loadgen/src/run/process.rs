//! An agent as a child process (`--collector-cmd`, `--agent`): our collector with the typed
//! config ([`CollectorProcess::spawn`]) or any agent from a template ([`Launch`], rendered by
//! [`super::agent`]). loadgen chooses free ports, starts it with its output in log files, waits
//! until it is ready (an HTTP path, or its receivers accepting connections), and at the end
//! stops it with SIGTERM (it drains its queues) and, if it does not exit in time, kills it. A
//! process that dies or never gets ready is an error naming the agent, its exit status and the
//! end of its stderr. Its pid is handed to the [`crate::recorder::ResourceSampler`], which sums
//! its whole process tree, so the run reports the agent's CPU and RSS apart from loadgen's.

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

/// How loadgen knows a spawned process is ready.
#[derive(Clone, Debug)]
pub enum Ready {
    /// This URL answers 2xx.
    Http(String),
    /// Every one of these addresses accepts TCP connections.
    Listening(Vec<SocketAddr>),
}

/// What to start: an agent's program, arguments and environment, the folder its output goes to.
#[derive(Clone, Debug)]
pub struct Launch {
    /// How errors and logs name it (`collector`, `alloy`, `prometheus-agent`, ...).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Its stdout and stderr go to `<name>.stdout.log` and `<name>.stderr.log` here.
    pub dir: PathBuf,
    pub ready: Ready,
    /// Remove `dir` when it stops (a temporary folder); otherwise only `remove_on_stop`.
    pub remove_dir: bool,
    /// Removed when it stops (its data folder inside the run folder).
    pub remove_on_stop: Option<PathBuf>,
}

/// A running agent process (our collector or any other).
pub struct CollectorProcess {
    child: tokio::process::Child,
    launch: Launch,
}

fn agent_err(name: &str, message: String) -> RunError {
    RunError::Agent {
        agent: name.to_string(),
        message,
    }
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
            return Err(agent_err(
                "collector",
                format!(
                    "collector binary {} not found: build it (`cargo build --release -p collector`) \
                     or give its path, --collector-cmd PATH",
                    program.display()
                ),
            ));
        }
        std::fs::create_dir_all(dir).map_err(super::config::io_err(dir))?;
        let config_path = dir.join("collector.toml");
        std::fs::write(&config_path, config.to_toml()?)
            .map_err(super::config::io_err(&config_path))?;
        let launch = Launch {
            name: "collector".into(),
            program: program.to_path_buf(),
            args: vec![
                "run".into(),
                "--config".into(),
                config_path.display().to_string(),
            ],
            env: config.secrets.clone(),
            dir: dir.to_path_buf(),
            ready: Ready::Http(format!("http://{server}/-/ready")),
            remove_dir: true,
            remove_on_stop: None,
        };
        CollectorProcess::start(launch, timeout).await
    }

    /// Starts `launch` and waits until it is ready (at most `timeout`). A process that exits
    /// first, or is not ready in time, is an error naming the agent, its exit status and the end
    /// of its stderr.
    pub async fn start(launch: Launch, timeout: Duration) -> Result<CollectorProcess, RunError> {
        let name = launch.name.clone();
        std::fs::create_dir_all(&launch.dir).map_err(super::config::io_err(&launch.dir))?;
        let file = |suffix: &str| -> Result<std::fs::File, RunError> {
            let path = launch.dir.join(format!("{name}.{suffix}.log"));
            std::fs::File::create(&path).map_err(super::config::io_err(&path))
        };
        let child = tokio::process::Command::new(&launch.program)
            .args(&launch.args)
            .env("RUST_LOG", "warn")
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file("stdout")?))
            .stderr(Stdio::from(file("stderr")?))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                agent_err(
                    &name,
                    format!(
                        "starting {}: {e} (is it installed, and on PATH?)",
                        launch.program.display()
                    ),
                )
            })?;
        let mut proc = CollectorProcess { child, launch };
        if let Err(e) = proc.wait_ready(timeout).await {
            let _ = proc.child.kill().await;
            return Err(e);
        }
        tracing::info!(agent = %name, program = %proc.launch.program.display(), pid = ?proc.pid(), "agent process ready");
        Ok(proc)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), RunError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| agent_err(&self.launch.name, e.to_string()))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(agent_err(
                    &self.launch.name,
                    format!(
                        "the process exited ({status}) before it was ready; {}",
                        self.output_tail()
                    ),
                ));
            }
            if self.is_ready(&client).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let what = match &self.launch.ready {
                    Ready::Http(url) => format!("{url} did not answer 2xx"),
                    Ready::Listening(addrs) => format!(
                        "its receivers ({}) did not all accept connections",
                        addrs
                            .iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(agent_err(
                    &self.launch.name,
                    format!(
                        "not ready within {timeout:?}: {what}; {}",
                        self.output_tail()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_ready(&self, client: &reqwest::Client) -> bool {
        match &self.launch.ready {
            Ready::Http(url) => client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            Ready::Listening(addrs) => {
                for a in addrs {
                    if tokio::net::TcpStream::connect(a).await.is_err() {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// The last lines of its stderr (or of its stdout, when stderr is empty), introduced, with
    /// the credentials of the URLs they quote masked.
    fn output_tail(&self) -> String {
        let tail = |suffix: &str| {
            let path = self
                .launch
                .dir
                .join(format!("{}.{suffix}.log", self.launch.name));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            // Quoted in errors and logs: an agent may print its URLs with their credentials.
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            (path, wire::redact::text(&tail).into_owned())
        };
        let (path, err) = tail("stderr");
        if !err.trim().is_empty() {
            return format!("its stderr ({}) ends with:\n{err}", path.display());
        }
        let (path, out) = tail("stdout");
        if !out.trim().is_empty() {
            return format!(
                "its stderr is empty; its stdout ({}) ends with:\n{out}",
                path.display()
            );
        }
        "it printed nothing".into()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM (the agent drains its queues), then a kill after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let name = self.launch.name.clone();
        if let Ok(Some(status)) = self.child.try_wait() {
            tracing::error!(agent = %name, %status, output = %self.output_tail(), "agent process had exited before the end of the run");
        } else if let Some(pid) = self.child.id() {
            // `kill` keeps this crate free of unsafe code and of a libc dependency.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            match tokio::time::timeout(grace, self.child.wait()).await {
                Ok(Ok(status)) if !status.success() => {
                    tracing::warn!(agent = %name, %status, output = %self.output_tail(), "agent process exited with an error");
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(agent = %name, ?grace, "agent process did not stop after SIGTERM; killing it");
                    let _ = self.child.kill().await;
                }
            }
        }
        let remove = if self.launch.remove_dir {
            Some(self.launch.dir.clone())
        } else {
            self.launch.remove_on_stop.clone()
        };
        if let Some(dir) = remove
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::debug!(dir = %dir.display(), error = %e, "agent folder left behind");
        }
    }
}
