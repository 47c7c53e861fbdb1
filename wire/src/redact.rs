//! Credentials kept out of everything the tools show: URLs, free text (error messages, log lines,
//! reports) and command lines, redacted before they are printed, logged or written.
//!
//! | function | input | what goes |
//! |---|---|---|
//! | [`url`] | one URL (`scheme://…`, or an authority such as `user:pw@host:4317`) | the password of its userinfo (a user name alone: the whole userinfo), the values of sensitive query and fragment parameters |
//! | [`text`] | free text | the same in every `scheme://…` inside it |
//! | [`args`] | a command line, one argument per item | the value of every secret-looking flag (`--password X`, `--bearer-token=X`), then [`text`] |
//! | [`Writer`] | a byte stream of lines (log output) | [`text`], line by line |
//!
//! Redacted parts become [`MASK`], as Go's `url.URL.Redacted` (and so Prometheus' and Grafana's
//! shown configs) does: `http://user:pw@host` is shown `http://user:xxxxx@host`. The user name
//! stays when there is a password (it says which credential was used); a user name without a
//! password is taken for a token (`https://TOKEN@host`) and masked whole. A parameter is
//! sensitive by its name, case-insensitively ([`is_sensitive_param`]): `password`, `token`,
//! `key`, `sig`, `X-Amz-Signature`, anything containing `secret`, `token` or `password`, ...
//!
//! Every function is idempotent (redacting twice changes nothing more) and leaves text without
//! credentials unchanged, byte for byte (no normalisation: `http://host` does not become
//! `http://host/`). Raw passwords holding `/`, `?` or `#` (not valid in a URL, but typed) are
//! masked too, as long as what follows the `:` is not a port number.

use std::borrow::Cow;
use std::io::{self, Write};

/// What a redacted part becomes (Go's `url.Redacted` spelling).
pub const MASK: &str = "xxxxx";

/// Query parameter names whose values are secrets, compared case-insensitively.
const SENSITIVE_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "auth",
    "authorization",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "client_secret",
    "session",
    "sessionid",
];

/// Name fragments that make a parameter or a flag sensitive wherever they appear in its name.
const SENSITIVE_PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "signature",
    "credential",
];

/// Whether a query parameter named `name` (percent-encoded or not) carries a secret.
pub fn is_sensitive_param(name: &str) -> bool {
    let name = percent_decode_lower(name);
    let name = name.trim();
    SENSITIVE_PARAMS.contains(&name)
        || SENSITIVE_PARTS.iter().any(|p| name.contains(p))
        || ["_key", "-key", ".key"].iter().any(|s| name.ends_with(s))
}

/// Whether a command-line flag (`--bearer-token`, `-password`, without any `=value`) takes a
/// secret as its value.
pub fn is_sensitive_flag(flag: &str) -> bool {
    let name = flag.trim_start_matches('-').to_ascii_lowercase();
    !name.is_empty()
        && flag.starts_with('-')
        && (SENSITIVE_PARTS.iter().any(|p| name.contains(p))
            || ["pass", "pwd", "key", "api-key", "access-key", "secret-key"]
                .contains(&name.as_str()))
}

/// One URL with its credentials masked; unchanged (borrowed) when it has none.
pub fn url(s: &str) -> Cow<'_, str> {
    let start = match s.find("://") {
        Some(i) if is_scheme(&s[..i]) => i + 3,
        _ if s.starts_with("//") => 2,
        _ => 0,
    };
    match redact_after_scheme(&s[start..]) {
        None => Cow::Borrowed(s),
        Some(rest) => Cow::Owned(format!("{}{rest}", &s[..start])),
    }
}

/// Free text with the credentials of every `scheme://…` inside it masked; unchanged (borrowed)
/// when there are none.
pub fn text(s: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    // Everything before `done` is in `out` already (when `out` exists).
    let mut done = 0;
    let mut from = 0;
    while let Some(i) = s[from..].find("://").map(|i| i + from) {
        let after = i + 3;
        let end = token_end(s, after);
        if let Some(rest) = redact_after_scheme(&s[after..end]) {
            let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
            o.push_str(&s[done..after]);
            o.push_str(&rest);
            done = end;
        }
        from = end.max(after);
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[done..]);
            Cow::Owned(o)
        }
    }
}

/// A command line, one argument per item, with the value of every secret-looking flag masked
/// (`--password X`, `--bearer-token=X`) and every argument redacted as [`text`] (an argument may
/// itself be a command line, as `--collector-cmd 'agent --token X'` is); joined by spaces.
pub fn args<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut hide_next = false;
    let mut shown = Vec::new();
    for a in args {
        let a = a.as_ref();
        if hide_next && !a.starts_with('-') {
            hide_next = false;
            shown.push(MASK.to_string());
            continue;
        }
        hide_next = false;
        if a.starts_with('-') && !a.contains('=') && is_sensitive_flag(a) {
            hide_next = true;
            shown.push(a.to_string());
            continue;
        }
        shown.push(command(a).into_owned());
    }
    shown.join(" ")
}

/// A command line held as one string (arguments split at whitespace): as [`args`], keeping the
/// whitespace as it was.
pub fn command(s: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut hide_next = false;
    let mut rest = s;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..len];
        rest = &rest[len..];
        if word.is_empty() {
            continue;
        }
        if hide_next && !word.starts_with('-') {
            hide_next = false;
            changed |= word != MASK;
            out.push_str(MASK);
            continue;
        }
        hide_next = false;
        match word.split_once('=') {
            Some((flag, value)) if word.starts_with('-') && is_sensitive_flag(flag) => {
                changed |= value != MASK;
                out.push_str(flag);
                out.push('=');
                out.push_str(MASK);
            }
            None if word.starts_with('-') && is_sensitive_flag(word) => {
                hide_next = true;
                out.push_str(word);
            }
            _ => {
                let w = text(word);
                changed |= matches!(w, Cow::Owned(_));
                out.push_str(&w);
            }
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// A [`Write`] that passes lines on with [`text`] applied: for log output
/// (`tracing_subscriber::fmt().with_writer(|| Writer::new(std::io::stderr()))`). A line is
/// passed on when its newline arrives, on [`Write::flush`] and on drop.
pub struct Writer<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Self {
        Writer {
            inner,
            line: Vec::new(),
        }
    }

    fn pass_on(&mut self, upto: usize) -> io::Result<()> {
        let bytes: Vec<u8> = self.line.drain(..upto).collect();
        match std::str::from_utf8(&bytes) {
            Ok(s) => self.inner.write_all(text(s).as_bytes()),
            Err(_) => self
                .inner
                .write_all(text(&String::from_utf8_lossy(&bytes)).as_bytes()),
        }
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        if let Some(last) = self.line.iter().rposition(|&b| b == b'\n') {
            self.pass_on(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.pass_on(self.line.len())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Writer<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `[A-Za-z][A-Za-z0-9+.-]*`, the scheme of RFC 3986.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// Where the URL that starts at `from` (just after its `://`) ends in free text: at whitespace,
/// a double quote or an angle bracket, which a URL does not hold, with trailing punctuation
/// (`,`, `.`, `)`, `'`, ...) left to the sentence.
fn token_end(s: &str, from: usize) -> usize {
    let end = s[from..]
        .find(|c: char| {
            c.is_whitespace()
                || c.is_control()
                // What a URL never holds raw (the `url` crate escapes them everywhere).
                || matches!(c, '"' | '<' | '>')
        })
        .map_or(s.len(), |i| i + from);
    let trimmed =
        s[from..end].trim_end_matches([',', '.', ';', ':', '!', '?', ')', ']', '\'', '`']);
    from + trimmed.len()
}

/// The part of a URL after `scheme://` with its credentials masked; `None` when it has none.
fn redact_after_scheme(rest: &str) -> Option<String> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let at = match authority.rfind('@') {
        Some(at) => Some(at),
        // `user:pa/ss@host`: a raw password holding `/`, `?` or `#` ends the authority early;
        // what follows the `:` is then no port number.
        None => {
            let host_port = match authority.strip_prefix('[') {
                Some(v6) => v6.find(']').map_or("", |i| &v6[i + 1..]),
                None => authority,
            };
            let no_port = host_port
                .split_once(':')
                .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()));
            no_port.then(|| rest.rfind('@')).flatten()
        }
    };
    let mut out = String::new();
    let mut changed = false;
    let after_userinfo = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            let shown = match userinfo.split_once(':') {
                _ if userinfo.is_empty() => String::new(),
                Some((user, pass)) if !pass.is_empty() => format!("{user}:{MASK}"),
                _ => MASK.to_string(),
            };
            changed |= shown != userinfo;
            out.push_str(&shown);
            at
        }
        None => 0,
    };
    let tail = &rest[after_userinfo..];
    // The path (with the host, after the userinfo) as it is; then the query and the fragment,
    // parameter by parameter.
    let query_at = tail.find(['?', '#']).unwrap_or(tail.len());
    out.push_str(&tail[..query_at]);
    let mut rest = &tail[query_at..];
    while let Some(sep) = rest.chars().next() {
        // `?query` up to a `#`, then `#fragment` to the end.
        let part_end = if sep == '?' {
            rest.find('#').unwrap_or(rest.len())
        } else {
            rest.len()
        };
        out.push(sep);
        changed |= redact_params(&rest[1..part_end], &mut out);
        rest = &rest[part_end..];
    }
    changed.then_some(out)
}

/// `a=1&token=x;b` into `out` with sensitive values masked; whether any was.
fn redact_params(params: &str, out: &mut String) -> bool {
    let mut changed = false;
    let mut rest = params;
    loop {
        let end = rest.find(['&', ';']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_sensitive_param(name) => {
                changed |= value != MASK;
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
        if end == rest.len() {
            return changed;
        }
        out.push_str(&rest[end..end + 1]);
        rest = &rest[end + 1..];
    }
}

/// `%XX` decoded (ASCII only; anything else kept as it is) and ASCII-lowercased.
fn percent_decode_lower(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            && v.is_ascii()
        {
            out.push(char::from(v).to_ascii_lowercase());
            i += 3;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(c.to_ascii_lowercase());
        i += c.len_utf8().max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn userinfo_keeps_the_user_masks_the_password() {
        assert_eq!(
            url("http://user:s3cr3t@host:3100/loki"),
            "http://user:xxxxx@host:3100/loki"
        );
        assert_eq!(url("https://TOKEN@host"), "https://xxxxx@host");
        assert_eq!(url("http://user:@host"), "http://xxxxx@host");
        assert_eq!(url("user:pw@127.0.0.1:4317"), "user:xxxxx@127.0.0.1:4317");
        // The last `@` of the authority ends the userinfo.
        assert_eq!(url("http://u:p@ss@host/"), "http://u:xxxxx@host/");
    }

    #[test]
    fn raw_passwords_with_delimiters_are_masked() {
        for raw in [
            "http://u:pa/ss@host/x",
            "http://u:pa?ss@host/x",
            "http://u:pa#ss@host/x",
        ] {
            assert_eq!(url(raw), "http://u:xxxxx@host/x", "{raw}");
        }
        // A port, then a path with an `@`: no userinfo.
        assert_eq!(
            url("http://registry:4873/@scope/pkg"),
            "http://registry:4873/@scope/pkg"
        );
    }

    #[test]
    fn sensitive_parameters_are_masked_case_insensitively() {
        assert_eq!(
            url("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc&x=1"),
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx&x=1"
        );
        assert_eq!(
            url("http://h/p?TOKEN=t&api%5Fkey=k;sig=s#access_token=a&state=1"),
            "http://h/p?TOKEN=xxxxx&api%5Fkey=xxxxx;sig=xxxxx#access_token=xxxxx&state=1"
        );
        assert_eq!(
            url("http://h/p?monkey=1&query=up&keyword=a"),
            "http://h/p?monkey=1&query=up&keyword=a"
        );
        // Escaped for HTML, `&amp;` still separates.
        assert_eq!(
            url("http://h/?a=1&amp;key=k"),
            "http://h/?a=1&amp;key=xxxxx"
        );
    }

    #[test]
    fn text_masks_every_url_and_leaves_the_sentence() {
        assert_eq!(
            text(
                "external stack (Loki http://u:pw@loki:3100), collector (Loki push http://c:pw@h:3500/loki/api/v1/push?token=t, ...)"
            ),
            "external stack (Loki http://u:xxxxx@loki:3100), collector (Loki push http://c:xxxxx@h:3500/loki/api/v1/push?token=xxxxx, ...)"
        );
        assert_eq!(
            text("error sending request for url (http://h:9/x?token=abc)"),
            "error sending request for url (http://h:9/x?token=xxxxx)"
        );
        assert_eq!(
            text("url: \"http://u:p@h/\" is bad"),
            "url: \"http://u:xxxxx@h/\" is bad"
        );
        let plain = "no url here: a://b c:// ://";
        assert!(matches!(text(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn command_lines_mask_secret_flags() {
        assert_eq!(
            args([
                "loadgen",
                "--password",
                "pw",
                "--bearer-token=tk",
                "--loki-url",
                "http://u:pw@h",
                "--collector-cmd",
                "agent --api-key K --url http://h/?token=t",
                "--no-default-slos",
            ]),
            "loadgen --password xxxxx --bearer-token=xxxxx --loki-url http://u:xxxxx@h --collector-cmd agent --api-key xxxxx --url http://h/?token=xxxxx --no-default-slos"
        );
        assert_eq!(
            command("alloy run --config x.alloy  --token=T"),
            "alloy run --config x.alloy  --token=xxxxx"
        );
        // A flag without a value keeps the next flag.
        assert_eq!(
            args(["x", "--token", "--devices", "5"]),
            "x --token --devices 5"
        );
    }

    #[test]
    fn writer_redacts_line_by_line() {
        let mut sink = Vec::new();
        {
            let mut w = Writer::new(&mut sink);
            w.write_all(b"target=http://u:pw").unwrap();
            w.write_all(b"@h:1 starting\nsecond http://h/?token=zz")
                .unwrap();
        }
        assert_eq!(
            String::from_utf8(sink).unwrap(),
            "target=http://u:xxxxx@h:1 starting\nsecond http://h/?token=xxxxx"
        );
    }

    /// A password as userinfo may hold it (sub-delimiters, `:` and `@` too), distinctive: what
    /// the tests look for must not occur by chance.
    fn password() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,12}".prop_map(|s| format!("S3cr3t{s}Z"))
    }

    /// A token as a query value holds it (unreserved, `%`-escapes, base64's `+/=`).
    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._~%+/=-]{0,12}".prop_map(|s| format!("T0k3n{s}Z"))
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9.-]{0,20}",
            Just("127.0.0.1".to_string()),
            Just("[::1]".to_string())
        ]
        .prop_flat_map(|h| {
            proptest::option::of(0u16..).prop_map(move |p| match p {
                Some(p) => format!("{h}:{p}"),
                None => h.clone(),
            })
        })
    }

    /// Parameters that are not secrets, values included.
    fn plain_query() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("query"),
                    Just("start"),
                    Just("end"),
                    Just("step"),
                    Just("limit"),
                    Just("direction"),
                    Just("orgId"),
                    Just("monkey")
                ],
                "[A-Za-z0-9%._~{}=:-]{0,12}",
            ),
            0..4,
        )
        .prop_map(|ps| {
            ps.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    fn path() -> impl Strategy<Value = String> {
        "(/[A-Za-z0-9._~!$'()*+,;=:%-]{0,10}){0,4}"
    }

    proptest! {
        #[test]
        fn urls_without_secrets_are_unchanged(
            scheme in "(http|https|grpc|s3)",
            host in host(),
            path in path(),
            query in plain_query(),
            fragment in proptest::option::of("[a-z0-9]{0,8}"),
        ) {
            let q = if query.is_empty() { String::new() } else { format!("?{query}") };
            let f = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            let u = format!("{scheme}://{host}{path}{q}{f}");
            prop_assert_eq!(url(&u), u.as_str());
            let t = format!("pushing to {u}, failed");
            prop_assert_eq!(text(&t), t.as_str());
            prop_assert_eq!(command(&t), t.as_str());
        }

        #[test]
        fn secrets_never_show_and_redaction_is_idempotent(
            user in "[a-z]{1,8}",
            password in password(),
            token in token(),
            key in prop_oneof![
                Just("token"), Just("Password"), Just("api_key"), Just("X-Amz-Signature"),
                Just("sig"), Just("access_token"), Just("KEY"), Just("client_secret")
            ],
            host in host(),
            path in path(),
            query in plain_query(),
            in_userinfo in any::<bool>(),
        ) {
            // The password as a client would send it: its `/`, `?`, `#` unescaped only in the
            // query value, where they are allowed.
            let u = if in_userinfo {
                format!("http://{user}:{password}@{host}{path}?{query}&{key}={token}")
            } else {
                format!("http://{host}{path}?{key}={token}&{query}")
            };
            for shown in [
                url(&u).into_owned(),
                text(&format!("target: {u} (retrying)")).into_owned(),
                text(&format!("{u:?}")).into_owned(),
                command(&format!("agent --url {u} --password {password}")).into_owned(),
                args(["agent", "--url", &u, "--password", &password]),
            ] {
                prop_assert!(!shown.contains(&token), "{shown}");
                if in_userinfo {
                    prop_assert!(!shown.contains(&password), "{shown}");
                }
                prop_assert_eq!(text(&shown), shown.as_str());
                prop_assert_eq!(command(&shown), shown.as_str());
            }
            let once = url(&u).into_owned();
            prop_assert_eq!(url(&once), once.as_str());
        }

        #[test]
        fn raw_passwords_never_show(
            password in "[A-Za-z0-9/?#@:]{0,10}".prop_map(|s| format!("S3cr3t{s}Z")),
            host in "[a-z]{1,10}(:[0-9]{1,5})?",
            path in "(/[a-z]{0,6}){0,3}",
        ) {
            let u = format!("http://user:{password}@{host}{path}");
            let shown = url(&u);
            prop_assert!(!shown.contains(&password), "{shown}");
            prop_assert_eq!(url(&shown), shown.clone());
            let t = text(&u);
            prop_assert!(!t.contains(&password), "{t}");
        }

        #[test]
        fn arbitrary_text_is_redacted_idempotently(s in "\\PC{0,80}") {
            let once = text(&s).into_owned();
            prop_assert_eq!(text(&once), once.as_str());
            let once = command(&s).into_owned();
            prop_assert_eq!(command(&once), once.as_str());
        }
    }
}
