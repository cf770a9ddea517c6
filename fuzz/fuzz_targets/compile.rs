//! Code generator: parse, check against a fixed system, lower and finish
//! to eBPF, print it (`--emit asm`) and write the ELF object: everything
//! short of loading it into the kernel.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrace::codegen::compile::{compile, CompileOptions};

fuzz_target!(|data: &[u8]| {
    let source = rtrace_fuzz::source(data);
    let Some(program) = rtrace_fuzz::parse(&source) else { return };
    let Some(checked) = rtrace_fuzz::check(&program, &source) else { return };
    match compile(&checked, &source, &CompileOptions::default()) {
        Ok(compiled) => {
            std::hint::black_box(rtrace::codegen::asm::print(&compiled, &source));
            std::hint::black_box(rtrace::codegen::elf::write(&compiled.image).is_ok());
        }
        Err(diags) => rtrace_fuzz::rendered(&diags, &source),
    }
});
