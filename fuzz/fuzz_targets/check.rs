//! Checker: parse, then check against a fixed system (no root, no tracefs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = rtrace_fuzz::source(data);
    if let Some(program) = rtrace_fuzz::parse(&source) {
        std::hint::black_box(rtrace_fuzz::check(&program, &source));
    }
});
