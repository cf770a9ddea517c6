//! Large programs: 40,000 statements compile (issue 16: compile time grows
//! linearly; the times are measured by bench/compile_scale.py, not here),
//! and a probe past the kernel's instruction limit named by the
//! compiler rather than refused by the kernel with a bare `E2BIG`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `BEGIN { $a = 1; <body> ×n; printf; exit(); }`, one statement a line.
fn program(body: &str, n: usize) -> String {
    let mut text = String::from("BEGIN { $a = 1;\n");
    for _ in 0..n {
        text.push_str(body);
        text.push('\n');
    }
    text.push_str("printf(\"%d\\n\", $a); exit(); }\n");
    text
}

/// `rtrace --emit asm -` on `text`.
fn emit_asm(text: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .args(["--emit", "asm", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rtrace");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write the program");
    child.wait_with_output().expect("wait for rtrace")
}

fn instructions(out: &Output) -> usize {
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("");
    first.split(": ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn forty_thousand_statements_compile() {
    // Before the linear passes: 18 s of CPU for the straight line (a line
    // lookup per statement scanned the source from its start), 33 s for
    // 20,000 if/else (each jump clean-up shifted the whole program).
    for (body, n, per_statement) in
        [("$a = $a + 1;", 40_000, 3), ("if ($a > 5) { $a = $a + 1; } else { $a = $a + 3; }", 20_000, 6)]
    {
        let out = emit_asm(&program(body, n));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(instructions(&out) >= n * per_statement, "{} instructions", instructions(&out));
    }
}

#[test]
fn a_probe_past_the_kernels_instruction_limit_is_named() {
    // 3 instructions a statement: 340,000 statements are past 1,000,000.
    let out = emit_asm(&program("$a = $a + 1;", 340_000));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // `stdin:1-340002:` (the probe spans every line), then the count: a
    // little over 3 × 340,000.
    assert!(err.starts_with("stdin:1-"), "{err}");
    let count = err.split("ERROR: probe `BEGIN` compiles to ").nth(1).and_then(|r| r.split(' ').next());
    assert!(count.and_then(|c| c.parse::<usize>().ok()).is_some_and(|c| c > 1_000_000), "{err}");
    assert!(err.contains(" eBPF instructions, more than the 1000000 the kernel loads in one program\n"), "{err}");
    assert!(err.contains("help: split the work over several probes"), "{err}");
}
