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

/// `go build` of the Go workload in directory `src` to `out`, without
/// inlining (`-gcflags=-l`: every function keeps its own code to probe) and
/// with `flags`, for `goarch` (`None`: this machine's). Go's caches go
/// under `cache`: CI runs as root with no network. No VCS stamp: as
/// `nobody` git refuses the checkout (another owner) and `go build` fails.
pub fn go_build(
    src: &std::path::Path,
    out: &std::path::Path,
    flags: &[&str],
    goarch: Option<&str>,
    cache: &std::path::Path,
) -> std::process::Command {
    let mut c = std::process::Command::new("go");
    c.args(["build", "-gcflags=-l"]).args(flags).arg("-o").arg(out).arg(".").current_dir(src);
    c.env("GOCACHE", cache.join("gocache"))
        .env("GOPATH", cache.join("gopath"))
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .env("GOPROXY", "off");
    if let Some(arch) = goarch {
        c.env("GOARCH", arch);
    }
    c
}
