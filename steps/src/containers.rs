//! (feature `e2e`) The containers stack as the scenarios start it: [`stack::containers`] with
//! [`crate::target::containers_config`], whose no-Docker error says what to run instead in this
//! crate's terms. The scenarios go through [`crate::target`]; [`start`] is for checking that
//! error on its own.

pub use stack::containers::{Containers, ContainersError};

/// Starts the containers the way `STEPS_STACK=containers` does.
pub async fn start() -> Result<Containers, ContainersError> {
    Containers::start(&crate::target::containers_config()).await
}
