//! Small serde helpers shared by component configs.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as humantime (`"500ms"`, `"5s"`, `"1m30s"`): use with
/// `#[serde(deserialize_with = "crate::serde_util::duration")]`.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration ({e}); examples: 500ms, 5s, 1m30s"
        ))
    })
}

/// Like [`duration`], for an optional field (`#[serde(default, deserialize_with = "crate::serde_util::opt_duration")]`).
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct C {
        #[serde(deserialize_with = "duration")]
        wait: Duration,
    }

    #[test]
    fn parses_humantime_and_names_bad_values() {
        let c: C = toml::from_str("wait = \"1m30s\"").unwrap();
        assert_eq!(c.wait, Duration::from_secs(90));
        let err = toml::from_str::<C>("wait = \"soon\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
    }
}
