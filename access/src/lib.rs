//! Who may come in, and over what: the receivers' and servers' authentication and TLS, in one
//! place for the collector's receivers and `stack serve`.
//!
//! | module | what |
//! |---|---|
//! | [`auth`] | basic auth (htpasswd files, bcrypt/Argon2 hashes) and bearer tokens, tenant binding |
//! | [`guard`] | the middleware that refuses (401 + `WWW-Authenticate`, gRPC `UNAUTHENTICATED`) and counts |
//! | [`tls`] | server certificates reloaded on change, optional client certificates (mTLS) |
//! | [`serve`] | serving a router in TLS or in the clear, HTTP/1.1 and HTTP/2 on one port |
//! | [`watched`] | files reloaded when they change (certificates, htpasswd, tokens) |

pub mod auth;
pub mod guard;
pub mod serve;
pub mod tls;
pub mod watched;

pub use auth::{AuthError, AuthSettings, Authenticator, Denied, DeniedReason, Identity};
pub use guard::{Gate, Observer};
pub use serve::serve;
pub use tls::{ServerTls, TlsError, TlsSettings};
