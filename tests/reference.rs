//! Every ```rtrace example in docs/reference.md is compiled and loaded into
//! the kernel (`rtrace --dry-run -e EXAMPLE`), so the reference cannot drift
//! from what rtrace accepts. Loading needs root; under CI=true a skip fails.

mod common;

use std::process::Command;

fn examples(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```rtrace") => current = Some((n + 2, String::new())),
            (Some(_), "```") => out.push(current.take().unwrap()),
            (Some((_, text)), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn reference_examples_compile_and_load() {
    if !common::require_root("the reference examples (loading eBPF)") {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let cases = examples(&doc);
    assert!(cases.len() >= 10, "expected the reference to carry examples, found {}", cases.len());
    let mut failures = Vec::new();
    for (line, program) in &cases {
        let out = Command::new(env!("CARGO_BIN_EXE_rtrace")).args(["--dry-run", "-e", program]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("warning") {
            failures.push(format!("docs/reference.md:{line}:\n{program}{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{} example(s) fail:\n{}", failures.len(), failures.join("\n"));
}
