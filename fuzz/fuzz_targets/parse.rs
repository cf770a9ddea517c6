//! Parser: any bytes, as a script. Accepted programs are dumped (`-d ast`),
//! refused ones have their errors rendered.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = rtrace_fuzz::source(data);
    if let Some(program) = rtrace_fuzz::parse(&source) {
        std::hint::black_box(rtrace::parser::dump::dump(&program));
    }
});
