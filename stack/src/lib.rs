//! The backends the harness runs against, behind one interface, and typed clients for their
//! query APIs.
//!
//! | module | what it holds |
//! |---|---|
//! | [`choice`] | [`StackChoice`] and [`Stack`]: which stack (embedded, external, containers), started and stopped one way |
//! | `containers` | (feature `containers`) grafana/loki, mimir, tempo and grafana as testcontainers, configured from `deploy/` |
//! | [`images`] | the real stack's pinned images (compose and containers alike), the `deploy/` folder, Grafana's provisioning paths |
//! | [`endpoints`] | [`Endpoints`]: where a stack's write and query APIs are, tenant and credentials |
//! | [`embedded`] | in-process Loki, Mimir and Tempo on 127.0.0.1 speaking the real public APIs |
//! | [`external`] | a user's real stack from URLs (flags and environment) |
//! | [`local`] | Debian's `prometheus` and `prometheus-node-exporter` started on free ports |
//! | [`client`] | typed clients for the Loki, Prometheus/Mimir and Tempo query APIs |
//!
//! Every test and verifier talks to a stack only through [`Endpoints`] and [`client`], so the
//! same code runs against the embedded stack and against real servers.

pub mod choice;
pub mod client;
#[cfg(feature = "containers")]
pub mod containers;
pub mod embedded;
pub mod endpoints;
pub mod external;
pub mod images;
pub mod local;

pub use choice::{ContainersConfig, Stack, StackChoice, StackError};
pub use embedded::{EmbeddedConfig, EmbeddedStack};
pub use endpoints::{Auth, Endpoints};
