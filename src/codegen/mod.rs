//! Checked program → eBPF instructions → ELF object. Pure: no kernel access.

pub mod image;
pub mod insn;
pub mod finish;
pub mod ir;
pub mod lower;
pub mod compile;
pub mod asm;
pub mod btf;
pub mod elf;
