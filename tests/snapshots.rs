//! Snapshot layers below the runtime scripts: each `tests/snapshots/<layer>/NAME.rt`
//! goes through the compiler (`driver::front`, in this process) and what
//! rtrace would print is compared with `NAME.expected`.
//!
//! | layer         | as if run as                  | snapshot                     |
//! |---------------|-------------------------------|------------------------------|
//! | `parser-ok`   | `rtrace -d ast NAME.rt`       | the AST dump                 |
//! | `parser-err`  | `rtrace -d ast NAME.rt`       | the syntax error + exit code |
//! | `diagnostics` | `rtrace --dry-run NAME.rt`    | the rendered error + exit    |
//! | `bytecode`    | `rtrace --emit asm NAME.rt`   | the eBPF assembly            |
//!
//! The compiler reads the kernel's facts (tracefs, kernel symbols) from the
//! recording in `tests/fixtures/machine/` (`record.sh` makes it), so these
//! layers run as any user. Only a `diagnostics` case that compiles goes on
//! to the kernel (`--dry-run` loads it: the verifier has the last word);
//! that case alone needs root, and says so when it skips.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test snapshots` rewrites the expected files;
//! review the diff before committing.

mod common;

use rtrace::diagnostic::Source;
use rtrace::options::{Emit, Options};
use rtrace::system::Machine;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

fn layer_dir(layer: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(layer)
}

fn recording() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/machine")
}

/// What rtrace prints for `file` in this layer, and whether the case went
/// on to the kernel (`None`: it needs root, which this run does not have).
fn render(layer: &str, dir: &Path, file: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(file)).expect("read case");
    let emit = match layer {
        "parser-ok" | "parser-err" => Some(Emit::Ast),
        "diagnostics" => None,
        "bytecode" => Some(Emit::Asm),
        _ => unreachable!("unknown layer {layer}"),
    };
    let opts = Options { emit, dry_run: emit.is_none(), ..Options::default() };
    let machine = Rc::new(Machine::recorded(&recording()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match rtrace::driver::front(&Source::new(file, text), &opts, machine, &mut out, &mut err) {
        Err(code) => code,
        // It compiled: the kernel decides (`--dry-run` loads the object).
        Ok(_) => return dry_run(dir, file),
    };
    Some(layer_text(layer, &out, &err, code))
}

/// The real binary, on the real kernel, for a case the compiler accepted.
fn dry_run(dir: &Path, file: &str) -> Option<String> {
    if !common::require_root(&format!("diagnostics/{file} (it compiles, so the kernel's verifier decides)")) {
        return None;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .arg("--dry-run")
        .arg(file)
        .current_dir(dir)
        .output()
        .expect("run rtrace");
    Some(layer_text("diagnostics", &out.stdout, &out.stderr, out.status.code().unwrap_or(-1)))
}

fn layer_text(layer: &str, out: &[u8], err: &[u8], code: i32) -> String {
    let mut text = String::from_utf8_lossy(out).into_owned();
    text.push_str(&String::from_utf8_lossy(err));
    if code != 0 || layer.ends_with("err") || layer == "diagnostics" {
        text.push_str(&format!("[exit {code}]\n"));
    }
    text
}

fn check_layer(layer: &str) {
    let dir = layer_dir(layer);
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("snapshot dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rt"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let file = case.file_name().unwrap().to_str().unwrap();
        let Some(actual) = render(layer, &dir, file) else { continue };
        let expected_path = case.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {} (run with UPDATE_SNAPSHOTS=1)", expected_path.display()));
        if expected != actual {
            failures.push(format!("--- {layer}/{file}\n--- expected\n{expected}--- actual\n{actual}"));
        }
    }
    assert!(failures.is_empty(), "{} snapshot(s) differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn parser_ok() {
    check_layer("parser-ok");
}

#[test]
fn parser_err() {
    check_layer("parser-err");
}

#[test]
fn diagnostics() {
    check_layer("diagnostics");
}

#[test]
fn bytecode() {
    check_layer("bytecode");
}

/// The recording stands for this kernel: its tracepoint formats must be
/// the ones this kernel has (re-record with `tests/fixtures/machine/record.sh`).
#[test]
fn recording_matches_this_kernel() {
    if !common::require_root("comparing the recorded tracepoint formats with tracefs") {
        return;
    }
    let tracefs = rtrace::system::tracefs::mounted().expect("tracefs is mounted");
    let events = recording().join("tracing/events");
    let mut compared = 0;
    for category in std::fs::read_dir(&events).unwrap().flatten() {
        for event in std::fs::read_dir(category.path()).unwrap().flatten() {
            let relative = event.path().strip_prefix(&events).unwrap().join("format");
            let recorded = std::fs::read_to_string(events.join(&relative)).unwrap();
            let live = std::fs::read_to_string(tracefs.join("events").join(&relative)).unwrap_or_default();
            assert_eq!(
                recorded,
                live,
                "{} changed on this kernel: run tests/fixtures/machine/record.sh",
                relative.display()
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "the recording holds no tracepoints");
}
