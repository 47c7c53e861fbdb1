//! `${VAR}` and `${VAR:-default}` in config strings, resolved from the environment (node
//! metadata such as REGION, LOCATION, NODE_TYPE comes this way). `$$` is a literal `$`.
//! An unset variable without a default is an error, so a typo never silently becomes "".

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("environment variable {0} is not set (use ${{{0}:-default}} for a default)")]
    Unset(String),
    #[error("unterminated ${{...}} starting at {0:?}")]
    Unterminated(String),
    #[error("invalid variable name {0:?}")]
    BadName(String),
}

/// Replaces every `${VAR}` / `${VAR:-default}` in `s` using `lookup`.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                InterpolateError::Unterminated(rest[i..].chars().take(20).collect())
            })?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(InterpolateError::BadName(name.to_string()));
            }
            match (
                lookup(name).filter(|v| !(default.is_some() && v.is_empty())),
                default,
            ) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(InterpolateError::Unset(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Interpolates every string inside a TOML value (keys are left alone). Errors carry the path
/// below `value` (e.g. `labels.region`).
pub fn interpolate_value(
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, InterpolateError)> {
    match value {
        toml::Value::String(s) => {
            if s.contains('$') {
                *s = interpolate(s, lookup).map_err(|e| (String::new(), e))?;
            }
            Ok(())
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, lookup)
                    .map_err(|(p, e)| (join(&format!("[{i}]"), &p), e))?;
            }
            Ok(())
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                interpolate_value(v, lookup).map_err(|(p, e)| (join(&format!(".{k}"), &p), e))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn join(head: &str, tail: &str) -> String {
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "REGION" => Some("eu-west".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(interpolate("r=${REGION}", &env).unwrap(), "r=eu-west");
        assert_eq!(interpolate("${NODE_TYPE:-pos}", &env).unwrap(), "pos");
        assert_eq!(interpolate("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(
            interpolate("cost $$5 and $x", &env).unwrap(),
            "cost $5 and $x"
        );
        assert_eq!(interpolate("${A:-}", &env).unwrap(), "");
        assert_eq!(
            interpolate("${MISSING}", &env),
            Err(InterpolateError::Unset("MISSING".into()))
        );
        assert!(matches!(
            interpolate("${REGION", &env),
            Err(InterpolateError::Unterminated(_))
        ));
        assert!(matches!(
            interpolate("${RE-GION}", &env),
            Err(InterpolateError::BadName(_))
        ));
    }

    #[test]
    fn values_report_the_path() {
        let mut v: toml::Value = toml::from_str("labels = { region = \"${NOPE}\" }").unwrap();
        let (path, _) = interpolate_value(&mut v, &env).unwrap_err();
        assert_eq!(path, ".labels.region");
    }

    proptest! {
        #[test]
        fn never_panics_and_plain_text_is_unchanged(s in ".*") {
            let _ = interpolate(&s, &env);
            if !s.contains('$') {
                prop_assert_eq!(interpolate(&s, &env).unwrap(), s);
            }
        }
    }
}
