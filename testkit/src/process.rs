//! Spawned binaries in tests (`collector`, `stack serve`): waiting, bounded, for one to exit.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child` to exit and returns its status; panics, failing the test, when it is still
/// running after `within` (a guard against a hung process, not a timing).
pub fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => panic!("process {}: {e}", child.id()),
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not stop within {within:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
