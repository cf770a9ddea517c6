//! The differential test of issue 16: random well-typed programs run twice,
//! in the kernel through rtrace (`BEGIN` by `BPF_PROG_TEST_RUN`, `-f json`)
//! and natively through the cranelift oracle (`tests/oracle/`); every
//! printf record, map entry and the exit code must agree.
//!
//! `ORACLE_COUNT` programs (default 300) from `ORACLE_SEED` (default 1);
//! `ORACLE_SECONDS` stops earlier. A difference is shrunk to a minimal
//! program, printed, and fails the test. The minimal programs of the bugs
//! found are kept in `tests/oracle/regressions/` and run every time.

mod common;
mod oracle;

use oracle::{compare, gen, Verdict};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn describe(text: &str, v: &Verdict) -> String {
    match v {
        Verdict::Same => String::new(),
        Verdict::Failed(why) => format!("{}\n-- could not run: {}", text, why),
        Verdict::Rejected(why) => format!("{}\n-- refused by the checker: {}", text, why),
        Verdict::Differ { kernel, native } => format!(
            "{}\n-- kernel (exit {}):\n{}\n-- oracle (exit {}):\n{}",
            text, kernel.code, kernel.stdout, native.code, native.stdout
        ),
    }
}

#[test]
fn random_programs_agree_in_the_kernel_and_natively() {
    if !common::require_root("differential test: runs BEGIN probes in the kernel") {
        return;
    }
    let seed = env_u64("ORACLE_SEED", 1);
    let count = env_u64("ORACLE_COUNT", 300);
    let budget = Duration::from_secs(env_u64("ORACLE_SECONDS", u64::MAX / 4));
    let started = Instant::now();
    let (mut compared, mut rejected) = (0, 0);
    let mut failures = Vec::new();
    for i in 0..count {
        if started.elapsed() > budget {
            break;
        }
        let program = gen::generate(seed.wrapping_mul(1_000_003).wrapping_add(i));
        let text = program.text();
        let verdict = compare(&text);
        match verdict {
            Verdict::Same => compared += 1,
            // Not a well-typed program after all: counted, and kept rare.
            Verdict::Rejected(_) => rejected += 1,
            Verdict::Failed(_) | Verdict::Differ { .. } => {
                // Shrunk to the smallest program that still fails the same way.
                let differ = matches!(verdict, Verdict::Differ { .. });
                let small = gen::shrink(&program, |p| match compare(&p.text()) {
                    Verdict::Differ { .. } => differ,
                    Verdict::Failed(_) => !differ,
                    _ => false,
                });
                let small_text = small.text();
                let v = compare(&small_text);
                failures.push(format!(
                    "program {} of seed {} fails; shrunk:\n{}\n-- the original:\n{}",
                    i,
                    seed,
                    describe(&small_text, &v),
                    text
                ));
            }
        }
        if failures.len() >= 3 {
            break;
        }
    }
    eprintln!(
        "differential: {} programs agreed, {} failed, {} refused by the checker, in {:.1} s (seed {})",
        compared,
        failures.len(),
        rejected,
        started.elapsed().as_secs_f64(),
        seed,
    );
    assert!(rejected * 10 <= compared, "the generator wrote too many programs the checker refuses");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn generated_programs_are_reproducible() {
    assert_eq!(gen::generate(7).text(), gen::generate(7).text());
    assert_ne!(gen::generate(7).text(), gen::generate(8).text());
}

/// The minimal programs of the bugs the differential test found
/// (`tests/oracle/regressions/`), each run both ways.
#[test]
fn regressions_agree_in_the_kernel_and_natively() {
    if !common::require_root("differential regressions: run BEGIN probes in the kernel") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no programs in {}", dir.display());
    let mut failures = Vec::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rt")) {
        let text = std::fs::read_to_string(file).unwrap();
        let verdict = compare(&text);
        if !matches!(verdict, Verdict::Same) {
            failures.push(format!("{}:\n{}", file.display(), describe(&text, &verdict)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The programs of bugs still open (`tests/oracle/known/`) still differ:
/// when one agrees, its bug is fixed and it moves to `regressions/`. This
/// also shows the comparison sees a difference.
#[test]
fn known_bugs_still_differ() {
    if !common::require_root("differential known bugs: run BEGIN probes in the kernel") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/known");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        let text = std::fs::read_to_string(&file).unwrap();
        let verdict = compare(&text);
        assert!(
            matches!(verdict, Verdict::Differ { .. }),
            "{} no longer differs (fixed? move it to regressions/):\n{}",
            file.display(),
            describe(&text, &verdict)
        );
    }
}
