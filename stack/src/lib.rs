//! The backends the harness runs against, behind one interface, and typed clients for their
//! query APIs.
//!
//! | module | what it holds |
//! |---|---|
//! | [`endpoints`] | [`Endpoints`]: where a stack's write and query APIs are, tenant and credentials |
//! | [`embedded`] | in-process Loki, Mimir and Tempo on 127.0.0.1 speaking the real public APIs |
//! | [`external`] | a user's real stack from URLs (flags and environment) |
//! | [`local`] | Debian's `prometheus` and `prometheus-node-exporter` started on free ports |
//! | [`client`] | typed clients for the Loki, Prometheus/Mimir and Tempo query APIs |
//!
//! Every test and verifier talks to a stack only through [`Endpoints`] and [`client`], so the
//! same code runs against the embedded stack and against real servers.

pub mod client;
pub mod embedded;
pub mod endpoints;
pub mod external;
pub mod local;

pub use embedded::{EmbeddedConfig, EmbeddedStack};
pub use endpoints::{Auth, Endpoints};

/// A stack the harness runs against.
// Few `Stack`s exist at a time, so the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Stack {
    /// In-process servers, started by us and stopped on drop.
    Embedded(EmbeddedStack),
    /// A user's running stack, known by its URLs.
    External(Endpoints),
}

impl Stack {
    /// Where this stack's APIs are.
    pub fn endpoints(&self) -> &Endpoints {
        match self {
            Stack::Embedded(s) => s.endpoints(),
            Stack::External(e) => e,
        }
    }
}
