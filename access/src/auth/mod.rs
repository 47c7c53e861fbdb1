//! Who is asking: HTTP basic auth (users from an htpasswd file or the config, with bcrypt or
//! Argon2 hashes) and bearer tokens (from a file), checked on every request, and an optional
//! tenant each credential is bound to.
//!
//! ```toml
//! [sources.loki_in.auth]
//! htpasswd_file = "/etc/collector/htpasswd"      # user:bcrypt lines (htpasswd -B); reloaded on change
//! users = [{ username = "store-101", password_hash = "$2y$10$..." }]   # or in the config
//! bearer_tokens_file = "/run/secrets/tokens"     # a token per line, optionally its tenant; reloaded
//! tenants = { "store-101" = "store-101" }        # a user may only write as this tenant
//! realm = "collector"                            # shown in WWW-Authenticate
//! ```
//!
//! A credential bound to a tenant may only write as it: a request naming another tenant in
//! `X-Scope-OrgID` is refused (403 / `PERMISSION_DENIED`), one naming none is given its tenant.
//! What is refused is answered by [`crate::guard`] (401 with `WWW-Authenticate`, gRPC
//! `UNAUTHENTICATED`) and counted by reason ([`DeniedReason`]), never with the secret.

mod files;
mod passwords;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use serde::Deserialize;

pub use files::{Htpasswd, TokenEntry, Tokens, token_digest};
pub use passwords::{PasswordHash, Verified};

use crate::watched::{LoadError, Watched};

/// The tenant header of Loki, Mimir and Tempo.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// A receiver's `auth` settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// An htpasswd file (`user:hash` per line), reloaded when it changes.
    #[serde(default)]
    pub htpasswd_file: Option<PathBuf>,
    /// Users given in the config, with their password hashes.
    #[serde(default)]
    pub users: Vec<UserSettings>,
    /// A file of bearer tokens (one per line, optionally followed by the token's tenant),
    /// reloaded when it changes.
    #[serde(default)]
    pub bearer_tokens_file: Option<PathBuf>,
    /// The tenant each user may write as (users not named may write as any).
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// The realm `WWW-Authenticate` names.
    #[serde(default = "default_realm")]
    pub realm: String,
}

fn default_realm() -> String {
    "collector".into()
}

/// A user given in the config.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub username: String,
    /// A bcrypt (`htpasswd -nB user`) or Argon2 (PHC string) hash: never the password itself.
    pub password_hash: String,
}

/// Why the auth settings cannot be used: names the key or the file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error(transparent)]
    File(#[from] LoadError),
}

/// Why a request was refused, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeniedReason {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header of a scheme not configured, or not decodable.
    Malformed,
    /// An unknown user, a wrong password or an unknown token.
    BadCredentials,
    /// A credential bound to a tenant, used for another.
    TenantMismatch,
}

impl DeniedReason {
    pub const ALL: [DeniedReason; 4] = [
        DeniedReason::Missing,
        DeniedReason::Malformed,
        DeniedReason::BadCredentials,
        DeniedReason::TenantMismatch,
    ];

    /// The label value it is counted under.
    pub fn as_str(self) -> &'static str {
        match self {
            DeniedReason::Missing => "missing",
            DeniedReason::Malformed => "malformed",
            DeniedReason::BadCredentials => "bad_credentials",
            DeniedReason::TenantMismatch => "tenant_mismatch",
        }
    }
}

/// A refusal: why, and what the client is told (never the credential).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub reason: DeniedReason,
    pub message: String,
}

impl Denied {
    fn new(reason: DeniedReason, message: impl Into<String>) -> Self {
        Denied {
            reason,
            message: message.into(),
        }
    }
}

/// Who a request was authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name, or where the token is (`tokens:3`): never the token.
    pub name: String,
    /// The one tenant it may write as, if bound.
    pub tenant: Option<String>,
}

impl Identity {
    /// Applies the tenant binding to a request's headers: nothing to do when unbound; the
    /// bound tenant set when the request names none; refused when it names another.
    pub fn bind_tenant(&self, headers: &mut HeaderMap) -> Result<(), Denied> {
        let Some(bound) = &self.tenant else {
            return Ok(());
        };
        match headers
            .get(TENANT_HEADER)
            .map(|v| v.to_str().map(str::trim))
        {
            None => {
                let value = HeaderValue::from_str(bound).map_err(|_| {
                    Denied::new(
                        DeniedReason::TenantMismatch,
                        "the bound tenant is not a valid header value",
                    )
                })?;
                headers.insert(TENANT_HEADER, value);
                Ok(())
            }
            Some(Ok(asked)) if asked == bound => Ok(()),
            Some(_) => Err(Denied::new(
                DeniedReason::TenantMismatch,
                format!("{} may only write as tenant {bound:?}", self.name),
            )),
        }
    }
}

/// The users and tokens a receiver lets in.
pub struct Authenticator {
    htpasswd: Option<Watched<Htpasswd>>,
    users: Htpasswd,
    tokens: Option<Watched<Tokens>>,
    tenants: BTreeMap<String, String>,
    verified: Verified,
    /// Bounds the slow password checks running at once (one per core).
    slow: tokio::sync::Semaphore,
    challenges: Vec<HeaderValue>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("htpasswd", &self.htpasswd)
            .field("users", &self.users.users.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// What a request's `Authorization` header carries.
enum Presented<'a> {
    Basic { user: String, password: String },
    Bearer(&'a str),
}

impl Authenticator {
    /// Reads the files now; a mistake is an error naming the key or the file and line.
    pub fn new(s: &AuthSettings) -> Result<Self, AuthError> {
        if s.htpasswd_file.is_none() && s.users.is_empty() && s.bearer_tokens_file.is_none() {
            return Err(AuthError::Invalid {
                key: "auth".into(),
                reason: "set htpasswd_file, users or bearer_tokens_file".into(),
            });
        }
        let mut users = Htpasswd::default();
        for (i, u) in s.users.iter().enumerate() {
            let hash =
                PasswordHash::parse(&u.password_hash).map_err(|reason| AuthError::Invalid {
                    key: format!("auth.users[{i}].password_hash"),
                    reason,
                })?;
            if u.username.is_empty() || u.username.contains(':') {
                return Err(AuthError::Invalid {
                    key: format!("auth.users[{i}].username"),
                    reason: "must be non-empty, without ':'".into(),
                });
            }
            users.users.insert(u.username.clone(), hash);
        }
        let htpasswd = s
            .htpasswd_file
            .as_ref()
            .map(|p| Watched::load(p, Htpasswd::parse))
            .transpose()?;
        let tokens = s
            .bearer_tokens_file
            .as_ref()
            .map(|p| Watched::load(p, Tokens::parse))
            .transpose()?;
        let realm = s.realm.replace(['"', '\\'], "");
        let mut challenges = Vec::new();
        if htpasswd.is_some() || !users.users.is_empty() {
            challenges.push(format!("Basic realm=\"{realm}\", charset=\"UTF-8\""));
        }
        if tokens.is_some() {
            challenges.push(format!("Bearer realm=\"{realm}\""));
        }
        let challenges = challenges
            .into_iter()
            .map(|c| {
                HeaderValue::from_str(&c).map_err(|_| AuthError::Invalid {
                    key: "auth.realm".into(),
                    reason: "not valid in a header".into(),
                })
            })
            .collect::<Result<_, _>>()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Authenticator {
            htpasswd,
            users,
            tokens,
            tenants: s.tenants.clone(),
            verified: Verified::default(),
            slow: tokio::sync::Semaphore::new(cores),
            challenges,
        })
    }

    /// The `WWW-Authenticate` challenges a 401 carries (one per scheme configured).
    pub fn challenges(&self) -> &[HeaderValue] {
        &self.challenges
    }

    fn presented<'a>(&self, headers: &'a HeaderMap) -> Result<Presented<'a>, Denied> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Denied::new(
                DeniedReason::Missing,
                "authentication required",
            ));
        };
        let malformed = || Denied::new(DeniedReason::Malformed, "malformed Authorization header");
        let value = value.to_str().map_err(|_| malformed())?.trim();
        let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") && !self.basic_off() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| malformed())?;
            let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
            let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
            Ok(Presented::Basic {
                user: user.to_string(),
                password: password.to_string(),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") && self.tokens.is_some() {
            Ok(Presented::Bearer(rest))
        } else {
            Err(Denied::new(
                DeniedReason::Malformed,
                "Authorization scheme not accepted here",
            ))
        }
    }

    fn basic_off(&self) -> bool {
        self.htpasswd.is_none() && self.users.users.is_empty()
    }

    fn hash_of(&self, user: &str) -> Option<PasswordHash> {
        if let Some(h) = self.users.users.get(user) {
            return Some(h.clone());
        }
        self.htpasswd.as_ref()?.get().users.get(user).cloned()
    }

    fn bad() -> Denied {
        Denied::new(DeniedReason::BadCredentials, "invalid credentials")
    }

    fn user_identity(&self, user: String) -> Identity {
        Identity {
            tenant: self.tenants.get(&user).cloned(),
            name: user,
        }
    }

    fn token_identity(&self, token: &str) -> Result<Identity, Denied> {
        let tokens = self.tokens.as_ref().ok_or_else(Self::bad)?.get();
        let entry = tokens
            .by_digest
            .get(&token_digest(token))
            .ok_or_else(Self::bad)?;
        Ok(Identity {
            name: entry.name.clone(),
            tenant: entry.tenant.clone(),
        })
    }

    /// Checks a request's credentials, verifying a password on this thread (slow the first
    /// time: for gRPC interceptors and tests; servers use [`Authenticator::check`]).
    pub fn check_blocking(&self, headers: &HeaderMap) -> Result<Identity, Denied> {
        match self.presented(headers)? {
            Presented::Bearer(token) => self.token_identity(token),
            Presented::Basic { user, password } => {
                let hash = self.hash_of(&user).ok_or_else(Self::bad)?;
                if self.verified.verify(&user, &password, &hash) {
                    Ok(self.user_identity(user))
                } else {
                    Err(Self::bad())
                }
            }
        }
    }

    /// Checks a request's credentials. A password not verified lately is checked on the
    /// blocking pool, a core's worth at a time, so a flood of wrong passwords costs CPU but
    /// does not stall the receivers' other requests.
    pub async fn check(self: &Arc<Self>, headers: &HeaderMap) -> Result<Identity, Denied> {
        match self.presented(headers)? {
            Presented::Bearer(token) => self.token_identity(token),
            Presented::Basic { user, password } => {
                let hash = self.hash_of(&user).ok_or_else(Self::bad)?;
                if self.verified.known(&user, &password, &hash) {
                    return Ok(self.user_identity(user));
                }
                // The semaphore is never closed.
                let _permit = self.slow.acquire().await;
                let me = self.clone();
                let ok = tokio::task::spawn_blocking(move || {
                    me.verified.verify(&user, &password, &hash).then_some(user)
                })
                .await
                .ok()
                .flatten();
                match ok {
                    Some(user) => Ok(self.user_identity(user)),
                    None => Err(Self::bad()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
