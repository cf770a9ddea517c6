//! rtrace: bpftrace's language compiled straight to eBPF, no LLVM.
//!
//! source ─parser::parse─▶ AST ─sema::check─▶ checked program + Manifest
//!   ─codegen::lower─▶ virtual-register IR ─codegen::finish─▶ eBPF
//!   ─codegen::elf─▶ ELF ─runtime::load─▶ kernel ─runtime::run─▶ output
//!
//! `repl` drives the same pipeline once per line typed at its prompt.

pub mod codegen;
pub mod contract;
pub mod diagnostic;
pub mod driver;
pub mod options;
pub mod output;
pub mod parser;
pub mod probe;
pub mod repl;
pub mod runtime;
pub mod sema;
pub mod span;
pub mod system;
pub mod types;
