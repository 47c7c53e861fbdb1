//! Test helpers the workspace's tests share, so that no crate keeps its own copy: a dev-only
//! crate (`[dev-dependencies]` of the product crates; `steps`, test-only itself, depends on it
//! normally). Nothing here ships.
//!
//! | module | what |
//! |---|---|
//! | [`poll`] | polling with a deadline: [`eventually`] for plain tests, [`poll::eventually`] with what the last attempt saw |
//! | [`docker_engine`] | a Docker Engine API on a unix socket, for the collector's `docker` source |
//! | [`fixtures`] | test data files kept here rather than in the product crates |
//! | [`process`] | spawned binaries: [`wait_exit`], bounded |
//! | [`pki`] | a throwaway CA, server and client certificates for TLS tests |
//!
//! and [`now_ns`], the wall clock as Unix nanoseconds (what the backends store), and [`get_text`],
//! a page fetched as text.

pub mod docker_engine;
pub mod fixtures;
pub mod pki;
pub mod poll;
pub mod process;

pub use poll::until_some as eventually;
pub use process::wait_exit;

/// The wall clock as nanoseconds since the Unix epoch: the timestamps the backends store and
/// accept (they refuse data far in the past, so tests stamp with now).
pub use wire::time::now_ns;

/// GETs `url` and returns the body as text (a `/metrics` page, say); panics, failing the test,
/// when the request or the body cannot be read. The status is the caller's to check elsewhere.
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    let url = url.as_str().to_string();
    let response = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"))
}
