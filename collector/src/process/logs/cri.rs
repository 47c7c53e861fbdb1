//! `logs.cri`: reads CRI-O/containerd log lines, `<RFC3339Nano time> <stdout|stderr> <flags>
//! <content>`, and joins partial lines, as Alloy's `stage.cri`.
//!
//! ```toml
//! type = "logs.cri"
//! max_partial_lines = 100                  # streams with a partial line held at once
//! max_partial_line_size = 262144           # bytes a joined line may reach; 0 = no limit
//! max_partial_line_size_truncate = false   # cut at the limit instead of emitting a piece
//! ```
//!
//! The line becomes `content`, the time that of `time`, `stream` a label; the extracted fields
//! are `content`, `stream`, `flags` and `timestamp` (Alloy's names). A `P` (partial) line is held
//! per label set until the `F` line that ends it arrives, possibly in a later batch, and the `F`
//! entry then carries the joined line. Memory stays bounded: when `max_partial_lines` streams
//! are held and another starts, all held lines are emitted as they are (as Alloy does); and a
//! joined line never grows past `max_partial_line_size`: what is held is emitted and a new one
//! starts, or with `max_partial_line_size_truncate` the rest is cut. Alloy's default for the
//! size is 0 (no limit); ours is 256 KiB so that a stream of `P` lines cannot grow without
//! bound.
//!
//! Entries merged into another are counted with [`Drops`] under `cri_partial_joined`, so that
//! entries in = entries out + counted; they are not lost. Lines held when the collector stops are
//! lost, as in Alloy. A line that is not CRI is left as it is and counted.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::Deserialize;

use super::timestamp::parse_rfc3339;
use super::{ParseFailures, invalid};
use crate::event::{LabelCache, LogBatch, LogRecord, SharedLabels};
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

/// The reason entries merged into a joined line are counted under.
pub const JOINED_REASON: &str = "cri_partial_joined";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_max_partial_lines")]
    max_partial_lines: usize,
    #[serde(default = "default_max_partial_line_size")]
    max_partial_line_size: usize,
    #[serde(default)]
    max_partial_line_size_truncate: bool,
}

fn default_max_partial_lines() -> usize {
    100
}

fn default_max_partial_line_size() -> usize {
    256 * 1024
}

/// A partial line being joined.
struct Pending {
    /// The first piece's entry, its line the content so far.
    record: LogRecord,
    /// Entries it holds.
    pieces: u64,
}

/// The `logs.cri` stage.
pub struct Cri {
    max_partial_lines: usize,
    max_size: Option<usize>,
    truncate: bool,
    pending: Mutex<HashMap<SharedLabels, Pending>>,
    failures: ParseFailures,
}

/// The parts of a CRI line.
struct CriLine<'a> {
    time: &'a str,
    stream: &'a str,
    flags: &'a str,
    content: &'a str,
}

fn parse(line: &str) -> Option<CriLine<'_>> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    let (flags, content) = rest.split_once(' ').unwrap_or((rest, ""));
    let ok = !time.is_empty()
        && (stream == "stdout" || stream == "stderr")
        && !flags.is_empty()
        && !flags.contains(char::is_whitespace);
    ok.then_some(CriLine {
        time,
        stream,
        flags,
        content,
    })
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let cut = s.floor_char_boundary(max);
        s.truncate(cut);
    }
}

impl Cri {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        if c.max_partial_lines == 0 {
            return Err(invalid("max_partial_lines", "must be at least 1"));
        }
        if c.max_partial_line_size_truncate && c.max_partial_line_size == 0 {
            return Err(invalid(
                "max_partial_line_size",
                "must be set (> 0) when max_partial_line_size_truncate is true",
            ));
        }
        Ok(Cri {
            max_partial_lines: c.max_partial_lines,
            max_size: (c.max_partial_line_size > 0).then_some(c.max_partial_line_size),
            truncate: c.max_partial_line_size_truncate,
            pending: Mutex::new(HashMap::new()),
            failures: ParseFailures::default(),
        })
    }

    /// Lines that were not CRI so far.
    pub fn failures(&self) -> u64 {
        self.failures.count()
    }

    /// Streams with a partial line held.
    pub fn held(&self) -> usize {
        self.pending.lock().len()
    }

    /// Reads the CRI parts into `record`; `None` when it is not CRI. Returns whether it is partial.
    fn read(&self, record: &mut LogRecord, cache: &mut LabelCache) -> Option<bool> {
        let p = parse(&record.line)?;
        let partial = p.flags.split(':').next() == Some("P");
        if let Some(ns) = parse_rfc3339(p.time) {
            record.timestamp_ns = ns;
        }
        let (time, stream, flags) = (
            p.time.to_string(),
            p.stream.to_string(),
            p.flags.to_string(),
        );
        let mut content = p.content.to_string();
        if self.truncate
            && let Some(max) = self.max_size
        {
            truncate(&mut content, max);
        }
        cache.set_label(&mut record.labels, "stream", &stream);
        record.fields.insert("stream".into(), stream);
        record.fields.insert("flags".into(), flags);
        record.fields.insert("timestamp".into(), time);
        record.fields.insert("content".into(), content.clone());
        record.line = content;
        Some(partial)
    }

    /// Whether `more` can join `held` within `max_partial_line_size`.
    fn fits(&self, held: &str, more: &str) -> bool {
        self.max_size
            .is_none_or(|max| held.len().saturating_add(more.len()) <= max)
    }

    /// A held line as an entry of its own.
    fn emit(p: Pending, out: &mut LogBatch, joined: &mut u64) {
        *joined += p.pieces.saturating_sub(1);
        let mut record = p.record;
        record.fields.insert("content".into(), record.line.clone());
        out.push(record);
    }
}

impl Stage<LogBatch> for Cri {
    fn process(&self, batch: &mut LogBatch, drops: &mut Drops) {
        let mut pending = self.pending.lock();
        let mut out = Vec::with_capacity(batch.len());
        let mut joined = 0u64;
        let mut cache = LabelCache::default();
        for mut record in batch.drain(..) {
            let Some(partial) = self.read(&mut record, &mut cache) else {
                self.failures.record("logs.cri", &record);
                out.push(record);
                continue;
            };
            let key = record.labels.clone();
            if partial {
                if !pending.contains_key(&key) && pending.len() >= self.max_partial_lines {
                    for (_, p) in pending.drain() {
                        Self::emit(p, &mut out, &mut joined);
                    }
                }
                match pending.get_mut(&key) {
                    None => {
                        pending.insert(key, Pending { record, pieces: 1 });
                    }
                    Some(p) => {
                        if self.fits(&p.record.line, &record.line) {
                            p.record.line.push_str(&record.line);
                            p.pieces += 1;
                        } else if self.truncate {
                            p.record.line.push_str(&record.line);
                            truncate(&mut p.record.line, self.max_size.unwrap_or(usize::MAX));
                            p.pieces += 1;
                        } else {
                            let full = std::mem::replace(p, Pending { record, pieces: 1 });
                            Self::emit(full, &mut out, &mut joined);
                        }
                    }
                }
                continue;
            }
            if let Some(p) = pending.remove(&key) {
                if self.truncate || self.fits(&p.record.line, &record.line) {
                    let mut line = p.record.line;
                    line.push_str(&record.line);
                    if let Some(max) = self.max_size {
                        truncate(&mut line, max);
                    }
                    joined += p.pieces;
                    record.fields.insert("content".into(), line.clone());
                    record.line = line;
                } else {
                    Self::emit(p, &mut out, &mut joined);
                }
            }
            out.push(record);
        }
        *batch = out;
        drops.add(JOINED_REASON, joined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    fn run(stage: &Cri, lines: &[&str]) -> (LogBatch, Drops) {
        let mut batch: LogBatch = lines.iter().map(|l| record(l)).collect();
        let mut drops = Drops::default();
        stage.process(&mut batch, &mut drops);
        (batch, drops)
    }

    #[test]
    fn parses_full_lines() {
        let stage = Cri::build(table("")).unwrap();
        let (batch, drops) = run(
            &stage,
            &[
                "2019-04-30T02:12:41.8443515Z stdout F message",
                "2024-03-05T10:20:30.000000001Z stderr F level=error msg=\"disk full\"",
                "2024-03-05T10:20:30Z stdout F ",
                "not cri at all",
            ],
        );
        assert!(drops.0.is_empty());
        assert_eq!(batch[0].line, "message");
        assert_eq!(batch[0].timestamp_ns, 1_556_590_361_844_351_500);
        assert_eq!(batch[0].labels.get("stream"), Some("stdout"));
        assert_eq!(batch[0].fields["flags"], "F");
        assert_eq!(batch[0].fields["content"], "message");
        assert_eq!(batch[1].line, "level=error msg=\"disk full\"");
        assert_eq!(batch[1].labels.get("stream"), Some("stderr"));
        assert_eq!(batch[2].line, "");
        assert_eq!(batch[3].line, "not cri at all");
        assert!(batch[3].fields.is_empty());
        assert_eq!(stage.failures(), 1);
    }

    #[test]
    fn joins_partial_lines_per_stream_across_batches() {
        let stage = Cri::build(table("")).unwrap();
        let (batch, drops) = run(
            &stage,
            &[
                "2024-03-05T10:20:30.1Z stdout P {\"msg\":\"a long ",
                "2024-03-05T10:20:30.1Z stderr F err line",
                "2024-03-05T10:20:30.2Z stdout P json ",
            ],
        );
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].line, "err line");
        assert_eq!(stage.held(), 1);
        assert!(drops.0.is_empty(), "held, not merged yet");
        let (batch, drops) = run(&stage, &["2024-03-05T10:20:30.3Z stdout F line\"}"]);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].line, "{\"msg\":\"a long json line\"}");
        assert_eq!(batch[0].fields["content"], batch[0].line);
        assert_eq!(
            batch[0].timestamp_ns,
            parse_rfc3339("2024-03-05T10:20:30.3Z").unwrap()
        );
        assert_eq!(
            drops.0[JOINED_REASON], 2,
            "two P entries merged into the F one"
        );
        assert_eq!(stage.held(), 0);
    }

    #[test]
    fn partial_lines_stay_bounded() {
        // Too many streams held: all held lines are emitted as they are.
        let stage = Cri::build(table("max_partial_lines = 2")).unwrap();
        let mut lines = Vec::new();
        for i in 0..3 {
            lines.push(format!("2024-03-05T10:20:30Z stdout P piece{i}"));
        }
        let mut batch: LogBatch = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut r = record(l);
                r.labels.insert("pod", format!("p{i}"));
                r
            })
            .collect();
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch.len(), 2);
        assert_eq!(stage.held(), 1);

        // A joined line that would pass the size is emitted and a new one starts.
        let stage = Cri::build(table("max_partial_line_size = 8")).unwrap();
        let (batch, drops) = run(
            &stage,
            &[
                "2024-03-05T10:20:30Z stdout P abcde",
                "2024-03-05T10:20:30Z stdout P fghij",
                "2024-03-05T10:20:30Z stdout F k",
            ],
        );
        assert_eq!(
            batch.iter().map(|r| r.line.as_str()).collect::<Vec<_>>(),
            vec!["abcde", "fghijk"]
        );
        assert_eq!(drops.0[JOINED_REASON], 1);

        // Or, with truncate, the rest is cut.
        let stage = Cri::build(table(
            "max_partial_line_size = 8\nmax_partial_line_size_truncate = true",
        ))
        .unwrap();
        let (batch, drops) = run(
            &stage,
            &[
                "2024-03-05T10:20:30Z stdout P abcdeéé",
                "2024-03-05T10:20:30Z stdout P fghij",
                "2024-03-05T10:20:30Z stdout F k",
            ],
        );
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch[0].line, "abcdeéf",
            "cut at 8 bytes, on a char boundary"
        );
        assert_eq!(drops.0[JOINED_REASON], 2);
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (src, key) in [
            ("max_partial_lines = 0", "max_partial_lines"),
            (
                "max_partial_line_size = 0\nmax_partial_line_size_truncate = true",
                "max_partial_line_size",
            ),
        ] {
            assert_eq!(invalid_key(Cri::build(table(src))), key, "{src}");
        }
    }
}
