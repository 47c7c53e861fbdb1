//! A file whose parsed contents are reloaded when it changes: certificates and keys, htpasswd
//! files, token files. Rotating a credential means writing the file (or renaming a new one over
//! it, as Kubernetes does with mounted secrets); no restart.
//!
//! The file is looked at on use, at most once per [`CHECK_EVERY`], and read again when its
//! modification time or length changed. A file that no longer parses keeps the last good
//! contents in use (a half-written file must not lock everyone out), logs a warning naming the
//! file and the reason, and counts in [`Watched::reload_failures`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

/// How often a watched file is looked at (a `stat`), at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why a watched file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl LoadError {
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        LoadError {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

type Parse<T> = dyn Fn(&[PathBuf]) -> Result<T, LoadError> + Send + Sync;

/// What a file was when it was last read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// The stamps of every file; a file that cannot be looked at has none (and counts as changed).
fn stamps(paths: &[PathBuf]) -> Vec<Option<Stamp>> {
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some(Stamp {
                modified: meta.modified().ok(),
                len: meta.len(),
            })
        })
        .collect()
}

struct State<T> {
    value: Arc<T>,
    stamps: Vec<Option<Stamp>>,
    checked: Instant,
}

/// The parsed contents of one or more files (a certificate and its key), reloaded when any of
/// them changes.
pub struct Watched<T> {
    paths: Vec<PathBuf>,
    parse: Box<Parse<T>>,
    state: Mutex<State<T>>,
    reload_failures: AtomicU64,
    reloads: AtomicU64,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("paths", &self.paths)
            .finish()
    }
}

/// Reads a file whole, the error naming it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| LoadError::new(path, e.to_string()))
}

impl<T> Watched<T> {
    /// Reads and parses `path` now: an error here is a configuration error.
    pub fn load(
        path: impl Into<PathBuf>,
        parse: impl Fn(&Path, &[u8]) -> Result<T, LoadError> + Send + Sync + 'static,
    ) -> Result<Self, LoadError> {
        Self::load_all(vec![path.into()], move |paths| {
            let path = &paths[0];
            parse(path, &read_file(path)?)
        })
    }

    /// Reads and parses several files together now (`parse` reads them): a change to any of
    /// them reloads all.
    pub fn load_all(
        paths: Vec<PathBuf>,
        parse: impl Fn(&[PathBuf]) -> Result<T, LoadError> + Send + Sync + 'static,
    ) -> Result<Self, LoadError> {
        let before = stamps(&paths);
        let value = parse(&paths)?;
        Ok(Watched {
            paths,
            parse: Box::new(parse),
            state: Mutex::new(State {
                value: Arc::new(value),
                stamps: before,
                checked: Instant::now(),
            }),
            reload_failures: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
        })
    }

    /// The files' paths.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The current contents, reloaded first if a file changed (looked at once per
    /// [`CHECK_EVERY`] at most).
    pub fn get(&self) -> Arc<T> {
        let mut state = self.state.lock();
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            self.refresh(&mut state);
        }
        state.value.clone()
    }

    /// Looks at the files now, whatever the time since the last look (tests, and a reload on
    /// demand).
    pub fn reload_now(&self) -> Arc<T> {
        let mut state = self.state.lock();
        state.checked = Instant::now();
        self.refresh(&mut state);
        state.value.clone()
    }

    /// How many times the files changed and their new contents were taken.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// How many times the files changed but could not be read or parsed (the last good
    /// contents stayed in use).
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    fn refresh(&self, state: &mut State<T>) {
        let now = stamps(&self.paths);
        if now == state.stamps {
            return;
        }
        // Not again until the files change once more (or come back).
        state.stamps = now;
        match (self.parse)(&self.paths) {
            Ok(value) => {
                state.value = Arc::new(value);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(files = ?self.paths, "reloaded");
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "keeping the previous contents");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path, b: &[u8]) -> Result<Vec<String>, LoadError> {
        let s = std::str::from_utf8(b).map_err(|e| LoadError::new(path, e.to_string()))?;
        if s.contains("bad") {
            return Err(LoadError::new(path, "line 1: bad"));
        }
        Ok(s.lines().map(str::to_string).collect())
    }

    #[test]
    fn takes_changes_and_keeps_the_last_good_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "a\n").unwrap();
        let w = Watched::load(&path, lines).unwrap();
        assert_eq!(*w.get(), vec!["a"]);
        std::fs::write(&path, "a\nbb\n").unwrap();
        assert_eq!(*w.reload_now(), vec!["a", "bb"]);
        assert_eq!(w.reloads(), 1);
        std::fs::write(&path, "bad bad\n").unwrap();
        assert_eq!(*w.reload_now(), vec!["a", "bb"]);
        assert_eq!(w.reload_failures(), 1);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(*w.reload_now(), vec!["a", "bb"]);
        std::fs::write(&path, "c\n").unwrap();
        assert_eq!(*w.reload_now(), vec!["c"]);
    }

    #[test]
    fn a_missing_or_bad_file_is_an_error_at_load_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let e = Watched::load(&path, lines).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::write(&path, "bad").unwrap();
        let e = Watched::load(&path, lines).unwrap_err();
        assert!(e.to_string().ends_with("line 1: bad"), "{e}");
    }
}
