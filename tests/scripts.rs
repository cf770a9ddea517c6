//! Runtime golden tests: every case in `tests/scripts/*.test` runs the real
//! `rtrace` binary on the real kernel against real workload programs
//! (`tests/workloads/`, built by this test), and checks what it prints.
//! The case format is described in `tests/scripts/README.md`; the harness
//! is `tests/common/golden.rs`.
//!
//! `RTRACE_TEST_FILTER=regex` selects cases by name; `RTRACE_BIN` runs
//! another binary (e.g. `bpftrace`, to check the cases themselves).

mod common;

#[test]
fn scripts() {
    if !common::require_root("the runtime script tests (they load eBPF programs)") {
        return;
    }
    common::golden::run_suite("scripts").assert_ok();
}
