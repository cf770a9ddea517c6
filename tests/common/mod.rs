//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod regex;

/// Kernel tests need root; under CI a missing privilege is a failure, not a skip.
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let msg = format!("{} needs root (it loads eBPF programs into the kernel)", what);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{}: running under CI=true, where skipping is a failure", msg);
    }
    eprintln!("SKIPPED: {}", msg);
    false
}
