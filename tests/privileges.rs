//! rtrace run by a user who may not trace (`nobody`, through setpriv, as
//! scripts/test-unprivileged.sh does) says what it lacks: root or CAP_BPF +
//! CAP_PERFMON, not libbpf's RLIMIT_MEMLOCK advice or "tracefs is not
//! mounted"; `-l` does not print nothing and succeed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

/// A copy of rtrace that `nobody` can run (the build tree may be private).
fn binary() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtrace-privileges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("rtrace");
    std::fs::copy(env!("CARGO_BIN_EXE_rtrace"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Runs rtrace as nobody: exit code and stderr.
fn as_nobody(bin: &PathBuf, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(args)
        .current_dir("/")
        .output()
        .expect("run setpriv");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const NEEDED: &str = "rtrace needs root, or the capabilities CAP_BPF and CAP_PERFMON";

#[test]
fn an_unprivileged_user_is_told_what_is_missing() {
    if !common::require_root("the privilege test (it drops to nobody)") {
        return;
    }
    let bin = binary();
    for prog in ["BEGIN { exit(); }", "tracepoint:sched:sched_switch { @ = count(); }", "interval:s:1 { exit(); }"] {
        for extra in [&[][..], &["--dry-run"][..]] {
            let args: Vec<&str> = extra.iter().copied().chain(["-e", prog]).collect();
            let (code, err) = as_nobody(&bin, &args);
            assert_eq!(code, Some(2), "{:?}: {}", args, err);
            assert!(err.contains(NEEDED), "{:?}: {}", args, err);
            assert!(!err.contains("RLIMIT_MEMLOCK") && !err.contains("not mounted"), "{:?}: {}", args, err);
        }
    }
    // Listing needs tracefs, which is root's alone here (mode 0700).
    let tracefs_private = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "test",
            "-r",
            "/sys/kernel/tracing/available_events",
        ])
        .status()
        .is_ok_and(|s| !s.success());
    if tracefs_private {
        for args in [&["-l", "tracepoint:sched:*"][..], &["-l"][..]] {
            let (code, err) = as_nobody(&bin, args);
            assert_eq!(code, Some(2), "{:?}: {}", args, err);
            assert!(err.contains("cannot list tracepoints: permission denied") && err.contains(NEEDED), "{}", err);
        }
        // Compiling alone needs tracefs too, for the tracepoint's format.
        let (code, err) = as_nobody(&bin, &["--emit", "asm", "-e", "tracepoint:sched:sched_switch { }"]);
        assert_eq!(code, Some(1), "{}", err);
        assert!(err.contains("cannot read tracefs (/sys/kernel/tracing): permission denied"), "{}", err);
    }
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
}
