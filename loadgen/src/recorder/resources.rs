//! CPU and memory of loadgen itself and of other processes (the collector, when loadgen spawned
//! it), read from procfs at an interval into [`ResourceSample`]s.
//!
//! CPU is `utime + stime` from `/proc/<pid>/stat`, in clock ticks of `USER_HZ`, which Linux fixes
//! at 100 for everything procfs reports (whatever the kernel's internal `HZ`); the change between
//! two samples divided by the wall time between them is cores busy. RSS is `VmRSS` from
//! `/proc/<pid>/status` (in kB, so no page size is needed).
//!
//! A watched process counts with its whole process tree: an agent may run workers or a shell
//! may start it, so CPU and RSS are summed over the pid and every descendant, found by the
//! parent pid (field 4) of each `/proc/<pid>/stat` (present on every kernel, unlike
//! `/proc/<pid>/task/<tid>/children`). A child that exits between two samples takes its CPU
//! time with it (its parent's `cutime` is not counted: it would count it twice while the
//! child lives), so the tree's CPU can only be read as the live processes' sum.

use std::time::{Duration, Instant};

use reports::results::ResourceSample;
use tokio::sync::oneshot;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// Why a process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not in the expected format")]
    Format { path: String },
}

/// One process being watched.
struct Watched {
    name: String,
    /// `None`: this process (`/proc/self`).
    pid: Option<u32>,
    /// CPU seconds and when they were read, at the previous sample.
    last: Option<(f64, Instant)>,
}

/// Samples the CPU and RSS of a set of processes.
pub struct ResourceSampler {
    start: Instant,
    watched: Vec<Watched>,
}

/// A sampler running in the background; [`SamplerHandle::stop`] returns what it collected.
pub struct SamplerHandle {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<ResourceSample>>,
}

impl ResourceSampler {
    /// Watches this process as `"loadgen"`; times are seconds since `start`.
    pub fn new(start: Instant) -> ResourceSampler {
        ResourceSampler {
            start,
            watched: vec![Watched {
                name: "loadgen".into(),
                pid: None,
                last: None,
            }],
        }
    }

    /// Also watches process `pid` as `name` (e.g. `"collector"`).
    pub fn watch(mut self, name: &str, pid: u32) -> ResourceSampler {
        self.watched.push(Watched {
            name: name.into(),
            pid: Some(pid),
            last: None,
        });
        self
    }

    /// One reading of every watched process. The first reading of a process has no previous
    /// one, so its CPU is averaged since `start`. A process that cannot be read (it exited) is
    /// left out of this sample and logged.
    pub fn sample(&mut self) -> Vec<ResourceSample> {
        let t_s = self.start.elapsed().as_secs_f64();
        let start = self.start;
        self.watched
            .iter_mut()
            .filter_map(|w| match read(w.pid) {
                Ok((cpu_s, rss_bytes)) => {
                    let now = Instant::now();
                    let (prev_cpu, prev_at) = w.last.unwrap_or((0.0, start));
                    let wall = now.duration_since(prev_at).as_secs_f64();
                    w.last = Some((cpu_s, now));
                    Some(ResourceSample {
                        t_s,
                        process: w.name.clone(),
                        cpu_cores: if wall > 0.0 {
                            (cpu_s - prev_cpu).max(0.0) / wall
                        } else {
                            0.0
                        },
                        rss_bytes,
                    })
                }
                Err(e) => {
                    tracing::debug!(process = %w.name, error = %e, "resource sample skipped");
                    None
                }
            })
            .collect()
    }

    /// Reads every watched process's CPU time now without recording a sample, so the first
    /// sample measures only the interval after this: otherwise it averages all the CPU the
    /// process used before (a capacity search's later stages showed loadgen at 50+ cores).
    fn prime(&mut self) {
        for w in &mut self.watched {
            if let Ok((cpu_s, _)) = read(w.pid) {
                w.last = Some((cpu_s, Instant::now()));
            }
        }
    }

    /// Samples every `every` in a tokio task until stopped (each first sample covering only
    /// its interval: see `prime`).
    pub fn spawn(mut self, every: Duration) -> SamplerHandle {
        self.prime();
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate
            loop {
                tokio::select! {
                    _ = tick.tick() => out.extend(self.sample()),
                    _ = &mut stopped => break,
                }
            }
            out.extend(self.sample());
            out
        });
        SamplerHandle { stop, task }
    }
}

impl SamplerHandle {
    /// Stops sampling (taking one last sample) and returns every sample in time order.
    pub async fn stop(self) -> Vec<ResourceSample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// (CPU seconds used, RSS bytes) of `pid` and its descendants, or of this process (loadgen's
/// own children, if any, are not its cost).
fn read(pid: Option<u32>) -> Result<(f64, u64), ResourceError> {
    let Some(root) = pid else {
        return read_one(None);
    };
    let (mut cpu, mut rss) = read_one(Some(root))?;
    for child in descendants(root) {
        // A descendant that exited since the scan is simply not there any more.
        if let Ok((c, r)) = read_one(Some(child)) {
            cpu += c;
            rss += r;
        }
    }
    Ok((cpu, rss))
}

/// Every descendant of `root` (children, their children, ...), from the parent pids in
/// `/proc/*/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_ppid(&stat)?))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, _) in parents.iter().filter(|(_, parent)| *parent == p) {
            if !out.contains(&child) && child != root {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// The parent pid (field 4) of a `/proc/<pid>/stat` line.
fn parse_ppid(stat: &str) -> Option<u32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(4 - 3)?
        .parse()
        .ok()
}

/// (CPU seconds used, RSS bytes) of one process.
fn read_one(pid: Option<u32>) -> Result<(f64, u64), ResourceError> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let stat_path = format!("{dir}/stat");
    let ticks = parse_cpu_ticks(&read_file(&stat_path)?)
        .ok_or(ResourceError::Format { path: stat_path })?;
    let status_path = format!("{dir}/status");
    let rss = parse_rss_bytes(&read_file(&status_path)?)
        .ok_or(ResourceError::Format { path: status_path })?;
    Ok((ticks as f64 / USER_HZ, rss))
}

fn read_file(path: &str) -> Result<String, ResourceError> {
    std::fs::read_to_string(path).map_err(|source| ResourceError::Read {
        path: path.to_string(),
        source,
    })
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces or parentheses, so fields are counted after the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes.
fn parse_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let stat = "1234 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 1000 10";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(
            parse_rss_bytes("Name:\tx\nVmRSS:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn samples_this_process_and_skips_a_missing_one() {
        let mut s = ResourceSampler::new(Instant::now()).watch("collector", u32::MAX);
        // Burn a little CPU so there is something to see.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let samples = s.sample();
        assert_eq!(samples.len(), 1, "the missing pid is skipped");
        assert_eq!(samples[0].process, "loadgen");
        assert!(samples[0].rss_bytes > 0);
        assert!(samples[0].cpu_cores >= 0.0);
        assert!(matches!(
            read(Some(u32::MAX)),
            Err(ResourceError::Read { .. })
        ));
    }

    #[test]
    fn a_process_counts_with_its_whole_tree() {
        assert_eq!(parse_ppid("7 (a) b) S 42 7 7 0"), Some(42));
        // A shell with a background child and a foreground one: three processes.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5"])
            .spawn()
            .unwrap();
        let pid = sh.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut kids = descendants(pid);
        while kids.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            kids = descendants(pid);
        }
        assert_eq!(kids.len(), 2, "sh's two sleeps: {kids:?}");
        let (_, tree_rss) = read(Some(pid)).unwrap();
        let (_, own_rss) = read_one(Some(pid)).unwrap();
        let kid_rss: u64 = kids.iter().map(|k| read_one(Some(*k)).unwrap().1).sum();
        assert!(kid_rss > 0);
        // Summed over the tree (a child may have exited in between: never more than the sum).
        assert!(tree_rss > own_rss, "{tree_rss} vs {own_rss}");
        assert!(
            tree_rss <= own_rss + kid_rss,
            "{tree_rss} vs {own_rss} + {kid_rss}"
        );
        for k in kids {
            let _ = std::process::Command::new("kill")
                .arg(k.to_string())
                .status();
        }
        let _ = sh.kill();
        let _ = sh.wait();
    }

    #[tokio::test]
    async fn background_sampler_collects_until_stopped() {
        let h = ResourceSampler::new(Instant::now()).spawn(Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(70)).await;
        let samples = h.stop().await;
        assert!(!samples.is_empty());
        assert!(samples.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    }
}
