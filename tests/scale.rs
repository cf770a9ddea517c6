//! Large programs: compile time that grows linearly with the program (issue
//! 16), and a probe past the kernel's instruction limit named by the
//! compiler rather than refused by the kernel with a bare `E2BIG`.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// `rtrace --emit asm -` on `text`, and how long it took.
fn emit_asm(text: &str) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .args(["--emit", "asm", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rtrace");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write the program");
    let out = child.wait_with_output().expect("wait for rtrace");
    (out, started.elapsed())
}

fn instructions(out: &Output) -> usize {
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("");
    first.split(": ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn forty_thousand_statements_compile_in_seconds() {
    // Before: 18 s of CPU for the straight line (a line lookup per statement
    // scanned the source from its start), 33 s for 20,000 if/else (each jump
    // clean-up shifted the whole program). Now each takes well under a
    // second; the bound leaves room for a machine busy with other builds.
    for (body, n, per_statement) in
        [("$a = $a + 1;", 40_000, 3), ("if ($a > 5) { $a = $a + 1; } else { $a = $a + 3; }", 20_000, 6)]
    {
        let (out, took) = emit_asm(&program(body, n));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(instructions(&out) >= n * per_statement, "{} instructions", instructions(&out));
        assert!(took < Duration::from_secs(15), "{n} × `{body}` took {took:?}");
    }
}

#[test]
fn a_probe_past_the_kernels_instruction_limit_is_named() {
    // 3 instructions a statement: 340,000 statements are past 1,000,000.
    let (out, _) = emit_asm(&program("$a = $a + 1;", 340_000));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(
            "stdin:1:1: error: probe `BEGIN` compiles to 1020040 eBPF instructions, more than the 1000000 the \
             kernel loads in one program\n"
        ),
        "{err}"
    );
    assert!(err.contains("help: split the work over several probes"), "{err}");
}
