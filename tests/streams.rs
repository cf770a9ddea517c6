//! Event streams under a flood: every record a probe sends is either
//! printed or counted as lost, exactly, in text and in JSON. A uprobe on
//! `step(i)` of tests/workloads/loop.c prints `i` for each of N calls into
//! a ring buffer of one page, so most records cannot fit; the test checks
//! that the printed values are distinct calls and that printed + lost = N.
//! (No timing is asserted: how many are delivered depends on the machine;
//! BENCHMARKS.md has the measured rates.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const CALLS: u64 = 300_000;

fn rtrace() -> &'static str {
    env!("CARGO_BIN_EXE_rtrace")
}

/// The workload, built once for both tests.
fn build_loop() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("streams");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("loop");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/loop.c");
    let status = Command::new("gcc").args(["-O1", "-o"]).arg(&out).arg(&src).status().expect("run gcc");
    assert!(status.success(), "cannot build {}", src.display());
    out
}

/// One flood at a time: a uprobe on the file fires in every process
/// running it, so two floods would see each other's calls.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the flood with output format `format` into a file; returns the
/// file's text and rtrace's stderr (where text mode reports lost events,
/// as bpftrace v0.26 does).
fn flood(format: &str, name: &str) -> (String, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bin = build_loop();
    let out = bin.with_file_name(format!("{}.out", name));
    let program = format!("uprobe:{}:step {{ printf(\"%d\\n\", arg0); }}", bin.display());
    let run = Command::new(rtrace())
        .args(["-f", format, "-o"])
        .arg(&out)
        .args(["-e", &program, "-c"])
        .arg(format!("{} {} 0", bin.display(), CALLS))
        .env("RTRACE_RINGBUF_PAGES", "1")
        .output()
        .expect("run rtrace");
    assert!(run.status.success(), "rtrace failed: {:?}\n{}", run.status, String::from_utf8_lossy(&run.stderr));
    (std::fs::read_to_string(&out).unwrap(), String::from_utf8_lossy(&run.stderr).into_owned())
}

/// Checks the printed call numbers: distinct, below CALLS; returns how many.
fn check_printed(values: &[u64]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    for v in values {
        assert!(*v < CALLS, "printed {} is not a call number", v);
        assert!(seen.insert(*v), "call {} printed twice", v);
    }
    values.len() as u64
}

#[test]
fn flood_loss_is_exact_in_text() {
    if !common::require_root("streams") {
        return;
    }
    let (text, stderr) = flood("text", "text");
    let mut printed = Vec::new();
    for line in text.lines() {
        match line.parse::<u64>() {
            Ok(v) => printed.push(v),
            Err(_) => assert!(line.is_empty(), "unexpected line {:?}", line),
        }
    }
    let mut lost = 0u64;
    for line in stderr.lines() {
        if let Some(n) = line.strip_prefix("Lost ").and_then(|r| r.strip_suffix(" events")) {
            lost += n.parse::<u64>().unwrap();
        } else {
            assert!(line.starts_with("Attached "), "unexpected line on stderr {:?}", line);
        }
    }
    let printed = check_printed(&printed);
    assert!(lost > 0, "a one-page ring took {} records without loss", CALLS);
    assert!(printed > 0, "nothing printed");
    assert_eq!(printed + lost, CALLS, "printed {} + lost {} != sent {}", printed, lost, CALLS);
}

#[test]
fn flood_loss_is_exact_in_json() {
    if !common::require_root("streams") {
        return;
    }
    let (text, _) = flood("json", "json");
    let mut printed = Vec::new();
    let mut lost = 0u64;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("{\"type\": \"lost_events\", \"count\": ") {
            lost += rest.split(',').next().unwrap().parse::<u64>().unwrap();
        } else if let Some(rest) = line.strip_prefix("{\"type\": \"printf\", \"data\": \"") {
            printed.push(rest.trim_end_matches("\\n\"}").parse::<u64>().unwrap());
        } else {
            assert!(line.is_empty() || line.contains("attached_probes"), "unexpected line {:?}", line);
        }
    }
    let printed = check_printed(&printed);
    assert!(lost > 0, "a one-page ring took {} records without loss", CALLS);
    assert_eq!(printed + lost, CALLS, "printed {} + lost {} != sent {}", printed, lost, CALLS);
}
