//! rtrace: bpftrace's language compiled straight to eBPF, no LLVM.
//!
//! source ─parser::parse─▶ AST ─sema::check─▶ checked program + Manifest
//!   ─codegen::lower─▶ virtual-register IR ─codegen::finish─▶ eBPF
//!   ─codegen::elf─▶ ELF ─runtime::load─▶ kernel ─runtime::run─▶ output

pub mod codegen;
pub mod diagnostic;
pub mod driver;
pub mod output;
pub mod parser;
pub mod probe;
pub mod runtime;
pub mod sema;
pub mod span;
