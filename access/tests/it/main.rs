//! Over real sockets: a router behind the gate, in TLS, with reqwest and rustls as clients.

#![allow(clippy::unwrap_used)]

mod serving;
