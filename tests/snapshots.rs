//! Snapshot layers below the runtime scripts: each `tests/snapshots/<layer>/NAME.rt`
//! is run through the real binary and its output compared with `NAME.expected`.
//!
//! | layer         | command                       | snapshot                     |
//! |---------------|-------------------------------|------------------------------|
//! | `parser-ok`   | `rtrace -d ast NAME.rt`       | the AST dump                 |
//! | `parser-err`  | `rtrace -d ast NAME.rt`       | the syntax error + exit code |
//! | `diagnostics` | `rtrace --dry-run NAME.rt`    | the rendered error + exit    |
//! | `bytecode`    | `rtrace --emit asm NAME.rt`   | the eBPF assembly            |
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test snapshots` rewrites the expected files;
//! review the diff before committing. Layers that read tracefs or binaries need
//! root; they skip (and fail under CI=true) without it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn layer_dir(layer: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(layer)
}

fn render(layer: &str, dir: &Path, file: &str) -> String {
    let args: &[&str] = match layer {
        "parser-ok" | "parser-err" => &["-d", "ast"],
        "diagnostics" => &["--dry-run"],
        "bytecode" => &["--emit", "asm"],
        _ => unreachable!("unknown layer {layer}"),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .args(args)
        .arg(file)
        .current_dir(dir)
        .env_remove("BPFTRACE_NOTIFY_PROBES_ATTACHED")
        .output()
        .expect("run rtrace");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    if code != 0 || layer.ends_with("err") || layer == "diagnostics" {
        text.push_str(&format!("[exit {code}]\n"));
    }
    text
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn check_layer(layer: &str) {
    let needs_root = matches!(layer, "diagnostics" | "bytecode");
    if needs_root && !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "snapshot layer {layer} needs root (tracefs, binaries) and CI=true forbids skipping"
        );
        eprintln!("SKIP snapshot layer {layer}: needs root to read tracefs and probe targets");
        return;
    }
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
        let actual = render(layer, &dir, file);
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
