//! rtrace: bpftrace's language compiled straight to eBPF, no LLVM.
//!
//! ```text
//! source ─parser::parse─▶ AST ─system::Machine::resolve─▶ attach points
//!   ─sema::check─▶ checked program + Manifest  (asks system::Facts: DWARF, BTF, symbols)
//!   ─codegen::compile─▶ virtual-register IR ─finish─▶ eBPF ─elf─▶ ELF object
//!   ─runtime::object::Loaded::load─▶ kernel ─attach, runtime::events─▶ output
//! ```
//!
//! `driver` runs that pipeline for a script or one-liner; `repl` runs it once
//! per input typed at its prompt, on the same runtime API.
//!
//! Layers, from the bottom up (`tests/layers.rs` holds the code to them: a
//! module uses only modules below it, and no two files import each other):
//!
//! | layer | modules | what they are |
//! |---|---|---|
//! | 0 | `span`, `options`, `types`, `contract`, `raw_text`, `nesting` | vocabulary: spans, what a run was asked, value types, the program ↔ user-space wire format, text that may hold bytes that are not UTF-8, how deep a program may nest |
//! | 1 | `config`, `output`, `diagnostic` | bpftrace's config variables (their values name types: a stack mode); printing values; one error type, rendered with the source line and a caret |
//! | 2 | `parser` | source → AST |
//! | 3 | `probe` | attach points: their grammar interpreted, and what a resolved one is |
//! | 4 | `system` | **reads** this machine: tracefs, ELF files, DWARF, BTF, kallsyms, `/proc`, headers |
//! | 5 | `sema` | AST + facts → checked program and Manifest |
//! | 6 | `codegen` | checked program → eBPF → ELF; pure |
//! | 7 | `runtime` | **changes** the kernel: loads, attaches, runs, reads maps and records |
//! | 8 | `driver` | the pipeline for a script |
//! | 9 | `repl` | the interactive session |
//!
//! Below `runtime`, only `system` reads the machine, and nothing changes it:
//! `parser`, `sema` and `codegen` are functions of their inputs and of the
//! facts `system` gives them, so the compiler's tests run against a recorded
//! machine (`system::Machine::recorded`) as any user. `runtime` alone loads
//! and attaches; `driver`, `repl` and `main` handle the files, terminal and
//! processes the user hands them.

pub mod codegen;
pub mod config;
pub mod contract;
pub mod diagnostic;
pub mod driver;
pub mod nesting;
pub mod options;
pub mod output;
pub mod parser;
pub mod probe;
pub mod raw_text;
pub mod repl;
pub mod runtime;
pub mod sema;
pub mod span;
pub mod system;
pub mod types;
