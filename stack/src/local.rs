//! Debian's `prometheus` and `prometheus-node-exporter`, started on free 127.0.0.1 ports in a
//! temporary directory, waited for until ready, killed and reaped on drop.
//!
//! Tests use the skip rule here: [`prometheus_or_skip`] and [`node_exporter_or_skip`] return
//! `None` with a notice when the binary is not installed, unless `REQUIRE_LOCAL_SERVERS=1`, in
//! which case they panic, so CI never passes by skipping. A binary that is installed but fails to
//! start is always a failure.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use url::Url;

/// The environment variable that turns a skip into a failure.
pub const REQUIRE_ENV: &str = "REQUIRE_LOCAL_SERVERS";
/// The Prometheus server binary.
pub const PROMETHEUS_BINARY: &str = "prometheus";
/// The node exporter binary as Debian names it.
pub const NODE_EXPORTER_BINARY: &str = "prometheus-node-exporter";

/// Why a local server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{binary} is not installed (not on PATH, not in /usr/bin)")]
    NotInstalled { binary: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{binary} exited before it was ready ({status}); its log ends with:\n{log_tail}")]
    Exited {
        binary: String,
        status: String,
        log_tail: String,
    },
    #[error("{binary} was not ready at {url} within {waited:?}; its log ends with:\n{log_tail}")]
    NotReady {
        binary: String,
        url: String,
        waited: Duration,
        log_tail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let what = what.into();
    move |source| LocalError::Io { what, source }
}

/// Is `REQUIRE_LOCAL_SERVERS=1` set?
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Finds `binary` on `PATH`, then in `/usr/bin`.
pub fn find_binary(binary: &str) -> Result<PathBuf, LocalError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
        .ok_or_else(|| LocalError::NotInstalled {
            binary: binary.to_string(),
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> Result<u16, LocalError> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(io("binding a free port"))?;
    Ok(l.local_addr().map_err(io("reading a free port"))?.port())
}

/// `prometheus --version`'s version as (major, minor, patch).
pub fn prometheus_version() -> Result<(u32, u32, u32), LocalError> {
    let bin = find_binary(PROMETHEUS_BINARY)?;
    let out = Command::new(&bin)
        .arg("--version")
        .output()
        .map_err(io(format!("running {} --version", bin.display())))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_version(&text).ok_or_else(|| LocalError::Io {
        what: format!("reading the version in {text:?}"),
        source: std::io::Error::other("no version"),
    })
}

/// Finds `version X.Y.Z` in `prometheus --version` output.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = &text[text.find("version ")? + "version ".len()..];
    let ver: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = ver.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// A running child process with its log file; killed and reaped on drop.
struct Process {
    binary: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(binary: &str, args: &[String], dir: &Path) -> Result<Process, LocalError> {
        let bin = find_binary(binary)?;
        let log = dir.join(format!("{binary}.log"));
        let out = File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let err = out.try_clone().map_err(io("duplicating the log file"))?;
        let child = Command::new(&bin)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io(format!("starting {}", bin.display())))?;
        Ok(Process {
            binary: binary.to_string(),
            child,
            log,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `url` until it answers 200, the process exits, or `timeout` passes.
    async fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<(), LocalError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| LocalError::Io {
                what: "building an HTTP client".to_string(),
                source: std::io::Error::other(e),
            })?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LocalError::Exited {
                    binary: self.binary.clone(),
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(LocalError::NotReady {
                    binary: self.binary.clone(),
                    url: url.to_string(),
                    waited: timeout,
                    log_tail: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A static scrape job for the generated `prometheus.yml`.
#[derive(Clone, Debug)]
pub struct ScrapeJob {
    pub job_name: String,
    /// `host:port` targets.
    pub targets: Vec<String>,
    pub interval: Duration,
}

/// How to start a local Prometheus.
#[derive(Clone, Debug)]
pub struct PrometheusOptions {
    pub scrape_jobs: Vec<ScrapeJob>,
    /// How long to wait for `/-/ready`.
    pub ready_timeout: Duration,
    /// Extra command-line flags.
    pub extra_args: Vec<String>,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        PrometheusOptions {
            scrape_jobs: Vec::new(),
            ready_timeout: Duration::from_secs(30),
            extra_args: Vec::new(),
        }
    }
}

/// The `prometheus.yml` for `opts`.
pub fn prometheus_config(opts: &PrometheusOptions) -> String {
    let mut y = String::from("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n");
    if opts.scrape_jobs.is_empty() {
        y.push_str("scrape_configs: []\n");
        return y;
    }
    y.push_str("scrape_configs:\n");
    for j in &opts.scrape_jobs {
        let targets: Vec<String> = j.targets.iter().map(|t| format!("{t:?}")).collect();
        let _ = write!(
            y,
            "  - job_name: {:?}\n    scrape_interval: {}ms\n    static_configs:\n      - targets: [{}]\n",
            j.job_name,
            j.interval.as_millis().max(1),
            targets.join(", ")
        );
    }
    y
}

/// A Prometheus server of our own on a free port; stopped on drop.
pub struct LocalPrometheus {
    process: Process,
    port: u16,
    // Dropped after the process (fields drop in order), so the TSDB directory outlives it.
    _dir: tempfile::TempDir,
}

impl LocalPrometheus {
    /// Writes the config, starts `prometheus` and waits for `/-/ready`.
    pub async fn start(opts: PrometheusOptions) -> Result<LocalPrometheus, LocalError> {
        find_binary(PROMETHEUS_BINARY)?;
        let dir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, prometheus_config(&opts))
            .map_err(io(format!("writing {}", config.display())))?;
        let port = free_port()?;
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".to_string(),
            "--log.level=warn".to_string(),
            "--storage.tsdb.retention.time=1d".to_string(),
        ];
        args.extend(opts.extra_args.iter().cloned());
        let mut process = Process::spawn(PROMETHEUS_BINARY, &args, dir.path())?;
        process
            .wait_ready(
                &format!("http://127.0.0.1:{port}/-/ready"),
                opts.ready_timeout,
            )
            .await?;
        Ok(LocalPrometheus {
            process,
            port,
            _dir: dir,
        })
    }

    /// The server's base URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> Url {
        local_url(self.port, "/")
    }

    /// Where remote write goes: `/api/v1/write`.
    pub fn remote_write_url(&self) -> Url {
        local_url(self.port, "/api/v1/write")
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The end of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// A node exporter of our own on a free port; stopped on drop.
pub struct NodeExporter {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NodeExporter {
    /// Starts `prometheus-node-exporter` and waits until `/metrics` answers.
    pub async fn start() -> Result<NodeExporter, LocalError> {
        find_binary(NODE_EXPORTER_BINARY)?;
        let dir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
        let port = free_port()?;
        let args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_string(),
        ];
        let mut process = Process::spawn(NODE_EXPORTER_BINARY, &args, dir.path())?;
        process
            .wait_ready(
                &format!("http://127.0.0.1:{port}/metrics"),
                Duration::from_secs(30),
            )
            .await?;
        Ok(NodeExporter {
            process,
            port,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> Url {
        local_url(self.port, "/metrics")
    }

    /// `127.0.0.1:PORT`, as a scrape target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The end of the exporter's log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

fn local_url(port: u16, path: &str) -> Url {
    Url::parse(&format!("http://127.0.0.1:{port}{path}"))
        .unwrap_or_else(|_| panic!("a 127.0.0.1 URL with a port always parses"))
}

/// Applies the skip rule to a start result.
fn or_skip<T>(test: &str, r: Result<T, LocalError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(LocalError::NotInstalled { binary }) if !required() => {
            eprintln!(
                "SKIPPED {test}: {binary} is not installed (set {REQUIRE_ENV}=1 to fail instead)"
            );
            None
        }
        Err(e @ LocalError::NotInstalled { .. }) => {
            panic!("{test}: {e}, and {REQUIRE_ENV}=1 forbids skipping")
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// A local Prometheus with `opts`, or `None` (with a notice) when it is not installed and
/// skipping is allowed.
pub async fn prometheus_with_or_skip(
    test: &str,
    opts: PrometheusOptions,
) -> Option<LocalPrometheus> {
    or_skip(test, LocalPrometheus::start(opts).await)
}

/// A local Prometheus with default options, or `None` per the skip rule.
pub async fn prometheus_or_skip(test: &str) -> Option<LocalPrometheus> {
    prometheus_with_or_skip(test, PrometheusOptions::default()).await
}

/// A local node exporter, or `None` per the skip rule.
pub async fn node_exporter_or_skip(test: &str) -> Option<NodeExporter> {
    or_skip(test, NodeExporter::start().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("prometheus, version 2.42.0+ds (branch: debian/sid)"),
            Some((2, 42, 0))
        );
        assert_eq!(
            parse_version("prometheus, version 3.1.0 (branch"),
            Some((3, 1, 0))
        );
        assert_eq!(parse_version("nothing"), None);
    }

    #[test]
    fn config_yaml() {
        let y = prometheus_config(&PrometheusOptions {
            scrape_jobs: vec![ScrapeJob {
                job_name: "node".into(),
                targets: vec!["127.0.0.1:9100".into()],
                interval: Duration::from_secs(1),
            }],
            ..Default::default()
        });
        assert!(y.contains("job_name: \"node\""));
        assert!(y.contains("targets: [\"127.0.0.1:9100\"]"));
        assert!(prometheus_config(&PrometheusOptions::default()).contains("scrape_configs: []"));
    }

    #[test]
    fn missing_binary_is_not_installed() {
        assert!(matches!(
            find_binary("surely-not-a-binary-xyz"),
            Err(LocalError::NotInstalled { .. })
        ));
    }
}
