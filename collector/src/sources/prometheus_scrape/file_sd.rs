//! Prometheus `file_sd_config`: files of target groups, `[{"targets": [...], "labels": {...}}]`
//! in JSON (`.json`) or YAML (`.yml`, `.yaml`). The last path component may hold `*` and `?`.
//!
//! [`FileSd::refresh`] (called every `refresh_interval`) lists the matching files and re-reads
//! those whose modification time or size changed; files that vanished take their targets with
//! them. A file that cannot be read or parsed keeps the targets it had (with a warning), as
//! Prometheus does. Every group gets `__meta_filepath`. The files are small and read on the
//! manager's task.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use super::FileSdConfig;
use super::targets::TargetGroup;

/// Why a file_sd file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// What was read of one file.
struct FileState {
    stamp: (Option<SystemTime>, u64),
    groups: Vec<TargetGroup>,
}

/// The state of one `file_sd` block.
pub struct FileSd {
    patterns: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileState>,
}

/// Checks patterns: wildcards only in the last component, a known extension.
pub fn check_patterns(files: &[String]) -> Result<(), String> {
    if files.is_empty() {
        return Err("give at least one file".to_string());
    }
    for f in files {
        let p = Path::new(f);
        let dir_has_glob = p
            .parent()
            .is_some_and(|d| d.to_string_lossy().contains(['*', '?']));
        if dir_has_glob {
            return Err(format!(
                "{f:?}: wildcards are allowed in the file name only"
            ));
        }
        let ext_ok = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yml" | "yaml"));
        if !ext_ok {
            return Err(format!(
                "{f:?}: the file name must end in .json, .yml or .yaml"
            ));
        }
    }
    Ok(())
}

impl FileSd {
    pub fn new(c: &FileSdConfig) -> FileSd {
        FileSd {
            patterns: c.files.iter().map(PathBuf::from).collect(),
            files: BTreeMap::new(),
        }
    }

    /// Every group of every file, in path order.
    pub fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.files.values().flat_map(|f| f.groups.iter())
    }

    /// Re-reads what changed; true when the groups changed.
    pub fn refresh(&mut self) -> bool {
        let current: Vec<PathBuf> = self.patterns.iter().flat_map(|p| expand(p)).collect();
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|p, _| current.contains(p));
        changed |= self.files.len() != before;
        for path in current {
            let stamp = match std::fs::metadata(&path) {
                Ok(m) => (m.modified().ok(), m.len()),
                Err(_) => continue, // vanished between listing and now: next round
            };
            if self.files.get(&path).is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            match read(&path) {
                Ok(groups) => {
                    let same = self.files.get(&path).is_some_and(|f| f.groups == groups);
                    changed |= !same;
                    self.files.insert(path, FileState { stamp, groups });
                }
                Err(e) => {
                    tracing::warn!("file_sd: {e}; keeping the targets it had");
                    if let Some(f) = self.files.get_mut(&path) {
                        f.stamp = stamp;
                    }
                }
            }
        }
        changed
    }
}

/// The files `pattern` names now (itself if it has no wildcard and exists).
fn expand(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = match pattern.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// `*` matches any run of characters, `?` any one character.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Reads one file into groups (with `__meta_filepath`).
fn read(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileSdError::Read {
        path: shown.clone(),
        error: source,
    })?;
    let parse_err = |reason: String| FileSdError::Parse {
        path: shown.clone(),
        reason,
    };
    let is_json = path.extension().is_some_and(|e| e == "json");
    let raw: Vec<RawGroup> = if text.trim().is_empty() {
        Vec::new()
    } else if is_json {
        serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()))?
    } else {
        serde_saphyr::from_str(&text).map_err(|e| parse_err(e.to_string()))?
    };
    raw.into_iter()
        .map(|g| {
            let mut labels = g.labels;
            labels.insert("__meta_filepath".to_string(), shown.clone());
            TargetGroup::new(g.targets, labels, shown.clone()).map_err(parse_err)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn globs() {
        assert!(glob_match("*.json", "a.json"));
        assert!(glob_match("t?.yml", "t1.yml"));
        assert!(glob_match("a*b*c", "aXXbYbc"));
        assert!(!glob_match("*.json", "a.yml"));
        assert!(!glob_match("t?.yml", "t12.yml"));
    }

    #[test]
    fn reads_json_and_yaml_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("a.json");
        let yaml = dir.path().join("b.yml");
        std::fs::write(
            &json,
            r#"[{"targets": ["h1:1", "h2:1"], "labels": {"env": "p"}}]"#,
        )
        .unwrap();
        std::fs::write(&yaml, "- targets: ['h3:1']\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "ignored").unwrap();
        let mut sd = FileSd::new(&FileSdConfig {
            files: vec![dir.path().join("*.*").display().to_string()],
            refresh_interval: Duration::from_secs(1),
        });
        // c.txt matches the glob but is not a target file: a warning, no targets.
        assert!(sd.refresh());
        let targets: Vec<&str> = sd
            .groups()
            .flat_map(|g| g.targets.iter().map(String::as_str))
            .collect();
        assert_eq!(targets, vec!["h1:1", "h2:1", "h3:1"]);
        let g = sd.groups().next().unwrap();
        assert_eq!(g.labels.get("env").map(String::as_str), Some("p"));
        assert_eq!(
            g.labels.get("__meta_filepath").map(String::as_str),
            Some(json.display().to_string().as_str())
        );
        assert!(!sd.refresh());
        std::fs::remove_file(&yaml).unwrap();
        assert!(sd.refresh());
        assert_eq!(sd.groups().count(), 1);
        // A broken file keeps what it had.
        std::fs::write(&json, "[{").unwrap();
        assert!(!sd.refresh());
        assert_eq!(sd.groups().count(), 1);
    }
}
