//! Label sets as Loki and Prometheus spell them: `{name="value", other="x"}` with Go string
//! escapes in values, names matching `[a-zA-Z_][a-zA-Z0-9_]*`, kept sorted by name; [`Labels`] is
//! the sorted set the pipeline carries a stream's or a series' labels in.

use std::fmt::Write as _;

/// One label.
pub type Label = (String, String);

/// A label set kept sorted by name, names unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// From pairs in any order; a later duplicate name wins.
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        // What senders send (remote write requires it): already sorted, names unique.
        if pairs.is_sorted_by(|a, b| a.0 < b.0) {
            return Labels(pairs);
        }
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the (reversed) later one comes first
        pairs.dedup_by(|b, a| a.0 == b.0);
        Labels(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Sets `name` to `value`, replacing any value it had.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => self.0[i].1 = value.into(),
            Err(i) => self.0.insert(i, (name, value.into())),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0.remove(i).1)
    }

    /// Keeps the labels for which `f` is true.
    pub fn retain(&mut self, mut f: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(k, v)| f(k, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }

    /// The `{a="b", c="d"}` form Loki's push API takes.
    pub fn to_loki_string(&self) -> String {
        format_label_set(&self.0)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels::new(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Why a label set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("1:{col}: parse error: {reason}")]
    Syntax { col: usize, reason: String },
    #[error("invalid label name {0:?}")]
    InvalidName(String),
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
}

/// Is `name` a legal label name (`[a-zA-Z_][a-zA-Z0-9_]*`)?
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A legal label name made from any key (an OTLP attribute, a structured-metadata name), as
/// Prometheus' and Loki's OTLP translation and Loki's distributor make one: characters outside
/// `[a-zA-Z0-9_]` become `_`, a leading digit gets `key_` in front.
pub fn sanitize_label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "key_");
    }
    s
}

/// Is `name` a legal metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`)?
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{a="b", c="d"}` into labels sorted by name. An empty set `{}` is accepted here; whether
/// it is allowed is the caller's rule (Loki refuses it).
pub fn parse_label_set(input: &str) -> Result<Vec<Label>, LabelError> {
    let mut p = Parser {
        s: input.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let mut out: Vec<Label> = Vec::new();
    loop {
        p.skip_ws();
        if p.peek() == Some(b'}') {
            p.pos += 1;
            break;
        }
        let name = p.ident()?;
        p.skip_ws();
        p.expect(b'=')?;
        p.skip_ws();
        let value = p.string()?;
        out.push((name, value));
        p.skip_ws();
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b'}') => {
                p.pos += 1;
                break;
            }
            _ => return Err(p.err("expected \",\" or \"}\"")),
        }
    }
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected characters after \"}\""));
    }
    out.sort();
    for w in out.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(LabelError::Duplicate(w[0].0.clone()));
        }
    }
    Ok(out)
}

/// Renders labels the way Loki and Prometheus print them: `{a="b", c="d"}` (in the given order).
pub fn format_label_set(labels: &[Label]) -> String {
    let mut s = String::with_capacity(2 + labels.len() * 16);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push('=');
        write_quoted(&mut s, v);
    }
    s.push('}');
    s
}

/// Appends `v` as a double-quoted Go string literal.
pub fn write_quoted(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> LabelError {
        LabelError::Syntax {
            col: self.pos + 1,
            reason: reason.to_string(),
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), LabelError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected {:?}", c as char)))
        }
    }
    fn ident(&mut self) -> Result<String, LabelError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.pos += 1;
        }
        let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        if !is_valid_label_name(name) {
            return Err(self.err("expected a label name"));
        }
        Ok(name.to_string())
    }
    fn string(&mut self) -> Result<String, LabelError> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'`')) => q,
            _ => return Err(self.err("expected a quoted string")),
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            if c == b'\\' && quote == b'"' {
                let Some(e) = self.peek() else {
                    return Err(self.err("unterminated escape"));
                };
                self.pos += 1;
                match e {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'\'' => out.push(b'\''),
                    b'x' => {
                        let h = self
                            .s
                            .get(self.pos..self.pos + 2)
                            .ok_or_else(|| self.err("bad \\x escape"))?;
                        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\x escape"))?;
                        let b =
                            u8::from_str_radix(h, 16).map_err(|_| self.err("bad \\x escape"))?;
                        out.push(b);
                        self.pos += 2;
                    }
                    b'u' => {
                        let h = self
                            .s
                            .get(self.pos..self.pos + 4)
                            .ok_or_else(|| self.err("bad \\u escape"))?;
                        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
                        let cp =
                            u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
                        let ch = char::from_u32(cp).ok_or_else(|| self.err("bad \\u escape"))?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        self.pos += 4;
                    }
                    _ => return Err(self.err("unknown escape sequence")),
                }
            } else {
                out.push(c);
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts() {
        let l = parse_label_set(r#"{job="a", region="eu\"x", app="b"}"#).unwrap();
        assert_eq!(
            l,
            vec![
                ("app".into(), "b".into()),
                ("job".into(), "a".into()),
                ("region".into(), "eu\"x".into())
            ]
        );
        assert_eq!(
            format_label_set(&l),
            r#"{app="b", job="a", region="eu\"x"}"#
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "{",
            "{a=b}",
            "{1a=\"x\"}",
            "{a=\"x\"",
            "{a=\"x\"} junk",
            "{a=\"x\",a=\"y\"}",
        ] {
            assert!(parse_label_set(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(parse_label_set("{}").unwrap(), vec![]);
        assert_eq!(parse_label_set("{a=\"x\",}").unwrap().len(), 1);
    }

    #[test]
    fn names() {
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a:b"));
        assert!(is_valid_metric_name("a:b_total"));
        assert!(!is_valid_metric_name(""));
        assert_eq!(sanitize_label_name("service.name"), "service_name");
        assert_eq!(sanitize_label_name("http.status-code"), "http_status_code");
        assert_eq!(sanitize_label_name("9lives"), "key_9lives");
        assert_eq!(sanitize_label_name("ok_1"), "ok_1");
    }

    #[test]
    fn labels_stay_sorted_and_unique() {
        let mut l = Labels::new(vec![
            ("b".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into()),
        ]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "2"), ("b", "3")]);
        l.insert("aa", "x");
        l.insert("a", "y");
        assert_eq!(l.get("a"), Some("y"));
        assert_eq!(
            l.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["a", "aa", "b"]
        );
        assert_eq!(l.remove("aa"), Some("x".into()));
        assert_eq!(l.to_loki_string(), r#"{a="y", b="3"}"#);
    }
}
