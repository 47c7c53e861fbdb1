//! The two credential files a receiver reads (and reads again when they change):
//!
//! - an **htpasswd file**, `user:hash` per line as `htpasswd -B` writes it (bcrypt, or an Argon2
//!   PHC string); `#` starts a comment;
//! - a **bearer tokens file**, one token per line, optionally followed by whitespace and the one
//!   tenant it may write as; `#` starts a comment. Tokens are kept as SHA-256 digests, never
//!   as given, so a memory dump or a `Debug` print shows no token.
//!
//! A mistake names the file and line, never the secret on it.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::passwords::PasswordHash;
use crate::watched::LoadError;

/// The users of an htpasswd file.
#[derive(Debug, Default)]
pub struct Htpasswd {
    pub users: HashMap<String, PasswordHash>,
}

fn text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|_| LoadError::new(path, "not UTF-8 text"))
}

/// The lines that carry something: (line number, trimmed text).
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

impl Htpasswd {
    /// Parses an htpasswd file's contents.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Htpasswd, LoadError> {
        let mut users = HashMap::new();
        for (n, line) in entries(text(path, bytes)?) {
            let Some((user, hash)) = line.split_once(':') else {
                return Err(LoadError::new(
                    path,
                    format!("line {n}: expected user:hash"),
                ));
            };
            if user.is_empty() {
                return Err(LoadError::new(path, format!("line {n}: empty user name")));
            }
            let hash = PasswordHash::parse(hash)
                .map_err(|e| LoadError::new(path, format!("line {n}: {e}")))?;
            if users.insert(user.to_string(), hash).is_some() {
                return Err(LoadError::new(
                    path,
                    format!("line {n}: user {user:?} appears twice"),
                ));
            }
        }
        Ok(Htpasswd { users })
    }
}

/// A token's digest.
pub type TokenDigest = [u8; 32];

/// The digest a token is kept and looked up as.
pub fn token_digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// What a token is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEntry {
    /// Where it is, to name it in logs without showing it: `tokens:3`.
    pub name: String,
    /// The one tenant it may write as, if bound.
    pub tenant: Option<String>,
}

/// The tokens of a bearer tokens file, by digest.
#[derive(Debug, Default)]
pub struct Tokens {
    pub by_digest: HashMap<TokenDigest, TokenEntry>,
}

impl Tokens {
    /// Parses a tokens file's contents.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Tokens, LoadError> {
        let file = path
            .file_name()
            .map_or_else(|| "tokens".into(), |f| f.to_string_lossy().into_owned());
        let mut by_digest = HashMap::new();
        for (n, line) in entries(text(path, bytes)?) {
            let mut words = line.split_whitespace();
            let (Some(token), tenant, None) = (words.next(), words.next(), words.next()) else {
                return Err(LoadError::new(
                    path,
                    format!("line {n}: expected a token, optionally followed by its tenant"),
                ));
            };
            if token.len() < 16 {
                return Err(LoadError::new(
                    path,
                    format!("line {n}: a token must be at least 16 characters"),
                ));
            }
            let entry = TokenEntry {
                name: format!("{file}:{n}"),
                tenant: tenant.map(str::to_string),
            };
            if by_digest.insert(token_digest(token), entry).is_some() {
                return Err(LoadError::new(
                    path,
                    format!("line {n}: a token appears twice"),
                ));
            }
        }
        if by_digest.is_empty() {
            return Err(LoadError::new(path, "no token in the file"));
        }
        Ok(Tokens { by_digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_lines_and_mistakes_by_line_without_the_hash() {
        let p = Path::new("/etc/htpasswd");
        let h1 = bcrypt::hash("a", 4).unwrap();
        let ok = format!("# users\n\nstore-101:{h1}\n  store-102:{h1}  \n");
        let h = Htpasswd::parse(p, ok.as_bytes()).unwrap();
        assert_eq!(h.users.len(), 2);
        assert!(h.users["store-102"].verify("a"));
        for (bad, want) in [
            ("u\n".to_string(), "line 1: expected user:hash"),
            (format!("\n:{h1}\n"), "line 2: empty user name"),
            (
                format!("u:{h1}\nu:{h1}\n"),
                "line 2: user \"u\" appears twice",
            ),
            ("u:$apr1$xx$yy\n".to_string(), "line 1: not a bcrypt"),
        ] {
            let e = Htpasswd::parse(p, bad.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with("/etc/htpasswd: "), "{e}");
            assert!(e.contains(want), "{e} (wanted {want})");
            assert!(!e.contains("$2b$"), "a hash shown: {e}");
        }
    }

    #[test]
    fn tokens_are_kept_as_digests_with_their_tenant() {
        let p = Path::new("/run/secrets/tokens");
        let t = Tokens::parse(
            p,
            b"# agents\nAAAAAAAAAAAAAAAAAAAA store-101\nBBBBBBBBBBBBBBBBBBBB\n",
        )
        .unwrap();
        let a = &t.by_digest[&token_digest("AAAAAAAAAAAAAAAAAAAA")];
        assert_eq!(a.tenant.as_deref(), Some("store-101"));
        assert_eq!(a.name, "tokens:2");
        assert_eq!(
            t.by_digest[&token_digest("BBBBBBBBBBBBBBBBBBBB")].tenant,
            None
        );
        assert!(!format!("{t:?}").contains("AAAA"));
        for (bad, want) in [
            ("short\n", "line 1: a token must be at least 16"),
            ("AAAAAAAAAAAAAAAAAAAA t extra\n", "line 1: expected a token"),
            ("# nothing\n", "no token"),
        ] {
            let e = Tokens::parse(p, bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(
                !e.contains("AAAA") && !e.contains("short"),
                "a token shown: {e}"
            );
        }
    }
}
