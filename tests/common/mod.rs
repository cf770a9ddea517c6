//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod golden;

/// Kernel tests need root; under CI a missing privilege is a failure, not a
/// skip. `what` names the test and why it needs root.
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let msg = format!("{} (needs root)", what);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{}: running under CI=true, where skipping is a failure", msg);
    }
    // Straight to stderr, past the test harness's capture: a skip is seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {}", msg);
    false
}
pub mod kernel;
