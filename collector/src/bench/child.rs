//! The collector under measurement: this same binary started as `collector run --config F` in
//! its own process, so its CPU and memory are its own and not the bench's (the corpus
//! generator, the pusher and the null backend stay in the parent). CPU is `utime + stime` from
//! `/proc/<pid>/stat` (clock ticks of `USER_HZ`, which Linux fixes at 100 for user space), peak
//! RSS is `VmHWM` from `/proc/<pid>/status`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::BenchError;

const USER_HZ: f64 = 100.0;

/// A running collector; killed when dropped.
pub struct Collector {
    child: Child,
}

impl Collector {
    /// Starts `exe run --config config`, its stderr into `log`.
    pub fn spawn(exe: &Path, config: &Path, log: &Path) -> Result<Collector, BenchError> {
        let log = std::fs::File::create(log).map_err(|e| BenchError::io(log, e))?;
        let child = Command::new(exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| BenchError::io(exe, e))?;
        Ok(Collector { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// CPU seconds (user + system) it has used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        cpu_of_stat(&stat)
    }

    /// Its peak resident set (`VmHWM`) so far, in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        kb_field(&status, "VmHWM:").map(|kb| kb * 1024)
    }

    /// Stops it with SIGTERM (a clean stop: it drains), then waits at most `grace`.
    pub fn stop(mut self, grace: Duration) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let until = std::time::Instant::now() + grace;
        while std::time::Instant::now() < until {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The fields are counted after the
/// command name's closing parenthesis, which may itself hold spaces and parentheses.
fn cpu_of_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state(3) ppid(4) ... utime(14) stime(15), so utime is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

fn kb_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_peak_rss_of_proc_files() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(cpu_of_stat(stat), Some(2.81));
        assert_eq!(cpu_of_stat("garbage"), None);
        let status = "Name:\tcollector\nVmHWM:\t   20480 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(kb_field(status, "VmHWM:"), Some(20480));
        // This test process's own files parse.
        let own = std::fs::read_to_string("/proc/self/stat").expect("stat");
        assert!(cpu_of_stat(&own).is_some());
    }
}
