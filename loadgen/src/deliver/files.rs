//! Logs by files: one file per device, `<dir>/<device id>.log`, lines appended as the schedule
//! fires, rotated by rename once a file would pass `max_bytes` (`x.log` → `x.log.1`, `.2`, ...,
//! never overwritten, so the tailer can always finish a rotated file).
//!
//! How every stream gets the device's labels: each line in a file is the device's label values,
//! tab-separated in [`crate::fleet::Device::labels`] order, then a tab and the log line as a push
//! would send it (canary token included). The collector's `file` source tails `<dir>/*.log` from
//! the beginning and a process component takes the labels back out: `logs.regex` (one named
//! capture per label, plus the line), `logs.labels` (captures to labels) and `logs.output` (the
//! line alone again). Streams also carry the `file` source's `filename` label. Timestamps are
//! the collector's read time.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{DeliverError, io_err};
use crate::generate::LogEntry;
use crate::run::collector::{Process, Source, Stage};

/// Rotation size of [`FileSink`]s built by the run.
pub const DEFAULT_ROTATE_BYTES: u64 = 4 << 20;

/// The capture holding the log line.
const LINE_FIELD: &str = "loadgen_line";

struct OpenFile {
    file: File,
    path: PathBuf,
    written: u64,
    rotations: u64,
}

/// Per-device log files in one folder.
pub struct FileSink {
    dir: PathBuf,
    labels: Vec<String>,
    max_bytes: u64,
    open: HashMap<usize, OpenFile>,
}

/// A label value or line as one tab-free, newline-free field.
fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\t', '\n', '\r']) {
        s.replace(['\t', '\n', '\r'], " ").into()
    } else {
        s.into()
    }
}

impl FileSink {
    /// Files in `dir` (created), lines prefixed by the values of the label names `labels`.
    pub fn new(dir: &Path, labels: Vec<String>, max_bytes: u64) -> Result<FileSink, DeliverError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        Ok(FileSink {
            dir: dir.to_path_buf(),
            labels,
            max_bytes: max_bytes.max(1),
            open: HashMap::new(),
        })
    }

    /// The glob of every live file.
    pub fn glob(&self) -> PathBuf {
        self.dir.join("*.log")
    }

    /// The line as written: label values, then the line, tab-separated, newline-terminated.
    fn encode(&self, entry: &LogEntry) -> Result<String, DeliverError> {
        let names_match = entry.labels.len() == self.labels.len()
            && entry
                .labels
                .iter()
                .zip(&self.labels)
                .all(|((k, _), n)| k == n);
        if !names_match {
            return Err(DeliverError::Labels {
                got: entry.labels.iter().map(|(k, _)| k.clone()).collect(),
                want: self.labels.clone(),
            });
        }
        let mut out = String::with_capacity(entry.line.len() + 128);
        for (_, v) in &entry.labels {
            out.push_str(&field(v));
            out.push('\t');
        }
        out.push_str(&field(&entry.line));
        out.push('\n');
        Ok(out)
    }

    /// Appends `entry` to the file of device `index` (id `id`), rotating it first if the line
    /// would take it past the size limit.
    pub fn append(&mut self, index: usize, id: &str, entry: &LogEntry) -> Result<(), DeliverError> {
        let line = self.encode(entry)?;
        let len = line.len() as u64;
        let f = match self.open.entry(index) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let path = self.dir.join(format!("{id}.log"));
                let file = open_append(&path)?;
                let written = file.metadata().map(|m| m.len()).unwrap_or(0);
                v.insert(OpenFile {
                    file,
                    path,
                    written,
                    rotations: 0,
                })
            }
        };
        if f.written > 0 && f.written + len > self.max_bytes {
            f.rotations += 1;
            let rotated = PathBuf::from(format!("{}.{}", f.path.display(), f.rotations));
            std::fs::rename(&f.path, &rotated).map_err(io_err(&rotated))?;
            f.file = open_append(&f.path)?;
            f.written = 0;
        }
        f.file.write_all(line.as_bytes()).map_err(io_err(&f.path))?;
        f.written += len;
        Ok(())
    }

    /// The collector components reading the files: a `file` source, and a process component
    /// fed by it restoring labels and line. Writers take the process component.
    pub fn components(&self, source: &str) -> (Source, Process) {
        let captures: String = self
            .labels
            .iter()
            .map(|n| format!("(?P<{n}>[^\\t]*)\\t"))
            .collect();
        let values = self
            .labels
            .iter()
            .map(|n| (n.clone(), String::new()))
            .collect();
        let file = Source::File {
            paths: vec![self.glob().display().to_string()],
            start_at: "beginning".into(),
            poll_interval: "100ms".into(),
        };
        let process = Process {
            inputs: vec![source.to_string()],
            stages: vec![
                Stage::Regex {
                    expression: format!("^{captures}(?P<{LINE_FIELD}>.*)$"),
                },
                Stage::Labels { values },
                Stage::Output {
                    source: LINE_FIELD.into(),
                },
            ],
        };
        (file, process)
    }
}

fn open_append(path: &Path) -> Result<File, DeliverError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(line: &str) -> LogEntry {
        LogEntry {
            labels: vec![
                ("device".into(), "pos-1".into()),
                ("region".into(), "eu\twest".into()),
            ],
            timestamp_ns: 1,
            line: line.into(),
        }
    }

    fn sink(dir: &Path, max: u64) -> FileSink {
        FileSink::new(dir, vec!["device".into(), "region".into()], max).unwrap()
    }

    #[test]
    fn lines_carry_the_label_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), 1 << 20);
        s.append(0, "pos-1", &entry("hello loadgen_canary=pos-1/1/5"))
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("pos-1.log")).unwrap();
        assert_eq!(text, "pos-1\teu west\thello loadgen_canary=pos-1/1/5\n");
        let other = LogEntry {
            labels: vec![("x".into(), "y".into())],
            ..entry("z")
        };
        assert!(matches!(
            s.append(0, "pos-1", &other),
            Err(DeliverError::Labels { .. })
        ));
    }

    #[test]
    fn rotation_renames_and_keeps_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), 100);
        let lines: Vec<String> = (0..20).map(|i| format!("line number {i:03}")).collect();
        for l in &lines {
            s.append(3, "pos-1", &entry(l)).unwrap();
        }
        let live = dir.path().join("pos-1.log");
        let mut all = Vec::new();
        let mut n = 1;
        loop {
            let p = PathBuf::from(format!("{}.{n}", live.display()));
            if !p.exists() {
                break;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.len() <= 100, "{p:?} is {} bytes", text.len());
            all.push(text);
            n += 1;
        }
        assert!(n > 2, "no rotation happened");
        all.push(std::fs::read_to_string(&live).unwrap());
        let got: Vec<String> = all
            .concat()
            .lines()
            .map(|l| l.rsplit('\t').next().unwrap().to_string())
            .collect();
        assert_eq!(got, lines);
    }

    #[test]
    fn collector_config_parses() {
        let dir = tempfile::tempdir().unwrap();
        let s = sink(dir.path(), 100);
        let (file, process) = s.components("f");
        let out = crate::run::collector::Writer {
            kind: "loki".into(),
            protocol: None,
            inputs: vec!["p".into()],
            url: "http://127.0.0.1:9/loki/api/v1/push".into(),
            batch_wait: "100ms".into(),
            tenant_id: None,
            basic_auth: None,
            bearer_token: None,
        };
        let cfg = crate::run::collector::CollectorFile {
            data_dir: dir.path().display().to_string(),
            server: crate::run::collector::Server {
                address: "127.0.0.1:0".into(),
            },
            sources: [("f".to_string(), file)].into(),
            process: [("p".to_string(), process)].into(),
            writers: [("out".to_string(), out)].into(),
            secrets: Vec::new(),
        };
        cfg.load().unwrap().build().unwrap();
    }
}
