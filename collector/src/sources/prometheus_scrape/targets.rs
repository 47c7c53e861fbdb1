//! From target groups to scrape targets, as Prometheus' `PopulateLabels` does:
//!
//! 1. the group's labels, then `__address__`;
//! 2. `job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__` and
//!    `__param_NAME` (first value of each param) where not already set;
//! 3. `relabel_configs` (may drop the target);
//! 4. the URL from `__scheme__`://`__address__``__metrics_path__`?params, where `__param_NAME`
//!    labels replace the first value of a configured param; interval and timeout from their labels;
//! 5. labels starting with `__` removed; `instance` set to `__address__` unless present.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;
use wire::labels::is_valid_label_name;

use super::Settings;
use crate::event::Labels;

/// Targets sharing labels, from the config or a file_sd file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Where the group came from (`static` or a file path), for messages.
    pub source: String,
}

impl TargetGroup {
    /// Checks addresses (non-empty) and label names.
    pub fn new(
        targets: Vec<String>,
        labels: BTreeMap<String, String>,
        source: impl Into<String>,
    ) -> Result<TargetGroup, String> {
        if let Some(bad) = targets.iter().find(|t| t.trim().is_empty()) {
            return Err(format!("target address {bad:?} is empty"));
        }
        if let Some(bad) = labels.keys().find(|k| !is_valid_label_name(k)) {
            return Err(format!("{bad:?} is not a label name"));
        }
        Ok(TargetGroup {
            targets,
            labels,
            source: source.into(),
        })
    }
}

/// One target to scrape; its identity is all of it (a change makes a new target).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScrapeTarget {
    /// The labels every sample of the target gets (`job`, `instance`, ...).
    pub labels: Labels,
    pub url: Url,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Why a discovered target cannot be scraped.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{origin}: target {address:?} has no __address__ after relabeling")]
    NoAddress { origin: String, address: String },
    #[error("{origin}: target {address:?}: {label} {value:?} is not a duration in (0, 1y]")]
    BadDuration {
        origin: String,
        address: String,
        label: &'static str,
        value: String,
    },
    #[error("{origin}: target {address:?}: {url:?} is not a URL: {reason}")]
    BadUrl {
        origin: String,
        address: String,
        url: String,
        reason: String,
    },
}

/// Resolves every target of `group`: `Ok(None)` for those `relabel_configs` dropped.
pub fn resolve<'a>(
    group: &'a TargetGroup,
    settings: &'a Settings,
    job: &'a str,
) -> impl Iterator<Item = Result<Option<ScrapeTarget>, TargetError>> + 'a {
    group
        .targets
        .iter()
        .map(move |address| resolve_one(group, address, settings, job))
}

fn resolve_one(
    group: &TargetGroup,
    address: &str,
    s: &Settings,
    job: &str,
) -> Result<Option<ScrapeTarget>, TargetError> {
    let mut labels: Labels = group
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    labels.insert("__address__", address);
    let defaults = [
        ("job", job.to_string()),
        ("__scheme__", s.scheme.as_str().to_string()),
        ("__metrics_path__", s.metrics_path.clone()),
        (
            "__scrape_interval__",
            humantime::format_duration(s.interval).to_string(),
        ),
        (
            "__scrape_timeout__",
            humantime::format_duration(s.timeout).to_string(),
        ),
    ];
    let params = s
        .params
        .iter()
        .filter_map(|(k, v)| Some((format!("__param_{k}"), v.first()?.clone())));
    for (k, v) in defaults
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(params)
    {
        if labels.get(&k).is_none() {
            labels.insert(k, v);
        }
    }
    if !s.target_relabel.apply(&mut labels) {
        return Ok(None);
    }
    let err_source = || group.source.clone();
    let addr = match labels.get("__address__") {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => {
            return Err(TargetError::NoAddress {
                origin: err_source(),
                address: address.to_string(),
            });
        }
    };
    let duration = |label: &'static str, default: Duration| match labels.get(label) {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v).map_err(|_| TargetError::BadDuration {
            origin: err_source(),
            address: address.to_string(),
            label,
            value: v.to_string(),
        }),
    };
    let interval = duration("__scrape_interval__", s.interval)?;
    if interval.is_zero() || interval > super::MAX_INTERVAL {
        return Err(TargetError::BadDuration {
            origin: err_source(),
            address: address.to_string(),
            label: "__scrape_interval__",
            value: humantime::format_duration(interval).to_string(),
        });
    }
    let timeout = duration("__scrape_timeout__", s.timeout)?.min(interval);
    let url = target_url(&labels, &addr, s).map_err(|(url, reason)| TargetError::BadUrl {
        origin: err_source(),
        address: address.to_string(),
        url,
        reason,
    })?;
    labels.retain(|k, _| !k.starts_with("__"));
    if labels.get("instance").is_none() {
        labels.insert("instance", addr);
    }
    Ok(Some(ScrapeTarget {
        labels,
        url,
        interval,
        timeout,
    }))
}

/// The URL to scrape; `Err((url, reason))` when it does not parse.
fn target_url(labels: &Labels, addr: &str, s: &Settings) -> Result<Url, (String, String)> {
    let scheme = labels.get("__scheme__").unwrap_or(s.scheme.as_str());
    let path = labels
        .get("__metrics_path__")
        .unwrap_or(s.metrics_path.as_str());
    let text = format!("{scheme}://{addr}{path}");
    let mut url = Url::parse(&text).map_err(|e| (text.clone(), e.to_string()))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err((text, "no host".to_string()));
    }
    // Configured params; a `__param_NAME` label replaces the first value (as in Prometheus).
    let mut params: BTreeMap<String, Vec<String>> = s.params.clone();
    for (k, v) in labels.iter() {
        if let Some(name) = k.strip_prefix("__param_") {
            let values = params.entry(name.to_string()).or_default();
            match values.first_mut() {
                Some(first) => *first = v.to_string(),
                None => values.push(v.to_string()),
            }
        }
    }
    let params: Vec<(String, String)> = params
        .into_iter()
        .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
        .collect();
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Settings};
    use super::*;
    use crate::sources::BuildError;

    fn settings(text: &str) -> Settings {
        let table: toml::Table = toml::from_str(text).unwrap();
        Settings::new(BuildError::parse::<Config>(table).unwrap()).unwrap()
    }

    fn one(s: &Settings) -> Option<ScrapeTarget> {
        let g = &s.static_groups[0];
        resolve(g, s, "job1").next().unwrap().unwrap()
    }

    #[test]
    fn defaults_instance_and_job() {
        let s = settings(r#"targets = [{ address = "h:9100", labels = { region = "eu" } }]"#);
        let t = one(&s).unwrap();
        assert_eq!(t.url.as_str(), "http://h:9100/metrics");
        assert_eq!(
            t.labels.iter().collect::<Vec<_>>(),
            vec![("instance", "h:9100"), ("job", "job1"), ("region", "eu")]
        );
        assert_eq!(t.interval, Duration::from_secs(15));
    }

    #[test]
    fn relabeling_rewrites_address_params_and_drops() {
        let s = settings(
            r#"
            targets = [{ address = "example.org" }]
            params = { module = ["http_2xx"], extra = ["a", "b"] }
            metrics_path = "/probe"
            scrape_interval = "1s"
            relabel_configs = [
              { source_labels = ["__address__"], target_label = "__param_target" },
              { source_labels = ["__param_target"], target_label = "instance" },
              { target_label = "__address__", replacement = "127.0.0.1:9115" },
              { target_label = "__scrape_interval__", replacement = "500ms" },
            ]"#,
        );
        let t = one(&s).unwrap();
        assert_eq!(
            t.url.as_str(),
            "http://127.0.0.1:9115/probe?extra=a&extra=b&module=http_2xx&target=example.org"
        );
        assert_eq!(t.labels.get("instance"), Some("example.org"));
        assert_eq!(t.interval, Duration::from_millis(500));
        assert!(t.labels.iter().all(|(k, _)| !k.starts_with("__")));

        let s = settings(
            r#"targets = [{ address = "h:1" }]
            relabel_configs = [{ source_labels = ["__address__"], regex = "h:.*", action = "drop" }]"#,
        );
        assert!(one(&s).is_none());

        let s = settings(
            r#"targets = [{ address = "h:1" }]
            relabel_configs = [{ target_label = "__address__", replacement = "" }]"#,
        );
        let g = &s.static_groups[0];
        assert!(matches!(
            resolve(g, &s, "j").next().unwrap(),
            Err(TargetError::NoAddress { .. })
        ));
    }
}
