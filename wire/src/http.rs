//! The HTTP words every crate of the pipeline spells the same way: the tenant header of Loki,
//! Mimir and Tempo, the content types and encodings of their write APIs, and the credentials a
//! client sends ([`Auth`], which never shows a secret in `Debug` or `Display` output).
//!
//! Constants and values only, no I/O: each crate sends them with its own HTTP client.

use std::fmt;

use base64::Engine as _;

/// The tenant header of Loki, Mimir and Tempo (multi-tenant mode).
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// The tenant as gRPC metadata: the same header, lower case as gRPC metadata keys must be.
pub const TENANT_METADATA: &str = "x-scope-orgid";

/// `Content-Type` of protobuf bodies (Loki push, remote write, OTLP/HTTP).
pub const PROTOBUF: &str = "application/x-protobuf";

/// `Content-Type` of JSON bodies (Loki push, OTLP/HTTP, the query APIs).
pub const JSON: &str = "application/json";

/// `Content-Type` of plain-text answers (errors, readiness).
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// `Content-Encoding` of snappy block bodies (Loki push, remote write).
pub const SNAPPY: &str = "snappy";

/// `Content-Encoding` of gzip bodies.
pub const GZIP: &str = "gzip";

/// The header remote write 1.0 senders name their protocol version in (the value is
/// [`crate::remote_write::VERSION_HEADER_VALUE`]).
pub const REMOTE_WRITE_VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";

/// Credentials sent with every request. `Debug` and `Display` show the kind and, for basic
/// auth, the user name, never the password or token.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
}

impl Auth {
    /// The `Authorization` header value (RFC 7617 basic, RFC 6750 bearer); `None` without
    /// credentials.
    pub fn authorization(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}:***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_values() {
        assert_eq!(Auth::None.authorization(), None);
        // RFC 7617's example.
        let basic = Auth::Basic {
            username: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            basic.authorization().as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(
            Auth::Bearer("t0k".into()).authorization().as_deref(),
            Some("Bearer t0k")
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_and_display() {
        let basic = Auth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let bearer = Auth::Bearer("tok3n".into());
        for shown in [
            format!("{basic:?}"),
            format!("{basic}"),
            format!("{bearer:?}"),
            format!("{bearer}"),
        ] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("tok3n"),
                "{shown}"
            );
        }
        assert_eq!(format!("{basic}"), "Basic(u:***)");
    }
}
