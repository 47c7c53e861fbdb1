//! What the tailing sources (`file`, `docker`) share: the positions file (where each source
//! got to, so a restart neither repeats nor skips lines), UTF-8 decoding that replaces invalid
//! bytes and counts them, and the shutdown helpers.
//!
//! A positions file is JSON, written atomically: to a temporary file in the same directory,
//! fsynced, renamed over the old one, and the directory fsynced, so a crash leaves either the
//! old or the new content, never a torn file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::selfmon::{ComponentMetrics, Counter};
pub use wire::time::now_ns;

/// A positions file could not be read or written (the cause in the message, not also a
/// `source()`: printed once).
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("cannot read positions file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("positions file {path} is not valid: {error}")]
    Parse {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("cannot write positions file {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot encode positions: {0}")]
    Encode(serde_json::Error),
}

impl From<serde_json::Error> for PositionsError {
    fn from(e: serde_json::Error) -> Self {
        PositionsError::Encode(e)
    }
}

/// One source's positions file.
#[derive(Clone, Debug)]
pub struct PositionsFile {
    path: PathBuf,
}

impl PositionsFile {
    /// `configured`, or `<data_dir>/<name>.positions.json`.
    pub fn new(configured: Option<PathBuf>, data_dir: &Path, name: &str) -> Self {
        let path = configured.unwrap_or_else(|| data_dir.join(format!("{name}.positions.json")));
        PositionsFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state; a missing file is the default state.
    pub fn load<T: DeserializeOwned + Default>(&self) -> Result<T, PositionsError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| PositionsError::Parse {
                path: self.path.clone(),
                error: source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(source) => Err(PositionsError::Read {
                path: self.path.clone(),
                error: source,
            }),
        }
    }

    /// Like [`load`](Self::load), but a file that cannot be used is logged and replaced by the
    /// default state (the source then starts as on its first run, as Alloy does by default).
    pub fn load_or_default<T: DeserializeOwned + Default>(&self, component: &str) -> T {
        self.load().unwrap_or_else(|e| {
            tracing::warn!(component, error = %e, "ignoring the positions file");
            T::default()
        })
    }

    /// Writes `state` atomically (temp file + fsync + rename + directory fsync).
    pub fn save<T: Serialize>(&self, state: &T) -> Result<(), PositionsError> {
        let bytes = serde_json::to_vec_pretty(state)?;
        let write_err = |source| PositionsError::Write {
            path: self.path.clone(),
            error: source,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(write_err)?;
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        {
            let mut f = std::fs::File::create(&tmp).map_err(write_err)?;
            f.write_all(&bytes).map_err(write_err)?;
            f.sync_all().map_err(write_err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(write_err)?;
        // Make the rename itself durable; not every platform can open a directory, so this is
        // best effort.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// [`save`](Self::save) off the async threads, logging a failure (the next save retries).
    /// Returns whether it was saved.
    pub async fn save_logged<T: Serialize + Send + 'static>(
        &self,
        state: T,
        component: &str,
    ) -> bool {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || this.save(&state)).await;
        match result {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(component, error = %e, "cannot save positions");
                false
            }
            Err(e) => {
                tracing::warn!(component, error = %e, "cannot save positions");
                false
            }
        }
    }
}

/// Saves a source's positions every `period` (when they changed) and when asked to.
pub struct Saver<T> {
    file: PositionsFile,
    component: String,
    period: Duration,
    last_at: Instant,
    last: Option<T>,
}

impl<T: Serialize + PartialEq + Clone + Send + 'static> Saver<T> {
    pub fn new(file: PositionsFile, component: &str, period: Duration) -> Self {
        Saver {
            file,
            component: component.to_string(),
            period,
            last_at: Instant::now(),
            last: None,
        }
    }

    /// Saves `state()` if `period` has passed since the last save.
    pub async fn tick(&mut self, state: impl FnOnce() -> T) {
        if self.last_at.elapsed() >= self.period {
            self.save(state()).await;
        }
    }

    /// Saves `state` now, unless it is what was saved last (as on shutdown).
    pub async fn save(&mut self, state: T) {
        self.last_at = Instant::now();
        if self.last.as_ref() == Some(&state) {
            return;
        }
        if self.file.save_logged(state.clone(), &self.component).await {
            self.last = Some(state);
        }
    }
}

/// Decodes a line as UTF-8, replacing invalid bytes with U+FFFD and counting such lines.
pub struct Utf8Decoder {
    invalid: Counter,
}

impl Utf8Decoder {
    pub fn new(metrics: &ComponentMetrics) -> Self {
        let invalid = metrics.registry().counter(
            "collector_invalid_utf8_lines_total",
            "Lines a tailing source read with invalid UTF-8 (invalid bytes replaced by U+FFFD).",
            &[("component", metrics.component()), ("kind", "source")],
        );
        Utf8Decoder { invalid }
    }

    pub fn decode(&self, bytes: &[u8]) -> String {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                self.invalid.inc();
                String::from_utf8_lossy(bytes).into_owned()
            }
        }
    }
}

/// Has the collector asked to stop? (A dropped sender counts as yes.)
pub fn is_shutdown(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow() || rx.has_changed().is_err()
}

/// Waits until the collector asks to stop.
pub async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    // `wait_for` returns an error when the sender is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Runs `fut` unless the collector asks to stop first (then `None`).
pub async fn until_shutdown<T>(
    rx: &mut watch::Receiver<bool>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        _ = wait_shutdown(rx) => None,
        v = fut => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn positions_file_save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = PositionsFile::new(None, dir.path(), "tail");
        assert_eq!(p.path(), dir.path().join("tail.positions.json"));
        let empty: BTreeMap<String, u64> = p.load().unwrap();
        assert!(empty.is_empty());
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), 7u64);
        p.save(&m).unwrap();
        let back: BTreeMap<String, u64> = p.load().unwrap();
        assert_eq!(back, m);
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("tail.positions.json")]);
        std::fs::write(p.path(), b"{not json").unwrap();
        assert!(matches!(
            p.load::<BTreeMap<String, u64>>(),
            Err(PositionsError::Parse { .. })
        ));
    }
}
